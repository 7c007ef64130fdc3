//! The Python tool's framing: there is none but the TLS record. Each message is one
//! `send()` (one record) and is read by one `recv(4096)`.
//!
//! rustls's `Read::read` would merge records that arrive together; its
//! `BufRead::fill_buf` returns one record's plaintext per call, so [`read_record`]
//! uses that and consumes at most [`RECORD`] bytes, exactly like `recv(4096)`.

use std::io::{self, BufRead, Write};

/// Largest message the Python peer reads at once.
pub const RECORD: usize = 4096;

/// Reads one message. `None` at the end of the stream: a TCP close without
/// close_notify is a normal end here, because the Python tool never sends one.
pub fn read_record<S: BufRead>(stream: &mut S) -> io::Result<Option<Vec<u8>>> {
    let chunk = match stream.fill_buf() {
        Ok(chunk) => chunk,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if chunk.is_empty() {
        return Ok(None);
    }
    let n = chunk.len().min(RECORD);
    let record = chunk[..n].to_vec();
    stream.consume(n);
    Ok(Some(record))
}

/// Sends one message as one record: one write, one flush.
pub fn send_record<S: Write>(stream: &mut S, msg: &[u8]) -> io::Result<()> {
    stream.write_all(msg)?;
    stream.flush()
}

/// The Python tool's colours: a reply is green on success, red on failure, blue for a
/// note (an empty listing); yellow it uses for warnings of its own.
pub const GREEN: &str = "\x1b[32m";
/// Failure.
pub const RED: &str = "\x1b[31m";
/// A note.
pub const BLUE: &str = "\x1b[34m";
/// A warning.
pub const YELLOW: &str = "\x1b[33m";
/// The end of a coloured reply.
pub const RESET: &str = "\x1b[0m";

/// A success reply as the Python server words it: green, one line.
pub fn green(msg: &str) -> String {
    format!("{GREEN}{msg}{RESET}\n")
}

/// A failure reply as the Python server words it: red, one line.
pub fn red(msg: &str) -> String {
    format!("{RED}{msg}{RESET}\n")
}

/// `reply` without its colour codes and trailing newline.
pub fn plain(reply: &str) -> String {
    let mut s = reply.to_string();
    for code in [RED, GREEN, BLUE, YELLOW, RESET] {
        s = s.replace(code, "");
    }
    s.trim_end_matches('\n').to_string()
}

/// Whether `reply` reports a failure (it is red).
pub fn is_error(reply: &str) -> bool {
    reply.starts_with(RED)
}

/// Whether `reply` reports a success (it is green).
pub fn is_success(reply: &str) -> bool {
    reply.starts_with(GREEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(plain("\x1b[31mAccess denied\x1b[0m\n"), "Access denied");
        assert!(is_error("\x1b[31mx\x1b[0m\n"));
        assert!(!is_error("\x1b[32mok\x1b[0m\n"));
    }
}
