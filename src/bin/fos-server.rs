//! `fos-server`: parses flags into a `ServerConfig` and runs the library's server.
//! `fos-server passwd USER` adds or replaces a user's hashed password.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use fos::log::{Level, Logger};
use fos::server::{self, Server, ServerConfig};

fn options() -> getopts::Options {
    let d = ServerConfig::default();
    let mut o = getopts::Options::new();
    o.optopt("", "bind", "address to listen on (IPv4 or IPv6); default: ask among this host's non-loopback IPv4 addresses, or use the only one", "ADDR");
    o.optopt("", "port", "session port (default 5001)", "PORT");
    o.optopt("", "greet-port", "discovery port (default 5003)", "PORT");
    o.optflag("", "no-discovery", "do not listen on the discovery port");
    o.optflag(
        "",
        "no-legacy",
        "refuse clients that speak the Python tool's protocol",
    );
    o.optopt(
        "",
        "root",
        "storage root; each user works in ROOT/USER (default ./server_storage)",
        "DIR",
    );
    o.optopt(
        "",
        "users",
        "users file, user:secret per line (default ./user_credentials.txt)",
        "FILE",
    );
    o.optopt(
        "",
        "cert",
        "certificate chain, PEM (default certs/cert.pem)",
        "FILE",
    );
    o.optopt(
        "",
        "key",
        "private key, PEM (default certs/key.pem)",
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
        "announce membership of this cluster to discovery: the servers over one shared --root give one name, and clients use them as one (default none)",
        "NAME",
    );
    o.optopt(
        "",
        "max-sessions",
        "most sessions at once (default 512)",
        "N",
    );
    o.optopt(
        "",
        "max-sessions-per-ip",
        "most sessions from one address (default 32)",
        "N",
    );
    o.optopt(
        "",
        "max-prelogin-per-ip",
        "most connections from one address that have not logged in yet (default 8)",
        "N",
    );
    o.optopt(
        "",
        "max-prelogin",
        "most connections that have not logged in yet, in all (default 128)",
        "N",
    );
    o.optopt(
        "",
        "max-file-size",
        "largest upload, bytes with optional K/M/G/T suffix (default none)",
        "SIZE",
    );
    o.optopt(
        "",
        "quota",
        "storage per user, bytes with optional K/M/G/T suffix (default none)",
        "SIZE",
    );
    o.optopt(
        "",
        "idle-timeout",
        "close sessions idle this many seconds (default 900)",
        "SECS",
    );
    o.optopt(
        "",
        "transfer-timeout",
        "cut a resumable upload whose client sends nothing for this many seconds, keeping its partial for a resume (default 60)",
        "SECS",
    );
    o.optopt(
        "",
        "shutdown-grace",
        "on SIGINT/SIGTERM, seconds running transfers may finish (default 30)",
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
        "remove interrupted uploads kept for a resume after this many seconds untouched (default 86400)",
        "SECS",
    );
    o.optopt("", "log", "also append the log to FILE", "FILE");
    o.optflag("q", "quiet", "log warnings and errors only");
    o.optflag("v", "verbose", "log debug detail too");
    o.optopt(
        "",
        "iterations",
        "with passwd: PBKDF2 iterations (default 600000)",
        "N",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

fn usage(o: &getopts::Options) -> String {
    o.usage(
        "Usage: fos-server [OPTIONS]\n       fos-server passwd USER [--users FILE]\n\n\
         Serves per-user storage over TLS to fos clients and to the Python tool's clients.\n\
         SIGINT/SIGTERM stop it gracefully; SIGHUP reopens --log. Exit status: 0 after a\n\
         clean shutdown, 1 on a start-up failure, 2 on a usage error.",
    )
}

/// SIGINT and SIGTERM stop the server gracefully; SIGHUP reopens `--log`.
const SIGNALS: [i32; 3] = [fos::sys::SIGINT, fos::sys::SIGTERM, fos::sys::SIGHUP];

fn main() -> ExitCode {
    // before any thread exists, so every thread inherits the mask and only the
    // signal thread receives SIGINT/SIGTERM
    if let Err(e) = fos::sys::block_signals(&SIGNALS) {
        eprintln!("fos-server: cannot set up signal handling: {e}");
        return ExitCode::from(1);
    }
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fos-server: {e}");
            let code = if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            ExitCode::from(code)
        }
    }
}

