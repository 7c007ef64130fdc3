//! Finding servers on the LAN the way the Python tool does — a TCP connect sweep of a
//! subnet's discovery port followed by a TLS `ping` — but bounded and fast: a fixed
//! pool of threads (not one per address), a short connect timeout, and at most a /16.
//!
//! Each address that accepts is asked for its name: a fos server (ALPN `fos/1`) with
//! a native discovery request, a Python server with its `ping`. Servers are verified
//! against the pinned certificate like every other connection; one that presents
//! another certificate is listed as `untrusted`, never hidden and never trusted.
//!
//! The [`Connector`] trait lets tests count connects in flight.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::Error;
use crate::client::connect::{self, ClientConfig, ClientTls};
use crate::protocol::legacy::{read_record, send_record};

/// Largest range swept: a /16.
pub const MAX_ADDRESSES: usize = 65_536;
/// Default discovery port.
pub const DEFAULT_GREET_PORT: u16 = 5003;

/// Discovery settings; defaults are those `fos-client --help` documents.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--scan`: a CIDR, one address, or `a.b.c.d-e`; `None` means the chosen interface's subnet.
    pub scan: Option<String>,
    /// Threads sweeping at once. Defaults to 256.
    pub threads: usize,
    /// TCP connect timeout per address. Defaults to 300 ms.
    pub timeout: Duration,
    /// Offer loopback interfaces too. Defaults to false.
    pub include_loopback: bool,
    /// The discovery port swept. Defaults to 5003.
    pub port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scan: None,
            threads: 256,
            timeout: Duration::from_millis(300),
            include_loopback: false,
            port: DEFAULT_GREET_PORT,
        }
    }
}

/// What answered at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerKind {
    /// A fos server.
    Fos,
    /// A Python server.
    Python,
    /// A TLS server whose certificate is not the pinned one.
    Untrusted,
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::Fos => "fos",
            ServerKind::Python => "python",
            ServerKind::Untrusted => "untrusted",
        })
    }
}

/// One server found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its session port.
    pub port: u16,
    /// The name it announced (as sent: escape it before printing).
    pub name: String,
    /// What it is.
    pub kind: ServerKind,
    /// The cluster it announced, if any (as sent: escape it before printing). A
    /// Python server, and an untrusted one, belongs to none.
    pub cluster: Option<String>,
}

/// The result of a sweep.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// Servers found, sorted by address.
    pub found: Vec<Found>,
    /// Addresses tried.
    pub tried: usize,
    /// Addresses that accepted the TCP connection.
    pub answered: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl SweepReport {
    /// `swept 254 addresses in 0.31 s: 3 answered, 3 servers`.
    pub fn summary(&self) -> String {
        format!(
            "swept {} address{} in {:.2} s: {} answered, {} server{}",
            self.tried,
            if self.tried == 1 { "" } else { "es" },
            self.elapsed.as_secs_f64(),
            self.answered,
            self.found.len(),
            if self.found.len() == 1 { "" } else { "s" }
        )
    }
}

/// Parses `--scan`: `a.b.c.d/n` (n from 16 to 32), a single address, or `a.b.c.d-e`
/// (a range of the last octet). Network and broadcast addresses of a CIDR are left out.
pub fn parse_range(s: &str) -> Result<Vec<Ipv4Addr>, Error> {
    let s = s.trim();
    let bad = |why: &str| {
        Error::Usage(format!(
            "--scan {s:?}: {why} (use a.b.c.d/n, a.b.c.d or a.b.c.d-e)"
        ))
    };
    if let Some((ip, bits)) = s.split_once('/') {
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let bits: u32 = bits.parse().map_err(|_| bad("bad prefix length"))?;
        if bits > 32 {
            return Err(bad("bad prefix length"));
        }
        if bits < 16 {
            return Err(Error::Usage(format!(
                "--scan {s}: {} addresses is more than a /16 ({MAX_ADDRESSES}); sweep a smaller range",
                1u64 << (32 - bits)
            )));
        }
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        return Ok(hosts(ip, Ipv4Addr::from(mask)));
    }
    if let Some((ip, last)) = s.split_once('-') {
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let last: u8 = last.parse().map_err(|_| bad("bad end of range"))?;
        let [a, b, c, first] = ip.octets();
        if last < first {
            return Err(bad("the range ends before it starts"));
        }
        return Ok((first..=last).map(|d| Ipv4Addr::new(a, b, c, d)).collect());
    }
    let ip: Ipv4Addr = s.parse().map_err(|_| bad("not an IPv4 address"))?;
    Ok(vec![ip])
}

