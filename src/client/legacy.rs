//! The Python tool's protocol, client side, for unmodified Python servers (a server
//! that negotiated no ALPN, or `--legacy`). One record per message; `get`/`put` data
//! goes over a second TLS connection to the port the server names.
//!
//! What the Python server lacks (sizes, checksums, resume, `mv`, `stat`) is refused
//! with a message that says so. Downloads still land atomically, and only when the
//! server's status says the transfer succeeded: a missing remote file never
//! truncates a local one, as the Python client would.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::native::ClientTls;
use crate::Error;
use crate::protocol::legacy::{is_error, is_success, plain, read_record, send_record};
use crate::protocol::{Entry, EntryKind, ErrorCode};

/// How long to keep trying the server's one-shot data port (it listens before it
/// names the port; the retries cover a slow accept queue).
const DATA_CONNECT: Duration = Duration::from_secs(5);

/// How long an upload's data connection waits for the Python server's close before the
/// client stops waiting and reads the status (the server's side is `LINGER_TIMEOUT`).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A session with a Python server.
#[derive(Debug)]
pub struct Legacy {
    stream: ClientTls,
    peer: IpAddr,
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    /// The Python server has no `pwd`: the client follows `cd` itself.
    cwd: Vec<String>,
}

impl Legacy {
    /// Logs in on a fresh TLS stream: `fs`, then `user:password`.
    pub fn login(
        mut stream: ClientTls,
        tls: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        user: &str,
        password: &str,
    ) -> Result<Legacy, Error> {
        if password.contains(':') || user.contains(':') {
            return Err(Error::Usage(
                "a Python server cannot take ':' in a user name or password".into(),
            ));
        }
        let peer = stream.sock.peer_addr()?.ip();
        send_record(&mut stream, b"fs")?;
        send_record(&mut stream, format!("{user}:{password}").as_bytes())?;
        match read_record(&mut stream)? {
            Some(r) if r == b"accept" => Ok(Legacy {
                stream,
                peer,
                tls,
                server_name,
                cwd: Vec::new(),
            }),
            Some(r) if r.starts_with(b"invalid credentials") => {
                Err(Error::Remote(ErrorCode::Auth, "invalid credentials".into()))
            }
            Some(r) => Err(Error::Remote(
                ErrorCode::Auth,
                format!("login refused: {}", plain(&String::from_utf8_lossy(&r))),
            )),
            None => Err(Error::Remote(
                ErrorCode::Auth,
                "the server closed the connection at login".into(),
            )),
        }
    }

    /// Sends one command and reads its one reply.
    fn command(&mut self, text: &str) -> Result<String, Error> {
        if text.len() > 4000 {
            return Err(Error::Usage("command too long for a Python server".into()));
        }
        send_record(&mut self.stream, text.as_bytes())?;
        self.command_reply()
    }

    /// A command whose reply is green on success, red on failure.
    fn simple(&mut self, text: &str) -> Result<String, Error> {
        let reply = self.command(text)?;
        if is_error(&reply) {
            return Err(Error::Remote(ErrorCode::Invalid, plain(&reply)));
        }
        Ok(plain(&reply))
    }

    fn one_word(arg: &str) -> Result<&str, Error> {
        if arg.is_empty() || arg.chars().any(char::is_whitespace) {
            return Err(Error::Usage(
                "a Python server cannot take names with spaces".into(),
            ));
        }
        Ok(arg)
    }

    /// `ls`: names only (the Python server sends no types or sizes).
    pub fn ls(&mut self, path: Option<&str>) -> Result<Vec<Entry>, Error> {
        let text = match path {
            Some(p) => format!("ls {}", Self::one_word(p)?),
            // the Python client sends "ls " with a trailing space
            None => "ls ".to_string(),
        };
        let reply = self.command(&text)?;
        if is_error(&reply) {
            return Err(Error::Remote(ErrorCode::NotFound, plain(&reply)));
        }
        if reply.contains("No files found") {
            return Ok(Vec::new());
        }
        Ok(plain(&reply)
            .split('\t')
            .filter(|n| !n.is_empty())
            .map(|n| Entry {
                name: n.to_string(),
                kind: EntryKind::Other,
                size: 0,
                mtime: 0,
                mode: None,
            })
            .collect())
    }

