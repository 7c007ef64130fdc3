//! The native protocol, client side: one method per request. File content is streamed
//! by `transfer`; this module only frames requests and reads replies.

use std::io::{Read, Write};

use rustls::{ClientConnection, StreamOwned};

use crate::Error;
use crate::protocol::frame::{Kind, decode_fields, encode_fields, read_frame, write_frame};
use crate::protocol::{self, Entry, ErrorCode, Request};
use crate::transfer::{self, Received, SendError, Sha};

/// A TLS stream to a server, of either protocol (the server side has its own type).
pub type ClientTls = StreamOwned<ClientConnection, crate::socket::Socket>;

/// Whether the server has already sent something (during an upload: a refusal), without
/// waiting: one non-blocking read of whatever has arrived.
fn answered_early(stream: &mut ClientTls) -> bool {
    if stream.sock.set_nonblocking(true).is_err() {
        return false;
    }
    let got = stream.conn.read_tls(&mut stream.sock);
    let _ = stream.sock.set_nonblocking(false);
    match got {
        // closed: whatever comes next (a reply or an error) tells why
        Ok(0) => true,
        Ok(_) => stream
            .conn
            .process_new_packets()
            .map_or(true, |state| state.plaintext_bytes_to_read() > 0),
        // nothing yet (WouldBlock); any other failure shows on the next write
        Err(_) => false,
    }
}

/// Most entries the client collects from one listing; a server that sends more is
/// cut off (every other reply is one frame, bounded by [`crate::protocol::frame`]).
pub const MAX_LIST_ENTRIES: usize = 1 << 18;
/// Most bytes (entry fields as sent) the client collects from one listing.
pub const MAX_LIST_BYTES: usize = 32 << 20;

/// A native session (after hello; login is a request like any other).
#[derive(Debug)]
pub struct Native {
    stream: ClientTls,
    buf: Vec<u8>,
    /// The name the server announced in its hello.
    pub server_name: String,
    /// What it announced it can do beyond version 1 (`modes`).
    features: Vec<String>,
}

/// What `df` shows: the user's usage and the server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes used, as the quota counts them.
    pub used: u64,
    /// The quota, if the server has one.
    pub quota: Option<u64>,
    /// The largest upload, if the server limits it.
    pub max_file_size: Option<u64>,
}

/// What the server said before sending a file.
#[derive(Debug, Clone, Copy)]
pub struct GetHeader {
    /// Whole file size.
    pub size: u64,
    /// Modification time on the server.
    pub mtime: i64,
    /// Where the data starts.
    pub offset: u64,
    /// The file's permission bits, from a server that says them.
    pub mode: Option<u32>,
}

fn too_large(what: String) -> Error {
    Error::Protocol(protocol::Error::ReplyTooLarge(what))
}

fn field_str(f: &[u8]) -> String {
    String::from_utf8_lossy(f).into_owned()
}

/// Where an upload request may be answered to continue: up to its announced size if it
/// asked to resume, else only from 0 (a stream, a fresh upload).
fn resume_limit(req: &Request) -> u64 {
    match req {
        Request::Put {
            size, resume: true, ..
        }
        | Request::Sync(protocol::sync::SyncRequest::Put {
            size, resume: true, ..
        })
        | Request::PutWithMode {
            size: Some(size),
            resume: true,
            ..
        } => *size,
        _ => 0,
    }
}

fn field_num<T: std::str::FromStr>(f: Option<&Vec<u8>>) -> Result<T, Error> {
    f.and_then(|f| std::str::from_utf8(f).ok()?.parse().ok())
        .ok_or(Error::Protocol(protocol::Error::BadFields))
}

/// Permission bits in octal, from a field a server may leave out or empty.
fn field_mode(f: Option<&Vec<u8>>) -> Result<Option<u32>, Error> {
    match f.map(Vec::as_slice) {
        None | Some(b"") => Ok(None),
        Some(m) => protocol::command::octal_mode(m)
            .map(Some)
            .map_err(|_| Error::Protocol(protocol::Error::BadFields)),
    }
}

impl Native {
    /// Exchanges hellos on a fresh TLS stream.
    pub fn hello(mut stream: ClientTls) -> Result<Native, Error> {
        let version = protocol::VERSION.to_string();
        write_frame(
            &mut stream,
            Kind::Hello,
            &encode_fields(&[protocol::MAGIC, version.as_bytes()]),
        )?;
        stream.flush()?;
        let mut buf = Vec::new();
        let kind = read_frame(&mut stream, &mut buf)?;
        let fields = decode_fields(&buf)?;
        match (kind, &fields[..]) {
            (Kind::Hello, [magic, v, name, rest @ ..]) if *magic == protocol::MAGIC => {
                if *v != version.as_bytes() {
                    return Err(Error::Connect(format!(
                        "server speaks protocol version {}",
                        field_str(v)
                    )));
                }
                let server_name = field_str(name);
                let features = rest
                    .first()
                    .map(|f| field_str(f).split(' ').map(str::to_string).collect())
                    .unwrap_or_default();
                Ok(Native {
                    stream,
                    buf,
                    server_name,
                    features,
                })
            }
            (Kind::Error, [code, msg, ..]) => {
                Err(Error::Remote(ErrorCode::parse(code), field_str(msg)))
            }
            _ => Err(Error::Protocol(protocol::Error::BadHello(
                "not a fos server".into(),
            ))),
        }
    }

