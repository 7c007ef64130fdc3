//! The server side of `sync`'s writes: conditional uploads, removals and renames
//! (`cput`, `crm`, `cmv`, plus `cmkdir`, `crmdir`), and group durability (`cflush`).
//!
//! **Conditions.** Each write carries what the client's plan saw at the path
//! ([`Expect`]): nothing, a directory, or a file with a given SHA-256 (checked
//! through the hash cache, so against the file's current stat). The check and the
//! write happen together under the user's sync lock (an `flock` on a reserved file in
//! the user's root, so servers sharing the storage serialise too); a path that no
//! longer matches is refused with `changed` and left alone.
//!
//! **Group durability.** A `cput` that must be durable is received into its partial
//! and held. When the client sends `cflush`, or enough is held, the server makes the
//! data of every held partial durable with one `syncfs`, renames them into place (each
//! under its condition), makes the renames durable with a second `syncfs`, and only
//! then sends the held replies. Replies always go out in request order, so anything
//! answered after a held upload waits with it. Any request outside this family
//! flushes first.
//!
//! **Pipelining.** A `cput` without the resume flag is followed by its content at
//! once; a refused one has its content read and discarded, so a client may send many
//! requests before reading any reply.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::blockcache;
use super::conn::ServerTls;
use super::hashcache::{self, HashCache, Record};
use super::manifest;
use super::session::{Error, Session, describe};
use super::upload::{PutArgs, Verified, io_clone};
use crate::log::{Level, escape};
use crate::protocol::command::hex;
use crate::protocol::frame::{Kind, encode_fields, write_frame};
use crate::protocol::sync::{DELTA_MIN, Expect, SyncRequest, block_size_for};
use crate::protocol::{self, ErrorCode};
use crate::sandbox::{self, Partial, UserPath};
use crate::sys;
use crate::transfer;

/// The lock conditional writes take, in the user's root (reserved).
const LOCK_NAME: &CStr = c".fos-sync-lock";
/// Uploads held for durability before the server flushes on its own.
const MAX_HELD: usize = 64;
/// Bytes of held uploads before the server flushes on its own.
const MAX_HELD_BYTES: u64 = 64 << 20;

/// A reply: the fields of an `Ok`, or why not.
pub(super) type Outcome = Result<Vec<Vec<u8>>, Error>;

/// An upload received and verified, waiting for the batch's durability.
#[derive(Debug)]
pub(super) struct Held {
    partial: Partial,
    target: UserPath,
    expect: Expect,
    sha: [u8; 32],
}

#[derive(Debug)]
enum Queued {
    Reply(Outcome),
    Commit(Box<Held>),
}

/// A session's sync state: its view of the hash cache and the replies held back.
#[derive(Debug, Default)]
pub struct SyncState {
    pub(super) cache: HashCache,
    queue: VecDeque<Queued>,
    held: usize,
    held_bytes: u64,
}

fn changed() -> Error {
    Error::Refused(
        ErrorCode::Changed,
        "changed on the server since the sync looked at it".into(),
    )
}

fn send_outcome(
    stream: &mut ServerTls,
    session: &Session,
    o: Outcome,
) -> Result<(), protocol::Error> {
    match o {
        Ok(fields) => Ok(write_frame(stream, Kind::Ok, &encode_fields(&fields))?),
        Err(e) => super::native::write_error(stream, Some(session), e),
    }
}

