//! What `fos-server` does once its flags are parsed: set up the logger (with `--log`,
//! reopened on SIGHUP), pick the address to listen on (asking on a terminal when
//! `--bind` is not given), print the banner, start the signal thread (SIGINT/SIGTERM
//! shut down gracefully) and run the server; and `fos-server passwd`. Returns the
//! documented exit code. It parses no flags: the binary does.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Server, ServerConfig};
use crate::error::exit;
use crate::log::{Level, Logger};
use crate::sys;

/// The signals the server handles: SIGINT and SIGTERM stop it gracefully, SIGHUP
/// reopens `--log`. The binary blocks them before any thread exists, so only the
/// signal thread receives them.
pub const SIGNALS: [i32; 3] = [sys::SIGINT, sys::SIGTERM, sys::SIGHUP];

/// Blocks [`SIGNALS`] in the calling thread: the binary calls it first thing, before
/// any thread exists, so that every thread inherits the mask.
pub fn block_signals() -> std::io::Result<()> {
    sys::block_signals(&SIGNALS)
}

/// The PBKDF2 iteration count `passwd` uses unless told otherwise.
pub use crate::auth::DEFAULT_ITERATIONS;

/// Everything the command line decided.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The server's settings; its `bind` is used only when [`Invocation::bind`] says so.
    pub config: ServerConfig,
    /// `--bind ADDR`; `None` means offer this host's addresses (see
    /// [`super::choose_bind_address`]).
    pub bind: Option<IpAddr>,
    /// How much to log (`-q`, `-v`). Defaults to `Info`.
    pub level: Level,
    /// `--log FILE`: also append the log there.
    pub log_file: Option<PathBuf>,
}

impl Default for Invocation {
    fn default() -> Self {
        Invocation {
            config: ServerConfig::default(),
            bind: None,
            level: Level::Info,
            log_file: None,
        }
    }
}

/// Runs the server until a signal stops it; returns its exit code.
pub fn run(inv: Invocation) -> i32 {
    report(try_run(inv))
}

/// `fos-server passwd USER`: adds or replaces `user`'s hashed password in `users`;
/// returns the exit code.
pub fn passwd(users: &Path, user: &str, iterations: u32) -> i32 {
    report(crate::auth::passwd_command(users, user, iterations).map_err(Into::into))
}

fn report(result: Result<(), Box<dyn std::error::Error>>) -> i32 {
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("fos-server: {e}");
            exit::STARTUP
        }
    }
}

fn try_run(inv: Invocation) -> Result<(), Box<dyn std::error::Error>> {
    let mut log = Logger::new(inv.level);
    if let Some(path) = &inv.log_file {
        log = log
            .with_log_file(path)
            .map_err(|e| format!("--log {}: {e}", path.display()))?;
    }
    let log = Arc::new(log);
    let mut cfg = inv.config;
    cfg.bind = match inv.bind {
        Some(ip) => ip,
        None => super::choose_bind_address()?,
    };
    super::startup_warnings(&cfg, &log);
    let server = Server::bind(cfg.clone(), Arc::clone(&log))?;
    banner(&server, &cfg)?;
    let handle = server.shutdown_handle();
    let signal_log = Arc::clone(&log);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch_signals(&signal_log, move || handle.shutdown()))?;
    server.run()?;
    log.info(format_args!("stopped"));
    Ok(())
}

/// The one line on standard output that says where the server listens.
fn banner(server: &Server, cfg: &ServerConfig) -> std::io::Result<()> {
    let addr = server.local_addr()?;
    match server.greet_addr() {
        Some(g) => println!(
            "fos-server {}: listening on {addr} (discovery on {g}), serving {} as {:?}{}",
            crate::VERSION,
            cfg.root.display(),
            cfg.name,
            cfg.cluster
                .as_ref()
                .map_or_else(String::new, |c| format!(" in cluster {c:?}"))
        ),
        None => println!(
            "fos-server {}: listening on {addr} (discovery off), serving {} as {:?}",
            crate::VERSION,
            cfg.root.display(),
            cfg.name
        ),
    }
    Ok(())
}

/// The signal thread: SIGHUP reopens the log file, SIGINT or SIGTERM calls `shutdown`
/// once and ends the thread.
fn watch_signals(log: &Logger, shutdown: impl FnOnce()) {
    while let Ok(sig) = sys::wait_signal(&SIGNALS) {
        if sig == sys::SIGHUP {
            match log.reopen() {
                Ok(()) => log.info(format_args!("SIGHUP: log file reopened")),
                Err(e) => log.warn(format_args!(
                    "SIGHUP: cannot reopen the log file ({e}); still writing to the old one"
                )),
            }
            continue;
        }
        let name = if sig == sys::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        log.info(format_args!(
            "{name}: shutting down (new connections refused)"
        ));
        shutdown();
        break;
    }
}
