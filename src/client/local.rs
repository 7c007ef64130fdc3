//! The local side of a download: the directory it lands in, held open so that no path
//! can be swapped underneath, and the name the download takes there. The partial file
//! the content goes to until it is complete and verified is `partial`'s.
//!
//! Names that come from the server are checked to be one plain path component
//! ([`check_name`]) before they touch the disk. Below the directory the user chose,
//! every level of a `get -r` tree is made and opened relative to its parent without
//! following a symlink that is already there ([`LocalDir::subdir`]), and a file is
//! renamed into place by name within its directory, which replaces a symlink at that
//! name instead of writing through it. The partial file is created exclusively, mode
//! 0600, never through a symlink, under a name that always fits in 255 bytes.
//!
//! This module does not talk to the server; [`super::Remote::get`] does.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::Error;
use crate::sys::{self, errno, oflag};

/// A local I/O failure in the words of the rest of the messages (see
/// [`crate::ioerror::reason`]).
pub(super) fn local_reason(e: &io::Error) -> String {
    crate::ioerror::reason(e, crate::ioerror::Whose::Local)
}

/// Longest file name (bytes) on the local side, as on the server.
pub const MAX_NAME: usize = crate::sandbox::MAX_NAME;

/// What ends every partial download's name.
const PARTIAL_SUFFIX: &[u8] = b".fos-partial";

/// Checks that `name` (from the server) can be used as one local file name: not
/// empty, not `.` or `..`, no `/`, no NUL, at most [`MAX_NAME`] bytes. The error says
/// what is wrong with it.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("an empty name")
    } else if name == "." || name == ".." {
        Err("not a name of its own")
    } else if name.contains('/') {
        Err("a path, not a name")
    } else if name.contains('\0') {
        Err("a name with a NUL byte")
    } else if name.len() > MAX_NAME {
        Err("a name longer than 255 bytes")
    } else {
        Ok(())
    }
}

/// Why a level of a local tree cannot be used, when the reason is what was found
/// there (the entry is refused and the walk goes on), or `None` for other failures.
pub fn refusal(err: &io::Error) -> Option<&'static str> {
    match err.raw_os_error() {
        Some(errno::ELOOP) => Some("a symlink is in the way locally; not following it"),
        Some(errno::ENOTDIR | errno::EEXIST) => {
            Some("something other than a directory is in the way locally")
        }
        _ => None,
    }
}

/// The name of the partial download for the file `name`: `.NAME.fos-partial`, or for
/// a name too long for that, a prefix of it cut at a character boundary and the first
/// 16 hex digits of its SHA-256 (`.PREFIX~HASH.fos-partial`). The same name always
/// gives the same partial name, so `reget` finds it.
pub fn partial_name(name: &[u8]) -> Vec<u8> {
    if 1 + name.len() + PARTIAL_SUFFIX.len() <= MAX_NAME {
        return [b".", name, PARTIAL_SUFFIX].concat();
    }
    let sha = ring::digest::digest(&ring::digest::SHA256, name);
    let hash: String = sha.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut keep = MAX_NAME - 2 - hash.len() - PARTIAL_SUFFIX.len();
    // never end on half a UTF-8 character
    while keep > 0 && name[keep] & 0xc0 == 0x80 {
        keep -= 1;
    }
    [b".", &name[..keep], b"~", hash.as_bytes(), PARTIAL_SUFFIX].concat()
}

/// A local directory held open; what is made in it is made relative to it. Clones
/// share the one descriptor.
#[derive(Debug, Clone)]
pub struct LocalDir {
    fd: Arc<OwnedFd>,
    shown: PathBuf,
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(oflag::DIRECTORY)
        .open(path)?;
    Ok(OwnedFd::from(dir))
}

impl LocalDir {
    /// Opens the directory the user named (symlinks in the user's own path are followed:
    /// the user chose it), creating it and its parents if they are missing.
    pub fn create_all(path: &Path) -> Result<LocalDir, Error> {
        let shown = path.to_path_buf();
        let fail = |e: io::Error| Error::Local(format!("{}: {}", path.display(), local_reason(&e)));
        std::fs::create_dir_all(path).map_err(fail)?;
        Ok(LocalDir {
            fd: Arc::new(open_dir(path).map_err(fail)?),
            shown,
        })
    }

    /// Opens the existing directory the user named.
    pub fn open(path: &Path) -> Result<LocalDir, Error> {
        let fd = open_dir(path)
            .map_err(|e| Error::Local(format!("{}: {}", path.display(), local_reason(&e))))?;
        Ok(LocalDir {
            fd: Arc::new(fd),
            shown: path.to_path_buf(),
        })
    }

    /// Makes (if missing) and opens the directory `name` inside this one, without
    /// following a symlink at `name`: a link there is an `ELOOP` error (see
    /// [`refusal`]). `name` must have passed [`check_name`].
    pub fn subdir(&self, name: &str) -> io::Result<LocalDir> {
        let c = sys::cstring(name.as_bytes())?;
        match sys::mkdirat(self.fd.as_fd(), &c, 0o777) {
            Err(e) if e.raw_os_error() != Some(errno::EEXIST) => return Err(e),
            _ => {}
        }
        let fd = sys::openat(
            self.fd.as_fd(),
            &c,
            oflag::RDONLY | oflag::DIRECTORY | oflag::NOFOLLOW,
            0,
        )
        .map_err(|e| {
            // Linux says ENOTDIR for a symlink opened with O_DIRECTORY: tell them apart
            match sys::fstatat(self.fd.as_fd(), &c, false) {
                Ok(st) if st.is_symlink() => io::Error::from_raw_os_error(errno::ELOOP),
                _ => e,
            }
        })?;
        Ok(LocalDir {
            fd: Arc::new(fd),
            shown: self.shown_child(name),
        })
    }

