//! Per-user storage: every path from the network is resolved and opened *beneath* the
//! user's root directory in one step, never checked first and opened later.
//!
//! A user path is first normalised lexically against the session's current
//! directory ([`UserPath`]): `/` is the user's root, `..` past the root is refused
//! (only `cd` clamps it), and names under the reserved prefix [`RESERVED_PREFIX`]
//! are refused. The kernel then resolves what is left, symlinks included, with
//! `openat2(RESOLVE_BENEATH)` from a descriptor of the root, so a symlink that
//! leads outside fails with `EXDEV` at the moment of use; where openat2 is missing,
//! [`walk_beneath`] does the same component by component with `O_NOFOLLOW`.
//! Final components are then acted on with the `*at` calls relative to an opened
//! parent directory, which never follow a final symlink for unlink, mkdir or rename.
//!
//! This module knows nothing of the protocol; the server maps [`Error`] to replies,
//! and a refused path is reported exactly like a missing one.

use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::entry::{Entry, EntryKind};
use crate::sys::{self, errno, oflag};

/// Names starting with this are the server's own (partial uploads): users can neither
/// see nor name them.
pub const RESERVED_PREFIX: &str = ".fos-part-";
/// Names starting with this are the server's synchronization state (hash cache, lock):
/// reserved like [`RESERVED_PREFIX`].
pub const SYNC_PREFIX: &str = ".fos-sync-";
/// Longest single name, in bytes.
pub const MAX_NAME: usize = 255;
/// Longest path argument, in bytes.
pub const MAX_PATH: usize = crate::entry::MAX_PATH;
/// Deepest directory a user may create or move a tree to, counted in directories below
/// the user's root (`mkdir` and `mv` refuse deeper ones; `rm -r` and the usage count
/// still handle deeper trees that arrived some other way).
pub const MAX_DEPTH: usize = 128;
/// The directory of the storage that holds one usage lock per user (an empty file
/// named after the user), which uploads `flock` while they check the quota and reserve
/// their size. A user name never starts with a dot, so no user's root is named so.
const LOCK_DIR: &CStr = c".fos-locks";
/// The usage lock of a sandbox opened without its storage ([`Sandbox::open`]): a
/// reserved file in its root.
const USAGE_LOCK: &CStr = c".fos-part-usage.lock";
/// Symlinks followed in one resolution by the fallback walker (as Linux's 40).
const MAX_LINKS: usize = 40;

/// Errors of the sandbox layer.
#[derive(Debug)]
pub enum Error {
    /// No such file or directory.
    NotFound,
    /// The path would leave the user's root (`..`, a symlink out, a loop). Reported to
    /// the client exactly like [`Error::NotFound`].
    Escapes,
    /// The path names a reserved (server-internal) file. Reported like `NotFound`.
    Reserved,
    /// The argument cannot be a name at all.
    InvalidName(&'static str),
    /// The target exists.
    Exists,
    /// The directory is not empty.
    NotEmpty,
    /// A directory was needed.
    NotADirectory,
    /// A file was needed.
    IsADirectory,
    /// Not a regular file or directory (FIFO, device, socket).
    NotRegular,
    /// The operation makes no sense on the user's root (remove it, rename it).
    IsRoot,
    /// A directory would end up more than [`MAX_DEPTH`] levels below the root.
    TooDeep,
    /// Any other I/O failure.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => write!(f, "no such file or directory"),
            Error::Escapes => write!(f, "path leaves the user's root"),
            Error::Reserved => write!(f, "reserved name"),
            Error::InvalidName(why) => write!(f, "invalid name: {why}"),
            Error::Exists => write!(f, "already exists"),
            Error::NotEmpty => write!(f, "directory not empty"),
            Error::NotADirectory => write!(f, "not a directory"),
            Error::IsADirectory => write!(f, "is a directory"),
            Error::NotRegular => write!(f, "not a regular file"),
            Error::IsRoot => write!(f, "not allowed on the root directory"),
            Error::TooDeep => write!(f, "directory tree deeper than {MAX_DEPTH} levels"),
            Error::Io(e) => write!(f, "{e}"),
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
        match e.raw_os_error() {
            Some(errno::EXDEV) | Some(errno::ELOOP) => Error::Escapes,
            Some(errno::ENOTDIR) => Error::NotADirectory,
            Some(errno::EISDIR) => Error::IsADirectory,
            Some(errno::ENOTEMPTY) => Error::NotEmpty,
            Some(errno::EEXIST) => Error::Exists,
            Some(errno::ENAMETOOLONG) => Error::InvalidName("name too long"),
            _ if e.kind() == io::ErrorKind::NotFound => Error::NotFound,
            _ => Error::Io(e),
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// A normalised path relative to a user's root: a list of plain names (no `.`, `..`,
/// empty or reserved names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPath(Vec<String>);

impl UserPath {
    /// The user's root.
    pub fn root() -> UserPath {
        UserPath(Vec::new())
    }

    /// Resolves `arg` against `cwd`: a leading `/` means the user's root. `..` past the
    /// root is [`Error::Escapes`] unless `clamp` is set (for `cd`, where it stays at the
    /// root like `/..` does).
    pub fn resolve(cwd: &UserPath, arg: &str, clamp: bool) -> Result<UserPath> {
        if arg.len() > MAX_PATH {
            return Err(Error::InvalidName("path too long"));
        }
        if arg.contains('\0') {
            return Err(Error::InvalidName("NUL byte in path"));
        }
        let mut parts = if arg.starts_with('/') {
            Vec::new()
        } else {
            cwd.0.clone()
        };
        for comp in arg.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() && !clamp {
                        return Err(Error::Escapes);
                    }
                }
                name => {
                    check_name(name)?;
                    parts.push(name.to_string());
                }
            }
        }
        Ok(UserPath(parts))
    }

    /// Whether this is the user's root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last name, if not the root.
    pub fn file_name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// The parent path (the root's parent is the root).
    pub fn parent(&self) -> UserPath {
        let mut p = self.0.clone();
        p.pop();
        UserPath(p)
    }

    /// This path with one more name (which must be a valid name).
    pub fn join(&self, name: &str) -> Result<UserPath> {
        check_name(name)?;
        let mut p = self.0.clone();
        p.push(name.to_string());
        Ok(UserPath(p))
    }

    /// The names, root first.
    pub fn components(&self) -> &[String] {
        &self.0
    }

    fn relative(&self) -> Result<CString> {
        if self.0.is_empty() {
            return Ok(CString::from(c"."));
        }
        Ok(sys::cstring(self.0.join("/").as_bytes())?)
    }
}

impl fmt::Display for UserPath {
    /// Shown to the user as an absolute path inside their root: `/`, `/a/b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for c in &self.0 {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::InvalidName("name longer than 255 bytes"));
    }
    if is_reserved(name) {
        return Err(Error::Reserved);
    }
    Ok(())
}

/// Whether `name` is one of the server's own (never listed, never nameable).
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX) || name.starts_with(SYNC_PREFIX)
}

/// One user's root directory, held open. All operations take [`UserPath`]s.
#[derive(Debug)]
pub struct Sandbox {
    root: OwnedFd,
    /// The storage directory and the user's name in it, for the usage lock.
    storage: Option<(OwnedFd, CString)>,
    /// Use the portable walker even where openat2 exists (tests compare the two).
    force_walk: bool,
    /// Who writes the partials this sandbox makes or resumes, recorded in their
    /// sidecars (see [`Sandbox::with_holder`]).
    holder: String,
}

