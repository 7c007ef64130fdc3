//! The native protocol, server side: hello, login, then one reply per request, with
//! file content streamed in-band (see `docs/PROTOCOL.md`).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Shared;
use super::conn::{Outcome, ServerTls, login};
use super::session::{Error, Session, describe};
use super::upload::{PutArgs, SKIP_LIMIT};
use crate::log::{Level, escape};
use crate::protocol::command::hex;
use crate::protocol::frame::{
    Kind, MAX_PAYLOAD, MAX_PRELOGIN_PAYLOAD, decode_fields, encode_fields, read_frame_within,
    write_frame,
};
use crate::protocol::{self, ErrorCode, Request, verbs};
use crate::transfer;

/// Entries per `List` frame (each is well under 300 bytes, so frames stay small).
const LIST_BATCH: usize = 512;

fn send(stream: &mut ServerTls, kind: Kind, fields: &[&[u8]]) -> Result<(), protocol::Error> {
    write_frame(stream, kind, &encode_fields(fields))?;
    Ok(stream.flush()?)
}

fn send_ok(stream: &mut ServerTls, fields: &[&[u8]]) -> Result<(), protocol::Error> {
    send(stream, Kind::Ok, fields)
}

/// The one place a native `E [code, message]` frame is written (not flushed: see
/// [`respond`]): the wording from [`describe`], never a host path; the detail goes to
/// the log once the client is logged in. A failed connection ([`Error::Net`]) gets no
/// reply: it is returned, and ends the session.
pub(super) fn write_error(
    stream: &mut ServerTls,
    session: Option<&Session>,
    e: Error,
) -> Result<(), protocol::Error> {
    if let Error::Net(e) = e {
        return Err(e);
    }
    let (code, msg) = describe(&e);
    if let Some(s) = session {
        s.log(Level::Info, format_args!("refused: {e}"));
    }
    let fields: [&[u8]; 2] = [code.as_str().as_bytes(), msg.as_bytes()];
    write_frame(stream, Kind::Error, &encode_fields(&fields))?;
    Ok(())
}

/// Sends a handler's reply, whatever it is; `Ok(false)` ends the session.
fn respond(
    stream: &mut ServerTls,
    session: Option<&Session>,
    reply: Result<Reply, Error>,
) -> Result<bool, protocol::Error> {
    match reply {
        Ok(Reply::Fields(fields)) => {
            let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
            send_ok(stream, &fields)?;
        }
        Ok(Reply::List(entries)) => send_list(stream, &entries, false)?,
        Ok(Reply::ListWithModes(entries)) => send_list(stream, &entries, true)?,
        Ok(Reply::Sent) => {}
        Ok(Reply::Bye) => {
            send_ok(stream, &[])?;
            return Ok(false);
        }
        Err(e) => {
            write_error(stream, session, e)?;
            stream.flush()?;
        }
    }
    Ok(true)
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
            let busy = Error::Refused(ErrorCode::Busy, "server is shutting down".into());
            respond(stream, session.as_ref(), Err(busy))?;
            return Ok(());
        }
        let limit = if session.is_some() {
            MAX_PAYLOAD
        } else {
            MAX_PRELOGIN_PAYLOAD
        };
        let kind = read_frame_within(stream, &mut buf, limit)?;
        busy.store(true, Ordering::SeqCst);
        let go_on = match kind {
            Kind::Request => match Request::decode(&buf) {
                Ok(req) => dispatch(stream, peer, shared, session, req),
                Err(e) => {
                    if session.is_none() {
                        let event = format_args!("bad request: {e}");
                        shared.log.log(Level::Info, Some(peer), None, event);
                    }
                    let bad = Error::Refused(ErrorCode::Invalid, e.to_string());
                    respond(stream, session.as_ref(), Err(bad))
                }
            },
            other => {
                let bad = Error::Refused(ErrorCode::Invalid, "expected a request".into());
                respond(stream, session.as_ref(), Err(bad))?;
                Err(protocol::Error::Unexpected(other))
            }
        };
        busy.store(false, Ordering::SeqCst);
        if !go_on? {
            return Ok(());
        }
    }
}

