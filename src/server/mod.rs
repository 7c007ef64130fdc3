//! The fos server: binds the session port (5001) and the discovery port (5003),
//! accepts connections and serves each on a thread of its own (no worker pool, so the
//! N+1th logged-in client never waits for a slot).
//!
//! Connections that have not logged in yet are capped per address and in total, apart
//! from sessions (`registry`): a flood from one address gets its few places and a
//! small waiting room, the rest of it is closed at accept, and other addresses and
//! logged-in sessions keep their room.
//!
//! Each connection gets a TLS handshake and login under one deadline, then speaks
//! the native protocol if it negotiated ALPN `fos/1` (`native`) or the Python tool's
//! protocol otherwise (`legacy`). Both ports accept both, as the Python server does.
//!
//! Shutdown ([`ShutdownHandle`]): stop accepting at once, close idle sessions, let
//! commands in flight finish within the grace period, then cut the rest.

pub mod app;
mod blockcache;
mod conn;
mod delta;
mod download;
mod hashcache;
mod legacy;
mod limits;
mod manifest;
mod native;
mod registry;
mod running;
mod session;
mod shared_records;
mod sweeper;
mod syncops;
mod upload;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::auth::UserStore;
use crate::log::{Level, Logger};

pub use limits::Throttle;
use registry::{Admitted, Refused};

/// Server settings. Every field's default is the one the `fos-server` flags document.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. Defaults to 127.0.0.1 (the binary asks or picks otherwise).
    pub bind: IpAddr,
    /// Session port. Defaults to 5001.
    pub port: u16,
    /// Discovery port. Defaults to 5003.
    pub greet_port: u16,
    /// Listen on the discovery port at all. Defaults to true.
    pub discovery: bool,
    /// Serve clients that negotiate no ALPN (the Python client). Defaults to true.
    pub legacy: bool,
    /// Storage root; each user works in `<root>/<user>`. Defaults to `./server_storage`.
    pub root: PathBuf,
    /// Users file. Defaults to `./user_credentials.txt`.
    pub users: PathBuf,
    /// Certificate chain (PEM). Defaults to `certs/cert.pem`.
    pub cert: PathBuf,
    /// Private key (PEM). Defaults to `certs/key.pem`.
    pub key: PathBuf,
    /// Name announced to discovery. Defaults to the host name.
    pub name: String,
    /// The cluster this server belongs to (`--cluster`): servers over one shared
    /// storage announce one cluster name, and clients that find several members use
    /// them as one, moving to another when theirs fails. Defaults to none.
    pub cluster: Option<String>,
    /// Most sessions at once. Defaults to 512.
    pub max_sessions: usize,
    /// Most sessions from one address. Defaults to 32.
    pub max_sessions_per_ip: usize,
    /// Most connections from one address that have not logged in yet (TLS handshake,
    /// hello, login). Beyond it the address's new connections are closed at once.
    /// Defaults to 8.
    pub max_prelogin_per_ip: usize,
    /// Most connections that have not logged in yet, all addresses together. They
    /// count apart from sessions, so however many there are, logged-in sessions keep
    /// their room. Defaults to 128.
    pub max_prelogin: usize,
    /// Largest upload, bytes. Defaults to none.
    pub max_file_size: Option<u64>,
    /// Per-user storage quota, bytes. Defaults to none.
    pub quota: Option<u64>,
    /// TLS handshake timeout. Defaults to 10 s.
    pub handshake_timeout: Duration,
    /// One deadline for handshake plus login. Defaults to 15 s.
    pub login_timeout: Duration,
    /// A logged-in session with no request for this long is closed. Defaults to 15 min.
    pub idle_timeout: Duration,
    /// A resumable upload whose client sends nothing for this long is cut, and its
    /// partial kept for a resume (through this server or another on the storage).
    /// Defaults to 60 s.
    pub transfer_timeout: Duration,
    /// fsync uploads (file, then directory) before acknowledging. Defaults to true.
    pub fsync: bool,
    /// How long running commands may finish after SIGINT/SIGTERM. Defaults to 30 s.
    pub shutdown_grace: Duration,
    /// First lock-out after too many failed logins (doubles, capped at 15 min).
    /// Defaults to 60 s.
    pub throttle_base: Duration,
    /// Interrupted uploads kept for a resume are removed after this long untouched
    /// (checked at start-up and every [`ServerConfig::sweep_every`], by one server of
    /// those sharing the storage). Defaults to one day.
    pub partial_max_age: Duration,
    /// How often the server elected among those sharing the storage looks for stale
    /// partial uploads (no flag). Defaults to one hour.
    pub sweep_every: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5001,
            greet_port: 5003,
            discovery: true,
            legacy: true,
            root: PathBuf::from("server_storage"),
            users: PathBuf::from("user_credentials.txt"),
            cert: PathBuf::from("certs/cert.pem"),
            key: PathBuf::from("certs/key.pem"),
            name: crate::sys::hostname().unwrap_or_else(|| "fos".into()),
            cluster: None,
            max_sessions: 512,
            max_sessions_per_ip: 32,
            max_prelogin_per_ip: 8,
            max_prelogin: 128,
            max_file_size: None,
            quota: None,
            handshake_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(15 * 60),
            transfer_timeout: Duration::from_secs(60),
            fsync: true,
            shutdown_grace: Duration::from_secs(30),
            throttle_base: Duration::from_secs(60),
            partial_max_age: Duration::from_secs(24 * 3600),
            sweep_every: Duration::from_secs(3600),
        }
    }
}

