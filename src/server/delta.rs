//! Block deltas for large files: `blocks` tells a client the hash of each fixed-size
//! block of a file, and `cpatch` builds a new version of it from the blocks the client
//! sends plus the unchanged ones of the old file.
//!
//! `cpatch` is a conditional upload like `cput`: the old file must still have the
//! content the client's plan saw. The new version is built in a partial file beside
//! the target (reserved, exclusive, as every upload): the ranges received are written
//! at their offsets, every other range is copied from the old file at the same offset
//! (`copy_file_range`, which shares or copies the blocks in the kernel, falling back to
//! reading and writing), then the whole file's SHA-256 is checked against the client's
//! before it is renamed into place. A client falls back to a whole-file `cput` when
//! most blocks differ.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::blockcache;
use super::conn::Tls;
use super::hashcache;
use super::session::{Failure, Session};
use super::syncops::{self, Upload};
use crate::log::{Level, escape};
use crate::protocol::command::hex;
use crate::protocol::frame::{Kind, read_frame};
use crate::protocol::sync::{BLOCK_HASH, Expect, block_hash};
use crate::protocol::{self, ErrorCode};
use crate::sys;
use crate::transfer;

/// Most blocks a `blocks` reply lists (its hashes fit one frame).
const MAX_BLOCKS: u64 = 60_000;
/// Bytes read at a time when hashing or copying.
const CHUNK: usize = 256 << 10;
/// Bytes copied from the old file before they are hashed.
const STEP: u64 = 8 << 20;

fn refused(code: ErrorCode, msg: &str) -> Failure {
    Failure::Refused(code, msg.to_string())
}

/// `blocks path block-size`.
pub(super) fn blocks(
    stream: &mut Tls,
    session: &mut Session,
    path: &str,
    block: u64,
) -> Result<(), protocol::Error> {
    let o = syncops::outcome(block_list(session, path, block));
    syncops::reply(stream, session, o)
}

fn block_list(session: &mut Session, path: &str, block: u64) -> Result<Vec<Vec<u8>>, Failure> {
    let target = session.path(path)?;
    let (sb, state) = session.sync_parts();
    let (dir, name) = sb.open_parent(&target)?;
    let (mut file, st) = open_regular(dir.as_fd(), &name)?;
    if st.size.div_ceil(block) > MAX_BLOCKS {
        return Err(refused(
            ErrorCode::Unsupported,
            "too many blocks for a delta; send the whole file",
        ));
    }
    let whole = hashcache::current_sha(&mut state.cache, sb.root_fd(), dir.as_fd(), &name)?
        .ok_or_else(|| refused(ErrorCode::Changed, "the file is changing"))?;
    let hashes = match blockcache::load(sb.root_fd(), &st, block) {
        Some(h) => h,
        None => {
            let h = blockcache::compute(&mut file, st.size, block)?;
            // changed while it was read: the list would describe no version of the file
            if sys::lstatat(file.as_fd(), c"")? != st {
                return Err(refused(
                    ErrorCode::Changed,
                    "the file changed while it was read",
                ));
            }
            blockcache::store(sb.root_fd(), &st, block, &h);
            h
        }
    };
    Ok(vec![
        st.size.to_string().into_bytes(),
        block.to_string().into_bytes(),
        hex(&whole).into_bytes(),
        hashes,
    ])
}

