//! The `manifest` request: everything beneath one directory of the user's root, in
//! one streamed reply (`Ok [path]`, then `List` frames of [`ManifestEntry`]s, then an
//! empty `List`; an `Error` frame instead of a `List` ends it early).
//!
//! The start directory is resolved like every other path; below it the walk opens
//! each directory with `openat(O_NOFOLLOW)` and describes each entry with
//! `fstatat(AT_SYMLINK_NOFOLLOW)` relative to its opened parent, so no symlink is ever
//! followed (links are listed as links). Reserved names (partial uploads, the sync
//! state) never appear. Depth and entry count are bounded. Hashes come from the hash
//! cache; with [`Hashes::All`], files the cache does not know are hashed and added.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};

use super::conn::ServerTls;
use super::hashcache::{self, HashCache, Record};
use super::session::{Error, Session, describe};
use crate::protocol::frame::{Kind, encode_fields, write_frame};
use crate::protocol::sync::{Hashes, ManifestEntry};
use crate::protocol::{self, EntryKind, ErrorCode};
use crate::sandbox;
use crate::sys::{self, FileStat, errno, oflag};

/// Most entries one manifest lists.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Entries per `List` frame.
const BATCH: usize = 512;
/// Bytes of entries per `List` frame (well under the frame limit).
const BATCH_BYTES: usize = 256 << 10;
/// Hash records gathered before they are appended to the cache.
const APPEND_EVERY: usize = 256;

/// Why a walk stopped.
enum Stop {
    /// The connection failed.
    Net(io::Error),
    /// A limit or a file-system failure: told to the client in an `Error` frame.
    Refused(ErrorCode, String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Net(e)
    }
}

struct Walk<'a> {
    out: &'a mut ServerTls,
    batch: Vec<Vec<u8>>,
    batch_bytes: usize,
    count: usize,
    hashes: Hashes,
    cache: &'a mut HashCache,
    root: BorrowedFd<'a>,
    fresh: Vec<Record>,
    /// Records of every file seen, when the walk covers the whole root (for compaction).
    live: Option<Vec<Record>>,
}

/// Serves `manifest path flags`.
pub(super) fn serve(
    stream: &mut ServerTls,
    session: &mut Session,
    arg: &str,
    hashes: Hashes,
) -> Result<(), protocol::Error> {
    let start = match session.path(arg) {
        Ok(p) => p,
        Err(e) => return refuse(stream, session, e),
    };
    let dir = match session.sandbox().open_dir(&start) {
        Ok(d) => d,
        Err(e) => return refuse(stream, session, Error::Sandbox(e)),
    };
    let (sb, state) = session.sync_parts();
    write_frame(
        stream,
        Kind::Ok,
        &encode_fields(&[start.to_string().as_bytes()]),
    )?;
    if hashes != Hashes::None {
        state.cache.refresh(sb.root_fd());
    }
    let mut walk = Walk {
        out: stream,
        batch: Vec::new(),
        batch_bytes: 0,
        count: 0,
        hashes,
        cache: &mut state.cache,
        root: sb.root_fd(),
        fresh: Vec::new(),
        live: (start.is_root() && hashes != Hashes::None).then(Vec::new),
    };
    let result = walk
        .dir(dir.as_fd(), "", 0)
        .and_then(|()| walk.send_batch());
    walk.save_fresh();
    match result {
        Ok(()) => {
            match &walk.live {
                Some(live) if walk.cache.wants_compaction(live.len()) => {
                    // best effort: a cache that stays long only costs reading time
                    let _ = hashcache::compact(walk.root, live);
                }
                _ => walk.cache.dedupe(walk.root),
            }
            write_frame(walk.out, Kind::List, b"")?;
            walk.out.flush()?;
            Ok(())
        }
        Err(Stop::Net(e)) => Err(e.into()),
        Err(Stop::Refused(code, msg)) => refuse(stream, session, Error::Refused(code, msg)),
    }
}

