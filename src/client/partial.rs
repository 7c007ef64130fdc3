//! The partial file of a download: created beside the target exclusively, mode
//! 0600, never through a symlink ([`LocalPartial`]), filled by the transfer steps
//! ([`super::native_transfer`], [`super::legacy_transfer`]) and put in place by
//! [`Fetched::land`] only when complete and verified, with the mode a copy gets
//! ([`download_mode`]) and the server's modification time.
//!
//! This module does not talk to the server.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::local::LocalTarget;
use super::local_reason;
use super::stream;
use crate::Error;
use crate::sys::{self, errno, oflag};

/// A download complete in its partial file, not yet in place.
#[derive(Debug)]
pub struct Fetched {
    /// The partial file holding it.
    pub partial: LocalPartial,
    /// Bytes moved in this transfer.
    pub bytes: u64,
    /// Whole file size.
    pub size: u64,
    /// The modification time the server gave, if it gives one.
    pub mtime: Option<i64>,
    /// The permission bits the server gave, if it gives them.
    pub mode: Option<u32>,
}

impl Fetched {
    /// Puts the download in place at `target` with its mode (see [`download_mode`];
    /// `preserve`: `-p`) and time; with `no_clobber`, only if nothing has the name.
    /// Returns the bytes moved and the file's size.
    pub fn land(
        self,
        target: &LocalTarget,
        preserve: bool,
        no_clobber: bool,
        fsync: bool,
    ) -> Result<(u64, u64), Error> {
        let local = target.shown();
        // a symlink made meanwhile is not replaced either
        if stream::classify(local)? != stream::Target::File {
            return Err(Error::Local(format!(
                "{}: is no longer a regular file; the download was not saved",
                local.display()
            )));
        }
        self.partial
            .set_mode(download_mode(self.mode, preserve, target.file_mode()))?;
        self.partial.commit(target, self.mtime, no_clobber, fsync)?;
        Ok((self.bytes, self.size))
    }
}

/// A download in progress: its partial file beside the target, mode 0600. Dropped
/// uncommitted, it is removed unless `keep` is set (a cut or cancelled download, kept
/// for `reget`).
#[derive(Debug)]
pub struct LocalPartial {
    dir: Arc<OwnedFd>,
    name: CString,
    file: File,
    /// Keep the file if dropped uncommitted.
    pub keep: bool,
    done: bool,
}