fn open_regular(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> Result<(File, sys::FileStat), Failure> {
    let fd = sys::openat(
        dir,
        name,
        sys::oflag::RDONLY | sys::oflag::NOFOLLOW | sys::oflag::NONBLOCK,
        0,
    )?;
    let st = sys::lstatat(fd.as_fd(), c"")?;
    if !st.is_file() {
        return Err(Failure::Sandbox(crate::sandbox::Error::NotRegular));
    }
    sys::set_blocking(fd.as_fd())?;
    Ok((File::from(fd), st))
}

/// The ranges received, as sorted, merged `(start, end)` pairs.
fn merge(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
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
fn copy_range(src: &File, dst: &File, off: u64, len: u64) -> io::Result<()> {
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
fn build(old: &File, new: &File, received: &[(u64, u64)], size: u64) -> Result<[u8; 32], Failure> {
    let missing = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            refused(
                ErrorCode::Invalid,
                "the patch leaves a range the old file does not have",
            )
        } else {
            Failure::from(e)
        }
    };
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let hasher = s.spawn(move || {
            let mut ctx = transfer::sha();
            for b in rx {
                ctx.update(&b);
            }
            transfer::finish(ctx)
        });
        let feed = |from: &File, off: u64, len: u64| -> io::Result<()> {
            let mut at = off;
            while at < off + len {
                let n = (off + len - at).min(CHUNK as u64) as usize;
                let mut buf = vec![0u8; n];
                from.read_exact_at(&mut buf, at)?;
                tx.send(buf)
                    .map_err(|_| io::Error::other("the hashing thread failed"))?;
                at += n as u64;
            }
            Ok(())
        };
        let mut at = 0u64;
        let mut result: Result<(), Failure> = Ok(());
        'ranges: for &(a, b) in received.iter().chain(&[(size, size)]) {
            // a piece at a time, so that hashing one overlaps copying the next
            let mut c = at;
            while c < a {
                let n = (a - c).min(STEP);
                if let Err(e) = copy_range(old, new, c, n).and_then(|()| feed(old, c, n)) {
                    result = Err(missing(e));
                    break 'ranges;
                }
                c += n;
            }
            if b > a
                && let Err(e) = feed(new, a, b - a)
            {
                result = Err(Failure::from(e));
                break;
            }
            at = at.max(b);
        }
        drop(tx);
        let sha = hasher
            .join()
            .map_err(|_| Failure::from(io::Error::other("the hashing thread failed")))?;
        result.map(|()| sha)
    })
}

/// What a patch's stream brought: the ranges written, the sender's SHA-256 (`None`:
/// it aborted) and the first local failure.
type Ranges = (Vec<(u64, u64)>, Option<[u8; 32]>, Option<Failure>);

/// Receives a patch's ranges into `file` (an empty partial of the new size): returns
/// the ranges written and the sender's SHA-256 (`None`: it aborted). A local failure
/// is kept and the stream still read to its end, so the session stays in step.
fn receive_ranges(stream: &mut Tls, file: &File, size: u64) -> Result<Ranges, protocol::Error> {
    let mut buf = Vec::new();
    let mut ranges = Vec::new();
    let mut failure = None;
    let mut received = 0u64;
    loop {
        match read_frame(stream, &mut buf)? {
            Kind::Data => {
                if failure.is_some() {
                    continue;
                }
                let Some((head, data)) = buf.split_first_chunk::<8>() else {
                    failure = Some(refused(
                        ErrorCode::Invalid,
                        "a patch frame without its offset",
                    ));
                    continue;
                };
                let off = u64::from_be_bytes(*head);
                let end = off.checked_add(data.len() as u64).filter(|&e| e <= size);
                received += data.len() as u64;
                match end {
                    Some(end) if received <= size => match file.write_all_at(data, off) {
                        Ok(()) => ranges.push((off, end)),
                        Err(e) => failure = Some(Failure::from(e)),
                    },
                    _ => {
                        failure = Some(refused(
                            ErrorCode::Invalid,
                            "patch data beyond the announced size",
                        ))
                    }
                }
            }
            Kind::End => {
                let sha = <[u8; 32]>::try_from(&buf[..]).map_err(|_| protocol::Error::BadFields)?;
                return Ok((ranges, Some(sha), failure));
            }
            Kind::Abort => return Ok((ranges, None, failure)),
            other => return Err(protocol::Error::Unexpected(other)),
        }
    }
}

