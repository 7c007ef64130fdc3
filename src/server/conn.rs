//! One connection: TLS handshake and login under one deadline, then the protocol the
//! client negotiated. Also the password checks both protocols share: login, and
//! `passwd`'s check of the current password, both throttled the same way.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::Shared;
use super::limits::Lockout;
use super::session::{Error, Session};
use crate::auth;
use crate::log::{Level, escape};
use crate::protocol::ErrorCode;

/// A stalled reader holds a thread at most this long per write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a password check outside the login phase (`passwd`) may wait for the
/// checks in flight before it (see `Throttle::begin`).
const CHECK_PATIENCE: Duration = Duration::from_secs(10);

/// How often a watched transfer ([`Watch`]) looks for a takeover request.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What a running resumable upload watches besides its data: a resume elsewhere
/// asking for its partial, and a client silent for too long. Either ends the
/// upload with an error that keeps the partial for the resume.
#[derive(Debug)]
pub(super) struct Watch {
    /// Asked about once a second, whether data flows or not.
    pub(super) takeover: crate::sandbox::TakeoverWatch,
    /// The longest silence between reads.
    pub(super) idle: Duration,
}

/// The TCP stream under TLS, with an overall deadline for the login phase: each read
/// gets only the time left, so a byte-a-second sender cannot stretch the handshake.
#[derive(Debug)]
pub(super) struct Transport {
    // a failed write sticks (see `crate::socket`): a client that stops reading holds
    // this thread for one write timeout, not two
    tcp: crate::socket::Socket,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    /// A logged-in session's read timeout.
    idle: Option<Duration>,
    /// Set while a resumable upload runs.
    watch: Option<Watch>,
    last_watch: Instant,
    /// The connection's id in the server's registry.
    id: u64,
    peer: SocketAddr,
}

impl Transport {
    fn new(tcp: TcpStream, id: u64, peer: SocketAddr, deadline: Instant) -> io::Result<Transport> {
        tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        Ok(Transport {
            tcp: tcp.into(),
            deadline: Some(deadline),
            timeout: None,
            idle: None,
            watch: None,
            last_watch: Instant::now(),
            id,
            peer,
        })
    }

    /// Ends the login phase: from now on each read may wait `idle`.
    pub(super) fn logged_in(&mut self, idle: Duration) -> io::Result<()> {
        self.deadline = None;
        self.idle = Some(idle);
        self.set_timeout(idle)
    }

    /// Starts (`Some`) or ends (`None`) watching a resumable upload.
    pub(super) fn watch(&mut self, watch: Option<Watch>) -> io::Result<()> {
        self.watch = watch;
        self.last_watch = Instant::now();
        match self.idle {
            Some(idle) if self.watch.is_none() => self.set_timeout(idle),
            _ => Ok(()),
        }
    }

    /// A read during a watched upload: waits in steps of [`WATCH_EVERY`], asking for
    /// a takeover between them, and gives up after the watch's idle time. The socket
    /// is read only when it has data, below TLS, so a step that times out loses
    /// nothing.
    fn read_watched(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            let Some(w) = &self.watch else {
                return self.tcp.read(buf);
            };
            if self.last_watch.elapsed() >= WATCH_EVERY {
                self.last_watch = Instant::now();
                if w.takeover.requested() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "a resume of this upload elsewhere took its partial over",
                    ));
                }
            }
            let left = w.idle.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing during an upload; its partial is kept",
                ));
            }
            let step = left.min(WATCH_EVERY).max(Duration::from_millis(1));
            self.set_timeout(step)?;
            match self.tcp.read(buf) {
                Err(e) if crate::ioerror::is_timeout(&e) => {}
                other => return other,
            }
        }
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
        if self.watch.is_some() {
            return self.read_watched(buf);
        }
        self.tcp.read(buf).map_err(crate::ioerror::timed_out)
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
pub(super) type ServerTls = StreamOwned<ServerConnection, Transport>;

