//! Connecting: `host[:port]` lists, name resolution, TCP, TLS with the pin (or the
//! CAs, or the known servers), and login in the protocol the server negotiated
//! (ALPN `fos/1`: native, else the Python tool's). [`Remote::connect`] and
//! [`Remote::connect_from`] are defined here, beside the steps they take.
//!
//! Discovery uses this module alone of the client: the settings ([`ClientConfig`]),
//! the TLS steps and [`native_identity`]. It does not run commands; [`Remote`] does.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::legacy::Legacy;
pub use super::native::ClientTls;
use super::native::Native;
use super::remote::Remote;
use super::trust;
use crate::Error;
use crate::protocol::ErrorCode;
use crate::tls::{HandshakeFailed, Trust};

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
    /// certificate has the fingerprint this file records for it (see `trust`),
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

/// The name a TLS connection to `host` checks: its IP address, or its DNS name.
pub(super) fn server_name_for(host: &str) -> Result<ServerName<'static>, Error> {
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
            crate::ioerror::text(&e)
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
    Ok(StreamOwned::new(conn, tcp.into()))
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
        if speaks_native(&stream) {
            let mut native = Native::hello(stream)?;
            native.login(user, password)?;
            Ok(Remote::Native(native))
        } else {
            Ok(Remote::Legacy(Legacy::login(
                stream, tls, name, user, password,
            )?))
        }
    }
}

/// Whether the server negotiated the native protocol (ALPN `fos/1`) on `stream`.
pub fn speaks_native(stream: &ClientTls) -> bool {
    stream.conn.alpn_protocol() == Some(crate::protocol::ALPN)
}

/// What a fos server says of itself before any login (discovery): after the hellos,
/// its name, protocol version, session port and cluster.
pub fn native_identity(stream: ClientTls) -> Result<(String, u32, u16, Option<String>), Error> {
    Native::hello(stream)?.discover()
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
}