impl Sandbox {
    /// Opens (creating on first use) `<storage>/<user>`. The user name must already be
    /// validated (see `auth::valid_username`): it is used as one path component.
    pub fn open_user(storage: &Path, user: &str) -> Result<Sandbox> {
        debug_assert!(crate::auth::valid_username(user));
        std::fs::create_dir_all(storage)?;
        let dir = storage.join(user);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Io(e)),
        }
        let mut sandbox = Sandbox::open(&dir)?;
        let storage = File::open(storage)?;
        sandbox.storage = Some((OwnedFd::from(storage), sys::cstring(user.as_bytes())?));
        Ok(sandbox)
    }

    /// Opens an existing directory as a sandbox root.
    pub fn open(dir: &Path) -> Result<Sandbox> {
        Ok(Sandbox {
            root: sys::open_dir(dir)?,
            storage: None,
            force_walk: false,
            holder: "-".into(),
        })
    }

    /// Names the writer of this sandbox's resumable uploads (a server and its process):
    /// each partial's sidecar records it while an upload holds the partial, so that
    /// a resume through another server sharing the storage can say who holds it.
    pub fn with_holder(mut self, holder: &str) -> Sandbox {
        self.holder = holder.to_string();
        self
    }

    #[cfg(test)]
    /// Makes every lookup use the portable component walker instead of openat2.
    pub fn force_portable_walk(mut self, on: bool) -> Sandbox {
        self.force_walk = on;
        self
    }

    fn open_beneath(&self, path: &UserPath, flags: i32, mode: u32) -> Result<OwnedFd> {
        if !self.force_walk {
            let rel = path.relative()?;
            match sys::openat2_beneath(self.root.as_fd(), &rel, flags, mode) {
                Err(e) if e.raw_os_error() == Some(errno::ENOSYS) => {}
                other => return Ok(other?),
            }
        }
        Ok(walk_beneath(
            self.root.as_fd(),
            path.components(),
            flags,
            mode,
        )?)
    }

    /// Opens the parent directory of `path`, returning it and the final name.
    fn parent(&self, path: &UserPath) -> Result<(OwnedFd, CString)> {
        let name = path.file_name().ok_or(Error::IsRoot)?;
        let dir = self.open_beneath(&path.parent(), oflag::RDONLY | oflag::DIRECTORY, 0)?;
        Ok((dir, sys::cstring(name.as_bytes())?))
    }

    /// Checks that `path` is a directory beneath the root (for `cd`).
    pub fn check_dir(&self, path: &UserPath) -> Result<()> {
        self.open_beneath(path, oflag::RDONLY | oflag::DIRECTORY, 0)
            .map(drop)
    }

    /// Opens a regular file for reading.
    pub fn open_file(&self, path: &UserPath) -> Result<(File, sys::Stat)> {
        // O_NONBLOCK: opening a FIFO an admin left there must not hang the session
        let fd = self.open_beneath(path, oflag::RDONLY | oflag::NONBLOCK, 0)?;
        let st = sys::fstatat(fd.as_fd(), c"", true)?;
        if st.is_dir() {
            return Err(Error::IsADirectory);
        }
        if !st.is_file() {
            return Err(Error::NotRegular);
        }
        sys::set_blocking(fd.as_fd())?;
        Ok((File::from(fd), st))
    }

    /// Describes one path (a final symlink is described, not followed).
    pub fn stat(&self, path: &UserPath) -> Result<Entry> {
        let st = match path.file_name() {
            None => sys::fstatat(self.root.as_fd(), c"", true)?,
            Some(_) => {
                let (dir, name) = self.parent(path)?;
                sys::fstatat(dir.as_fd(), &name, false)?
            }
        };
        Ok(entry(path.file_name().unwrap_or("/").to_string(), &st))
    }

    /// Lists a directory sorted by name, without reserved names. A file lists as itself.
    pub fn list(&self, path: &UserPath) -> Result<Vec<Entry>> {
        let dir = match self.open_beneath(path, oflag::RDONLY | oflag::DIRECTORY, 0) {
            Ok(dir) => dir,
            Err(Error::NotADirectory) => return Ok(vec![self.stat(path)?]),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in sys::read_dir(dir.as_fd())? {
            let Some(name) = name.to_str() else {
                continue; // not representable on the wire; never produced through fos
            };
            if is_reserved(name) {
                continue;
            }
            let Ok(cname) = sys::cstring(name.as_bytes()) else {
                continue;
            };
            match sys::fstatat(dir.as_fd(), &cname, false) {
                Ok(st) => out.push(entry(name.to_string(), &st)),
                // removed between readdir and stat: it is simply gone
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Makes a directory.
    pub fn mkdir(&self, path: &UserPath) -> Result<()> {
        if path.is_root() {
            return Err(Error::Exists);
        }
        let (dir, name) = self.parent(path)?;
        // the real depth, not the path's: a symlink inside may lead anywhere deep
        if self.depth(dir.as_fd())? + 1 > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        Ok(sys::mkdirat(dir.as_fd(), &name, 0o755)?)
    }

    /// How many directories `dir` (open, beneath the root) is below the root, found by
    /// climbing `..`; [`Error::TooDeep`] past [`MAX_DEPTH`] (or if the climb never meets
    /// the root, which fails closed).
    fn depth(&self, dir: BorrowedFd<'_>) -> Result<usize> {
        let root = file_id(self.root.as_fd())?;
        let mut cur = dir.try_clone_to_owned()?;
        for depth in 0..=MAX_DEPTH {
            if file_id(cur.as_fd())? == root {
                return Ok(depth);
            }
            cur = sys::openat(cur.as_fd(), c"..", oflag::RDONLY | oflag::DIRECTORY, 0)?;
        }
        Err(Error::TooDeep)
    }

    /// Sets the permission bits and/or the modification time of `path` (a symlink is
    /// followed only as far as it stays beneath the root, as every lookup here);
    /// `mode` is passed the path's current mode and whether it is a directory, and
    /// gives the mode to set (the caller's policy). Returns the entry as it is then.
    pub fn set_attrs(
        &self,
        path: &UserPath,
        mode: Option<&dyn Fn(u32, bool) -> u32>,
        mtime: Option<i64>,
    ) -> Result<Entry> {
        use std::os::unix::fs::PermissionsExt;
        // O_NONBLOCK: a FIFO here must not hang the session
        let fd = self.open_beneath(path, oflag::RDONLY | oflag::NONBLOCK, 0)?;
        let st = sys::fstatat(fd.as_fd(), c"", true)?;
        if !st.is_file() && !st.is_dir() {
            return Err(Error::NotRegular);
        }
        let file = File::from(fd);
        if let Some(mode) = mode {
            let bits = mode(st.mode & 0o7777, st.is_dir());
            file.set_permissions(std::fs::Permissions::from_mode(bits))?;
        }
        if let Some(t) = mtime {
            let when = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_secs(t.max(0) as u64))
                .unwrap_or(std::time::UNIX_EPOCH);
            file.set_modified(when)?;
        }
        let st = sys::fstatat(file.as_fd(), c"", true)?;
        Ok(entry(path.file_name().unwrap_or("/").to_string(), &st))
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, path: &UserPath) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        let st = sys::fstatat(dir.as_fd(), &name, false)?;
        if !st.is_dir() {
            return Err(Error::NotADirectory);
        }
        Ok(sys::unlinkat(dir.as_fd(), &name, true)?)
    }

    /// Removes a file or symlink (never its target); a directory is refused.
    pub fn remove_file(&self, path: &UserPath) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        let st = sys::fstatat(dir.as_fd(), &name, false)?;
        if st.is_dir() {
            return Err(Error::IsADirectory);
        }
        Ok(sys::unlinkat(dir.as_fd(), &name, false)?)
    }

    /// Removes a file, or a directory and everything below it. Symlinks are removed,
    /// never followed. Returns how many entries were removed.
    pub fn remove_tree(&self, path: &UserPath) -> Result<u64> {
        let (dir, name) = self.parent(path)?;
        let st = sys::fstatat(dir.as_fd(), &name, false)?;
        if !st.is_dir() {
            sys::unlinkat(dir.as_fd(), &name, false)?;
            return Ok(1);
        }
        // O_NOFOLLOW: if the entry was swapped for a symlink since the stat, fail rather
        // than descend into wherever it points
        let top = sys::openat(
            dir.as_fd(),
            &name,
            oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
            0,
        )?;
        let mut removed = 0;
        walk_tree(top, &mut |visit| {
            match visit {
                Visit::Entry { dir, name, .. } => sys::unlinkat(dir, name, false)?,
                Visit::Left { dir, name } => sys::unlinkat(dir, name, true)?,
                Visit::Enter { .. } => return Ok(()),
            }
            removed += 1;
            Ok(())
        })?;
        sys::unlinkat(dir.as_fd(), &name, true)?;
        Ok(removed + 1)
    }

    /// Bytes the user's storage takes, at any depth: every regular file, partial
    /// uploads and their sidecars included, with each partial counted at no less than
    /// the size its upload reserved (see [`Sandbox::create_reserved`]). Symlinks are not
    /// followed. Counted under [`Sandbox::lock_usage`], the figure includes every
    /// reservation made by then, by this server or another on the same storage.
    pub fn usage(&self) -> Result<u64> {
        let mut total = 0u64;
        walk_tree(self.root.try_clone()?, &mut |visit| {
            if let Visit::Entry {
                dir, name, stat, ..
            } = visit
                && stat.is_file()
                // the server's sync state is not the user's data
                && !name.to_bytes().starts_with(SYNC_PREFIX.as_bytes())
            {
                total = total
                    .saturating_add(stat.size)
                    .saturating_add(unwritten_reservation(dir, name));
            }
            Ok(())
        })?;
        Ok(total)
    }

    /// Takes the user's usage lock, blocking until it is free: an exclusive `flock` on
    /// `.fos-locks/USER` in the storage directory (made on first use), held until the
    /// returned file is dropped. Servers sharing the storage take the same lock, so a
    /// quota check and the reservation that follows it are one step for all of them.
    pub fn lock_usage(&self) -> Result<File> {
        let create = oflag::RDWR | oflag::CREAT | oflag::NOFOLLOW;
        let fd = match &self.storage {
            Some((storage, user)) => {
                match sys::mkdirat(storage.as_fd(), LOCK_DIR, 0o700) {
                    Err(e) if e.raw_os_error() != Some(errno::EEXIST) => return Err(e.into()),
                    _ => {}
                }
                let dir = sys::openat(
                    storage.as_fd(),
                    LOCK_DIR,
                    oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
                    0,
                )?;
                sys::openat(dir.as_fd(), user, create, 0o600)?
            }
            None => sys::openat(self.root.as_fd(), USAGE_LOCK, create, 0o600)?,
        };
        let file = File::from(fd);
        file.lock()?;
        Ok(file)
    }

    /// Renames `from` to `to` atomically. If `to` is an existing directory, `from` moves
    /// into it under its own name. Never replaces a directory.
    pub fn rename(&self, from: &UserPath, to: &UserPath) -> Result<UserPath> {
        if from.is_root() {
            return Err(Error::IsRoot);
        }
        // `mv a a`, and `mv a /` for an `a` at the root: already there, nothing to do
        if to == from {
            self.stat(from)?;
            return Ok(to.clone());
        }
        let mut to = to.clone();
        if let Ok(e) = self.stat(&to)
            && e.kind == EntryKind::Dir
        {
            to = to.join(from.file_name().ok_or(Error::IsRoot)?)?;
        }
        if to == *from {
            self.stat(from)?;
            return Ok(to);
        }
        if to.components().starts_with(from.components()) {
            return Err(Error::InvalidName("cannot move a directory into itself"));
        }
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(&to)?;
        // the source must exist (a missing source must not be reported as "exists")
        let source = sys::fstatat(from_dir.as_fd(), &from_name, false)?;
        match sys::fstatat(to_dir.as_fd(), &to_name, false) {
            Ok(st) if st.is_dir() => return Err(Error::Exists),
            _ => {}
        }
        if source.is_dir() {
            self.check_move_depth(from_dir.as_fd(), &from_name, to_dir.as_fd())?;
        }
        sys::renameat(
            from_dir.as_fd(),
            &from_name,
            to_dir.as_fd(),
            &to_name,
            false,
        )?;
        Ok(to)
    }

    /// Refuses to move the directory `name` in `from_dir` into `to_dir` if some
    /// directory of its tree would end up deeper than [`MAX_DEPTH`]. Moving a tree up
    /// or sideways never makes it deeper, so only a move down walks it.
    fn check_move_depth(
        &self,
        from_dir: BorrowedFd<'_>,
        name: &CStr,
        to_dir: BorrowedFd<'_>,
    ) -> Result<()> {
        let to_depth = self.depth(to_dir)?;
        if self.depth(from_dir).is_ok_and(|d| d >= to_depth) {
            return Ok(());
        }
        // the moved directory lands at to_depth + 1, its subdirectories below that
        let room = MAX_DEPTH.checked_sub(to_depth + 1).ok_or(Error::TooDeep)?;
        let top = sys::openat(
            from_dir,
            name,
            oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
            0,
        )?;
        walk_tree(top, &mut |visit| match visit {
            Visit::Enter { depth } if depth > room => Err(Error::TooDeep),
            _ => Ok(()),
        })
    }

    /// Creates a new, empty partial file for an upload to `target`, in the target's
    /// directory, under a random reserved name, exclusively, mode 0600, and locked
    /// (`flock`) for as long as it is open, so no second upload can pick it up. With
    /// `meta`, a reserved sidecar records the target and the source's size and mtime,
    /// which a later resume matches on.
    pub fn create_partial(&self, target: &UserPath, meta: Option<(u64, i64)>) -> Result<Partial> {
        self.create(
            target,
            meta.map_or(Sidecar::None, |(size, mtime)| Sidecar::Resume(size, mtime)),
        )
    }

    /// Creates a partial file as [`Sandbox::create_partial`] does, for an upload that
    /// is not resumable, with a sidecar that reserves `bytes` of the user's quota until
    /// the partial is committed or removed: [`Sandbox::usage`] counts the partial at no
    /// less than that. An upload of unknown size raises its reservation as data
    /// arrives ([`Partial::reservation`]).
    pub fn create_reserved(&self, target: &UserPath, bytes: u64) -> Result<Partial> {
        self.create(target, Sidecar::Reserve(bytes))
    }

    fn create(&self, target: &UserPath, sidecar: Sidecar) -> Result<Partial> {
        let (dir, name) = self.parent(target)?;
        match sys::fstatat(dir.as_fd(), &name, false) {
            Ok(st) if st.is_dir() => return Err(Error::IsADirectory),
            _ => {}
        }
        for _ in 0..8 {
            let base = format!("{RESERVED_PREFIX}{}", crate::random::hex(8));
            let cname = sys::cstring(base.as_bytes())?;
            let flags = oflag::RDWR | oflag::CREAT | oflag::EXCL | oflag::NOFOLLOW;
            let fd = match sys::openat(dir.as_fd(), &cname, flags, 0o600) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(errno::EEXIST) => continue,
                Err(e) => return Err(e.into()),
            };
            let file = File::from(fd);
            lock(&file)?;
            let mut partial = Partial {
                dir,
                name: cname,
                meta: None,
                resumable: false,
                reserve: None,
                sidecar: None,
                file,
                keep: false,
                done: false,
            };
            let text = match sidecar {
                Sidecar::None => return Ok(partial),
                Sidecar::Resume(size, mtime) => {
                    let target_name = target.file_name().unwrap_or_default();
                    let holder = holder_field(&self.holder);
                    format!("{META_MAGIC}\n{size}\n{mtime}\n{holder}\n{target_name}")
                }
                Sidecar::Reserve(bytes) => reserve_text(bytes),
            };
            let meta_name = sys::cstring(format!("{base}{META_SUFFIX}").as_bytes())?;
            let fd = sys::openat(
                partial.dir.as_fd(),
                &meta_name,
                oflag::RDWR | oflag::CREAT | oflag::EXCL | oflag::NOFOLLOW,
                0o600,
            )?;
            partial.meta = Some(meta_name);
            let mut meta = File::from(fd);
            io::Write::write_all(&mut meta, text.as_bytes())?;
            match sidecar {
                Sidecar::Resume(size, mtime) => {
                    partial.resumable = true;
                    partial.sidecar = Some((meta, holder_offset(size, mtime)));
                }
                _ => partial.reserve = Some(meta),
            }
            return Ok(partial);
        }
        Err(Error::Io(io::Error::other(
            "could not pick a unique partial name",
        )))
    }

    /// Finds an interrupted upload of `target` from a source of this `size` and
    /// `mtime`. Returns it opened for appending (its length is where the upload
    /// continues) with this sandbox recorded as its holder, or, if the only match is
    /// locked by a running upload (of this server or another on the same storage),
    /// who holds it ([`Held`]).
    pub fn resume_partial(&self, target: &UserPath, size: u64, mtime: i64) -> Result<Resume> {
        let mut in_use = None;
        let (dir, _) = self.parent(target)?;
        let want = target.file_name().unwrap_or_default();
        for name in sys::read_dir(dir.as_fd())? {
            let Some(name) = name.to_str() else { continue };
            let Some(base) = name
                .strip_prefix(RESERVED_PREFIX)
                .and_then(|n| n.strip_suffix(META_SUFFIX))
            else {
                continue;
            };
            let meta_name = sys::cstring(name.as_bytes())?;
            let Ok(fd) = sys::openat(dir.as_fd(), &meta_name, oflag::RDWR | oflag::NOFOLLOW, 0)
            else {
                continue;
            };
            let mut sidecar = File::from(fd);
            let mut text = String::new();
            if io::Read::read_to_string(&mut io::Read::take(&mut sidecar, 1024), &mut text).is_err()
            {
                continue;
            }
            let Some(meta) = ResumeMeta::parse(&text) else {
                continue;
            };
            if meta.size != size || meta.mtime != mtime || meta.target != want {
                continue;
            }
            let part_name = sys::cstring(format!("{RESERVED_PREFIX}{base}").as_bytes())?;
            let Ok(fd) = sys::openat(dir.as_fd(), &part_name, oflag::RDWR | oflag::NOFOLLOW, 0)
            else {
                continue;
            };
            let file = File::from(fd);
            let stat = file.metadata()?;
            if stat.len() > size {
                continue;
            }
            let marker = takeover_name(&part_name)?;
            // in use by a running upload: not ours to continue while it runs
            if lock(&file).is_err() {
                in_use = Some(Held {
                    id: FileId(stat.dev(), stat.ino()),
                    holder: meta.holder.map(str::to_string),
                    dir: dir.try_clone()?,
                    marker,
                });
                continue;
            }
            // ours now: a request to let go was meant for the upload before
            let _ = sys::unlinkat(dir.as_fd(), &marker, false);
            let holder_at = meta.holder.map(|_| holder_offset(size, mtime));
            let partial = Partial {
                dir: dir.try_clone()?,
                name: part_name,
                meta: Some(meta_name),
                resumable: true,
                reserve: None,
                sidecar: holder_at.map(|at| (sidecar, at)),
                file,
                keep: false,
                done: false,
            };
            partial.record_holder(&self.holder);
            return Ok(Resume::Found(partial));
        }
        Ok(in_use.map_or(Resume::Nothing, Resume::InUse))
    }
}

