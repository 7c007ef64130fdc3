//! The per-user cache of block hashes for deltas: for a large file, the hash of each
//! fixed-size block, so that a `blocks` request does not read the whole file again.
//!
//! One small reserved file per cached file in the user's root (`.fos-sync-b-…`, so it
//! is neither listed nor counted against the quota), named by device, inode and block
//! size, holding the size, mtime and
//! ctime (ns) the list is valid for, the hashes, and a check over all of it. A list is
//! used only while the file's stat is exactly the recorded one (any change changes the
//! ctime), and it is written to a temporary name and renamed into place, so servers
//! sharing the storage never read a half-written one. Filled when a large upload
//! commits (the server hashes the blocks as they arrive), when a delta commits, and
//! when a `blocks` request had to read the file. A lost or damaged entry costs a read
//! of the file, never a wrong delta (the whole file's SHA-256 is checked anyway).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

use crate::protocol::sync::{BLOCK_HASH, block_hash};
use crate::sys::{self, FileStat, oflag};

/// What the names of the entries start with, in the user's root (reserved).
const PREFIX: &str = ".fos-sync-b-";
/// More entries than this and they are all removed (entries of deleted files linger
/// otherwise).
const MAX_ENTRIES: usize = 4096;
const MAGIC: &[u8; 8] = b"fosblk1\n";

fn name(st: &FileStat, block: u64) -> String {
    format!("{PREFIX}{:x}-{:x}-{block:x}", st.dev, st.ino)
}

fn check(body: &[u8]) -> [u8; 16] {
    let mut c = [0u8; 16];
    c.copy_from_slice(&ring::digest::digest(&ring::digest::SHA256, body).as_ref()[..16]);
    c
}

