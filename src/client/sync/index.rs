//! The client's sync index: for one (server certificate, user, remote directory,
//! local directory), the state of every path at the end of the last sync — its
//! content hash, size, the local stat it had then, and the remote modification time.
//! It lets a file be rehashed only when its stat changed, and it is the "last synced
//! state" of the two-way comparison.
//!
//! It lives under the XDG state directory (`$XDG_STATE_HOME/fos/sync/`, by default
//! `~/.local/state/fos/sync/`), never inside the synced tree. The file is binary,
//! about 100 bytes per path, and ends with the SHA-256 of everything before it; it is
//! written to a temporary file and renamed into place. A missing or damaged index is
//! an empty one: the sync then compares and hashes more, and loses nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::tree::StatKey;
use crate::protocol::EntryKind;
use crate::protocol::command::hex;

const MAGIC: &[u8] = b"fos-sync-index 1\n";

/// One path as the last sync left it (the same on both sides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File or directory.
    pub kind: EntryKind,
    /// Size (files).
    pub size: u64,
    /// Content hash (files), when known.
    pub sha: Option<[u8; 32]>,
    /// The local file's stat when it had this content.
    pub local: Option<StatKey>,
    /// The remote modification time, ns.
    pub remote_mtime_ns: i64,
}

/// How the index was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// There was none (a first sync, or it was deleted).
    Missing,
    /// Read and verified.
    Loaded,
    /// There was one but it did not verify: ignored.
    Damaged,
    /// No state directory (neither `XDG_STATE_HOME` nor `HOME`): none is kept.
    Unavailable,
}

/// The index of one sync pair.
#[derive(Debug)]
pub struct Index {
    /// Paths.
    pub entries: BTreeMap<String, Entry>,
    /// How it was found.
    pub status: Status,
    path: Option<PathBuf>,
    header: String,
}

/// `$XDG_STATE_HOME/fos`, or `~/.local/state/fos`.
pub fn state_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(x) if Path::new(&x).is_absolute() => Some(PathBuf::from(x).join("fos")),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".local/state/fos")),
    }
}

fn put_var(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn var(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

impl Index {
    /// Opens the index of this pair (empty if missing or damaged).
    pub fn load(
        state: Option<&Path>,
        fingerprint: &[u8; 32],
        user: &str,
        remote: &str,
        local: &Path,
    ) -> Index {
        let header = format!(
            "server {}\nuser {user}\nremote {remote}\nlocal {}\n",
            hex(fingerprint),
            local.display()
        );
        let Some(state) = state else {
            return Index {
                entries: BTreeMap::new(),
                status: Status::Unavailable,
                path: None,
                header,
            };
        };
        let key = ring::digest::digest(&ring::digest::SHA256, header.as_bytes());
        let path = state
            .join("sync")
            .join(format!("{}.idx", &hex(key.as_ref())[..32]));
        let (entries, status) = match fs::read(&path) {
            Ok(bytes) => match decode(&bytes, &header) {
                Some(e) => (e, Status::Loaded),
                None => (BTreeMap::new(), Status::Damaged),
            },
            Err(_) => (BTreeMap::new(), Status::Missing),
        };
        Index {
            entries,
            status,
            path: Some(path),
            header,
        }
    }

    /// Where the index is kept (`None`: nowhere).
    #[cfg(test)]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes the index atomically (a temporary file renamed into place).
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("idx"),
            std::process::id()
        ));
        let bytes = self.encode();
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 100);
        out.extend_from_slice(MAGIC);
        put_var(&mut out, self.header.len() as u64);
        out.extend_from_slice(self.header.as_bytes());
        put_var(&mut out, self.entries.len() as u64);
        for (p, e) in &self.entries {
            let mut flags = 0u8;
            if e.kind == EntryKind::Dir {
                flags |= 1;
            }
            if e.sha.is_some() {
                flags |= 2;
            }
            if e.local.is_some() {
                flags |= 4;
            }
            out.push(flags);
            put_var(&mut out, p.len() as u64);
            out.extend_from_slice(p.as_bytes());
            put_var(&mut out, e.size);
            out.extend_from_slice(&e.remote_mtime_ns.to_be_bytes());
            if let Some(s) = &e.sha {
                out.extend_from_slice(s);
            }
            if let Some(l) = &e.local {
                put_var(&mut out, l.dev);
                put_var(&mut out, l.ino);
                out.extend_from_slice(&l.mtime_ns.to_be_bytes());
                out.extend_from_slice(&l.ctime_ns.to_be_bytes());
            }
        }
        let check = ring::digest::digest(&ring::digest::SHA256, &out);
        out.extend_from_slice(check.as_ref());
        out
    }
}