impl LocalPartial {
    /// Opens the partial file for `target`: with `resume`, the one already there if it
    /// is a regular file; otherwise whatever has its name is removed (a symlink is
    /// removed, not followed) and a new one is created exclusively.
    pub fn open(target: &LocalTarget, resume: bool) -> Result<LocalPartial, Error> {
        let dir = target.dir.as_fd();
        let name = target.partial_cname();
        let existing = if resume {
            Self::reopen(dir, &name).map_err(|e| target.fail("the partial download", &e))?
        } else {
            None
        };
        let fd = match existing {
            Some(fd) => fd,
            None => {
                match sys::unlinkat(dir, &name, false) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(target.fail("cannot remove an old partial download", &e));
                    }
                    _ => {}
                }
                sys::openat(
                    dir,
                    &name,
                    oflag::RDWR | oflag::CREAT | oflag::EXCL | oflag::NOFOLLOW,
                    0o600,
                )
                .map_err(|e| target.fail("cannot create the partial download", &e))?
            }
        };
        Ok(LocalPartial {
            dir: Arc::clone(&target.dir),
            name,
            file: File::from(fd),
            keep: false,
            done: false,
        })
    }

    /// The partial already there, if it is a regular file of this user's with one link
    /// (not through a symlink).
    fn reopen(dir: BorrowedFd<'_>, name: &CString) -> io::Result<Option<OwnedFd>> {
        // NONBLOCK: a FIFO planted under the name must not hang the open
        match sys::openat(
            dir,
            name,
            oflag::RDWR | oflag::NOFOLLOW | oflag::NONBLOCK,
            0,
        ) {
            Ok(fd) => {
                use std::os::unix::fs::MetadataExt;
                let file = File::from(fd);
                let md = file.metadata()?;
                // only a file of our own, linked nowhere else: another user's (planted
                // in a shared directory) would get the download and keep it theirs
                if !md.is_file() || md.uid() != sys::euid() || md.nlink() != 1 {
                    return Ok(None);
                }
                sys::set_blocking(file.as_fd())?;
                Ok(Some(OwnedFd::from(file)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            // a symlink: start over with a new file
            Err(e) if e.raw_os_error() == Some(errno::ELOOP) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the permission bits the download will have in place.
    pub fn set_mode(&self, mode: u32) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| {
                Error::Local(format!(
                    "setting the mode of the download: {}",
                    local_reason(&e)
                ))
            })
    }

    /// Bytes in the partial file.
    pub(super) fn len(&self) -> Result<u64, Error> {
        Ok(self.file.metadata()?.len())
    }

    /// Empties the partial file (the remote file changed: start over).
    pub(super) fn truncate(&mut self) -> Result<(), Error> {
        self.file.set_len(0)?;
        Ok(())
    }

    /// A reader from the start.
    pub(super) fn reader(&self) -> Result<&File, Error> {
        use std::io::Seek;
        (&self.file).rewind()?;
        Ok(&self.file)
    }

    /// A writer at the end.
    pub(super) fn append(&self) -> Result<&File, Error> {
        use std::io::{Seek, SeekFrom};
        (&self.file).seek(SeekFrom::End(0))?;
        Ok(&self.file)
    }

    /// Sets the modification time, fsyncs (with `fsync`) and renames the partial over
    /// the target's name, within the directory (a symlink there is replaced, not
    /// followed); with `no_clobber`, fails instead of replacing anything.
    pub fn commit(
        mut self,
        target: &LocalTarget,
        mtime: Option<i64>,
        no_clobber: bool,
        fsync: bool,
    ) -> Result<(), Error> {
        if let Some(t) = mtime {
            let _ = self
                .file
                .set_modified(UNIX_EPOCH + Duration::from_secs(t.max(0) as u64));
        }
        if fsync {
            self.file
                .sync_all()
                .map_err(|e| target.fail("writing the download to disk", &e))?;
        }
        let dir = self.dir.as_fd();
        match sys::renameat(dir, &self.name, dir, &target.name, no_clobber) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(errno::EEXIST) && no_clobber => {
                // nothing to resume: the download is complete, it just may not land
                self.keep = false;
                return Err(already_here(target.shown()));
            }
            Err(e) => return Err(target.fail("cannot put the download in place", &e)),
        }
        self.done = true;
        if fsync {
            let _ = self
                .dir
                .try_clone()
                .map(File::from)
                .and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for LocalPartial {
    fn drop(&mut self) {
        if !self.done && !self.keep {
            let _ = sys::unlinkat(self.dir.as_fd(), &self.name, false);
        }
    }
}

/// The mode a download gets, as `cp` gives a copy: the server's bits (or, from a
/// server that says none, `0o666`) without those the umask clears, and never wider than
/// the file it replaces (`existing`); with `preserve` (`-p`) the server's bits exactly.
/// Never setuid, setgid or sticky.
pub fn download_mode(sent: Option<u32>, preserve: bool, existing: Option<u32>) -> u32 {
    let sent = sent.unwrap_or(0o666) & 0o777;
    if preserve {
        return sent;
    }
    let mode = sent & !crate::sys::umask();
    match existing {
        Some(old) => mode & old,
        None => mode,
    }
}

/// What a `get -n` says when the local file is there: worded as `put -n` is.
pub(super) fn already_here(local: &Path) -> Error {
    Error::Local(format!(
        "{} already exists locally (-n does not replace it)",
        local.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_get_modes_as_cp_gives_them() {
        let mask = crate::sys::umask();
        assert_eq!(download_mode(Some(0o755), false, None), 0o755 & !mask);
        assert_eq!(download_mode(Some(0o755), true, None), 0o755);
        assert_eq!(
            download_mode(Some(0o4755), true, None),
            0o755,
            "never setuid"
        );
        assert_eq!(
            download_mode(Some(0o644), false, Some(0o600)),
            0o600 & !mask,
            "never wider than the file replaced"
        );
        assert_eq!(download_mode(Some(0o644), true, Some(0o600)), 0o644);
        assert_eq!(download_mode(None, false, None), 0o666 & !mask);
    }
}