#[derive(Debug)]
struct UsageError(String);
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (see --help)", self.0)
    }
}
impl Error for UsageError {}

fn parse<T: std::str::FromStr>(m: &getopts::Matches, name: &str) -> Result<Option<T>, UsageError> {
    m.opt_str(name)
        .map(|v| {
            v.parse()
                .map_err(|_| UsageError(format!("--{name}: invalid value {v:?}")))
        })
        .transpose()
}

fn try_main() -> Result<(), Box<dyn Error>> {
    let o = options();
    let m = o
        .parse(std::env::args().skip(1))
        .map_err(|e| UsageError(e.to_string()))?;
    if m.opt_present("help") {
        print!("{}", usage(&o));
        return Ok(());
    }
    if m.opt_present("version") {
        println!("fos-server {}", fos::VERSION);
        return Ok(());
    }
    let mut cfg = ServerConfig::default();
    if let Some(users) = m.opt_str("users") {
        cfg.users = PathBuf::from(users);
    }
    if m.free.first().map(String::as_str) == Some("passwd") {
        let [_, user] = &m.free[..] else {
            return Err(UsageError("usage: fos-server passwd USER [--users FILE]".into()).into());
        };
        let iterations = parse(&m, "iterations")?.unwrap_or(fos::auth::DEFAULT_ITERATIONS);
        fos::auth::passwd_command(&cfg.users, user, iterations)?;
        return Ok(());
    }
    if let Some(extra) = m.free.first() {
        return Err(UsageError(format!("unexpected argument {extra:?}")).into());
    }
    let level = match (m.opt_present("quiet"), m.opt_present("verbose")) {
        (true, _) => Level::Warn,
        (_, true) => Level::Debug,
        _ => Level::Info,
    };
    let mut log = Logger::new(level);
    if let Some(path) = m.opt_str("log") {
        log = log
            .with_log_file(std::path::Path::new(&path))
            .map_err(|e| format!("--log {path}: {e}"))?;
    }
    let log = Arc::new(log);
    cfg.bind = match parse(&m, "bind")? {
        Some(ip) => ip,
        None => server::choose_bind_address()?,
    };
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
            return Err(UsageError(format!(
                "--cluster: {:?}: give a name of 1 to 64 bytes without control characters",
                fos::log::escape(&v)
            ))
            .into());
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
            *slot =
                Some(server::parse_size(&v).ok_or_else(|| {
                    UsageError(format!("--{flag}: invalid size {v:?} (e.g. 500M)"))
                })?);
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
    server::startup_warnings(&cfg, &log);
    let server = Server::bind(cfg.clone(), Arc::clone(&log))?;
    let addr = server.local_addr()?;
    match server.greet_addr() {
        Some(g) => println!(
            "fos-server {}: listening on {addr} (discovery on {g}), serving {} as {:?}{}",
            fos::VERSION,
            cfg.root.display(),
            cfg.name,
            cfg.cluster
                .as_ref()
                .map_or_else(String::new, |c| format!(" in cluster {c:?}"))
        ),
        None => println!(
            "fos-server {}: listening on {addr} (discovery off), serving {} as {:?}",
            fos::VERSION,
            cfg.root.display(),
            cfg.name
        ),
    }
    let handle = server.shutdown_handle();
    let signal_log = Arc::clone(&log);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(sig) = fos::sys::wait_signal(&SIGNALS) {
                if sig == fos::sys::SIGHUP {
                    match signal_log.reopen() {
                        Ok(()) => signal_log.info(format_args!("SIGHUP: log file reopened")),
                        Err(e) => signal_log.warn(format_args!(
                            "SIGHUP: cannot reopen the log file ({e}); still writing to the old one"
                        )),
                    }
                    continue;
                }
                let name = if sig == fos::sys::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                signal_log.info(format_args!(
                    "{name}: shutting down (new connections refused)"
                ));
                handle.shutdown();
                break;
            }
        })?;
    server.run()?;
    log.info(format_args!("stopped"));
    Ok(())
}
