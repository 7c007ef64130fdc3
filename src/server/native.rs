//! The native protocol, server side: hello, login, then one reply per request, with
//! file content streamed in-band (see `docs/PROTOCOL.md`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::Shared;
use super::conn::{Outcome, Refusal, ServerTls, Watch, login};
use super::session::{Failure, Metered, Session, describe};
use crate::log::{Level, escape};
use crate::protocol::command::hex;
use crate::protocol::frame::{
    Kind, MAX_PAYLOAD, MAX_PRELOGIN_PAYLOAD, decode_fields, encode_fields, read_frame_within,
    write_frame,
};
use crate::protocol::{self, ErrorCode, Request};
use crate::transfer;
use crate::writeback::{ReadBehind, WriteBehind};

/// Entries per `List` frame (each is well under 300 bytes, so frames stay small).
const LIST_BATCH: usize = 512;

fn send(stream: &mut ServerTls, kind: Kind, fields: &[&[u8]]) -> io::Result<()> {
    write_frame(stream, kind, &encode_fields(fields))?;
    stream.flush()
}

fn send_ok(stream: &mut ServerTls, fields: &[&[u8]]) -> io::Result<()> {
    send(stream, Kind::Ok, fields)
}

fn send_err(stream: &mut ServerTls, code: ErrorCode, msg: &str) -> io::Result<()> {
    send(
        stream,
        Kind::Error,
        &[code.as_str().as_bytes(), msg.as_bytes()],
    )
}

/// Serves a native session until the client leaves, fails, idles out or the server
/// shuts down.
pub(super) fn serve(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    busy: &AtomicBool,
) -> Outcome {
    let mut out = Outcome::default();
    let mut session = None;
    if let Err(e) = run(stream, peer, shared, busy, &mut session)
        && !matches!(e, protocol::Error::Closed)
    {
        out.error = Some(e.to_string());
    }
    out.user = session.map(|s| s.user);
    out
}

fn run(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    busy: &AtomicBool,
    session: &mut Option<Session>,
) -> Result<(), protocol::Error> {
    let mut buf = Vec::new();
    hello(stream, shared, &mut buf)?;
    loop {
        if shared.shutting_down() {
            send_err(stream, ErrorCode::Busy, "server is shutting down")?;
            return Ok(());
        }
        let limit = if session.is_some() {
            MAX_PAYLOAD
        } else {
            MAX_PRELOGIN_PAYLOAD
        };
        let kind = read_frame_within(stream, &mut buf, limit)?;
        busy.store(true, Ordering::SeqCst);
        let result = match kind {
            Kind::Request => match Request::decode(&buf) {
                Ok(req) => dispatch(stream, peer, shared, session, req),
                Err(e) => {
                    log(
                        shared,
                        peer,
                        session,
                        Level::Info,
                        format_args!("bad request: {e}"),
                    );
                    send_err(stream, ErrorCode::Invalid, &e.to_string())
                        .map(|()| true)
                        .map_err(Into::into)
                }
            },
            other => {
                send_err(stream, ErrorCode::Invalid, "expected a request")?;
                Err(protocol::Error::Unexpected(other))
            }
        };
        busy.store(false, Ordering::SeqCst);
        if !result? {
            return Ok(());
        }
    }
}

fn hello(stream: &mut ServerTls, shared: &Shared, buf: &mut Vec<u8>) -> Result<(), protocol::Error> {
    let kind = read_frame_within(stream, buf, MAX_PRELOGIN_PAYLOAD)?;
    let fields = decode_fields(buf)?;
    let version = match (kind, &fields[..]) {
        (Kind::Hello, [magic, version, ..]) if *magic == protocol::MAGIC => {
            std::str::from_utf8(version)
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
        }
        _ => None,
    };
    match version {
        Some(protocol::VERSION) => {}
        Some(v) => {
            send_err(
                stream,
                ErrorCode::Unsupported,
                &format!(
                    "protocol version {v} is not supported (this server speaks {})",
                    protocol::VERSION
                ),
            )?;
            return Err(protocol::Error::BadHello(format!("version {v}")));
        }
        None => {
            send_err(stream, ErrorCode::Invalid, "expected a fos hello")?;
            return Err(protocol::Error::BadHello("not a fos hello".into()));
        }
    }
    let version = protocol::VERSION.to_string();
    send(
        stream,
        Kind::Hello,
        &[
            protocol::MAGIC,
            version.as_bytes(),
            shared.config.name.as_bytes(),
            FEATURES.as_bytes(),
        ],
    )?;
    Ok(())
}