/// An `Error` frame instead of the manifest, or of the rest of it.
fn refuse(stream: &mut ServerTls, session: &Session, e: Error) -> Result<(), protocol::Error> {
    super::native::write_error(stream, Some(session), e)?;
    Ok(stream.flush()?)
}

fn fs_failure(e: io::Error) -> Stop {
    let (code, msg) = describe(&Error::from(e));
    Stop::Refused(code, format!("cannot read the tree: {msg}"))
}

impl Walk<'_> {
    fn dir(&mut self, fd: BorrowedFd<'_>, prefix: &str, depth: usize) -> Result<(), Stop> {
        if depth >= sandbox::MAX_DEPTH {
            return Err(Stop::Refused(
                ErrorCode::Invalid,
                format!("directory tree deeper than {} levels", sandbox::MAX_DEPTH),
            ));
        }
        let mut names: Vec<String> = sys::read_dir(fd)
            .map_err(fs_failure)?
            .into_iter()
            // names that are not UTF-8 cannot travel; fos never makes them
            .filter_map(|n| n.into_string().ok())
            .filter(|n| !sandbox::is_reserved(n))
            .collect();
        names.sort_unstable();
        for name in names {
            let Ok(cname) = sys::cstring(name.as_bytes()) else {
                continue;
            };
            let st = match sys::lstatat(fd, &cname) {
                Ok(st) => st,
                // removed between readdir and stat: it is simply gone
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(fs_failure(e)),
            };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = EntryKind::of_mode(st.mode);
            let sha = match kind {
                EntryKind::File => self.sha(fd, &cname, &st)?,
                _ => None,
            };
            self.push(ManifestEntry {
                path: path.clone(),
                kind,
                size: if kind == EntryKind::File { st.size } else { 0 },
                mtime_ns: st.mtime_ns,
                mode: st.mode & 0o7777,
                sha,
            })?;
            if kind == EntryKind::Dir {
                let sub = match sys::openat(
                    fd,
                    &cname,
                    oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
                    0,
                ) {
                    Ok(d) => d,
                    // swapped for a link or removed since the stat: not descended
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || matches!(
                                e.raw_os_error(),
                                Some(errno::ELOOP) | Some(errno::ENOTDIR)
                            ) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(fs_failure(e)),
                };
                self.dir(sub.as_fd(), &path, depth + 1)?;
            }
        }
        Ok(())
    }

    fn sha(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        st: &FileStat,
    ) -> Result<Option<[u8; 32]>, Stop> {
        let known = match self.hashes {
            Hashes::None => return Ok(None),
            _ => self.cache.get(st),
        };
        let (sha, st) = match (known, self.hashes) {
            (Some(sha), _) => (Some(sha), *st),
            (None, Hashes::All) => match hashcache::hash_file(dir, name, st) {
                Ok(Some((sha, now))) => {
                    self.fresh.push(Record::of(&now, sha));
                    if self.fresh.len() >= APPEND_EVERY {
                        self.save_fresh();
                    }
                    (Some(sha), now)
                }
                // changing while read: listed without a hash
                Ok(None) => (None, *st),
                Err(e) => return Err(fs_failure(e)),
            },
            (None, _) => (None, *st),
        };
        if let (Some(live), Some(sha)) = (&mut self.live, sha) {
            live.push(Record::of(&st, sha));
        }
        Ok(sha)
    }

    fn save_fresh(&mut self) {
        // the cache is an optimisation: failing to extend it changes no answer
        let _ = hashcache::append(self.root, &self.fresh);
        self.cache.note(&self.fresh);
        self.fresh.clear();
    }

    fn push(&mut self, e: ManifestEntry) -> Result<(), Stop> {
        self.count += 1;
        if self.count > MAX_ENTRIES {
            return Err(Stop::Refused(
                ErrorCode::Invalid,
                format!("more than {MAX_ENTRIES} entries; sync a subdirectory"),
            ));
        }
        let field = e.encode();
        self.batch_bytes += field.len() + 4;
        self.batch.push(field);
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        write_frame(self.out, Kind::List, &encode_fields(&self.batch))?;
        self.batch.clear();
        self.batch_bytes = 0;
        Ok(())
    }
}
