//! `fos-server`: parses flags into an `Invocation` and runs the library's server
//! application (`fos::server::app`). `fos-server passwd USER` adds or replaces a
//! user's hashed password.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use fos::Level;
use fos::error::exit::{self, Usage};
use fos::server::app::{self, Invocation};
use fos::server::{self, ServerConfig};

fn options() -> getopts::Options {
    let d = ServerConfig::default();
    let secs = |t: Duration| t.as_secs();
    let size = |s: Option<u64>| s.map_or_else(|| "none".to_string(), |n| n.to_string());
    // a relative default reads as one, ./server_storage
    let here = |p: &Path| Path::new(".").join(p).display().to_string();
    let mut o = getopts::Options::new();
    o.optopt("", "bind", "address to listen on (IPv4 or IPv6); default: ask among this host's non-loopback IPv4 addresses, or use the only one", "ADDR");
    o.optopt(
        "",
        "port",
        &format!("session port (default {})", d.port),
        "PORT",
    );
    o.optopt(
        "",
        "greet-port",
        &format!("discovery port (default {})", d.greet_port),
        "PORT",
    );
    o.optflag("", "no-discovery", "do not listen on the discovery port");
    o.optflag(
        "",
        "no-legacy",
        "refuse clients that speak the Python tool's protocol",
    );
    o.optopt(
        "",
        "root",
        &format!(
            "storage root; each user works in ROOT/USER (default {})",
            here(&d.root)
        ),
        "DIR",
    );
    o.optopt(
        "",
        "users",
        &format!(
            "users file, user:secret per line (default {})",
            here(&d.users)
        ),
        "FILE",
    );
    o.optopt(
        "",
        "cert",
        &format!("certificate chain, PEM (default {})", d.cert.display()),
        "FILE",
    );
    o.optopt(
        "",
        "key",
        &format!("private key, PEM (default {})", d.key.display()),
        "FILE",
    );
    o.optopt(
        "",
        "name",
        &format!(
            "name announced to discovery (default the host name, here {:?})",
            d.name
        ),
        "NAME",
    );
    o.optopt(
        "",
        "cluster",
        &format!(
            "announce membership of this cluster to discovery: the servers over one shared --root give one name, and clients use them as one (default {})",
            d.cluster.as_deref().unwrap_or("none")
        ),
        "NAME",
    );
    o.optopt(
        "",
        "max-sessions",
        &format!("most sessions at once (default {})", d.max_sessions),
        "N",
    );
    o.optopt(
        "",
        "max-sessions-per-ip",
        &format!(
            "most sessions from one address (default {})",
            d.max_sessions_per_ip
        ),
        "N",
    );
    o.optopt(
        "",
        "max-prelogin-per-ip",
        &format!(
            "most connections from one address that have not logged in yet (default {})",
            d.max_prelogin_per_ip
        ),
        "N",
    );
    o.optopt(
        "",
        "max-prelogin",
        &format!(
            "most connections that have not logged in yet, in all (default {})",
            d.max_prelogin
        ),
        "N",
    );
    o.optopt(
        "",
        "max-file-size",
        &format!(
            "largest upload, bytes with optional K/M/G/T suffix (default {})",
            size(d.max_file_size)
        ),
        "SIZE",
    );
    o.optopt(
        "",
        "quota",
        &format!(
            "storage per user, bytes with optional K/M/G/T suffix (default {})",
            size(d.quota)
        ),
        "SIZE",
    );
    o.optopt(
        "",
        "idle-timeout",
        &format!(
            "close sessions idle this many seconds (default {})",
            secs(d.idle_timeout)
        ),
        "SECS",
    );
    o.optopt(
        "",
        "transfer-timeout",
        &format!(
            "cut a resumable upload whose client sends nothing for this many seconds, keeping its partial for a resume (default {})",
            secs(d.transfer_timeout)
        ),
        "SECS",
    );
    o.optopt(
        "",
        "shutdown-grace",
        &format!(
            "on SIGINT/SIGTERM, seconds running transfers may finish (default {})",
            secs(d.shutdown_grace)
        ),
        "SECS",
    );
    o.optflag(
        "",
        "no-fsync",
        "do not fsync uploads before acknowledging them (faster, less durable)",
    );
    o.optopt(
        "",
        "partial-max-age",
        &format!(
            "remove interrupted uploads kept for a resume after this many seconds untouched (default {})",
            secs(d.partial_max_age)
        ),
        "SECS",
    );
    o.optopt("", "log", "also append the log to FILE", "FILE");
    o.optflag("q", "quiet", "log warnings and errors only");
    o.optflag("v", "verbose", "log debug detail too");
    o.optopt(
        "",
        "iterations",
        &format!(
            "with passwd: PBKDF2 iterations (default {})",
            app::DEFAULT_ITERATIONS
        ),
        "N",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

fn usage(o: &getopts::Options) -> String {
    o.usage(&format!(
        "Usage: fos-server [OPTIONS]\n       fos-server passwd USER [--users FILE]\n\n\
         Serves per-user storage over TLS to fos clients and to the Python tool's clients.\n\
         SIGINT/SIGTERM stop it gracefully; SIGHUP reopens --log. Exit status: {} after a\n\
         clean shutdown, {} on a start-up failure, {} on a usage error.",
        exit::OK,
        exit::STARTUP,
        exit::USAGE
    ))
}

fn main() -> ExitCode {
    // before any thread exists, so every thread inherits the mask and only the
    // signal thread receives SIGINT/SIGTERM
    if let Err(e) = app::block_signals() {
        eprintln!("fos-server: cannot set up signal handling: {e}");
        return ExitCode::from(exit::STARTUP as u8);
    }
    exit::status("fos-server", try_main())
}

fn parse<T: std::str::FromStr>(m: &getopts::Matches, name: &str) -> Result<Option<T>, Usage> {
    m.opt_str(name)
        .map(|v| {
            v.parse()
                .map_err(|_| Usage(format!("--{name}: invalid value {v:?}")))
        })
        .transpose()
}

/// Parses the command line and runs what it asks for; the exit code, or the usage
/// error that stops it before anything runs.
fn try_main() -> Result<i32, Usage> {
    let o = options();
    let Some(m) = exit::flags("fos-server", &o, || usage(&o))? else {
        return Ok(exit::OK);
    };
    let mut inv = Invocation::default();
    let cfg = &mut inv.config;
    if let Some(users) = m.opt_str("users") {
        cfg.users = PathBuf::from(users);
    }
    if m.free.first().map(String::as_str) == Some("passwd") {
        let [_, user] = &m.free[..] else {
            return Err(Usage("usage: fos-server passwd USER [--users FILE]".into()));
        };
        let iterations = parse(&m, "iterations")?.unwrap_or(app::DEFAULT_ITERATIONS);
        return Ok(app::passwd(&cfg.users, user, iterations));
    }
    if let Some(extra) = m.free.first() {
        return Err(Usage(format!("unexpected argument {extra:?}")));
    }
    inv.level = match (m.opt_present("quiet"), m.opt_present("verbose")) {
        (true, _) => Level::Warn,
        (_, true) => Level::Debug,
        _ => Level::Info,
    };
    inv.log_file = m.opt_str("log").map(PathBuf::from);
    inv.bind = parse(&m, "bind")?;
    if let Some(p) = parse(&m, "port")? {
        cfg.port = p;
    }
    if let Some(p) = parse(&m, "greet-port")? {
        cfg.greet_port = p;
    }
    cfg.discovery = !m.opt_present("no-discovery");
    cfg.legacy = !m.opt_present("no-legacy");
    cfg.fsync = !m.opt_present("no-fsync");
    if let Some(v) = m.opt_str("root") {
        cfg.root = PathBuf::from(v);
    }
    if let Some(v) = m.opt_str("cert") {
        cfg.cert = PathBuf::from(v);
    }
    if let Some(v) = m.opt_str("key") {
        cfg.key = PathBuf::from(v);
    }
    if let Some(v) = m.opt_str("name") {
        cfg.name = v;
    }
    if let Some(v) = m.opt_str("cluster") {
        let ok = !v.is_empty() && v.len() <= 64 && !v.chars().any(char::is_control);
        if !ok {
            return Err(Usage(format!(
                "--cluster: {:?}: give a name of 1 to 64 bytes without control characters",
                fos::escape(&v)
            )));
        }
        cfg.cluster = Some(v);
    }
    if let Some(v) = parse(&m, "max-sessions")? {
        cfg.max_sessions = v;
    }
    if let Some(v) = parse(&m, "max-sessions-per-ip")? {
        cfg.max_sessions_per_ip = v;
    }
    if let Some(v) = parse::<usize>(&m, "max-prelogin-per-ip")? {
        cfg.max_prelogin_per_ip = v.max(1);
    }
    if let Some(v) = parse::<usize>(&m, "max-prelogin")? {
        cfg.max_prelogin = v.max(1);
    }
    for (flag, slot) in [
        ("max-file-size", &mut cfg.max_file_size),
        ("quota", &mut cfg.quota),
    ] {
        if let Some(v) = m.opt_str(flag) {
            *slot = Some(
                server::parse_size(&v)
                    .ok_or_else(|| Usage(format!("--{flag}: invalid size {v:?} (e.g. 500M)")))?,
            );
        }
    }
    if let Some(v) = parse::<u64>(&m, "idle-timeout")? {
        cfg.idle_timeout = Duration::from_secs(v.max(1));
    }
    if let Some(v) = parse::<u64>(&m, "transfer-timeout")? {
        cfg.transfer_timeout = Duration::from_secs(v.max(1));
    }
    if let Some(v) = parse::<u64>(&m, "partial-max-age")? {
        cfg.partial_max_age = Duration::from_secs(v);
    }
    if let Some(v) = parse::<u64>(&m, "shutdown-grace")? {
        cfg.shutdown_grace = Duration::from_secs(v);
    }
    Ok(app::run(inv))
}