    fn send(&mut self, req: &Request) -> Result<(), Error> {
        write_frame(&mut self.stream, Kind::Request, &req.encode())?;
        self.stream.flush()?;
        Ok(())
    }

    /// Reads an `Ok` (its fields) or an `Error` (as `Error::Remote`).
    fn reply(&mut self) -> Result<Vec<Vec<u8>>, Error> {
        let kind = read_frame(&mut self.stream, &mut self.buf)?;
        let fields: Vec<Vec<u8>> = decode_fields(&self.buf)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        match kind {
            Kind::Ok => Ok(fields),
            Kind::Error => {
                let code = fields
                    .first()
                    .map_or(ErrorCode::Invalid, |c| ErrorCode::parse(c));
                let msg = fields
                    .get(1)
                    .map_or_else(|| "error".into(), |m| field_str(m));
                Err(Error::Remote(code, msg))
            }
            other => Err(Error::Protocol(protocol::Error::Unexpected(other))),
        }
    }

    /// Whether the server announced `feature` in its hello.
    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// Sends a request and reads its reply.
    pub fn call(&mut self, req: &Request) -> Result<Vec<Vec<u8>>, Error> {
        self.send(req)?;
        self.reply()
    }

    /// Logs in.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        self.call(&Request::Login {
            user: user.into(),
            password: password.into(),
        })
        .map(drop)
    }

    /// Asks for name, version, session port and cluster, if any (discovery).
    pub fn discover(&mut self) -> Result<(String, u32, u16, Option<String>), Error> {
        let f = self.call(&Request::Discover)?;
        Ok((
            f.first().map(|n| field_str(n)).unwrap_or_default(),
            field_num(f.get(1))?,
            field_num(f.get(2))?,
            // servers before clusters send three fields; a lone server an empty one
            f.get(3).map(|c| field_str(c)).filter(|c| !c.is_empty()),
        ))
    }

    /// The first field of a reply as text.
    pub fn call_text(&mut self, req: &Request) -> Result<String, Error> {
        Ok(self
            .call(req)?
            .first()
            .map(|f| field_str(f))
            .unwrap_or_default())
    }

    /// `ls`: the entries of a directory (or the one file named), at most
    /// [`MAX_LIST_ENTRIES`] of them and [`MAX_LIST_BYTES`] in all.
    pub fn ls(&mut self, path: Option<&str>) -> Result<Vec<Entry>, Error> {
        let modes = self.has("modes");
        let path = path.map(Into::into);
        self.call(&match modes {
            true => Request::LsWithModes(path),
            false => Request::Ls(path),
        })?;
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        loop {
            match read_frame(&mut self.stream, &mut self.buf)? {
                Kind::List if self.buf.is_empty() => return Ok(entries),
                Kind::List => {
                    bytes += self.buf.len();
                    let fields = decode_fields(&self.buf)?;
                    if entries.len() + fields.len() > MAX_LIST_ENTRIES {
                        return Err(too_large(format!(
                            "the server's listing has more than {MAX_LIST_ENTRIES} entries"
                        )));
                    }
                    if bytes > MAX_LIST_BYTES {
                        return Err(too_large(format!(
                            "the server's listing is larger than {} MiB",
                            MAX_LIST_BYTES >> 20
                        )));
                    }
                    for f in fields {
                        entries.push(match modes {
                            true => Entry::decode_with_mode(f)?,
                            false => Entry::decode(f)?,
                        });
                    }
                }
                other => return Err(Error::Protocol(protocol::Error::Unexpected(other))),
            }
        }
    }

    /// `stat`.
    pub fn stat(&mut self, path: &str) -> Result<Entry, Error> {
        let f = self.call(&Request::Stat(path.into()))?;
        let entry = Entry::decode(
            f.first()
                .ok_or(Error::Protocol(protocol::Error::BadFields))?,
        )?;
        Ok(Entry {
            mode: field_mode(f.get(1))?,
            ..entry
        })
    }

    /// `setattr`: sets the permission bits and/or modification time of `path`;
    /// returns the mode it has then.
    pub fn set_attrs(
        &mut self,
        path: &str,
        mode: Option<u32>,
        mtime: Option<i64>,
    ) -> Result<Option<u32>, Error> {
        if !self.has("modes") {
            return Err(Error::Remote(
                ErrorCode::Unsupported,
                "this server keeps no permission bits (it predates modes)".into(),
            ));
        }
        let f = self.call(&Request::SetAttr {
            path: path.into(),
            mode,
            mtime,
        })?;
        field_mode(f.first())
    }

    /// `cat`: up to 1024 bytes and the whole size.
    pub fn cat(&mut self, path: &str) -> Result<(Vec<u8>, u64), Error> {
        let mut f = self.call(&Request::Cat(path.into()))?;
        let size = field_num(f.get(1))?;
        Ok((f.swap_remove(0), size))
    }

    /// `df`: the user's usage and the server's limits.
    pub fn df(&mut self) -> Result<Usage, Error> {
        let fields = match self.call(&Request::Df) {
            // a fos server from before `df`
            Err(Error::Remote(ErrorCode::Invalid, m)) if m.contains("unknown command") => {
                return Err(Error::Remote(
                    ErrorCode::Unsupported,
                    "this server does not report usage (it predates df)".into(),
                ));
            }
            other => other?,
        };
        let number = |i: usize| -> Result<Option<u64>, Error> {
            match fields.get(i).map(Vec::as_slice) {
                None | Some(b"") => Ok(None),
                Some(f) => std::str::from_utf8(f)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Some)
                    .ok_or(Error::Protocol(protocol::Error::BadFields)),
            }
        };
        Ok(Usage {
            used: number(0)?.ok_or(Error::Protocol(protocol::Error::BadFields))?,
            quota: number(1)?,
            max_file_size: number(2)?,
        })
    }

    /// Expands a wildcard pattern on the server (inside the user's root).
    pub fn glob(&mut self, pattern: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .call(&Request::Glob(pattern.into()))?
            .iter()
            .map(|f| field_str(f))
            .collect())
    }

    /// Starts a download; the data follows (see [`Native::receive`]).
    pub fn get_start(
        &mut self,
        path: &str,
        offset: u64,
        prefix: Option<[u8; 32]>,
    ) -> Result<GetHeader, Error> {
        let f = self.call(&Request::Get {
            path: path.into(),
            offset,
            prefix,
        })?;
        let hdr = GetHeader {
            size: field_num(f.first())?,
            mtime: field_num(f.get(1))?,
            offset: field_num(f.get(2))?,
            mode: field_mode(f.get(3))?,
        };
        // data from elsewhere than asked, or a size below it, answers some other
        // request: refused here, for every caller, before `size - offset` is taken
        if hdr.offset != offset || hdr.size < offset {
            return Err(Error::Protocol(protocol::Error::BadFields));
        }
        Ok(hdr)
    }

    /// Receives the content of a download into `dst`: at most `max` bytes, the size
    /// the server announced. A server that sends more is cut off there instead of
    /// being read to its end, which it need never send.
    pub fn receive(
        &mut self,
        dst: &mut impl Write,
        max: u64,
        ctx: Sha,
        progress: &mut dyn FnMut(u64),
        cancel: &dyn Fn() -> bool,
    ) -> Result<Received, Error> {
        let over = std::cell::Cell::new(false);
        let got = transfer::receive(
            &mut self.stream,
            dst,
            max,
            ctx,
            &mut |b| {
                over.set(b > max);
                progress(b.min(max));
            },
            &|| over.get() || cancel(),
        );
        if over.get() {
            return Err(too_large(format!(
                "the server sent more than the {max} bytes it announced"
            )));
        }
        Ok(got?)
    }

    /// Starts an upload; returns the offset the server wants data from.
    /// Starts an upload; returns the offset the server wants data from and, when it
    /// is not zero, the hex SHA-256 of the bytes the server already has.
    pub fn put_start(&mut self, req: &Request) -> Result<(u64, String), Error> {
        let f = self.call(req)?;
        let offset: u64 = field_num(f.first())?;
        let prefix = f.get(1).map(|h| field_str(h)).unwrap_or_default();
        // a resume point the request did not ask for, past the announced end, or
        // without the SHA-256 of what is there, is no answer to this upload (an empty
        // prefix would compare equal to the empty hash of nothing)
        let beyond = offset > resume_limit(req);
        if beyond || (offset > 0 && prefix.len() != 64) || (offset == 0 && !prefix.is_empty()) {
            return Err(Error::Protocol(protocol::Error::BadFields));
        }
        Ok((offset, prefix))
    }

    /// Gives up an upload before sending data, asking the server to discard its partial.
    pub fn abort_discard(&mut self) -> Result<(), Error> {
        transfer::abort_discard(&mut self.stream)?;
        match self.reply() {
            Err(Error::Remote(ErrorCode::Aborted, _)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends the content of an upload and reads the server's verdict (its SHA-256).
    pub fn send_content(
        &mut self,
        src: &mut impl Read,
        len: u64,
        ctx: Sha,
        progress: &mut dyn FnMut(u64),
        cancel: &dyn Fn() -> bool,
    ) -> Result<[u8; 32], Error> {
        match transfer::send(&mut self.stream, src, len, ctx, progress, cancel) {
            Ok(sha) => {
                self.reply()?;
                Ok(sha)
            }
            // only streams are answered early
            Err(SendError::Answered) => self.reply().map(|_| [0; 32]),
            Err(e) => Err(self.send_stopped(e, "the local file")),
        }
    }

    /// The error of a sending that stopped before its end (not [`SendError::Answered`]):
    /// after an `Abort` the server's answer is read, to stay in step. `input` is what
    /// was being read (`the local file`).
    fn send_stopped(&mut self, err: SendError, input: &str) -> Error {
        match err {
            SendError::Net(e) => Error::Protocol(e.into()),
            SendError::Cancelled => {
                let _ = self.reply();
                Error::Cancelled
            }
            SendError::Source(e) => {
                let _ = self.reply();
                Error::Local(format!("reading {input} failed: {e}"))
            }
            SendError::Answered => match self.reply() {
                Err(e) => e,
                Ok(_) => Error::Protocol(protocol::Error::Unexpected(Kind::Ok)),
            },
        }
    }

    /// Uploads `src` to its end as `path`, its size not known beforehand (a pipe, a
    /// FIFO, standard input): the size and SHA-256 go at the end, and the server checks
    /// its limits as the data arrives. A refusal mid-way (over the file size limit or
    /// the quota) stops the sending at once. Returns the bytes sent.
    pub fn put_stream(
        &mut self,
        src: &mut impl Read,
        path: &str,
        mtime: i64,
        no_clobber: bool,
        progress: &mut dyn FnMut(u64),
        cancel: &dyn Fn() -> bool,
    ) -> Result<u64, Error> {
        let reply = self.call(&Request::PutStream {
            path: path.into(),
            mtime,
            no_clobber,
        });
        match reply {
            Ok(_) => {}
            // a server from before streams: it cannot take a size given at the end
            Err(Error::Remote(ErrorCode::Invalid, msg)) if msg.contains("size") => {
                return Err(Error::Remote(
                    ErrorCode::Unsupported,
                    "this server cannot take an upload of unknown size (a pipe or standard input); save it to a file first".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        let sent = transfer::send_stream(
            &mut self.stream,
            src,
            transfer::sha(),
            progress,
            cancel,
            &mut answered_early,
        );
        match sent {
            Ok((sha, size)) => {
                let f = self.reply()?;
                let theirs: u64 = field_num(f.get(1))?;
                let ok = f
                    .first()
                    .is_some_and(|h| **h == *crate::protocol::command::hex(&sha).as_bytes());
                if theirs != size || !ok {
                    return Err(Error::Remote(
                        ErrorCode::Integrity,
                        format!("the server stored {theirs} bytes of the {size} sent"),
                    ));
                }
                Ok(size)
            }
            // an early answer is the refusal: success is never sent early
            Err(e) => Err(self.send_stopped(e, "the input")),
        }
    }

    /// Says goodbye and closes.
    pub fn bye(mut self) {
        if self.call(&Request::Bye).is_ok() {
            self.stream.conn.send_close_notify();
            let _ = self.stream.flush();
        }
    }
}

/// What `sync` needs beyond one request at a time: writing requests without waiting
/// (pipelining, with the replies read later in order), the raw stream for content,
/// and the server's identity for its index.
impl Native {
    /// Writes a request without flushing or reading its reply.
    pub fn send_only(&mut self, req: &Request) -> Result<(), Error> {
        write_frame(&mut self.stream, Kind::Request, &req.encode())?;
        Ok(())
    }

    /// Flushes what was written.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.stream.flush()?;
        Ok(())
    }

    /// Reads the next reply: an `Ok`'s fields, or an `Error` as [`Error::Remote`].
    pub fn read_reply(&mut self) -> Result<Vec<Vec<u8>>, Error> {
        self.reply()
    }

    /// Reads the next frame; its payload is [`Native::payload`].
    pub fn read_raw(&mut self) -> Result<Kind, Error> {
        Ok(read_frame(&mut self.stream, &mut self.buf)?)
    }

    /// The payload of the frame [`Native::read_raw`] read last.
    pub fn payload(&self) -> &[u8] {
        &self.buf
    }

    /// The TLS stream, for file content (`transfer`).
    pub fn stream(&mut self) -> &mut ClientTls {
        &mut self.stream
    }

    /// The SHA-256 of the server's certificate (the end-entity one).
    pub fn peer_fingerprint(&self) -> Option<[u8; 32]> {
        let cert = self.stream.conn.peer_certificates()?.first()?;
        let d = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Some(out)
    }
}
