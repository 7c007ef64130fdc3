//! The fos client library: connect (TLS with a pinned certificate or CA
//! verification), log in, and run commands against a fos server (native protocol) or
//! a Python server (legacy protocol), behind one interface, [`Remote`].
//!
//! The interactive prompt and `-c` scripts live in [`shell`]; command-line parsing in
//! [`line`]. File transfers land atomically on both sides: downloads go to a partial
//! file beside the target and are renamed into place only when complete and verified.

pub mod app;
mod complete;
mod editor;
mod history;
pub mod legacy;
pub mod line;
pub mod local;
pub mod native;
pub use native::ClientTls;
mod progress;
mod prompt;
pub mod shell;
pub mod stream;
mod sync_cmd;
mod transfers;
pub mod trust;
mod width;

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::Error;
use crate::protocol::{Entry, ErrorCode, Request};
use crate::tls::{HandshakeFailed, Trust};
use crate::transfer;
use crate::writeback::WriteBehind;
use legacy::Legacy;
use local::{LocalPartial, LocalTarget};
use native::Native;

/// Default session port.
pub const DEFAULT_PORT: u16 = 5001;

/// Client settings; every default is the one `fos-client --help` documents.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Pinned server certificate. Defaults to `certs/cert.pem`.
    pub cert: PathBuf,
    /// Verify against CAs (webpki roots or `cafile`) with host name checking instead of
    /// pinning. Defaults to false.
    pub ca: bool,
    /// CA certificates for `--ca`. Defaults to the webpki roots.
    pub cafile: Option<PathBuf>,
    /// Name checked in `--ca` mode. Defaults to the host part of the address.
    pub server_name: Option<String>,
    /// Speak the Python tool's protocol even to a fos server. Defaults to false.
    pub legacy: bool,
    /// TCP connect and TLS handshake timeout. Defaults to 10 s.
    pub connect_timeout: Duration,
    /// Reply timeout once connected. Defaults to 60 s.
    pub io_timeout: Duration,
    /// fsync downloads before renaming them into place. Defaults to true.
    pub fsync: bool,
    /// Trust on first use: when set (and not `ca`), a server is trusted if its
    /// certificate has the fingerprint this file records for it (see [`trust`]),
    /// instead of the `cert` pin. Defaults to `None`.
    pub known_servers: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            cert: PathBuf::from("certs/cert.pem"),
            ca: false,
            cafile: None,
            server_name: None,
            legacy: false,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            fsync: true,
            known_servers: None,
        }
    }
}

impl ClientConfig {
    /// The trust settings this configuration describes, for any server (discovery:
    /// with `known_servers`, every certificate recorded there).
    pub fn trust(&self) -> Result<Trust, Error> {
        if self.ca {
            return Ok(Trust::ca(self.cafile.as_deref())?);
        }
        if let Some(path) = &self.known_servers {
            return Ok(Trust::Known(
                trust::KnownServers::load(path)?.fingerprints(),
            ));
        }
        let trust = Trust::pinned_file(&self.cert)?;
        Ok(trust)
    }

    /// The trust settings for the server `server` (`host[:port]`): with
    /// `known_servers`, only the certificate recorded for it, or for a server recorded
    /// under no name of its own (one found by discovery), any certificate recorded
    /// there.
    pub fn trust_for(&self, server: &str) -> Result<Trust, Error> {
        match &self.known_servers {
            Some(path) if !self.ca => {
                let key = trust::server_key(server)?;
                let known = trust::KnownServers::load(path)?;
                Ok(Trust::Known(match known.get(&key) {
                    Some(found) => vec![found.fingerprint.clone()],
                    None => known.fingerprints(),
                }))
            }
            _ => self.trust(),
        }
    }
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
pub fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), Error> {
    let bad = || {
        Error::Usage(format!(
            "invalid server address {s:?}: use HOST, HOST:PORT or [IPv6]:PORT"
        ))
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        return match after {
            "" => Ok((host.to_string(), default_port)),
            a => Ok((
                host.to_string(),
                port(a.strip_prefix(':').ok_or_else(bad)?)?,
            )),
        };
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((s.to_string(), default_port));
    }
    match s.rsplit_once(':') {
        Some((host, p)) if !host.is_empty() && !host.contains(':') => {
            Ok((host.to_string(), port(p)?))
        }
        None if !s.is_empty() => Ok((s.to_string(), default_port)),
        _ => Err(bad()),
    }
}