fn decode(bytes: &[u8], header: &str) -> Option<BTreeMap<String, Entry>> {
    let (body, check) = bytes.split_at(bytes.len().checked_sub(32)?);
    if ring::digest::digest(&ring::digest::SHA256, body).as_ref() != check {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let hlen = r.var()? as usize;
    if r.take(hlen)? != header.as_bytes() {
        return None;
    }
    let n = r.var()?;
    let mut entries = BTreeMap::new();
    for _ in 0..n {
        let flags = *r.take(1)?.first()?;
        let plen = r.var()? as usize;
        let path = String::from_utf8(r.take(plen)?.to_vec()).ok()?;
        let size = r.var()?;
        let remote_mtime_ns = r.i64()?;
        let sha = if flags & 2 != 0 {
            Some(r.take(32)?.try_into().ok()?)
        } else {
            None
        };
        let local = if flags & 4 != 0 {
            let (dev, ino) = (r.var()?, r.var()?);
            let (mtime_ns, ctime_ns) = (r.i64()?, r.i64()?);
            Some(StatKey {
                dev,
                ino,
                size,
                mtime_ns,
                ctime_ns,
            })
        } else {
            None
        };
        let kind = if flags & 1 != 0 {
            EntryKind::Dir
        } else {
            EntryKind::File
        };
        entries.insert(
            path,
            Entry {
                kind,
                size,
                sha,
                local,
                remote_mtime_ns,
            },
        );
    }
    r.0.is_empty().then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn sample() -> Entry {
        Entry {
            kind: EntryKind::File,
            size: 12345,
            sha: Some([0xab; 32]),
            local: Some(StatKey {
                dev: 2049,
                ino: 1_234_567,
                size: 12345,
                mtime_ns: 1_767_225_600_000_000_000,
                ctime_ns: 1_767_225_601_123_456_789,
            }),
            remote_mtime_ns: 1_767_225_600_000_000_000,
        }
    }

    #[test]
    fn round_trip_and_damage_costs_nothing_but_the_index() {
        let t = TempDir::new();
        let load = || Index::load(Some(t.path()), &[1; 32], "u", "/r", Path::new("/l"));
        let mut idx = load();
        assert_eq!(idx.status, Status::Missing);
        for i in 0..1000 {
            idx.entries.insert(
                format!("src/pkg{:02}/mod{}/file{i:04}.py", i % 24, i % 7),
                sample(),
            );
        }
        idx.entries.insert(
            "src".into(),
            Entry {
                kind: EntryKind::Dir,
                size: 0,
                sha: None,
                local: None,
                remote_mtime_ns: 0,
            },
        );
        idx.save().unwrap();
        let size = fs::metadata(idx.path().unwrap()).unwrap().len();
        assert!(size / 1001 <= 200, "{size} bytes for 1001 paths");
        let back = load();
        assert_eq!(back.status, Status::Loaded);
        assert_eq!(back.entries, idx.entries);
        // another pair does not see it
        let other = Index::load(Some(t.path()), &[2; 32], "u", "/r", Path::new("/l"));
        assert_eq!(other.status, Status::Missing);
        // one flipped byte: the whole index is ignored
        let mut bytes = fs::read(idx.path().unwrap()).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(idx.path().unwrap(), &bytes).unwrap();
        let damaged = load();
        assert_eq!(damaged.status, Status::Damaged);
        assert!(damaged.entries.is_empty());
        fs::write(idx.path().unwrap(), b"").unwrap();
        assert_eq!(load().status, Status::Damaged);
    }
}