/// The host addresses of the subnet of `addr`/`mask` (without network and broadcast
/// addresses where the subnet has them), capped at [`MAX_ADDRESSES`].
pub fn hosts(addr: Ipv4Addr, mask: Ipv4Addr) -> Vec<Ipv4Addr> {
    let mask = u32::from(mask);
    let net = u32::from(addr) & mask;
    let size = (!mask as u64) + 1;
    if size > MAX_ADDRESSES as u64 {
        return Vec::new();
    }
    let (first, last) = if size <= 2 {
        (net, net + (size as u32 - 1))
    } else {
        (net + 1, net + size as u32 - 2)
    };
    (first..=last).map(Ipv4Addr::from).collect()
}

/// Opens the TCP connections of a sweep; tests substitute their own.
pub trait Connector: Sync {
    /// Connects to `addr` within `timeout`.
    fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream>;
}

/// The real connector.
#[derive(Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_timeout(&addr, timeout)
    }
}

/// Sweeps `addrs` on `opts.port`. `progress(tried, answered)` is called as it goes.
pub fn sweep(
    cfg: &ClientConfig,
    addrs: &[Ipv4Addr],
    opts: &Options,
    connector: &dyn Connector,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SweepReport, Error> {
    if addrs.len() > MAX_ADDRESSES {
        return Err(Error::Usage(format!(
            "{} addresses is more than a /16",
            addrs.len()
        )));
    }
    let trust = cfg.trust()?;
    let pinned = crate::tls::client_config(&trust, true)?;
    let anyone = crate::tls::any_cert_client_config(true)?;
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let tried = AtomicUsize::new(0);
    let answered = AtomicUsize::new(0);
    let found = Mutex::new(BTreeMap::new());
    let workers = opts.threads.clamp(1, 1024).min(addrs.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&ip) = addrs.get(i) else { break };
                    let addr = SocketAddr::V4(SocketAddrV4::new(ip, opts.port));
                    let conn = connector.connect(addr, opts.timeout);
                    let t = tried.fetch_add(1, Ordering::Relaxed) + 1;
                    let a = if let Ok(tcp) = conn {
                        let a = answered.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(f) = identify(tcp, ip, &pinned, &anyone, cfg, opts) {
                            found
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(ip, f);
                        }
                        a
                    } else {
                        answered.load(Ordering::Relaxed)
                    };
                    progress(t, a);
                }
            });
        }
    });
    Ok(SweepReport {
        found: found
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_values()
            .collect(),
        tried: tried.into_inner(),
        answered: answered.into_inner(),
        elapsed: started.elapsed(),
    })
}

