//! Terminal helpers: reading a secret without echo.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};

use crate::Error;

/// Reads a secret without echo: from the terminal on stdin, else from `/dev/tty`.
pub fn read_secret(prompt: &str) -> Result<String, Error> {
    use std::os::fd::AsFd;
    if io::stdin().is_terminal() {
        let stdin = io::stdin();
        return read_secret_from(prompt, stdin.as_fd(), &mut stdin.lock());
    }
    let tty = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| Error::Usage("no terminal to ask for a password: set FOS_PASSWORD".into()))?;
    let mut reader = io::BufReader::new(&tty);
    read_secret_from(prompt, tty.as_fd(), &mut reader)
}

fn read_secret_from(
    prompt: &str,
    fd: std::os::fd::BorrowedFd<'_>,
    input: &mut dyn BufRead,
) -> Result<String, Error> {
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    let was = crate::sys::set_echo(fd, false).ok();
    let mut line = String::new();
    let read = input.read_line(&mut line);
    if let Some(was) = was {
        let _ = crate::sys::set_echo(fd, was);
    }
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