/// Errors that stop the server from starting.
#[derive(Debug)]
pub enum Error {
    /// Certificate or key problem.
    Tls(crate::tls::Error),
    /// Users file problem.
    Auth(crate::auth::Error),
    /// Binding a port failed.
    Bind(SocketAddr, io::Error),
    /// The storage root cannot be created.
    Storage(PathBuf, io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tls(e) => write!(f, "{e}"),
            Error::Auth(e) => write!(f, "{e}"),
            Error::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Error::Storage(p, e) => write!(f, "storage root {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::tls::Error> for Error {
    fn from(e: crate::tls::Error) -> Self {
        Error::Tls(e)
    }
}

impl From<crate::auth::Error> for Error {
    fn from(e: crate::auth::Error) -> Self {
        Error::Auth(e)
    }
}

/// The directory of the storage root where the servers sharing it keep their login
/// throttle's records (a user name never starts with a dot).
const THROTTLE_DIR: &str = ".fos-throttle";

/// Most data sockets lingering for their peer's close at once (see `linger`).
const LINGER_MAX: usize = 1024;
/// How long a finished data socket waits for its peer's close, on the linger thread:
/// short, since the server's own work is done and the socket only guards the peer's
/// unread data against a reset.
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by every connection thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    /// For the legacy one-shot data connections: no session tickets, because the
    /// Python client closes them without reading, and unread tickets turn its close
    /// into a reset that can cut the end of an upload.
    pub(crate) tls_data: Arc<rustls::ServerConfig>,
    pub(crate) users: UserStore,
    pub(crate) log: Arc<Logger>,
    pub(crate) throttle: Throttle,
    pub(crate) logins: limits::Semaphore,
    /// Resumable uploads in progress, so a resume can take over from a dead connection.
    pub(crate) uploads: running::UploadRegistry,
    /// Sockets whose last bytes are sent, kept open until their peer closes.
    pub(crate) linger: Arc<crate::linger::Linger>,
    shutdown: AtomicBool,
    /// The live connections and their limits.
    conns: registry::Registry,
    /// The session port (5001 unless configured), for discovery replies; not the
    /// legacy protocol's one-shot data port.
    pub(crate) session_port: u16,
    /// This server as the partials it writes record their holder: its name, address
    /// and process (see `Sandbox::with_holder`).
    pub(crate) holder: String,
}

impl Shared {
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Logged-in sessions now: (all, from this address).
    pub(crate) fn sessions(&self, ip: IpAddr) -> registry::Counts {
        self.conns.sessions(ip)
    }

    /// Turns connection `id` into a session if the session limits leave room (checked
    /// and taken in one step); otherwise returns the session counts that refused it.
    pub(crate) fn promote(&self, id: u64) -> Result<(), registry::Counts> {
        self.conns.promote(id)
    }
}

/// A connection's place in the registry, given back when this is dropped: when its
/// thread returns, when it panics (unwinding drops it), or when no thread could be
/// started for it. Without it a panicking connection would hold its slot for good.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let peer = self.shared.conns.remove(self.id);
        if thread::panicking() {
            self.shared.log.log(
                Level::Error,
                peer,
                None,
                format_args!("connection thread panicked; its slot is released"),
            );
        }
    }
}

/// A bound server, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    /// The session port's listener.
    session: TcpListener,
    greet: Option<TcpListener>,
}

/// Stops a running server from another thread (signal handler thread, tests).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wake: Vec<SocketAddr>,
}