fn log(
    shared: &Shared,
    peer: SocketAddr,
    session: &Option<Session>,
    level: Level,
    event: std::fmt::Arguments<'_>,
) {
    shared.log.log(
        level,
        Some(peer),
        session.as_ref().map(|s| s.user.as_str()),
        event,
    );
}

/// Handles one request; `Ok(false)` ends the session.
fn dispatch(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    slot: &mut Option<Session>,
    req: Request,
) -> Result<bool, protocol::Error> {
    let Some(session) = slot.as_mut() else {
        return before_login(stream, peer, shared, slot, req);
    };
    // a password never reaches the log: describe_request shows only the verb for passwd
    let event = describe_request(&req);
    shared.log.log(
        Level::Info,
        Some(peer),
        Some(&session.user),
        format_args!("{event}"),
    );
    // uploads held for a sync's group durability are committed before anything else
    if !matches!(req, Request::Sync(_)) && super::syncops::holding(session) {
        super::syncops::flush(stream, session)?;
    }
    let reply: Result<Reply, Failure> = match req {
        Request::Sync(op) => {
            return super::syncops::handle(stream, peer, session, op).map(|()| true);
        }
        Request::Login { .. } => Err(Failure::Refused(
            ErrorCode::Invalid,
            "already logged in".into(),
        )),
        Request::Bye => {
            send_ok(stream, &[])?;
            return Ok(false);
        }
        Request::Discover => Ok(discover_reply(shared)),
        Request::Df => session.df().map(|d| {
            let limit = |v: Option<u64>| v.map_or_else(Vec::new, |v| v.to_string().into_bytes());
            Reply::Fields(vec![
                d.used.to_string().into_bytes(),
                limit(d.quota),
                limit(d.max_file_size),
            ])
        }),
        Request::Pwd => Ok(Reply::Fields(vec![session.pwd().into_bytes()])),
        Request::Cd(arg) => session
            .cd(arg.as_deref())
            .map(|p| Reply::Fields(vec![p.into_bytes()])),
        Request::Ls(arg) => session.ls(arg.as_deref()).map(Reply::List),
        Request::LsWithModes(arg) => session.ls(arg.as_deref()).map(Reply::ListWithModes),
        // the mode in a field of its own after the entry: clients from before it ignore it
        Request::Stat(arg) => session
            .stat(&arg)
            .map(|e| Reply::Fields(vec![e.encode(), mode_field(e.mode)])),
        Request::SetAttr { path, mode, mtime } => session
            .set_attrs(&path, mode, mtime)
            .map(|e| Reply::Fields(vec![mode_field(e.mode)])),
        Request::Cat(arg) => session
            .cat(&arg)
            .map(|c| Reply::Fields(vec![c.head, c.size.to_string().into_bytes()])),
        Request::Mkdir(arg) => session.mkdir(&arg).map(|()| Reply::Fields(vec![])),
        Request::Rmdir(arg) => session.rmdir(&arg).map(|()| Reply::Fields(vec![])),
        Request::Rm { path, recursive } => session
            .rm(&path, recursive)
            .map(|n| Reply::Fields(vec![n.to_string().into_bytes()])),
        Request::Mv { from, to } => session
            .mv(&from, &to)
            .map(|p| Reply::Fields(vec![p.into_bytes()])),
        Request::Glob(pattern) => session
            .glob(&pattern)
            .map(|paths| Reply::Fields(paths.into_iter().map(String::into_bytes).collect())),
        Request::Passwd { old, new } => {
            passwd(session, peer, &old, &new).map(|()| Reply::Fields(vec![]))
        }
        Request::Get {
            path,
            offset,
            prefix,
        } => {
            return get(stream, peer, session, &path, offset, prefix).map(|()| true);
        }
        Request::Put {
            path,
            size,
            mtime,
            no_clobber,
            resume,
        } => {
            let upload = Upload {
                path: &path,
                size: Some(size),
                mtime,
                no_clobber,
                resume,
                mode: None,
            };
            return put(stream, peer, session, &upload).map(|()| true);
        }
        Request::PutWithMode {
            path,
            size,
            mtime,
            no_clobber,
            resume,
            mode,
            exact,
        } => {
            let upload = Upload {
                path: &path,
                size,
                mtime,
                no_clobber,
                resume: resume && size.is_some(),
                mode: Some((mode, exact)),
            };
            return put(stream, peer, session, &upload).map(|()| true);
        }
        Request::PutStream {
            path,
            mtime,
            no_clobber,
        } => {
            let upload = Upload {
                path: &path,
                size: None,
                mtime,
                no_clobber,
                resume: false,
                mode: None,
            };
            return put(stream, peer, session, &upload).map(|()| true);
        }
    };
    match reply {
        Ok(Reply::Fields(fields)) => {
            let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
            send_ok(stream, &fields)?;
        }
        Ok(Reply::List(entries)) => send_list(stream, &entries, false)?,
        Ok(Reply::ListWithModes(entries)) => send_list(stream, &entries, true)?,
        Err(f) => reply_failure(stream, peer, Some(session), &f)?,
    }
    Ok(true)
}

