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
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::blockcache;
use super::conn::ServerTls;
use super::hashcache;
use super::session::{Error, Session};
use super::syncops::{self, SyncPut};
use super::upload::{PutArgs, Verified};
use crate::log::{Level, escape};
use crate::protocol::command::hex;
use crate::protocol::frame::{Kind, encode_fields, write_frame};
use crate::protocol::sync::{BLOCK_HASH, Expect, block_hash};
use crate::protocol::{self, ErrorCode};
use crate::sys;
use crate::transfer;

/// Most blocks a `blocks` reply lists (its hashes fit one frame).
const MAX_BLOCKS: u64 = 60_000;

fn refused(code: ErrorCode, msg: &str) -> Error {
    Error::Refused(code, msg.to_string())
}

/// `blocks path block-size`.
pub(super) fn blocks(
    stream: &mut ServerTls,
    session: &mut Session,
    path: &str,
    block: u64,
) -> Result<(), protocol::Error> {
    let o = block_list(session, path, block);
    syncops::reply(stream, session, o)
}

fn block_list(session: &mut Session, path: &str, block: u64) -> Result<Vec<Vec<u8>>, Error> {
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
        Some(h) => {
            // a patch that reads the whole file follows: have it read in meanwhile,
            // while the client hashes its own
            let _ = sys::will_need(file.as_fd());
            h
        }
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
) -> Result<(File, sys::FileStat), Error> {
    let fd = sys::openat(
        dir,
        name,
        sys::oflag::RDONLY | sys::oflag::NOFOLLOW | sys::oflag::NONBLOCK,
        0,
    )?;
    let st = sys::lstatat(fd.as_fd(), c"")?;
    if !st.is_file() {
        return Err(Error::Sandbox(crate::sandbox::Error::NotRegular));
    }
    sys::set_blocking(fd.as_fd())?;
    Ok((File::from(fd), st))
}

/// `fetch path expect block-size blocks`: the blocks asked for, then the whole file's
/// SHA-256 (the client builds the new version from them and its old one, and checks
/// that hash).
pub(super) fn fetch(
    stream: &mut ServerTls,
    session: &mut Session,
    path: &str,
    expect: Expect,
    block: u64,
    blocks: &[u32],
) -> Result<(), protocol::Error> {
    let prepared = (|| {
        let target = session.path(path)?;
        let (sb, state) = session.sync_parts();
        let (dir, name) = sb.open_parent(&target)?;
        let (file, st) = open_regular(dir.as_fd(), &name)?;
        let sha = hashcache::current_sha(&mut state.cache, sb.root_fd(), dir.as_fd(), &name)?
            .ok_or_else(|| refused(ErrorCode::Changed, "the file is changing"))?;
        if matches!(expect, Expect::Sha(want) if want != sha) {
            return Err(refused(
                ErrorCode::Changed,
                "the file changed since it was listed",
            ));
        }
        if blocks
            .last()
            .is_some_and(|&b| u64::from(b) * block >= st.size)
        {
            return Err(refused(
                ErrorCode::Invalid,
                "a block past the end of the file",
            ));
        }
        Ok((file, st, sha))
    })();
    let (file, st, sha) = match prepared {
        Ok(p) => p,
        Err(f) => return syncops::reply(stream, session, Err(f)),
    };
    write_frame(
        stream,
        Kind::Ok,
        &encode_fields(&[st.size.to_string().as_bytes()]),
    )?;
    let list: Vec<u64> = blocks.iter().map(|&b| u64::from(b)).collect();
    crate::delta::send_blocks(stream, &file, st.size, block, &list, &sha)?;
    Ok(())
}

/// `cpatch path size mtime-ns mode block-size expect flags`: the ranges follow at once.
/// An upload like every other ([`Session::begin_put`], `Upload::receive_delta`,
/// `Upload::verified`), committed under its condition like a `cput`.
pub(super) fn patch(
    stream: &mut ServerTls,
    session: &mut Session,
    up: &SyncPut<'_>,
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
        let (sb, _) = session.sync_parts();
        let (dir, name) = sb.open_parent(&target)?;
        Ok(open_regular(dir.as_fd(), &name)?.0)
    })();
    let old = match prepared {
        Ok(old) => old,
        Err(f) => {
            transfer::skip(stream, u64::MAX)?;
            return syncops::reply(stream, session, Err(f));
        }
    };
    let (mut v, changed) = match receive(stream, session, up, &old) {
        Ok(r) => r,
        Err(f) => return syncops::reply(stream, session, Err(f)),
    };
    let old_stat = sys::lstatat(old.as_fd(), c"").ok();
    let blocks = new_block_list(session, &old, &mut v.partial, &changed, up.size, block);
    drop(old);
    syncops::finish_partial(&mut v.partial, up.mtime_ns, up.mode);
    session.log(
        Level::Info,
        format_args!(
            "sync patched {:?}: {} bytes in {:.3?}",
            escape(up.path),
            up.size,
            started.elapsed()
        ),
    );
    let committed = v.partial.file().try_clone().ok();
    let held = syncops::held(v.partial, v.target, up.expect, v.sha);
    let o = syncops::commit_now(session, held, up.durable);
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

/// Reserves the new version's partial, builds it from the ranges as they arrive and
/// `old`, and judges it: the ranges received and the verified upload. A refusal
/// before the ranges are read reads them to their end first (the client sends them
/// at once), so the session stays in step.
fn receive(
    stream: &mut ServerTls,
    session: &Session,
    up: &SyncPut<'_>,
    old: &File,
) -> Result<(Verified, Vec<(u64, u64)>), Error> {
    let args = PutArgs {
        path: up.path,
        size: Some(up.size),
        mtime: Some(up.mtime_ns.div_euclid(1_000_000_000)),
        no_clobber: false,
        resume: false,
        mode: None,
    };
    let mut upload = match session.begin_put(&args) {
        Ok(u) => u,
        Err(e) => {
            transfer::skip(stream, u64::MAX)?;
            return Err(e);
        }
    };
    let changed = match upload.receive_delta(stream, old) {
        Ok(c) => c,
        Err(e) => {
            if upload.unread() {
                transfer::skip(stream, u64::MAX)?;
            }
            return Err(e);
        }
    };
    Ok((upload.verified()?, changed))
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