/// Serves connection `id` to its end. Never panics on network input; every way it
/// ends is logged.
pub(super) fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: &Arc<Shared>,
    busy: &AtomicBool,
) {
    let log = &shared.log;
    let started = Instant::now();
    log.log(Level::Debug, Some(peer), None, format_args!("connect"));
    let mut stream = match handshake(tcp, id, peer, shared) {
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

fn handshake(tcp: TcpStream, id: u64, peer: SocketAddr, shared: &Shared) -> io::Result<ServerTls> {
    let cfg = &shared.config;
    let now = Instant::now();
    let login_deadline = now + cfg.login_timeout;
    let handshake_deadline = (now + cfg.handshake_timeout).min(login_deadline);
    let mut transport = Transport::new(tcp, id, peer, handshake_deadline)?;
    let mut conn = ServerConnection::new(Arc::clone(&shared.tls)).map_err(io::Error::other)?;
    crate::tls::complete_handshake(&mut conn, &mut transport)?;
    transport.deadline = Some(login_deadline);
    Ok(StreamOwned::new(conn, transport))
}

/// The login check both protocols use: lock-out, limits, password (with at most one
/// check per core at once), then the user's storage. The throttle counts the check
/// before the password is verified, so parallel guesses cannot pass the limit; the
/// session limits are checked again and taken in one step once it is right.
pub(super) fn login(
    shared: &Arc<Shared>,
    sock: &Transport,
    user: &str,
    password: &str,
) -> Result<Session, Error> {
    let log = &shared.log;
    let peer = sock.peer;
    let shown = escape(user);
    // a check may wait for those in flight as long as the login phase lasts
    let patience = sock
        .deadline
        .unwrap_or_else(|| Instant::now() + CHECK_PATIENCE);
    let attempt = match shared.throttle.begin(peer.ip(), user, patience) {
        Ok(a) => a,
        Err(left) => {
            log.log(
                Level::Warn,
                Some(peer),
                None,
                format_args!(
                    "login refused for {shown:?}: locked out for {}s more",
                    left.as_secs() + 1
                ),
            );
            return Err(Error::Throttled(left));
        }
    };
    let busy = |(all, from_ip): (usize, usize)| {
        log.log(Level::Warn, Some(peer), None, format_args!("login refused for {shown:?}: server busy ({all} sessions, {from_ip} from this address)"));
        Error::Busy
    };
    // a full server spends no password check (the attempt is dropped uncounted)
    let (all, from_ip) = shared.sessions(peer.ip());
    if all >= shared.config.max_sessions || from_ip >= shared.config.max_sessions_per_ip {
        return Err(busy((all, from_ip)));
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
        if let Some(lockout) = attempt.failed() {
            log_lockout(shared, peer, &shown, lockout);
        }
        return Err(Error::BadCredentials);
    }
    attempt.succeeded();
    shared.promote(sock.id).map_err(busy)?;
    match Session::open(Arc::clone(shared), user, peer) {
        Ok(s) => {
            log.log(
                Level::Info,
                Some(peer),
                Some(user),
                format_args!("login ok"),
            );
            Ok(s)
        }
        Err(e) => {
            log.log(
                Level::Error,
                Some(peer),
                Some(user),
                format_args!("cannot open storage: {e}"),
            );
            Err(Error::Storage)
        }
    }
}

fn log_lockout(shared: &Shared, peer: SocketAddr, shown: &str, lockout: Lockout) {
    let who = if lockout.address {
        "this address".to_string()
    } else {
        format!("{shown:?} from this address")
    };
    shared.log.log(
        Level::Warn,
        Some(peer),
        None,
        format_args!(
            "too many failed password checks: {who} locked out for {}s",
            lockout.length.as_secs()
        ),
    );
}

/// `passwd` for a logged-in `user`: the check of the current password is throttled
/// and bounded like a login (same counts: guesses here count against logins too).
/// The reply never names a server path; the log has the details.
pub(super) fn change_password(
    shared: &Shared,
    peer: SocketAddr,
    user: &str,
    old: &str,
    new: &str,
) -> Result<(), Error> {
    let log = &shared.log;
    let patience = Instant::now() + CHECK_PATIENCE;
    let attempt = shared
        .throttle
        .begin(peer.ip(), user, patience)
        .map_err(|left| {
            log.log(
                Level::Warn,
                Some(peer),
                Some(user),
                format_args!(
                    "passwd refused: locked out for {}s more",
                    left.as_secs() + 1
                ),
            );
            Error::Refused(
                ErrorCode::Throttled,
                format!(
                    "too many wrong passwords; try again in {} s",
                    left.as_secs() + 1
                ),
            )
        })?;
    let changed = {
        let _permit = shared.logins.acquire();
        shared.users.change_password(user, old, new)
    };
    match changed {
        Ok(true) => {
            attempt.succeeded();
            log.log(
                Level::Info,
                Some(peer),
                Some(user),
                format_args!("password changed"),
            );
            Ok(())
        }
        Ok(false) => {
            log.log(
                Level::Warn,
                Some(peer),
                Some(user),
                format_args!("passwd: wrong current password"),
            );
            if let Some(lockout) = attempt.failed() {
                log_lockout(shared, peer, &escape(user), lockout);
            }
            Err(Error::Refused(
                ErrorCode::Auth,
                "the current password is wrong".into(),
            ))
        }
        Err(e) => {
            // the current password was right: only the change itself failed
            attempt.succeeded();
            log.log(
                Level::Error,
                Some(peer),
                Some(user),
                format_args!("passwd: {e}"),
            );
            Err(match e {
                auth::Error::Io(..) => Error::Refused(
                    ErrorCode::Io,
                    "the server could not update its users file".into(),
                ),
                auth::Error::BadPassword(_) | auth::Error::BadUsername(_) => {
                    Error::Refused(ErrorCode::Invalid, e.to_string())
                }
                auth::Error::NotRewritable(_) => {
                    Error::Refused(ErrorCode::Unsupported, e.to_string())
                }
            })
        }
    }
}