/// The cached block list of a file in stat `st`, if there is a valid one.
pub fn load(root: BorrowedFd<'_>, st: &FileStat, block: u64) -> Option<Vec<u8>> {
    let n = sys::cstring(name(st, block).as_bytes()).ok()?;
    let fd = sys::openat(root, &n, oflag::RDONLY | oflag::NOFOLLOW, 0).ok()?;
    let blocks = st.size.div_ceil(block) as usize;
    let want = 48 + blocks * BLOCK_HASH + 16;
    let mut bytes = Vec::with_capacity(want);
    File::from(fd)
        .take(want as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() != want {
        return None;
    }
    let (body, c) = bytes.split_at(want - 16);
    let field =
        |i: usize| u64::from_be_bytes(body[8 + i * 8..16 + i * 8].try_into().unwrap_or_default());
    let ok = &body[..8] == MAGIC
        && c == check(body)
        && field(0) == st.size
        && field(1) as i64 == st.mtime_ns
        && field(2) as i64 == st.ctime_ns
        && field(3) == block
        && field(4) as usize == blocks;
    ok.then(|| body[48..].to_vec())
}

/// Stores the block list `hashes` of a file in stat `st` (best effort).
pub fn store(root: BorrowedFd<'_>, st: &FileStat, block: u64, hashes: &[u8]) {
    let _ = try_store(root, st, block, hashes);
}

fn try_store(root: BorrowedFd<'_>, st: &FileStat, block: u64, hashes: &[u8]) -> io::Result<()> {
    let ours: Vec<CString> = sys::read_dir(root)?
        .into_iter()
        .filter(|n| n.as_bytes().starts_with(PREFIX.as_bytes()))
        .filter_map(|n| sys::cstring(n.as_bytes()).ok())
        .collect();
    if ours.len() >= MAX_ENTRIES {
        for n in &ours {
            let _ = sys::unlinkat(root, n, false);
        }
    }
    let mut body = Vec::with_capacity(48 + hashes.len() + 16);
    body.extend_from_slice(MAGIC);
    for v in [
        st.size,
        st.mtime_ns as u64,
        st.ctime_ns as u64,
        block,
        (hashes.len() / BLOCK_HASH) as u64,
    ] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    body.extend_from_slice(hashes);
    let c = check(&body);
    body.extend_from_slice(&c);
    let final_name = sys::cstring(name(st, block).as_bytes())?;
    let tmp = sys::cstring(format!("{PREFIX}tmp-{}", crate::random::hex(6)).as_bytes())?;
    let fd = sys::openat(
        root,
        &tmp,
        oflag::WRONLY | oflag::CREAT | oflag::EXCL | oflag::NOFOLLOW,
        0o600,
    )?;
    let r = File::from(fd)
        .write_all(&body)
        .and_then(|()| sys::renameat(root, &tmp, root, &final_name, false));
    if r.is_err() {
        let _ = sys::unlinkat(root, &tmp, false);
    }
    r
}

/// Forgets the lists of a file that is gone (replaced by a new version).
pub fn forget(root: BorrowedFd<'_>, st: &FileStat, block: u64) {
    if let Ok(n) = sys::cstring(name(st, block).as_bytes()) {
        let _ = sys::unlinkat(root, &n, false);
    }
}

/// A writer that hashes the blocks of what passes through it (an upload's content,
/// from its start), on the way to `inner`; with no block size it only passes it on.
pub struct Hashing<W: Write> {
    inner: W,
    block: Option<u64>,
    ctx: ring::digest::Context,
    in_block: u64,
    hashes: Vec<u8>,
}

impl<W: Write> Hashing<W> {
    /// Wraps `inner`; blocks of `block` bytes (`None`: no hashing).
    pub fn new(inner: W, block: Option<u64>) -> Hashing<W> {
        Hashing {
            inner,
            block,
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            in_block: 0,
            hashes: Vec::new(),
        }
    }

    /// The hashes of every block (the last one possibly short).
    pub fn finish(mut self) -> Vec<u8> {
        if self.in_block > 0 {
            let d = self.ctx.finish();
            self.hashes.extend_from_slice(&d.as_ref()[..BLOCK_HASH]);
        }
        self.hashes
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let Some(block) = self.block else {
            return Ok(n);
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            let take = ((block - self.in_block) as usize).min(data.len());
            self.ctx.update(&data[..take]);
            self.in_block += take as u64;
            data = &data[take..];
            if self.in_block == block {
                let ctx = std::mem::replace(
                    &mut self.ctx,
                    ring::digest::Context::new(&ring::digest::SHA256),
                );
                self.hashes
                    .extend_from_slice(&ctx.finish().as_ref()[..BLOCK_HASH]);
                self.in_block = 0;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The block hashes of `file` (all `size` bytes, read from its start).
pub fn compute(file: &mut File, size: u64, block: u64) -> io::Result<Vec<u8>> {
    let mut hashes = Vec::with_capacity(size.div_ceil(block) as usize * BLOCK_HASH);
    let mut buf = vec![0u8; block.min(size).max(1) as usize];
    let mut left = size;
    while left > 0 {
        let n = block.min(left) as usize;
        file.read_exact(&mut buf[..n])?;
        hashes.extend_from_slice(&block_hash(&buf[..n]));
        left -= n as u64;
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::fd::{AsFd, OwnedFd};

    #[test]
    fn lists_are_used_only_for_the_same_stat() {
        let t = TempDir::new();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(t.path().join("f"), &data).unwrap();
        let root = OwnedFd::from(File::open(t.path()).unwrap());
        let st = sys::lstatat(root.as_fd(), c"f").unwrap();
        let block = 65536;
        let mut f = File::open(t.path().join("f")).unwrap();
        let list = compute(&mut f, st.size, block).unwrap();
        // the writer computes the same list as a read
        let mut w = Hashing::new(Vec::new(), Some(block));
        for chunk in data.chunks(7777) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.finish(), list);
        assert_eq!(load(root.as_fd(), &st, block), None);
        store(root.as_fd(), &st, block, &list);
        assert_eq!(load(root.as_fd(), &st, block), Some(list.clone()));
        assert_eq!(load(root.as_fd(), &st, block * 2), None, "other block size");
        // a changed file: not used
        std::fs::write(t.path().join("f"), b"other").unwrap();
        let st2 = sys::lstatat(root.as_fd(), c"f").unwrap();
        assert_eq!(load(root.as_fd(), &st2, block), None);
        forget(root.as_fd(), &st, block);
        assert_eq!(load(root.as_fd(), &st, block), None);
    }
}
