//! One connection: TLS handshake and login under one deadline, then the protocol the
//! client negotiated. Also the login check both protocols share.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::Shared;
use super::session::{Failure, Session, describe};
use crate::log::{Level, escape};

/// A stalled reader holds a thread at most this long per write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The TCP stream under TLS, with an overall deadline for the login phase: each read
/// gets only the time left, so a byte-a-second sender cannot stretch the handshake.
#[derive(Debug)]
pub(super) struct Transport {
    tcp: TcpStream,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
}

impl Transport {
    fn new(tcp: TcpStream, deadline: Instant) -> io::Result<Transport> {
        tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        Ok(Transport {
            tcp,
            deadline: Some(deadline),
            timeout: None,
        })
    }

    /// Ends the login phase: from now on each read may wait `idle`.
    pub(super) fn logged_in(&mut self, idle: Duration) -> io::Result<()> {
        self.deadline = None;
        self.set_timeout(idle)
    }

    fn set_timeout(&mut self, t: Duration) -> io::Result<()> {
        // only when it changes: one syscall saved per read on the hot path
        if self.timeout != Some(t) {
            self.tcp.set_read_timeout(Some(t))?;
            self.timeout = Some(t);
        }
        Ok(())
    }

    /// The underlying socket (legacy data connections need its addresses).
    pub(super) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "login deadline passed",
                ));
            }
            self.set_timeout(left.max(Duration::from_millis(1)))?;
            // before login, answer every segment at once: a client that sends its mode
            // and its credentials in two small writes with Nagle on waits for this ACK
            // before the second leaves (best effort: a socket without it still works)
            let _ = crate::sys::quick_ack(self.tcp.as_fd());
        }
        self.tcp.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(io::ErrorKind::TimedOut, "timed out")
            } else {
                e
            }
        })
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A TLS stream to a client.
pub(super) type Tls = StreamOwned<ServerConnection, Transport>;

/// Serves one connection to its end. Never panics on network input; every way it
/// ends is logged.
pub(super) fn handle(tcp: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, busy: &AtomicBool) {
    let log = &shared.log;
    let started = Instant::now();
    log.log(Level::Debug, Some(peer), None, format_args!("connect"));
    let mut stream = match handshake(tcp, shared) {
        Ok(s) => s,
        Err(e) => {
            log.log(
                Level::Info,
                Some(peer),
                None,
                format_args!("tls handshake failed: {e}"),
            );
            return;
        }
    };
    let native = stream.conn.alpn_protocol() == Some(crate::protocol::ALPN);
    let result = if native {
        super::native::serve(&mut stream, peer, shared, busy)
    } else if shared.config.legacy {
        super::legacy::serve(&mut stream, peer, shared, busy)
    } else {
        log.log(
            Level::Info,
            Some(peer),
            None,
            format_args!("refused: no ALPN and --no-legacy"),
        );
        return;
    };
    let user = result.user.as_deref();
    match result.error {
        None => log.log(
            Level::Info,
            Some(peer),
            user,
            format_args!("disconnect after {:.1?}", started.elapsed()),
        ),
        Some(e) => log.log(
            Level::Info,
            Some(peer),
            user,
            format_args!("disconnect after {:.1?}: {e}", started.elapsed()),
        ),
    }
    // best effort: Python peers do not send close_notify and do not expect one either,
    // but fos clients read it as a clean end
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

/// How a served connection ended.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Who was logged in, if anyone.
    pub user: Option<String>,
    /// Why it ended, if not cleanly.
    pub error: Option<String>,
}

fn handshake(tcp: TcpStream, shared: &Shared) -> io::Result<Tls> {
    let cfg = &shared.config;
    let now = Instant::now();
    let login_deadline = now + cfg.login_timeout;
    let mut transport = Transport::new(tcp, (now + cfg.handshake_timeout).min(login_deadline))?;
    let mut conn = ServerConnection::new(Arc::clone(&shared.tls)).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        let (read, wrote) = conn.complete_io(&mut transport)?;
        if read == 0 && wrote == 0 && conn.is_handshaking() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during handshake",
            ));
        }
    }
    transport.deadline = Some(login_deadline);
    Ok(StreamOwned::new(conn, transport))
}

/// Why a login was refused.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Wrong user or password.
    Invalid,
    /// Locked out for this long.
    Throttled(Duration),
    /// Session limits reached.
    Busy,
    /// The user's storage could not be opened.
    Storage,
}

/// The login check both protocols use: lock-out, limits, password (with at most one
/// check per core at once), then the user's storage.
pub(super) fn login(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    user: &str,
    password: &str,
) -> Result<Session, Refusal> {
    let log = &shared.log;
    let shown = escape(user);
    if let Some(left) = shared.throttle.locked(peer.ip()) {
        log.log(
            Level::Warn,
            Some(peer),
            None,
            format_args!(
                "login refused for {shown:?}: locked out for {}s more",
                left.as_secs() + 1
            ),
        );
        return Err(Refusal::Throttled(left));
    }
    let (all, from_ip) = shared.load(peer.ip());
    // the counts include this connection
    if all > shared.config.max_sessions || from_ip > shared.config.max_sessions_per_ip {
        log.log(Level::Warn, Some(peer), None, format_args!("login refused for {shown:?}: server busy ({all} sessions, {from_ip} from this address)"));
        return Err(Refusal::Busy);
    }
    let ok = {
        let _permit = shared.logins.acquire();
        shared.users.verify(user, password)
    };
    if !ok {
        log.log(
            Level::Warn,
            Some(peer),
            None,
            format_args!("login failed for {shown:?}"),
        );
        if let Some(lockout) = shared.throttle.failed(peer.ip()) {
            log.log(
                Level::Warn,
                Some(peer),
                None,
                format_args!(
                    "too many failed logins: locked out for {}s",
                    lockout.as_secs()
                ),
            );
        }
        return Err(Refusal::Invalid);
    }
    shared.throttle.succeeded(peer.ip());
    match Session::open(Arc::clone(shared), user) {
        Ok(s) => {
            log.log(
                Level::Info,
                Some(peer),
                Some(user),
                format_args!("login ok"),
            );
            Ok(s)
        }
        Err(f) => {
            let detail = match &f {
                Failure::Sandbox(e) => e.to_string(),
                other => describe(other).1,
            };
            log.log(
                Level::Error,
                Some(peer),
                Some(user),
                format_args!("cannot open storage: {detail}"),
            );
            Err(Refusal::Storage)
        }
    }
}