/// Serves one request of the sync family.
pub(super) fn handle(
    stream: &mut ServerTls,
    session: &mut Session,
    req: SyncRequest,
) -> Result<(), protocol::Error> {
    match req {
        SyncRequest::Manifest { path, hashes } => {
            flush(stream, session)?;
            manifest::serve(stream, session, &path, hashes)
        }
        SyncRequest::Flush => {
            flush(stream, session)?;
            write_frame(stream, Kind::Ok, &encode_fields::<&[u8]>(&[]))?;
            Ok(stream.flush()?)
        }
        SyncRequest::Put {
            path,
            size,
            mtime_ns,
            mode,
            expect,
            resume,
            no_fsync,
        } => {
            let up = SyncPut::new(session, &path, size, mtime_ns, mode, expect, no_fsync);
            if resume {
                flush(stream, session)?;
                put_resumable(stream, session, &up)
            } else {
                put_pipelined(stream, session, &up)
            }
        }
        SyncRequest::Rm { path, expect } => {
            let o = rm(session, &path, expect);
            reply(stream, session, o)
        }
        SyncRequest::Mv { from, to, expect } => {
            let o = mv(session, &from, &to, expect);
            reply(stream, session, o)
        }
        SyncRequest::Mkdir(path) => {
            let o = mkdir(session, &path);
            reply(stream, session, o)
        }
        SyncRequest::Rmdir(path) => {
            let o = rmdir(session, &path);
            reply(stream, session, o)
        }
        SyncRequest::Fetch {
            path,
            expect,
            block,
            blocks,
        } => {
            flush(stream, session)?;
            super::delta::fetch(stream, session, &path, expect, block, &blocks)
        }
        SyncRequest::Blocks { path, block } => {
            flush(stream, session)?;
            super::delta::blocks(stream, session, &path, block)
        }
        SyncRequest::Patch {
            path,
            size,
            mtime_ns,
            mode,
            block,
            expect,
            no_fsync,
        } => {
            flush(stream, session)?;
            let up = SyncPut::new(session, &path, size, mtime_ns, mode, expect, no_fsync);
            super::delta::patch(stream, session, &up, block)
        }
    }
}

/// Answers now if nothing is held, else queues the answer behind what is.
pub(super) fn reply(
    stream: &mut ServerTls,
    session: &mut Session,
    o: Outcome,
) -> Result<(), protocol::Error> {
    // a failed connection has nobody to answer, now or later
    if let Err(Error::Net(e)) = o {
        return Err(e);
    }
    if session.sync_parts().1.queue.is_empty() {
        send_outcome(stream, session, o)?;
        stream.flush()?;
    } else {
        session.sync_parts().1.queue.push_back(Queued::Reply(o));
    }
    Ok(())
}

/// Makes every held upload durable and visible (see the module docs) and sends every
/// held reply, in order. A no-op when nothing is held.
pub(super) fn flush(stream: &mut ServerTls, session: &mut Session) -> Result<(), protocol::Error> {
    let (sb, state) = session.sync_parts();
    if state.queue.is_empty() {
        return Ok(());
    }
    let root = sb.root_fd();
    let durable = state.held > 0;
    // the data of every partial first: a crash after a rename never leaves an empty file
    let synced = if durable { sys::syncfs(root) } else { Ok(()) };
    let mut records = Vec::new();
    let lock = sync_lock(root);
    let mut replies = Vec::with_capacity(state.queue.len());
    let mut committed = false;
    while let Some(q) = state.queue.pop_front() {
        let o = match q {
            Queued::Reply(o) => o,
            Queued::Commit(h) => {
                let r = match (&synced, &lock) {
                    (Err(e), _) | (_, Err(e)) => Err(Error::from(io_clone(e))),
                    (Ok(()), Ok(_)) => {
                        commit_checked(sb, &mut state.cache, *h, false, &mut records)
                    }
                };
                committed |= r.is_ok();
                r
            }
        };
        replies.push(o);
    }
    drop(lock);
    state.held = 0;
    state.held_bytes = 0;
    if durable
        && committed
        && let Err(e) = sys::syncfs(root)
    {
        // the renames may not survive a crash: no upload of the batch is acknowledged
        let (code, msg) = describe(&Error::from(e));
        for r in replies.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(Error::Refused(code, msg.clone()));
        }
    }
    let _ = hashcache::append(root, &records);
    state.cache.note(&records);
    for o in replies {
        send_outcome(stream, session, o)?;
    }
    stream.flush()?;
    Ok(())
}

/// Takes the user's sync lock (held while the returned file is open).
fn sync_lock(root: BorrowedFd<'_>) -> io::Result<File> {
    let fd = sys::openat(
        root,
        LOCK_NAME,
        sys::oflag::RDWR | sys::oflag::CREAT | sys::oflag::NOFOLLOW,
        0o600,
    )?;
    let f = File::from(fd);
    f.lock()?;
    Ok(f)
}

