//! File content on the wire, both directions, for server and client alike: `Data`
//! frames then an `End` frame with the SHA-256 of the whole file (or an `Abort`).
//!
//! The receiver always reads up to the `End`/`Abort` frame, even after a local write
//! failure or a size overrun, so the session stays in step and the failure can be
//! reported as a reply instead of a dropped connection.

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::thread;

use ring::digest;

use crate::protocol::frame::{self, HEADER_LEN, Kind};

/// Payload bytes per `Data` frame: large enough that framing costs nothing, small
/// enough to keep memory per connection low.
pub const CHUNK: usize = 256 * 1024;

/// A SHA-256 in progress.
pub type Sha = digest::Context;

/// A fresh SHA-256.
pub fn sha() -> Sha {
    digest::Context::new(&digest::SHA256)
}

/// Finishes a SHA-256 into bytes.
pub fn finish(ctx: Sha) -> [u8; 32] {
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Transfers at least this large hash on a thread of their own beside the I/O.
pub const THREAD_MIN: u64 = 8 << 20;
/// Buffers in flight between the I/O and the hashing thread.
const POOL: usize = 4;

/// Where a transfer's chunks are hashed: inline, or (for large transfers) on a thread of
/// its own, so that hashing one chunk overlaps the I/O of the next and a host with a
/// spare core is not slowed by the hash. Buffers travel to the hashing thread and come
/// back for reuse; they keep their length, so they are zeroed only once.
enum Digest {
    Inline(Sha, Vec<u8>),
    Thread {
        to_hash: Option<mpsc::SyncSender<(Vec<u8>, usize, usize)>>,
        back: mpsc::Receiver<Vec<u8>>,
        thread: Option<thread::JoinHandle<Sha>>,
        made: usize,
    },
}

impl Digest {
    fn new(mut ctx: Sha, len: u64) -> Digest {
        if len < THREAD_MIN {
            return Digest::Inline(ctx, Vec::new());
        }
        let fallback = ctx.clone();
        let (to_hash, rx) = mpsc::sync_channel::<(Vec<u8>, usize, usize)>(POOL);
        let (back_tx, back) = mpsc::sync_channel(POOL);
        let spawned = thread::Builder::new().name("sha256".into()).spawn(move || {
            for (buf, start, end) in rx {
                ctx.update(&buf[start..end]);
                // the I/O side may be done with its buffers already
                let _ = back_tx.try_send(buf);
            }
            ctx
        });
        match spawned {
            Ok(t) => Digest::Thread {
                to_hash: Some(to_hash),
                back,
                thread: Some(t),
                made: 0,
            },
            // no thread to be had: hash inline
            Err(_) => Digest::Inline(fallback, Vec::new()),
        }
    }

    /// A buffer to fill.
    fn take(&mut self) -> Vec<u8> {
        match self {
            Digest::Inline(_, buf) => std::mem::take(buf),
            Digest::Thread { back, made, .. } => match back.try_recv() {
                Ok(b) => b,
                Err(_) if *made < POOL => {
                    *made += 1;
                    Vec::new()
                }
                Err(_) => back.recv().unwrap_or_default(),
            },
        }
    }

    /// Hashes `buf[start..end]` and takes the buffer back for reuse.
    fn give(&mut self, buf: Vec<u8>, start: usize, end: usize) {
        match self {
            Digest::Inline(ctx, slot) => {
                ctx.update(&buf[start..end]);
                *slot = buf;
            }
            Digest::Thread { to_hash, .. } => {
                if let Some(tx) = to_hash {
                    // fails only if the thread is gone; finish() reports that
                    let _ = tx.send((buf, start, end));
                }
            }
        }
    }

    fn finish(self) -> io::Result<[u8; 32]> {
        match self {
            Digest::Inline(ctx, _) => Ok(finish(ctx)),
            Digest::Thread {
                mut to_hash,
                mut thread,
                ..
            } => {
                to_hash.take();
                let t = thread
                    .take()
                    .ok_or_else(|| io::Error::other("no hashing thread"))?;
                t.join()
                    .map(finish)
                    .map_err(|_| io::Error::other("the hashing thread failed"))
            }
        }
    }
}

/// Hashes the first `len` bytes of `src` into `ctx`; fails if `src` is shorter.
pub fn hash_prefix(src: &mut impl Read, len: u64, ctx: &mut Sha) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(len as usize).max(1)];
    let mut left = len;
    while left > 0 {
        let n = src.read(&mut buf[..CHUNK.min(left as usize)])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than expected",
            ));
        }
        ctx.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// Why sending stopped early.
