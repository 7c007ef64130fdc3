//! Block deltas, both directions: the receiver of a delta builds the new version of a
//! file in a partial from the ranges it is sent plus the unchanged ranges of its old
//! version, and checks the whole file's SHA-256 before it is renamed into place.
//!
//! On the wire a delta's content is `Data` frames of an 8-byte big-endian offset and
//! the bytes there, then `End` with the SHA-256 of the whole new file. The server uses
//! this to apply an upload (`cpatch`), the client to apply a download (`fetch`); who
//! decides which blocks differ is up to the caller (block hashes, see
//! [`crate::protocol::sync::block_hash`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::SyncSender;

use crate::protocol::frame::{self, Kind, write_frame};
use crate::sys;
use crate::transfer;

/// Bytes read at a time when hashing or copying.
const CHUNK: usize = 256 << 10;
/// Bytes copied from the old file before they are hashed.
const STEP: u64 = 8 << 20;
/// Bytes of file content per `Data` frame of a delta (after its 8-byte offset).
const FRAME: usize = 256 << 10;

/// Why the ranges of a delta could not all be written.
#[derive(Debug)]
pub enum RangeError {
    /// Writing the partial failed.
    Write(io::Error),
    /// The stream was malformed (kept reading to its end).
    Invalid(&'static str),
}

/// The ranges received, as sorted, merged `(start, end)` pairs.
pub fn merge(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Copies `len` bytes at `off` of `src` to the same offset of `dst`, in the kernel
/// where it can.
pub fn copy_range(src: &File, dst: &File, off: u64, len: u64) -> io::Result<()> {
    let mut done = 0u64;
    let mut kernel = true;
    let mut buf = Vec::new();
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        if kernel {
            match sys::copy_file_range(src.as_fd(), off + done, dst.as_fd(), off + done, want) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the old file is shorter than the delta needs",
                    ));
                }
                Ok(n) => {
                    done += n as u64;
                    continue;
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(sys::errno::ENOSYS)
                            | Some(sys::errno::EXDEV)
                            | Some(sys::errno::EINVAL)
                            | Some(sys::errno::EOPNOTSUPP)
                    ) =>
                {
                    kernel = false;
                }
                Err(e) => return Err(e),
            }
        }
        buf.resize(CHUNK, 0);
        let n = want.min(CHUNK);
        src.read_exact_at(&mut buf[..n], off + done)?;
        dst.write_all_at(&buf[..n], off + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Fills every range of `new` not in `received` (sorted, merged) from `old` at the
/// same offset, and returns the SHA-256 of the whole new file. The hash is taken in
/// file order from the bytes each range comes from (the old file's for a copied
/// range, which the copy leaves identical), on a thread of its own, so the new file
/// is never read back.
///
/// A range the old file does not have is an [`io::ErrorKind::UnexpectedEof`] error.
pub fn build(old: &File, new: &File, received: &[(u64, u64)], size: u64) -> io::Result<[u8; 32]> {
    std::thread::scope(|s| {
        let (tx, hasher) = spawn_hasher(s, 4);
        let mut at = 0u64;
        let mut result: io::Result<()> = Ok(());
        for &(a, b) in received.iter().chain(&[(size, size)]) {
            if let Err(e) = fill_from_old(old, new, at, a, &tx) {
                result = Err(e);
                break;
            }
            if b > a
                && let Err(e) = feed(&tx, new, a, b - a)
            {
                result = Err(e);
                break;
            }
            at = at.max(b);
        }
        drop(tx);
        let sha = hasher
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?;
        result.map(|()| sha)
    })
}

/// A thread of `s` that hashes, in order, the pieces sent to it (at most `depth` of
/// them waiting); drop the sender, then join it for the SHA-256.
fn spawn_hasher<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    depth: usize,
) -> (
    SyncSender<Vec<u8>>,
    std::thread::ScopedJoinHandle<'scope, [u8; 32]>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(depth);
    let hasher = s.spawn(move || {
        let mut ctx = transfer::sha();
        for b in rx {
            ctx.update(&b);
        }
        transfer::finish(ctx)
    });
    (tx, hasher)
}

/// Hands one piece to the hashing thread of [`spawn_hasher`].
fn hash_piece(tx: &SyncSender<Vec<u8>>, b: Vec<u8>) -> io::Result<()> {
    tx.send(b)
        .map_err(|_| io::Error::other("the hashing thread failed"))
}

