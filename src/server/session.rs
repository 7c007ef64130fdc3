//! A logged-in user's state and the file operations both protocols share: the
//! sandbox, the current directory, limits. Each method resolves its path argument
//! through [`UserPath::resolve`] and acts through the [`Sandbox`], so neither protocol
//! adapter ever touches a host path.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use super::Shared;
use super::uploads::Uploads;
use crate::protocol::{Entry, EntryKind, ErrorCode};
use crate::sandbox::{self, Partial, Resume, Sandbox, UserPath};

/// Smallest upload that is kept for a resume when it is cut.
pub const RESUME_MIN: u64 = 1 << 20;

/// Bytes `cat` returns, as the Python tool does.
pub const CAT_LIMIT: usize = 1024;

/// Why a command failed, before it becomes a reply.
#[derive(Debug)]
pub enum Failure {
    /// The sandbox refused or the file system failed.
    Sandbox(sandbox::Error),
    /// A refusal with its own code and text.
    Refused(ErrorCode, String),
}

impl From<sandbox::Error> for Failure {
    fn from(e: sandbox::Error) -> Self {
        Failure::Sandbox(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Sandbox(sandbox::Error::from(e))
    }
}

/// The one place a failure becomes what the client is told: a code and a message that
/// never contains a host path. A refused path reads exactly like a missing one.
pub fn describe(f: &Failure) -> (ErrorCode, String) {
    use sandbox::Error as E;
    match f {
        Failure::Refused(code, msg) => (*code, msg.clone()),
        Failure::Sandbox(e) => match e {
            E::NotFound | E::Escapes | E::Reserved => {
                (ErrorCode::NotFound, "no such file or directory".into())
            }
            E::InvalidName(why) => (ErrorCode::Invalid, format!("invalid name: {why}")),
            E::Exists => (ErrorCode::Exists, "already exists".into()),
            E::NotEmpty => (ErrorCode::NotEmpty, "directory not empty".into()),
            E::NotADirectory => (ErrorCode::NotADirectory, "not a directory".into()),
            E::IsADirectory => (ErrorCode::IsADirectory, "is a directory".into()),
            E::NotRegular => (ErrorCode::Invalid, "not a regular file".into()),
            E::IsRoot => (
                ErrorCode::Invalid,
                "not allowed on the root directory".into(),
            ),
            E::Io(io) => (ErrorCode::Io, io_message(io)),
        },
    }
}

/// A server-side I/O failure in words a user can act on, without paths.
fn io_message(e: &io::Error) -> String {
    use crate::sys::errno;
    match e.raw_os_error() {
        Some(errno::ENOSPC) => "no space left on the server".into(),
        Some(errno::EDQUOT) => "disk quota exceeded on the server".into(),
        Some(errno::EACCES) | Some(errno::EPERM) => "permission denied on the server".into(),
        _ => match e.kind() {
            io::ErrorKind::TimedOut => "timed out".into(),
            _ => "server I/O error".into(),
        },
    }
}

/// What `cat` found.
#[derive(Debug)]
pub struct Cat {
    /// Up to [`CAT_LIMIT`] bytes.
    pub head: Vec<u8>,
    /// The file's whole size.
    pub size: u64,
}

/// A logged-in session.
#[derive(Debug)]
pub struct Session {
    /// The user name.
    pub user: String,
    sandbox: Sandbox,
    cwd: UserPath,
    pub(super) shared: Arc<Shared>,
}

impl Session {
    /// Opens (creating on first login) the user's root.
    pub(super) fn open(shared: Arc<Shared>, user: &str) -> Result<Session, Failure> {
        let sandbox = Sandbox::open_user(&shared.config.root, user)?;
        Ok(Session {
            user: user.to_string(),
            sandbox,
            cwd: UserPath::root(),
            shared,
        })
    }

    /// Resolves a path argument against the current directory.
    pub fn path(&self, arg: &str) -> Result<UserPath, Failure> {
        Ok(UserPath::resolve(&self.cwd, arg, false)?)
    }