/// The addresses to try for `host`: what the resolver says, and for `localhost` both
/// loopback addresses, `::1` first, whatever `/etc/hosts` lists (many list only one,
/// and a server may listen on the other).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    if host.eq_ignore_ascii_case("localhost") {
        addrs.push(SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), port));
        addrs.push(SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port));
    }
    match (host, port).to_socket_addrs() {
        Ok(found) => addrs.extend(found),
        Err(_) if !addrs.is_empty() => {}
        Err(e) => return Err(Error::Connect(format!("cannot resolve {host}: {e}"))),
    }
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    Ok(addrs)
}

fn server_name_for(host: &str) -> Result<ServerName<'static>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::Usage(format!("invalid server name {host:?}")))
}

/// Connects TCP then TLS to `addr`, with friendly errors: a certificate that is not
/// the pinned one is an [`Error::Certificate`] naming its fingerprint.
pub fn tls_connect(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Result<ClientTls, Error> {
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
        Error::Connect(format!(
            "cannot connect to {addr}: {}",
            crate::error::io_text(&e)
        ))
    })?;
    handshake(tcp, tls, name, timeout)
}

/// Runs the TLS handshake on a connected socket.
pub fn handshake(
    mut tcp: TcpStream,
    tls: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Result<ClientTls, Error> {
    let addr = tcp.peer_addr()?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    tcp.set_nodelay(true)?;
    let mut conn = ClientConnection::new(tls, name).map_err(|e| Error::Connect(e.to_string()))?;
    match crate::tls::complete_handshake(&mut conn, &mut tcp) {
        Ok(()) => {}
        Err(HandshakeFailed::Closed) => {
            return Err(Error::Connect(format!(
                "{addr} closed the connection during the TLS handshake"
            )));
        }
        Err(HandshakeFailed::Io(e)) => {
            if let Some(fp) = crate::tls::pin_mismatch(&e) {
                return Err(Error::Certificate(format!(
                    "{addr}: the server's certificate is not the pinned one; refusing to connect \
                     (it presented SHA-256 fingerprint {fp})"
                )));
            }
            if crate::ioerror::is_timeout(&e) {
                return Err(Error::Connect(format!(
                    "TLS handshake with {addr} timed out after {} s (--timeout)",
                    timeout.as_secs_f64()
                )));
            }
            return Err(Error::Connect(format!(
                "TLS handshake with {addr} failed: {e}"
            )));
        }
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// A logged-in session with a fos server or a Python server.
#[derive(Debug)]
pub enum Remote {
    /// A fos server.
    Native(Native),
    /// A Python server.
    Legacy(Legacy),
}

/// What a finished transfer reports.
#[derive(Debug, Clone, Copy)]
pub struct TransferReport {
    /// Bytes moved in this transfer.
    pub bytes: u64,
    /// Whole file size.
    pub size: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl TransferReport {
    /// `12.0 MiB in 0.10 s (120.0 MiB/s)`.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        format!(
            "{} in {:.2} s ({}/s)",
            human_bytes(self.bytes),
            secs,
            human_bytes((self.bytes as f64 / secs) as u64)
        )
    }
}

/// Bytes in binary units (see [`crate::log::human_bytes`]).
pub fn human_bytes(n: u64) -> String {
    crate::log::human_bytes(n)
}

/// What `df` shows: the user's usage and the server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes used, as the quota counts them.
    pub used: u64,
    /// The quota, if the server has one.
    pub quota: Option<u64>,
    /// The largest upload, if the server limits it.
    pub max_file_size: Option<u64>,
}

/// Options of one transfer.
pub struct TransferOpts<'a> {
    /// Refuse to replace an existing file (`-n`).
    pub no_clobber: bool,
    /// Gets the byte count (and the total, when known) as data moves.
    pub progress: &'a dyn Fn(u64, u64),
    /// Polled between chunks; true cancels (Ctrl-C).
    pub cancel: &'a dyn Fn() -> bool,
    /// Continue an interrupted transfer of the same file (`reget`, `reput`, retries).
    pub resume: bool,
    /// Keep the permission bits exactly (`-p`): the receiver's umask and the mode of
    /// the file replaced do not narrow them.
    pub preserve: bool,
}

