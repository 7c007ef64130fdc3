//! The top-level error: every layer's error converts into it, and it knows the
//! client's documented exit code for each kind of failure. [`exit`] is the one table
//! of both binaries' exit codes.

use std::fmt;
use std::io;

use crate::protocol::ErrorCode;

/// Exit codes of `fos-client` and `fos-server` (documented in their `--help` and the
/// README). Both use `OK` and `USAGE`; `STARTUP` is the server's only failure,
/// the rest are the client's.
pub mod exit {
    /// Success (the server: after a clean shutdown).
    pub const OK: i32 = 0;
    /// `fos-server`: it could not start (or `passwd` failed).
    pub const STARTUP: i32 = 1;
    /// A command failed (with `--list`: no server found).
    pub const FAILED: i32 = 1;
    /// Usage error.
    pub const USAGE: i32 = 2;
    /// Connection, TLS or certificate failure.
    pub const CONNECT: i32 = 3;
    /// Login refused (wrong credentials or throttled).
    pub const LOGIN: i32 = 4;
    /// Server busy.
    pub const BUSY: i32 = 5;
    /// Ctrl-C at a prompt (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: i32 = 130;

    /// A bad command line, found before anything runs: what is wrong with it.
    #[derive(Debug)]
    pub struct Usage(pub String);

    impl std::fmt::Display for Usage {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} (see --help)", self.0)
        }
    }

    impl std::error::Error for Usage {}

    /// What a binary's `try_main` came to as its exit status: its own code, or
    /// [`USAGE`] once `program: what is wrong (see --help)` is said on standard error.
    pub fn status(program: &str, result: Result<i32, Usage>) -> std::process::ExitCode {
        let code = match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{program}: {e}");
                USAGE
            }
        };
        std::process::ExitCode::from(code as u8)
    }

    /// What both binaries do first: the command line's flags by `o`, or `None` once
    /// `--help` (the text of `help`) or `--version` (`program VERSION`) is answered.
    pub fn flags(
        program: &str,
        o: &getopts::Options,
        help: impl FnOnce() -> String,
    ) -> Result<Option<getopts::Matches>, Usage> {
        let m = o
            .parse(std::env::args().skip(1))
            .map_err(|e| Usage(e.to_string()))?;
        if m.opt_present("help") {
            print!("{}", help());
            return Ok(None);
        }
        if m.opt_present("version") {
            println!("{program} {}", crate::VERSION);
            return Ok(None);
        }
        Ok(Some(m))
    }
}

/// Any fos failure, as the client and the binaries see it.
#[derive(Debug)]
pub enum Error {
    /// Bad command line or command syntax.
    Usage(String),
    /// Could not connect, or the TLS handshake failed.
    Connect(String),
    /// The server presented a certificate other than the pinned one.
    Certificate(String),
    /// The server refused the request.
    Remote(ErrorCode, String),
    /// A local file problem on the client.
    Local(String),
    /// The connection broke or the server spoke out of turn.
    Protocol(crate::protocol::Error),
    /// Setting up TLS failed.
    Tls(Box<crate::tls::Error>),
    /// Credentials layer.
    Auth(Box<crate::auth::Error>),
    /// The user cancelled (Ctrl-C during a transfer, Ctrl-D at a prompt).
    Cancelled,
    /// The user pressed Ctrl-C at a prompt.
    Interrupted,
    /// Other I/O.
    Io(io::Error),
}

impl Error {
    /// The `fos-client` exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Connect(_) | Error::Certificate(_) | Error::Tls(_) => exit::CONNECT,
            Error::Remote(ErrorCode::Auth | ErrorCode::Throttled, _) => exit::LOGIN,
            Error::Remote(ErrorCode::Busy, _) => exit::BUSY,
            Error::Protocol(_) => exit::CONNECT,
            Error::Interrupted => exit::INTERRUPTED,
            _ => exit::FAILED,
        }
    }

    /// Whether the server asked for the request to be tried again shortly: an upload
    /// it would resume is still held by an earlier one (on it or on another server
    /// of the same storage) that has not let go yet.
    pub fn is_in_use(&self) -> bool {
        matches!(self, Error::Remote(ErrorCode::InUse, _))
    }

    /// Names what a refusal was about: a server's `no such file or directory` becomes
    /// `cat nothere: no such file or directory`, and a local failure is prefixed the
    /// same way. Other errors (the connection, usage) are left as they are.
    pub fn about(self, what: &str) -> Error {
        match self {
            Error::Remote(code, msg) => Error::Remote(code, format!("{what}: {msg}")),
            Error::Local(msg) => Error::Local(format!("{what}: {msg}")),
            Error::Io(e) => Error::Local(format!("{what}: {}", crate::ioerror::text(&e))),
            other => other,
        }
    }

    /// Whether retrying on a new connection may help (the connection itself failed).
    pub fn is_network(&self) -> bool {
        match self {
            Error::Protocol(crate::protocol::Error::Io(_) | crate::protocol::Error::Closed) => true,
            Error::Connect(_) => true,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Connect(m) | Error::Certificate(m) | Error::Local(m) => {
                f.write_str(m)
            }
            Error::Remote(_, m) => f.write_str(m),
            Error::Protocol(e) => write!(f, "connection: {e}"),
            Error::Tls(e) => write!(f, "{e}"),
            Error::Auth(e) => write!(f, "{e}"),
            Error::Cancelled => f.write_str("cancelled"),
            Error::Interrupted => f.write_str("interrupted"),
            Error::Io(e) => f.write_str(&crate::ioerror::text(e)),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::protocol::Error> for Error {
    fn from(e: crate::protocol::Error) -> Self {
        Error::Protocol(e)
    }
}

impl From<crate::tls::Error> for Error {
    fn from(e: crate::tls::Error) -> Self {
        Error::Tls(Box::new(e))
    }
}

impl From<crate::auth::Error> for Error {
    fn from(e: crate::auth::Error) -> Self {
        Error::Auth(Box::new(e))
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 48,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn timeouts_say_so() {
        let e = Error::Io(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(e.to_string(), "timed out");
        let e = Error::Protocol(crate::protocol::Error::Io(io::Error::from(
            io::ErrorKind::WouldBlock,
        )));
        assert_eq!(e.to_string(), "connection: timed out");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Connect("x".into()).exit_code(), 3);
        assert_eq!(Error::Remote(ErrorCode::Auth, "x".into()).exit_code(), 4);
        assert_eq!(
            Error::Remote(ErrorCode::Throttled, "x".into()).exit_code(),
            4
        );
        assert_eq!(Error::Remote(ErrorCode::Busy, "x".into()).exit_code(), 5);
        assert_eq!(Error::Interrupted.exit_code(), 130);
        assert_eq!(Error::Cancelled.exit_code(), 1);
        assert_eq!(
            Error::Remote(ErrorCode::NotFound, "x".into()).exit_code(),
            1
        );
    }
}
