//! Frames: `kind: u8`, `len: u32` big-endian, then `len` bytes of payload, never more
//! than [`MAX_PAYLOAD`]. Control payloads are lists of length-prefixed fields
//! ([`encode_fields`]/[`decode_fields`]); data payloads are raw bytes.
//!
//! Reading is bounded before any allocation: a peer announcing a larger frame gets
//! [`Error::FrameTooLong`] and nothing is read past the header.

use std::fmt;
use std::io::{self, Read, Write};

/// Largest payload of any frame (1 MiB): data chunks are smaller, control frames much smaller.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Largest payload a server reads before login (hello, login, discover): a few KiB,
/// so that a connection that has not logged in cannot make the server hold more.
pub const MAX_PRELOGIN_PAYLOAD: usize = 4096;
/// Most fields one control frame may carry.
pub const MAX_FIELDS: usize = 4096;
/// Size of a frame header.
pub const HEADER_LEN: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Versioned hello, first frame in each direction.
    Hello,
    /// A request: fields, the first is the verb.
    Request,
    /// Success reply: fields.
    Ok,
    /// Failure reply: fields `code`, `message`.
    Error,
    /// A batch of directory entries; an empty batch ends the listing.
    List,
    /// A chunk of file content (raw bytes).
    Data,
    /// End of file content: the 32-byte SHA-256 of the whole file.
    End,
    /// The sender of file content gives up (the partial is kept for a resume).
    Abort,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Hello => b'H',
            Kind::Request => b'Q',
            Kind::Ok => b'K',
            Kind::Error => b'E',
            Kind::List => b'L',
            Kind::Data => b'D',
            Kind::End => b'Z',
            Kind::Abort => b'A',
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'H' => Kind::Hello,
            b'Q' => Kind::Request,
            b'K' => Kind::Ok,
            b'E' => Kind::Error,
            b'L' => Kind::List,
            b'D' => Kind::Data,
            b'Z' => Kind::End,
            b'A' => Kind::Abort,
            _ => return None,
        })
    }
}

/// Errors of the protocol layer.
#[derive(Debug)]
pub enum Error {
    /// Transport failure (including timeouts).
    Io(io::Error),
    /// The peer closed the connection at a frame boundary.
    Closed,
    /// A frame announced more bytes than the reader allows at this point.
    FrameTooLong {
        /// The payload length announced.
        len: usize,
        /// The limit it is over.
        limit: usize,
    },
    /// An unknown frame kind byte.
    UnknownKind(u8),
    /// A frame of a kind that makes no sense at this point.
    Unexpected(Kind),
    /// A payload whose fields do not parse.
    BadFields,
    /// A request that is malformed (unknown verb, wrong arguments).
    BadRequest(String),
    /// The hello did not match (not a fos peer, or another version).
    BadHello(String),
    /// A reply larger than the receiver collects (a listing without end): what it was.
    ReplyTooLarge(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => f.write_str(&crate::ioerror::text(e)),
            Error::Closed => write!(f, "connection closed by peer"),
            Error::FrameTooLong { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the limit of {limit}")
            }
            Error::UnknownKind(b) => write!(f, "unknown frame kind 0x{b:02x}"),
            Error::Unexpected(k) => write!(f, "unexpected {k:?} frame"),
            Error::BadFields => write!(f, "malformed frame payload"),
            Error::BadRequest(m) => write!(f, "{m}"),
            Error::BadHello(m) => write!(f, "bad hello: {m}"),
            Error::ReplyTooLarge(m) => write!(f, "{m}; the connection is given up"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(crate::ioerror::timed_out(e))
    }
}

/// Writes one frame (header and payload). Does not flush: callers batch frames and
/// flush once per message. Small frames go out in one write, so TLS puts them in one
/// record.
pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    debug_assert!(payload.len() <= MAX_PAYLOAD, "caller splits payloads");
    if payload.len() <= 64 * 1024 {
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        frame.extend_from_slice(&header(kind, payload.len()));
        frame.extend_from_slice(payload);
        return w.write_all(&frame);
    }
    w.write_all(&header(kind, payload.len()))?;
    w.write_all(payload)
}

/// Writes a frame whose payload sits in `buf[HEADER_LEN..]`, filling in the header in
/// place, so a data chunk goes out in one write without a copy.
pub fn write_in_place(w: &mut impl Write, kind: Kind, buf: &mut [u8]) -> io::Result<()> {
    let len = buf.len() - HEADER_LEN;
    debug_assert!(len <= MAX_PAYLOAD, "caller splits payloads");
    buf[..HEADER_LEN].copy_from_slice(&header(kind, len));
    w.write_all(buf)
}

