//! Terminal dialogue: a line read key by key (a password without echo, a user name, a
//! yes/no answer). The terminal's own line editing and signal keys are turned off
//! while it is read, so Ctrl-C, Ctrl-D and Ctrl-Z arrive here as bytes and mean the
//! same everywhere: Ctrl-C is [`Error::Interrupted`], Ctrl-D [`Error::Cancelled`]
//! (nothing typed is used), and Ctrl-Z puts the terminal back, suspends the client,
//! and on `fg` turns echo off again and asks anew. The terminal's settings are
//! restored however the read ends.
//!
//! Without a terminal there is no dialogue: [`Terminal::open`] gives `None`, and the
//! caller decides what that means (the login password is then an error, never the
//! first line of a script).

use std::fs::{self, File};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use crate::Error;
use crate::sys::{self, TermMode};

/// The terminal a prompt talks to.
#[derive(Debug)]
pub struct Terminal {
    /// The controlling terminal, when standard input is not a terminal.
    tty: Option<File>,
    stdin: io::Stdin,
}

/// The key that ended the reading of one line.
enum Key {
    Enter,
    Interrupt,
    Eof,
    Suspend,
}

/// Puts the terminal's settings back when dropped.
struct Restore<'a> {
    fd: BorrowedFd<'a>,
    saved: TermMode,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = sys::set_term_mode(self.fd, &self.saved, false);
    }
}

impl Terminal {
    /// Standard input if it is a terminal, else the controlling terminal
    /// (`/dev/tty`, as ssh asks for a password), else `None`.
    pub fn open() -> Option<Terminal> {
        if let Some(t) = Terminal::stdin() {
            return Some(t);
        }
        let tty = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        // a descriptor that opened but is no terminal (never, on a sane system)
        sys::term_mode(tty.as_fd()).ok()?;
        Some(Terminal {
            tty: Some(tty),
            stdin: io::stdin(),
        })
    }

    /// Standard input, if it is a terminal.
    pub fn stdin() -> Option<Terminal> {
        let stdin = io::stdin();
        stdin.is_terminal().then_some(Terminal { tty: None, stdin })
    }

    /// Reads a secret without echo.
    pub fn read_secret(&self, prompt: &str) -> Result<String, Error> {
        self.read_keys(prompt, false)
    }

    /// Reads a line, echoing what is typed.
    pub fn read_line(&self, prompt: &str) -> Result<String, Error> {
        self.read_keys(prompt, true)
    }