impl ShutdownHandle {
    /// Begins a graceful shutdown; [`Server::run`] returns once it is complete.
    pub fn shutdown(&self) {
        if self.shared.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        // wake the blocking accept() calls so they see the flag
        for addr in &self.wake {
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
    }
}

impl Server {
    /// Loads the certificate, key and users, creates the storage root and binds the
    /// ports. Nothing is served until [`Server::run`].
    pub fn bind(config: ServerConfig, log: Arc<Logger>) -> Result<Server, Error> {
        let certs = crate::tls::load_certs(&config.cert)?;
        // what clients that trust on first use are shown: they can compare it with this
        log.info(format_args!(
            "certificate SHA-256 fingerprint {}",
            crate::x509::fingerprint(&certs[0])
        ));
        let key = crate::tls::load_key(&config.key)?;
        let tls = crate::tls::server_config(certs, key, &config.cert)?;
        let users = UserStore::open(&config.users)?;
        {
            let current = users.current();
            for w in &current.warnings {
                log.warn(format_args!("{}: {w}", config.users.display()));
            }
            let plain = current.plain_text_users();
            if !plain.is_empty() {
                log.warn(format_args!(
                    "plain-text passwords for: {} (hash them with `fos-server passwd USER`)",
                    plain.join(", ")
                ));
            }
            if current.is_empty() {
                log.warn(format_args!(
                    "{}: no users: nobody can log in",
                    config.users.display()
                ));
            }
        }
        std::fs::create_dir_all(&config.root)
            .map_err(|e| Error::Storage(config.root.clone(), e))?;
        let bind = |port| {
            let addr = SocketAddr::new(config.bind, port);
            TcpListener::bind(addr).map_err(|e| Error::Bind(addr, e))
        };
        let session = bind(config.port)?;
        let greet = if config.discovery {
            Some(bind(config.greet_port)?)
        } else {
            None
        };
        let session_port = session
            .local_addr()
            .map_err(|e| Error::Bind(SocketAddr::new(config.bind, config.port), e))?
            .port();
        let holder = format!(
            "{} at {}, pid {}",
            config.name,
            SocketAddr::new(config.bind, session_port),
            std::process::id()
        );
        let logins = limits::Semaphore::new(thread::available_parallelism().map_or(2, |n| n.get()));
        let throttle = Throttle::shared(
            config.throttle_base,
            &config.root.join(THROTTLE_DIR),
            Arc::clone(&log),
        );
        let mut data_tls = (*tls).clone();
        data_tls.send_tls13_tickets = 0;
        let conns = registry::Registry::new(registry::Limits::new(&config));
        let shared = Arc::new(Shared {
            config,
            tls,
            tls_data: Arc::new(data_tls),
            users,
            log,
            throttle,
            logins,
            uploads: running::UploadRegistry::default(),
            linger: Arc::new(crate::linger::Linger::new(LINGER_MAX, LINGER_TIMEOUT)),
            shutdown: AtomicBool::new(false),
            conns,
            session_port,
            holder,
        });
        Ok(Server {
            shared,
            session,
            greet,
        })
    }

    /// The session listener's address (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.session.local_addr()
    }

    /// The discovery listener's address, if discovery is on.
    pub fn greet_addr(&self) -> Option<SocketAddr> {
        self.greet.as_ref().and_then(|g| g.local_addr().ok())
    }

    /// A handle that stops [`Server::run`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        let mut wake = vec![];
        wake.extend(self.local_addr().ok());
        wake.extend(self.greet_addr());
        let wake = wake.into_iter().map(wake_addr).collect();
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
            wake,
        }
    }

    /// Serves until shut down, then drains sessions within the grace period.
    pub fn run(self) -> io::Result<()> {
        let Server {
            shared,
            session,
            greet,
        } = self;
        let greet_thread = greet.map(|g| {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("greet-accept".into())
                .spawn(move || accept_loop(g, &shared))
        });
        let greet_thread = greet_thread.transpose()?;
        let sweeper = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("partials".into())
                .spawn(move || sweep_partials(&shared))?
        };
        accept_loop(session, &shared);
        if let Some(t) = greet_thread {
            let _ = t.join();
        }
        drain(&shared);
        let _ = sweeper.join();
        Ok(())
    }
}

