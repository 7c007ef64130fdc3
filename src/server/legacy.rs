//! The Python tool's protocol, server side, for unmodified Python clients (a session
//! that negotiated no ALPN). Framing is the TLS record: one record in, one record
//! out, each at most 4096 bytes (the Python client reads with `recv(4096)`; a longer
//! reply would be taken for the next one).
//!
//! fos keeps its own rules here: every path goes through the sandbox (put included,
//! which the Python server never checked), logins go through the same check as native
//! ones, and error texts are fos's own, never server paths. `get`/`put` content
//! travels on a one-shot TLS listener on an ephemeral port, as the Python tool does;
//! it accepts one connection, from the session's peer address, within 5 s.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::Shared;
use super::conn::{Outcome, ServerTls, login};
use super::session::{CAT_LIMIT, Error, Session, describe};
use super::upload::PutArgs;
use crate::ioerror::Whose;
use crate::log::{Level, escape};
use crate::protocol::legacy::{BLUE, RECORD, RESET, green, read_record, red, send_record};
use crate::protocol::{self, ErrorCode, verbs};

/// How long the one-shot data port waits for its connection.
pub const DATA_ACCEPT: Duration = Duration::from_secs(5);

/// Serves a Python client: mode word, login, then commands.
pub(super) fn serve(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    busy: &AtomicBool,
) -> Outcome {
    let mut out = Outcome::default();
    if let Err(e) = run(stream, peer, shared, busy, &mut out) {
        out.error = Some(e.to_string());
    }
    out
}

fn run(
    stream: &mut ServerTls,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    busy: &AtomicBool,
    out: &mut Outcome,
) -> io::Result<()> {
    let log = &shared.log;
    let Some(mode) = read_record(stream)? else {
        return Ok(());
    };
    // mode words are prefix matches, on either port, as in the Python server
    if mode.starts_with(b"ping") {
        log.log(Level::Info, Some(peer), None, format_args!("ping (legacy)"));
        return send_record(stream, shared.config.name.as_bytes());
    }
    if !mode.starts_with(b"fs") {
        log.log(
            Level::Info,
            Some(peer),
            None,
            format_args!(
                "legacy: unknown mode {:?}",
                escape(&String::from_utf8_lossy(&mode))
            ),
        );
        return Ok(());
    }
    let Some(creds) = read_record(stream)? else {
        return Ok(());
    };
    let creds = String::from_utf8(creds).ok();
    let parsed = creds.as_deref().and_then(|c| c.split_once(':'));
    let Some((user, password)) = parsed else {
        log.log(
            Level::Warn,
            Some(peer),
            None,
            format_args!("legacy login refused: malformed credentials"),
        );
        // the Python client takes any other reply for success: always exactly this
        return send_record(stream, b"invalid credentials");
    };
    let mut session = match login(shared, &stream.sock, user, password) {
        Ok(s) => s,
        // the real reason is in the log (login() wrote it); the client gets the one
        // reply it understands as a refusal
        Err(_) => return send_record(stream, b"invalid credentials"),
    };
    out.user = Some(session.user.clone());
    stream.sock.logged_in(shared.config.idle_timeout)?;
    send_record(stream, b"accept")?;
    while let Some(record) = read_record(stream)? {
        if shared.shutting_down() {
            let bye = Reply::Refusal("server is shutting down".into());
            reply(stream, &session, "", Ok(bye))?;
            return Ok(());
        }
        busy.store(true, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&record).into_owned();
        let keep_going = command(stream, &mut session, &text);
        busy.store(false, Ordering::SeqCst);
        if !keep_going? {
            break;
        }
    }
    Ok(())
}