/// Whether the path holds what the plan expected. Call under the sync lock.
fn check(
    sb: &sandbox::Sandbox,
    cache: &mut HashCache,
    dir: BorrowedFd<'_>,
    name: &CStr,
    expect: Expect,
) -> Result<(), Error> {
    let st = match sys::lstatat(dir, name) {
        Ok(st) => Some(st),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let ok = match (expect, st) {
        (Expect::Any, _) => true,
        (Expect::Absent, st) => st.is_none(),
        (Expect::Dir, Some(st)) => st.is_dir(),
        (Expect::Sha(want), Some(st)) if st.is_file() => {
            hashcache::current_sha(cache, sb.root_fd(), dir, name)? == Some(want)
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(changed()) }
}

/// Renames a verified upload into place if its path still matches, and notes its
/// hash record. Call under the sync lock.
fn commit_checked(
    sb: &sandbox::Sandbox,
    cache: &mut HashCache,
    mut h: Held,
    fsync: bool,
    records: &mut Vec<Record>,
) -> Result<Vec<Vec<u8>>, Error> {
    let (dir, name) = sb.open_parent(&h.target)?;
    check(sb, cache, dir.as_fd(), &name, h.expect)?;
    let file = h.partial.file().try_clone()?;
    match h
        .partial
        .commit(&h.target, h.expect == Expect::Absent, fsync)
    {
        Ok(()) => {}
        // created by someone else between the check and here (a plain put)
        Err(sandbox::Error::Exists) => return Err(changed()),
        Err(e) => return Err(e.into()),
    }
    if let Ok(st) = sys::lstatat(file.as_fd(), c"") {
        records.push(Record::of(&st, h.sha));
    }
    Ok(vec![hex(&h.sha).into_bytes()])
}

/// What a `cput` or `cpatch` announced.
pub(super) struct SyncPut<'a> {
    pub(super) path: &'a str,
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) mode: u32,
    pub(super) expect: Expect,
    pub(super) durable: bool,
}

impl<'a> SyncPut<'a> {
    /// The upload as its request announced it: durable unless the server runs
    /// `--no-fsync` or the client asked for none.
    fn new(
        session: &Session,
        path: &'a str,
        size: u64,
        mtime_ns: i64,
        mode: u32,
        expect: Expect,
        no_fsync: bool,
    ) -> SyncPut<'a> {
        SyncPut {
            path,
            size,
            mtime_ns,
            mode,
            expect,
            durable: session.shared.config.fsync && !no_fsync,
        }
    }
}

/// Refuses early what is bound to be refused at commit (a file that changed, a
/// target that exists): no need to store the content first.
pub(super) fn precheck(
    session: &mut Session,
    target: &UserPath,
    expect: Expect,
) -> Result<(), Error> {
    if expect == Expect::Dir {
        return Err(Error::Refused(
            ErrorCode::Invalid,
            "an upload cannot expect a directory".into(),
        ));
    }
    if target.is_root() {
        return Err(Error::Sandbox(sandbox::Error::IsADirectory));
    }
    let (sb, state) = session.sync_parts();
    let (dir, name) = sb.open_parent(target)?;
    check(sb, &mut state.cache, dir.as_fd(), &name, expect)
}

/// Sets the announced modification time and permission bits on the finished partial.
pub(super) fn finish_partial(partial: &mut Partial, mtime_ns: i64, mode: u32) {
    let t = if mtime_ns >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_nanos(mtime_ns as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_nanos(mtime_ns.unsigned_abs()))
    };
    let f = partial.file();
    if let Some(t) = t {
        let _ = f.set_modified(t);
    }
    // the owner keeps read and write: the server must be able to serve and replace it
    let _ = f.set_permissions(std::fs::Permissions::from_mode((mode & 0o777) | 0o600));
}

/// Reads and discards the content that follows a refused pipelined upload.
pub(super) fn drain(stream: &mut ServerTls, size: u64) -> Result<(), protocol::Error> {
    transfer::discard(stream, size)?;
    Ok(())
}

fn log_received(session: &Session, path: &str, bytes: u64, started: Instant) {
    session.log(
        Level::Info,
        format_args!(
            "sync received {:?}: {bytes} bytes in {:.3?}",
            escape(path),
            started.elapsed()
        ),
    );
}

/// The condition of a `cput`, checked against the target as it is now.
fn condition(session: &mut Session, up: &SyncPut<'_>) -> Result<(), Error> {
    let target = session.path(up.path)?;
    precheck(session, &target, up.expect)
}

