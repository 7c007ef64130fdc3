//! Carries a [`Plan`] out. Remote operations are pipelined over the one session: up
//! to [`BATCH`] requests (with their content) are written before any reply is read,
//! each batch ends with `cflush` (the server makes the batch durable with one
//! `syncfs` round and only then answers), and at most two batches are in flight.
//! Downloads land in local partial files; unless `--no-fsync`, a batch of them is
//! made durable with one `syncfs` before they are renamed into place.
//!
//! Every write is conditional on what the plan saw: the server answers `changed`
//! for a remote path that no longer matches, and a local path is checked against its
//! stat just before it is replaced or removed. Such a path is reported as a conflict
//! and left alone.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use super::localfs::{LocalPartial, LocalRoot};
use super::plan::{Cond, Op, Plan, Side};
use super::report::{Change, Event, Stats};
use super::tree::StatKey;
use crate::Error;
use crate::client::native::Native;
use crate::protocol::sync::{DELTA_MIN, Expect, SyncRequest, block_size_for};
use crate::protocol::{ErrorCode, Request};
use crate::transfer;

/// Requests written before the client waits for replies.
pub const BATCH: usize = 64;
/// Content bytes in one batch before it is closed early.
const BATCH_BYTES: u64 = 8 << 20;
/// Files at least this large go one at a time, resumably (as `put`/`get` do).
pub const BIG: u64 = 1 << 20;

/// How one operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done. For copies: the content's SHA-256, and the local file's stat.
    Done {
        /// Content hash (copies).
        sha: Option<[u8; 32]>,
        /// The local file's stat (copies, local renames).
        stat: Option<StatKey>,
    },
    /// The path changed since the plan: left alone.
    Changed,
    /// Not done (already reported).
    Failed,
}

/// A request in flight, and how its reply is read.
#[derive(Debug, Clone, Copy)]
enum Flight {
    /// A plain reply.
    Simple(usize),
    /// A download: its content follows its reply.
    Get(usize),
}

/// A download received and verified, waiting to be renamed into place.
struct HeldGet {
    k: usize,
    partial: LocalPartial,
    sha: [u8; 32],
}

#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    files: u64,
    files_done: u64,
    bytes: u64,
    bytes_done: u64,
}

/// The progress callback of one file's content (`size` bytes in all): for a file of
/// [`BIG`] bytes or more, at most every 100 ms, an [`Event::Progress`] that counts the
/// bytes moved so far on top of `base`.
fn content_progress<'s>(
    sink: &'s mut dyn FnMut(Event<'_>),
    base: Progress,
    size: u64,
) -> impl FnMut(u64) + 's {
    let mut last = Instant::now();
    move |b| {
        if size >= BIG && last.elapsed().as_millis() >= 100 {
            last = Instant::now();
            sink(Event::Progress {
                files_done: base.files_done,
                files: base.files,
                bytes_done: base.bytes_done + b,
                bytes: base.bytes,
            });
        }
    }
}

/// The executor.
pub struct Apply<'a> {
    n: &'a mut Native,
    local: &'a LocalRoot,
    ops: &'a [Op],
    /// The remote directory, absolute (`/` or `/a/b`).
    remote_root: String,
    fsync: bool,
    sink: &'a mut dyn FnMut(Event<'_>),
    cancel: &'a dyn Fn() -> bool,
    /// Totals for the summary.
    pub stats: Stats,
    /// One outcome per operation of the plan (`None`: not reached).
    pub outcomes: Vec<Option<Outcome>>,
    batch: Vec<Flight>,
    batch_bytes: u64,
    sent: VecDeque<Vec<Flight>>,
    held: Vec<HeldGet>,
    progress: Progress,
    last_progress: Instant,
    /// A path that changed under the sync is looked at again in another round
    /// (two-way): a note now, not a conflict.
    pub replan: bool,
}

/// `root/rel` as an absolute remote path.
pub fn remote_path(root: &str, rel: &str) -> String {
    if root == "/" {
        format!("/{rel}")
    } else {
        format!("{root}/{rel}")
    }
}