fn header(kind: Kind, len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind.to_byte();
    header[1..].copy_from_slice(&(len as u32).to_be_bytes());
    header
}

/// Reads one frame into `buf` (replacing its contents), returning its kind.
/// A clean end of stream before the first header byte is [`Error::Closed`].
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Kind, Error> {
    read_frame_within(r, buf, MAX_PAYLOAD)
}

/// [`read_frame`] with a lower bound on the payload (`limit`, at most
/// [`MAX_PAYLOAD`]): a longer frame is [`Error::FrameTooLong`], refused after its
/// header, before anything is allocated for it.
pub fn read_frame_within(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<Kind, Error> {
    let limit = limit.min(MAX_PAYLOAD);
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(Error::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if got == 0 && e.kind() == io::ErrorKind::UnexpectedEof => {
                // rustls reports a peer that closed without close_notify this way
                return Err(Error::Closed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let kind = Kind::from_byte(header[0]).ok_or(Error::UnknownKind(header[0]))?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > limit {
        return Err(Error::FrameTooLong { len, limit });
    }
    // reuse what the buffer already holds instead of zeroing it again: a data stream
    // reads thousands of same-sized frames into one buffer
    if buf.len() >= len {
        buf.truncate(len);
    } else {
        buf.resize(len, 0);
    }
    r.read_exact(buf)?;
    Ok(kind)
}

/// Encodes fields as `u32` big-endian length + bytes, each.
pub fn encode_fields<T: AsRef<[u8]>>(fields: &[T]) -> Vec<u8> {
    let total: usize = fields.iter().map(|f| 4 + f.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for f in fields {
        let f = f.as_ref();
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Decodes what [`encode_fields`] made; any inconsistency is [`Error::BadFields`].
pub fn decode_fields(mut payload: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let mut fields = Vec::new();
    while !payload.is_empty() {
        if fields.len() == MAX_FIELDS || payload.len() < 4 {
            return Err(Error::BadFields);
        }
        let len = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        let rest = &payload[4..];
        if len > rest.len() {
            return Err(Error::BadFields);
        }
        fields.push(&rest[..len]);
        payload = &rest[len..];
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Kind::Request, &encode_fields(&["ls", "a b"])).unwrap();
        write_frame(&mut wire, Kind::Data, b"").unwrap();
        let mut r = &wire[..];
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Kind::Request);
        assert_eq!(decode_fields(&buf).unwrap(), vec![&b"ls"[..], b"a b"]);
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Kind::Data);
        assert!(buf.is_empty());
        assert!(matches!(read_frame(&mut r, &mut buf), Err(Error::Closed)));
    }

    #[test]
    fn oversized_frame_is_refused_before_reading() {
        let mut wire = vec![b'D'];
        wire.extend_from_slice(&((MAX_PAYLOAD as u32) + 1).to_be_bytes());
        let mut buf = Vec::new();
        match read_frame(&mut &wire[..], &mut buf) {
            Err(Error::FrameTooLong { len, limit }) => {
                assert_eq!((len, limit), (MAX_PAYLOAD + 1, MAX_PAYLOAD))
            }
            other => panic!("expected FrameTooLong, got {other:?}"),
        }
        // the same within a lower bound
        let mut wire = vec![b'H'];
        wire.extend_from_slice(&(MAX_PRELOGIN_PAYLOAD as u32 + 1).to_be_bytes());
        wire.extend_from_slice(&[0; MAX_PRELOGIN_PAYLOAD + 1]);
        assert!(matches!(
            read_frame_within(&mut &wire[..], &mut buf, MAX_PRELOGIN_PAYLOAD),
            Err(Error::FrameTooLong {
                len: 4097,
                limit: 4096
            })
        ));
        assert!(
            buf.capacity() < 1024,
            "nothing was allocated for the payload"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame(&mut &b"GET / HTTP/1.1\r\n"[..], &mut buf),
            Err(Error::UnknownKind(b'G'))
        ));
        // truncated header and truncated payload
        assert!(matches!(
            read_frame(&mut &b"Q\0\0"[..], &mut buf),
            Err(Error::Io(_))
        ));
        assert!(matches!(
            read_frame(&mut &b"Q\0\0\0\x05ab"[..], &mut buf),
            Err(Error::Io(_))
        ));
    }

    #[test]
    fn fields_reject_inconsistent_lengths() {
        assert!(decode_fields(b"\0\0\0\x05abc").is_err());
        assert!(decode_fields(b"\0\0").is_err());
        assert_eq!(decode_fields(b"").unwrap().len(), 0);
        let many = encode_fields(&vec![""; MAX_FIELDS + 1]);
        assert!(decode_fields(&many).is_err());
    }
}
