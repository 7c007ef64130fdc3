//! One upload, from its start to its commit, for every protocol: a native `put` (sized,
//! resumable or a stream), a legacy `put`, a sync `cput` and a sync `cpatch` all begin
//! with [`Session::begin_put`] and end with [`Upload::finish`] (or, for `cput` and
//! `cpatch`, whose commit waits for its condition, [`Upload::verified`]).
//!
//! The steps, each a method: reserve (the size checks and the quota, in
//! `Session::start_partial`), resume (the offset and the prefix's SHA-256), receive
//! ([`Upload::receive`] for native frames, [`Upload::write_raw`] for the legacy data
//! connection, both through write-behind, [`Upload::receive_delta`] for a block delta
//! built against the old file), verify, then set the time and mode and
//! commit (with the hash cache's record). The protocol adapters only frame these: they
//! know nothing of partials, limits or the upload registry. The registry of running
//! uploads, for takeovers, is `running.rs`.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::blockcache;
use super::conn::{ServerTls, Watch};
use super::running::Registration;
use super::session::{Error, Meter, Metered, Session};
use crate::log::{Level, escape};
use crate::protocol::ErrorCode;
use crate::protocol::command::hex;
use crate::sandbox::{Partial, UserPath};
use crate::transfer::{self, LocalError, Received, Sha};
use crate::writeback::WriteBehind;

/// What a `put` asked for, in whichever protocol.
#[derive(Debug, Clone, Copy)]
pub(super) struct PutArgs<'a> {
    /// The path as the client gave it.
    pub(super) path: &'a str,
    /// The announced size; `None`: not known beforehand (a stream, a legacy put), so
    /// the limits are metered as the data arrives.
    pub(super) size: Option<u64>,
    /// Modification time to set, seconds since the epoch; `None` (the legacy protocol
    /// gives none): the file keeps the time it was written.
    pub(super) mtime: Option<i64>,
    /// Refuse to replace an existing file.
    pub(super) no_clobber: bool,
    /// Continue an interrupted upload of the same source if there is one (sized only).
    pub(super) resume: bool,
    /// The source's permission bits and whether to keep them exactly (`put -p`);
    /// `None` (a client from before modes, the legacy protocol): the partial's 0600.
    pub(super) mode: Option<(u32, bool)>,
}

impl<'a> PutArgs<'a> {
    /// A legacy `put`: no size, no time, no mode, no flags.
    pub(super) fn legacy(path: &'a str) -> PutArgs<'a> {
        PutArgs {
            path,
            size: None,
            mtime: None,
            no_clobber: false,
            resume: false,
            mode: None,
        }
    }
}

/// What has arrived so far.
#[derive(Debug)]
enum Arrived {
    Nothing,
    /// Native frames, with the sender's verdict.
    Frames(Received),
    /// Raw bytes to the end of a legacy data connection (no hash to compare).
    Raw(u64),
    /// A block delta built against the old version of the file (a `cpatch`), with its
    /// own verdict ([`delta_verdict`]).
    Delta(crate::delta::Applied),
}

/// A running upload: a reserved partial beside its target, and what came into it.
pub(super) struct Upload<'s> {
    session: &'s Session,
    path: String,
    target: UserPath,
    partial: Partial,
    size: Option<u64>,
    mtime: Option<i64>,
    mode: Option<(u32, bool)>,
    no_clobber: bool,
    /// The limits of an upload of unknown size.
    meter: Option<Meter<'s>>,
    offset: u64,
    /// The SHA-256 of the bytes before `offset`, carried on into the whole file's.
    ctx: Option<Sha>,
    prefix: Option<[u8; 32]>,
    /// A block size: hash the file's blocks on the way (for a later delta).
    blocks: Option<u64>,
    block_list: Option<(u64, Vec<u8>)>,
    arrived: Arrived,
    /// The sender was refused mid-stream and is still sending.
    unread: bool,
    /// A cut or cancelled upload keeps its partial for a resume: the client was told
    /// the offset and the partial is a resumable one (not a small file, not a
    /// pipelined `cput`).
    kept: bool,
    started: Instant,
    _running: Option<Registration<'s>>,
}

