//! A logged-in user's state and the file operations both protocols share: the
//! sandbox, the current directory, limits. Each method resolves its path argument
//! through [`UserPath::resolve`] and acts through the `Sandbox`, so neither protocol
//! adapter ever touches a host path.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::running::UploadRegistry;
use crate::ioerror::{Whose, reason};
use crate::log::{Level, human_bytes};
use crate::protocol::{self, Entry, EntryKind, ErrorCode};
use crate::sandbox::{self, Partial, Resume, Sandbox, UserPath};

/// Smallest upload that is kept for a resume when it is cut.
pub const RESUME_MIN: u64 = 1 << 20;

/// Bytes `cat` returns, as the Python tool does.
pub const CAT_LIMIT: usize = 1024;

/// Why a request failed, before it becomes a reply: the one failure type of the
/// server's handlers, for both protocols. What the client is told comes from
/// [`describe`] (never a host path); `Display` is the detail for the server's log.
#[derive(Debug)]
pub enum Error {
    /// The sandbox refused or the file system failed.
    Sandbox(sandbox::Error),
    /// A refusal with its own code and text.
    Refused(ErrorCode, String),
    /// A login with a wrong user name or password.
    BadCredentials,
    /// A login locked out for this long after too many failures.
    Throttled(Duration),
    /// A login refused because the session limits are reached.
    Busy,
    /// A login whose storage could not be opened (the log has why).
    Storage,
    /// The connection failed mid-request: there is nobody to reply to.
    Net(protocol::Error),
}

impl Error {
    /// A failure of the connection itself, not of the file system (which is what an
    /// `io::Error` converts to).
    pub fn net(e: io::Error) -> Error {
        Error::Net(e.into())
    }
}

impl From<sandbox::Error> for Error {
    fn from(e: sandbox::Error) -> Self {
        Error::Sandbox(e)
    }
}

/// An I/O error here is the server's file system (a network error is
/// [`Error::Net`], converted from [`protocol::Error`]).
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Sandbox(sandbox::Error::from(e))
    }
}