/// Hands `len` bytes of `from` at `off` to the hashing thread, [`CHUNK`] at a time.
fn feed(tx: &SyncSender<Vec<u8>>, from: &File, off: u64, len: u64) -> io::Result<()> {
    let mut at = off;
    while at < off + len {
        let n = (off + len - at).min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; n];
        from.read_exact_at(&mut buf, at)?;
        hash_piece(tx, buf)?;
        at += n as u64;
    }
    Ok(())
}

/// Fills `[from, to)` of `new` from `old` at the same offsets and hands those bytes to
/// the hashing thread, a piece ([`STEP`]) at a time, so that hashing one overlaps
/// copying the next.
fn fill_from_old(
    old: &File,
    new: &File,
    from: u64,
    to: u64,
    tx: &SyncSender<Vec<u8>>,
) -> io::Result<()> {
    let mut c = from;
    while c < to {
        let n = (to - c).min(STEP);
        let step = copy_range(old, new, c, n).and_then(|()| feed(tx, old, c, n));
        // the old version is on its way out: its pages, read once, are recycled for
        // the new one's (a fresh page costs more than a copy on some hosts)
        let _ = sys::drop_cached(old.as_fd(), c, n);
        step?;
        c += n;
    }
    Ok(())
}

/// What a delta's stream brought: the ranges written, the sender's SHA-256 (`None`:
/// it aborted) and the first local failure.
pub type Ranges = (Vec<(u64, u64)>, Option<[u8; 32]>, Option<RangeError>);

/// Receives a patch's ranges into `file` (an empty partial of the new size): returns
/// the ranges written and the sender's SHA-256 (`None`: it aborted). A local failure
/// is kept and the stream still read to its end, so the session stays in step.
pub fn receive_ranges(r: &mut impl Read, file: &File, size: u64) -> Result<Ranges, frame::Error> {
    let mut buf = Vec::new();
    let mut ranges = Vec::new();
    let mut failure = None;
    let mut received = 0u64;
    loop {
        match frame::read_frame(r, &mut buf)? {
            Kind::Data => {
                if failure.is_some() {
                    continue;
                }
                let Some((head, data)) = buf.split_first_chunk::<8>() else {
                    failure = Some(RangeError::Invalid("a range frame without its offset"));
                    continue;
                };
                let off = u64::from_be_bytes(*head);
                let end = off.checked_add(data.len() as u64).filter(|&e| e <= size);
                received += data.len() as u64;
                match end {
                    Some(end) if received <= size => match file.write_all_at(data, off) {
                        Ok(()) => ranges.push((off, end)),
                        Err(e) => failure = Some(RangeError::Write(e)),
                    },
                    _ => failure = Some(RangeError::Invalid("data beyond the announced size")),
                }
            }
            Kind::End => {
                let sha = <[u8; 32]>::try_from(&buf[..]).map_err(|_| frame::Error::BadFields)?;
                return Ok((ranges, Some(sha), failure));
            }
            Kind::Abort => return Ok((ranges, None, failure)),
            other => return Err(frame::Error::Unexpected(other)),
        }
    }
}

/// Sends the given blocks of `file` as delta frames (offset, bytes), then `End` with
/// `sha`. Returns the content bytes sent.
pub fn send_blocks(
    w: &mut impl Write,
    file: &File,
    size: u64,
    block: u64,
    blocks: &[u64],
    sha: &[u8; 32],
) -> io::Result<u64> {
    let mut buf = vec![0u8; 8 + FRAME];
    let mut sent = 0;
    for &b in blocks {
        let start = b * block;
        let end = (start + block).min(size);
        let mut off = start;
        while off < end {
            let n = ((end - off) as usize).min(FRAME);
            buf[..8].copy_from_slice(&off.to_be_bytes());
            file.read_exact_at(&mut buf[8..8 + n], off)?;
            write_frame(w, Kind::Data, &buf[..8 + n])?;
            off += n as u64;
            sent += n as u64;
        }
    }
    write_frame(w, Kind::End, sha)?;
    w.flush()?;
    Ok(sent)
}

/// What [`apply_stream`] made of a delta.
#[derive(Debug)]
pub struct Applied {
    /// The ranges received (sorted, merged).
    pub changed: Vec<(u64, u64)>,
    /// The sender's SHA-256 of the whole new file (`None`: it aborted).
    pub sender: Option<[u8; 32]>,
    /// The SHA-256 of the file built (`None` when building failed).
    pub ours: Option<[u8; 32]>,
    /// The first failure: a write, a range out of order or past the end, a range the
    /// old file lacks. The stream was still read to its end.
    pub failure: Option<RangeError>,
}

