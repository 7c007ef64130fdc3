//! `fos-client`: parses flags into an `Invocation` and runs the library's client.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use fos::client::app::{self, Invocation};
use fos::error::exit::{self, Usage};

/// The help's head: what the client does and its exit codes (from the one table).
fn about() -> String {
    format!(
        "\
Usage: fos-client [OPTIONS]

Connects to a fos server (or a Python one) over TLS, logs in, and runs commands:
interactively, from -c, or one per line from standard input when it is not a
terminal. Without --server, sweeps the LAN for servers and lets you pick one
(or, with --cluster, uses the servers of that cluster).
The password comes from --password-file, FOS_PASSWORD, or a prompt on the
terminal that does not echo (Ctrl-C or Ctrl-D there cancels); with none of the
three the client exits {usage}.

Exit status:
  {ok}  success
  {failed}  a command failed (with --list: no server found)
  {usage}  usage error
  {connect}  connection, TLS or certificate failure
  {login}  login refused (wrong credentials or throttled)
  {busy}  server busy
  {interrupted} Ctrl-C at a prompt, or twice within a second",
        ok = exit::OK,
        failed = exit::FAILED,
        usage = exit::USAGE,
        connect = exit::CONNECT,
        login = exit::LOGIN,
        busy = exit::BUSY,
        interrupted = exit::INTERRUPTED,
    )
}

fn options() -> getopts::Options {
    let d = Invocation::default();
    let mut o = getopts::Options::new();
    o.optopt(
        "s",
        "server",
        "server to connect to: HOST, HOST:PORT, IPv4, [IPv6]:PORT (default: discover); several, comma-separated, are one cluster: one is picked, and another if it fails",
        "HOST[:PORT]",
    );
    o.optopt(
        "",
        "cluster",
        "without --server: sweep (see --scan) and use the servers that announce this cluster",
        "NAME",
    );
    o.optopt("u", "user", "user name (default: ask)", "NAME");
    o.optopt(
        "",
        "password-file",
        "read the password from the first line of FILE (instead of FOS_PASSWORD or a prompt)",
        "FILE",
    );
    o.optopt(
        "c",
        "",
        "run these commands (separated by ';' or newlines) and exit at the first failure",
        "CMDS",
    );
    o.optopt(
        "",
        "cert",
        "pin exactly this server certificate (default: the first of ./certs/cert.pem, $XDG_CONFIG_HOME/fos/cert.pem or ~/.config/fos/cert.pem, /etc/fos/cert.pem; with none, servers are trusted on first use and kept in known_servers beside the second)",
        "FILE",
    );
    o.optflag(
        "",
        "ca",
        "verify the server against CA roots with host name checking instead of the pin",
    );
    o.optopt(
        "",
        "cafile",
        "with --ca: trust these CA certificates instead of the built-in roots",
        "FILE",
    );
    o.optopt(
        "",
        "server-name",
        "with --ca: the name to check (default: the host of --server)",
        "NAME",
    );
    o.optflag(
        "",
        "legacy",
        "speak the Python tool's protocol even to a fos server",
    );
    o.optflag("q", "quiet", "no progress bars or transfer summaries");
    o.optflag(
        "k",
        "keep-going",
        "with -c or a script: keep going after a failure; exit with the first failure's code",
    );
    o.optflag(
        "",
        "no-fsync",
        "do not fsync downloads before renaming them into place",
    );
    o.optopt(
        "",
        "retries",
        &format!(
            "tries for a transfer whose connection fails, with backoff 0.5 s doubling to 8 s (default {})",
            d.shell.retries
        ),
        "N",
    );
    o.optopt(
        "",
        "timeout",
        &format!(
            "connect and handshake timeout in seconds (default {})",
            d.config.connect_timeout.as_secs()
        ),
        "SECS",
    );
    o.optflag(
        "",
        "list",
        "sweep for servers, print one per line (address, port, name, kind, cluster; tab-separated) and exit",
    );
    o.optopt("", "scan", "sweep this range: a.b.c.d/n (at most /16), a.b.c.d or a.b.c.d-e (default: an interface's subnet)", "CIDR");
    o.optopt(
        "",
        "scan-threads",
        &format!(
            "connects in flight while sweeping (default {})",
            d.discovery.threads
        ),
        "N",
    );
    o.optopt(
        "",
        "scan-timeout",
        &format!(
            "connect timeout per address while sweeping, milliseconds (default {})",
            d.discovery.timeout.as_millis()
        ),
        "MS",
    );
    o.optopt(
        "",
        "greet-port",
        &format!("discovery port to sweep (default {})", d.discovery.port),
        "PORT",
    );
    o.optflag(
        "",
        "include-loopback",
        "offer loopback interfaces for the sweep too",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

fn main() -> ExitCode {
    // before any thread exists: Ctrl-C is then taken by the client's signal thread,
    // which cancels a transfer instead of killing the process (and SIGWINCH, so it can
    // tell the progress bars that the terminal changed size)
    if let Err(e) = app::block_signals() {
        eprintln!("fos-client: cannot set up Ctrl-C handling: {e}");
    }
    exit::status("fos-client", try_main())
}

/// Parses the command line and runs the client; the exit code, or the usage error
/// that stops it before anything runs.
fn try_main() -> Result<i32, Usage> {
    let o = options();
    let Some(m) = exit::flags("fos-client", &o, || o.usage(&about()))? else {
        return Ok(exit::OK);
    };
    if let Some(extra) = m.free.first() {
        return Err(Usage(format!("unexpected argument {extra:?}")));
    }
    let mut inv = Invocation::default();
    macro_rules! num {
        ($name:expr) => {
            match m.opt_str($name).map(|v| v.parse()) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(_)) => return Err(Usage(format!("--{}: not a number", $name))),
            }
        };
    }
    inv.server = m.opt_str("server");
    inv.cluster = m.opt_str("cluster");
    inv.user = m.opt_str("user");
    inv.password = std::env::var("FOS_PASSWORD").ok();
    inv.password_file = m.opt_str("password-file").map(PathBuf::from);
    inv.commands = m.opt_str("c");
    inv.pin = m.opt_str("cert").map(PathBuf::from);
    inv.config.ca = m.opt_present("ca") || m.opt_present("cafile");
    inv.config.cafile = m.opt_str("cafile").map(PathBuf::from);
    inv.config.server_name = m.opt_str("server-name");
    inv.config.legacy = m.opt_present("legacy");
    inv.config.fsync = !m.opt_present("no-fsync");
    if let Some(t) = num!("timeout") {
        if t == 0 {
            return Err(Usage("--timeout: at least 1 second".into()));
        }
        inv.config.connect_timeout = Duration::from_secs(t);
    }
    inv.shell.quiet = m.opt_present("quiet");
    if let Some(n) = num!("retries") {
        inv.shell.retries = n;
    }
    inv.shell.keep_going = m.opt_present("keep-going");
    inv.list = m.opt_present("list");
    inv.discovery.scan = m.opt_str("scan");
    inv.discovery.include_loopback = m.opt_present("include-loopback");
    if let Some(n) = num!("scan-threads") {
        inv.discovery.threads = n;
    }
    if let Some(ms) = num!("scan-timeout") {
        inv.discovery.timeout = Duration::from_millis(ms);
    }
    if let Some(p) = num!("greet-port") {
        inv.discovery.port = p;
    }
    Ok(app::run(inv))
}