    /// How `name` inside this directory is shown (`name`, not `./name`).
    pub fn shown_child(&self, name: &str) -> PathBuf {
        if self.shown == Path::new(".") {
            PathBuf::from(name)
        } else {
            self.shown.join(name)
        }
    }

    /// Sets this directory's modification time and, if given, its permission bits (a
    /// tree's directories after `get -r` filled them).
    pub fn set_attrs(&self, mtime: Option<i64>, mode: Option<u32>) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |e: io::Error| {
            Error::Local(format!(
                "local {}: {}",
                self.shown.display(),
                local_reason(&e)
            ))
        };
        let dir = File::from(self.fd.try_clone().map_err(fail)?);
        if let Some(mode) = mode {
            dir.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(fail)?;
        }
        if let Some(t) = mtime {
            dir.set_modified(UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
                .map_err(fail)?;
        }
        Ok(())
    }

    /// The file `name` in this directory, as a download target.
    pub fn target(&self, name: &str) -> Result<LocalTarget, Error> {
        Ok(LocalTarget {
            dir: Arc::clone(&self.fd),
            name: sys::cstring(name.as_bytes())
                .map_err(|_| Error::Local(format!("{name:?}: not a file name")))?,
            shown: self.shown_child(name),
        })
    }
}

/// Where a download lands: a name in a directory held open.
#[derive(Debug)]
pub struct LocalTarget {
    pub(super) dir: Arc<OwnedFd>,
    pub(super) name: CString,
    shown: PathBuf,
}

impl LocalTarget {
    /// The target for a path the user named: its directory is opened (following
    /// symlinks in the user's own path), the last component is the file name.
    pub fn open(path: &Path) -> Result<LocalTarget, Error> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::Local(format!("{}: not a file name", path.display())))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = open_dir(parent)
            .map_err(|e| Error::Local(format!("{}: {}", parent.display(), local_reason(&e))))?;
        Ok(LocalTarget {
            dir: Arc::new(dir),
            name: sys::cstring(name.as_bytes())
                .map_err(|_| Error::Local(format!("{}: not a file name", path.display())))?,
            shown: path.to_path_buf(),
        })
    }

    /// The path to show for this target.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// What is at the target's name now (a symlink is not followed).
    fn stat(&self) -> Option<sys::Stat> {
        sys::fstatat(self.dir.as_fd(), &self.name, false).ok()
    }

    /// Whether something (anything, a symlink included) has the target's name.
    pub fn exists(&self) -> bool {
        self.stat().is_some()
    }

    /// The permission bits of the regular file at the target's name, if there is one
    /// (a download never gets wider ones than the file it replaces).
    pub fn file_mode(&self) -> Option<u32> {
        self.stat().filter(|s| s.is_file()).map(|s| s.mode & 0o7777)
    }

    /// Whether the target's name is a directory (a symlink is not followed).
    pub fn is_dir(&self) -> bool {
        self.stat().is_some_and(|s| s.is_dir())
    }

    /// Whether something other than a regular file has the target's name (a symlink,
    /// a FIFO, a device; a symlink is not followed): a download inside a tree never
    /// replaces such a thing, nor writes through it.
    pub fn is_special(&self) -> bool {
        self.stat().is_some_and(|s| !s.is_file() && !s.is_dir())
    }

    /// The name of the partial download beside the target (see [`partial_name`]).
    pub(super) fn partial_cname(&self) -> CString {
        sys::cstring(&partial_name(self.name.as_bytes()))
            .expect("the name has no NUL byte and the partial name adds none")
    }

    /// Whether a partial download of this target is there.
    pub fn partial_exists(&self) -> bool {
        sys::fstatat(self.dir.as_fd(), &self.partial_cname(), false).is_ok()
    }

    /// A local failure about this target: `local PATH: what: reason`.
    pub(super) fn fail(&self, what: &str, e: &io::Error) -> Error {
        Error::Local(format!(
            "local {}: {what}: {}",
            self.shown.display(),
            local_reason(e)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_server() {
        for ok in ["a", "a b", ".hidden", "...", "x\u{1b}[2J", &"n".repeat(255)] {
            assert_eq!(check_name(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/x",
            "a/b",
            "nul\0x",
            &"n".repeat(256),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn partial_names_fit_in_255_bytes() {
        assert_eq!(partial_name(b"b.txt"), b".b.txt.fos-partial");
        let fits = "n".repeat(242);
        assert_eq!(partial_name(fits.as_bytes()).len(), 255);
        assert!(partial_name(fits.as_bytes()).starts_with(b".nnn"));
        for len in [243, 250, 255] {
            let p = partial_name("n".repeat(len).as_bytes());
            assert!(p.len() <= 255, "{len}: {}", p.len());
            assert!(p.ends_with(b".fos-partial"));
        }
        // distinct long names get distinct partials; one name always the same one
        let (a, b) = ("a".repeat(250), format!("{}b", "a".repeat(249)));
        assert_ne!(partial_name(a.as_bytes()), partial_name(b.as_bytes()));
        assert_eq!(partial_name(a.as_bytes()), partial_name(a.as_bytes()));
        // a multi-byte character is never cut in half
        let wide = "é".repeat(127);
        let p = partial_name(wide.as_bytes());
        assert!(std::str::from_utf8(&p).is_ok());
        assert!(p.len() <= 255);
    }
}