/// A successful reply: fields of an `Ok` frame, or a listing (with the entries'
/// permission bits, for clients that asked for them).
enum Reply {
    Fields(Vec<Vec<u8>>),
    List(Vec<crate::protocol::Entry>),
    ListWithModes(Vec<crate::protocol::Entry>),
}

/// Permission bits as the octal text of a field; empty when not known.
fn mode_field(mode: Option<u32>) -> Vec<u8> {
    mode.map_or_else(Vec::new, |m| format!("{m:o}").into_bytes())
}

/// What this server can do beyond protocol version 1, announced in its hello (a space
/// separated list; clients from before it ignore the field): `modes`, permission bits
/// in `ls`, `stat`, `get` and `put`, and `setattr`.
pub const FEATURES: &str = "modes";

/// `K [name, version, session port, cluster]`: the cluster is empty for a server
/// that belongs to none (older clients read the first three fields only).
fn discover_reply(shared: &Shared) -> Reply {
    Reply::Fields(vec![
        shared.config.name.clone().into_bytes(),
        protocol::VERSION.to_string().into_bytes(),
        shared.session_port.to_string().into_bytes(),
        shared
            .config
            .cluster
            .clone()
            .unwrap_or_default()
            .into_bytes(),
    ])
}

/// `Ok` then the entries in `List` batches, then an empty `List`.
fn send_list(stream: &mut ServerTls, entries: &[crate::protocol::Entry], modes: bool) -> io::Result<()> {
    write_frame(stream, Kind::Ok, &encode_fields::<&[u8]>(&[]))?;
    for batch in entries.chunks(LIST_BATCH) {
        let fields: Vec<Vec<u8>> = batch
            .iter()
            .map(|e| match modes {
                true => e.encode_with_mode(),
                false => e.encode(),
            })
            .collect();
        write_frame(stream, Kind::List, &encode_fields(&fields))?;
    }
    write_frame(stream, Kind::List, b"")?;
    stream.flush()
}

fn reply_failure(
    stream: &mut ServerTls,
    peer: SocketAddr,
    session: Option<&Session>,
    f: &Failure,
) -> Result<(), protocol::Error> {
    let (code, msg) = describe(f);
    if let Some(s) = session {
        let detail = match f {
            Failure::Sandbox(e) => e.to_string(),
            Failure::Refused(_, m) => m.clone(),
        };
        s.shared.log.log(
            Level::Info,
            Some(peer),
            Some(&s.user),
            format_args!("refused: {detail}"),
        );
    }
    send_err(stream, code, &msg)?;
    Ok(())
}

