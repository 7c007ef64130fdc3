//! The local side's file access for sync. Every path beneath LOCAL_DIR is opened name
//! by name with `O_NOFOLLOW`, relative to its opened parent, so a symlink inside the
//! tree (or one swapped in while the sync runs) is never followed; names that came
//! from the server are checked to be plain names first ([`check_path`]). Nothing is
//! ever read or written outside LOCAL_DIR.
//!
//! Downloads land as every fos download does: in a partial file beside the target
//! (`.NAME.fos-partial`, mode 0600), renamed over it only when complete and verified.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::sys::{self, FileStat, errno, oflag};
use crate::transfer;

/// Suffix of a local partial download.
pub const PARTIAL_SUFFIX: &str = ".fos-partial";

/// Why a name from the server is refused, if it is.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("not a plain name");
    }
    if name.contains(['/', '\0']) {
        return Err("a slash or NUL in a name");
    }
    if name.len() > 255 {
        return Err("a name longer than 255 bytes");
    }
    if name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX) {
        return Err("the name of a partial download");
    }
    if crate::sandbox::is_reserved(name) {
        return Err("a reserved name");
    }
    Ok(())
}

/// Checks every name of a relative path (`a/b/c`) from the server.
pub fn check_path(rel: &str) -> Result<(), &'static str> {
    if rel.len() > crate::protocol::command::MAX_PATH {
        return Err("a path longer than 4096 bytes");
    }
    rel.split('/').try_for_each(check_name)
}

fn cstr(s: &str) -> io::Result<CString> {
    sys::cstring(s.as_bytes())
}

/// LOCAL_DIR, held open.
#[derive(Debug)]
pub struct LocalRoot {
    fd: OwnedFd,
}

fn timestamp(ns: i64) -> Option<std::time::SystemTime> {
    if ns >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_nanos(ns as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_nanos(ns.unsigned_abs()))
    }
}

impl LocalRoot {
    /// Opens an existing directory (following a symlink in the argument itself, as
    /// any command does with the path it is given).
    pub fn open(path: &Path) -> io::Result<LocalRoot> {
        Ok(LocalRoot {
            fd: sys::open_dir(path)?,
        })
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the directory `rel` (`""`: the root) name by name, never following a link.
    pub fn dir(&self, rel: &str) -> io::Result<OwnedFd> {
        let mut cur = self.fd.try_clone()?;
        for name in rel.split('/').filter(|n| !n.is_empty()) {
            cur = sys::openat(
                cur.as_fd(),
                &cstr(name)?,
                oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
                0,
            )?;
        }
        Ok(cur)
    }

    /// The parent directory of `rel`, opened, and the last name.
    pub fn parent(&self, rel: &str) -> io::Result<(OwnedFd, CString)> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        Ok((self.dir(dir)?, cstr(name)?))
    }

    /// Describes `rel` without following a final link.
    pub fn stat(&self, rel: &str) -> io::Result<FileStat> {
        let (dir, name) = self.parent(rel)?;
        sys::lstatat(dir.as_fd(), &name)
    }

    /// Opens the regular file `rel` for reading.
    pub fn open_read(&self, rel: &str) -> io::Result<(File, FileStat)> {
        let (dir, name) = self.parent(rel)?;
        open_regular(dir.as_fd(), &name)
    }

    /// The SHA-256 of the file `rel` and the stat it is valid for; `None` if it changed
    /// while it was read.
    pub fn hash(&self, rel: &str) -> io::Result<Option<([u8; 32], FileStat)>> {
        let (mut f, before) = self.open_read(rel)?;
        let mut ctx = transfer::sha();
        if transfer::hash_prefix(&mut f, before.size, &mut ctx).is_err() {
            return Ok(None);
        }
        let after = sys::lstatat(f.as_fd(), c"")?;
        Ok((after == before).then(|| (transfer::finish(ctx), after)))
    }