impl Default for TransferOpts<'_> {
    fn default() -> Self {
        TransferOpts {
            no_clobber: false,
            progress: &|_, _| {},
            cancel: &|| false,
            resume: false,
            preserve: false,
        }
    }
}

/// The servers of a `--server` list, `HOST[:PORT]` separated by commas (several
/// servers over one storage: a cluster).
pub fn server_list(servers: &str) -> Result<Vec<String>, Error> {
    let list: Vec<String> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(Error::Usage(format!(
            "invalid server address {servers:?}: use HOST, HOST:PORT or HOST,HOST"
        )));
    }
    for s in &list {
        split_host_port(s, DEFAULT_PORT)?;
    }
    Ok(list)
}

/// Which of `n` servers to try first: one at random, so that clients given the same
/// cluster spread over its members.
pub fn pick_first(n: usize) -> usize {
    let mut b = [0u8; 4];
    if n <= 1 || !crate::random::try_fill(&mut b) {
        return 0;
    }
    u32::from_le_bytes(b) as usize % n
}

impl Remote {
    /// Connects to `server` (`host[:port]`, or several separated by commas: see
    /// [`Remote::connect_from`], starting at one picked at random), negotiates the
    /// protocol and logs in.
    pub fn connect(
        cfg: &ClientConfig,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<Remote, Error> {
        let servers = server_list(server)?;
        let first = pick_first(servers.len());
        Remote::connect_from(cfg, &servers, first, user, password).map(|(r, _)| r)
    }

    /// Connects to one of `servers`, trying them in turn from `servers[first]` and
    /// going round: a server that cannot be reached, fails mid-login or is busy is
    /// passed over for the next. A certificate that is not the pinned one, or a
    /// refused login, ends the attempt at once (the servers of a cluster share
    /// their users). Returns the session and which server it is with.
    pub fn connect_from(
        cfg: &ClientConfig,
        servers: &[String],
        first: usize,
        user: &str,
        password: &str,
    ) -> Result<(Remote, usize), Error> {
        let mut last = Error::Usage("no server given".into());
        for i in 0..servers.len() {
            let at = (first + i) % servers.len();
            match Remote::connect_one(cfg, &servers[at], user, password) {
                Ok(r) => return Ok((r, at)),
                Err(e) if e.is_network() || matches!(e, Error::Remote(ErrorCode::Busy, _)) => {
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Connects to one server, `host[:port]`.
    fn connect_one(
        cfg: &ClientConfig,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<Remote, Error> {
        let (host, port) = split_host_port(server, DEFAULT_PORT)?;
        let addrs = resolve(&host, port)?;
        let trust = cfg.trust_for(server)?;
        if let Trust::Pinned(cert) = &trust {
            warn_if_expired(cert, &cfg.cert);
        }
        let tls = crate::tls::client_config(&trust, !cfg.legacy)?;
        let name = match (&cfg.server_name, cfg.ca) {
            (Some(n), _) => server_name_for(n)?,
            (None, _) => server_name_for(&host)?,
        };
        let mut failures = Vec::new();
        for addr in &addrs {
            match tls_connect(*addr, Arc::clone(&tls), name.clone(), cfg.connect_timeout) {
                Ok(stream) => return Remote::login(stream, tls, name, cfg, user, password),
                // say which pin it was: it may have been found rather than given
                Err(Error::Certificate(m)) if matches!(trust, Trust::Pinned(_)) => {
                    return Err(Error::Certificate(format!(
                        "{m}; the pin is {}",
                        cfg.cert.display()
                    )));
                }
                Err(e @ Error::Certificate(_)) => return Err(e),
                Err(e) => failures.push(e),
            }
        }
        Err(match failures.len() {
            0 => Error::Connect(format!("{host} has no address")),
            1 => failures.swap_remove(0),
            // say what happened at each address (localhost: ::1 and 127.0.0.1)
            _ => Error::Connect(
                failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        })
    }

    fn login(
        stream: ClientTls,
        tls: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        cfg: &ClientConfig,
        user: &str,
        password: &str,
    ) -> Result<Remote, Error> {
        stream.sock.set_read_timeout(Some(cfg.io_timeout))?;
        stream.sock.set_write_timeout(Some(cfg.io_timeout))?;
        if stream.conn.alpn_protocol() == Some(crate::protocol::ALPN) {
            let mut native = Native::hello(stream)?;
            native.login(user, password)?;
            Ok(Remote::Native(native))
        } else {
            Ok(Remote::Legacy(Legacy::login(
                stream, tls, name, user, password,
            )?))
        }
    }

    /// Whether this is a Python server.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Remote::Legacy(_))
    }

    fn unsupported(what: &str) -> Error {
        Error::Remote(
            ErrorCode::Unsupported,
            format!("{what} is not supported by a Python server"),
        )
    }

    /// `pwd`.
    pub fn pwd(&mut self) -> Result<String, Error> {
        match self {
            Remote::Native(n) => n.call_text(&Request::Pwd),
            Remote::Legacy(l) => Ok(l.pwd()),
        }
    }

    /// `cd`; returns the new directory.
    pub fn cd(&mut self, path: Option<&str>) -> Result<String, Error> {
        match self {
            Remote::Native(n) => n.call_text(&Request::Cd(path.map(Into::into))),
            Remote::Legacy(l) => l.cd(path),
        }
    }

    /// `ls`.
    pub fn ls(&mut self, path: Option<&str>) -> Result<Vec<Entry>, Error> {
        match self {
            Remote::Native(n) => n.ls(path),
            Remote::Legacy(l) => l.ls(path),
        }
    }

    /// `stat`.
    pub fn stat(&mut self, path: &str) -> Result<Entry, Error> {
        match self {
            Remote::Native(n) => n.stat(path),
            Remote::Legacy(_) => Err(Self::unsupported("stat")),
        }
    }

    /// `cat`: up to 1024 bytes.
    pub fn cat(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        self.cat_sized(path).map(|(head, _)| head)
    }

    /// `cat`: up to 1024 bytes, and the whole file's size when the server says it (a
    /// Python server does not).
    pub fn cat_sized(&mut self, path: &str) -> Result<(Vec<u8>, Option<u64>), Error> {
        match self {
            Remote::Native(n) => n.cat(path).map(|(head, size)| (head, Some(size))),
            Remote::Legacy(l) => l.cat(path).map(|head| (head, None)),
        }
    }

    /// `df`: the user's usage and the server's limits.
    pub fn df(&mut self) -> Result<Usage, Error> {
        let Remote::Native(n) = self else {
            return Err(Self::unsupported("df"));
        };
        let fields = match n.call(&Request::Df) {
            // a fos server from before `df`
            Err(Error::Remote(ErrorCode::Invalid, m)) if m.contains("unknown command") => {
                return Err(Error::Remote(
                    ErrorCode::Unsupported,
                    "this server does not report usage (it predates df)".into(),
                ));
            }
            other => other?,
        };
        let number = |i: usize| -> Result<Option<u64>, Error> {
            match fields.get(i).map(Vec::as_slice) {
                None | Some(b"") => Ok(None),
                Some(f) => std::str::from_utf8(f)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Some)
                    .ok_or(Error::Protocol(crate::protocol::Error::BadFields)),
            }
        };
        Ok(Usage {
            used: number(0)?.ok_or(Error::Protocol(crate::protocol::Error::BadFields))?,
            quota: number(1)?,
            max_file_size: number(2)?,
        })
    }

    /// `mkdir`.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n.call(&Request::Mkdir(path.into())).map(drop),
            Remote::Legacy(l) => l.simple_path("mkdir", path),
        }
    }

    /// `rmdir`.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n.call(&Request::Rmdir(path.into())).map(drop),
            Remote::Legacy(l) => l.simple_path("rmdir", path),
        }
    }

    /// `rm` (with `recursive`, a whole tree).
    pub fn rm(&mut self, path: &str, recursive: bool) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n
                .call(&Request::Rm {
                    path: path.into(),
                    recursive,
                })
                .map(drop),
            Remote::Legacy(_) if recursive => Err(Self::unsupported("rm -r")),
            Remote::Legacy(l) => l.simple_path("rm", path),
        }
    }

    /// `mv`; returns the final path.
    pub fn mv(&mut self, from: &str, to: &str) -> Result<String, Error> {
        match self {
            Remote::Native(n) => n.call_text(&Request::Mv {
                from: from.into(),
                to: to.into(),
            }),
            Remote::Legacy(_) => Err(Self::unsupported("mv")),
        }
    }

    /// Expands a wildcard pattern on the server (inside the user's root).
    pub fn glob(&mut self, pattern: &str) -> Result<Vec<String>, Error> {
        match self {
            Remote::Native(n) => Ok(n
                .call(&Request::Glob(pattern.into()))?
                .into_iter()
                .map(|f| String::from_utf8_lossy(&f).into_owned())
                .collect()),
            Remote::Legacy(_) => Err(Self::unsupported("wildcards")),
        }
    }

    /// `passwd`.
    pub fn passwd(&mut self, old: &str, new: &str) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n
                .call(&Request::Passwd {
                    old: old.into(),
                    new: new.into(),
                })
                .map(drop),
            Remote::Legacy(_) => Err(Self::unsupported("passwd")),
        }
    }

    /// Downloads `remote` to `local` (a file path): see [`Remote::get_to`].
    pub fn get(
        &mut self,
        cfg: &ClientConfig,
        remote: &str,
        local: &Path,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        self.get_to(cfg, remote, &LocalTarget::open(local)?, opts)
    }

    /// Downloads `remote` to `target`. The content goes to a partial file beside it
    /// (`.NAME.fos-partial`, see [`local::partial_name`]) and is renamed over it only
    /// when complete and verified. With `opts.resume`, an existing partial is continued
    /// after the server has checked that its SHA-256 matches the start of the remote
    /// file. A download cut by the network or cancelled keeps its partial for `reget`.
    ///
    /// An existing symlink at the target is never replaced; a FIFO or character device
    /// there (or at the end of the symlink) is written in place instead, as
    /// [`Remote::get_stream`] does.
    pub fn get_to(
        &mut self,
        cfg: &ClientConfig,
        remote: &str,
        target: &LocalTarget,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let local = target.shown();
        if opts.no_clobber && target.exists() {
            return Err(already_here(local));
        }
        // a FIFO or device there (or at the end of a symlink) is written in place; any
        // other symlink is refused: a download never replaces one
        if stream::classify(local)? == stream::Target::Stream {
            let mut sink = stream::Sink::open(local, opts.cancel)?;
            return self.get_stream(remote, &mut sink, opts);
        }
        if target.is_dir() {
            return Err(Error::Local(format!("{}: is a directory", local.display())));
        }
        let TransferOpts {
            no_clobber,
            progress,
            cancel,
            resume,
            preserve,
        } = opts;
        let started = Instant::now();
        let (partial, bytes, size, mtime, sent_mode) = match self {
            Remote::Native(n) => {
                let mut partial = LocalPartial::open(target, resume)?;
                let mut ctx = transfer::sha();
                let mut offset = partial.len()?;
                let hdr = if offset > 0 {
                    transfer::hash_prefix(&mut partial.reader()?, offset, &mut ctx)?;
                    match n.get_start(remote, offset, Some(transfer::finish(ctx.clone()))) {
                        Err(Error::Remote(ErrorCode::Integrity | ErrorCode::Invalid, _)) => {
                            // the remote file changed since: start over
                            partial.truncate()?;
                            offset = 0;
                            ctx = transfer::sha();
                            n.get_start(remote, 0, None)?
                        }
                        other => other?,
                    }
                } else {
                    n.get_start(remote, 0, None)?
                };
                if hdr.offset != offset {
                    return Err(Error::Protocol(crate::protocol::Error::BadFields));
                }
                // from here on, a cut keeps what arrived
                partial.keep = true;
                let got = {
                    let mut w = WriteBehind::buffered(partial.append()?, offset, hdr.size - offset);
                    n.receive(
                        &mut w,
                        hdr.size - offset,
                        ctx,
                        &mut |b| progress(offset + b, hdr.size),
                        cancel,
                    )?
                };
                if let Some(e) = got.local_error {
                    partial.keep = false;
                    let why = match e {
                        transfer::LocalError::Write(e) => local_reason(&e),
                        transfer::LocalError::TooLong(_) => "more data than announced".into(),
                    };
                    return Err(Error::Local(format!(
                        "writing the local file {} failed: {why}",
                        local.display()
                    )));
                }
                if got.sender_sha.is_none() {
                    return Err(Error::Remote(
                        ErrorCode::Aborted,
                        "the server aborted the transfer".into(),
                    ));
                }
                if !got.is_intact() || offset + got.bytes != hdr.size {
                    partial.keep = false;
                    return Err(Error::Remote(
                        ErrorCode::Integrity,
                        "SHA-256 mismatch: the download was corrupted; nothing was saved".into(),
                    ));
                }
                (partial, got.bytes, hdr.size, Some(hdr.mtime), hdr.mode)
            }
            Remote::Legacy(l) => {
                if resume && target.partial_exists() {
                    eprintln!(
                        "fos-client: a Python server cannot resume: downloading {} again",
                        crate::log::escape(remote)
                    );
                }
                let partial = LocalPartial::open(target, false)?;
                let n = {
                    let mut w = BufWriter::with_capacity(transfer::CHUNK, partial.append()?);
                    let n = l.get(remote, &mut w, &mut |b| progress(b, 0))?;
                    io::Write::flush(&mut w)?;
                    n
                };
                (partial, n, n, None, None)
            }
        };
        // a symlink made meanwhile is not replaced either
        if stream::classify(local)? != stream::Target::File {
            return Err(Error::Local(format!(
                "{}: is no longer a regular file; the download was not saved",
                local.display()
            )));
        }
        partial.set_mode(download_mode(sent_mode, preserve, target.file_mode()))?;
        partial.commit(target, mtime, no_clobber, cfg.fsync)?;
        Ok(TransferReport {
            bytes,
            size,
            elapsed: started.elapsed(),
        })
    }

    /// Downloads `remote` into `sink` (a FIFO, a character device, standard output),
    /// written as the data arrives, with no partial file. The SHA-256 is checked at
    /// the end; by then the bytes are written, so a mismatch is an error that says so.
    /// If `sink` already has bytes (an earlier try was cut), a fos server is asked to
    /// continue after them once it has checked their SHA-256. A Python server sends
    /// no checksum and cannot continue.
    pub fn get_stream(
        &mut self,
        remote: &str,
        sink: &mut stream::Sink,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let started = Instant::now();
        let offset = sink.written();
        let (bytes, size) = match self {
            Remote::Native(n) => {
                let prefix = (offset > 0).then(|| transfer::finish(sink.hash()));
                let hdr = match n.get_start(remote, offset, prefix) {
                    Err(Error::Remote(ErrorCode::Integrity | ErrorCode::Invalid, _))
                        if offset > 0 =>
                    {
                        return Err(Error::Remote(
                            ErrorCode::Integrity,
                            format!(
                                "{remote} changed on the server after {offset} bytes of it were written to {}; cannot continue",
                                sink.label()
                            ),
                        ));
                    }
                    other => other?,
                };
                if hdr.offset != offset {
                    return Err(Error::Protocol(crate::protocol::Error::BadFields));
                }
                let ctx = sink.hash();
                let got = n.receive(
                    sink,
                    hdr.size - offset,
                    ctx,
                    &mut |b| (opts.progress)(offset + b, hdr.size),
                    opts.cancel,
                )?;
                sink.finish()?;
                match got.local_error {
                    Some(transfer::LocalError::Write(e)) => {
                        return Err(Error::Local(format!(
                            "writing the local {} failed: {}",
                            sink.label(),
                            local_reason(&e)
                        )));
                    }
                    Some(transfer::LocalError::TooLong(_)) => {
                        return Err(Error::Protocol(crate::protocol::Error::BadFields));
                    }
                    None => {}
                }
                if got.sender_sha.is_none() {
                    return Err(Error::Remote(
                        ErrorCode::Aborted,
                        "the server aborted the transfer".into(),
                    ));
                }
                if !got.is_intact() || offset + got.bytes != hdr.size {
                    return Err(Error::Remote(
                        ErrorCode::Integrity,
                        format!(
                            "SHA-256 mismatch: the {} bytes written to {} are corrupt",
                            sink.written(),
                            sink.label()
                        ),
                    ));
                }
                (got.bytes, hdr.size)
            }
            Remote::Legacy(l) => {
                if offset > 0 {
                    return Err(Error::Local(format!(
                        "a Python server cannot continue a download: {} already has {offset} bytes of {remote}",
                        sink.label()
                    )));
                }
                let n = l.get(remote, sink, &mut |b| (opts.progress)(b, 0))?;
                sink.finish()?;
                (n, n)
            }
        };
        Ok(TransferReport {
            bytes,
            size,
            elapsed: started.elapsed(),
        })
    }
    /// Uploads the local file `local` as `remote`. With `opts.resume`, an interrupted
    /// upload of the same file (same size and modification time) continues where it
    /// stopped, after comparing the SHA-256 of what the server has with the local start.
    pub fn put(
        &mut self,
        local: &Path,
        remote: &str,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let mut file = File::open(local)
            .map_err(|e| Error::Local(format!("{}: {}", local.display(), local_reason(&e))))?;
        let md = file.metadata()?;
        if md.is_dir() {
            return Err(Error::Local(format!(
                "{}: is a directory (use put -r)",
                local.display()
            )));
        }
        if !md.is_file() {
            // a pipe, FIFO or device: its size is what it gives until its end
            return self.put_stream(&mut file, remote, opts);
        }
        let size = md.len();
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        let started = Instant::now();
        let TransferOpts {
            no_clobber,
            progress,
            cancel,
            resume,
            preserve,
        } = opts;
        let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777;
        let bytes = match self {
            Remote::Native(n) => {
                // the permission bits travel where the server takes them
                let modes = n.has("modes");
                let req = |resume| match modes {
                    true => Request::PutWithMode {
                        path: remote.into(),
                        size: Some(size),
                        mtime,
                        no_clobber,
                        resume,
                        mode,
                        exact: preserve,
                    },
                    false => Request::Put {
                        path: remote.into(),
                        size,
                        mtime,
                        no_clobber,
                        resume,
                    },
                };
                let (mut offset, server_prefix) = n.put_start(&req(resume))?;
                let mut ctx = transfer::sha();
                if offset > 0 {
                    use std::io::{Seek, SeekFrom};
                    let ours = if offset <= size {
                        transfer::hash_prefix(&mut file, offset, &mut ctx)?;
                        crate::protocol::command::hex(&transfer::finish(ctx.clone()))
                    } else {
                        String::new()
                    };
                    if ours != server_prefix {
                        // what the server has is not the start of this file: discard it
                        n.abort_discard()?;
                        (offset, _) = n.put_start(&req(false))?;
                        ctx = transfer::sha();
                    }
                    file.seek(SeekFrom::Start(offset))?;
                }
                // transfer::send reads whole chunks itself: no buffering layer needed
                let mut reader = &mut file;
                n.send_content(
                    &mut reader,
                    size - offset,
                    ctx,
                    &mut |b| progress(offset + b, size),
                    cancel,
                )?;
                size - offset
            }
            Remote::Legacy(l) => {
                if no_clobber {
                    return Err(Self::unsupported("put -n"));
                }
                l.put(remote, &mut file, &mut |b| progress(b, size))?
            }
        };
        Ok(TransferReport {
            bytes,
            size,
            elapsed: started.elapsed(),
        })
    }

    /// Uploads what `src` gives until its end (a pipe, a FIFO, standard input) as
    /// `remote`: the size is not known beforehand, so a fos server is told it at the
    /// end together with the SHA-256, and checks its limits as the data arrives. Such
    /// an upload cannot be resumed (`opts.resume` is ignored). The report has the real
    /// size.
    pub fn put_stream(
        &mut self,
        src: &mut impl io::Read,
        remote: &str,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let started = Instant::now();
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let bytes = match self {
            Remote::Native(n) => n.put_stream(
                src,
                remote,
                mtime,
                opts.no_clobber,
                &mut |b| (opts.progress)(b, 0),
                opts.cancel,
            )?,
            Remote::Legacy(l) => {
                if opts.no_clobber {
                    return Err(Self::unsupported("put -n"));
                }
                l.put(remote, src, &mut |b| (opts.progress)(b, 0))?
            }
        };
        Ok(TransferReport {
            bytes,
            size: bytes,
            elapsed: started.elapsed(),
        })
    }

    /// Sets the permission bits and/or modification time of a remote path (`chmod`;
    /// a directory's time after `put -r`); returns its mode then. A server from before
    /// modes, or a Python server, cannot.
    pub fn set_attrs(
        &mut self,
        path: &str,
        mode: Option<u32>,
        mtime: Option<i64>,
    ) -> Result<Option<u32>, Error> {
        match self {
            Remote::Native(n) => n.set_attrs(path, mode, mtime),
            Remote::Legacy(_) => Err(Self::unsupported("setting permissions or times")),
        }
    }

    /// Whether the server keeps permission bits (and can set them and times).
    pub fn has_modes(&self) -> bool {
        matches!(self, Remote::Native(n) if n.has("modes"))
    }

    /// Ends the session politely.
    pub fn close(self) {
        match self {
            Remote::Native(n) => n.bye(),
            Remote::Legacy(l) => l.exit(),
        }
    }
}