/// A committed upload.
#[derive(Debug)]
pub(super) struct Committed {
    /// The whole file's SHA-256 (native uploads).
    pub(super) sha: Option<[u8; 32]>,
    /// Bytes received in this upload (after the resume offset).
    pub(super) bytes: u64,
}

/// An upload received and verified but not committed (a `cput`: its commit waits
/// for its condition and its batch).
#[derive(Debug)]
pub(super) struct Verified {
    /// The partial, complete.
    pub(super) partial: Partial,
    /// Where it goes.
    pub(super) target: UserPath,
    /// The whole file's SHA-256.
    pub(super) sha: [u8; 32],
    /// Bytes received in this upload (a delta: the size of the file built).
    pub(super) bytes: u64,
    /// The block size and the block list hashed on the way, if asked for
    /// ([`Upload::hash_blocks`]).
    pub(super) block_list: Option<(u64, Vec<u8>)>,
}

impl Session {
    /// Starts an upload: resolves the target, checks the size limits, reserves the
    /// quota and creates (or, with `resume`, takes up again) the partial, and hashes
    /// what a resumed partial already holds. The one way in for every kind of upload,
    /// so every kind is limited by the same formula.
    pub(super) fn begin_put(&self, args: &PutArgs<'_>) -> Result<Upload<'_>, Error> {
        let announced = args.size.map(|size| (size, args.mtime.unwrap_or(0)));
        let (target, mut partial) =
            self.start_partial(args.path, announced, args.no_clobber, args.resume)?;
        // an upload of unknown size is limited as it arrives
        let meter = match args.size {
            Some(_) => None,
            None => Some(self.meter(&target, &partial)?),
        };
        let mut ctx = transfer::sha();
        let offset = resume_offset(&mut partial, args.size, &mut ctx)?;
        let prefix = (offset > 0).then(|| transfer::finish(ctx.clone()));
        if offset > 0 {
            self.log(
                Level::Info,
                format_args!(
                    "resuming {:?} at {offset} of {} bytes",
                    escape(args.path),
                    args.size.unwrap_or(0)
                ),
            );
        }
        Ok(Upload {
            session: self,
            path: args.path.to_string(),
            target,
            partial,
            size: args.size,
            mtime: args.mtime,
            mode: args.mode,
            no_clobber: args.no_clobber,
            meter,
            offset,
            ctx: Some(ctx),
            prefix,
            blocks: None,
            block_list: None,
            arrived: Arrived::Nothing,
            unread: false,
            kept: false,
            started: Instant::now(),
            _running: None,
        })
    }
}

/// How much of a resumed partial is already there, its bytes hashed into `ctx`. A
/// partial longer than the upload (it cannot be the same one) starts over.
fn resume_offset(partial: &mut Partial, size: Option<u64>, ctx: &mut Sha) -> Result<u64, Error> {
    let unreadable = || Error::Refused(ErrorCode::Io, "cannot read the partial upload".into());
    let len = partial.len().map_err(|_| unreadable())?;
    if len == 0 {
        return Ok(0);
    }
    if size.is_none_or(|size| len > size) {
        partial.file().set_len(0)?;
        return Ok(0);
    }
    let file = partial.file();
    file.rewind()
        .and_then(|()| transfer::hash_prefix(file, len, ctx))
        .map_err(|_| unreadable())?;
    Ok(len)
}

/// Data a client sends on after its stream was refused mid-way is read and dropped up
/// to this much (a fos client stops within a chunk or two); beyond it the connection
/// is dropped.
pub(super) const SKIP_LIMIT: u64 = 64 << 20;

impl Upload<'_> {
    /// Where the data starts: the length of a resumed partial, else 0.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The SHA-256 of the bytes before [`Upload::offset`] (a resumed upload only), for
    /// the client to compare with its own.
    pub(super) fn prefix(&self) -> Option<[u8; 32]> {
        self.prefix
    }