/// Asks whatever accepted at `ip` who it is; `None` if it is no fos or Python server
/// (or one that asks not to be listed).
fn identify(
    tcp: TcpStream,
    ip: Ipv4Addr,
    pinned: &Arc<rustls::ClientConfig>,
    anyone: &Arc<rustls::ClientConfig>,
    cfg: &ClientConfig,
    opts: &Options,
) -> Option<Found> {
    let name = ServerName::IpAddress(std::net::IpAddr::V4(ip).into());
    // a ping is tiny: a second is plenty even on a busy LAN
    let timeout = Duration::from_secs(1).max(opts.timeout);
    match connect::handshake(tcp, Arc::clone(pinned), name.clone(), timeout) {
        Ok(stream) => ping(stream, ip).map(|(name, port, kind, cluster)| Found {
            addr: ip,
            port,
            name,
            kind,
            cluster,
        }),
        Err(Error::Certificate(_)) => {
            // listed, not trusted: ask its name over a connection that carries nothing else
            let addr = SocketAddr::V4(SocketAddrV4::new(ip, opts.port));
            let stream = connect::tls_connect(addr, Arc::clone(anyone), name, timeout).ok()?;
            let (name, port, _, _) = ping(stream, ip)?;
            let _ = cfg;
            // an untrusted server's cluster is not one to join
            Some(Found {
                addr: ip,
                port,
                name,
                kind: ServerKind::Untrusted,
                cluster: None,
            })
        }
        Err(_) => None,
    }
}

/// What a server says of itself: name, session port, kind and cluster.
type Pong = (String, u16, ServerKind, Option<String>);

/// The name, session port, kind and cluster of a server on an established TLS stream.
fn ping(mut stream: ClientTls, _ip: Ipv4Addr) -> Option<Pong> {
    if connect::speaks_native(&stream) {
        let (name, _version, port, cluster) = connect::native_identity(stream).ok()?;
        return Some((name, port, ServerKind::Fos, cluster));
    }
    send_record(&mut stream, b"ping").ok()?;
    let reply = read_record(&mut stream).ok()??;
    let name = String::from_utf8_lossy(&reply).trim().to_string();
    if name.starts_with("reject") {
        return None;
    }
    Some((name, connect::DEFAULT_PORT, ServerKind::Python, None))
}

/// The addresses to sweep: `--scan`, or the subnet of an interface (asking which on a
/// terminal when there are several).
fn targets(opts: &Options) -> Result<(String, Vec<Ipv4Addr>), Error> {
    if let Some(range) = &opts.scan {
        return Ok((range.clone(), parse_range(range)?));
    }
    let ifs: Vec<_> = crate::sys::interfaces()?
        .into_iter()
        .filter(|i| opts.include_loopback || !i.loopback)
        .collect();
    let chosen = match ifs.len() {
        0 => {
            return Err(Error::Usage(
                "no network interface to sweep (use --scan CIDR, or --include-loopback)".into(),
            ));
        }
        1 => &ifs[0],
        _ if !io::stdin().is_terminal() => {
            let list: Vec<_> = ifs
                .iter()
                .map(|i| format!("{} {}/{}", i.name, i.addr, i.netmask))
                .collect();
            return Err(Error::Usage(format!(
                "several interfaces ({}); choose with --scan CIDR",
                list.join(", ")
            )));
        }
        _ => {
            eprintln!("Interfaces:");
            for (n, i) in ifs.iter().enumerate() {
                eprintln!("  {}) {} {}/{}", n + 1, i.name, i.addr, i.netmask);
            }
            &ifs[pick(ifs.len(), "Sweep which one?")? - 1]
        }
    };
    let prefix = u32::from(chosen.netmask).leading_ones();
    let addrs = hosts(chosen.addr, chosen.netmask);
    if addrs.is_empty() {
        return Err(Error::Usage(format!(
            "{}/{prefix} is larger than a /16; use --scan",
            chosen.addr
        )));
    }
    Ok((
        format!(
            "{}/{prefix}",
            Ipv4Addr::from(u32::from(chosen.addr) & u32::from(chosen.netmask))
        ),
        addrs,
    ))
}

fn pick(n: usize, question: &str) -> Result<usize, Error> {
    crate::term::choose_number(&mut io::stderr(), &mut io::stdin().lock(), question, n)?
        .ok_or_else(|| Error::Usage("nothing chosen".into()))
}