#[derive(Debug)]
pub enum SendError {
    /// Reading the source failed or it ended early; an `Abort` frame was sent.
    Source(io::Error),
    /// The caller cancelled; an `Abort` frame was sent.
    Cancelled,
    /// The receiver answered before the end (it refused the data, e.g. over a limit);
    /// an `Abort` frame was sent and the answer is waiting to be read.
    Answered,
    /// The connection failed.
    Net(io::Error),
}

/// Sends exactly `len` bytes of `src` as `Data` frames, then `End` with the SHA-256 of
/// everything `ctx` has seen plus these bytes. `progress` gets the running count;
/// `cancel` is polled between chunks.
pub fn send(
    w: &mut impl Write,
    src: &mut impl Read,
    len: u64,
    ctx: Sha,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
) -> Result<[u8; 32], SendError> {
    send_frames(w, src, Some(len), ctx, progress, cancel, &mut |_| false).map(|(sha, _)| sha)
}

/// Sends `src` to its end, its size not known beforehand, as `Data` frames, then
/// `End` with the SHA-256 and the size ([`end_of_stream`]). Between chunks it polls
/// `cancel`, and `answered`, which says whether the receiver has already replied (a
/// refusal mid-stream): then it stops with an `Abort`. Returns the SHA-256 and size.
pub fn send_stream<W: Write>(
    w: &mut W,
    src: &mut impl Read,
    ctx: Sha,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
    answered: &mut dyn FnMut(&mut W) -> bool,
) -> Result<([u8; 32], u64), SendError> {
    send_frames(w, src, None, ctx, progress, cancel, answered)
}

/// The payload of the `End` frame of a stream of unknown size: the SHA-256, then the
/// size as 8 bytes big-endian.
pub fn end_of_stream(sha: &[u8; 32], size: u64) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(sha);
    out[32..].copy_from_slice(&size.to_be_bytes());
    out
}

fn send_frames<W: Write>(
    w: &mut W,
    src: &mut impl Read,
    len: Option<u64>,
    ctx: Sha,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
    answered: &mut dyn FnMut(&mut W) -> bool,
) -> Result<([u8; 32], u64), SendError> {
    // a stream of unknown size may be long: give it the hashing thread
    let mut digest = Digest::new(ctx, len.unwrap_or(THREAD_MIN));
    let mut sent = 0u64;
    while len.is_none_or(|len| sent < len) {
        if cancel() {
            abort(w).map_err(SendError::Net)?;
            return Err(SendError::Cancelled);
        }
        if answered(w) {
            abort(w).map_err(SendError::Net)?;
            return Err(SendError::Answered);
        }
        let want = len.map_or(CHUNK, |len| CHUNK.min((len - sent) as usize));
        let mut buf = digest.take();
        // sized to the file (a 4 KiB upload must not pay for 256 KiB) and grown only once
        if buf.len() < HEADER_LEN + want {
            buf.resize(HEADER_LEN + want, 0);
        }
        let n = match read_some(src, &mut buf[HEADER_LEN..HEADER_LEN + want]) {
            Ok(0) if len.is_none() => {
                digest.give(buf, 0, 0);
                break;
            }
            Ok(0) => {
                abort(w).map_err(SendError::Net)?;
                return Err(SendError::Source(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file became shorter while being sent",
                )));
            }
            Ok(n) => n,
            Err(e) => {
                abort(w).map_err(SendError::Net)?;
                return Err(SendError::Source(e));
            }
        };
        frame::write_in_place(w, Kind::Data, &mut buf[..HEADER_LEN + n]).map_err(SendError::Net)?;
        digest.give(buf, HEADER_LEN, HEADER_LEN + n);
        sent += n as u64;
        progress(sent);
    }
    let digest = digest.finish().map_err(SendError::Source)?;
    match len {
        Some(_) => frame::write_frame(w, Kind::End, &digest),
        None => frame::write_frame(w, Kind::End, &end_of_stream(&digest, sent)),
    }
    .map_err(SendError::Net)?;
    w.flush().map_err(SendError::Net)?;
    Ok((digest, sent))
}