    /// Hashes each block of `block` bytes on the way in (a large file sent whole: its
    /// block list is kept for the next delta).
    pub(super) fn hash_blocks(&mut self, block: Option<u64>) {
        self.blocks = block;
    }

    /// Whether the sender of a refused stream is still sending: then read the rest
    /// with `transfer::skip` after the refusal.
    pub(super) fn unread(&self) -> bool {
        self.unread
    }

    /// Receives the native `D`… `Z` frames into the partial through write-behind.
    /// `offered`: the client was told the offset (`K [offset, prefix]`), so from now on
    /// a cut connection keeps what arrived for a resume, and the upload may be taken
    /// over by a resume elsewhere (or given up when its client falls silent). A write
    /// failure or a limit reached is an error here (and drops the partial); the
    /// sender's verdict is judged by [`Upload::finish`].
    pub(super) fn receive(&mut self, stream: &mut ServerTls, offered: bool) -> Result<(), Error> {
        let received = self.receive_frames(stream, offered);
        self.warn_if_failed(received)
    }

    fn receive_frames(&mut self, stream: &mut ServerTls, offered: bool) -> Result<(), Error> {
        if offered {
            self.partial.keep(true);
            self.kept = self.partial.resumable_id().is_some();
            let uploads = &self.session.shared.uploads;
            self._running = self
                .partial
                .resumable_id()
                .map(|id| uploads.register(id, stream.get_ref().tcp()));
            // a resumable upload lets go of its partial when a resume elsewhere asks,
            // or when its client falls silent: it may be resuming through another server
            if let Some(takeover) = self.partial.takeover_watch() {
                let idle = self.session.shared.config.transfer_timeout;
                stream
                    .sock
                    .watch(Some(Watch { takeover, idle }))
                    .map_err(Error::net)?;
            }
        }
        let ctx = self.ctx.take().unwrap_or_else(transfer::sha);
        let offset = self.offset;
        let _ = self.partial.file().seek(io::SeekFrom::End(0));
        let file: &File = self.partial.file();
        let (received, refusal) = match self.size {
            Some(size) => {
                let w = WriteBehind::buffered(file, offset, size - offset);
                let mut w = blockcache::Hashing::new(w, self.blocks);
                let got =
                    transfer::receive(stream, &mut w, size - offset, ctx, &mut |_| {}, &|| false)?;
                self.block_list = self.blocks.map(|b| (b, w.finish()));
                (got, None)
            }
            None => {
                let mut w = Metered {
                    inner: WriteBehind::buffered(file, 0, u64::MAX),
                    meter: self.meter.take(),
                    refusal: None,
                };
                let got = transfer::receive_until_error(
                    stream,
                    &mut w,
                    u64::MAX,
                    ctx,
                    &mut |_| {},
                    &|| false,
                )?;
                (got, w.refusal)
            }
        };
        if offered {
            stream.sock.watch(None).map_err(Error::net)?;
        }
        if let Some(err) = &received.local_error {
            self.partial.keep(false);
            // a stream is refused the moment it fails, before its end
            self.unread = !received.ended;
            return Err(match (refusal, err) {
                (Some(f), _) => f,
                (None, LocalError::Write(e)) => {
                    let (code, msg) = super::session::describe(&Error::from(io_clone(e)));
                    Error::Refused(code, format!("upload failed: {msg}"))
                }
                (None, LocalError::TooLong(n)) => Error::Refused(
                    ErrorCode::Invalid,
                    format!(
                        "more data ({}) than announced ({})",
                        offset + n,
                        self.size.unwrap_or(0)
                    ),
                ),
            });
        }
        self.arrived = Arrived::Frames(received);
        Ok(())
    }

    /// Copies a legacy data connection to its end into the partial, through
    /// write-behind, within the limits (the legacy protocol announces no size).
    pub(super) fn write_raw(&mut self, src: &mut impl Read) -> Result<(), Error> {
        let written = self.copy_raw(src);
        self.warn_if_failed(written)
    }