/// What synchronization needs beyond the file operations above: the root itself (for
/// the server's reserved state files), directories opened beneath it, and the parent
/// of a path, each resolved exactly as every other operation resolves its path.
impl Sandbox {
    /// The user's root directory, held open.
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens a directory beneath the root.
    pub fn open_dir(&self, path: &UserPath) -> Result<OwnedFd> {
        self.open_beneath(path, oflag::RDONLY | oflag::DIRECTORY, 0)
    }

    /// Opens the parent directory of `path`: it and the final name, to act on with
    /// the `*at` calls (which never follow a final symlink).
    pub fn open_parent(&self, path: &UserPath) -> Result<(OwnedFd, CString)> {
        self.parent(path)
    }
}

/// What [`Sandbox::resume_partial`] found.
#[derive(Debug)]
pub enum Resume {
    /// A partial to continue, locked for this upload.
    Found(Partial),
    /// A matching partial that a running upload holds.
    InUse(Held),
    /// Nothing to continue.
    Nothing,
}

/// A partial that a running upload holds (locked), as a resume found it.
#[derive(Debug)]
pub struct Held {
    id: FileId,
    holder: Option<String>,
    dir: OwnedFd,
    marker: CString,
}

impl Held {
    /// The partial's identity on this host.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Who holds it, as its sidecar records (`None` for a sidecar from before holders
    /// were recorded).
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// Asks the holding upload, whichever server on the storage runs it, to let go:
    /// creates the partial's reserved takeover marker, which a running upload looks for
    /// about once a second ([`TakeoverWatch`]) and which the next upload to take the
    /// partial removes.
    pub fn request_takeover(&self) -> Result<()> {
        let flags = oflag::RDWR | oflag::CREAT | oflag::NOFOLLOW;
        sys::openat(self.dir.as_fd(), &self.marker, flags, 0o600)?;
        Ok(())
    }
}