fn hello(
    stream: &mut ServerTls,
    shared: &Shared,
    buf: &mut Vec<u8>,
) -> Result<(), protocol::Error> {
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
    let (refusal, why) = match version {
        Some(protocol::VERSION) => {
            let version = protocol::VERSION.to_string();
            let name = shared.config.name.as_bytes();
            let fields = [
                protocol::MAGIC,
                version.as_bytes(),
                name,
                FEATURES.as_bytes(),
            ];
            return send(stream, Kind::Hello, &fields);
        }
        Some(v) => (
            Error::Refused(
                ErrorCode::Unsupported,
                format!(
                    "protocol version {v} is not supported (this server speaks {})",
                    protocol::VERSION
                ),
            ),
            format!("version {v}"),
        ),
        None => (
            Error::Refused(ErrorCode::Invalid, "expected a fos hello".into()),
            "not a fos hello".into(),
        ),
    };
    respond(stream, None, Err(refusal))?;
    Err(protocol::Error::BadHello(why))
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
        let reply = before_login(stream, peer, shared, slot, req);
        // only a login goes on: anything else before it is answered, then the end
        return Ok(respond(stream, slot.as_ref(), reply)? && slot.is_some());
    };
    // a password never reaches the log: describe_request shows only the verb for passwd
    session.log(Level::Info, format_args!("{}", describe_request(&req)));
    // uploads held for a sync's group durability are committed before anything else
    if !matches!(req, Request::Sync(_)) && super::syncops::holding(session) {
        super::syncops::flush(stream, session)?;
    }
    let reply = handle(stream, shared, session, req);
    respond(stream, Some(session), reply)
}

/// One logged-in request, to its handler.
fn handle(
    stream: &mut ServerTls,
    shared: &Shared,
    session: &mut Session,
    req: Request,
) -> Result<Reply, Error> {
    let fields = |f: Vec<Vec<u8>>| Reply::Fields(f);
    let one = |s: String| Reply::Fields(vec![s.into_bytes()]);
    match req {
        Request::Sync(op) => super::syncops::handle(stream, session, op)
            .map(|()| Reply::Sent)
            .map_err(Error::Net),
        Request::Login { .. } => Err(Error::Refused(
            ErrorCode::Invalid,
            "already logged in".into(),
        )),
        Request::Bye => Ok(Reply::Bye),
        Request::Discover => Ok(discover_reply(shared)),
        Request::Df => session.df().map(|d| {
            let limit = |v: Option<u64>| v.map_or_else(Vec::new, |v| v.to_string().into_bytes());
            fields(vec![
                d.used.to_string().into_bytes(),
                limit(d.quota),
                limit(d.max_file_size),
            ])
        }),
        Request::Pwd => Ok(one(session.pwd())),
        Request::Cd(arg) => session.cd(arg.as_deref()).map(one),
        Request::Ls(arg) => session.ls(arg.as_deref()).map(Reply::List),
        Request::LsWithModes(arg) => session.ls(arg.as_deref()).map(Reply::ListWithModes),
        // the mode in a field of its own after the entry: clients from before it ignore it
        Request::Stat(arg) => session
            .stat(&arg)
            .map(|e| fields(vec![e.encode(), mode_field(e.mode)])),
        Request::SetAttr { path, mode, mtime } => session
            .set_attrs(&path, mode, mtime)
            .map(|e| fields(vec![mode_field(e.mode)])),
        Request::Cat(arg) => session
            .cat(&arg)
            .map(|c| fields(vec![c.head, c.size.to_string().into_bytes()])),
        Request::Mkdir(arg) => session.mkdir(&arg).map(|()| fields(vec![])),
        Request::Rmdir(arg) => session.rmdir(&arg).map(|()| fields(vec![])),
        Request::Rm { path, recursive } => session.rm(&path, recursive).map(|n| one(n.to_string())),
        Request::Mv { from, to } => session.mv(&from, &to).map(one),
        Request::Glob(pattern) => session
            .glob(&pattern)
            .map(|paths| fields(paths.into_iter().map(String::into_bytes).collect())),
        Request::Passwd { old, new } => passwd(session, &old, &new).map(|()| fields(vec![])),
        Request::Get {
            path,
            offset,
            prefix,
        } => get(stream, session, &path, offset, prefix),
        Request::Put {
            path,
            size,
            mtime,
            no_clobber,
            resume,
        } => {
            let args = PutArgs {
                path: &path,
                size: Some(size),
                mtime: Some(mtime),
                no_clobber,
                resume,
                mode: None,
            };
            put(stream, session, &args)
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
            let args = PutArgs {
                path: &path,
                size,
                mtime: Some(mtime),
                no_clobber,
                resume: resume && size.is_some(),
                mode: Some((mode, exact)),
            };
            put(stream, session, &args)
        }
        Request::PutStream {
            path,
            mtime,
            no_clobber,
        } => {
            let args = PutArgs {
                path: &path,
                size: None,
                mtime: Some(mtime),
                no_clobber,
                resume: false,
                mode: None,
            };
            put(stream, session, &args)
        }
    }
}