    /// Asks a yes/no question; anything but `y`/`yes`, and Ctrl-C or Ctrl-D, is no.
    pub fn confirm(&self, question: &str) -> Result<bool, Error> {
        match self.read_line(&format!("{question} [y/N] ")) {
            Ok(answer) => Ok(matches!(answer.trim(), "y" | "Y" | "yes")),
            Err(Error::Interrupted | Error::Cancelled) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.tty {
            Some(t) => t.as_fd(),
            None => self.stdin.as_fd(),
        }
    }

    /// Writes to the terminal: to `/dev/tty` itself, or to stderr beside standard input.
    fn show(&self, bytes: &[u8]) {
        let _ = match &self.tty {
            Some(t) => {
                let mut t: &File = t;
                t.write_all(bytes).and_then(|()| t.flush())
            }
            None => {
                let mut e = io::stderr().lock();
                e.write_all(bytes).and_then(|()| e.flush())
            }
        };
    }

    /// One byte typed; `None` when the terminal is gone (hung up).
    fn byte(&self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            // standard input keeps its buffer: what is typed after Enter stays for the
            // next reader of it
            let n = match &self.tty {
                Some(t) => {
                    let mut t: &File = t;
                    t.read(&mut b)
                }
                None => self.stdin.lock().read(&mut b),
            };
            match n {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn read_keys(&self, prompt: &str, echo: bool) -> Result<String, Error> {
        let fd = self.fd();
        let saved = sys::term_mode(fd)?;
        let _restore = Restore { fd, saved };
        loop {
            self.show(prompt.as_bytes());
            // what was typed ahead of a password prompt was echoed: throw it away
            sys::set_term_mode(fd, &saved.key_by_key(), !echo)?;
            let mut line = Vec::new();
            match self.edit(&mut line, echo, saved.keys())? {
                Key::Enter => {
                    self.show(b"\n");
                    return Ok(String::from_utf8_lossy(&line).into_owned());
                }
                Key::Interrupt => {
                    self.show(b"^C\n");
                    return Err(Error::Interrupted);
                }
                Key::Eof => {
                    self.show(b"\n");
                    return Err(Error::Cancelled);
                }
                Key::Suspend => {
                    self.show(b"^Z\n");
                    sys::set_term_mode(fd, &saved, false)?;
                    sys::suspend_self()?;
                    // continued: whatever the shell did to the terminal meanwhile, the
                    // next round sets it up again (echo off) and asks anew
                }
            }
        }
    }

    /// Collects keys into `line` until Enter or a special key.
    fn edit(&self, line: &mut Vec<u8>, echo: bool, keys: sys::TermKeys) -> io::Result<Key> {
        // the usual bytes work even where `stty` disabled or moved a key
        let is = |b: u8, key: u8, usual: u8| b == usual || (key != 0 && b == key);
        loop {
            let Some(b) = self.byte()? else {
                return Ok(Key::Eof);
            };
            match b {
                b'\r' | b'\n' => return Ok(Key::Enter),
                b if is(b, keys.interrupt, 0x03) => return Ok(Key::Interrupt),
                b if is(b, keys.end, 0x04) => return Ok(Key::Eof),
                b if is(b, keys.suspend, 0x1a) => return Ok(Key::Suspend),
                b if is(b, keys.erase, 0x7f) || b == 0x08 => {
                    if pop_char(line) && echo {
                        self.show(b"\x08 \x08");
                    }
                }
                b if is(b, keys.kill, 0x15) => {
                    while pop_char(line) {
                        if echo {
                            self.show(b"\x08 \x08");
                        }
                    }
                }
                0x1b => self.skip_sequence()?,
                // other control keys mean nothing here
                b if b < 0x20 => {}
                b => {
                    line.push(b);
                    if echo {
                        self.show(&[b]);
                    }
                }
            }
        }
    }

    /// Skips the rest of an escape sequence (an arrow key: `ESC [ A`).
    fn skip_sequence(&self) -> io::Result<()> {
        match self.byte()? {
            Some(b'[' | b'O') => {
                while let Some(b) = self.byte()? {
                    if (0x40..=0x7e).contains(&b) {
                        break;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Removes the last character (all its UTF-8 bytes); false if there was none.
fn pop_char(line: &mut Vec<u8>) -> bool {
    let Some(mut last) = line.pop() else {
        return false;
    };
    while last & 0xc0 == 0x80 {
        match line.pop() {
            Some(b) => last = b,
            None => break,
        }
    }
    true
}

/// Reads a secret without echo on the terminal; without one, the next line of
/// standard input (for `passwd` under `-c`, whose input is not the command script).
pub fn read_secret(prompt: &str) -> Result<String, Error> {
    if let Some(t) = Terminal::open() {
        return t.read_secret(prompt);
    }
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(Error::Usage(format!(
            "{}: no terminal and no more input",
            prompt.trim_end_matches(": ")
        )));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks `question` on `out` until a number from 1 to `n` is read from `input`, and
/// gives it; `None` when the input ends first. Anything else is asked again. The
/// server's `--bind` choice and the client's choice of a discovered server both ask so.
pub fn choose_number(
    out: &mut dyn Write,
    input: &mut dyn BufRead,
    question: &str,
    n: usize,
) -> io::Result<Option<usize>> {
    loop {
        write!(out, "{question} [1-{n}] ")?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if let Some(i) = line
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|i| (1..=n).contains(i))
        {
            return Ok(Some(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasing_takes_whole_characters() {
        let mut line = "aé".as_bytes().to_vec();
        assert!(pop_char(&mut line));
        assert_eq!(line, b"a");
        assert!(pop_char(&mut line));
        assert!(!pop_char(&mut line));
    }

    #[test]
    fn a_number_is_asked_for_until_one_fits() {
        let mut out = Vec::new();
        let mut input: &[u8] = b"x\n0\n4\n 2 \n";
        let got = choose_number(&mut out, &mut input, "Which?", 3).unwrap();
        assert_eq!(got, Some(2));
        assert_eq!(String::from_utf8(out).unwrap(), "Which? [1-3] ".repeat(4));
        let mut none: &[u8] = b"9\n";
        assert_eq!(
            choose_number(&mut Vec::new(), &mut none, "Which?", 3).unwrap(),
            None
        );
    }
}