/// Tells a running upload whether a resume elsewhere asked for its partial (see
/// [`Held::request_takeover`]). Cheap enough to ask once a second: one `fstatat`.
#[derive(Debug)]
pub struct TakeoverWatch {
    dir: OwnedFd,
    marker: CString,
}

impl TakeoverWatch {
    /// Whether a takeover was requested.
    pub fn requested(&self) -> bool {
        sys::fstatat(self.dir.as_fd(), &self.marker, false).is_ok()
    }
}

/// The fields of a resumable partial's sidecar.
struct ResumeMeta<'a> {
    size: u64,
    mtime: i64,
    /// `None` in a first-version sidecar.
    holder: Option<&'a str>,
    target: &'a str,
}

impl<'a> ResumeMeta<'a> {
    /// Parses either version of the sidecar: `fos-partial 1` (size, mtime, name) or
    /// `fos-partial 2` (size, mtime, a fixed-width holder line, name). The name comes
    /// last because it may hold any byte but `/` and NUL, newlines included.
    fn parse(text: &'a str) -> Option<ResumeMeta<'a>> {
        let (magic, rest) = text.split_once('\n')?;
        let fields = if magic == META_MAGIC { 4 } else { 3 };
        if magic != META_MAGIC && magic != META_MAGIC_V1 {
            return None;
        }
        let mut parts = rest.splitn(fields, '\n');
        let size = parts.next()?.parse().ok()?;
        let mtime = parts.next()?.parse().ok()?;
        let holder = match fields {
            4 => Some(parts.next()?.trim_end()),
            _ => None,
        };
        Some(ResumeMeta {
            size,
            mtime,
            holder,
            target: parts.next()?,
        })
    }
}

/// Width of the holder line of a sidecar: fixed, so that a new holder is one write
/// in place.
const HOLDER_WIDTH: usize = 120;

/// `holder` as a sidecar's holder line: on one line, cut to [`HOLDER_WIDTH`] bytes (at
/// a character boundary) and padded with spaces to it.
fn holder_field(holder: &str) -> String {
    let mut line = crate::log::escape(holder);
    let mut end = line.len().min(HOLDER_WIDTH);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    format!("{line:<HOLDER_WIDTH$}")
}

/// Where the holder line of a resumable sidecar with this size and mtime starts.
fn holder_offset(size: u64, mtime: i64) -> u64 {
    format!("{META_MAGIC}\n{size}\n{mtime}\n").len() as u64
}

/// The takeover marker of the partial named `part`.
fn takeover_name(part: &CStr) -> io::Result<CString> {
    let mut name = part.to_bytes().to_vec();
    name.extend_from_slice(TAKEOVER_SUFFIX.as_bytes());
    sys::cstring(&name)
}

/// A file's identity on this host (device and inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(u64, u64);

/// First line of a resumable partial upload's sidecar (the second version records
/// its holder).
const META_MAGIC: &str = "fos-partial 2";
/// First line of a resumable partial's sidecar written before holders were recorded.
const META_MAGIC_V1: &str = "fos-partial 1";
/// First line of the sidecar of a partial that only reserves quota (not resumable).
const RESERVE_MAGIC: &str = "fos-reserve 1";

/// What a new partial's sidecar records.
#[derive(Debug, Clone, Copy)]
enum Sidecar {
    /// No sidecar.
    None,
    /// Resumable: the announced size and modification time (and the target's name).
    Resume(u64, i64),
    /// A quota reservation of this many bytes.
    Reserve(u64),
}

/// A reservation sidecar's text; always the same length, so that raising it is one
/// write in place.
fn reserve_text(bytes: u64) -> String {
    format!("{RESERVE_MAGIC}\n{bytes:020}\n")
}

/// For a sidecar `name` in `dir`, the bytes its partial has reserved but not yet
/// written (both sidecar kinds carry the size on their second line); 0 for any other
/// file, or a sidecar that cannot be read.
fn unwritten_reservation(dir: BorrowedFd<'_>, name: &CStr) -> u64 {
    let Some(base) = name
        .to_bytes()
        .strip_prefix(RESERVED_PREFIX.as_bytes())
        .and_then(|n| n.strip_suffix(META_SUFFIX.as_bytes()))
    else {
        return 0;
    };
    let reserved = (|| -> Option<u64> {
        let fd = sys::openat(dir, name, oflag::RDONLY | oflag::NOFOLLOW, 0).ok()?;
        let mut text = String::new();
        io::Read::read_to_string(&mut io::Read::take(File::from(fd), 1024), &mut text).ok()?;
        let mut lines = text.lines();
        let magic = lines.next()?;
        if magic != META_MAGIC && magic != META_MAGIC_V1 && magic != RESERVE_MAGIC {
            return None;
        }
        lines.next()?.parse().ok()
    })()
    .unwrap_or(0);
    let mut data = RESERVED_PREFIX.as_bytes().to_vec();
    data.extend_from_slice(base);
    // a sidecar whose partial is gone reserves nothing
    let written = sys::cstring(&data)
        .and_then(|d| sys::fstatat(dir, &d, false))
        .map_or(reserved, |st| st.size);
    reserved.saturating_sub(written)
}

/// The quota reservation of an upload of unknown size, in its partial's sidecar where
/// every server counting the user's usage sees it. Raise it only under
/// [`Sandbox::lock_usage`].
#[derive(Debug)]
pub struct Reservation(File);

impl Reservation {
    /// Records that the upload may take `bytes` in all.
    pub fn set(&self, bytes: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        Ok(self.0.write_all_at(reserve_text(bytes).as_bytes(), 0)?)
    }
}

/// `(device, inode)` of an open file or directory.
fn file_id(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let md = File::from(fd.try_clone_to_owned()?).metadata()?;
    Ok((md.dev(), md.ino()))
}

/// What [`walk_tree`] shows its visitor.
enum Visit<'a> {
    /// About to descend into a directory this many levels below the top (1: a child
    /// of the top); an error stops the walk.
    Enter { depth: usize },
    /// A non-directory entry of `dir` (symlinks are entries, never followed).
    Entry {
        dir: BorrowedFd<'a>,
        name: &'a CStr,
        stat: &'a sys::Stat,
    },
    /// Everything below the directory `name` of `dir` has been visited.
    Left { dir: BorrowedFd<'a>, name: &'a CStr },
}