    /// The current directory as the user sees it (`/` is their root).
    pub fn pwd(&self) -> String {
        self.cwd.to_string()
    }

    /// Changes directory; `..` at the root stays at the root.
    pub fn cd(&mut self, arg: Option<&str>) -> Result<String, Failure> {
        let target = match arg {
            None => UserPath::root(),
            Some(a) => UserPath::resolve(&self.cwd, a, true)?,
        };
        self.sandbox.check_dir(&target)?;
        self.cwd = target;
        Ok(self.pwd())
    }

    /// Lists a directory (or describes a file).
    pub fn ls(&self, arg: Option<&str>) -> Result<Vec<Entry>, Failure> {
        let path = match arg {
            None => self.cwd.clone(),
            Some(a) => self.path(a)?,
        };
        Ok(self.sandbox.list(&path)?)
    }

    /// Describes one path.
    pub fn stat(&self, arg: &str) -> Result<Entry, Failure> {
        Ok(self.sandbox.stat(&self.path(arg)?)?)
    }

    /// The first [`CAT_LIMIT`] bytes of a file.
    pub fn cat(&self, arg: &str) -> Result<Cat, Failure> {
        let (file, st) = self.sandbox.open_file(&self.path(arg)?)?;
        let mut head = Vec::with_capacity(CAT_LIMIT);
        file.take(CAT_LIMIT as u64).read_to_end(&mut head)?;
        Ok(Cat {
            head,
            size: st.size,
        })
    }

    /// Makes a directory.
    pub fn mkdir(&self, arg: &str) -> Result<(), Failure> {
        Ok(self.sandbox.mkdir(&self.path(arg)?)?)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, arg: &str) -> Result<(), Failure> {
        let path = self.path(arg)?;
        if path.is_root() || self.cwd.components().starts_with(path.components()) {
            return Err(Failure::Refused(
                ErrorCode::Invalid,
                "cannot remove the current directory or one above it".into(),
            ));
        }
        Ok(self.sandbox.rmdir(&path)?)
    }

    /// Removes a file, or with `recursive` a whole tree; returns entries removed.
    pub fn rm(&self, arg: &str, recursive: bool) -> Result<u64, Failure> {
        let path = self.path(arg)?;
        if recursive {
            if path.is_root() || self.cwd.components().starts_with(path.components()) {
                return Err(Failure::Refused(
                    ErrorCode::Invalid,
                    "cannot remove the current directory or one above it".into(),
                ));
            }
            return Ok(self.sandbox.remove_tree(&path)?);
        }
        self.sandbox.remove_file(&path)?;
        Ok(1)
    }

    /// Renames within the user's root; returns the final path.
    pub fn mv(&self, from: &str, to: &str) -> Result<String, Failure> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        if self.cwd.components().starts_with(from.components()) {
            return Err(Failure::Refused(
                ErrorCode::Invalid,
                "cannot move the current directory or one above it".into(),
            ));
        }
        Ok(self.sandbox.rename(&from, &to)?.to_string())
    }

