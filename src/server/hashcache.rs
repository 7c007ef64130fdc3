//! The per-user hash cache: the SHA-256 of files in a user's storage, kept in a
//! reserved file in the user's root ([`CACHE_NAME`]), so that a manifest with hashes
//! and the conditional writes of `sync` need not read the files again. It is filled
//! for free when an upload commits (the server has just hashed the content).
//!
//! Entries are keyed by (device, inode) and valid only while the file's size, mtime
//! and ctime (in nanoseconds) are the ones recorded: any change to the file, through
//! fos or made directly in the storage by an administrator, changes its ctime, so a
//! stale entry is never trusted over the file's current stat.
//!
//! The file is an append-only log of fixed-size records, each with its own check
//! bytes. Writers append under an exclusive `flock`, readers read under a shared one,
//! and a compaction writes a new file and renames it over the old one; a writer that
//! finds it holds a replaced file opens the new one. So several servers can share one
//! storage root, and nothing is known to one process only: every use reads what the
//! others appended since. A damaged record is skipped and a damaged header starts
//! the log over: losing the cache costs hashing time, never a wrong answer.
//!
//! This module does no protocol work; `manifest` and `syncops` use it.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys::{self, FileStat, errno, oflag};
use crate::transfer;

/// The cache file, in the user's root (reserved: users never see or name it).
pub const CACHE_NAME: &CStr = c".fos-sync-hashes";
/// Bytes per record (and of the header).
const REC: usize = 80;
/// Bytes of a record covered by its check.
const BODY: usize = 72;
/// What the header starts with.
const MAGIC: &[u8] = b"fos-hashes 1\n";
/// A file whose log holds this many more records than live entries is compacted.
const SLACK: u64 = 1024;

/// One file's hash and the stat it is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size the hash is valid for.
    pub size: u64,
    /// Modification time (ns) the hash is valid for.
    pub mtime_ns: i64,
    /// Change time (ns) the hash is valid for.
    pub ctime_ns: i64,
    /// SHA-256 of the content.
    pub sha: [u8; 32],
}

impl Record {
    /// The record for a file of stat `st` and content hash `sha`.
    pub fn of(st: &FileStat, sha: [u8; 32]) -> Record {
        Record {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
            sha,
        }
    }

    /// Whether this record describes the file as it is now.
    pub fn matches(&self, st: &FileStat) -> bool {
        st.is_file()
            && (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
                == (st.dev, st.ino, st.size, st.mtime_ns, st.ctime_ns)
    }

    fn encode(&self) -> [u8; REC] {
        let mut b = [0u8; REC];
        b[0..8].copy_from_slice(&self.dev.to_be_bytes());
        b[8..16].copy_from_slice(&self.ino.to_be_bytes());
        b[16..24].copy_from_slice(&self.size.to_be_bytes());
        b[24..32].copy_from_slice(&self.mtime_ns.to_be_bytes());
        b[32..40].copy_from_slice(&self.ctime_ns.to_be_bytes());
        b[40..72].copy_from_slice(&self.sha);
        seal(&mut b);
        b
    }

    fn decode(b: &[u8]) -> Option<Record> {
        if b.len() != REC || !sealed(b) {
            return None;
        }
        let n = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            a
        };
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&b[40..72]);
        Some(Record {
            dev: u64::from_be_bytes(n(0)),
            ino: u64::from_be_bytes(n(8)),
            size: u64::from_be_bytes(n(16)),
            mtime_ns: i64::from_be_bytes(n(24)),
            ctime_ns: i64::from_be_bytes(n(32)),
            sha,
        })
    }
}

fn check(body: &[u8]) -> [u8; 8] {
    let mut c = [0u8; 8];
    c.copy_from_slice(&ring::digest::digest(&ring::digest::SHA256, body).as_ref()[..8]);
    c
}

fn seal(b: &mut [u8; REC]) {
    let c = check(&b[..BODY]);
    b[BODY..].copy_from_slice(&c);
}

fn sealed(b: &[u8]) -> bool {
    b[BODY..] == check(&b[..BODY])
}

fn header() -> [u8; REC] {
    let mut b = [0u8; REC];
    b[..MAGIC.len()].copy_from_slice(MAGIC);
    seal(&mut b);
    b
}

fn header_ok(b: &[u8]) -> bool {
    b.len() == REC && b.starts_with(MAGIC) && sealed(b)
}

fn open_cache(root: BorrowedFd<'_>, write: bool) -> io::Result<File> {
    open_cache_with(root, write, true)
}