/// Visits everything below the open directory `top`, depth first, at any depth, with
/// one directory open at a time: it climbs back with `..` and checks that it arrives
/// where it came from (a directory moved away mid-walk stops the walk with an error
/// rather than lead it elsewhere). Entries that vanish mid-walk are skipped.
fn walk_tree(top: OwnedFd, visit: &mut dyn FnMut(Visit<'_>) -> Result<()>) -> Result<()> {
    struct Level {
        id: (u64, u64),
        /// This directory's name in its parent.
        name: CString,
        /// Entries not yet visited.
        left: Vec<std::ffi::OsString>,
    }
    let mut stack = vec![Level {
        id: file_id(top.as_fd())?,
        name: CString::default(),
        left: sys::read_dir(top.as_fd())?,
    }];
    let mut cur = top;
    loop {
        let depth = stack.len();
        let level = stack
            .last_mut()
            .expect("the walk ends when the stack empties");
        let Some(next) = level.left.pop() else {
            let done = stack.pop().expect("just looked at it");
            let Some(parent) = stack.last() else {
                return Ok(());
            };
            let up = sys::openat(cur.as_fd(), c"..", oflag::RDONLY | oflag::DIRECTORY, 0)?;
            if file_id(up.as_fd())? != parent.id {
                return Err(Error::Io(io::Error::other(
                    "a directory moved while its tree was walked",
                )));
            }
            cur = up;
            visit(Visit::Left {
                dir: cur.as_fd(),
                name: &done.name,
            })?;
            continue;
        };
        let name = sys::cstring(std::os::unix::ffi::OsStrExt::as_bytes(next.as_os_str()))?;
        let stat = match sys::fstatat(cur.as_fd(), &name, false) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if !stat.is_dir() {
            visit(Visit::Entry {
                dir: cur.as_fd(),
                name: &name,
                stat: &stat,
            })?;
            continue;
        }
        visit(Visit::Enter { depth })?;
        let child = sys::openat(
            cur.as_fd(),
            &name,
            oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
            0,
        )?;
        stack.push(Level {
            id: file_id(child.as_fd())?,
            name,
            left: sys::read_dir(child.as_fd())?,
        });
        cur = child;
    }
}
/// Suffix of the sidecar next to a partial upload.
const META_SUFFIX: &str = ".meta";
/// Suffix of a partial's takeover marker (see [`Held::request_takeover`]).
const TAKEOVER_SUFFIX: &str = ".takeover";

/// Takes the advisory exclusive lock that marks a partial as in use.
fn lock(file: &File) -> Result<()> {
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => {
            Error::Io(io::Error::new(io::ErrorKind::WouldBlock, "partial in use"))
        }
        std::fs::TryLockError::Error(e) => Error::Io(e),
    })
}