/// A reply: fields of an `Ok` frame, a listing (with the entries' permission bits, for
/// clients that asked for them), or none more (the handler has sent its own).
enum Reply {
    Fields(Vec<Vec<u8>>),
    List(Vec<crate::protocol::Entry>),
    ListWithModes(Vec<crate::protocol::Entry>),
    /// The handler has answered itself (a transfer, a sync request).
    Sent,
    /// `K []`, then the session ends.
    Bye,
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
fn send_list(
    stream: &mut ServerTls,
    entries: &[crate::protocol::Entry],
    modes: bool,
) -> Result<(), protocol::Error> {
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
    Ok(stream.flush()?)
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

/// Before login: only the verbs the table lets in (`login`, `discover`, `bye`).
fn before_login(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    slot: &mut Option<Session>,
    req: Request,
) -> Result<Reply, Error> {
    let log_in_first = || Error::Refused(ErrorCode::Invalid, "log in first".into());
    if verbs::find(req.verb()).is_none_or(|v| v.login) {
        return Err(log_in_first());
    }
    match req {
        Request::Login { user, password } => {
            let session = login(shared, &stream.sock, &user, &password)?;
            let idle = shared.config.idle_timeout;
            stream.sock.logged_in(idle).map_err(Error::net)?;
            *slot = Some(session);
            Ok(Reply::Fields(vec![]))
        }
        Request::Discover => {
            let event = format_args!("discovery request");
            shared.log.log(Level::Info, Some(peer), None, event);
            Ok(discover_reply(shared))
        }
        Request::Bye => Ok(Reply::Bye),
        _ => Err(log_in_first()),
    }
}

fn passwd(session: &Session, old: &str, new: &str) -> Result<(), Error> {
    if new.is_empty() || new.contains(['\n', '\r']) {
        return Err(Error::Refused(
            ErrorCode::Invalid,
            "the new password must be non-empty and on one line".into(),
        ));
    }
    super::conn::change_password(&session.shared, session.peer, &session.user, old, new)
}

/// `get`: `K [size, mtime, offset, mode]`, then the file from the offset as frames.
fn get(
    stream: &mut ServerTls,
    session: &Session,
    path: &str,
    offset: u64,
    prefix: Option<[u8; 32]>,
) -> Result<Reply, Error> {
    let mut download = session.begin_get(path, offset, prefix)?;
    let (size, mtime) = (download.size().to_string(), download.mtime().to_string());
    // the mode last: clients from before it read the first three fields only
    let mode = mode_field(Some(download.mode()));
    let off = offset.to_string();
    send_ok(
        stream,
        &[size.as_bytes(), mtime.as_bytes(), off.as_bytes(), &mode],
    )?;
    download.send(stream)?;
    Ok(Reply::Sent)
}

/// `put`: `K [offset, prefix]`, the frames, then `K [sha256]` (a stream: `K [sha256,
/// size]`) once committed.
fn put(stream: &mut ServerTls, session: &Session, args: &PutArgs<'_>) -> Result<Reply, Error> {
    let mut upload = session.begin_put(args)?;
    let prefix = upload.prefix().map_or_else(String::new, |p| hex(&p));
    send_ok(
        stream,
        &[upload.offset().to_string().as_bytes(), prefix.as_bytes()],
    )?;
    if let Err(e) = upload.receive(stream, true) {
        // a stream is refused the moment it fails, before its end: a fos client stops
        // sending when it sees the reply; the rest is dropped, with the partial
        let unread = upload.unread();
        drop(upload);
        respond(stream, Some(session), Err(e))?;
        if unread {
            transfer::skip(stream, SKIP_LIMIT)?;
        }
        return Ok(Reply::Sent);
    }
    let done = upload.finish()?;
    let sha = done.sha.map_or_else(Vec::new, |s| hex(&s).into_bytes());
    Ok(Reply::Fields(match args.size {
        Some(_) => vec![sha],
        None => vec![sha, done.bytes.to_string().into_bytes()],
    }))
}
