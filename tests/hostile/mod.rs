//! A hostile server for the client tests: a compromised host, or anyone holding the
//! public demo key. It does the TLS handshake with the test certificate, logs any
//! client in, and answers each request with whatever the test's handler writes:
//! names that leave the directory, terminal escapes, listings that never end.
//!
//! Two flavours: [`Hostile::native`] speaks the fos protocol (ALPN `fos/1`) with raw
//! frames, so it can send what no real fos server would; [`Hostile::legacy`] speaks
//! the Python tool's protocol (no ALPN) with raw records. It binds 127.0.0.1:0 and
//! serves until the test process ends. It does not check what the client sends beyond
//! decoding it.
#![allow(dead_code)] // each test uses a different subset

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fos::protocol::Request;
use fos::protocol::frame::{Kind, decode_fields, encode_fields, read_frame, write_frame};
use rustls::{ServerConnection, StreamOwned};

/// The server side of one TLS connection.
pub type Tls = StreamOwned<ServerConnection, TcpStream>;

/// One directory entry as raw bytes: any name at all, NUL and `/` included.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub kind: u8,
    pub size: u64,
    pub name: Vec<u8>,
}

/// A file entry.
pub fn file(name: impl AsRef<[u8]>, size: u64) -> RawEntry {
    RawEntry {
        kind: b'f',
        size,
        name: name.as_ref().to_vec(),
    }
}

/// A directory entry.
pub fn dir(name: impl AsRef<[u8]>) -> RawEntry {
    RawEntry {
        kind: b'd',
        size: 4096,
        name: name.as_ref().to_vec(),
    }
}

impl RawEntry {
    /// The entry as one field of an `L` frame (see docs/PROTOCOL.md, "Entries").
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind];
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&self.name);
        out
    }
}

/// What a native handler writes its replies with.
pub struct Wire<'a> {
    stream: &'a mut Tls,
}

impl Wire<'_> {
    /// One frame, flushed.
    pub fn frame(&mut self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        write_frame(self.stream, kind, payload)?;
        self.stream.flush()
    }

    /// `K [fields]`.
    pub fn ok(&mut self, fields: &[&[u8]]) -> io::Result<()> {
        self.frame(Kind::Ok, &encode_fields(fields))
    }

    /// `E [code, message]`.
    pub fn err(&mut self, code: &str, msg: &[u8]) -> io::Result<()> {
        self.frame(Kind::Error, &encode_fields(&[code.as_bytes(), msg]))
    }

    /// `K []`, the entries in `L` frames of 512, then the empty `L`.
    pub fn list(&mut self, entries: &[RawEntry]) -> io::Result<()> {
        self.ok(&[])?;
        for batch in entries.chunks(512) {
            let fields: Vec<Vec<u8>> = batch.iter().map(RawEntry::encode).collect();
            self.frame(Kind::List, &encode_fields(&fields))?;
        }
        self.frame(Kind::List, &[])
    }

    /// A whole file for a `get` at offset 0: `K [size, mtime, 0]`, `D`, `Z [sha256]`.
    pub fn file(&mut self, content: &[u8]) -> io::Result<()> {
        let size = content.len().to_string();
        self.ok(&[size.as_bytes(), b"0", b"0"])?;
        for chunk in content.chunks(256 << 10) {
            self.frame(Kind::Data, chunk)?;
        }
        let sha = ring::digest::digest(&ring::digest::SHA256, content);
        self.frame(Kind::End, sha.as_ref())
    }
}

type NativeHandler = dyn Fn(&Request, &mut Wire<'_>) -> io::Result<()> + Send + Sync;
type LegacyHandler = dyn Fn(&str, &mut Tls) -> io::Result<()> + Send + Sync;

/// A running hostile server.
pub struct Hostile {
    pub addr: SocketAddr,
    /// How many TCP connections it accepted.
    pub connections: Arc<Mutex<usize>>,
}

fn tls_config(alpn: bool) -> Arc<rustls::ServerConfig> {
    let data = support_data_dir();
    let certs = fos::tls::load_certs(&data.join("cert.pem")).unwrap();
    let key = fos::tls::load_key(&data.join("key.pem")).unwrap();
    let cfg = fos::tls::server_config(certs, key, &data.join("cert.pem")).unwrap();
    if alpn {
        return cfg;
    }
    let mut cfg = (*cfg).clone();
    cfg.alpn_protocols.clear();
    Arc::new(cfg)
}

fn support_data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

impl Hostile {
    /// A native fos server: hello, any login accepted, `bye` answered; every other
    /// request goes to `handler`.
    pub fn native(
        handler: impl Fn(&Request, &mut Wire<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Hostile {
        let handler: Arc<NativeHandler> = Arc::new(handler);
        Self::serve(true, move |mut s| {
            let handler = Arc::clone(&handler);
            let _ = native_session(&mut s, &*handler);
        })
    }

    /// A Python-style server: `fs`, any `user:password` accepted; every command
    /// record goes to `handler`, which writes the reply record(s) itself.
    pub fn legacy(
        handler: impl Fn(&str, &mut Tls) -> io::Result<()> + Send + Sync + 'static,
    ) -> Hostile {
        let handler: Arc<LegacyHandler> = Arc::new(handler);
        Self::serve(false, move |mut s| {
            let handler = Arc::clone(&handler);
            let _ = legacy_session(&mut s, &*handler);
        })
    }

    fn serve(alpn: bool, session: impl Fn(Tls) + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&connections);
        let cfg = tls_config(alpn);
        let session = Arc::new(session);
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                *counted.lock().unwrap() += 1;
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = tcp.set_write_timeout(Some(Duration::from_secs(20)));
                let Ok(conn) = ServerConnection::new(Arc::clone(&cfg)) else {
                    continue;
                };
                let session = Arc::clone(&session);
                std::thread::spawn(move || session(StreamOwned::new(conn, tcp)));
            }
        });
        Hostile { addr, connections }
    }

    /// `127.0.0.1:PORT`, for `--server`.
    pub fn server_arg(&self) -> String {
        self.addr.to_string()
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

fn native_session(s: &mut Tls, handler: &NativeHandler) -> Result<(), Box<dyn std::error::Error>> {
    let mut buf = Vec::new();
    if read_frame(s, &mut buf)? != Kind::Hello {
        return Ok(());
    }
    write_frame(
        s,
        Kind::Hello,
        &encode_fields(&[&b"fos"[..], b"1", b"hostile"]),
    )?;
    s.flush()?;
    loop {
        if read_frame(s, &mut buf)? != Kind::Request {
            continue;
        }
        let req = Request::decode(&buf)?;
        let mut wire = Wire { stream: s };
        match req {
            Request::Login { .. } => wire.ok(&[])?,
            Request::Bye => {
                wire.ok(&[])?;
                return Ok(());
            }
            req => handler(&req, &mut wire)?,
        }
    }
}

fn legacy_session(s: &mut Tls, handler: &LegacyHandler) -> io::Result<()> {
    use fos::protocol::legacy::{read_record, send_record};
    if read_record(s)?.as_deref() != Some(b"fs") {
        return Ok(());
    }
    if read_record(s)?.is_none() {
        return Ok(());
    }
    send_record(s, b"accept")?;
    while let Some(cmd) = read_record(s)? {
        let cmd = String::from_utf8_lossy(&cmd).into_owned();
        if cmd == "exit" {
            return Ok(());
        }
        handler(&cmd, s)?;
    }
    Ok(())
}

/// Decodes the fields of a frame payload (for handlers that inspect raw frames).
pub fn fields(payload: &[u8]) -> Vec<Vec<u8>> {
    decode_fields(payload)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}