    /// Makes the directory `rel`; one that exists is fine.
    pub fn mkdir(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        match sys::mkdirat(dir.as_fd(), &name, 0o755) {
            Err(e) if e.raw_os_error() == Some(errno::EEXIST) => {
                if sys::lstatat(dir.as_fd(), &name)?.is_dir() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// Removes the file (or symlink) `rel`.
    pub fn remove_file(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        sys::unlinkat(dir.as_fd(), &name, false)
    }

    /// Removes the directory `rel` if it is empty.
    pub fn rmdir(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        sys::unlinkat(dir.as_fd(), &name, true)
    }

    /// Renames `from` to `to`, never replacing anything at `to`.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (fd, fname) = self.parent(from)?;
        let (td, tname) = self.parent(to)?;
        sys::renameat(fd.as_fd(), &fname, td.as_fd(), &tname, true)
    }

    /// A partial download for `rel`, beside it: continued if `resume` and one is
    /// there, else created empty.
    pub fn partial(&self, rel: &str, resume: bool) -> io::Result<LocalPartial> {
        let (dir, target) = self.parent(rel)?;
        let name = format!(".{}{PARTIAL_SUFFIX}", rel.rsplit('/').next().unwrap_or(rel));
        let name = cstr(&name)?;
        let mut flags = oflag::RDWR | oflag::CREAT | oflag::NOFOLLOW;
        if !resume {
            // a stale one from an earlier run is replaced, never written through
            match sys::unlinkat(dir.as_fd(), &name, false) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            flags |= oflag::EXCL;
        }
        let file = File::from(sys::openat(dir.as_fd(), &name, flags, 0o600)?);
        if !sys::lstatat(file.as_fd(), c"")?.is_file() {
            return Err(io::Error::from_raw_os_error(errno::EINVAL));
        }
        Ok(LocalPartial {
            dir,
            name,
            target,
            file,
            keep: false,
            done: false,
        })
    }

    /// Syncs the file system holding the root (one call for a whole batch).
    pub fn syncfs(&self) -> io::Result<()> {
        sys::syncfs(self.fd.as_fd())
    }
}

/// Opens a regular file relative to `dir` for reading, never following a link and
/// never blocking on a FIFO.
pub fn open_regular(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(File, FileStat)> {
    let fd = sys::openat(
        dir,
        name,
        oflag::RDONLY | oflag::NOFOLLOW | oflag::NONBLOCK,
        0,
    )?;
    let st = sys::lstatat(fd.as_fd(), c"")?;
    if !st.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    sys::set_blocking(fd.as_fd())?;
    Ok((File::from(fd), st))
}

/// A download in progress beside its target; removed if dropped uncommitted unless
/// `keep` is set (a large file cut mid-way, kept for the next run to continue).
#[derive(Debug)]
pub struct LocalPartial {
    dir: OwnedFd,
    name: CString,
    target: CString,
    file: File,
    /// Keep the file if dropped uncommitted.
    pub keep: bool,
    done: bool,
}

impl LocalPartial {
    /// The open file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Bytes already in it.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Sets the modification time (ns) and permission bits the file will have.
    pub fn finish(&mut self, mtime_ns: i64, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        if let Some(t) = timestamp(mtime_ns) {
            let _ = self.file.set_modified(t);
        }
        let _ = self
            .file
            .set_permissions(std::fs::Permissions::from_mode(mode & 0o777));
    }

    /// Renames the partial over its target (with `no_replace`, only if there is
    /// none). Returns the committed file's stat.
    pub fn commit(mut self, no_replace: bool) -> io::Result<FileStat> {
        sys::renameat(
            self.dir.as_fd(),
            &self.name,
            self.dir.as_fd(),
            &self.target,
            no_replace,
        )?;
        self.done = true;
        sys::lstatat(self.file.as_fd(), c"")
    }

    /// The target's current stat, if there is one (for a last check before commit).
    pub fn target_stat(&self) -> io::Result<Option<FileStat>> {
        match sys::lstatat(self.dir.as_fd(), &self.target) {
            Ok(st) => Ok(Some(st)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for LocalPartial {
    fn drop(&mut self) {
        if !self.done && !self.keep {
            let _ = sys::unlinkat(self.dir.as_fd(), &self.name, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn names_from_the_server_are_plain() {
        for ok in ["a", "a b", "é", "..x", ".hidden", "a.fos-partial"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\0",
            ".x.fos-partial",
            ".fos-part-1",
            ".fos-sync-x",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"n".repeat(256)).is_err());
        assert!(check_path("a/b/c").is_ok());
        assert!(check_path("a/../b").is_err());
        assert!(check_path("/a").is_err());
        assert!(check_path("a//b").is_err());
    }

    #[test]
    fn symlinks_inside_are_never_followed() {
        let t = TempDir::new();
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let lr = LocalRoot::open(&root).unwrap();
        assert!(lr.mkdir("link/x").is_err());
        assert!(lr.partial("link/f", false).is_err());
        assert!(lr.open_read("link").is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let mut p = lr.partial("d/f", false).unwrap();
        io::Write::write_all(p.file(), b"data").unwrap();
        p.finish(1_000_000_123, 0o640);
        let st = p.commit(true).unwrap();
        assert_eq!(st.mtime_ns, 1_000_000_123);
        assert_eq!(std::fs::read(root.join("d/f")).unwrap(), b"data");
        let names: Vec<_> = std::fs::read_dir(root.join("d")).unwrap().collect();
        assert_eq!(names.len(), 1, "no partial left");
        // a second commit onto an existing file with no_replace fails
        let p = lr.partial("d/f", false).unwrap();
        assert!(p.commit(true).is_err());
    }
}
