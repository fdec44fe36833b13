//! The app's TCP socket as rustls writes to it.
//!
//! A TLS 1.3 server sends its session ticket (RFC 8446 §4.6.1) once the
//! app's Finished is in, and tokio-rustls writes it at once, on its own:
//! a system call, and a wake-up of the app for a record it has no use for
//! until its next connection. Held here, the ticket goes out with the
//! first answer, in one write.
//!
//! Only TLS 1.3 records are held (outer type application_data; TLS 1.2
//! sends none during a handshake) and only after the server's first
//! flight, so no flight the handshake waits on is ever held. That flight
//! is one write: rustls writes up to 64 records at a time, and ours are
//! a handful (no `max_fragment_size`). Whatever is
//! held goes first with the next write (an answer, HTTP/2's settings, a
//! close_notify) or the shutdown, not with a flush: hyper flushes as it
//! waits for a request. A failed handshake sends its alert, encrypted and
//! held like a ticket, with [`AppSocket::poll_release`].

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// RFC 8446 §5.1: the outer content type of every encrypted TLS 1.3 record.
const APPLICATION_DATA: u8 = 23;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet: the server's first flight goes as it is.
    FirstFlight,
    /// The rest of the handshake; `at_record_start` when the last write
    /// went whole, so the next one begins with a record's header.
    Handshake { at_record_start: bool },
    /// Held bytes go with the next write.
    Open,
}

/// The app's TCP socket under rustls.
#[derive(Debug)]
pub struct AppSocket {
    tcp: TcpStream,
    /// Written by rustls, not yet sent.
    held: Vec<u8>,
    phase: Phase,
}

impl AppSocket {
    pub fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            held: Vec::new(),
            phase: Phase::FirstFlight,
        }
    }

    /// Waits until the app sent something (or left).
    pub async fn readable(&self) -> io::Result<()> {
        self.tcp.readable().await
    }

    /// Looks at what the app sent without taking it. (Writes go through
    /// [`AsyncWrite`] only, behind whatever is held.)
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.tcp.poll_peek(cx, buf)
    }

    /// The handshake is over: what is held goes with the next write.
    pub fn handshake_over(&mut self) {
        self.phase = Phase::Open;
    }

    /// Sends what is held now: a failed handshake's alert.
    pub fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.phase = Phase::Open;
        ready!(self.poll_send(cx, &[]))?;
        Poll::Ready(Ok(()))
    }

    /// Sends the held bytes, then as much of `bufs` as the socket takes:
    /// how many of `bufs`' bytes went.
    fn poll_send(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        loop {
            if self.held.is_empty() {
                if total(bufs) == 0 {
                    return Poll::Ready(Ok(0));
                }
                return Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
            }
            let mut slices = Vec::with_capacity(bufs.len() + 1);
            slices.push(IoSlice::new(&self.held));
            slices.extend(bufs.iter().map(|buf| IoSlice::new(buf)));
            let sent = ready!(Pin::new(&mut self.tcp).poll_write_vectored(cx, &slices))?;
            if sent == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if sent < self.held.len() {
                self.held.drain(..sent);
                continue;
            }
            let theirs = sent - self.held.len();
            // Its capacity goes too: a parked connection keeps no buffer.
            self.held = Vec::new();
            if theirs > 0 || total(bufs) == 0 {
                return Poll::Ready(Ok(theirs));
            }
        }
    }
}

fn total(bufs: &[IoSlice<'_>]) -> usize {
    bufs.iter().map(|buf| buf.len()).sum()
}

fn first_byte(bufs: &[IoSlice<'_>]) -> Option<u8> {
    bufs.iter().find_map(|buf| buf.first().copied())
}

impl AsyncRead for AppSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for AppSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.phase {
            Phase::Handshake {
                at_record_start: true,
            } if first_byte(bufs) == Some(APPLICATION_DATA) => {
                for buf in bufs {
                    this.held.extend_from_slice(buf);
                }
                Poll::Ready(Ok(total(bufs)))
            }
            Phase::FirstFlight | Phase::Handshake { .. } => {
                let sent = ready!(this.poll_send(cx, bufs))?;
                this.phase = Phase::Handshake {
                    at_record_start: sent == total(bufs),
                };
                Poll::Ready(Ok(sent))
            }
            Phase::Open => this.poll_send(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