fn sweep_with_report(cfg: &ClientConfig, opts: &Options, live: bool) -> Result<SweepReport, Error> {
    let (label, addrs) = targets(opts)?;
    let total = addrs.len();
    let progress = |tried: usize, answered: usize| {
        if live && (tried.is_multiple_of(16) || tried == total) {
            eprint!("\rsweeping {label}: {tried}/{total} tried, {answered} answered\x1b[K");
        }
    };
    let report = sweep(cfg, &addrs, opts, &TcpConnector, &progress)?;
    if live {
        eprint!("\r\x1b[K");
    }
    eprintln!("{}", report.summary());
    Ok(report)
}

/// `fos-client --list`: one line per server, sorted by address:
/// `address<TAB>port<TAB>name<TAB>kind<TAB>cluster` (`-` for none). Exit 0, or 1 when
/// none is found.
pub fn list_command(cfg: &ClientConfig, opts: &Options) -> Result<i32, Error> {
    let report = sweep_with_report(cfg, opts, io::stderr().is_terminal())?;
    if report.found.is_empty() {
        eprintln!("fos-client: no server found");
        return Ok(crate::error::exit::FAILED);
    }
    let mut out = io::stdout().lock();
    for f in &report.found {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            f.addr,
            f.port,
            crate::log::escape(&f.name),
            f.kind,
            f.cluster
                .as_deref()
                .map_or_else(|| "-".into(), crate::log::escape)
        )?;
    }
    Ok(crate::error::exit::OK)
}

/// The clusters among `found`: each name with its trusted fos members, in address
/// order.
fn clusters(found: &[Found]) -> Vec<(String, Vec<&Found>)> {
    let mut by_name: BTreeMap<String, Vec<&Found>> = BTreeMap::new();
    for f in found.iter().filter(|f| f.kind == ServerKind::Fos) {
        if let Some(c) = &f.cluster {
            by_name.entry(c.clone()).or_default().push(f);
        }
    }
    by_name.into_iter().collect()
}

