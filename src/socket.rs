//! A TCP socket under TLS, on either side: a `TcpStream` that remembers a failed write.
//!
//! rustls's `Stream::write` takes the plaintext into its buffer, tries to send, and
//! drops the socket's error so that the bytes it took are not reported lost; the error
//! comes back on the next write, which first waits out the socket's write timeout a
//! second time. A peer that stops reading (a frozen server, a hostile client, a
//! connection half-closed by a dead middlebox) would then hold the writer for twice
//! its write timeout before it says anything. Here the first failure sticks: every later write fails at once with
//! the same kind of error, so one timeout is one timeout.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};

/// A connected socket; derefs to its `TcpStream` for options and shutdown.
#[derive(Debug)]
pub struct Socket {
    tcp: TcpStream,
    /// The first write that failed, if one has.
    failed: Option<io::ErrorKind>,
}

impl Socket {
    /// Wraps a connected stream.
    pub fn new(tcp: TcpStream) -> Socket {
        Socket { tcp, failed: None }
    }
}

impl From<TcpStream> for Socket {
    fn from(tcp: TcpStream) -> Socket {
        Socket::new(tcp)
    }
}

impl Deref for Socket {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.tcp
    }
}

impl DerefMut for Socket {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(
                kind,
                "an earlier write on this connection failed",
            ));
        }
        // a non-blocking probe (the client's `answered_early`) only reads: writes are
        // made on a blocking socket, where WouldBlock is the write timeout
        self.tcp.write(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed = Some(e.kind());
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    #[test]
    fn a_write_that_timed_out_fails_every_later_write_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // the peer accepts and never reads: the send buffer fills, then a write waits
        // out its timeout
        let (_peer, _) = listener.accept().unwrap();
        tcp.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut s = Socket::new(tcp);
        let chunk = vec![0u8; 1 << 20];
        let first = (0..256)
            .find_map(|_| s.write(&chunk).err())
            .expect("a peer that never reads fills the buffer within 256 MiB");
        assert!(
            matches!(
                first.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{first:?}"
        );
        // the next write does not try the socket again (it would wait once more)
        let again = s.write(b"x").unwrap_err();
        assert_eq!(again.kind(), first.kind());
        assert!(again.to_string().contains("earlier write"), "{again}");
    }
}