/// Receives a delta and builds the new file `new` (of `size` bytes) as it arrives:
/// the ranges must come in increasing order, and each gap before one is filled from
/// `old` at the same offset at once, so the build keeps pace with the sender instead
/// of waiting for its end. The whole new file is hashed in order on a thread of its
/// own, from the bytes each range comes from.
pub fn apply_stream(
    r: &mut impl Read,
    old: &File,
    new: &File,
    size: u64,
) -> Result<Applied, frame::Error> {
    std::thread::scope(|s| {
        let (tx, hasher) = spawn_hasher(s, 8);
        let fill = |from: u64, to: u64| fill_from_old(old, new, from, to, &tx);
        let mut buf = Vec::new();
        let mut at = 0u64;
        let mut changed = Vec::new();
        let mut failure: Option<RangeError> = None;
        let fail = |failure: &mut Option<RangeError>, e: RangeError| {
            if failure.is_none() {
                *failure = Some(e);
            }
        };
        let sender = loop {
            match frame::read_frame(r, &mut buf)? {
                Kind::Data => {
                    if failure.is_some() {
                        continue;
                    }
                    let Some((head, data)) = buf.split_first_chunk::<8>() else {
                        fail(
                            &mut failure,
                            RangeError::Invalid("a range frame without its offset"),
                        );
                        continue;
                    };
                    let off = u64::from_be_bytes(*head);
                    let end = off.checked_add(data.len() as u64);
                    let Some(end) = end.filter(|&e| off >= at && e <= size) else {
                        fail(
                            &mut failure,
                            RangeError::Invalid("ranges out of order or past the end"),
                        );
                        continue;
                    };
                    let step = fill(at, off)
                        .and_then(|()| new.write_all_at(data, off))
                        .and_then(|()| hash_piece(&tx, data.to_vec()));
                    match step {
                        Ok(()) => {
                            changed.push((off, end));
                            at = end;
                        }
                        Err(e) => fail(&mut failure, RangeError::Write(e)),
                    }
                }
                Kind::End => {
                    let sha =
                        <[u8; 32]>::try_from(&buf[..]).map_err(|_| frame::Error::BadFields)?;
                    if failure.is_none()
                        && let Err(e) = fill(at, size)
                    {
                        fail(&mut failure, RangeError::Write(e));
                    }
                    break Some(sha);
                }
                Kind::Abort => break None,
                other => return Err(frame::Error::Unexpected(other)),
            }
        };
        drop(tx);
        let ours = hasher
            .join()
            .ok()
            .filter(|_| failure.is_none() && sender.is_some());
        Ok(Applied {
            changed: merge(changed),
            sender,
            ours,
            failure,
        })
    })
}

/// How [`stream_blocks`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    /// Every changed block sent, then `End` with this SHA-256 of the whole file.
    Sent([u8; 32]),
    /// More than the limit differed: an `Abort` was sent instead of the rest.
    TooMany,
}