/// A local I/O failure in the words of the rest of the messages (see
/// [`crate::ioerror::reason`]).
fn local_reason(e: &io::Error) -> String {
    crate::ioerror::reason(e, crate::ioerror::Whose::Local)
}

/// The mode a download gets, as `cp` gives a copy: the server's bits (or, from a
/// server that says none, `0o666`) without those the umask clears, and never wider than
/// the file it replaces (`existing`); with `preserve` (`-p`) the server's bits exactly.
/// Never setuid, setgid or sticky.
pub fn download_mode(sent: Option<u32>, preserve: bool, existing: Option<u32>) -> u32 {
    let sent = sent.unwrap_or(0o666) & 0o777;
    if preserve {
        return sent;
    }
    let mode = sent & !crate::sys::umask();
    match existing {
        Some(old) => mode & old,
        None => mode,
    }
}

/// What a `get -n` says when the local file is there: worded as `put -n` is.
fn already_here(local: &Path) -> Error {
    Error::Local(format!(
        "{} already exists locally (-n does not replace it)",
        local.display()
    ))
}

/// Warns on stderr when the pinned certificate has expired: the pin is exact, so the
/// connection still goes ahead, but the administrator should renew it.
fn warn_if_expired(cert: &[u8], path: &Path) {
    let Some(not_after) = crate::x509::parse(cert).and_then(|i| i.not_after) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if not_after < now {
        eprintln!(
            "fos-client: warning: the pinned certificate {} expired on {}Z; connecting anyway (the pin is exact)",
            path.display(),
            crate::log::utc_seconds(not_after)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let ok = |s: &str| split_host_port(s, 5001).unwrap();
        assert_eq!(ok("127.0.0.1"), ("127.0.0.1".into(), 5001));
        assert_eq!(ok("127.0.0.1:7000"), ("127.0.0.1".into(), 7000));
        assert_eq!(ok("files.local"), ("files.local".into(), 5001));
        assert_eq!(ok("files.local:9"), ("files.local".into(), 9));
        assert_eq!(ok("[::1]:7000"), ("::1".into(), 7000));
        assert_eq!(ok("[::1]"), ("::1".into(), 5001));
        assert_eq!(ok("::1"), ("::1".into(), 5001));
        assert_eq!(
            server_list(" 127.0.0.2:7000, [::1]:7001 ,files.local").unwrap(),
            vec!["127.0.0.2:7000", "[::1]:7001", "files.local"]
        );
        assert!(server_list(",").is_err() && server_list("a,b:0").is_err());
        assert!((0..50).all(|_| pick_first(3) < 3) && pick_first(1) == 0);
        for bad in [
            "",
            ":5001",
            "host:",
            "host:99999",
            "[::1",
            "[nothex]:1",
            "[::1]x",
            "h:0",
        ] {
            assert!(split_host_port(bad, 5001).is_err(), "{bad}");
        }
    }

    #[test]
    fn localhost_is_both_loopback_addresses() {
        let addrs = resolve("LocalHost", 7).unwrap();
        assert_eq!(addrs[0], "[::1]:7".parse::<SocketAddr>().unwrap());
        assert!(addrs.contains(&"127.0.0.1:7".parse().unwrap()));
        assert_eq!(addrs.len(), 2, "no address twice: {addrs:?}");
        assert_eq!(
            resolve("127.0.0.1", 7).unwrap(),
            ["127.0.0.1:7".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn downloads_get_modes_as_cp_gives_them() {
        let mask = crate::sys::umask();
        assert_eq!(download_mode(Some(0o755), false, None), 0o755 & !mask);
        assert_eq!(download_mode(Some(0o755), true, None), 0o755);
        assert_eq!(
            download_mode(Some(0o4755), true, None),
            0o755,
            "never setuid"
        );
        assert_eq!(
            download_mode(Some(0o644), false, Some(0o600)),
            0o600 & !mask,
            "never wider than the file replaced"
        );
        assert_eq!(download_mode(Some(0o644), true, Some(0o600)), 0o644);
        assert_eq!(download_mode(None, false, None), 0o666 & !mask);
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 20), "10.0 MiB");
    }
}