/// Removes partial uploads (and their sidecars) under `storage` whose last write is
/// older than `max_age` and that no upload holds. Never follows symlinks. Returns how
/// many files were removed.
pub fn remove_stale_partials(storage: &Path, max_age: std::time::Duration) -> u64 {
    fn walk(dir: &Path, depth: usize, max_age: std::time::Duration, removed: &mut u64) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if md.is_dir() {
                if depth < MAX_DEPTH {
                    walk(&path, depth + 1, max_age, removed);
                }
                continue;
            }
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(RESERVED_PREFIX) || !md.is_file() {
                continue;
            }
            // the lock must stay one file: removed, a new one would not exclude the old
            if name.as_bytes() == USAGE_LOCK.to_bytes() {
                continue;
            }
            let old = md
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > max_age);
            if !old {
                continue;
            }
            let data = name
                .strip_suffix(META_SUFFIX)
                .or_else(|| name.strip_suffix(TAKEOVER_SUFFIX))
                .map_or(path.clone(), |base| dir.join(base));
            // a partial still locked belongs to a running upload, however old
            if let Ok(f) = File::open(&data)
                && f.try_lock().is_err()
            {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    walk(storage, 0, max_age, &mut removed);
    removed
}

fn entry(name: String, st: &sys::Stat) -> Entry {
    Entry {
        name,
        kind: EntryKind::of_mode(st.mode),
        size: st.size,
        mtime: st.mtime,
        mode: Some(st.mode & 0o7777),
    }
}

/// An upload in progress: a reserved, exclusive, locked file beside its target.
/// Dropped without [`Partial::commit`], it is removed (so nothing half-written stays
/// behind) unless [`Partial::keep`] marked it for a later resume.
#[derive(Debug)]
pub struct Partial {
    dir: OwnedFd,
    name: CString,
    meta: Option<CString>,
    /// The sidecar records a resumable upload.
    resumable: bool,
    /// The sidecar holds a quota reservation (open, to raise it).
    reserve: Option<File>,
    /// A resumable partial's sidecar (open) and where its holder line starts.
    sidecar: Option<(File, u64)>,
    file: File,
    keep: bool,
    done: bool,
}

impl Partial {
    /// The open file to write the content into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Bytes already in the partial (where a resumed upload continues).
    pub fn len(&self) -> Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// The file's identity, or `None` for a partial that cannot be resumed (no
    /// sidecar) and so is never looked for.
    pub fn resumable_id(&self) -> Option<FileId> {
        let stat = self.file.metadata().ok()?;
        self.resumable.then(|| FileId(stat.dev(), stat.ino()))
    }

    /// Watches for a resume elsewhere asking for this partial, for a resumable partial
    /// (see [`Held::request_takeover`]).
    pub fn takeover_watch(&self) -> Option<TakeoverWatch> {
        if !self.resumable {
            return None;
        }
        Some(TakeoverWatch {
            dir: self.dir.try_clone().ok()?,
            marker: takeover_name(&self.name).ok()?,
        })
    }

    /// Records `holder` in the sidecar (best effort: the holder is information for
    /// people and logs; the lock is what counts).
    fn record_holder(&self, holder: &str) {
        use std::os::unix::fs::FileExt;
        if let Some((sidecar, at)) = &self.sidecar {
            let _ = sidecar.write_all_at(holder_field(holder).as_bytes(), *at);
        }
    }

    /// Removes the takeover marker, if any (best effort).
    fn remove_marker(&self) {
        if let Ok(marker) = takeover_name(&self.name) {
            let _ = sys::unlinkat(self.dir.as_fd(), &marker, false);
        }
    }

    /// The quota reservation of a partial made by [`Sandbox::create_reserved`].
    pub fn reservation(&self) -> Result<Option<Reservation>> {
        Ok(self
            .reserve
            .as_ref()
            .map(File::try_clone)
            .transpose()?
            .map(Reservation))
    }

    /// Sets the permission bits the file will have once committed.
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        Ok(self
            .file
            .set_permissions(std::fs::Permissions::from_mode(mode))?)
    }

    /// Whether to keep the file for a resume if it is dropped uncommitted (only partials
    /// with a resume sidecar can be resumed; others are always removed).
    pub fn keep(&mut self, keep: bool) {
        self.keep = keep && self.resumable;
    }

    /// Moves the finished file into place under `target`'s name, atomically. With
    /// `fsync`, the data is flushed before the rename and the directory after it, so
    /// an acknowledged upload survives a crash. With `no_clobber`, an existing target
    /// is left alone and [`Error::Exists`] returned.
    pub fn commit(mut self, target: &UserPath, no_clobber: bool, fsync: bool) -> Result<()> {
        let name = sys::cstring(target.file_name().ok_or(Error::IsRoot)?.as_bytes())?;
        if fsync {
            self.file.sync_all()?;
        }
        sys::renameat(
            self.dir.as_fd(),
            &self.name,
            self.dir.as_fd(),
            &name,
            no_clobber,
        )?;
        self.done = true;
        if let Some(meta) = self.meta.take() {
            let _ = sys::unlinkat(self.dir.as_fd(), &meta, false);
        }
        if self.resumable {
            self.remove_marker();
        }
        if fsync {
            File::from(self.dir.try_clone()?).sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.keep {
            // kept for a resume: nobody holds it once this file closes
            self.record_holder("-");
            return;
        }
        if self.resumable {
            self.remove_marker();
        }
        // best effort: a failure here leaves reserved files that `ls` never shows and
        // the stale-partial sweep removes
        let _ = sys::unlinkat(self.dir.as_fd(), &self.name, false);
        if let Some(meta) = &self.meta {
            let _ = sys::unlinkat(self.dir.as_fd(), meta, false);
        }
    }
}