fn read_some(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    // fill the chunk when the source allows it: fewer, fuller frames
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn abort(w: &mut impl Write) -> io::Result<()> {
    frame::write_frame(w, Kind::Abort, b"")?;
    w.flush()
}

/// `Abort` payload asking the receiver to throw the partial away instead of keeping it
/// for a resume (its prefix did not match).
pub const DISCARD: &[u8] = b"discard";

/// Aborts an upload that has not sent data yet, asking the server to discard its partial.
pub fn abort_discard(w: &mut impl Write) -> io::Result<()> {
    frame::write_frame(w, Kind::Abort, DISCARD)?;
    w.flush()
}

/// How a received stream ended (the connection itself is still in step).
#[derive(Debug)]
pub struct Received {
    /// Payload bytes that arrived.
    pub bytes: u64,
    /// The sender's SHA-256, or `None` if it aborted.
    pub sender_sha: Option<[u8; 32]>,
    /// Our SHA-256 of what arrived (including anything `ctx` had before).
    pub our_sha: [u8; 32],
    /// The first local failure (write error, too many bytes); the rest was discarded.
    pub local_error: Option<LocalError>,
    /// The sender aborted and asked for what arrived to be thrown away (not resumed).
    pub discard: bool,
    /// The size the sender gave in its `End` frame (streams of unknown size only).
    pub sender_size: Option<u64>,
    /// Whether the stream was read to its `End` or `Abort`; `false` when
    /// [`receive_until_error`] stopped at a local error (see [`skip`]).
    pub ended: bool,
}

impl Received {
    /// Complete and intact: not aborted, no local error, and the hashes agree.
    pub fn is_intact(&self) -> bool {
        self.local_error.is_none() && self.sender_sha == Some(self.our_sha)
    }
}

/// A failure on the receiving side while a stream was arriving.
#[derive(Debug)]
pub enum LocalError {
    /// Writing the destination failed.
    Write(io::Error),
    /// More bytes arrived than were announced.
    TooLong(u64),
}

/// Receives `Data` frames into `dst` until `End` or `Abort`. At most `max` bytes are
/// written; beyond that, or after a write error, the rest is read and discarded.
/// Network and protocol failures are errors: the connection is then unusable.
pub fn receive(
    r: &mut impl Read,
    dst: &mut impl Write,
    max: u64,
    ctx: Sha,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
) -> Result<Received, frame::Error> {
    receive_frames(r, dst, max, ctx, progress, cancel, false)
}

/// As [`receive`], but returns at the first local error (a write failure, a limit)
/// without reading the rest, so that the refusal can be sent at once; then [`skip`]
/// the rest of the stream.
pub fn receive_until_error(
    r: &mut impl Read,
    dst: &mut impl Write,
    max: u64,
    ctx: Sha,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
) -> Result<Received, frame::Error> {
    receive_frames(r, dst, max, ctx, progress, cancel, true)
}

/// Reads a whole stream (up to its `End` or `Abort`) and drops its content: the
/// content of a transfer refused after its header, read so that the connection stays
/// in step. As [`receive`] into nothing.
pub fn discard(r: &mut impl Read, max: u64) -> Result<Received, frame::Error> {
    receive(r, &mut io::sink(), max, sha(), &mut |_| {}, &|| false)
}

/// Reads and drops the rest of a stream, up to its `End` or `Abort`: at most `limit`
/// more payload bytes, after which the sender is taken to be ignoring the refusal and
/// an error is returned (drop the connection).
pub fn skip(r: &mut impl Read, limit: u64) -> Result<(), frame::Error> {
    let mut buf = Vec::new();
    let mut skipped = 0u64;
    loop {
        match frame::read_frame(r, &mut buf)? {
            Kind::Data => {
                skipped += buf.len() as u64;
                if skipped > limit {
                    return Err(frame::Error::Io(io::Error::other(
                        "the sender went on sending after its upload was refused",
                    )));
                }
            }
            Kind::End | Kind::Abort => return Ok(()),
            other => return Err(frame::Error::Unexpected(other)),
        }
    }
}

fn receive_frames(
    r: &mut impl Read,
    dst: &mut impl Write,
    max: u64,
    ctx: Sha,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
    stop_at_error: bool,
) -> Result<Received, frame::Error> {
    let mut digest = Digest::new(ctx, max);
    let mut bytes = 0u64;
    let mut local_error = None;
    loop {
        if cancel() {
            // the sender cannot be stopped mid-stream: the caller drops the connection
            let _ = dst.flush();
            return Err(frame::Error::Io(io::Error::new(
                io::ErrorKind::Interrupted,
                "cancelled",
            )));
        }
        if stop_at_error && local_error.is_some() {
            let our_sha = digest.finish().map_err(frame::Error::Io)?;
            return Ok(Received {
                bytes,
                sender_sha: None,
                our_sha,
                local_error,
                discard: false,
                sender_size: None,
                ended: false,
            });
        }
        let mut buf = digest.take();
        match frame::read_frame(r, &mut buf)? {
            Kind::Data => {
                bytes += buf.len() as u64;
                if local_error.is_none() {
                    if bytes > max {
                        local_error = Some(LocalError::TooLong(bytes));
                    } else if let Err(e) = dst.write_all(&buf) {
                        local_error = Some(LocalError::Write(e));
                    }
                }
                let end = if local_error.is_none() { buf.len() } else { 0 };
                digest.give(buf, 0, end);
                progress(bytes);
            }
            Kind::End => {
                // the SHA-256, and after it the size for a stream of unknown size
                let (sender, size) = match buf.len() {
                    32 => (&buf[..], None),
                    40 => (
                        &buf[..32],
                        Some(u64::from_be_bytes(
                            buf[32..].try_into().map_err(|_| frame::Error::BadFields)?,
                        )),
                    ),
                    _ => return Err(frame::Error::BadFields),
                };
                let sender = <[u8; 32]>::try_from(sender).map_err(|_| frame::Error::BadFields)?;
                if local_error.is_none()
                    && let Err(e) = dst.flush()
                {
                    local_error = Some(LocalError::Write(e));
                }
                let our_sha = digest.finish().map_err(frame::Error::Io)?;
                return Ok(Received {
                    bytes,
                    sender_sha: Some(sender),
                    our_sha,
                    local_error,
                    discard: false,
                    sender_size: size,
                    ended: true,
                });
            }
            Kind::Abort => {
                let discard = buf == DISCARD;
                let our_sha = digest.finish().map_err(frame::Error::Io)?;
                return Ok(Received {
                    bytes,
                    sender_sha: None,
                    our_sha,
                    local_error,
                    discard,
                    sender_size: None,
                    ended: true,
                });
            }
            other => return Err(frame::Error::Unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// [`send`]s `len` bytes of `src` after `ctx` onto `wire`, without progress or
    /// cancel.
    fn send_to(wire: &mut Vec<u8>, src: &[u8], len: u64, ctx: Sha) -> Result<[u8; 32], SendError> {
        send(wire, &mut &src[..], len, ctx, &mut |_| {}, &|| false)
    }

    /// [`send_stream`]s `src` onto `wire`, asking `answered` between chunks.
    fn stream_to(
        wire: &mut Vec<u8>,
        src: &[u8],
        answered: &mut dyn FnMut(&mut Vec<u8>) -> bool,
    ) -> Result<([u8; 32], u64), SendError> {
        send_stream(wire, &mut &src[..], sha(), &mut |_| {}, &|| false, answered)
    }

    /// [`receive`]s what `wire` holds into `out`, at most `max` bytes after `ctx`.
    fn receive_from(wire: &[u8], out: &mut impl Write, max: u64, ctx: Sha) -> Received {
        receive(&mut &wire[..], out, max, ctx, &mut |_| {}, &|| false).unwrap()
    }

    #[test]
    fn send_then_receive_is_intact() {
        let src = data(CHUNK * 2 + 123);
        let mut wire = Vec::new();
        let sent = send_to(&mut wire, &src, src.len() as u64, sha()).unwrap();
        let mut out = Vec::new();
        let got = receive_from(&wire, &mut out, u64::MAX, sha());
        assert!(got.is_intact());
        assert_eq!(got.our_sha, sent);
        assert_eq!(out, src);
    }

    #[test]
    fn large_transfers_hash_on_a_thread_with_the_same_result() {
        let src = data(THREAD_MIN as usize + CHUNK * 3 + 77);
        let mut wire = Vec::new();
        // a prefix already hashed (a resume) carries over to the thread
        let mut prefix = sha();
        prefix.update(b"prefix");
        let sent = send_to(&mut wire, &src, src.len() as u64, prefix.clone()).unwrap();
        let mut whole = sha();
        whole.update(b"prefix");
        whole.update(&src);
        assert_eq!(sent, finish(whole));
        let mut out = Vec::new();
        let got = receive_from(&wire, &mut out, src.len() as u64, prefix);
        assert!(got.is_intact());
        assert!(out == src);
        wire[HEADER_LEN + THREAD_MIN as usize / 2] ^= 0x80;
        let got = receive_from(&wire, &mut Vec::new(), u64::MAX, sha());
        assert!(
            !got.is_intact(),
            "a flipped byte is caught on the threaded path too"
        );
    }

    #[test]
    fn corruption_is_detected() {
        let src = data(1000);
        let mut wire = Vec::new();
        send_to(&mut wire, &src, 1000, sha()).unwrap();
        wire[HEADER_LEN + 10] ^= 1;
        let got = receive_from(&wire, &mut Vec::new(), u64::MAX, sha());
        assert!(!got.is_intact());
    }

    #[test]
    fn short_source_aborts_and_overrun_is_refused() {
        let src = data(10);
        let mut wire = Vec::new();
        assert!(matches!(
            send_to(&mut wire, &src, 20, sha()),
            Err(SendError::Source(_))
        ));
        let got = receive_from(&wire, &mut Vec::new(), u64::MAX, sha());
        assert!(got.sender_sha.is_none() && !got.is_intact());

        let mut wire = Vec::new();
        send_to(&mut wire, &data(100), 100, sha()).unwrap();
        let mut out = Vec::new();
        let got = receive_from(&wire, &mut out, 50, sha());
        assert!(matches!(got.local_error, Some(LocalError::TooLong(100))));
        assert!(out.is_empty());
    }

    #[test]
    fn a_stream_of_unknown_size_ends_with_its_size() {
        let src = data(CHUNK * 3 + 5);
        let mut wire = Vec::new();
        let (digest, size) = stream_to(&mut wire, &src, &mut |_| false).unwrap();
        assert_eq!(size, src.len() as u64);
        let mut out = Vec::new();
        let got = receive_from(&wire, &mut out, u64::MAX, sha());
        assert!(got.is_intact() && got.ended);
        assert_eq!(got.sender_sha, Some(digest));
        assert_eq!(got.sender_size, Some(size));
        assert!(out == src);
        // an empty stream is a stream too
        let mut wire = Vec::new();
        let (_, size) = stream_to(&mut wire, &[], &mut |_| false).unwrap();
        assert_eq!(size, 0);
    }

    #[test]
    fn a_refused_stream_stops_early_and_the_rest_is_skipped() {
        struct Refuses;
        impl Write for Refuses {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("over the limit"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let src = data(CHUNK * 4);
        let mut wire = Vec::new();
        stream_to(&mut wire, &src, &mut |_| false).unwrap();
        wire.extend_from_slice(b"Q\0\0\0\0");
        let mut r = &wire[..];
        let got = receive_until_error(&mut r, &mut Refuses, u64::MAX, sha(), &mut |_| {}, &|| {
            false
        })
        .unwrap();
        assert!(!got.ended && matches!(got.local_error, Some(LocalError::Write(_))));
        assert_eq!(got.bytes, CHUNK as u64, "stopped after the first chunk");
        // too much left to skip: the sender is not listening
        let mut copy = r;
        assert!(skip(&mut copy, CHUNK as u64).is_err());
        skip(&mut r, u64::MAX).unwrap();
        assert_eq!(r, b"Q\0\0\0\0", "in step for the next request");
        // the sender sees the answer and stops with an Abort
        let mut wire = Vec::new();
        let mut polls = 0;
        let e = stream_to(&mut wire, &src, &mut |_| {
            polls += 1;
            polls > 2
        })
        .unwrap_err();
        assert!(matches!(e, SendError::Answered));
        let got = receive_from(&wire, &mut Vec::new(), u64::MAX, sha());
        assert_eq!(got.bytes, 2 * CHUNK as u64);
        assert!(got.sender_sha.is_none());
    }
}
