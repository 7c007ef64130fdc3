//! The local ends of transfers that are streams rather than files, and the rule for
//! what a download may land on.
//!
//! A download to a FIFO, a character device (a terminal, `/dev/null`) or standard output
//! is written in place as it arrives ([`Sink`]): no partial file and no rename, which
//! would replace the FIFO or device with a regular file. Its SHA-256 is checked at the
//! end, when the bytes are already written, so a mismatch is reported as a failure.
//! On a terminal, control characters are shown escaped (the checksum is of the bytes
//! received). An existing symlink is never replaced: a download through one is refused
//! unless it leads to a FIFO or character device, which is then written as a stream.
//!
//! Uploads from a pipe, FIFO or standard input need nothing here: they are read to
//! their end ([`super::Remote::put_stream`]).

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use crate::Error;
use crate::sys::{self, errno, oflag};
use crate::transfer::{self, Sha};

/// What a download to a local path does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A new or regular file: written to a partial file and renamed over it.
    File,
    /// A FIFO or character device, or a symlink to one: written in place ([`Sink`]).
    Stream,
}

fn is_stream(ft: &fs::FileType) -> bool {
    ft.is_fifo() || ft.is_char_device()
}

/// Decides where a download to `path` goes, refusing what it must not touch: a
/// symlink (unless it leads to a FIFO or character device), a directory, a socket or
/// a block device.
pub fn classify(path: &Path) -> Result<Target, Error> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::File),
        Err(e) => {
            return Err(Error::Local(format!(
                "{}: {}",
                path.display(),
                super::local_reason(&e)
            )));
        }
    };
    let ft = md.file_type();
    if ft.is_symlink() {
        return match fs::metadata(path) {
            Ok(to) if is_stream(&to.file_type()) => Ok(Target::Stream),
            _ => Err(Error::Local(format!(
                "{}: is a symbolic link; a download never replaces one (name the file it points to)",
                path.display()
            ))),
        };
    }
    if ft.is_dir() {
        return Err(Error::Local(format!("{}: is a directory", path.display())));
    }
    if ft.is_file() {
        return Ok(Target::File);
    }
    if is_stream(&ft) {
        return Ok(Target::Stream);
    }
    Err(Error::Local(format!(
        "{}: not a regular file, FIFO or character device; nothing was written",
        path.display()
    )))
}