fn open_cache_with(root: BorrowedFd<'_>, write: bool, create: bool) -> io::Result<File> {
    let flags = match (write, create) {
        (true, true) => oflag::RDWR | oflag::CREAT | oflag::APPEND | oflag::NOFOLLOW,
        (true, false) => oflag::RDWR | oflag::APPEND | oflag::NOFOLLOW,
        (false, _) => oflag::RDONLY | oflag::NOFOLLOW,
    };
    Ok(File::from(sys::openat(root, CACHE_NAME, flags, 0o600)?))
}

/// Whether `file` is still the one under the cache's name (a compaction may have
/// replaced it while we waited for its lock).
fn still_current(root: BorrowedFd<'_>, file: &File) -> bool {
    match (
        sys::lstatat(file.as_fd(), c""),
        sys::lstatat(root, CACHE_NAME),
    ) {
        (Ok(a), Ok(b)) => (a.dev, a.ino) == (b.dev, b.ino),
        _ => false,
    }
}

/// A session's view of the cache file: what it read of it so far, refreshed (only
/// the records appended since) at every use.
#[derive(Debug, Default)]
pub struct HashCache {
    map: HashMap<(u64, u64), Record>,
    /// (device, inode) of the file read, and how far.
    file: Option<(u64, u64)>,
    read_to: u64,
    /// Records in the file (live or superseded).
    records: u64,
}

impl HashCache {
    /// Reads what was appended since the last refresh (everything, if the file was
    /// replaced, lost or damaged). A cache that cannot be read is an empty one.
    pub fn refresh(&mut self, root: BorrowedFd<'_>) {
        if self.try_refresh(root).is_err() {
            *self = HashCache::default();
        }
    }

