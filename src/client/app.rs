//! What `fos-client` does once its flags are parsed: pick a server (or discover
//! one), get credentials, connect, then run `-c` commands, a script on standard
//! input, or the interactive prompt. Returns the documented exit code.

use std::io::{self, BufRead, IsTerminal, Write};

use super::shell::{Shell, ShellOptions};
use super::{ClientConfig, Remote};
use crate::Error;

/// Everything the command line decided.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Connection settings.
    pub config: ClientConfig,
    /// `--server HOST[:PORT]`; `None` means discover.
    pub server: Option<String>,
    /// `--user NAME`; `None` means ask.
    pub user: Option<String>,
    /// The password (from `FOS_PASSWORD`); `None` means ask without echo.
    pub password: Option<String>,
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
        Err(e) => {
            eprintln!("fos-client: {e}");
            e.exit_code()
        }
    }
}

fn try_run(mut inv: Invocation) -> Result<i32, Error> {
    if inv.list {
        return crate::discovery::list_command(&inv.config, &inv.discovery);
    }
    let server = match inv.server.take() {
        Some(s) => s,
        None => crate::discovery::choose_server(&inv.config, &inv.discovery)?,
    };
    let user = match inv.user.take() {
        Some(u) => u,
        None => ask("username: ")?,
    };
    let password = match inv.password.take() {
        Some(p) => p,
        None => crate::term::read_secret(&format!("password for {user}: "))?,
    };
    let remote = Remote::connect(&inv.config, &server, &user, &password)?;
    let interactive = inv.commands.is_none() && io::stdin().is_terminal();
    if interactive {
        let kind = if remote.is_legacy() {
            "a Python server (legacy protocol)"
        } else {
            "a fos server"
        };
        println!("Connected to {server} as {user}: {kind}. Type `help` for the commands.");
    }
    let mut shell = Shell::new(remote, inv.config.clone(), inv.shell.clone());
    let code = match &inv.commands {
        Some(text) => shell.run_text(text),
        None if interactive => shell.interactive(),
        None => shell.run_script(io::stdin().lock()),
    };
    shell.close();
    Ok(code)
}

/// Asks for a line on the terminal; without one, that is a usage error.
fn ask(prompt: &str) -> Result<String, Error> {
    if !io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "no terminal to ask for the {}: give it as a flag",
            prompt.trim_end_matches(": ")
        )));
    }
    eprint!("{prompt}");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim().to_string();
    if answer.is_empty() {
        return Err(Error::Usage("nothing entered".into()));
    }
    Ok(answer)
}
