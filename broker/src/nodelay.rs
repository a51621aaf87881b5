//! TCP_NODELAY on every MQTT connection.
//!
//! Without it, Nagle's algorithm holds a small publish back until the previous one is
//! acknowledged, and a subscriber's delayed acknowledgement makes that up to 40 ms: under a
//! steady stream of small messages, delivery latency rises from tens of microseconds to tens
//! of milliseconds. rumqttd binds its listeners itself and never sets the option; Linux copies
//! it from a listening socket to every connection that socket accepts afterwards, so Weir sets
//! it on rumqttd's listening sockets, found among the process's file descriptors by address.

use socket2::SockRef;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// Sets TCP_NODELAY on the listening socket bound to `address`, waiting up to `patience` for
/// rumqttd to bind it. Returns whether it was found.
pub fn set_on_listener(address: SocketAddr, patience: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + patience;
    loop {
        for fd in open_fds()? {
            // SAFETY: `fd` was open when listed and is only borrowed for the calls below; a
            // descriptor closed and reused in between is at worst inspected, and changed only
            // if it is a listening TCP socket bound to `address`, which is what we look for.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = SockRef::from(&borrowed);
            let bound = socket.local_addr().ok().and_then(|a| a.as_socket());
            if bound == Some(address) && socket.is_listener().unwrap_or(false) {
                socket.set_tcp_nodelay(true)?;
                return Ok(true);
            }
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn open_fds() -> std::io::Result<Vec<RawFd>> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn connections_accepted_after_it_is_set_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let _before = TcpStream::connect(address).unwrap();
        let (accepted_before, _) = listener.accept().unwrap();
        assert!(!accepted_before.nodelay().unwrap());
        assert!(set_on_listener(address, Duration::ZERO).unwrap());
        let _after = TcpStream::connect(address).unwrap();
        let (accepted_after, _) = listener.accept().unwrap();
        assert!(accepted_after.nodelay().unwrap());
    }

    #[test]
    fn an_address_nothing_listens_on_is_not_found() {
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!set_on_listener(free, Duration::ZERO).unwrap());
    }
}