/// `--server` text for several servers: `addr:port,addr:port`.
fn server_list(members: &[&Found]) -> String {
    members
        .iter()
        .map(|f| format!("{}:{}", f.addr, f.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// The interactive flow of the Python client: sweep, list, pick one by number.
/// A cluster (fos servers announcing one cluster name) is offered as one choice
/// too. Returns `address:port`, or for a cluster its members as `--server` takes
/// them (`address:port,address:port`).
pub fn choose_server(cfg: &ClientConfig, opts: &Options) -> Result<String, Error> {
    if !io::stdin().is_terminal() && opts.scan.is_none() {
        return Err(Error::Usage(
            "no --server given and no terminal to choose one: use --server HOST".into(),
        ));
    }
    let report = sweep_with_report(cfg, opts, io::stderr().is_terminal())?;
    if report.found.is_empty() {
        return Err(Error::Connect(
            "no server found (try --scan CIDR or --server HOST)".into(),
        ));
    }
    // only servers that passed the certificate check are offered; the others are
    // shown, so a misconfigured one is not a mystery
    let trusted: Vec<&Found> = report
        .found
        .iter()
        .filter(|f| f.kind != ServerKind::Untrusted)
        .collect();
    eprintln!("Servers:");
    let mut n = 0;
    for f in &report.found {
        let kind = match f.kind {
            ServerKind::Fos => "fos server",
            ServerKind::Python => "Python server",
            ServerKind::Untrusted => "untrusted certificate: not offered",
        };
        let number = if f.kind == ServerKind::Untrusted {
            "-)".to_string()
        } else {
            n += 1;
            format!("{n})")
        };
        let cluster = f.cluster.as_deref().map_or_else(String::new, |c| {
            format!(", cluster {}", crate::log::escape(c))
        });
        eprintln!(
            "  {number} {} {}:{} ({kind}{cluster})",
            crate::log::escape(&f.name),
            f.addr,
            f.port
        );
    }
    // a cluster (trusted fos servers announcing one name) is one more choice
    let clusters = clusters(&report.found);
    for (i, (name, members)) in clusters.iter().enumerate() {
        eprintln!(
            "  {}) cluster {}: {} servers, one chosen for you, another if it fails",
            trusted.len() + i + 1,
            crate::log::escape(name),
            members.len()
        );
    }
    let choice = match trusted.len() + clusters.len() {
        0 => {
            return Err(Error::Certificate(
                "no server found with a trusted certificate (the ones above present another; use --server HOST to check one)".into(),
            ));
        }
        1 => {
            eprintln!("Connecting to the only trusted server.");
            0
        }
        n => pick(n, "Connect to which one?")? - 1,
    };
    if let Some((_, members)) = choice
        .checked_sub(trusted.len())
        .and_then(|i| clusters.get(i))
    {
        return Ok(server_list(members));
    }
    let f = trusted[choice];
    Ok(format!("{}:{}", f.addr, f.port))
}

/// `fos-client --cluster NAME`: sweeps, and returns the members of that cluster (the
/// trusted fos servers that announce it) as `--server` takes them.
pub fn cluster_servers(cfg: &ClientConfig, opts: &Options, name: &str) -> Result<String, Error> {
    let report = sweep_with_report(cfg, opts, io::stderr().is_terminal())?;
    let found = clusters(&report.found);
    match found.iter().find(|(c, _)| c == name) {
        Some((_, members)) => Ok(server_list(members)),
        None => Err(Error::Connect(format!(
            "no server of cluster {} found (try --scan CIDR)",
            crate::log::escape(name)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let r = parse_range("127.0.0.0/24").unwrap();
        assert_eq!(r.len(), 254);
        assert_eq!((r[0], r[253]), (ip("127.0.0.1"), ip("127.0.0.254")));
        assert_eq!(
            parse_range("127.0.0.77/30").unwrap(),
            vec![ip("127.0.0.77"), ip("127.0.0.78")]
        );
        assert_eq!(parse_range("127.0.0.5/32").unwrap(), vec![ip("127.0.0.5")]);
        assert_eq!(
            parse_range("127.0.0.4/31").unwrap(),
            vec![ip("127.0.0.4"), ip("127.0.0.5")]
        );
        assert_eq!(parse_range("127.0.0.9").unwrap(), vec![ip("127.0.0.9")]);
        assert_eq!(
            parse_range("127.0.0.2-4").unwrap(),
            vec![ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")]
        );
        assert_eq!(parse_range("127.1.0.0/16").unwrap().len(), 65_534);
        let too_big = parse_range("127.0.0.0/15").unwrap_err().to_string();
        assert!(too_big.contains("more than a /16"), "{too_big}");
        for bad in [
            "",
            "::1",
            "[::1]/64",
            "127.0.0.1/33",
            "127.0.0.300",
            "127.0.0.5-2",
            "127.0.0.1-999",
            "host.local",
            "127.0.0.0/x",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clusters_group_trusted_fos_members() {
        let f = |last: u8, kind, cluster: Option<&str>| Found {
            addr: Ipv4Addr::new(127, 0, 0, last),
            port: 5001,
            name: format!("n{last}"),
            kind,
            cluster: cluster.map(Into::into),
        };
        let found = vec![
            f(2, ServerKind::Fos, Some("c")),
            f(3, ServerKind::Fos, Some("c")),
            f(4, ServerKind::Fos, None),
            f(5, ServerKind::Untrusted, Some("c")),
            f(6, ServerKind::Fos, Some("d")),
        ];
        let got = clusters(&found);
        assert_eq!(got.len(), 2);
        assert_eq!(server_list(&got[0].1), "127.0.0.2:5001,127.0.0.3:5001");
        assert_eq!(got[1].0, "d");
    }

    #[test]
    fn subnet_hosts() {
        assert_eq!(hosts(ip("127.0.0.9"), ip("255.255.255.0")).len(), 254);
        assert!(
            hosts(ip("127.0.0.9"), ip("255.0.0.0")).is_empty(),
            "a /8 is too large"
        );
    }
}
