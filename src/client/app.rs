//! What `fos-client` does once its flags are parsed: pick a server (or discover
//! one), get credentials, connect, then run `-c` commands, a script on standard
//! input, or the interactive prompt. Returns the documented exit code.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use super::shell::{Login, Shell, ShellOptions};
use super::{ClientConfig, Remote};
use crate::Error;
use crate::term::Terminal;

/// Largest `--password-file` read.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// Everything the command line decided.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Connection settings.
    pub config: ClientConfig,
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
    pub discovery: crate::discovery::Options,
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
    if inv.list {
        return crate::discovery::list_command(&inv.config, &inv.discovery);
    }
    let server = match (inv.server.take(), &inv.cluster) {
        (Some(s), _) => s,
        (None, Some(c)) => crate::discovery::cluster_servers(&inv.config, &inv.discovery, c)?,
        (None, None) => crate::discovery::choose_server(&inv.config, &inv.discovery)?,
    };
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
            let signals = [crate::sys::SIGINT, crate::sys::SIGWINCH];
            while let Ok(sig) = crate::sys::wait_signal(&signals) {
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