    fn copy_raw(&mut self, src: &mut impl Read) -> Result<(), Error> {
        let mut w = Metered {
            inner: WriteBehind::buffered(self.partial.file(), 0, u64::MAX),
            meter: self.meter.take(),
            refusal: None,
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // the Python client ends its upload with a bare TCP close
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if let Err(e) = w.write_all(&buf[..n]) {
                return Err(w.refusal.take().unwrap_or_else(|| e.into()));
            }
            total += n as u64;
        }
        w.flush()?;
        self.arrived = Arrived::Raw(total);
        Ok(())
    }

    /// Builds a sized upload from a block delta (a `cpatch`) as it arrives: the ranges
    /// sent, and every other range copied from `old` at the same offset
    /// (`delta::apply_stream`). Returns the ranges received, sorted and merged; a
    /// failure to size the partial is an error before the ranges are read
    /// ([`Upload::unread`]). The whole built file's SHA-256 is judged by the verdict.
    pub(super) fn receive_delta(
        &mut self,
        stream: &mut ServerTls,
        old: &File,
    ) -> Result<Vec<(u64, u64)>, Error> {
        let size = self.size.unwrap_or(0);
        let sized = self
            .partial
            .file()
            .try_clone()
            .and_then(|f| f.set_len(size).map(|()| f));
        let file = match sized {
            Ok(file) => file,
            Err(e) => {
                self.unread = true;
                return Err(Error::from(e));
            }
        };
        let mut applied = crate::delta::apply_stream(stream, old, &file, size)?;
        let changed = std::mem::take(&mut applied.changed);
        self.arrived = Arrived::Delta(applied);
        Ok(changed)
    }

    /// Judges what arrived: the sender's end, the size, the SHA-256. Only a clean end
    /// lets go of a partial kept for a resume: a cancelled sized upload keeps it.
    fn verdict(&mut self) -> Result<(u64, Option<[u8; 32]>), Error> {
        let got = match std::mem::replace(&mut self.arrived, Arrived::Nothing) {
            Arrived::Nothing => {
                return Err(Error::Refused(ErrorCode::Aborted, "nothing arrived".into()));
            }
            Arrived::Raw(n) => return Ok((n, None)),
            Arrived::Delta(applied) => {
                return delta_verdict(applied).map(|sha| (self.size.unwrap_or(0), Some(sha)));
            }
            Arrived::Frames(got) => got,
        };
        let aborted = |msg: &str| Err(Error::Refused(ErrorCode::Aborted, msg.into()));
        let Some(sender_sha) = got.sender_sha else {
            if got.discard || self.size.is_none() {
                self.partial.keep(false);
                return aborted("upload abandoned; the partial was discarded");
            }
            // only a partial that is kept says so (a small file's, a pipelined cput's
            // is not)
            if !self.kept {
                self.partial.keep(false);
                return aborted("upload cancelled by the client");
            }
            return aborted("upload cancelled by the client; the partial is kept for a resume");
        };
        // anything but a clean end is not worth resuming
        self.partial.keep(false);
        let total = self.offset + got.bytes;
        let announced = self.size.or(got.sender_size);
        if announced != Some(total) {
            return Err(Error::Refused(
                ErrorCode::Invalid,
                match announced {
                    Some(size) => format!("received {total} bytes, {size} were announced"),
                    None => "the end of the stream did not give its size".to_string(),
                },
            ));
        }
        if sender_sha != got.our_sha {
            return Err(Error::Refused(
                ErrorCode::Integrity,
                "SHA-256 mismatch: the upload was corrupted; nothing was saved".into(),
            ));
        }
        Ok((got.bytes, Some(got.our_sha)))
    }

    /// Ends a `put`: the verdict, then the announced modification time and mode, the
    /// commit (fsync and rename over the target), and the new file's hash for the sync
    /// hash cache.
    pub(super) fn finish(self) -> Result<Committed, Error> {
        let (session, path) = (self.session, self.path.clone());
        let finished = self.commit();
        if let Err(e) = &finished {
            warn_failed(session, &path, e);
        }
        finished
    }