impl From<protocol::Error> for Error {
    fn from(e: protocol::Error) -> Self {
        Error::Net(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sandbox(e) => write!(f, "{e}"),
            Error::Refused(_, msg) => f.write_str(msg),
            Error::BadCredentials => f.write_str("invalid credentials"),
            Error::Throttled(left) => write!(f, "locked out for {}s more", left.as_secs() + 1),
            Error::Busy => f.write_str("session limits reached"),
            Error::Storage => f.write_str("cannot open the user's storage"),
            Error::Net(e) => write!(f, "connection: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The one place a failure becomes what the client is told: a code and a message that
/// never contains a host path. A refused path reads exactly like a missing one.
pub fn describe(f: &Error) -> (ErrorCode, String) {
    use sandbox::Error as E;
    match f {
        Error::Refused(code, msg) => (*code, msg.clone()),
        Error::BadCredentials => (ErrorCode::Auth, "invalid credentials".into()),
        Error::Throttled(left) => (
            ErrorCode::Throttled,
            format!(
                "too many failed logins; try again in {} s",
                left.as_secs() + 1
            ),
        ),
        Error::Busy => (ErrorCode::Busy, "server busy; try again later".into()),
        Error::Storage => (ErrorCode::Io, "the server cannot open your storage".into()),
        Error::Net(_) => (ErrorCode::Io, "the connection failed".into()),
        Error::Sandbox(e) => match e {
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
            E::TooDeep => (
                ErrorCode::Invalid,
                format!("directory tree deeper than {} levels", sandbox::MAX_DEPTH),
            ),
            E::Io(io) => (ErrorCode::Io, reason(io, Whose::Server)),
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

/// The widest permission bits the server gives what a client uploads or `chmod`s:
/// never setuid, setgid or sticky, never writable by group or others (the storage
/// belongs to the server's account, not to the users' groups).
pub const MAX_MODE: u32 = 0o755;

/// A client's mode for a file, within the policy: at most [`MAX_MODE`], and always
/// readable by the owner (the server itself), so it can be served again.
pub fn file_mode(mode: u32) -> u32 {
    (mode & MAX_MODE) | 0o400
}

/// A client's mode for a directory, within the policy: at most [`MAX_MODE`], and
/// always usable by the owner (the server lists, creates and removes in it).
pub fn dir_mode(mode: u32) -> u32 {
    (mode & MAX_MODE) | 0o700
}

/// What `df` reports.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Bytes the user's storage takes, as the quota counts them.
    pub used: u64,
    /// `--quota`, if set.
    pub quota: Option<u64>,
    /// `--max-file-size`, if set.
    pub max_file_size: Option<u64>,
}

/// A logged-in session.
#[derive(Debug)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// The client's address, for the log.
    pub(super) peer: SocketAddr,
    sandbox: Sandbox,
    cwd: UserPath,
    pub(super) shared: Arc<Shared>,
    /// What `sync` keeps between requests (see `syncops`).
    sync: super::syncops::SyncState,
}

impl Session {
    /// Opens (creating on first login) the user's root.
    pub(super) fn open(
        shared: Arc<Shared>,
        user: &str,
        peer: SocketAddr,
    ) -> Result<Session, Error> {
        let sandbox = Sandbox::open_user(&shared.config.root, user)?.with_holder(&shared.holder);
        Ok(Session {
            user: user.to_string(),
            peer,
            sandbox,
            cwd: UserPath::root(),
            shared,
            sync: Default::default(),
        })
    }

    /// Logs an event of this session (its address and user).
    pub(super) fn log(&self, level: Level, event: fmt::Arguments<'_>) {
        self.shared
            .log
            .log(level, Some(self.peer), Some(&self.user), event);
    }

    /// The user's sandbox.
    pub(super) fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The sandbox and the sync state, for `sync`'s requests.
    pub(super) fn sync_parts(&mut self) -> (&Sandbox, &mut super::syncops::SyncState) {
        (&self.sandbox, &mut self.sync)
    }

    /// Resolves a path argument against the current directory.
    pub fn path(&self, arg: &str) -> Result<UserPath, Error> {
        Ok(UserPath::resolve(&self.cwd, arg, false)?)
    }

    /// The current directory as the user sees it (`/` is their root).
    pub fn pwd(&self) -> String {
        self.cwd.to_string()
    }

    /// Changes directory; `..` at the root stays at the root.
    pub fn cd(&mut self, arg: Option<&str>) -> Result<String, Error> {
        let target = match arg {
            None => UserPath::root(),
            Some(a) => UserPath::resolve(&self.cwd, a, true)?,
        };
        self.sandbox.check_dir(&target)?;
        self.cwd = target;
        Ok(self.pwd())
    }

    /// Lists a directory (or describes a file).
    pub fn ls(&self, arg: Option<&str>) -> Result<Vec<Entry>, Error> {
        let path = match arg {
            None => self.cwd.clone(),
            Some(a) => self.path(a)?,
        };
        Ok(self.sandbox.list(&path)?)
    }

    /// Describes one path.
    pub fn stat(&self, arg: &str) -> Result<Entry, Error> {
        Ok(self.sandbox.stat(&self.path(arg)?)?)
    }

    /// The first [`CAT_LIMIT`] bytes of a file.
    pub fn cat(&self, arg: &str) -> Result<Cat, Error> {
        let (file, st) = self.sandbox.open_file(&self.path(arg)?)?;
        let mut head = Vec::with_capacity(CAT_LIMIT);
        file.take(CAT_LIMIT as u64).read_to_end(&mut head)?;
        Ok(Cat {
            head,
            size: st.size,
        })
    }

    /// The user's usage as the quota counts it (uploads in progress at their
    /// reservation), with the limits that apply.
    pub fn df(&self) -> Result<Usage, Error> {
        Ok(Usage {
            used: self.sandbox.usage()?,
            quota: self.shared.config.quota,
            max_file_size: self.shared.config.max_file_size,
        })
    }

    /// The mode an upload to `target` gets from the source's `sent` bits: with `exact`
    /// (`put -p`) those bits; else as `cp` does, without the bits the server's umask
    /// clears, and never wider than the file it replaces had. The policy
    /// ([`file_mode`]) applies either way.
    pub fn upload_mode(&self, target: &UserPath, sent: u32, exact: bool) -> u32 {
        if exact {
            return file_mode(sent);
        }
        let mut mode = sent & !crate::sys::umask();
        if let Ok(e) = self.sandbox.stat(target)
            && e.kind == EntryKind::File
            && let Some(old) = e.mode
        {
            mode &= old;
        }
        file_mode(mode)
    }

    /// `setattr`: the permission bits (within the policy: [`file_mode`],
    /// [`dir_mode`]) and/or the modification time of a file or directory.
    pub fn set_attrs(
        &self,
        arg: &str,
        mode: Option<u32>,
        mtime: Option<i64>,
    ) -> Result<Entry, Error> {
        let path = self.path(arg)?;
        let policy =
            |m: u32| move |_old: u32, dir: bool| if dir { dir_mode(m) } else { file_mode(m) };
        let f = mode.map(policy);
        let f = f.as_ref().map(|f| f as &dyn Fn(u32, bool) -> u32);
        Ok(self.sandbox.set_attrs(&path, f, mtime)?)
    }

    /// Makes a directory.
    pub fn mkdir(&self, arg: &str) -> Result<(), Error> {
        Ok(self.sandbox.mkdir(&self.path(arg)?)?)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, arg: &str) -> Result<(), Error> {
        let path = self.path(arg)?;
        if path.is_root() || self.cwd.components().starts_with(path.components()) {
            return Err(Error::Refused(
                ErrorCode::Invalid,
                "cannot remove the current directory or one above it".into(),
            ));
        }
        Ok(self.sandbox.rmdir(&path)?)
    }

    /// Removes a file, or with `recursive` a whole tree; returns entries removed.
    pub fn rm(&self, arg: &str, recursive: bool) -> Result<u64, Error> {
        let path = self.path(arg)?;
        if recursive {
            if path.is_root() || self.cwd.components().starts_with(path.components()) {
                return Err(Error::Refused(
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
    pub fn mv(&self, from: &str, to: &str) -> Result<String, Error> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        if self.cwd.components().starts_with(from.components()) {
            return Err(Error::Refused(
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
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, Error> {
        use crate::glob::{LIST_STEPS, MAX_MATCHES, MAX_STEPS, Pattern, has_wildcards};
        if pattern.len() > sandbox::MAX_PATH || pattern.contains('\0') {
            return Err(Error::Sandbox(sandbox::Error::InvalidName("bad pattern")));
        }
        crate::glob::check(pattern)
            .map_err(|why| Error::Refused(ErrorCode::Invalid, why.into()))?;
        // one budget of matching steps for the whole expansion, however many names
        let mut budget = MAX_STEPS;
        let too_costly = |_| {
            Error::Refused(
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
                            return Err(Error::Sandbox(sandbox::Error::Escapes));
                        }
                        next.push(b.parent());
                    }
                    literal_tail = false;
                }
                c if has_wildcards(c) => {
                    let compiled = Pattern::new(c);
                    for b in &bases {
                        budget = budget
                            .checked_sub(LIST_STEPS)
                            .ok_or(crate::glob::TooCostly)
                            .map_err(too_costly)?;
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
                            return Err(Error::Refused(
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
            return Err(Error::Refused(
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
    pub fn open_read(&self, arg: &str) -> Result<(File, crate::sys::Stat), Error> {
        Ok(self.sandbox.open_file(&self.path(arg)?)?)
    }

    /// Checks an upload against the limits and creates its partial (the first step of
    /// [`Session::begin_put`]; a `cpatch` builds its file itself): returns the target
    /// and a partial file beside it. With an announced `(size, mtime)` the partial records
    /// them for a later resume, and with `resume` an interrupted upload of the same
    /// source is continued if there is one (its length is the offset). Without one
    /// (a stream, or a legacy put) the size is metered as data arrives: see
    /// [`Session::meter`]. Under a quota, the announced size is reserved before this
    /// returns (see [`Session::reserve_partial`]).
    pub(super) fn start_partial(
        &self,
        arg: &str,
        announced: Option<(u64, i64)>,
        no_clobber: bool,
        resume: bool,
    ) -> Result<(UserPath, Partial), Error> {
        let target = self.path(arg)?;
        if target.is_root() {
            return Err(Error::Sandbox(sandbox::Error::IsADirectory));
        }
        if let Some((size, _)) = announced {
            self.check_max(size)?;
        }
        if no_clobber && self.sandbox.stat(&target).is_ok() {
            return Err(Error::Sandbox(sandbox::Error::Exists));
        }
        if let (true, Some((size, mtime))) = (resume, announced) {
            // a resumable partial has reserved its whole size since it was made
            match self.sandbox.resume_partial(&target, size, mtime)? {
                Resume::Found(p) => return Ok((target, p)),
                Resume::InUse(held) => return self.take_over(arg, target, size, mtime, held),
                Resume::Nothing => {}
            }
        }
        let partial = self.reserve_partial(&target, announced)?;
        Ok((target, partial))
    }

    /// A resume whose partial a running upload holds: most likely this client's own
    /// upload on a connection that died (or froze) without its server noticing, on
    /// this server or on another that shares the storage. Asks the holder to let go
    /// (this server's own upload is cut at once; another server's sees the request
    /// within about a second) and continues once it has. If it does not let go in
    /// time the client is told to try again: a resume never starts a second partial
    /// beside one that is only held.
    fn take_over(
        &self,
        arg: &str,
        target: UserPath,
        size: u64,
        mtime: i64,
        held: sandbox::Held,
    ) -> Result<(UserPath, Partial), Error> {
        let holder = held.holder().unwrap_or("an earlier fos server").to_string();
        let here = self.shared.uploads.cut(held.id());
        if !here {
            held.request_takeover()?;
        }
        self.shared.log.log(
            crate::log::Level::Info,
            None,
            Some(&self.user),
            format_args!(
                "resume of {:?}: {} the upload holding it ({holder})",
                crate::log::escape(arg),
                if here { "cut" } else { "asked to let go" }
            ),
        );
        // until the holder lets go (or gives up the partial)
        let settled =
            UploadRegistry::wait_for(|| match self.sandbox.resume_partial(&target, size, mtime) {
                Ok(Resume::InUse(_)) => None,
                other => Some(other),
            });
        match settled {
            Some(Ok(Resume::Found(p))) => Ok((target, p)),
            // it finished, or was discarded, meanwhile: a fresh upload
            Some(Ok(Resume::Nothing)) => {
                let partial = self.reserve_partial(&target, Some((size, mtime)))?;
                Ok((target, partial))
            }
            Some(Err(e)) => Err(e.into()),
            Some(Ok(Resume::InUse(_))) | None => {
                // the holder's server and address, not its process
                let server = holder.split(", pid").next().unwrap_or_default();
                Err(Error::Refused(
                    ErrorCode::InUse,
                    format!(
                        "an upload of this file is still running (through {server}); try again shortly"
                    ),
                ))
            }
        }
    }

    /// Creates the partial of a new upload. Under a quota this is one step under the
    /// user's usage lock: count the usage (every partial at its reservation), refuse
    /// if the announced size does not fit, else create the partial with a sidecar
    /// that reserves that size, so a concurrent upload (on this server or another on
    /// the same storage) counts it before a byte is written.
    fn reserve_partial(
        &self,
        target: &UserPath,
        announced: Option<(u64, i64)>,
    ) -> Result<Partial, Error> {
        let Some(quota) = self.shared.config.quota else {
            // a small file is cheaper to send again than to track for a resume: its
            // partial gets no sidecar (one file fewer to create and remove per upload)
            let meta = announced.filter(|&(size, _)| size >= RESUME_MIN);
            return Ok(self.sandbox.create_partial(target, meta)?);
        };
        let _lock = self.sandbox.lock_usage()?;
        let size = announced.map_or(0, |(size, _)| size);
        let room = match size {
            // nothing to reserve yet (a stream reserves as it goes)
            0 => None,
            _ => Some(self.room(target, quota)?),
        };
        if let Some(room) = room.filter(|r| size > r.free) {
            return Err(Error::Refused(
                ErrorCode::Quota,
                format!(
                    "quota exceeded: {} of {} used, this file needs {}",
                    human_bytes(room.used),
                    human_bytes(quota),
                    human_bytes(size)
                ),
            ));
        }
        Ok(match announced {
            Some((size, mtime)) if size >= RESUME_MIN => {
                self.sandbox.create_partial(target, Some((size, mtime)))?
            }
            _ => self.sandbox.create_reserved(target, size)?,
        })
    }

    /// Refuses a size over `--max-file-size`.
    fn check_max(&self, size: u64) -> Result<(), Error> {
        if let Some(max) = self.shared.config.max_file_size
            && size > max
        {
            return Err(Error::Refused(
                ErrorCode::TooLarge,
                format!("file of {size} bytes is over the server's limit of {max} bytes"),
            ));
        }
        Ok(())
    }

    /// The one quota formula, for every kind of upload: what the user may still add
    /// with an upload to `target`, counting the file it replaces as freed. Call it
    /// under [`Sandbox::lock_usage`].
    fn room(&self, target: &UserPath, quota: u64) -> Result<Room, Error> {
        let replaced = match self.sandbox.stat(target) {
            Ok(e) if e.kind == EntryKind::File => e.size,
            _ => 0,
        };
        let used = self.sandbox.usage()?;
        Ok(Room {
            used,
            free: quota.saturating_sub(used.saturating_sub(replaced)),
        })
    }

    /// The limits of an upload whose size is not known beforehand (a stream, a legacy
    /// put), enforced as its bytes arrive: pass each piece to [`Meter::admit`] before
    /// writing it.
    pub fn meter<'a>(&'a self, target: &UserPath, partial: &Partial) -> Result<Meter<'a>, Error> {
        Ok(Meter {
            session: self,
            target: target.clone(),
            reservation: partial.reservation()?,
            written: 0,
            reserved: 0,
        })
    }
    /// Finishes an upload: renames the partial over the target.
    pub fn commit(
        &self,
        partial: Partial,
        target: &UserPath,
        no_clobber: bool,
    ) -> Result<(), Error> {
        Ok(partial.commit(target, no_clobber, self.shared.config.fsync)?)
    }
}

/// What the quota leaves for one upload.
struct Room {
    /// Bytes counted, reservations included.
    used: u64,
    /// Bytes the upload may take.
    free: u64,
}

/// Smallest step by which a metered upload raises its reservation; each step doubles
/// it (so a large stream counts the usage a few dozen times, not once per chunk).
const RESERVE_STEP: u64 = 1 << 20;

/// The limits of an upload of unknown size, checked as its bytes arrive: the file size
/// limit, and the quota through a reservation that grows ahead of the data under the
/// user's usage lock (see [`Session::meter`]).
#[derive(Debug)]
pub struct Meter<'a> {
    session: &'a Session,
    target: UserPath,
    /// The partial's reservation (none without a quota).
    reservation: Option<sandbox::Reservation>,
    written: u64,
    reserved: u64,
}

impl Meter<'_> {
    /// Admits `n` more bytes, or refuses them with `too-large` or `quota`: the upload
    /// must then stop and its partial be dropped.
    pub fn admit(&mut self, n: u64) -> Result<(), Error> {
        let cfg = &self.session.shared.config;
        let total = self.written.saturating_add(n);
        if let Some(max) = cfg.max_file_size
            && total > max
        {
            return Err(Error::Refused(
                ErrorCode::TooLarge,
                format!("the upload is over the server's limit of {max} bytes"),
            ));
        }
        if let (Some(quota), Some(reservation)) = (cfg.quota, &self.reservation)
            && total > self.reserved
        {
            let _lock = self.session.sandbox.lock_usage()?;
            // the usage counts this partial at its reservation: the rest is everyone else
            let room = self.session.room(&self.target, quota)?;
            let free = room.free.saturating_add(self.reserved);
            if total > free {
                return Err(Error::Refused(
                    ErrorCode::Quota,
                    format!(
                        "quota exceeded: this upload reached {}, and {} of {} are used by other files",
                        human_bytes(total),
                        human_bytes(room.used.saturating_sub(self.reserved)),
                        human_bytes(quota)
                    ),
                ));
            }
            let want = total.max(self.reserved.saturating_mul(2)).max(RESERVE_STEP);
            let grant = want.min(free);
            reservation.set(grant)?;
            self.reserved = grant;
        }
        self.written = total;
        Ok(())
    }
}

/// A destination whose every write is first admitted by a [`Meter`] (when there is
/// one); a refused write fails, and the refusal is kept for the reply.
pub struct Metered<'a, W> {
    /// Where admitted bytes go.
    pub inner: W,
    /// The limits; `None` admits everything.
    pub meter: Option<Meter<'a>>,
    /// Why a write was refused.
    pub refusal: Option<Error>,
}

impl<W: io::Write> io::Write for Metered<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(meter) = &mut self.meter
            && let Err(f) = meter.admit(buf.len() as u64)
        {
            self.refusal = Some(f);
            return Err(io::Error::other("refused by the upload limits"));
        }
        // admitted as a whole, so written as a whole
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
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
    fn modes_from_clients_stay_within_the_policy() {
        assert_eq!(
            file_mode(0o7777),
            0o755,
            "no setuid, setgid, sticky, group write"
        );
        assert_eq!(file_mode(0o000), 0o400, "the server can read it");
        assert_eq!(file_mode(0o640), 0o640);
        assert_eq!(dir_mode(0o000), 0o700);
        assert_eq!(dir_mode(0o2775), 0o755);
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
        let (code, msg) = describe(&Error::from(e));
        assert_eq!(code, ErrorCode::Io);
        assert_eq!(msg, "no space left on the server");
        let (_, msg) = describe(&Error::from(io::Error::from_raw_os_error(
            crate::sys::errno::EACCES,
        )));
        assert_eq!(msg, "permission denied on the server");
    }
}
