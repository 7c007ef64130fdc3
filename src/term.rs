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
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(tty) => {
            let mut reader = io::BufReader::new(&tty);
            read_secret_from(prompt, tty.as_fd(), &mut reader)
        }
        // no terminal at all (a script, a pipeline): the next line of standard input
        Err(_) => {
            let mut line = String::new();
            if io::stdin().lock().read_line(&mut line)? == 0 {
                return Err(Error::Usage(format!(
                    "{}: no terminal and no more input: set FOS_PASSWORD",
                    prompt.trim_end_matches(": ")
                )));
            }
            Ok(line.trim_end_matches(['\n', '\r']).to_string())
        }
    }
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