    /// Expands a wildcard pattern inside the user's root: wildcards may appear in any
    /// component, `..` may not climb past the root, and every directory is listed
    /// through the sandbox, so a symlink that leads out expands to nothing. Returns
    /// sorted paths as the user sees them (`/dir/name`).
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, Failure> {
        use crate::glob::{MAX_MATCHES, MAX_STEPS, Pattern, has_wildcards};
        if pattern.len() > sandbox::MAX_PATH || pattern.contains('\0') {
            return Err(Failure::Sandbox(sandbox::Error::InvalidName("bad pattern")));
        }
        crate::glob::check(pattern)
            .map_err(|why| Failure::Refused(ErrorCode::Invalid, why.into()))?;
        // one budget of matching steps for the whole expansion, however many names
        let mut budget = MAX_STEPS;
        let too_costly = |_| {
            Failure::Refused(
                ErrorCode::Invalid,
                "pattern too costly to expand; narrow it".into(),
            )
        };
        let start = if pattern.starts_with('/') {
            UserPath::root()
        } else {
            self.cwd.clone()
        };
        let mut bases = vec![start];
        let mut literal_tail = false;
        for comp in pattern.split('/') {
            let mut next = Vec::new();
            match comp {
                "" | "." => continue,
                ".." => {
                    for b in &bases {
                        if b.is_root() {
                            return Err(Failure::Sandbox(sandbox::Error::Escapes));
                        }
                        next.push(b.parent());
                    }
                    literal_tail = false;
                }
                c if has_wildcards(c) => {
                    let compiled = Pattern::new(c);
                    for b in &bases {
                        // not a directory, or one the sandbox refuses: no matches there
                        let Ok(entries) = self.sandbox.list(b) else {
                            continue;
                        };
                        for e in entries {
                            if compiled
                                .matches_within(&e.name, &mut budget)
                                .map_err(too_costly)?
                            {
                                next.push(b.join(&e.name)?);
                            }
                        }
                        if next.len() > MAX_MATCHES {
                            return Err(Failure::Refused(
                                ErrorCode::Invalid,
                                format!("more than {MAX_MATCHES} matches"),
                            ));
                        }
                    }
                    literal_tail = false;
                }
                c => {
                    for b in &bases {
                        next.push(b.join(c)?);
                    }
                    literal_tail = true;
                }
            }
            bases = next;
        }
        if literal_tail {
            bases.retain(|p| self.sandbox.stat(p).is_ok());
        }
        if bases.is_empty() {
            return Err(Failure::Refused(
                ErrorCode::NotFound,
                format!("no match for {pattern}"),
            ));
        }
        let mut out: Vec<String> = bases.iter().map(UserPath::to_string).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Opens a file for download.
    pub fn open_read(&self, arg: &str) -> Result<(File, crate::sys::Stat), Failure> {
        Ok(self.sandbox.open_file(&self.path(arg)?)?)
    }

    /// Checks an upload against the limits and starts it: returns the target and a
    /// partial file beside it. With an announced `(size, mtime)` the partial records
    /// them for a later resume, and with `resume` an interrupted upload of the same
    /// source is continued if there is one (its length is the offset).
    pub fn begin_put(
        &self,
        arg: &str,
        announced: Option<(u64, i64)>,
        no_clobber: bool,
        resume: bool,
    ) -> Result<(UserPath, Partial), Failure> {
        let target = self.path(arg)?;
        if target.is_root() {
            return Err(Failure::Sandbox(sandbox::Error::IsADirectory));
        }
        if let Some((size, _)) = announced {
            self.check_size(size, &target)?;
        }
        if no_clobber && self.sandbox.stat(&target).is_ok() {
            return Err(Failure::Sandbox(sandbox::Error::Exists));
        }
        if let (true, Some((size, mtime))) = (resume, announced) {
            match self.sandbox.resume_partial(&target, size, mtime)? {
                Resume::Found(p) => return Ok((target, p)),
                // most likely this client's own upload on a connection that died
                // without the server noticing: cut it and continue where it stopped
                Resume::InUse(id) if self.shared.uploads.cut(id) => {
                    self.shared.log.log(
                        crate::log::Level::Info,
                        None,
                        Some(&self.user),
                        format_args!(
                            "resume of {:?}: cut the earlier connection still holding it",
                            crate::log::escape(arg)
                        ),
                    );
                    // until the cut connection's thread lets go (or gives up the partial)
                    let settled = Uploads::wait_for(|| {
                        match self.sandbox.resume_partial(&target, size, mtime) {
                            Ok(Resume::InUse(_)) => None,
                            other => Some(other),
                        }
                    });
                    if let Some(Ok(Resume::Found(p))) = settled {
                        return Ok((target, p));
                    }
                }
                Resume::InUse(_) | Resume::Nothing => {}
            }
        }
        // a small file is cheaper to send again than to track for a resume: its
        // partial gets no sidecar (one file fewer to create and remove per upload)
        let meta = announced.filter(|&(size, _)| size >= RESUME_MIN);
        let partial = self.sandbox.create_partial(&target, meta)?;
        Ok((target, partial))
    }

    /// Refuses a size over `--max-file-size`, or one that would take the user over
    /// `--quota` (counting the file it replaces as freed).
    pub fn check_size(&self, size: u64, target: &UserPath) -> Result<(), Failure> {
        let cfg = &self.shared.config;
        if let Some(max) = cfg.max_file_size
            && size > max
        {
            return Err(Failure::Refused(
                ErrorCode::TooLarge,
                format!("file of {size} bytes is over the server's limit of {max} bytes"),
            ));
        }
        if let Some(quota) = cfg.quota {
            let replaced = match self.sandbox.stat(target) {
                Ok(e) if e.kind == EntryKind::File => e.size,
                _ => 0,
            };
            let used = self.usage()?;
            if used.saturating_sub(replaced).saturating_add(size) > quota {
                return Err(Failure::Refused(
                    ErrorCode::Quota,
                    format!("quota exceeded: {used} of {quota} bytes used, this file needs {size}"),
                ));
            }
        }
        Ok(())
    }

    /// Bytes used under the user's root (files only, symlinks not followed).
    pub fn usage(&self) -> Result<u64, Failure> {
        fn walk(
            sb: &Sandbox,
            dir: &UserPath,
            depth: usize,
            total: &mut u64,
        ) -> Result<(), Failure> {
            if depth > sandbox::MAX_DEPTH {
                return Ok(());
            }
            for e in sb.list(dir)? {
                match e.kind {
                    EntryKind::File => *total += e.size,
                    EntryKind::Dir => walk(sb, &dir.join(&e.name)?, depth + 1, total)?,
                    _ => {}
                }
            }
            Ok(())
        }
        let mut total = 0;
        walk(&self.sandbox, &UserPath::root(), 0, &mut total)?;
        Ok(total)
    }

    /// Finishes an upload: renames the partial over the target.
    pub fn commit(
        &self,
        partial: Partial,
        target: &UserPath,
        no_clobber: bool,
    ) -> Result<(), Failure> {
        Ok(partial.commit(target, no_clobber, self.shared.config.fsync)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination that fails like a full disk after `room` bytes.
    struct Full {
        room: usize,
    }

    impl io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.room {
                return Err(io::Error::from_raw_os_error(crate::sys::errno::ENOSPC));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_is_a_clear_error_and_the_stream_stays_in_step() {
        let data = vec![7u8; 1 << 20];
        let mut wire = Vec::new();
        crate::transfer::send(
            &mut wire,
            &mut &data[..],
            data.len() as u64,
            crate::transfer::sha(),
            &mut |_| {},
            &|| false,
        )
        .unwrap();
        wire.extend_from_slice(b"Q\0\0\0\0"); // the next request, which must still be readable
        let mut r = &wire[..];
        let got = crate::transfer::receive(
            &mut r,
            &mut Full { room: 300_000 },
            u64::MAX,
            crate::transfer::sha(),
            &mut |_| {},
            &|| false,
        )
        .unwrap();
        let Some(crate::transfer::LocalError::Write(e)) = got.local_error else {
            panic!("expected a write error")
        };
        assert_eq!(
            got.bytes,
            data.len() as u64,
            "the rest was read and discarded"
        );
        assert_eq!(r, b"Q\0\0\0\0");
        let (code, msg) = describe(&Failure::from(e));
        assert_eq!(code, ErrorCode::Io);
        assert_eq!(msg, "no space left on the server");
        let (_, msg) = describe(&Failure::from(io::Error::from_raw_os_error(
            crate::sys::errno::EACCES,
        )));
        assert_eq!(msg, "permission denied on the server");
    }
}