/// `cpatch path size mtime-ns mode block-size expect flags`: the ranges follow at once.
pub(super) fn patch(
    stream: &mut Tls,
    peer: SocketAddr,
    session: &mut Session,
    up: &Upload<'_>,
    block: u64,
) -> Result<(), protocol::Error> {
    let started = Instant::now();
    let prepared = (|| {
        let Expect::Sha(_) = up.expect else {
            return Err(refused(
                ErrorCode::Invalid,
                "a patch needs the old file's SHA-256",
            ));
        };
        let target = session.path(up.path)?;
        syncops::precheck(session, &target, up.expect)?;
        let (old, _) = {
            let (sb, _) = session.sync_parts();
            let (dir, name) = sb.open_parent(&target)?;
            open_regular(dir.as_fd(), &name)?
        };
        let secs = up.mtime_ns.div_euclid(1_000_000_000);
        let (target, partial) = session.begin_put(up.path, Some((up.size, secs)), false, false)?;
        Ok((target, partial, old))
    })();
    let (target, mut partial, old) = match prepared {
        Ok(p) => p,
        Err(f) => {
            transfer::skip(stream, u64::MAX)?;
            return syncops::reply(stream, session, syncops::outcome(Err(f)));
        }
    };
    let (ranges, sender, failure) = {
        let file = partial.file();
        receive_ranges(stream, file, up.size)?
    };
    let changed = merge(ranges);
    let old_stat = sys::lstatat(old.as_fd(), c"").ok();
    let built = (|| {
        if let Some(f) = failure {
            return Err(f);
        }
        let Some(sender) = sender else {
            return Err(refused(
                ErrorCode::Aborted,
                "upload cancelled by the client",
            ));
        };
        let file = partial.file().try_clone()?;
        file.set_len(up.size)?;
        let ours = build(&old, &file, &changed, up.size)?;
        if ours != sender {
            return Err(refused(
                ErrorCode::Integrity,
                "SHA-256 mismatch: the patched file is not the client's; nothing was saved",
            ));
        }
        Ok(ours)
    })();
    let sha = match built {
        Ok(sha) => sha,
        Err(f) => return syncops::reply(stream, session, syncops::outcome(Err(f))),
    };
    let blocks = new_block_list(session, &old, &mut partial, &changed, up.size, block);
    drop(old);
    syncops::finish_partial(&mut partial, up.mtime_ns, up.mode);
    session.shared.log.log(
        Level::Info,
        Some(peer),
        Some(&session.user),
        format_args!(
            "sync patched {:?}: {} bytes in {:.3?}",
            escape(up.path),
            up.size,
            started.elapsed()
        ),
    );
    let committed = partial.file().try_clone().ok();
    let held = syncops::held(partial, target, up.expect, sha);
    let o = syncops::outcome(syncops::commit_now(session, held, up.durable));
    if o.is_ok() {
        let root = session.sandbox().root_fd();
        if let Some(old) = old_stat {
            blockcache::forget(root, &old, block);
        }
        if let (Some(f), Some(list)) = (committed, blocks)
            && let Ok(st) = sys::lstatat(f.as_fd(), c"")
        {
            blockcache::store(root, &st, block, &list);
        }
    }
    syncops::reply(stream, session, o)
}

/// The block list of a patched file: the old file's hashes for the blocks copied
/// from it whole (when its list is cached), the others hashed from the new file.
fn new_block_list(
    session: &mut Session,
    old: &File,
    new: &mut crate::sandbox::Partial,
    changed: &[(u64, u64)],
    size: u64,
    block: u64,
) -> Option<Vec<u8>> {
    let old_st = sys::lstatat(old.as_fd(), c"").ok()?;
    let old_list = blockcache::load(session.sandbox().root_fd(), &old_st, block);
    let blocks = size.div_ceil(block);
    let mut out = Vec::with_capacity(blocks as usize * BLOCK_HASH);
    let mut buf = vec![0u8; block as usize];
    let file = new.file();
    for i in 0..blocks {
        let (start, end) = (i * block, ((i + 1) * block).min(size));
        let touched = changed.iter().any(|&(a, b)| a < end && b > start);
        // the same bytes as the old file's block i, and that block was whole there too
        let same = !touched && (end - start == block || end == old_st.size) && end <= old_st.size;
        let reuse = old_list
            .as_ref()
            .filter(|_| same)
            .and_then(|l| l.get(i as usize * BLOCK_HASH..(i as usize + 1) * BLOCK_HASH));
        match reuse {
            Some(h) => out.extend_from_slice(h),
            None => {
                let n = (end - start) as usize;
                file.read_exact_at(&mut buf[..n], start).ok()?;
                out.extend_from_slice(&block_hash(&buf[..n]));
            }
        }
    }
    Some(out)
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
    fn ranges_copy_across_files() {
        let t = crate::testutil::TempDir::new();
        let a = t.path().join("a");
        std::fs::write(&a, (0..=255u8).cycle().take(3 << 20).collect::<Vec<_>>()).unwrap();
        let src = File::open(&a).unwrap();
        let dst = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(t.path().join("b"))
            .unwrap();
        dst.set_len(3 << 20).unwrap();
        copy_range(&src, &dst, 1000, (2 << 20) + 5).unwrap();
        let b = std::fs::read(t.path().join("b")).unwrap();
        let a = std::fs::read(&a).unwrap();
        assert_eq!(
            &b[1000..1000 + (2 << 20) + 5],
            &a[1000..1000 + (2 << 20) + 5]
        );
        assert!(b[..1000].iter().all(|&x| x == 0));
        assert!(
            copy_range(&src, &dst, (3 << 20) - 10, 20).is_err(),
            "past the end"
        );
    }
}