fn expect_remote(c: &Cond) -> Option<Expect> {
    match c {
        Cond::Absent => Some(Expect::Absent),
        Cond::Dir => Some(Expect::Dir),
        Cond::File { sha: Some(s), .. } => Some(Expect::Sha(*s)),
        // a remote file whose content the plan does not know is never replaced
        Cond::File { sha: None, .. } => None,
    }
}

fn op_path(op: &Op) -> &str {
    match op {
        Op::Mkdir { path, .. } | Op::Remove { path, .. } | Op::Copy { path, .. } => path,
        Op::Rename { from, .. } => from,
    }
}

impl<'a> Apply<'a> {
    /// An executor for `plan` over `n`, with LOCAL_DIR `local` and the remote
    /// directory `remote_root` (absolute).
    pub fn new(
        n: &'a mut Native,
        local: &'a LocalRoot,
        remote_root: &str,
        fsync: bool,
        sink: &'a mut dyn FnMut(Event<'_>),
        cancel: &'a dyn Fn() -> bool,
        plan: &'a Plan,
    ) -> Apply<'a> {
        let mut progress = Progress::default();
        for op in &plan.ops {
            if let Op::Copy { src, .. } = op {
                progress.files += 1;
                progress.bytes += src.size;
            }
        }
        Apply {
            n,
            local,
            ops: &plan.ops,
            remote_root: remote_root.to_string(),
            fsync,
            sink,
            cancel,
            stats: Stats::default(),
            outcomes: vec![None; plan.ops.len()],
            batch: Vec::new(),
            batch_bytes: 0,
            sent: VecDeque::new(),
            held: Vec::new(),
            progress,
            last_progress: Instant::now(),
            replan: false,
        }
    }

    fn rpath(&self, rel: &str) -> String {
        remote_path(&self.remote_root, rel)
    }

    fn emit_progress(&mut self, force: bool) {
        if !force && self.last_progress.elapsed().as_millis() < 100 {
            return;
        }
        self.last_progress = Instant::now();
        let p = self.progress;
        (self.sink)(Event::Progress {
            files_done: p.files_done,
            files: p.files,
            bytes_done: p.bytes_done,
            bytes: p.bytes,
        });
    }

    /// Runs every operation, phase by phase (each phase waits for the one before).
    /// A connection failure ends the run with an error (the outcomes so far stay
    /// recorded); any other failure is reported and the run carries on.
    pub fn run(&mut self) -> Result<(), Error> {
        let ops = self.ops;
        let mut i = 0;
        while i < ops.len() {
            let phase = ops[i].phase();
            let end = ops[i..]
                .iter()
                .position(|o| o.phase() != phase)
                .map_or(ops.len(), |n| i + n);
            for k in i..end {
                if (self.cancel)() {
                    self.drain()?;
                    return Err(Error::Cancelled);
                }
                self.start(k)?;
            }
            self.drain()?;
            i = end;
        }
        if self.fsync && self.stats.received_files > 0 {
            // the renames of the downloads
            let _ = self.local.syncfs();
        }
        Ok(())
    }

    fn fail(&mut self, k: usize, msg: &str) {
        self.outcomes[k] = Some(Outcome::Failed);
        self.stats.failed += 1;
        let path = op_path(&self.ops[k]);
        (self.sink)(Event::Failed { path, msg });
    }

    fn changed(&mut self, k: usize, side: Side) {
        self.outcomes[k] = Some(Outcome::Changed);
        if self.replan {
            let msg = format!(
                "{} changed during the sync; looking at it again",
                crate::log::escape(op_path(&self.ops[k]))
            );
            (self.sink)(Event::Note(&msg));
            return;
        }
        self.stats.conflicts += 1;
        let why = match side {
            Side::Remote => "changed on the server during the sync; left alone",
            Side::Local => "changed here during the sync; left alone",
        };
        let path = op_path(&self.ops[k]);
        (self.sink)(Event::Change(Change::Conflict(path, why)));
    }

    fn done(&mut self, k: usize, sha: Option<[u8; 32]>, stat: Option<StatKey>) {
        let ops = self.ops;
        let op = &ops[k];
        self.outcomes[k] = Some(Outcome::Done { sha, stat });
        if matches!(op, Op::Copy { .. }) {
            self.progress.files_done += 1;
        }
        let change = super::record(op, &mut self.stats);
        (self.sink)(Event::Change(change));
        if matches!(op, Op::Copy { .. }) {
            self.emit_progress(false);
        }
    }

    fn start(&mut self, k: usize) -> Result<(), Error> {
        let op = &self.ops[k];
        match (op.side(), op) {
            (Side::Local, Op::Copy { .. }) => self.get(k),
            (Side::Local, _) => {
                self.local_op(k);
                Ok(())
            }
            (Side::Remote, Op::Copy { .. }) => self.put(k),
            (Side::Remote, _) => self.remote_op(k),
        }
    }

    // ---- pipelining --------------------------------------------------------------

    fn push_flight(&mut self, f: Flight, bytes: u64) -> Result<(), Error> {
        self.batch.push(f);
        self.batch_bytes += bytes;
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES {
            self.close_batch()?;
        }
        Ok(())
    }

    /// Ends the batch with `cflush`; with two batches in flight, reads the older.
    fn close_batch(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.n.send_only(&Request::Sync(SyncRequest::Flush))?;
        self.n.flush()?;
        self.sent.push_back(std::mem::take(&mut self.batch));
        self.batch_bytes = 0;
        while self.sent.len() > 1 {
            if let Some(b) = self.sent.pop_front() {
                self.read_batch(b)?;
            }
        }
        Ok(())
    }

    /// Reads every reply still due, and commits the downloads held.
    fn drain(&mut self) -> Result<(), Error> {
        self.close_batch()?;
        while let Some(b) = self.sent.pop_front() {
            self.read_batch(b)?;
        }
        self.commit_held()
    }

    fn read_batch(&mut self, b: Vec<Flight>) -> Result<(), Error> {
        for f in b {
            match f {
                Flight::Simple(k) => {
                    let r = self.n.read_reply();
                    self.remote_reply(k, r)?;
                }
                Flight::Get(k) => self.get_reply(k)?,
            }
        }
        // the batch's cflush
        self.n.read_reply()?;
        self.commit_held()
    }

    // ---- remote side ---------------------------------------------------------------

    fn remote_op(&mut self, k: usize) -> Result<(), Error> {
        let op = &self.ops[k];
        let req = match op {
            Op::Mkdir { path, .. } => SyncRequest::Mkdir(self.rpath(path)),
            Op::Remove {
                path, dir: true, ..
            } => SyncRequest::Rmdir(self.rpath(path)),
            Op::Remove { path, expect, .. } => match expect_remote(expect) {
                Some(expect) => SyncRequest::Rm {
                    path: self.rpath(path),
                    expect,
                },
                None => {
                    self.fail(k, "its content on the server is not known; left alone");
                    return Ok(());
                }
            },
            Op::Rename {
                from, to, expect, ..
            } => match expect_remote(expect) {
                Some(expect) => SyncRequest::Mv {
                    from: self.rpath(from),
                    to: self.rpath(to),
                    expect,
                },
                None => {
                    self.fail(k, "its content on the server is not known; left alone");
                    return Ok(());
                }
            },
            Op::Copy { .. } => return Ok(()),
        };
        self.n.send_only(&Request::Sync(req))?;
        self.push_flight(Flight::Simple(k), 0)
    }

    fn remote_reply(&mut self, k: usize, r: Result<Vec<Vec<u8>>, Error>) -> Result<(), Error> {
        let op = &self.ops[k];
        match r {
            Ok(fields) => {
                let (sha, stat) = match op {
                    Op::Copy { src, .. } => (
                        fields
                            .first()
                            .and_then(|f| crate::protocol::command::unhex32(f)),
                        src.stat,
                    ),
                    _ => (None, None),
                };
                self.done(k, sha, stat);
            }
            Err(Error::Remote(ErrorCode::Changed, _)) => self.changed(k, Side::Remote),
            // already gone: what the removal wanted
            Err(Error::Remote(ErrorCode::NotFound, _)) if matches!(op, Op::Remove { .. }) => {
                self.done(k, None, None)
            }
            Err(Error::Remote(ErrorCode::NotEmpty, _)) => {
                self.outcomes[k] = Some(Outcome::Failed);
                let msg = format!(
                    "kept {}/ on the server: it holds what this sync leaves alone",
                    crate::log::escape(op_path(op))
                );
                (self.sink)(Event::Note(&msg));
            }
            Err(Error::Remote(_, m)) => self.fail(k, &m),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Opens the local source of an upload.
    fn source(&mut self, k: usize) -> Option<(std::fs::File, crate::sys::FileStat)> {
        let Op::Copy { from, .. } = &self.ops[k] else {
            return None;
        };
        match self.local.open_read(from) {
            Ok(f) => Some(f),
            Err(e) => {
                self.fail(k, &format!("cannot read it: {e}"));
                None
            }
        }
    }

    fn put(&mut self, k: usize) -> Result<(), Error> {
        let Op::Copy {
            path, src, expect, ..
        } = &self.ops[k]
        else {
            return Ok(());
        };
        let Some(expect) = expect_remote(expect) else {
            self.fail(k, "its content on the server is not known; left alone");
            return Ok(());
        };
        if src.size >= DELTA_MIN
            && let Expect::Sha(old) = expect
        {
            self.drain()?;
            if self.put_delta(k, old)? {
                return Ok(());
            }
        }
        if src.size >= BIG {
            self.drain()?;
            return self.put_resumable(k, expect);
        }
        let Some((mut file, st)) = self.source(k) else {
            return Ok(());
        };
        let req = SyncRequest::Put {
            path: self.rpath(path),
            size: st.size,
            mtime_ns: st.mtime_ns,
            mode: st.mode & 0o7777,
            expect,
            resume: false,
            no_fsync: !self.fsync,
        };
        self.n.send_only(&Request::Sync(req))?;
        self.send_content(&mut file, st.size, transfer::sha())?;
        self.progress.bytes_done += st.size;
        self.push_flight(Flight::Simple(k), st.size)
    }

    /// Sends `len` bytes of `file` as content; a local read failure aborts it (the
    /// server then answers `aborted`, which the reply reports).
    fn send_content(
        &mut self,
        file: &mut std::fs::File,
        len: u64,
        ctx: transfer::Sha,
    ) -> Result<(), Error> {
        let r = transfer::send(
            self.n.stream(),
            file,
            len,
            ctx,
            &mut content_progress(&mut *self.sink, self.progress, len),
            self.cancel,
        );
        match r {
            // a source that failed was aborted; the reply says so
            Ok(_) | Err(transfer::SendError::Source(_) | transfer::SendError::Answered) => Ok(()),
            Err(transfer::SendError::Cancelled) => Err(Error::Cancelled),
            Err(transfer::SendError::Net(e)) => Err(Error::Protocol(e.into())),
        }
    }

    /// What a delta step makes of a failed request: the server's version changed
    /// (noted; the op is done with) or the server cannot (or will not) do this delta
    /// (`Ok(false)`: send or fetch the whole file). A failed connection is an error.
    fn delta_refused(&mut self, k: usize, e: Error) -> Result<bool, Error> {
        match e {
            Error::Remote(ErrorCode::Changed | ErrorCode::NotFound, _) => {
                self.changed(k, Side::Remote);
                Ok(true)
            }
            Error::Remote(..) => Ok(false),
            e => Err(e),
        }
    }

    /// Sends a large file as a delta against the server's version (whose content the
    /// plan saw as `old`). `Ok(false)`: not worth it or not possible, send it whole.
    fn put_delta(&mut self, k: usize, old: [u8; 32]) -> Result<bool, Error> {
        let Op::Copy { path, .. } = &self.ops[k] else {
            return Ok(false);
        };
        let Some((mut file, st)) = self.source(k) else {
            return Ok(true);
        };
        let block = block_size_for(st.size);
        let remote = self.rpath(path);
        let fields = match self.n.call(&Request::Sync(SyncRequest::Blocks {
            path: remote.clone(),
            block,
        })) {
            Ok(f) => f,
            Err(e) => return self.delta_refused(k, e),
        };
        let field = |i: usize| fields.get(i).map(Vec::as_slice).unwrap_or_default();
        let their_block = std::str::from_utf8(field(1))
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        if crate::protocol::command::unhex32(field(2)) != Some(old) {
            self.changed(k, Side::Remote);
            return Ok(true);
        }
        if their_block != Some(block) {
            return Ok(false);
        }
        let req = SyncRequest::Patch {
            path: remote,
            size: st.size,
            mtime_ns: st.mtime_ns,
            mode: st.mode & 0o7777,
            block,
            expect: Expect::Sha(old),
            no_fsync: !self.fsync,
        };
        self.n.send_only(&Request::Sync(req))?;
        // the changed blocks go as they are found, while the server builds the file;
        // past half the file it is cheaper to send it whole
        let theirs = field(3).to_vec();
        let streamed = crate::delta::stream_blocks(
            self.n.stream(),
            &mut file,
            st.size,
            block,
            &theirs,
            st.size / 2,
        )
        .map_err(|e| Error::Protocol(e.into()))?;
        let r = self.n.read_reply();
        match streamed {
            crate::delta::Streamed::Sent(_) => {
                self.progress.bytes_done += st.size;
                self.remote_reply(k, r)?;
                Ok(true)
            }
            crate::delta::Streamed::TooMany => match r {
                Err(Error::Remote(..)) => Ok(false),
                Ok(_) => Err(Error::Protocol(crate::protocol::Error::BadFields)),
                Err(e) => Err(e),
            },
        }
    }

    fn put_resumable(&mut self, k: usize, expect: Expect) -> Result<(), Error> {
        let Op::Copy { path, .. } = &self.ops[k] else {
            return Ok(());
        };
        let Some((mut file, st)) = self.source(k) else {
            return Ok(());
        };
        let req = Request::Sync(SyncRequest::Put {
            path: self.rpath(path),
            size: st.size,
            mtime_ns: st.mtime_ns,
            mode: st.mode & 0o7777,
            expect,
            resume: true,
            no_fsync: !self.fsync,
        });
        for _ in 0..2 {
            let (offset, prefix) = match self.n.put_start(&req) {
                Ok(v) => v,
                Err(e @ Error::Remote(..)) => return self.remote_reply(k, Err(e)),
                Err(e) => return Err(e),
            };
            let mut ctx = transfer::sha();
            if offset > 0 {
                use std::io::{Seek, SeekFrom};
                // (`Native::put_start` refused an offset past the file)
                let ours = if file.rewind().is_ok() {
                    transfer::hash_prefix(&mut file, offset, &mut ctx)
                        .map(|()| crate::protocol::command::hex(&transfer::finish(ctx.clone())))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                if ours != prefix {
                    // what the server kept is not the start of this file
                    self.n.abort_discard()?;
                    continue;
                }
                file.seek(SeekFrom::Start(offset))?;
            }
            self.progress.bytes_done += offset;
            self.send_content(&mut file, st.size - offset, ctx)?;
            self.progress.bytes_done += st.size - offset;
            let r = self.n.read_reply();
            return self.remote_reply(k, r);
        }
        self.fail(k, "the server keeps a different partial upload");
        Ok(())
    }

    // ---- local side ------------------------------------------------------------

    /// Whether the local path is still what the plan saw.
    fn local_matches(&self, path: &str, c: &Cond) -> io::Result<bool> {
        let st = match self.local.stat(path) {
            Ok(st) => Some(st),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(match (c, st) {
            (Cond::Absent, st) => st.is_none(),
            (Cond::Dir, Some(st)) => st.is_dir(),
            (
                Cond::File {
                    stat: Some(want), ..
                },
                Some(st),
            ) => st.is_file() && StatKey::of(&st) == *want,
            _ => false,
        })
    }

    fn local_op(&mut self, k: usize) {
        let op = &self.ops[k];
        // Ok(None): the path changed since the plan
        let r: io::Result<Option<Option<StatKey>>> = match op {
            Op::Mkdir { path, .. } => self.local.mkdir(path).map(|()| Some(None)),
            Op::Remove {
                path, dir, expect, ..
            } => match self.local_matches(path, expect) {
                Ok(false) => Ok(None),
                Err(e) => Err(e),
                Ok(true) if *dir => match self.local.rmdir(path) {
                    Err(e) if e.raw_os_error() == Some(crate::sys::errno::ENOTEMPTY) => {
                        let msg = format!(
                            "kept {}/: it holds what this sync leaves alone",
                            crate::log::escape(path)
                        );
                        (self.sink)(Event::Note(&msg));
                        self.outcomes[k] = Some(Outcome::Failed);
                        return;
                    }
                    other => other.map(|()| Some(None)),
                },
                Ok(true) => self.local.remove_file(path).map(|()| Some(None)),
            },
            Op::Rename {
                from, to, expect, ..
            } => match self.local_matches(from, expect) {
                Ok(false) => Ok(None),
                Err(e) => Err(e),
                Ok(true) => match self.local.rename(from, to) {
                    Err(e) if e.raw_os_error() == Some(crate::sys::errno::EEXIST) => Ok(None),
                    Err(e) => Err(e),
                    // renaming changes the ctime: the index takes the new stat
                    Ok(()) => Ok(Some(
                        self.local
                            .stat(to)
                            .ok()
                            .filter(|s| s.is_file())
                            .map(|s| StatKey::of(&s)),
                    )),
                },
            },
            Op::Copy { .. } => return,
        };
        match r {
            Ok(Some(stat)) => self.done(k, None, stat),
            Ok(None) => self.changed(k, Side::Local),
            Err(e) => self.fail(k, &e.to_string()),
        }
    }

    // ---- downloads ---------------------------------------------------------------

    fn get(&mut self, k: usize) -> Result<(), Error> {
        let Op::Copy {
            from, src, expect, ..
        } = &self.ops[k]
        else {
            return Ok(());
        };
        if src.size >= DELTA_MIN && matches!(expect, Cond::File { stat: Some(_), .. }) {
            self.drain()?;
            if self.get_delta(k)? {
                return Ok(());
            }
        }
        if src.size >= BIG {
            // alone and resumable: a partial kept by an interrupted run continues
            self.drain()?;
            return self.get_resumable(k);
        }
        let req = Request::Get {
            path: self.rpath(from),
            offset: 0,
            prefix: None,
        };
        self.n.send_only(&req)?;
        self.push_flight(Flight::Get(k), src.size)
    }

    /// What a download makes of a refused `get`: the file is gone (it changed on the
    /// server since the plan), or another refusal (this op failed). A failed
    /// connection is an error.
    fn get_refused(&mut self, k: usize, e: Error) -> Result<(), Error> {
        match e {
            Error::Remote(ErrorCode::NotFound, _) => {
                self.changed(k, Side::Remote);
                Ok(())
            }
            Error::Remote(_, m) => {
                self.fail(k, &m);
                Ok(())
            }
            e => Err(e),
        }
    }

    /// Reads a pipelined download's reply and content.
    fn get_reply(&mut self, k: usize) -> Result<(), Error> {
        let Op::Copy { path, .. } = &self.ops[k] else {
            return Ok(());
        };
        let size: u64 = match self.n.read_reply() {
            Ok(f) => f
                .first()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                .ok_or(Error::Protocol(crate::protocol::Error::BadFields))?,
            Err(e) => return self.get_refused(k, e),
        };
        match self.local.partial(path, false) {
            Ok(p) => self.receive_into(k, p, size, 0, transfer::sha()),
            Err(e) => {
                // the content must still be read to stay in step
                transfer::discard(self.n.stream(), size)?;
                self.fail(k, &format!("cannot write here: {e}"));
                Ok(())
            }
        }
    }

    /// Receives a large file as a delta against the local version (the one the plan
    /// saw): only the blocks that differ come, the rest is taken from the old file,
    /// and the whole file's SHA-256 is checked. `Ok(false)`: not worth it or not
    /// possible, fetch it whole.
    fn get_delta(&mut self, k: usize) -> Result<bool, Error> {
        let Op::Copy {
            path,
            from,
            src,
            expect: Cond::File {
                stat: Some(want), ..
            },
            ..
        } = &self.ops[k]
        else {
            return Ok(false);
        };
        let Ok((mut old, st)) = self.local.open_read(path) else {
            return Ok(false);
        };
        if StatKey::of(&st) != *want {
            self.changed(k, Side::Local);
            return Ok(true);
        }
        let block = block_size_for(src.size);
        let remote = self.rpath(from);
        // the server makes its block list while this side hashes its old file
        self.n.send_only(&Request::Sync(SyncRequest::Blocks {
            path: remote.clone(),
            block,
        }))?;
        self.n.flush()?;
        let ours = super::delta::hash_blocks(&mut old, st.size, block, false);
        let fields = match self.n.read_reply() {
            Ok(f) => f,
            Err(e) => return self.delta_refused(k, e),
        };
        let field = |i: usize| fields.get(i).map(Vec::as_slice).unwrap_or_default();
        let num = |i: usize| std::str::from_utf8(field(i)).ok()?.parse::<u64>().ok();
        let (Some(size), Some(their_block), Some(whole)) =
            (num(0), num(1), crate::protocol::command::unhex32(field(2)))
        else {
            return Ok(false);
        };
        if size != src.size || src.sha.is_some_and(|s| s != whole) {
            self.changed(k, Side::Remote);
            return Ok(true);
        }
        let (ours, _) = ours?;
        let theirs = field(3);
        if their_block != block || theirs.len() as u64 != size.div_ceil(block) * 16 {
            return Ok(false);
        }
        let wanted: Vec<u32> = (0..size.div_ceil(block) as usize)
            .filter(|&i| ours.get(i).map(|h| &h[..]) != theirs.get(i * 16..(i + 1) * 16))
            .map(|i| i as u32)
            .collect();
        if wanted.len() as u64 * block * 2 > size {
            return Ok(false);
        }
        let mut partial = match self.local.partial(path, false) {
            Ok(p) => p,
            Err(e) => {
                self.fail(k, &format!("cannot write here: {e}"));
                return Ok(true);
            }
        };
        self.n.send_only(&Request::Sync(SyncRequest::Fetch {
            path: remote,
            expect: Expect::Sha(whole),
            block,
            blocks: wanted,
        }))?;
        self.n.flush()?;
        if let Err(e) = self.n.read_reply() {
            return self.delta_refused(k, e);
        }
        let file = partial.file().try_clone()?;
        let (ranges, sender, failure) = crate::delta::receive_ranges(self.n.stream(), &file, size)?;
        if failure.is_some() || sender != Some(whole) {
            return Ok(false);
        }
        file.set_len(size)?;
        match crate::delta::build(&old, &file, &crate::delta::merge(ranges), size) {
            Ok(sha) if sha == whole => {}
            // not what the server has: fetch it whole
            _ => return Ok(false),
        }
        partial.finish(src.mtime_ns, src.mode);
        self.progress.bytes_done += size;
        self.held.push(HeldGet {
            k,
            partial,
            sha: whole,
        });
        self.commit_held()?;
        Ok(true)
    }

    fn get_resumable(&mut self, k: usize) -> Result<(), Error> {
        let Op::Copy {
            path, from, src, ..
        } = &self.ops[k]
        else {
            return Ok(());
        };
        let mut partial = match self.local.partial(path, true) {
            Ok(p) => p,
            Err(e) => {
                self.fail(k, &format!("cannot write here: {e}"));
                return Ok(());
            }
        };
        let mut ctx = transfer::sha();
        let mut offset = partial.len().unwrap_or(0);
        if offset > src.size {
            offset = 0;
        }
        if offset > 0 {
            use std::io::Seek;
            let f = partial.file();
            if f.rewind().is_err() || transfer::hash_prefix(f, offset, &mut ctx).is_err() {
                offset = 0;
                ctx = transfer::sha();
            }
        }
        let remote = self.rpath(from);
        let prefix = (offset > 0).then(|| transfer::finish(ctx.clone()));
        let hdr = match self.n.get_start(&remote, offset, prefix) {
            // the server's file is not what the partial started: start over
            Err(Error::Remote(ErrorCode::Integrity | ErrorCode::Invalid, _)) if offset > 0 => {
                offset = 0;
                ctx = transfer::sha();
                self.n.get_start(&remote, 0, None)
            }
            other => other,
        };
        let hdr = match hdr {
            Ok(h) => h,
            Err(e) => return self.get_refused(k, e),
        };
        if offset == 0 {
            partial.file().set_len(0)?;
        }
        self.progress.bytes_done += offset;
        self.receive_into(k, partial, hdr.size, offset, ctx)?;
        self.commit_held()
    }

    /// Receives a download's content (after its header) into `partial` from
    /// `offset`, checks it and holds it for the batch's commit. A cut connection
    /// keeps a large partial for the next run.
    fn receive_into(
        &mut self,
        k: usize,
        mut partial: LocalPartial,
        size: u64,
        offset: u64,
        ctx: transfer::Sha,
    ) -> Result<(), Error> {
        let Op::Copy { src, .. } = &self.ops[k] else {
            return Ok(());
        };
        let base = self.progress;
        partial.keep = size >= BIG;
        let got = {
            use std::io::{Seek, SeekFrom};
            let _ = partial.file().seek(SeekFrom::Start(offset));
            let mut w =
                crate::writeback::WriteBehind::buffered(partial.file(), offset, size - offset);
            let got = transfer::receive(
                self.n.stream(),
                &mut w,
                size - offset,
                ctx,
                &mut content_progress(&mut *self.sink, base, size),
                self.cancel,
            )?;
            io::Write::flush(&mut w).map(|()| got)
        };
        self.progress.bytes_done = base.bytes_done + size.saturating_sub(offset);
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                partial.keep = false;
                self.fail(k, &format!("writing failed: {e}"));
                return Ok(());
            }
        };
        if got.sender_sha.is_none() {
            if (self.cancel)() {
                return Err(Error::Cancelled);
            }
            self.fail(k, "the server aborted the transfer");
            return Ok(());
        }
        partial.keep = false;
        if let Some(e) = got.local_error {
            self.fail(k, &format!("writing failed: {e:?}"));
            return Ok(());
        }
        if !got.is_intact() || offset + got.bytes != size {
            self.fail(
                k,
                "SHA-256 mismatch: the download was corrupted; nothing was saved",
            );
            return Ok(());
        }
        // not the file the plan saw: it changed on the server since
        if size != src.size || src.sha.is_some_and(|s| s != got.our_sha) {
            self.changed(k, Side::Remote);
            return Ok(());
        }
        partial.finish(src.mtime_ns, src.mode);
        self.held.push(HeldGet {
            k,
            partial,
            sha: got.our_sha,
        });
        Ok(())
    }

    /// Renames the downloads held so far into place (after one `syncfs` for all of
    /// their data, unless `--no-fsync`), each only if its target is still as planned.
    fn commit_held(&mut self) -> Result<(), Error> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        if self.fsync
            && let Err(e) = self.local.syncfs()
        {
            for h in held {
                self.fail(h.k, &format!("cannot flush to disk: {e}"));
            }
            return Ok(());
        }
        for h in held {
            let Op::Copy { expect, .. } = &self.ops[h.k] else {
                continue;
            };
            let ok = match expect {
                Cond::Absent => true,
                Cond::File {
                    stat: Some(want), ..
                } => match h.partial.target_stat() {
                    Ok(Some(st)) => st.is_file() && StatKey::of(&st) == *want,
                    _ => false,
                },
                _ => false,
            };
            if !ok {
                self.changed(h.k, Side::Local);
                continue;
            }
            match h.partial.commit(*expect == Cond::Absent) {
                Ok(st) => self.done(h.k, Some(h.sha), Some(StatKey::of(&st))),
                Err(e) if e.raw_os_error() == Some(crate::sys::errno::EEXIST) => {
                    self.changed(h.k, Side::Local)
                }
                Err(e) => self.fail(h.k, &e.to_string()),
            }
        }
        Ok(())
    }
}

/// The TCP bytes sent and received so far on the session (TLS included).
pub fn wire_bytes(n: &mut Native) -> Option<u64> {
    crate::sys::tcp_bytes(n.stream().sock.as_fd())
        .ok()
        .map(|(a, b)| a + b)
}