/// Opens `components` beneath `root` without openat2: one `openat(O_NOFOLLOW)` per name,
/// reading symlinks ourselves and resolving them with the same rules (absolute targets
/// and `..` past the root fail with `EXDEV`; more than 40 links, `ELOOP`).
pub fn walk_beneath(
    root: BorrowedFd<'_>,
    components: &[String],
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let exdev = || io::Error::from_raw_os_error(errno::EXDEV);
    let mut queue: std::collections::VecDeque<Vec<u8>> =
        components.iter().map(|c| c.as_bytes().to_vec()).collect();
    // directories opened so far, below the root
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(comp) = queue.pop_front() {
        match &comp[..] {
            b"" | b"." => continue,
            b".." => {
                stack.pop().ok_or_else(exdev)?;
                continue;
            }
            _ => {}
        }
        let cur = stack.last().map(|d| d.as_fd()).unwrap_or(root);
        let name = sys::cstring(&comp)?;
        let last = queue.is_empty();
        let want = if last {
            flags
        } else {
            oflag::RDONLY | oflag::DIRECTORY
        };
        match sys::openat(cur, &name, want | oflag::NOFOLLOW, mode) {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => stack.push(fd),
            Err(e) => {
                // O_NOFOLLOW met a symlink (ELOOP on Linux and macOS, EMLINK on FreeBSD),
                // or O_DIRECTORY|O_NOFOLLOW on a link (ENOTDIR on some systems)
                let st = match sys::fstatat(cur, &name, false) {
                    Ok(st) if st.is_symlink() => st,
                    _ => return Err(e),
                };
                debug_assert!(st.is_symlink());
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(errno::ELOOP));
                }
                let target = sys::readlinkat(cur, &name)?;
                if target.starts_with(b"/") {
                    return Err(exdev());
                }
                for part in target.split(|&b| b == b'/').rev() {
                    queue.push_front(part.to_vec());
                }
            }
        }
    }
    // every component was "." or ".." back to a directory: open that directory itself
    let cur = stack.last().map(|d| d.as_fd()).unwrap_or(root);
    sys::openat(cur, c".", flags, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn partials_resume_only_when_matching_and_free() {
        let (t, sb) = fixture();
        let target = UserPath::resolve(&UserPath::root(), "d/r.bin", false).unwrap();
        {
            let mut p = sb.create_partial(&target, Some((10, 77))).unwrap();
            io::Write::write_all(p.file(), b"abcd").unwrap();
            // in use: a second upload cannot take it, but learns which file holds it
            let id = p.resumable_id().expect("has a sidecar");
            assert!(matches!(
                sb.resume_partial(&target, 10, 77).unwrap(),
                Resume::InUse(held) if held.id() == id
            ));
            p.keep(true);
        }
        assert!(
            matches!(sb.resume_partial(&target, 11, 77).unwrap(), Resume::Nothing),
            "other size"
        );
        assert!(
            matches!(sb.resume_partial(&target, 10, 78).unwrap(), Resume::Nothing),
            "other mtime"
        );
        let other = UserPath::resolve(&UserPath::root(), "d/q.bin", false).unwrap();
        assert!(
            matches!(sb.resume_partial(&other, 10, 77).unwrap(), Resume::Nothing),
            "other target"
        );
        let Resume::Found(mut p) = sb.resume_partial(&target, 10, 77).unwrap() else {
            panic!("resumable")
        };
        assert_eq!(p.len().unwrap(), 4);
        io::Seek::seek(p.file(), io::SeekFrom::End(0)).unwrap();
        io::Write::write_all(p.file(), b"efghij").unwrap();
        p.commit(&target, false, false).unwrap();
        assert_eq!(
            std::fs::read(t.path().join("root/u/d/r.bin")).unwrap(),
            b"abcdefghij"
        );
        let left: Vec<_> = std::fs::read_dir(t.path().join("root/u/d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "f and r.bin only: {left:?}");
    }

    #[test]
    fn usage_counts_reservations_and_trees_of_any_depth() {
        let (t, sb) = fixture();
        // the fixture's files: "mine" in d/f
        assert_eq!(sb.usage().unwrap(), 4);
        let target = UserPath::resolve(&UserPath::root(), "d/s.bin", false).unwrap();
        let mut p = sb.create_reserved(&target, 1000).unwrap();
        io::Write::write_all(p.file(), &[1; 10]).unwrap();
        let sidecar = reserve_text(0).len() as u64;
        assert_eq!(
            sb.usage().unwrap(),
            4 + 1000 + sidecar,
            "at its reservation"
        );
        p.reservation().unwrap().unwrap().set(5000).unwrap();
        assert_eq!(sb.usage().unwrap(), 4 + 5000 + sidecar);
        p.commit(&target, false, false).unwrap();
        assert_eq!(
            sb.usage().unwrap(),
            4 + 10,
            "committed: its size, no sidecar"
        );
        // a resumable partial, kept after a cut, counts at its announced size
        let big = UserPath::resolve(&UserPath::root(), "big", false).unwrap();
        let mut p = sb.create_partial(&big, Some((3000, 1))).unwrap();
        p.keep(true);
        drop(p);
        let kept = sb.usage().unwrap() - 14;
        assert!((3000..3200).contains(&kept), "{kept}");
        // a tree deeper than the limit (made outside fos) counts, and rm -r removes it
        let mut deep = t.path().join("root/u/deep");
        for _ in 0..MAX_DEPTH + 50 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("f"), "1234567").unwrap();
        assert_eq!(sb.usage().unwrap(), 14 + kept + 7);
        let top = UserPath::resolve(&UserPath::root(), "deep", false).unwrap();
        assert_eq!(sb.remove_tree(&top).unwrap(), MAX_DEPTH as u64 + 50 + 2);
        assert!(!t.path().join("root/u/deep").exists());
    }

    #[test]
    fn no_directory_deeper_than_the_limit_even_through_a_symlink() {
        for walk in [false, true] {
            let (t, sb) = fixture();
            let sb = sb.force_portable_walk(walk);
            let root = UserPath::root();
            let at = |n: usize| vec!["a"; n].join("/");
            for n in 1..=MAX_DEPTH {
                sb.mkdir(&p(&root, &at(n)).unwrap()).unwrap();
            }
            assert!(matches!(
                sb.mkdir(&p(&root, &at(MAX_DEPTH + 1)).unwrap()),
                Err(Error::TooDeep)
            ));
            // a short path through a symlink to the bottom is just as deep
            symlink(at(MAX_DEPTH), t.path().join("root/u/short")).unwrap();
            assert!(matches!(
                sb.mkdir(&p(&root, "short/x").unwrap()),
                Err(Error::TooDeep)
            ));
            // moving a tree down is held to the same limit; moving it up is not
            sb.mkdir(&p(&root, "b").unwrap()).unwrap();
            sb.mkdir(&p(&root, "b/c").unwrap()).unwrap();
            let low = format!("{}/b", at(MAX_DEPTH - 1));
            assert!(matches!(
                sb.rename(&p(&root, "b").unwrap(), &p(&root, &low).unwrap()),
                Err(Error::TooDeep)
            ));
            let fits = format!("{}/b", at(MAX_DEPTH - 2));
            sb.rename(&p(&root, "b").unwrap(), &p(&root, &fits).unwrap())
                .unwrap();
            sb.rename(&p(&root, &fits).unwrap(), &p(&root, "b").unwrap())
                .unwrap();
        }
    }

    #[test]
    fn stale_partials_are_swept() {
        let (t, sb) = fixture();
        let target = UserPath::resolve(&UserPath::root(), "d/s.bin", false).unwrap();
        let mut p = sb.create_partial(&target, Some((1, 1))).unwrap();
        p.keep(true);
        drop(p);
        let root = t.path().join("root");
        assert_eq!(
            remove_stale_partials(&root, std::time::Duration::from_secs(3600)),
            0,
            "too young"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            remove_stale_partials(&root, std::time::Duration::from_millis(1)),
            2
        );
        let held = sb.create_partial(&target, Some((1, 1))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            remove_stale_partials(&root, std::time::Duration::from_millis(1)),
            0,
            "a held partial is never swept"
        );
        drop(held);
    }
    use std::os::unix::fs::symlink;

    fn p(cwd: &UserPath, arg: &str) -> Result<UserPath> {
        UserPath::resolve(cwd, arg, false)
    }

    #[test]
    fn lexical_resolution() {
        let root = UserPath::root();
        let cwd = p(&root, "a/b").unwrap();
        assert_eq!(p(&cwd, "c").unwrap().to_string(), "/a/b/c");
        assert_eq!(p(&cwd, "../c").unwrap().to_string(), "/a/c");
        assert_eq!(p(&cwd, "/x//y/./z/").unwrap().to_string(), "/x/y/z");
        assert_eq!(p(&cwd, "../..").unwrap().to_string(), "/");
        assert!(matches!(p(&cwd, "../../.."), Err(Error::Escapes)));
        assert!(matches!(p(&root, ".."), Err(Error::Escapes)));
        assert!(matches!(p(&root, "a/../../u2"), Err(Error::Escapes)));
        assert_eq!(
            UserPath::resolve(&root, "../../x", true)
                .unwrap()
                .to_string(),
            "/x"
        );
        assert!(matches!(p(&root, ".fos-part-x"), Err(Error::Reserved)));
        assert!(matches!(p(&root, "a\0b"), Err(Error::InvalidName(_))));
        assert!(matches!(
            p(&root, &"n".repeat(256)),
            Err(Error::InvalidName(_))
        ));
        assert!(matches!(
            p(&root, &"a/".repeat(2049)),
            Err(Error::InvalidName(_))
        ));
        assert_eq!(p(&root, "~").unwrap().to_string(), "/~");
    }

    /// A storage tree: `<t>/outside`, `<t>/root/u` (the sandbox), `<t>/root/u2`.
    fn fixture() -> (TempDir, Sandbox) {
        let t = TempDir::new();
        std::fs::write(t.path().join("outside"), "secret").unwrap();
        std::fs::create_dir_all(t.path().join("root/u/d")).unwrap();
        std::fs::create_dir_all(t.path().join("root/u2")).unwrap();
        std::fs::write(t.path().join("root/u2/f"), "other").unwrap();
        std::fs::write(t.path().join("root/u/d/f"), "mine").unwrap();
        let u = t.path().join("root/u");
        symlink("../../outside", u.join("up")).unwrap();
        symlink(t.path().join("outside"), u.join("abs")).unwrap();
        symlink("../u2", u.join("sib")).unwrap();
        symlink("d/f", u.join("inside")).unwrap();
        symlink("d", u.join("dlink")).unwrap();
        symlink("loop2", u.join("loop1")).unwrap();
        symlink("loop1", u.join("loop2")).unwrap();
        let sb = Sandbox::open(&u).unwrap();
        (t, sb)
    }

    fn both(check: impl Fn(&Sandbox)) {
        for walk in [false, true] {
            let (_t, sb) = fixture();
            check(&sb.force_portable_walk(walk));
        }
    }

    fn read(sb: &Sandbox, arg: &str) -> Result<String> {
        let path = UserPath::resolve(&UserPath::root(), arg, false)?;
        let (mut f, _) = sb.open_file(&path)?;
        let mut s = String::new();
        io::Read::read_to_string(&mut f, &mut s)?;
        Ok(s)
    }

    #[test]
    fn symlinks_inside_work_and_outside_are_refused() {
        both(|sb| {
            assert_eq!(read(sb, "inside").unwrap(), "mine");
            assert_eq!(read(sb, "dlink/f").unwrap(), "mine");
            assert_eq!(read(sb, "d/f").unwrap(), "mine");
            for bad in ["up", "abs", "sib/f", "loop1", "dlink/../../u2/f"] {
                assert!(
                    matches!(read(sb, bad), Err(Error::Escapes)),
                    "{bad}: {:?}",
                    read(sb, bad)
                );
            }
            assert!(matches!(read(sb, "missing"), Err(Error::NotFound)));
            assert!(matches!(read(sb, "d"), Err(Error::IsADirectory)));
        });
    }

    #[test]
    fn operations_stay_beneath() {
        both(|sb| {
            let root = UserPath::root();
            let path = |a: &str| UserPath::resolve(&root, a, false).unwrap();
            // mkdir through a symlinked directory lands inside; through an escaping one, refused
            sb.mkdir(&path("dlink/new")).unwrap();
            assert!(sb.check_dir(&path("d/new")).is_ok());
            assert!(matches!(sb.mkdir(&path("sib/new")), Err(Error::Escapes)));
            // removing a symlink removes the link, never its target
            sb.remove_file(&path("up")).unwrap();
            assert!(matches!(sb.stat(&path("up")), Err(Error::NotFound)));
            // listing hides reserved names
            let mut part = sb.create_partial(&path("d/up.txt"), None).unwrap();
            io::Write::write_all(part.file(), b"x").unwrap();
            let names: Vec<_> = sb
                .list(&path("d"))
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert_eq!(names, vec!["f", "new"]);
            part.commit(&path("d/up.txt"), false, false).unwrap();
            assert_eq!(read(sb, "d/up.txt").unwrap(), "x");
            // rmdir of a non-empty directory is refused
            assert!(matches!(sb.rmdir(&path("d")), Err(Error::NotEmpty)));
            // rm -r removes the tree, not what a link inside it points to
            assert!(sb.remove_tree(&path("dlink")).unwrap() == 1);
            assert!(sb.check_dir(&path("d")).is_ok());
            assert_eq!(sb.remove_tree(&path("d")).unwrap(), 4);
        });
    }

    #[test]
    fn dropped_partial_leaves_nothing() {
        let (t, sb) = fixture();
        let target = UserPath::resolve(&UserPath::root(), "d/t", false).unwrap();
        {
            let mut part = sb.create_partial(&target, None).unwrap();
            io::Write::write_all(part.file(), b"half").unwrap();
        }
        let names: Vec<_> = std::fs::read_dir(t.path().join("root/u/d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["f"]);
    }

    #[test]
    fn rename_rules() {
        both(|sb| {
            let root = UserPath::root();
            let path = |a: &str| UserPath::resolve(&root, a, false).unwrap();
            sb.mkdir(&path("e")).unwrap();
            // into an existing directory
            assert_eq!(
                sb.rename(&path("d/f"), &path("e")).unwrap().to_string(),
                "/e/f"
            );
            // a directory is never replaced
            sb.mkdir(&path("e/x")).unwrap();
            sb.mkdir(&path("x")).unwrap();
            assert!(matches!(
                sb.rename(&path("x"), &path("e")),
                Err(Error::Exists)
            ));
            assert!(matches!(
                sb.rename(&path("e"), &path("e/x")),
                Err(Error::InvalidName(_))
            ));
            assert!(matches!(
                sb.rename(&path("nope"), &path("z")),
                Err(Error::NotFound)
            ));
            // onto itself, or into the directory it is in: already there
            assert_eq!(sb.rename(&path("x"), &path("x")).unwrap().to_string(), "/x");
            assert_eq!(sb.rename(&path("x"), &path("/")).unwrap().to_string(), "/x");
            assert_eq!(
                sb.rename(&path("e/f"), &path("e")).unwrap().to_string(),
                "/e/f"
            );
            assert!(sb.stat(&path("x")).is_ok() && sb.stat(&path("e/f")).is_ok());
            assert!(matches!(
                sb.rename(&path("nope"), &path("/")),
                Err(Error::NotFound)
            ));
            assert!(matches!(
                sb.rename(&path("nope"), &path("nope")),
                Err(Error::NotFound)
            ));
        });
    }
}
