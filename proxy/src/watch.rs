//! What a client connection's serving loop knows of it: when bytes last
//! moved (for the idle timeouts), how many requests are in flight, and
//! whether hyper is waiting for a request with nothing to do, which is
//! when an HTTP/1.1 connection can give back its buffers (see
//! `exchange`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Shared by a connection's IO wrapper, its requests and its serving loop
/// (all on one task, so the order of what they note is the task's).
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last read or write.
    last: AtomicU64,
    in_flight: AtomicUsize,
    /// The current hyper connection has answered a request: before its
    /// first answer hyper will not let it go without closing it.
    answered: AtomicBool,
    /// hyper asked for bytes, none were there, and no request was open.
    waiting: AtomicBool,
    idle: Notify,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            idle: Notify::new(),
        })
    }

    fn touch(&self) {
        let millis = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    /// When bytes last moved.
    pub fn last_moved(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// Whether hyper, having answered, waits for the next request and
    /// has nothing else to do.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
            && self.answered.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// Resolves after hyper found nothing to read with no request open
    /// (check [`Self::is_waiting`]: a request may have come since).
    pub async fn waiting(&self) {
        self.idle.notified().await;
    }

    /// A new hyper connection has not waited yet (a wake-up left from
    /// the one before must not park it).
    pub fn restart(&self) {
        self.waiting.store(false, Ordering::Relaxed);
        self.answered.store(false, Ordering::Relaxed);
    }

    /// A request is open until the returned guard is dropped (with the
    /// response body, once hyper has sent it).
    pub fn open_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.waiting.store(false, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// One open request of a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.answered.store(true, Ordering::Relaxed);
    }
}

/// A client connection seen by hyper: bytes a previous hyper connection
/// read but did not use come first; every read and write is noted.
pub struct Watched<T> {
    inner: T,
    unread: Bytes,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, unread: Bytes, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            unread,
            activity,
        }
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() {
            let count = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..count]);
            this.unread.advance(count);
            this.activity.touch();
            this.activity.waiting.store(false, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        match poll {
            Poll::Ready(Ok(())) => {
                this.activity.touch();
                this.activity.waiting.store(false, Ordering::Relaxed);
            }
            Poll::Pending if this.activity.in_flight.load(Ordering::Relaxed) == 0 => {
                this.activity.waiting.store(true, Ordering::Relaxed);
                this.activity.idle.notify_one();
            }
            _ => {}
        }
        poll
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.touch();
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