/// Removes stale partial uploads at start-up and then every `sweep_every`, until
/// shutdown, while this server is the one elected to sweep the storage (see
/// [`sweeper`]).
fn sweep_partials(shared: &Shared) {
    let cfg = &shared.config;
    let log = &shared.log;
    let mut sweeper = sweeper::Sweeper::new(&cfg.root, &shared.holder, cfg.sweep_every);
    let mut failing = false;
    while !shared.shutting_down() {
        let tick = sweeper.tick(|| {
            let n = crate::sandbox::remove_stale_partials(&cfg.root, cfg.partial_max_age);
            if n > 0 {
                log.info(format_args!("removed {n} stale partial upload file(s)"));
            }
        });
        match tick {
            Ok(sweeper::Tick::Elected(_)) => log.info(format_args!(
                "this server sweeps stale partial uploads for every server on this storage"
            )),
            Ok(_) => failing = false,
            Err(e) if !failing => {
                failing = true;
                log.warn(format_args!("stale partial sweep: {e}"));
            }
            Err(_) => {}
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Where to connect to wake a listener bound to `addr` (an unspecified address is
/// reached through loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Pause after an accept error (EMFILE and the like) instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning about refused connections this often (a flood must not become
/// a flood of log lines).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What serves one accepted connection on its thread.
type Handler = fn(TcpStream, SocketAddr, u64, &Arc<Shared>, &AtomicBool);

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    serve_accepted(listener, shared, conn::handle);
}

/// Accepts connections until shutdown: each one the pre-login limits admit is
/// registered and served by `handler` on a thread of its own; the others are closed
/// at once, before the TLS handshake, so they cost neither a thread nor memory.
fn serve_accepted(listener: TcpListener, shared: &Arc<Shared>, handler: Handler) {
    let log = &shared.log;
    let mut refused = 0u64;
    let mut last_warning: Option<Instant> = None;
    for stream in listener.incoming() {
        if shared.shutting_down() {
            break;
        }
        let tcp = match stream {
            Ok(tcp) => tcp,
            Err(e) => {
                log.warn(format_args!("accept: {e}"));
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        let Ok(peer) = tcp.peer_addr() else { continue };
        let busy = Arc::new(AtomicBool::new(false));
        let admitted = match shared.conns.admit(&tcp, peer, &busy) {
            Ok(a) => a,
            Err(Refused::Full { prelogin, waiting }) => {
                refused += 1;
                log.log(
                    Level::Debug,
                    Some(peer),
                    None,
                    format_args!(
                        "closed: no room before login ({}/{} from this address, {}/{} in all)",
                        prelogin.1 + waiting.1,
                        shared.config.max_prelogin_per_ip,
                        prelogin.0 + waiting.0,
                        shared.config.max_prelogin
                    ),
                );
                if last_warning.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                    log.log(
                        Level::Warn,
                        Some(peer),
                        None,
                        format_args!(
                            "closed {refused} connection(s) for which there was no room before login \
                             (--max-prelogin-per-ip {}, --max-prelogin {}); the latest from this address",
                            shared.config.max_prelogin_per_ip, shared.config.max_prelogin
                        ),
                    );
                    last_warning = Some(Instant::now());
                    refused = 0;
                }
                continue;
            }
            Err(Refused::Io(e)) => {
                log.warn(format_args!("accept: {e}"));
                continue;
            }
        };
        let slot = Slot {
            shared: Arc::clone(shared),
            id: admitted.id(),
        };
        let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
            // the whole slot lives in this closure: it is given back however it ends
            let slot = slot;
            let shared = &slot.shared;
            if let Admitted::Waiting(id) = admitted {
                let cfg = &shared.config;
                let deadline = Instant::now() + cfg.handshake_timeout.min(cfg.login_timeout);
                if !shared.conns.wait_turn(id, deadline, &shared.shutdown) {
                    shared.log.log(
                        Level::Debug,
                        Some(peer),
                        None,
                        format_args!("closed: no room before login within the handshake timeout"),
                    );
                    return;
                }
            }
            handler(tcp, peer, slot.id, shared, &busy);
        });
        // no thread to be had: this client is dropped (its slot with the closure), the
        // server carries on
        if let Err(e) = spawned {
            log.warn(format_args!("spawn: {e}"));
        }
    }
}

/// After accepting stopped: close idle sessions now, give busy ones the grace
/// period, then cut whatever is left.
fn drain(shared: &Shared) {
    let log = &shared.log;
    shared.conns.wake_all();
    let open = shared.conns.close_idle();
    if open > 0 {
        log.info(format_args!(
            "shutdown: waiting up to {:?} for {open} connection(s)",
            shared.config.shutdown_grace
        ));
    }
    let deadline = Instant::now() + shared.config.shutdown_grace;
    while Instant::now() < deadline {
        if shared.conns.close_idle() == 0 {
            log.info(format_args!("shutdown: all connections finished"));
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    for peer in shared.conns.cut_all() {
        log.log(
            Level::Warn,
            Some(peer),
            None,
            format_args!("shutdown: cut after the grace period"),
        );
    }
    // the cut connections fail their next read or write at once; give their threads a
    // moment to clean up (remove partial uploads) before the process exits under them
    let deadline = Instant::now() + CUT_CLEANUP;
    while Instant::now() < deadline && !shared.conns.is_empty() {
        thread::sleep(Duration::from_millis(20));
    }
}

/// How long cut connections get to clean up before the server exits.
const CUT_CLEANUP: Duration = Duration::from_secs(2);

/// Parses a byte size with an optional binary suffix: `500`, `64K`, `10M`, `2G`, `1T`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        (i, 't' | 'T') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Without `--bind`, behaves like the Python server: offers this host's non-loopback
/// IPv4 addresses and uses the only one, or asks which on a terminal. With several and
/// no terminal, fails with a message that lists them.
pub fn choose_bind_address() -> Result<IpAddr, crate::Error> {
    use std::io::IsTerminal;
    let addrs: Vec<_> = crate::sys::interfaces()?
        .into_iter()
        .filter(|i| !i.loopback)
        .collect();
    let list = || {
        addrs
            .iter()
            .map(|i| format!("{} ({})", i.addr, i.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match addrs.len() {
        0 => Err(crate::Error::Usage(
            "this host has no non-loopback IPv4 address; use --bind 127.0.0.1 for local use".into(),
        )),
        1 => Ok(IpAddr::V4(addrs[0].addr)),
        _ if !std::io::stdin().is_terminal() => Err(crate::Error::Usage(format!(
            "several addresses to listen on: {}; choose one with --bind",
            list()
        ))),
        _ => {
            println!("Addresses of this host:");
            for (n, i) in addrs.iter().enumerate() {
                println!("  {}) {} ({})", n + 1, i.addr, i.name);
            }
            let i = crate::term::choose_number(
                &mut std::io::stdout(),
                &mut std::io::stdin().lock(),
                "Listen on which one?",
                addrs.len(),
            )?
            .ok_or_else(|| crate::Error::Usage("no address chosen".into()))?;
            Ok(IpAddr::V4(addrs[i - 1].addr))
        }
    }
}

/// The certificate shipped in the repository for demos: its key is public.
const DEMO_CERT: &[u8] = include_bytes!("../../certs/cert.pem");

/// Start-up warnings an administrator should see: the public demo key served beyond
/// loopback, and a key or users file that other users can read.
pub fn startup_warnings(cfg: &ServerConfig, log: &Logger) {
    use std::os::unix::fs::PermissionsExt;
    if !cfg.bind.is_loopback() && std::fs::read(&cfg.cert).is_ok_and(|c| c == DEMO_CERT) {
        log.warn(format_args!(
            "serving the repository's demo certificate on {}: its private key is public; run `make certs` for a real deployment",
            cfg.bind
        ));
    }
    for (what, path) in [("private key", &cfg.key), ("users file", &cfg.users)] {
        if let Ok(md) = std::fs::metadata(path)
            && md.permissions().mode() & 0o044 != 0
        {
            log.warn(format_args!(
                "{what} {} is readable by other users (chmod 600 it)",
                path.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handler calls so far, for the panic test.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn panics(_: TcpStream, _: SocketAddr, _: u64, _: &Arc<Shared>, _: &AtomicBool) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        panic!("a bug in a connection handler (this panic is the test)");
    }

    #[test]
    fn a_panicking_connection_gives_its_place_back() {
        use std::io::Read;
        let t = crate::testutil::TempDir::new();
        std::fs::write(t.path().join("users"), "u:p\n").unwrap();
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let cfg = ServerConfig {
            port: 0,
            discovery: false,
            root: t.path().join("storage"),
            users: t.path().join("users"),
            cert: data.join("cert.pem"),
            key: data.join("key.pem"),
            name: "t".into(),
            // two places, and a short wait for one: a leaked place shows at once
            max_prelogin_per_ip: 2,
            max_prelogin: 2,
            handshake_timeout: Duration::from_millis(300),
            ..ServerConfig::default()
        };
        let server = Server::bind(cfg, Arc::new(Logger::silent())).unwrap();
        let addr = server.local_addr().unwrap();
        let shared = Arc::clone(&server.shared);
        let Server {
            session: listener, ..
        } = server;
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || serve_accepted(listener, &shared, panics))
        };
        for n in 1..=6 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // the server closes its end once the thread is gone (the registry's copy of
            // the socket included)
            let got = c.read(&mut [0u8; 1]);
            assert!(
                matches!(got, Ok(0))
                    || got
                        .as_ref()
                        .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
                "connection {n} was not closed: {got:?}"
            );
        }
        assert_eq!(
            CALLS.load(Ordering::SeqCst),
            6,
            "every connection got a place"
        );
        assert!(shared.conns.is_empty());
        shared.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(addr);
        acceptor.join().unwrap();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500"), Some(500));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