/// A legacy reply before it is coloured and sent.
#[derive(Debug)]
enum Reply {
    /// Text as it is: a file's head, the current directory, help.
    Text(String),
    /// A directory's names (its notes, for none or too many, in blue).
    Listing(Vec<String>),
    /// A success, in green.
    Done(&'static str),
    /// One of the Python tool's own refusals, in red, in its words.
    Refusal(String),
    /// `exit`: no reply, the session ends.
    Exit,
}

/// Runs one command; `Ok(false)` on `exit`.
fn command(stream: &mut ServerTls, session: &mut Session, text: &str) -> io::Result<bool> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let Some((&cmd, args)) = parts.split_first() else {
        let none = Reply::Refusal("No command provided.".into());
        return reply(stream, session, "", Ok(none));
    };
    session.log(Level::Info, format_args!("legacy: {}", escape(text.trim())));
    let result = handle(stream, session, cmd, args);
    reply(stream, session, cmd, result)
}

/// One command, to its handler.
fn handle(
    stream: &mut ServerTls,
    session: &mut Session,
    cmd: &str,
    args: &[&str],
) -> Result<Reply, Error> {
    fn done<T>(msg: &'static str) -> impl FnOnce(T) -> Reply {
        move |_| Reply::Done(msg)
    }
    let arg = args.first().copied();
    // the table says which commands the Python tool has, and with how many words
    if let Some(verb) = verbs::find(cmd)
        && verb.legacy.is_some()
        && !verb.legacy_admits(args.len())
    {
        return Ok(Reply::Refusal(match (cmd, args) {
            ("get" | "put", []) => format!("No filename provided for {cmd} command."),
            _ => format!("{cmd}: wrong number of arguments (names with spaces need a fos client)"),
        }));
    }
    match (cmd, args) {
        ("exit", _) => Ok(Reply::Exit),
        ("help", _) => Ok(Reply::Text("commands: ls [dir], cat file, get file, put file, rm file, mkdir dir, rmdir dir, cd [dir], pwd, exit\n".into())),
        ("ls", _) => session
            .ls(arg)
            .map(|entries| Reply::Listing(entries.into_iter().map(|e| e.name).collect())),
        ("cat", [path]) => session.cat(path).and_then(|c| cat_text(&c.head, c.size)),
        ("cd", _) => Ok(match session.cd(arg) {
            Ok(_) => Reply::Done("Directory changed successfully"),
            Err(_) => Reply::Refusal("Directory does not exist".into()),
        }),
        ("pwd", _) => Ok(Reply::Text(format!("{}\n", session.pwd()))),
        ("mkdir", [path]) => session
            .mkdir(path)
            .map(done("Directory created successfully")),
        ("rmdir", [path]) => session
            .rmdir(path)
            .map(done("Directory deleted successfully")),
        ("rm", [path]) => session
            .rm(path, false)
            .map(done("File deleted successfully")),
        ("get", [path]) => get(stream, session, path),
        ("put", [path]) => put(stream, session, path),
        _ => Ok(Reply::Refusal("Unknown command".into())),
    }
}

/// Sends the reply to `cmd` in one record (a refusal is logged); `Ok(false)` on
/// `exit`. A failed connection is an error: the session ends.
fn reply(
    stream: &mut ServerTls,
    session: &Session,
    cmd: &str,
    result: Result<Reply, Error>,
) -> io::Result<bool> {
    let result = match result {
        Err(Error::Net(protocol::Error::Io(e))) => return Err(e),
        Err(Error::Net(e)) => return Err(io::Error::other(e.to_string())),
        Err(e) => {
            session.log(Level::Info, format_args!("legacy {cmd} refused: {e}"));
            Err(e)
        }
        Ok(r) => Ok(r),
    };
    match colour(cmd, &result) {
        Some(text) => send_record(stream, truncate(text).as_bytes()).map(|()| true),
        None => Ok(false),
    }
}