    fn try_refresh(&mut self, root: BorrowedFd<'_>) -> io::Result<()> {
        let mut file = match open_cache(root, false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                *self = HashCache::default();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        file.lock_shared()?;
        let st = sys::lstatat(file.as_fd(), c"")?;
        let len = st.size - st.size % REC as u64;
        if self.file != Some((st.dev, st.ino)) || len < self.read_to {
            *self = HashCache::default();
        }
        if self.read_to == 0 {
            let mut h = [0u8; REC];
            if len < REC as u64 || file.read_exact(&mut h).is_err() || !header_ok(&h) {
                // damaged or empty: the next append starts it over
                *self = HashCache::default();
                return Ok(());
            }
            self.read_to = REC as u64;
            self.file = Some((st.dev, st.ino));
        }
        file.seek(SeekFrom::Start(self.read_to))?;
        // a few records at a time: the map is the memory, not the file
        let mut buf = vec![0u8; REC * 512];
        while self.read_to < len {
            let n = ((len - self.read_to) as usize).min(buf.len());
            file.read_exact(&mut buf[..n])?;
            for chunk in buf[..n].chunks_exact(REC) {
                self.records += 1;
                if let Some(r) = Record::decode(chunk) {
                    self.map.insert((r.dev, r.ino), r);
                }
            }
            self.read_to += n as u64;
        }
        Ok(())
    }

    /// The hash of a file in stat `st`, if a record for exactly that state exists.
    pub fn get(&self, st: &FileStat) -> Option<[u8; 32]> {
        self.map
            .get(&(st.dev, st.ino))
            .filter(|r| r.matches(st))
            .map(|r| r.sha)
    }

    /// The record for this inode, whatever stat it was made for.
    pub fn record(&self, dev: u64, ino: u64) -> Option<&Record> {
        self.map.get(&(dev, ino))
    }

    /// Remembers records this session has just appended.
    pub fn note(&mut self, recs: &[Record]) {
        for r in recs {
            self.map.insert((r.dev, r.ino), *r);
        }
    }

    /// Whether the file holds so many superseded records that it should be compacted,
    /// given `live` inodes seen in a walk of the whole tree.
    pub fn wants_compaction(&self, live: usize) -> bool {
        self.records > 2 * live as u64 + SLACK
    }

    /// Compacts the file down to the latest record of each inode it names, when most
    /// of its records are superseded ones (a walk of the whole root also drops the
    /// inodes that are gone: see [`compact`]).
    pub fn dedupe(&mut self, root: BorrowedFd<'_>) {
        if !self.wants_compaction(self.map.len()) {
            return;
        }
        let live: Vec<Record> = self.map.values().copied().collect();
        // best effort: a cache that stays long only costs reading time
        let _ = compact(root, &live);
        *self = HashCache::default();
    }
}

/// Appends records to the cache file, under its exclusive lock. A file with a damaged
/// header (or none) is started over; a torn last record (a crash mid-append) is cut off.
pub fn append(root: BorrowedFd<'_>, recs: &[Record]) -> io::Result<()> {
    append_with(root, recs, true)
}

/// As [`append`], but only to a cache that exists: plain uploads feed the cache of
/// users who sync, without leaving one behind for users who never do.
pub fn append_if_present(root: BorrowedFd<'_>, recs: &[Record]) -> io::Result<()> {
    match append_with(root, recs, false) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn append_with(root: BorrowedFd<'_>, recs: &[Record], create: bool) -> io::Result<()> {
    if recs.is_empty() {
        return Ok(());
    }
    let mut out = Vec::with_capacity(REC * (recs.len() + 1));
    for r in recs {
        out.extend_from_slice(&r.encode());
    }
    for _ in 0..8 {
        let mut file = open_cache_with(root, true, create)?;
        file.lock()?;
        if !still_current(root, &file) {
            continue;
        }
        let len = file.metadata()?.len();
        let mut h = [0u8; REC];
        let good = len >= REC as u64
            && file.seek(SeekFrom::Start(0)).is_ok()
            && file.read_exact(&mut h).is_ok()
            && header_ok(&h);
        if !good {
            file.set_len(0)?;
            file.write_all(&header())?;
        } else if len % REC as u64 != 0 {
            file.set_len(len - len % REC as u64)?;
        }
        // O_APPEND: one write lands after everything, whoever appended last
        return file.write_all(&out);
    }
    Err(io::Error::other("the hash cache keeps being replaced"))
}

/// Rewrites the cache with only the records of `live` inodes (those a walk of the
/// whole tree just found, with their current records), under the old file's lock, and
/// renames the new file over it.
pub fn compact(root: BorrowedFd<'_>, live: &[Record]) -> io::Result<()> {
    let file = open_cache(root, true)?;
    file.lock()?;
    if !still_current(root, &file) {
        return Ok(()); // someone else just compacted it
    }
    let tmp_name = format!(
        "{}.{}",
        CACHE_NAME.to_str().unwrap_or(".fos-sync-hashes"),
        crate::random::hex(6)
    );
    let tmp_c = sys::cstring(tmp_name.as_bytes())?;
    let fd = sys::openat(
        root,
        &tmp_c,
        oflag::WRONLY | oflag::CREAT | oflag::EXCL | oflag::NOFOLLOW,
        0o600,
    )?;
    let mut out = Vec::with_capacity(REC * (live.len() + 1));
    out.extend_from_slice(&header());
    for r in live {
        out.extend_from_slice(&r.encode());
    }
    let written = File::from(fd).write_all(&out);
    let renamed = written.and_then(|()| sys::renameat(root, &tmp_c, root, CACHE_NAME, false));
    if renamed.is_err() {
        let _ = sys::unlinkat(root, &tmp_c, false);
    }
    renamed
}

/// Hashes the regular file `name` in `dir` whose stat is `st`. Returns `None` if it
/// is not that file any more or changed while it was read (then nothing is cached).
pub fn hash_file(
    dir: BorrowedFd<'_>,
    name: &CStr,
    st: &FileStat,
) -> io::Result<Option<([u8; 32], FileStat)>> {
    // O_NONBLOCK: a FIFO swapped in must not hang the session
    let fd = match sys::openat(
        dir,
        name,
        oflag::RDONLY | oflag::NOFOLLOW | oflag::NONBLOCK,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(errno::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let before = sys::lstatat(fd.as_fd(), c"")?;
    if !before.is_file() || (before.dev, before.ino) != (st.dev, st.ino) {
        return Ok(None);
    }
    sys::set_blocking(fd.as_fd())?;
    let mut file = File::from(fd);
    let mut ctx = transfer::sha();
    if transfer::hash_prefix(&mut file, before.size, &mut ctx).is_err() {
        return Ok(None); // shorter than it was: changing under us
    }
    let after = sys::lstatat(file.as_fd(), c"")?;
    if after != before {
        return Ok(None);
    }
    Ok(Some((transfer::finish(ctx), after)))
}

/// The SHA-256 of the regular file `name` in `dir` as it is now: from the cache when
/// its record matches the file's stat, otherwise hashed (and the record appended).
/// `None` if it is not a regular file (or keeps changing).
pub fn current_sha(
    cache: &mut HashCache,
    root: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &CStr,
) -> io::Result<Option<[u8; 32]>> {
    let st = sys::lstatat(dir, name)?;
    if !st.is_file() {
        return Ok(None);
    }
    cache.refresh(root);
    if let Some(sha) = cache.get(&st) {
        return Ok(Some(sha));
    }
    let Some((sha, st)) = hash_file(dir, name, &st)? else {
        return Ok(None);
    };
    let rec = [Record::of(&st, sha)];
    // the cache is an optimisation: failing to extend it changes no answer
    let _ = append(root, &rec);
    cache.note(&rec);
    Ok(Some(sha))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::fd::OwnedFd;

    fn root(t: &TempDir) -> OwnedFd {
        OwnedFd::from(File::open(t.path()).unwrap())
    }

    #[test]
    fn records_are_found_only_for_the_same_stat() {
        let t = TempDir::new();
        std::fs::write(t.path().join("f"), b"hello").unwrap();
        let r = root(&t);
        let mut cache = HashCache::default();
        let sha = current_sha(&mut cache, r.as_fd(), r.as_fd(), c"f")
            .unwrap()
            .unwrap();
        assert_eq!(
            sha,
            transfer::finish({
                let mut c = transfer::sha();
                c.update(b"hello");
                c
            })
        );
        // another session (another server) sees it from the file alone
        let mut other = HashCache::default();
        other.refresh(r.as_fd());
        let st = sys::lstatat(r.as_fd(), c"f").unwrap();
        assert_eq!(other.get(&st), Some(sha));
        // a change made behind fos's back, even keeping size and mtime: never trusted
        let mtime = std::fs::metadata(t.path().join("f"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::write(t.path().join("f"), b"HELLO").unwrap();
        File::options()
            .write(true)
            .open(t.path().join("f"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let st2 = sys::lstatat(r.as_fd(), c"f").unwrap();
        assert_eq!((st2.size, st2.mtime_ns), (st.size, st.mtime_ns));
        other.refresh(r.as_fd());
        assert_eq!(other.get(&st2), None, "ctime changed");
        let sha2 = current_sha(&mut other, r.as_fd(), r.as_fd(), c"f")
            .unwrap()
            .unwrap();
        assert_ne!(sha2, sha);
    }

    #[test]
    fn a_damaged_cache_is_skipped_or_started_over() {
        let t = TempDir::new();
        std::fs::write(t.path().join("a"), b"a").unwrap();
        std::fs::write(t.path().join("b"), b"b").unwrap();
        let r = root(&t);
        let mut cache = HashCache::default();
        current_sha(&mut cache, r.as_fd(), r.as_fd(), c"a").unwrap();
        current_sha(&mut cache, r.as_fd(), r.as_fd(), c"b").unwrap();
        let path = t.path().join(".fos-sync-hashes");
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 * REC);
        bytes[REC + 3] ^= 0xff; // a's record
        bytes.extend_from_slice(&[1, 2, 3]); // a torn append
        std::fs::write(&path, &bytes).unwrap();
        let mut fresh = HashCache::default();
        fresh.refresh(r.as_fd());
        let st = |n: &CStr| sys::lstatat(r.as_fd(), n).unwrap();
        assert_eq!(fresh.get(&st(c"a")), None, "damaged record skipped");
        assert!(fresh.get(&st(c"b")).is_some());
        // appending cuts the torn tail, so later records stay aligned
        current_sha(&mut fresh, r.as_fd(), r.as_fd(), c"a").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * REC as u64);
        // a broken header starts the file over
        std::fs::write(&path, b"garbage").unwrap();
        let mut again = HashCache::default();
        again.refresh(r.as_fd());
        assert_eq!(again.get(&st(c"b")), None);
        current_sha(&mut again, r.as_fd(), r.as_fd(), c"b").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * REC as u64);
        // compaction keeps what it is given, and a reader with an old view reloads
        compact(r.as_fd(), &[]).unwrap();
        again.refresh(r.as_fd());
        assert_eq!(again.get(&st(c"b")), None);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), REC as u64);
    }

    #[test]
    fn superseded_records_are_compacted_away() {
        let t = TempDir::new();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let r = root(&t);
        let st = sys::lstatat(r.as_fd(), c"f").unwrap();
        let recs = vec![Record::of(&st, [1; 32]); SLACK as usize + 10];
        append(r.as_fd(), &recs).unwrap();
        let mut cache = HashCache::default();
        cache.refresh(r.as_fd());
        cache.dedupe(r.as_fd());
        let path = t.path().join(".fos-sync-hashes");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * REC as u64);
        cache.refresh(r.as_fd());
        assert_eq!(cache.get(&st), Some([1; 32]));
    }
}