    fn commit(mut self) -> Result<Committed, Error> {
        let (bytes, sha) = self.verdict()?;
        if let Some(mtime) = self.mtime {
            let t = UNIX_EPOCH
                .checked_add(Duration::from_secs(mtime.max(0) as u64))
                .unwrap_or(UNIX_EPOCH);
            let _ = self.partial.file().set_modified(t);
        }
        if let Some((sent, exact)) = self.mode {
            let mode = self.session.upload_mode(&self.target, sent, exact);
            self.partial.set_mode(mode)?;
        }
        let session = self.session;
        // the committed file, still open: its hash goes to the sync hash cache
        let committed = sha.and_then(|_| self.partial.file().try_clone().ok());
        session.commit(self.partial, &self.target, self.no_clobber)?;
        if let (Some(file), Some(sha)) = (&committed, &sha) {
            super::syncops::record_upload(session, file, sha);
        }
        session.log(
            Level::Info,
            format_args!(
                "received {:?}: {bytes} bytes in {:.3?}{}",
                escape(&self.path),
                self.started.elapsed(),
                sha.map_or_else(String::new, |s| format!(" sha256 {}", hex(&s)))
            ),
        );
        Ok(Committed { sha, bytes })
    }

    /// Ends a `cput`'s receiving: the verdict, without the commit.
    pub(super) fn verified(mut self) -> Result<Verified, Error> {
        let verdict = self.verdict();
        let (bytes, sha) = self.warn_if_failed(verdict)?;
        let sha = sha.ok_or_else(|| Error::Refused(ErrorCode::Invalid, "no SHA-256".into()))?;
        Ok(Verified {
            partial: self.partial,
            target: self.target,
            sha,
            bytes,
            block_list: self.block_list,
        })
    }
}

impl Upload<'_> {
    /// Logs a failure of this upload as a warning (see [`warn_failed`]).
    fn warn_if_failed<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            warn_failed(self.session, &self.path, e);
        }
        r
    }
}

/// An upload that failed once begun (its data refused, cut short, corrupted, not
/// written, not committed) is a warning in the log, naming the file, as before the
/// upload had a module of its own: `--quiet` keeps warnings, and a disk that fills or
/// a network that corrupts must show there. A failed connection is the session's end,
/// logged as such.
fn warn_failed(session: &Session, path: &str, e: &Error) {
    if matches!(e, Error::Net(_)) {
        return;
    }
    let (_, msg) = super::session::describe(e);
    session.log(
        Level::Warn,
        format_args!("put {:?} failed: {msg}", escape(path)),
    );
}

/// Judges a delta's build: the first failure, else the sender's end and its SHA-256
/// against the file built. Nothing of a delta is kept for a resume.
fn delta_verdict(applied: crate::delta::Applied) -> Result<[u8; 32], Error> {
    use crate::delta::RangeError;
    let refused = |code, msg: &str| Err(Error::Refused(code, msg.to_string()));
    match (applied.failure, applied.sender, applied.ours) {
        (Some(RangeError::Write(e)), _, _) if e.kind() == io::ErrorKind::UnexpectedEof => refused(
            ErrorCode::Invalid,
            "the patch leaves a range the old file does not have",
        ),
        (Some(RangeError::Write(e)), _, _) => Err(Error::from(e)),
        (Some(RangeError::Invalid(why)), _, _) => refused(ErrorCode::Invalid, why),
        (None, None, _) => refused(ErrorCode::Aborted, "upload cancelled by the client"),
        (None, Some(sender), Some(ours)) if ours == sender => Ok(ours),
        (None, Some(_), _) => refused(
            ErrorCode::Integrity,
            "SHA-256 mismatch: the patched file is not the client's; nothing was saved",
        ),
    }
}

/// A copy of an I/O error for a reply (the original stays with the transfer's result).
pub(super) fn io_clone(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}