/// The one place a legacy reply is worded and coloured, as the Python client shows
/// it: successes in green, refusals in red, a failure as `cmd: what went wrong` in
/// red (in [`describe`]'s words, never a host path), a listing's notes in blue.
/// `None`: no reply (`exit`).
fn colour(cmd: &str, result: &Result<Reply, Error>) -> Option<String> {
    Some(match result {
        Ok(Reply::Text(text)) => text.clone(),
        Ok(Reply::Listing(names)) => ls_reply(names.iter().map(String::as_str)),
        Ok(Reply::Done(msg)) => green(msg),
        Ok(Reply::Refusal(msg)) => red(msg),
        Ok(Reply::Exit) => return None,
        Err(e) => red(&format!("{cmd}: {}", describe(e).1)),
    })
}

/// Names joined by tabs, or the Python tool's "No files found"; a listing that would
/// not fit one record is cut with a note of how many names were left out.
fn ls_reply<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return format!("{BLUE}No files found{RESET}\n");
    }
    let full = format!("{}\n", names.join("\t"));
    if full.len() <= RECORD {
        return full;
    }
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let note = format!(
            "\t{BLUE}... {} more not shown: list a subdirectory or use a fos client{RESET}\n",
            names.len() - i
        );
        let sep = if i == 0 { "" } else { "\t" };
        if out.len() + sep.len() + name.len() + note.len() > RECORD {
            return out + &note;
        }
        out.push_str(sep);
        out.push_str(name);
    }
    out + "\n"
}

/// The first 1024 bytes as text plus a newline, as the Python tool does; a character
/// cut at the 1024-byte mark is dropped, and a binary file is said to be one.
fn cat_text(head: &[u8], size: u64) -> Result<Reply, Error> {
    match std::str::from_utf8(head) {
        Ok(text) => Ok(Reply::Text(format!("{text}\n"))),
        // only an incomplete character at the very end: show everything before it
        Err(e) if e.error_len().is_none() && head.len() == CAT_LIMIT => Ok(Reply::Text(format!(
            "{}\n",
            String::from_utf8_lossy(&head[..e.valid_up_to()])
        ))),
        Err(_) => Err(Error::Refused(
            ErrorCode::Invalid,
            format!("binary file ({size} bytes); use get"),
        )),
    }
}

/// Keeps a reply within one record, on a character boundary.
fn truncate(mut s: String) -> String {
    if s.len() > RECORD {
        let mut cut = RECORD - 1;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('\n');
    }
    s
}

/// The one-shot data connection of a legacy get/put: a listener on the session's own
/// local address; it accepts one TLS connection from the peer's address within
/// [`DATA_ACCEPT`]. Connections from anyone else are closed unanswered.
fn data_listener(stream: &ServerTls) -> io::Result<TcpListener> {
    let local = stream.sock.tcp().local_addr()?;
    TcpListener::bind(SocketAddr::new(local.ip(), 0))
}

/// Opens the data port and tells the client its number (`<port>\n`).
fn offer_data_port(stream: &mut ServerTls) -> io::Result<TcpListener> {
    let listener = data_listener(stream)?;
    send_record(
        stream,
        format!("{}\n", listener.local_addr()?.port()).as_bytes(),
    )?;
    Ok(listener)
}

/// Accepts the one data connection from `peer` and closes the listener: the port serves
/// exactly one connection, so nothing else can connect to it once the client has. A
/// data connection that never came (or failed its handshake) is a warning naming the
/// command: the transfer did not happen.
fn accept_data(
    listener: TcpListener,
    peer: IpAddr,
    session: &Session,
    what: &str,
    path: &str,
) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
    accept_one(listener, peer, session).inspect_err(|e| {
        session.log(
            Level::Warn,
            format_args!("legacy {what} {:?} failed: {e}", escape(path)),
        );
    })
}

