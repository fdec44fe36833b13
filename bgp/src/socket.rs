//! TCP-MD5 (RFC 2385) and GTSM (RFC 5082) on BGP sockets.
//!
//! No safe crate sets `TCP_MD5SIG` or `IP_MINTTL`/`IPV6_MINHOPCOUNT`, so
//! this module calls `setsockopt` itself: the kernel's socket-option ABI is
//! the one byte layer the BGP crate owns. Every call passes a pointer to a
//! value that lives across the call and its exact size.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `TCP_MD5SIG_MAXKEYLEN`.
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` (linux/tcp.h): the peer's address as a
/// `sockaddr_storage`, then flags, prefix length, key length, interface
/// index and the key. 216 bytes.
#[repr(C, align(8))]
struct TcpMd5Sig {
    address: [u8; 128],
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: u32,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// The bytes of a `sockaddr_in`/`sockaddr_in6` for `address`, port 0.
fn sockaddr_storage(address: IpAddr) -> [u8; 128] {
    let mut storage = [0_u8; 128];
    match address {
        IpAddr::V4(v4) => {
            storage[..2].copy_from_slice(
                &u16::try_from(libc::AF_INET)
                    .unwrap_or_default()
                    .to_ne_bytes(),
            );
            storage[4..8].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            storage[..2].copy_from_slice(
                &u16::try_from(libc::AF_INET6)
                    .unwrap_or_default()
                    .to_ne_bytes(),
            );
            storage[8..24].copy_from_slice(&v6.octets());
        }
    }
    storage
}

fn set_option<T>(
    socket: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let size = libc::socklen_t::try_from(std::mem::size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `value` is a live reference for the whole call and `size` is
    // its exact size; the kernel only reads that many bytes from it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            size,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Signs every segment to and from `peer` with `key` (RFC 2385). On a
/// listening socket it makes the kernel accept only signed SYNs from `peer`.
pub fn set_md5(socket: BorrowedFd<'_>, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.is_empty() || key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a TCP-MD5 key is 1 to 80 bytes",
        ));
    }
    let mut signature = TcpMd5Sig {
        address: sockaddr_storage(peer),
        flags: 0,
        prefix_len: 0,
        key_len: u16::try_from(key.len()).map_err(io::Error::other)?,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    signature.key[..key.len()].copy_from_slice(key);
    set_option(socket, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &signature)
}

/// GTSM (RFC 5082): refuse packets from `peer`'s family that arrive with a
/// TTL (hop limit) below 254, i.e. from further than one hop away. The
/// outgoing TTL of 255 is set separately (`socket2` does that safely).
pub fn set_min_ttl(socket: BorrowedFd<'_>, peer: IpAddr) -> io::Result<()> {
    let minimum: libc::c_int = 254;
    match peer {
        IpAddr::V4(_) => set_option(socket, libc::IPPROTO_IP, libc::IP_MINTTL, &minimum),
        IpAddr::V6(_) => set_option(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &minimum),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn the_struct_has_the_kernels_size() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn options_apply_to_real_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_md5(listener.as_fd(), "127.0.0.2".parse().unwrap(), b"secret").unwrap();
        set_min_ttl(listener.as_fd(), "127.0.0.2".parse().unwrap()).unwrap();
        assert!(set_md5(listener.as_fd(), "127.0.0.2".parse().unwrap(), &[b'x'; 81]).is_err());
        let listener6 = TcpListener::bind("[::1]:0").unwrap();
        set_md5(listener6.as_fd(), "::2".parse().unwrap(), b"secret").unwrap();
        set_min_ttl(listener6.as_fd(), "::2".parse().unwrap()).unwrap();
    }
}