fn describe_request(req: &Request) -> String {
    let q = |s: &str| format!("{:?}", escape(s));
    match req {
        Request::Cd(Some(p)) | Request::Ls(Some(p)) => format!("{} {}", req.verb(), q(p)),
        Request::Stat(p)
        | Request::Cat(p)
        | Request::Mkdir(p)
        | Request::Rmdir(p)
        | Request::Glob(p) => {
            format!("{} {}", req.verb(), q(p))
        }
        Request::Rm { path, recursive } => {
            format!("rm{} {}", if *recursive { " -r" } else { "" }, q(path))
        }
        Request::Mv { from, to } => format!("mv {} {}", q(from), q(to)),
        Request::Get { path, offset, .. } => format!("get {} from {offset}", q(path)),
        Request::Put { path, size, .. }
        | Request::PutWithMode {
            path,
            size: Some(size),
            ..
        } => format!("put {} ({size} bytes)", q(path)),
        Request::PutWithMode { path, .. } => {
            format!("put {} (size not known beforehand)", q(path))
        }
        Request::LsWithModes(Some(p)) => format!("ls {}", q(p)),
        Request::SetAttr { path, mode, mtime } => format!(
            "setattr {} mode {} mtime {}",
            q(path),
            mode.map_or("-".into(), |m| format!("{m:o}")),
            mtime.map_or("-".into(), |t| t.to_string())
        ),
        Request::PutStream { path, .. } => format!("put {} (size not known beforehand)", q(path)),
        other => other.verb().to_string(),
    }
}

fn before_login(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    slot: &mut Option<Session>,
    req: Request,
) -> Result<bool, protocol::Error> {
    match req {
        Request::Login { user, password } => match login(shared, &stream.sock, &user, &password) {
            Ok(session) => {
                stream.sock.logged_in(shared.config.idle_timeout)?;
                *slot = Some(session);
                send_ok(stream, &[])?;
                Ok(true)
            }
            Err(refusal) => {
                let (code, msg) = match refusal {
                    Refusal::Invalid => (ErrorCode::Auth, "invalid credentials".to_string()),
                    Refusal::Throttled(left) => (
                        ErrorCode::Throttled,
                        format!(
                            "too many failed logins; try again in {} s",
                            left.as_secs() + 1
                        ),
                    ),
                    Refusal::Busy => (ErrorCode::Busy, "server busy; try again later".to_string()),
                    Refusal::Storage => (
                        ErrorCode::Io,
                        "the server cannot open your storage".to_string(),
                    ),
                };
                send_err(stream, code, &msg)?;
                Ok(false)
            }
        },
        Request::Discover => {
            shared.log.log(
                Level::Info,
                Some(peer),
                None,
                format_args!("discovery request"),
            );
            if let Reply::Fields(f) = discover_reply(shared) {
                let fields: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
                send_ok(stream, &fields)?;
            }
            Ok(false)
        }
        Request::Bye => {
            send_ok(stream, &[])?;
            Ok(false)
        }
        _ => {
            send_err(stream, ErrorCode::Invalid, "log in first")?;
            Ok(false)
        }
    }
}

fn passwd(session: &Session, peer: SocketAddr, old: &str, new: &str) -> Result<(), Failure> {
    if new.is_empty() || new.contains(['\n', '\r']) {
        return Err(Failure::Refused(
            ErrorCode::Invalid,
            "the new password must be non-empty and on one line".into(),
        ));
    }
    super::conn::change_password(&session.shared, peer, &session.user, old, new)
}

fn get(
    stream: &mut ServerTls,
    peer: SocketAddr,
    session: &Session,
    path: &str,
    offset: u64,
    prefix: Option<[u8; 32]>,
) -> Result<(), protocol::Error> {
    let (mut file, st) = match session.open_read(path) {
        Ok(f) => f,
        Err(f) => return reply_failure(stream, peer, Some(session), &f),
    };
    if offset > st.size {
        return send_err(
            stream,
            ErrorCode::Invalid,
            "resume offset is past the end of the file",
        )
        .map_err(Into::into);
    }
    let mut ctx = transfer::sha();
    if let Some(expected) = prefix {
        let ok = transfer::hash_prefix(&mut file, offset, &mut ctx).is_ok()
            && transfer::finish(ctx.clone()) == expected;
        if !ok {
            return send_err(
                stream,
                ErrorCode::Integrity,
                "the partial download does not match the file; start over",
            )
            .map_err(Into::into);
        }
    }
    let (size, mtime, off) = (
        st.size.to_string(),
        st.mtime.to_string(),
        offset.to_string(),
    );
    // the mode last: clients from before it read the first three fields only
    let mode = mode_field(Some(st.mode & 0o7777));
    send_ok(
        stream,
        &[size.as_bytes(), mtime.as_bytes(), off.as_bytes(), &mode],
    )?;
    let started = Instant::now();
    let result = transfer::send(
        stream,
        &mut ReadBehind::new(&mut file, offset, st.size - offset),
        st.size - offset,
        ctx,
        &mut |_| {},
        &|| false,
    );
    let log = &session.shared.log;
    match result {
        Ok(sha) => {
            log.log(
                Level::Info,
                Some(peer),
                Some(&session.user),
                format_args!(
                    "sent {:?}: {} bytes in {:.3?} sha256 {}",
                    escape(path),
                    st.size - offset,
                    started.elapsed(),
                    hex(&sha)
                ),
            );
            Ok(())
        }
        Err(transfer::SendError::Net(e)) => Err(e.into()),
        Err(e) => {
            log.log(
                Level::Warn,
                Some(peer),
                Some(&session.user),
                format_args!("get {:?} aborted: {e:?}", escape(path)),
            );
            Ok(())
        }
    }
}

