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