/// What both kinds of `cput` share once their condition holds: the upload begun as any
/// other, then (`resume`: after `Ok [offset, prefix]`, like `put`) received and
/// verified. A pipelined one refused at its start has its content read and dropped.
fn receive_cput(
    stream: &mut ServerTls,
    session: &Session,
    up: &SyncPut<'_>,
    resume: bool,
) -> Result<Verified, Error> {
    let args = PutArgs {
        path: up.path,
        size: Some(up.size),
        mtime: Some(up.mtime_ns.div_euclid(1_000_000_000)),
        no_clobber: false,
        resume,
        mode: None,
    };
    let mut upload = match session.begin_put(&args) {
        Ok(u) => u,
        Err(e) => {
            if !resume {
                drain(stream, up.size)?;
            }
            return Err(e);
        }
    };
    if resume {
        let offset = upload.offset();
        let prefix = upload.prefix().map_or_else(String::new, |p| hex(&p));
        let fields = [offset.to_string().into_bytes(), prefix.into_bytes()];
        write_frame(stream, Kind::Ok, &encode_fields(&fields)).map_err(Error::net)?;
        stream.flush().map_err(Error::net)?;
        // a large file sent whole from its start: its block list, for the next delta,
        // is hashed on the way
        upload.hash_blocks((offset == 0 && up.size >= DELTA_MIN).then(|| block_size_for(up.size)));
    }
    upload.receive(stream, resume)?;
    upload.verified()
}

/// A `cput` whose content follows at once.
fn put_pipelined(
    stream: &mut ServerTls,
    session: &mut Session,
    up: &SyncPut<'_>,
) -> Result<(), protocol::Error> {
    let started = Instant::now();
    if let Err(e) = condition(session, up) {
        drain(stream, up.size)?;
        return reply(stream, session, Err(e));
    }
    let mut v = match receive_cput(stream, session, up, false) {
        Ok(v) => v,
        Err(e) => return reply(stream, session, Err(e)),
    };
    finish_partial(&mut v.partial, up.mtime_ns, up.mode);
    log_received(session, up.path, v.bytes, started);
    let held = held(v.partial, v.target, up.expect, v.sha);
    if up.durable {
        let (_, state) = session.sync_parts();
        state.queue.push_back(Queued::Commit(Box::new(held)));
        state.held += 1;
        state.held_bytes += up.size;
        if state.held >= MAX_HELD || state.held_bytes >= MAX_HELD_BYTES {
            flush(stream, session)?;
        }
        return Ok(());
    }
    let o = commit_now(session, held, false);
    reply(stream, session, o)
}

/// Commits one upload at once, under the lock, and records its hash.
pub(super) fn commit_now(
    session: &mut Session,
    held: Held,
    fsync: bool,
) -> Result<Vec<Vec<u8>>, Error> {
    let (sb, state) = session.sync_parts();
    let root = sb.root_fd();
    let mut records = Vec::new();
    let r = {
        let _lock = sync_lock(root)?;
        commit_checked(sb, &mut state.cache, held, fsync, &mut records)
    };
    let _ = hashcache::append(root, &records);
    state.cache.note(&records);
    r
}

/// A resumable `cput`: answered `Ok [offset, prefix]` first, like `put`.
fn put_resumable(
    stream: &mut ServerTls,
    session: &mut Session,
    up: &SyncPut<'_>,
) -> Result<(), protocol::Error> {
    let started = Instant::now();
    let received = condition(session, up).and_then(|()| receive_cput(stream, session, up, true));
    let mut v = match received {
        Ok(v) => v,
        Err(e) => return reply(stream, session, Err(e)),
    };
    finish_partial(&mut v.partial, up.mtime_ns, up.mode);
    log_received(session, up.path, v.bytes, started);
    let committed = v.partial.file().try_clone().ok();
    let held = held(v.partial, v.target, up.expect, v.sha);
    let o = commit_now(session, held, up.durable);
    if let (Ok(_), Some((block, list)), Some(f)) = (&o, v.block_list, committed)
        && let Ok(st) = sys::lstatat(f.as_fd(), c"")
    {
        blockcache::store(session.sandbox().root_fd(), &st, block, &list);
    }
    reply(stream, session, o)
}

/// Refuses to touch the session's current directory or one above it.
fn guard_cwd(session: &Session, path: &UserPath) -> Result<(), Error> {
    let cwd = session.path(".")?;
    if path.is_root() || cwd.components().starts_with(path.components()) {
        return Err(Error::Refused(
            ErrorCode::Invalid,
            "cannot change the current directory or one above it".into(),
        ));
    }
    Ok(())
}