/// What a `put` asked for.
struct Upload<'a> {
    path: &'a str,
    /// `None`: a stream of unknown size, its size given at the end.
    size: Option<u64>,
    mtime: i64,
    no_clobber: bool,
    resume: bool,
    /// The source's permission bits and whether to keep them exactly (`put -p`);
    /// `None` (a client from before modes): the partial's 0600 stays.
    mode: Option<(u32, bool)>,
}

/// Data a client sends on after its stream was refused mid-way is read and dropped up
/// to this much (a fos client stops within a chunk or two); beyond it the connection
/// is dropped.
const SKIP_LIMIT: u64 = 64 << 20;

fn put(
    stream: &mut ServerTls,
    peer: SocketAddr,
    session: &Session,
    up: &Upload<'_>,
) -> Result<(), protocol::Error> {
    let log = &session.shared.log;
    let path = up.path;
    let refuse = |stream: &mut ServerTls, f: &Failure| -> Result<(), protocol::Error> {
        let (code, msg) = describe(f);
        log.log(
            Level::Info,
            Some(peer),
            Some(&session.user),
            format_args!("put refused: {msg}"),
        );
        send_err(stream, code, &msg).map_err(Into::into)
    };
    let announced = up.size.map(|size| (size, up.mtime));
    let (target, mut partial) = match session.begin_put(path, announced, up.no_clobber, up.resume) {
        Ok(p) => p,
        Err(f) => return refuse(stream, &f),
    };
    // a stream's limits are checked as it arrives
    let meter = match up.size {
        Some(_) => None,
        None => match session.meter(&target, &partial) {
            Ok(m) => Some(m),
            Err(f) => return refuse(stream, &f),
        },
    };
    // a resumed partial: hash what is already there, so the client can compare
    // prefixes and the final SHA-256 covers the whole file
    let mut ctx = transfer::sha();
    let offset = match partial.len() {
        Ok(n) => n,
        Err(f) => {
            return send_err(
                stream,
                describe(&Failure::from(f)).0,
                "cannot read the partial upload",
            )
            .map_err(Into::into);
        }
    };
    let prefix = if offset > 0 {
        use std::io::Seek;
        let file = partial.file();
        let hashed = file
            .rewind()
            .and_then(|()| transfer::hash_prefix(file, offset, &mut ctx));
        if hashed.is_err() {
            return send_err(stream, ErrorCode::Io, "cannot read the partial upload")
                .map_err(Into::into);
        }
        log.log(
            Level::Info,
            Some(peer),
            Some(&session.user),
            format_args!(
                "resuming {:?} at {offset} of {} bytes",
                escape(path),
                up.size.unwrap_or(0)
            ),
        );
        hex(&transfer::finish(ctx.clone()))
    } else {
        String::new()
    };
    send_ok(stream, &[offset.to_string().as_bytes(), prefix.as_bytes()])?;
    // from here a cut connection keeps what arrived, for a resume
    partial.keep(true);
    let _running = partial
        .resumable_id()
        .map(|id| session.shared.uploads.register(id, stream.get_ref().tcp()));
    // a resumable upload lets go of its partial when a resume elsewhere asks, or when
    // its client falls silent: the client may be resuming through another server
    if let Some(takeover) = partial.takeover_watch() {
        let idle = session.shared.config.transfer_timeout;
        stream.sock.watch(Some(Watch { takeover, idle }))?;
    }
    let started = Instant::now();
    let mut refusal = None;
    let received = {
        use std::io::Seek;
        let _ = partial.file().seek(std::io::SeekFrom::End(0));
        match (up.size, meter) {
            (Some(size), _) => {
                let mut w = WriteBehind::buffered(partial.file(), offset, size - offset);
                transfer::receive(stream, &mut w, size - offset, ctx, &mut |_| {}, &|| false)?
            }
            (None, meter) => {
                let mut w = Metered {
                    inner: WriteBehind::buffered(partial.file(), 0, u64::MAX),
                    meter,
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
                refusal = w.refusal;
                got
            }
        }
    };
    stream.sock.watch(None)?;
    let fail = |stream: &mut ServerTls, code: ErrorCode, msg: &str| -> Result<(), protocol::Error> {
        log.log(
            Level::Warn,
            Some(peer),
            Some(&session.user),
            format_args!("put {:?} failed: {msg}", escape(path)),
        );
        send_err(stream, code, msg).map_err(Into::into)
    };
    if let Some(err) = &received.local_error {
        partial.keep(false);
        let (code, msg) = match (refusal, err) {
            (Some(f), _) => describe(&f),
            (None, transfer::LocalError::Write(e)) => {
                let (code, msg) = describe(&Failure::from(io_clone(e)));
                (code, format!("upload failed: {msg}"))
            }
            (None, transfer::LocalError::TooLong(n)) => (
                ErrorCode::Invalid,
                format!(
                    "more data ({}) than announced ({})",
                    offset + n,
                    up.size.unwrap_or(0)
                ),
            ),
        };
        fail(stream, code, &msg)?;
        // a stream is refused the moment it fails, before its end: a fos client stops
        // sending when it sees the reply; the rest is dropped, with the partial
        if !received.ended {
            drop(partial);
            transfer::skip(stream, SKIP_LIMIT)?;
        }
        return Ok(());
    }
    let Some(sender_sha) = received.sender_sha else {
        if received.discard || up.size.is_none() {
            partial.keep(false);
            return fail(
                stream,
                ErrorCode::Aborted,
                "upload abandoned; the partial was discarded",
            );
        }
        return fail(
            stream,
            ErrorCode::Aborted,
            "upload cancelled by the client; reput resumes it",
        );
    };
    // anything but a clean end is not worth resuming
    partial.keep(false);
    let announced_size = up.size.or(received.sender_size);
    if announced_size != Some(offset + received.bytes) {
        return fail(
            stream,
            ErrorCode::Invalid,
            &match announced_size {
                Some(size) => format!(
                    "received {} bytes, {size} were announced",
                    offset + received.bytes
                ),
                None => "the end of the stream did not give its size".to_string(),
            },
        );
    }
    if sender_sha != received.our_sha {
        return fail(
            stream,
            ErrorCode::Integrity,
            "SHA-256 mismatch: the upload was corrupted; nothing was saved",
        );
    }
    let mtime = UNIX_EPOCH
        .checked_add(Duration::from_secs(up.mtime.max(0) as u64))
        .unwrap_or(UNIX_EPOCH);
    let _ = partial.file().set_modified(mtime);
    if let Some((sent, exact)) = up.mode
        && let Err(e) = partial.set_mode(session.upload_mode(&target, sent, exact))
    {
        let (code, msg) = describe(&Failure::from(e));
        return fail(stream, code, &msg);
    }
    // the committed file, still open: its hash goes to the sync hash cache
    let committed = partial.file().try_clone().ok();
    if let Err(f) = session.commit(partial, &target, up.no_clobber) {
        let (code, msg) = describe(&f);
        return fail(stream, code, &msg);
    }
    if let Some(file) = &committed {
        super::syncops::record_upload(session, file, &received.our_sha);
    }
    log.log(
        Level::Info,
        Some(peer),
        Some(&session.user),
        format_args!(
            "received {:?}: {} bytes in {:.3?} sha256 {}",
            escape(path),
            received.bytes,
            started.elapsed(),
            hex(&received.our_sha)
        ),
    );
    let sha = hex(&received.our_sha);
    match up.size {
        Some(_) => send_ok(stream, &[sha.as_bytes()])?,
        None => send_ok(
            stream,
            &[sha.as_bytes(), received.bytes.to_string().as_bytes()],
        )?,
    }
    Ok(())
}

fn io_clone(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}