    /// `cd`, tracking the directory locally for `pwd`.
    pub fn cd(&mut self, path: Option<&str>) -> Result<String, Error> {
        let p = path.unwrap_or("/");
        self.simple(&format!("cd {}", Self::one_word(p)?))?;
        if p.starts_with('/') {
            self.cwd.clear();
        }
        for c in p.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    self.cwd.pop();
                }
                c => self.cwd.push(c.to_string()),
            }
        }
        Ok(self.pwd())
    }

    /// The directory as followed by the client.
    pub fn pwd(&self) -> String {
        format!("/{}", self.cwd.join("/"))
    }

    /// `cat`: the server's text (first 1024 bytes).
    pub fn cat(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        let reply = self.command(&format!("cat {}", Self::one_word(path)?))?;
        if is_error(&reply) {
            return Err(Error::Remote(ErrorCode::NotFound, plain(&reply)));
        }
        // the server adds one newline after the content
        Ok(reply
            .strip_suffix('\n')
            .unwrap_or(&reply)
            .as_bytes()
            .to_vec())
    }

    /// `mkdir`, `rmdir`, `rm`.
    pub fn simple_path(&mut self, verb: &str, path: &str) -> Result<(), Error> {
        self.simple(&format!("{verb} {}", Self::one_word(path)?))
            .map(drop)
    }

    fn data_connection(&self, reply: &str) -> Result<ClientTls, Error> {
        let port: u16 = reply
            .trim()
            .parse()
            .map_err(|_| Error::Remote(ErrorCode::Invalid, plain(reply)))?;
        let addr = SocketAddr::new(self.peer, port);
        let deadline = Instant::now() + DATA_CONNECT;
        let tcp = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(t) => break t,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(Error::Connect(format!("data connection to {addr}: {e}"))),
            }
        };
        tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(60)))?;
        let conn = ClientConnection::new(Arc::clone(&self.tls), self.server_name.clone())
            .map_err(|e| Error::Connect(e.to_string()))?;
        Ok(StreamOwned::new(conn, tcp.into()))
    }

    /// Sends `get PATH` or `put PATH` and connects to the data port the server names
    /// in its reply (a red reply is the refusal, as `refused`).
    fn data_command(
        &mut self,
        verb: &str,
        path: &str,
        refused: ErrorCode,
    ) -> Result<ClientTls, Error> {
        let reply = self.command(&format!("{verb} {}", Self::one_word(path)?))?;
        if is_error(&reply) {
            return Err(Error::Remote(refused, plain(&reply)));
        }
        self.data_connection(&reply)
    }

    /// Downloads `path` into `dst`; returns the byte count once the server confirmed.
    pub fn get(
        &mut self,
        path: &str,
        dst: &mut impl Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, Error> {
        let mut data = self.data_command("get", path, ErrorCode::NotFound)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let result = loop {
            match data.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = dst.write_all(&buf[..n]) {
                        break Err(Error::Local(format!("writing the local file: {e}")));
                    }
                    total += n as u64;
                    progress(total);
                }
                // the Python server ends the stream with a bare TCP close
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ok(()),
                Err(e) => break Err(Error::Io(e)),
            }
        };
        // the server sends its status once the data connection is closed
        drop(data);
        let status = self.command_reply()?;
        result?;
        if is_error(&status) {
            return Err(Error::Remote(ErrorCode::NotFound, plain(&status)));
        }
        Ok(total)
    }

    /// The next reply (a command's, or the status after a data connection).
    fn command_reply(&mut self) -> Result<String, Error> {
        match read_record(&mut self.stream)? {
            Some(r) => Ok(String::from_utf8_lossy(&r).into_owned()),
            None => Err(Error::Protocol(crate::protocol::Error::Closed)),
        }
    }

    /// Uploads `len` bytes of `src` as `path`.
    pub fn put(
        &mut self,
        path: &str,
        src: &mut impl Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, Error> {
        let mut data = self.data_command("put", path, ErrorCode::Invalid)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let result = (|| -> Result<(), Error> {
            loop {
                let n = src
                    .read(&mut buf)
                    .map_err(|e| Error::Local(format!("reading the local file: {e}")))?;
                if n == 0 {
                    break;
                }
                data.write_all(&buf[..n])?;
                total += n as u64;
                progress(total);
            }
            data.conn.send_close_notify();
            data.flush()?;
            data.sock.shutdown(std::net::Shutdown::Write)?;
            // read what the server still sends (TLS session tickets, its close) until it
            // closes: closing with unread data makes the kernel send a reset, which can
            // destroy the end of the upload before the server has read it
            crate::linger::drain(&mut data.sock, DRAIN_TIMEOUT);
            Ok(())
        })();
        drop(data);
        let status = self.command_reply()?;
        result?;
        if !is_success(&status) {
            return Err(Error::Remote(ErrorCode::Io, plain(&status)));
        }
        Ok(total)
    }

    /// Leaves: `exit`, no reply.
    pub fn exit(mut self) {
        let _ = send_record(&mut self.stream, b"exit");
    }
}
