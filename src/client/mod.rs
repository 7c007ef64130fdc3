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
mod progress;
mod prompt;
pub mod shell;
pub mod stream;
mod transfers;
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
use crate::tls::Trust;
use crate::transfer;
use crate::writeback::WriteBehind;
use legacy::Legacy;
use local::{LocalPartial, LocalTarget};
use native::{Native, Tls};

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
        }
    }
}

impl ClientConfig {
    /// The trust settings this configuration describes.
    pub fn trust(&self) -> Result<Trust, Error> {
        if self.ca {
            return Ok(Trust::ca(self.cafile.as_deref())?);
        }
        let trust = Trust::pinned_file(&self.cert)?;
        Ok(trust)
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
) -> Result<Tls, Error> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Error::Connect(format!("cannot connect to {addr}: {e}")))?;
    handshake(tcp, tls, name, timeout)
}

/// Runs the TLS handshake on a connected socket.
pub fn handshake(
    mut tcp: TcpStream,
    tls: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Result<Tls, Error> {
    let addr = tcp.peer_addr()?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    tcp.set_nodelay(true)?;
    let mut conn = ClientConnection::new(tls, name).map_err(|e| Error::Connect(e.to_string()))?;
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(Error::Connect(format!(
                    "{addr} closed the connection during the TLS handshake"
                )));
            }
            Ok(_) => {}
            Err(e) => {
                if let Some(fp) = crate::tls::pin_mismatch(&e) {
                    return Err(Error::Certificate(format!(
                        "{addr}: the server's certificate is not the pinned one; refusing to connect \
                         (it presented SHA-256 fingerprint {fp})"
                    )));
                }
                return Err(Error::Connect(format!(
                    "TLS handshake with {addr} failed: {e}"
                )));
            }
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
pub struct Report {
    /// Bytes moved in this transfer.
    pub bytes: u64,
    /// Whole file size.
    pub size: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
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

/// Bytes in binary units.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
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
}

impl Default for TransferOpts<'_> {
    fn default() -> Self {
        TransferOpts {
            no_clobber: false,
            progress: &|_, _| {},
            cancel: &|| false,
            resume: false,
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
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    if n <= 1 || ring::rand::SystemRandom::new().fill(&mut b).is_err() {
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
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| Error::Connect(format!("cannot resolve {host}: {e}")))?
            .collect();
        let trust = cfg.trust()?;
        if let Trust::Pinned(cert) = &trust {
            warn_if_expired(cert, &cfg.cert);
        }
        let tls = crate::tls::client_config(&trust, !cfg.legacy)?;
        let name = match (&cfg.server_name, cfg.ca) {
            (Some(n), _) => server_name_for(n)?,
            (None, _) => server_name_for(&host)?,
        };
        let mut last = Error::Connect(format!("{host} has no address"));
        for addr in addrs {
            match tls_connect(addr, Arc::clone(&tls), name.clone(), cfg.connect_timeout) {
                Ok(stream) => return Remote::login(stream, tls, name, cfg, user, password),
                Err(e @ Error::Certificate(_)) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn login(
        stream: Tls,
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
        match self {
            Remote::Native(n) => n.cat(path).map(|(head, _)| head),
            Remote::Legacy(l) => l.cat(path),
        }
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
    ) -> Result<Report, Error> {
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
    ) -> Result<Report, Error> {
        let local = target.shown();
        if opts.no_clobber && target.exists() {
            return Err(Error::Local(format!(
                "{}: already exists (-n)",
                local.display()
            )));
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
        } = opts;
        let started = Instant::now();
        let (partial, bytes, size, mtime) = match self {
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
                    return Err(Error::Local(format!("writing {}: {e:?}", local.display())));
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
                (partial, got.bytes, hdr.size, Some(hdr.mtime))
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
                (partial, n, n, None)
            }
        };
        // a symlink made meanwhile is not replaced either
        if stream::classify(local)? != stream::Target::File {
            return Err(Error::Local(format!(
                "{}: is no longer a regular file; the download was not saved",
                local.display()
            )));
        }
        partial.commit(target, mtime, no_clobber, cfg.fsync)?;
        Ok(Report {
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
    ) -> Result<Report, Error> {
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
                        return Err(Error::Local(format!("writing {}: {e}", sink.label())));
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
        Ok(Report {
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
    ) -> Result<Report, Error> {
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
        } = opts;
        let bytes = match self {
            Remote::Native(n) => {
                let req = |resume| Request::Put {
                    path: remote.into(),
                    size,
                    mtime,
                    no_clobber,
                    resume,
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
        Ok(Report {
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
    ) -> Result<Report, Error> {
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
        Ok(Report {
            bytes,
            size: bytes,
            elapsed: started.elapsed(),
        })
    }

    /// Ends the session politely.
    pub fn close(self) {
        match self {
            Remote::Native(n) => n.bye(),
            Remote::Legacy(l) => l.exit(),
        }
    }
}

fn local_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
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
    fn human() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 20), "10.0 MiB");
    }
}
