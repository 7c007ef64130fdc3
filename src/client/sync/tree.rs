//! The state of one side of a sync, as a map from relative path (`a/b/c`) to
//! [`Node`]: the local side from a walk of LOCAL_DIR ([`scan_local`]), the remote
//! side from a manifest ([`from_manifest`]). Excluded paths are left out of both.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::filter::Filter;
use super::localfs::{self, LocalRoot};
use crate::protocol::EntryKind;
use crate::protocol::sync::ManifestEntry;
// the deepest tree a sync walks: as deep as the server keeps one (and its manifest walks)
use crate::sandbox::MAX_DEPTH;
use crate::sys::{self, FileStat, errno, oflag};

/// Most entries one side may have (as the server's manifest).
pub const MAX_ENTRIES: usize = 1_000_000;

/// One file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// File or directory (links and others are never synced and not kept here).
    pub kind: EntryKind,
    /// Size (files).
    pub size: u64,
    /// Modification time, nanoseconds.
    pub mtime_ns: i64,
    /// Permission bits.
    pub mode: u32,
    /// Content hash, when known.
    pub sha: Option<[u8; 32]>,
    /// Local files: what tells whether the file changed since it was hashed.
    pub stat: Option<StatKey>,
}

/// The parts of a local stat that change whenever the file does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatKey {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size.
    pub size: u64,
    /// Modification time, ns.
    pub mtime_ns: i64,
    /// Change time, ns.
    pub ctime_ns: i64,
}

impl StatKey {
    /// From a stat.
    pub fn of(st: &FileStat) -> StatKey {
        StatKey {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
        }
    }
}

impl Node {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// A side's paths.
pub type Tree = BTreeMap<String, Node>;

/// What a local walk found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files and directories.
    pub tree: Tree,
    /// Things left alone, for the user (symlinks, odd names).
    pub notes: Vec<String>,
}

/// Walks LOCAL_DIR without following any symlink (links are skipped with a note),
/// leaving out excluded paths, names that cannot travel, and local partial
/// downloads. `skip_dir` is a directory (device, inode) never to enter: the state
/// directory holding the index, should it lie inside the tree.
pub fn scan_local(
    root: &LocalRoot,
    filter: &Filter,
    skip_dir: Option<(u64, u64)>,
) -> io::Result<Scan> {
    let mut scan = Scan::default();
    walk(root.fd(), "", 0, filter, skip_dir, &mut scan)?;
    Ok(scan)
}

fn walk(
    dir: BorrowedFd<'_>,
    prefix: &str,
    depth: usize,
    filter: &Filter,
    skip_dir: Option<(u64, u64)>,
    scan: &mut Scan,
) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{prefix}: directory tree deeper than {MAX_DEPTH} levels"
        )));
    }
    let mut names = Vec::new();
    for n in sys::read_dir(dir)? {
        match n.into_string() {
            Ok(s) => names.push(s),
            Err(raw) => scan.notes.push(format!(
                "skipped {}: the name is not UTF-8",
                crate::log::escape(&join(prefix, &raw.to_string_lossy()))
            )),
        }
    }
    names.sort_unstable();
    for name in names {
        if name.starts_with('.') && name.ends_with(localfs::PARTIAL_SUFFIX) {
            continue; // a download in progress, ours
        }
        let path = join(prefix, &name);
        if let Err(why) = localfs::check_name(&name) {
            scan.notes
                .push(format!("skipped {}: {why}", crate::log::escape(&path)));
            continue;
        }
        let cname = sys::cstring(name.as_bytes())?;
        let st = match sys::lstatat(dir, &cname) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let kind = if st.is_dir() {
            EntryKind::Dir
        } else if st.is_file() {
            EntryKind::File
        } else {
            let what = if st.is_symlink() {
                "a symlink (not followed)"
            } else {
                "not a regular file"
            };
            scan.notes
                .push(format!("skipped {}: {what}", crate::log::escape(&path)));
            continue;
        };
        if filter.excluded(&path, kind == EntryKind::Dir) {
            continue;
        }
        if kind == EntryKind::Dir && skip_dir == Some((st.dev, st.ino)) {
            continue;
        }
        if scan.tree.len() >= MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "more than {MAX_ENTRIES} entries; sync a subdirectory"
            )));
        }
        scan.tree.insert(
            path.clone(),
            Node {
                kind,
                size: if kind == EntryKind::File { st.size } else { 0 },
                mtime_ns: st.mtime_ns,
                mode: st.mode & 0o7777,
                sha: None,
                stat: (kind == EntryKind::File).then(|| StatKey::of(&st)),
            },
        );
        if kind == EntryKind::Dir {
            let sub = match sys::openat(
                dir,
                &cname,
                oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
                0,
            ) {
                Ok(d) => d,
                Err(e) if matches!(e.raw_os_error(), Some(errno::ELOOP) | Some(errno::ENOTDIR)) => {
                    scan.tree.remove(&path);
                    continue;
                }
                Err(e) => return Err(e),
            };
            walk(sub.as_fd(), &path, depth + 1, filter, skip_dir, scan)?;
        }
    }
    Ok(())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The remote side from a manifest: names are checked (each must be a plain name,
/// and every parent must be a directory listed before), links and other entries are
/// noted and left out, excluded paths dropped.
pub fn from_manifest(
    entries: Vec<ManifestEntry>,
    filter: &Filter,
    notes: &mut Vec<String>,
) -> Tree {
    let mut tree = Tree::new();
    for e in entries {
        if let Err(why) = localfs::check_path(&e.path) {
            notes.push(format!(
                "ignored a name from the server ({why}): {}",
                crate::log::escape(&e.path)
            ));
            continue;
        }
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && !tree.get(parent).is_some_and(Node::is_dir)
        {
            // below an excluded, refused or missing directory
            continue;
        }
        match e.kind {
            EntryKind::Dir | EntryKind::File => {}
            _ => {
                notes.push(format!(
                    "left alone on the server: {} ({})",
                    crate::log::escape(&e.path),
                    if e.kind == EntryKind::Link {
                        "a symlink"
                    } else {
                        "not a regular file"
                    }
                ));
                continue;
            }
        }
        if filter.excluded(&e.path, e.kind == EntryKind::Dir) {
            continue;
        }
        tree.insert(
            e.path,
            Node {
                kind: e.kind,
                size: e.size,
                mtime_ns: e.mtime_ns,
                mode: e.mode,
                sha: e.sha,
                stat: None,
            },
        );
    }
    tree
}
