//! What `fos-client` does once its flags are parsed: decide what to trust (`--cert`,
//! else the first pin file found, else `known_servers`), pick a server (or discover
//! one), check it against `known_servers` (asking, on a terminal, whether to trust a
//! new one), get credentials, connect, then run `-c` commands, a script on standard
//! input, or the interactive prompt. Returns the documented exit code.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use super::shell::{Login, Shell, ShellOptions};
use super::{ClientConfig, Remote, trust};
use crate::Error;
use crate::log::escape;
use crate::term::Terminal;

/// Largest `--password-file` read.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// Everything the command line decided.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Connection settings.
    pub config: ClientConfig,
    /// `--cert FILE`: pin exactly this certificate. `None`: the first pin file found
    /// (see `trust::pin_candidates`), else trust on first use.
    pub pin: Option<PathBuf>,
    /// `--server HOST[:PORT]` (or several, comma-separated); `None` means discover.
    pub server: Option<String>,
    /// `--cluster NAME`: without `--server`, discover that cluster's servers.
    pub cluster: Option<String>,
    /// `--user NAME`; `None` means ask.
    pub user: Option<String>,
    /// The password (from `FOS_PASSWORD`); `None` means ask without echo.
    pub password: Option<String>,
    /// `--password-file FILE`: the password is its first line (before `password`).
    pub password_file: Option<PathBuf>,
    /// `-c "cmd; cmd"`.
    pub commands: Option<String>,
    /// Interpreter settings (`-q`, `-k`).
    pub shell: ShellOptions,
    /// Discovery settings (`--scan`, `--list`, ...).
    pub discovery: crate::client::discovery::Options,
    /// `--list`: print the servers found and exit.
    pub list: bool,
}

/// Runs the client; returns its exit code.
pub fn run(inv: Invocation) -> i32 {
    match try_run(inv) {
        Ok(code) => code,
        // Ctrl-C at a prompt: the terminal shows ^C, nothing more to say
        Err(Error::Interrupted) => crate::error::exit::INTERRUPTED,
        Err(e) => {
            // the error may carry the server's text
            eprintln!("fos-client: {}", crate::log::escape(&e.to_string()));
            e.exit_code()
        }
    }
}

fn try_run(mut inv: Invocation) -> Result<i32, Error> {
    let looked = choose_trust(&mut inv);
    if inv.list {
        return crate::client::discovery::list_command(&inv.config, &inv.discovery);
    }
    let server = match (inv.server.take(), &inv.cluster) {
        (Some(s), _) => s,
        (None, Some(c)) => {
            crate::client::discovery::cluster_servers(&inv.config, &inv.discovery, c)?
        }
        (None, None) => crate::client::discovery::choose_server(&inv.config, &inv.discovery)?,
    };
    // before any credentials are asked for, as ssh checks the host key first
    let dialogue = inv.commands.is_none() && io::stdin().is_terminal();
    check_known_all(&inv.config, &server, &looked, dialogue)?;
    let user = match inv.user.take() {
        Some(u) => u,
        None => ask("username: ")?,
    };
    let password = match (&inv.password_file, inv.password.take()) {
        (Some(file), _) => read_password_file(file)?,
        (None, Some(p)) => p,
        (None, None) => Terminal::open()
            .ok_or_else(|| {
                Error::Usage(
                    "no terminal to ask for the password: set FOS_PASSWORD or use --password-file FILE"
                        .into(),
                )
            })?
            .read_secret(&format!("password for {user}: "))?,
    };
    // several servers (a cluster): one at random, so clients spread over them
    let servers = super::server_list(&server)?;
    let first = super::pick_first(servers.len());
    let (remote, member) = Remote::connect_from(&inv.config, &servers, first, &user, &password)?;
    let interactive = inv.commands.is_none() && io::stdin().is_terminal();
    if interactive {
        let kind = if remote.is_legacy() {
            "a Python server (legacy protocol)"
        } else {
            "a fos server"
        };
        let server = &servers[member];
        println!("Connected to {server} as {user}: {kind}. Type `help` for the commands.");
    }
    let login = Login {
        server: server.clone(),
        user: user.clone(),
        password,
    };
    let mut shell = Shell::new(remote, inv.config.clone(), inv.shell.clone())
        .with_login(login)
        .with_member(member);
    watch_ctrl_c(&shell);
    let code = match &inv.commands {
        Some(text) => shell.run_text(text),
        None if interactive => shell.interactive(),
        None => shell.run_script(io::stdin().lock()),
    };
    shell.close();
    Ok(code)
}

