//! Lingering closes, all on one thread.
//!
//! A socket whose last bytes have been sent (and whose write side is shut) must not be
//! closed while the peer may still send: closing with unread input makes the kernel answer
//! with a reset, and a reset can destroy data the peer has received but not yet read.
//! So such a socket is handed to [`Linger`], which reads and discards whatever still
//! arrives and closes the socket when the peer closes its end or a deadline passes.
//! The connection thread that handed it over goes on at once: a legacy `get` answers its
//! status line without waiting for the client to close the data connection (the Python
//! client closes it only after it has read that status).
//!
//! One thread serves every lingering socket, started on first use; it does not serve
//! sockets still carrying data, and it never writes. [`drain`] is the same wait on the
//! caller's own thread, for a side that has nothing else to do meanwhile (the client,
//! whose next step is to read the status that follows the peer's close). Each side
//! names its own deadline.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the lingering sockets are looked at while there are any.
const SWEEP: Duration = Duration::from_millis(10);

/// The sockets waiting for their peer's close.
#[derive(Debug)]
pub(crate) struct Linger {
    state: Mutex<State>,
    wake: Condvar,
    /// How long one socket may linger.
    timeout: Duration,
    /// At most this many at once; beyond it a socket is closed at once (a reset at worst).
    max: usize,
}

#[derive(Debug, Default)]
struct State {
    sockets: Vec<(TcpStream, Instant)>,
    thread: bool,
}

impl Linger {
    /// Room for `max` lingering sockets, each for at most `timeout`.
    pub(crate) fn new(max: usize, timeout: Duration) -> Linger {
        Linger {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            timeout,
            max,
        }
    }

    /// Takes `tcp` over: it is closed once its peer has closed, or after the timeout.
    pub(crate) fn close(self: &Arc<Self>, tcp: TcpStream) {
        if tcp.set_nonblocking(true).is_err() {
            return; // dropped: closed now
        }
        let mut state = self.lock();
        if state.sockets.len() >= self.max {
            return;
        }
        state.sockets.push((tcp, Instant::now() + self.timeout));
        if !state.thread {
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("linger".into())
                .spawn(move || me.run());
            // no thread to be had: the sockets are closed now, as they were before
            state.thread = spawned.is_ok();
            if !state.thread {
                state.sockets.clear();
            }
        }
        self.wake.notify_one();
    }

    /// How many sockets are lingering now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().sockets.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        let mut sink = [0u8; 4096];
        let mut state = self.lock();
        loop {
            while state.sockets.is_empty() {
                state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            let now = Instant::now();
            state
                .sockets
                .retain_mut(|(tcp, deadline)| now < *deadline && open(tcp, &mut sink));
            drop(state);
            std::thread::sleep(SWEEP);
            state = self.lock();
        }
    }
}

/// Reads and discards what `tcp` still receives until its peer closes, the socket
/// fails, or `timeout` passes without a byte.
pub(crate) fn drain(tcp: &mut TcpStream, timeout: Duration) {
    let _ = tcp.set_read_timeout(Some(timeout));
    let mut sink = [0u8; 4096];
    open(tcp, &mut sink);
}

/// Reads what has arrived (all there is, on a non-blocking socket; until a read times
/// out, on a blocking one); false once the peer has closed (or the socket failed).
fn open(tcp: &mut TcpStream, sink: &mut [u8]) -> bool {
    loop {
        match tcp.read(sink) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{Shutdown, TcpListener};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_socket_lingers_until_its_peer_closes_and_its_data_arrives_whole() {
        let linger = Arc::new(Linger::new(8, Duration::from_secs(30)));
        let (mut server, mut client) = pair();
        server.write_all(&[7u8; 100_000]).unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        // the peer still sends after the server is done: unread, this would be a reset
        client.write_all(b"late bytes").unwrap();
        linger.close(server);
        assert_eq!(linger.len(), 1);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 100_000);
        // still lingering: the client has not closed yet
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(linger.len(), 1);
        drop(client);
        wait_until("the lingering socket to close", || linger.len() == 0);
    }

    #[test]
    fn drain_reads_until_the_peer_closes() {
        let (mut server, mut client) = pair();
        client.write_all(&[1u8; 10_000]).unwrap();
        drop(client);
        let started = Instant::now();
        drain(&mut server, Duration::from_secs(30));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "returned at the close"
        );
        assert_eq!(
            server.read(&mut [0u8; 16]).unwrap(),
            0,
            "everything was read"
        );
    }

    #[test]
    fn a_silent_peer_is_given_up_on_and_the_bound_holds() {
        let linger = Arc::new(Linger::new(2, Duration::from_millis(100)));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (server, client) = pair();
            peers.push(client);
            linger.close(server);
        }
        assert_eq!(linger.len(), 2, "the third was closed at once");
        wait_until("the deadline to pass", || linger.len() == 0);
    }
}
