//! Where the client's trust in a server comes from when `--cert` is not given: the
//! first pin file found ([`pin_candidates`]: `./certs/cert.pem`, then the
//! configuration directory, then `/etc/fos/`), else the `known_servers` file in the
//! configuration directory, kept as ssh keeps `known_hosts`: one line per server,
//! `HOST:PORT FINGERPRINT`, the certificate's SHA-256 as [`crate::x509::fingerprint`]
//! writes it.
//!
//! This module reads and appends that file, and can look at the certificate a server
//! presents ([`presented`]) over a connection that carries nothing else. It never
//! asks anything: whether to trust a new server is the app's dialogue
//! ([`super::app`]).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::connect::{DEFAULT_PORT, resolve, server_name_for, split_host_port, tls_connect};
use crate::Error;

/// The file of servers trusted on first use, in the configuration directory.
pub const KNOWN_SERVERS: &str = "known_servers";
/// Largest `known_servers` read.
const MAX_FILE: u64 = 4 << 20;

/// `$XDG_CONFIG_HOME/fos`, or `~/.config/fos`; `None` when neither variable is set.
pub fn config_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("fos"))
}

/// Where a pinned certificate is looked for, in order: `./certs/cert.pem` (beside a
/// server started with `make run`), `cert.pem` in the configuration directory, and
/// `/etc/fos/cert.pem`.
pub fn pin_candidates() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("certs/cert.pem")];
    if let Some(dir) = config_dir() {
        out.push(dir.join("cert.pem"));
    }
    out.push(PathBuf::from("/etc/fos/cert.pem"));
    out
}

/// The first of [`pin_candidates`] that exists.
pub fn find_pin() -> Option<PathBuf> {
    pin_candidates().into_iter().find(|p| p.exists())
}

/// `a, b or c`, for saying where the client looked.
pub fn listed(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The name a server is known by: `host:port` with the host in lower case and the
/// port always written (`[v6]:port` for IPv6), so `Files.lan` and `files.lan:5001`
/// are one server.
pub fn server_key(server: &str) -> Result<String, Error> {
    let (host, port) = split_host_port(server, DEFAULT_PORT)?;
    let host = host.to_ascii_lowercase();
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// One line of `known_servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The server, as [`server_key`] writes it.
    pub key: String,
    /// Its certificate's SHA-256 fingerprint.
    pub fingerprint: String,
    /// Its line number in the file (from 1), for telling where it is.
    pub line: usize,
}

/// The servers trusted on first use.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
    entries: Vec<Known>,
}

impl KnownServers {
    /// Reads `path`; a file that is not there is an empty list. Blank lines, `#`
    /// comments and lines that are not `KEY FINGERPRINT` are skipped.
    pub fn load(path: &Path) -> Result<KnownServers, Error> {
        let fail =
            |e: io::Error| Error::Local(format!("{}: {}", path.display(), super::local_reason(&e)));
        let text = match fs::File::open(path) {
            Ok(f) => {
                let mut text = String::new();
                io::Read::read_to_string(&mut io::Read::take(f, MAX_FILE), &mut text)
                    .map_err(fail)?;
                text
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(fail(e)),
        };
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(n, line)| {
                let mut words = line.split_whitespace();
                let key = words.next().filter(|k| !k.starts_with('#'))?;
                let fingerprint = words.next()?;
                Some(Known {
                    key: key.to_string(),
                    fingerprint: fingerprint.to_ascii_uppercase(),
                    line: n + 1,
                })
            })
            .collect();
        Ok(KnownServers {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// What is recorded for the server `key` (the first line, if there are several).
    pub fn get(&self, key: &str) -> Option<&Known> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Every fingerprint recorded, for discovery (which finds servers by address, on
    /// another port).
    pub fn fingerprints(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.fingerprint.clone()).collect()
    }

    /// Records `key` with `fingerprint`: appends a line, making the directory (0700)
    /// and the file (0600) if they are missing.
    pub fn add(&mut self, key: &str, fingerprint: &str) -> Result<(), Error> {
        let fail = |e: io::Error| {
            Error::Local(format!(
                "cannot record the server in {}: {}",
                self.path.display(),
                super::local_reason(&e)
            ))
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(fail)?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(fail)?;
        writeln!(file, "{key} {fingerprint}").map_err(fail)?;
        let line = self.entries.last().map_or(1, |e| e.line + 1);
        self.entries.push(Known {
            key: key.to_string(),
            fingerprint: fingerprint.to_string(),
            line,
        });
        Ok(())
    }
}

/// The SHA-256 fingerprint of the certificate `server` presents, looked at over a TLS
/// connection that trusts nothing and carries nothing: it is closed once the
/// handshake is done, before any request.
pub fn presented(server: &str, timeout: std::time::Duration) -> Result<String, Error> {
    let (host, port) = split_host_port(server, DEFAULT_PORT)?;
    let anyone = crate::tls::any_cert_client_config(true)?;
    let name = server_name_for(&host)?;
    let mut failures = Vec::new();
    for addr in resolve(&host, port)? {
        match tls_connect(addr, Arc::clone(&anyone), name.clone(), timeout) {
            Ok(stream) => {
                let cert = stream
                    .conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .ok_or_else(|| {
                        Error::Certificate(format!("{addr} presented no certificate"))
                    })?;
                return Ok(crate::x509::fingerprint(cert));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    Err(Error::Connect(failures.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn keys_name_one_server_one_way() {
        assert_eq!(server_key("Files.LAN").unwrap(), "files.lan:5001");
        assert_eq!(server_key("files.lan:5001").unwrap(), "files.lan:5001");
        assert_eq!(server_key("127.0.0.1:7").unwrap(), "127.0.0.1:7");
        assert_eq!(server_key("[::1]:7").unwrap(), "[::1]:7");
        assert_eq!(server_key("::1").unwrap(), "[::1]:5001");
        assert!(server_key("host:").is_err());
    }

    #[test]
    fn the_file_is_read_appended_and_private() {
        let t = TempDir::new();
        let path = t.path().join("conf/fos/known_servers");
        let mut known = KnownServers::load(&path).unwrap();
        assert!(known.get("a:1").is_none(), "no file: nothing known");
        known.add("a:1", "AB:CD").unwrap();
        known.add("b:2", "EF:01").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let mut text = fs::read_to_string(&path).unwrap();
        text.insert_str(0, "# comment\n\nnot-a-line\n");
        fs::write(&path, text).unwrap();
        let known = KnownServers::load(&path).unwrap();
        let b = known.get("b:2").unwrap();
        assert_eq!((b.fingerprint.as_str(), b.line), ("EF:01", 5));
        assert_eq!(known.fingerprints(), ["AB:CD", "EF:01"]);
    }

    #[test]
    fn several_places_are_listed_plainly() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(listed(&[p("a"), p("b"), p("c")]), "a, b or c");
        assert_eq!(listed(&[p("a")]), "a");
    }
}