/// The signals the client's signal thread handles (see [`block_signals`]).
const SIGNALS: [i32; 2] = [crate::sys::SIGINT, crate::sys::SIGWINCH];

/// Blocks SIGINT and SIGWINCH in the calling thread: the binary calls it before any
/// thread exists, so that only the client's signal thread receives them.
pub fn block_signals() -> io::Result<()> {
    crate::sys::block_signals(&SIGNALS)
}

/// Ctrl-C (SIGINT, blocked in every thread by the binary and received here): the
/// first cancels the transfer in progress, or clears the prompt; a second within a
/// second leaves the client, with the terminal's settings put back. A window-size
/// change (SIGWINCH, blocked likewise) tells the progress bars to measure the terminal
/// again. Without blocked signals (library use) nothing is set up.
fn watch_ctrl_c(shell: &Shell) {
    use std::os::fd::AsFd;
    use std::sync::atomic::Ordering;
    let interrupt = std::sync::Arc::clone(&shell.interrupt);
    let prompt = std::sync::Arc::clone(&shell.prompt);
    let screen = shell.screen.clone();
    // the terminal as it is now, between commands; a bar or a password prompt may have
    // echo off when the second Ctrl-C comes
    let saved = crate::sys::term_mode(io::stdin().as_fd()).ok();
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let mut last: Option<std::time::Instant> = None;
            while let Ok(sig) = crate::sys::wait_signal(&SIGNALS) {
                if sig == crate::sys::SIGWINCH {
                    screen.resized.store(true, Ordering::SeqCst);
                    continue;
                }
                let now = std::time::Instant::now();
                if last.is_some_and(|l| now.duration_since(l) < std::time::Duration::from_secs(1)) {
                    if let Some(mode) = &saved {
                        let _ = crate::sys::set_term_mode(io::stdin().as_fd(), mode, false);
                    }
                    eprintln!();
                    std::process::exit(130);
                }
                last = Some(now);
                interrupt.store(true, Ordering::SeqCst);
                // at the prompt the terminal already dropped the typed line: draw a fresh one
                match prompt.lock().unwrap_or_else(|p| p.into_inner()).as_deref() {
                    Some(p) => {
                        print!("\n{p}");
                        let _ = io::stdout().flush();
                    }
                    // a progress bar owns the row: the transfer reports the cancel itself
                    None if screen.busy.load(Ordering::SeqCst) => {}
                    None => eprintln!(
                        "\nfos-client: interrupted (Ctrl-C again within a second to quit)"
                    ),
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("fos-client: no Ctrl-C handling: {e}");
    }
}

/// Decides what the server must present: `--cert` exactly; else the first pin file
/// found; else (no pin anywhere) the certificate recorded in `known_servers`. Returns
/// where it looked for a pin, to say so.
fn choose_trust(inv: &mut Invocation) -> Vec<PathBuf> {
    if let Some(pin) = inv.pin.take() {
        inv.config.cert = pin;
        return Vec::new();
    }
    if inv.config.ca {
        return Vec::new();
    }
    match trust::find_pin() {
        Some(pin) => {
            inv.config.cert = pin;
            Vec::new()
        }
        None => {
            inv.config.known_servers = trust::config_dir().map(|d| d.join(trust::KNOWN_SERVERS));
            trust::pin_candidates()
        }
    }
}

/// Trust on first use: the certificate `server` presents must be the one
/// `known_servers` records for it. A known server presenting another is refused,
/// loudly; an unknown one is shown with its fingerprint, and on a terminal (`ask`)
/// the user may trust it, which records it; in scripts it is exit 3, with the line
/// that would trust it.
/// [`check_known`] for each server of a `--server` list (a cluster): one that cannot
/// be reached now is passed over (the connection picks among the others), and at
/// least one must answer. A changed or refused certificate ends it at once.
fn check_known_all(
    cfg: &ClientConfig,
    servers: &str,
    looked: &[PathBuf],
    ask: bool,
) -> Result<(), Error> {
    let mut unreachable = None;
    let mut answered = false;
    for server in super::server_list(servers)? {
        match check_known(cfg, &server, looked, ask) {
            Ok(()) => answered = true,
            Err(e) if e.is_network() => unreachable = Some(e),
            Err(e) => return Err(e),
        }
    }
    match (answered, unreachable) {
        (false, Some(e)) => Err(e),
        _ => Ok(()),
    }
}

fn check_known(
    cfg: &ClientConfig,
    server: &str,
    looked: &[PathBuf],
    ask: bool,
) -> Result<(), Error> {
    if cfg.ca {
        return Ok(());
    }
    let Some(path) = &cfg.known_servers else {
        // a pin was found or given; or none was, and there is nowhere to keep servers
        if looked.is_empty() {
            return Ok(());
        }
        return Err(Error::Certificate(format!(
            "no certificate to check the server with: no pin in {}, and neither XDG_CONFIG_HOME nor HOME is set for known_servers (use --cert FILE)",
            trust::listed(looked)
        )));
    };
    let key = trust::server_key(server)?;
    let mut known = trust::KnownServers::load(path)?;
    let presented = trust::presented(server, cfg.connect_timeout)?;
    match known.get(&key) {
        Some(k) if k.fingerprint == presented => return Ok(()),
        Some(k) => {
            // as loud as ssh: this is what an impersonation looks like
            let key = escape(&key);
            eprintln!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
            eprintln!("@    WARNING: THE CERTIFICATE OF {key} HAS CHANGED!");
            eprintln!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
            eprintln!("Someone may be impersonating the server, or its certificate was replaced.");
            eprintln!(
                "{} line {} records SHA-256 {}",
                path.display(),
                k.line,
                k.fingerprint
            );
            eprintln!("the server now presents SHA-256 {presented}");
            eprintln!("If the change is expected, remove that line and connect again.");
            return Err(Error::Certificate(format!(
                "{key}: the certificate changed; refusing to connect"
            )));
        }
        // a certificate known under another name (discovery found this server by
        // its address): the same certificate, so the same trust
        None if known.fingerprints().contains(&presented) => return Ok(()),
        None => {}
    }
    let shown = escape(&key);
    eprintln!(
        "No pinned certificate was found (looked for {}), so servers are checked against {}.",
        trust::listed(looked),
        path.display()
    );
    eprintln!("{shown} is not known yet; its certificate's SHA-256 fingerprint is\n  {presented}");
    eprintln!("(fos-server logs its fingerprint at start-up; compare the two)");
    if !ask {
        eprintln!(
            "To trust it, connect once at the prompt, or add this line to {}:\n  {shown} {presented}",
            path.display()
        );
        return Err(Error::Certificate(format!(
            "{shown}: unknown server; not trusted in a script"
        )));
    }
    let terminal = Terminal::stdin().ok_or_else(|| {
        Error::Certificate(format!("{key}: unknown server and no terminal to ask"))
    })?;
    if !terminal.confirm("Trust this server and remember it?")? {
        return Err(Error::Certificate(format!("{key}: not trusted")));
    }
    known.add(&key, &presented)?;
    eprintln!("Remembered {key} in {}.", path.display());
    Ok(())
}

/// The first line of the password file (without its line ending).
fn read_password_file(path: &Path) -> Result<String, Error> {
    let fail = |e: io::Error| {
        Error::Usage(format!(
            "--password-file {}: {}",
            path.display(),
            super::local_reason(&e)
        ))
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .map_err(fail)?
        .take(MAX_PASSWORD_FILE + 1)
        .read_to_end(&mut text)
        .map_err(fail)?;
    if text.len() as u64 > MAX_PASSWORD_FILE {
        return Err(Error::Usage(format!(
            "--password-file {}: longer than {MAX_PASSWORD_FILE} bytes",
            path.display()
        )));
    }
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8(line.to_vec()).map_err(|_| {
        Error::Usage(format!(
            "--password-file {}: the password is not UTF-8",
            path.display()
        ))
    })
}

/// Asks for a line on the terminal (standard input); without one, that is a usage error.
fn ask(prompt: &str) -> Result<String, Error> {
    let terminal = Terminal::stdin().ok_or_else(|| {
        Error::Usage(format!(
            "no terminal to ask for the {}: give it as a flag",
            prompt.trim_end_matches(": ")
        ))
    })?;
    let answer = terminal.read_line(prompt)?.trim().to_string();
    if answer.is_empty() {
        return Err(Error::Usage("nothing entered".into()));
    }
    Ok(answer)
}