/// Sends `file` (of `size` bytes) as a delta against a version whose block list is
/// `theirs` ([`BLOCK_HASH`] bytes per `block`-sized block): reads it once, in order,
/// hashing each block and sending at once each one that differs, while a second
/// thread hashes the whole file for the `End` frame. Gives up with an `Abort` once
/// more than `max_changed` bytes differ.
pub fn stream_blocks(
    w: &mut impl Write,
    file: &mut File,
    size: u64,
    block: u64,
    theirs: &[u8],
    max_changed: u64,
) -> io::Result<Streamed> {
    use crate::protocol::sync::{BLOCK_HASH, block_hash};
    std::thread::scope(|s| {
        let (tx, hasher) = spawn_hasher(s, 4);
        let mut frame = vec![0u8; 8 + FRAME];
        let mut changed = 0u64;
        let mut off = 0u64;
        let mut i = 0usize;
        while off < size {
            let n = block.min(size - off) as usize;
            let mut buf = vec![0u8; n];
            file.read_exact(&mut buf)?;
            let differs =
                theirs.get(i * BLOCK_HASH..(i + 1) * BLOCK_HASH) != Some(&block_hash(&buf)[..]);
            if differs {
                changed += n as u64;
                if changed > max_changed {
                    drop(tx);
                    let _ = hasher.join();
                    write_frame(w, Kind::Abort, transfer::DISCARD)?;
                    w.flush()?;
                    return Ok(Streamed::TooMany);
                }
                for (k, piece) in buf.chunks(FRAME).enumerate() {
                    let at = off + (k * FRAME) as u64;
                    frame[..8].copy_from_slice(&at.to_be_bytes());
                    frame[8..8 + piece.len()].copy_from_slice(piece);
                    write_frame(w, Kind::Data, &frame[..8 + piece.len()])?;
                }
            }
            hash_piece(&tx, buf)?;
            off += n as u64;
            i += 1;
        }
        drop(tx);
        let sha = hasher
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?;
        write_frame(w, Kind::End, &sha)?;
        w.flush()?;
        Ok(Streamed::Sent(sha))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge() {
        assert_eq!(
            merge(vec![(5, 9), (0, 2), (2, 3), (8, 12)]),
            vec![(0, 3), (5, 12)]
        );
        assert!(merge(vec![]).is_empty());
    }

    #[test]
    fn a_file_is_built_from_its_old_version_and_the_blocks_sent() {
        let t = crate::testutil::TempDir::new();
        let old_data: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
        let mut new_data = old_data.clone();
        new_data[100] ^= 1;
        new_data[(2 << 20) + 7] ^= 1;
        new_data.extend_from_slice(b"grown");
        std::fs::write(t.path().join("old"), &old_data).unwrap();
        std::fs::write(t.path().join("src"), &new_data).unwrap();
        let src = File::open(t.path().join("src")).unwrap();
        let block = 1 << 20;
        let sha = transfer::finish({
            let mut c = transfer::sha();
            c.update(&new_data);
            c
        });
        let mut wire = Vec::new();
        send_blocks(
            &mut wire,
            &src,
            new_data.len() as u64,
            block,
            &[0, 2, 3],
            &sha,
        )
        .unwrap();
        assert!(
            wire.len() < (2 << 20) + 4096,
            "two blocks and a short one, not three"
        );
        let new = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(t.path().join("new"))
            .unwrap();
        let (ranges, sender, failure) =
            receive_ranges(&mut &wire[..], &new, new_data.len() as u64).unwrap();
        assert!(failure.is_none());
        assert_eq!(sender, Some(sha));
        new.set_len(new_data.len() as u64).unwrap();
        let old = File::open(t.path().join("old")).unwrap();
        let built = build(&old, &new, &merge(ranges), new_data.len() as u64).unwrap();
        assert_eq!(built, sha);
        assert!(std::fs::read(t.path().join("new")).unwrap() == new_data);
        // the same delta, streamed: built as it arrives
        let mut wire = Vec::new();
        let mut src = File::open(t.path().join("src")).unwrap();
        let mut theirs = Vec::new();
        for chunk in old_data.chunks(block as usize) {
            theirs.extend_from_slice(&crate::protocol::sync::block_hash(chunk));
        }
        let sent = stream_blocks(
            &mut wire,
            &mut src,
            new_data.len() as u64,
            block,
            &theirs,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(sent, Streamed::Sent(sha));
        assert!(wire.len() < (2 << 20) + 4096, "only what changed");
        let fresh = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(t.path().join("streamed"))
            .unwrap();
        fresh.set_len(new_data.len() as u64).unwrap();
        let applied = apply_stream(&mut &wire[..], &old, &fresh, new_data.len() as u64).unwrap();
        assert!(applied.failure.is_none(), "{:?}", applied.failure);
        assert_eq!((applied.sender, applied.ours), (Some(sha), Some(sha)));
        assert!(std::fs::read(t.path().join("streamed")).unwrap() == new_data);
        // too much changed: it gives up with an Abort, which the receiver sees
        let mut wire = Vec::new();
        let mut src = File::open(t.path().join("src")).unwrap();
        let gave_up = stream_blocks(
            &mut wire,
            &mut src,
            new_data.len() as u64,
            block,
            &[],
            1 << 20,
        )
        .unwrap();
        assert_eq!(gave_up, Streamed::TooMany);
        let applied = apply_stream(&mut &wire[..], &old, &fresh, new_data.len() as u64).unwrap();
        assert_eq!(applied.sender, None);
        // a block the old file lacks, not sent: refused
        let short = File::options()
            .write(true)
            .read(true)
            .open(t.path().join("new"))
            .unwrap();
        let e = build(&old, &short, &[], new_data.len() as u64).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