fn accept_one(
    listener: TcpListener,
    peer: IpAddr,
    session: &Session,
) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
    // non-blocking, so that a connection that vanishes between poll and accept cannot
    // block the session
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + DATA_ACCEPT;
    let tcp = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !crate::sys::wait_readable(listener.as_fd(), left)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "nobody connected to the data port within 5 s",
            ));
        }
        match listener.accept() {
            Ok((tcp, from)) if from.ip() == peer => break tcp,
            Ok((_, from)) => session.shared.log.log(
                Level::Warn,
                Some(from),
                Some(&session.user),
                format_args!("legacy data port: refused a connection from another address"),
            ),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    };
    drop(listener);
    tcp.set_nonblocking(false)?;
    let cfg = &session.shared.config;
    tcp.set_read_timeout(Some(cfg.handshake_timeout))?;
    tcp.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut conn =
        ServerConnection::new(Arc::clone(&session.shared.tls_data)).map_err(io::Error::other)?;
    let mut tcp = tcp;
    crate::tls::complete_handshake(&mut conn, &mut tcp)?;
    Ok(StreamOwned::new(conn, tcp))
}

/// `get file`: the port, then the whole file on the data connection, then the status.
fn get(stream: &mut ServerTls, session: &Session, path: &str) -> Result<Reply, Error> {
    // an error instead of a port: the Python client then creates no local file
    let mut download = session.begin_get(path, 0, None)?;
    let listener = offer_data_port(stream).map_err(Error::net)?;
    let sent = (|| -> io::Result<()> {
        let mut data = accept_data(listener, session.peer.ip(), session, "get", path)?;
        download.copy_raw(&mut data)?;
        data.conn.send_close_notify();
        data.flush()?;
        let _ = data.sock.shutdown(std::net::Shutdown::Write);
        // the status goes out now; the Python client closes the data connection only
        // after it has read it, so the socket lingers on the server's linger thread
        // (closing it with unread input could reset it and cut the client's last bytes)
        session.shared.linger.close(data.sock);
        Ok(())
    })();
    sent.map(|()| Reply::Done("File sent successfully"))
        .map_err(|e| {
            let why = crate::ioerror::reason(&e, Whose::Link);
            Error::Refused(ErrorCode::Io, format!("transfer failed: {why}"))
        })
}

/// `put file`: the port, then the file to the data connection's end, then the status.
fn put(stream: &mut ServerTls, session: &Session, path: &str) -> Result<Reply, Error> {
    let mut upload = session.begin_put(&PutArgs::legacy(path))?;
    let listener = offer_data_port(stream).map_err(Error::net)?;
    let mut data = accept_data(listener, session.peer.ip(), session, "put", path)?;
    data.sock
        .set_read_timeout(Some(session.shared.config.idle_timeout))?;
    upload.write_raw(&mut data)?;
    drop(data);
    upload.finish()?;
    Ok(Reply::Done("File received successfully"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat_reply(head: &[u8], size: u64) -> String {
        colour("cat", &cat_text(head, size)).unwrap_or_default()
    }

    #[test]
    fn ls_fits_one_record() {
        assert_eq!(ls_reply(["a", "b"].into_iter()), "a\tb\n");
        assert_eq!(
            ls_reply(std::iter::empty()),
            "\x1b[34mNo files found\x1b[0m\n"
        );
        let names: Vec<String> = (0..300)
            .map(|i| format!("file_with_long_name_{i:04}.txt"))
            .collect();
        let reply = ls_reply(names.iter().map(String::as_str));
        assert!(reply.len() <= RECORD, "{}", reply.len());
        let shown = reply.split('\t').filter(|n| n.starts_with("file_")).count();
        assert!(
            reply.contains(&format!("... {} more not shown", 300 - shown)),
            "{reply}"
        );
        assert!(reply.ends_with("\x1b[0m\n"));
    }

    #[test]
    fn cat_rules() {
        assert_eq!(cat_reply(b"hello world\n", 12), "hello world\n\n");
        let mut cut = vec![b'a'; 1023];
        cut.push(0xc3);
        assert_eq!(cat_reply(&cut, 2000), format!("{}\n", "a".repeat(1023)));
        assert!(cat_reply(b"\x80\x81", 2).contains("binary file"));
    }

    #[test]
    fn truncate_keeps_char_boundary() {
        let s = "é".repeat(3000);
        let t = truncate(s);
        assert!(t.len() <= RECORD && t.ends_with('\n'));
    }
}