/// A download's destination that is written in place as the data arrives: a FIFO, a
/// character device or standard output. It hashes and counts what it writes, so an
/// interrupted download can continue after it (the server checks that SHA-256 first).
pub struct Sink {
    file: File,
    label: String,
    /// Escaping state when the destination is a terminal.
    terminal: Option<TerminalText>,
    ctx: Sha,
    written: u64,
    stdout: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("label", &self.label)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Standard output (`get REMOTE -`).
    pub fn stdout() -> Result<Sink, Error> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Sink::new(File::from(fd), "standard output".into()))
    }

    /// Opens the FIFO or character device at `path` (through a symlink if it is one)
    /// for writing, without creating or truncating anything. A FIFO that nobody reads
    /// yet is waited for, polling `cancel`.
    pub fn open(path: &Path, cancel: &dyn Fn() -> bool) -> Result<Sink, Error> {
        let via_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        // not following a final symlink unless the path is one: what was looked at is
        // what is opened; O_NONBLOCK: a FIFO without a reader fails instead of hanging
        let mut flags = oflag::NONBLOCK | oflag::NOCTTY;
        if !via_link {
            flags |= oflag::NOFOLLOW;
        }
        let local =
            |e: io::Error| Error::Local(format!("{}: {}", path.display(), super::local_reason(&e)));
        let file = loop {
            match fs::OpenOptions::new()
                .write(true)
                .custom_flags(flags)
                .open(path)
            {
                Ok(f) => break f,
                Err(e) if e.raw_os_error() == Some(errno::ENXIO) => {
                    if cancel() {
                        return Err(Error::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(local(e)),
            }
        };
        sys::set_blocking(file.as_fd()).map_err(local)?;
        // swapped for something else since it was looked at: nothing was written
        if !is_stream(&file.metadata().map_err(local)?.file_type()) {
            return Err(Error::Local(format!(
                "{}: no longer a FIFO or character device; nothing was written",
                path.display()
            )));
        }
        Ok(Sink::new(file, path.display().to_string()))
    }

    fn new(file: File, label: String) -> Sink {
        let terminal = file.is_terminal().then(TerminalText::default);
        let stdout = same_file(&file, &io::stdout());
        Sink {
            file,
            label,
            terminal,
            ctx: transfer::sha(),
            written: 0,
            stdout,
        }
    }

    /// How the destination is named in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The SHA-256 of everything written so far (for a continuation).
    pub fn hash(&self) -> Sha {
        self.ctx.clone()
    }

    /// Whether this is standard output (then the transfer summary goes to stderr).
    pub fn is_stdout(&self) -> bool {
        self.stdout
    }

    /// Writes out what a terminal's escaping still holds (a character cut at the end).
    pub fn finish(&mut self) -> Result<(), Error> {
        if let Some(t) = &mut self.terminal {
            let rest = t.finish();
            self.file.write_all(rest.as_bytes())?;
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.terminal {
            Some(t) => {
                let text = t.push(buf);
                self.file.write_all(text.as_bytes())?;
            }
            None => self.file.write_all(buf)?,
        }
        self.ctx.update(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Whether two open files are the same file (device and inode).
fn same_file(a: &File, b: &impl AsFd) -> bool {
    let b = b.as_fd().try_clone_to_owned().map(File::from);
    match (a.metadata(), b.and_then(|b| b.metadata())) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Turns bytes from the server into text that is safe on a terminal: UTF-8 text as it
/// is, newlines and tabs too; other control characters as `\u{…}` and bytes that are
/// not UTF-8 as `\xNN`, so no escape sequence reaches the terminal. A character split
/// between two writes is held until the next.
#[derive(Debug, Default)]
struct TerminalText {
    held: Vec<u8>,
}

impl TerminalText {
    fn push(&mut self, buf: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(buf);
        let mut out = String::with_capacity(bytes.len());
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    escape_into(s, &mut out);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    escape_into(
                        std::str::from_utf8(good).expect("checked by from_utf8"),
                        &mut out,
                    );
                    match e.error_len() {
                        // incomplete at the end: wait for the rest of the character
                        None => {
                            self.held = bad.to_vec();
                            break;
                        }
                        Some(n) => {
                            for b in &bad[..n] {
                                out.push_str(&format!("\\x{b:02x}"));
                            }
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
        out
    }

    /// What is still held, escaped: the stream ended inside a character.
    fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
            .iter()
            .map(|b| format!("\\x{b:02x}"))
            .collect()
    }
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_is_escaped_and_split_characters_survive() {
        let mut t = TerminalText::default();
        assert_eq!(t.push(b"ok\n\ttab"), "ok\n\ttab");
        assert_eq!(t.push(b"\x1b[31mred\x07"), "\\u{1b}[31mred\\u{7}");
        // "é" split across two writes
        assert_eq!(t.push(b"caf\xc3"), "caf");
        assert_eq!(t.push(b"\xa9!"), "é!");
        assert_eq!(t.push(b"\xff\xfe"), "\\xff\\xfe");
        // a C1 control (CSI) as UTF-8
        assert_eq!(t.push("\u{9b}2J".as_bytes()), "\\u{9b}2J");
        assert_eq!(t.push(b"\xe2\x82"), "");
        assert_eq!(t.finish(), "\\xe2\\x82");
    }

    #[test]
    fn classify_refuses_symlinks_and_finds_streams() {
        let dir = std::env::temp_dir().join(format!("fos-stream-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(dir.join("file"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling")).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.join("null")).unwrap();
        assert_eq!(classify(&dir.join("new")).unwrap(), Target::File);
        assert_eq!(classify(&dir.join("file")).unwrap(), Target::File);
        assert_eq!(classify(Path::new("/dev/null")).unwrap(), Target::Stream);
        assert_eq!(classify(&dir.join("null")).unwrap(), Target::Stream);
        for bad in ["link", "dangling"] {
            let e = classify(&dir.join(bad)).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{bad}: {e}");
        }
        assert!(classify(&dir).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