fn rm(session: &mut Session, path: &str, expect: Expect) -> Result<Vec<Vec<u8>>, Error> {
    let target = session.path(path)?;
    guard_cwd(session, &target)?;
    if matches!(expect, Expect::Dir | Expect::Absent) {
        return Err(Error::Refused(
            ErrorCode::Invalid,
            "crm removes files; crmdir removes directories".into(),
        ));
    }
    let (sb, state) = session.sync_parts();
    let (dir, name) = sb.open_parent(&target)?;
    let _lock = sync_lock(sb.root_fd())?;
    check(sb, &mut state.cache, dir.as_fd(), &name, expect)?;
    let st = sys::lstatat(dir.as_fd(), &name)?;
    if st.is_dir() {
        return Err(Error::Sandbox(sandbox::Error::IsADirectory));
    }
    sys::unlinkat(dir.as_fd(), &name, false)?;
    Ok(vec![])
}

fn mv(session: &mut Session, from: &str, to: &str, expect: Expect) -> Result<Vec<Vec<u8>>, Error> {
    let (src, dst) = (session.path(from)?, session.path(to)?);
    guard_cwd(session, &src)?;
    if dst.is_root() || dst.components().starts_with(src.components()) {
        return Err(Error::Refused(
            ErrorCode::Invalid,
            "cannot move a directory into itself".into(),
        ));
    }
    if expect == Expect::Absent {
        return Err(Error::Refused(
            ErrorCode::Invalid,
            "a rename needs something to rename".into(),
        ));
    }
    let (sb, state) = session.sync_parts();
    let (from_dir, from_name) = sb.open_parent(&src)?;
    let (to_dir, to_name) = sb.open_parent(&dst)?;
    let _lock = sync_lock(sb.root_fd())?;
    check(sb, &mut state.cache, from_dir.as_fd(), &from_name, expect)?;
    let before = sys::lstatat(from_dir.as_fd(), &from_name)?;
    // a valid record before the rename stays valid after it: only the ctime moves
    let record = state
        .cache
        .record(before.dev, before.ino)
        .filter(|r| r.matches(&before))
        .copied();
    match sys::renameat(from_dir.as_fd(), &from_name, to_dir.as_fd(), &to_name, true) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(sys::errno::EEXIST) => return Err(changed()),
        Err(e) => return Err(e.into()),
    }
    if let Some(r) = record
        && let Ok(after) = sys::lstatat(to_dir.as_fd(), &to_name)
        && (after.ino, after.size, after.mtime_ns) == (r.ino, r.size, r.mtime_ns)
    {
        let rec = [Record::of(&after, r.sha)];
        let _ = hashcache::append(sb.root_fd(), &rec);
        state.cache.note(&rec);
    }
    Ok(vec![dst.to_string().into_bytes()])
}

fn mkdir(session: &mut Session, path: &str) -> Result<Vec<Vec<u8>>, Error> {
    let target = session.path(path)?;
    let (sb, _) = session.sync_parts();
    match sb.mkdir(&target) {
        Ok(()) => Ok(vec![]),
        Err(sandbox::Error::Exists) if sb.check_dir(&target).is_ok() => Ok(vec![]),
        Err(e) => Err(e.into()),
    }
}

fn rmdir(session: &mut Session, path: &str) -> Result<Vec<Vec<u8>>, Error> {
    let target = session.path(path)?;
    guard_cwd(session, &target)?;
    let (sb, _) = session.sync_parts();
    sb.rmdir(&target)?;
    Ok(vec![])
}

/// Records the hash of a file a plain `put` has just committed (`file` is the
/// committed file, still open), so a later manifest or condition need not read it;
/// only for users who have a cache (who sync).
pub(super) fn record_upload(session: &Session, file: &File, sha: &[u8; 32]) {
    if let Ok(st) = sys::lstatat(file.as_fd(), c"")
        && st.is_file()
    {
        // the cache is an optimisation: failing to extend it changes no answer
        let _ = hashcache::append_if_present(session.sandbox().root_fd(), &[Record::of(&st, *sha)]);
    }
}

/// Whether uploads are held (for the dispatcher: anything else flushes first).
pub(super) fn holding(session: &mut Session) -> bool {
    !session.sync_parts().1.queue.is_empty()
}

/// A verified upload to commit (for the delta module, which builds its own).
pub(super) fn held(partial: Partial, target: UserPath, expect: Expect, sha: [u8; 32]) -> Held {
    Held {
        partial,
        target,
        expect,
        sha,
    }
}
