//! Typed native messages: [`Request`] (verb + arguments), reply [`ErrorCode`]s and
//! directory [`Entry`]s, with their field encodings. Parsing is strict: a wrong
//! argument count or a malformed number is a [`Error::BadRequest`], never a panic.

use super::frame::{Error, decode_fields, encode_fields};

// The entry and the path limit are shared with the sandbox, which knows no protocol;
// their wire form is here.
pub use crate::entry::{Entry, EntryKind, MAX_PATH};
/// Longest non-path argument (user names, passwords, flags), in bytes.
pub const MAX_ARG: usize = 1024;
/// The size field of a `put` whose size is not known beforehand.
pub const STREAM_SIZE: &str = "-";

/// A request from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Log in; the only request accepted before login (with `Discover` and `Bye`).
    Login {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// The current directory, relative to the user's root.
    Pwd,
    /// Change directory (`None`: to the root).
    Cd(Option<String>),
    /// List a directory (`None`: the current one) or describe a single file.
    Ls(Option<String>),
    /// [`Request::Ls`] with each entry's permission bits ([`Entry::encode_with_mode`]):
    /// `ls path "m"`, sent only to a server that announced the `modes` feature.
    LsWithModes(Option<String>),
    /// Describe one path.
    Stat(String),
    /// The first 1024 bytes of a file.
    Cat(String),
    /// Download a file from `offset`; `prefix` is the SHA-256 of the bytes before it,
    /// which the server checks against its file before sending anything.
    Get {
        /// Remote path.
        path: String,
        /// Where to start.
        offset: u64,
        /// SHA-256 of the client's first `offset` bytes (required when `offset > 0`).
        prefix: Option<[u8; 32]>,
    },
    /// Upload a file of `size` bytes.
    Put {
        /// Remote path.
        path: String,
        /// Size announced by the client; the upload must match it exactly.
        size: u64,
        /// Modification time to set, seconds since the epoch.
        mtime: i64,
        /// Refuse to replace an existing file.
        no_clobber: bool,
        /// Continue a partial upload of the same file if the server has one.
        resume: bool,
    },
    /// Upload a stream whose size is not known beforehand (`put` with size `-`): the
    /// data runs until the `End` frame, which carries the size as well as the SHA-256.
    /// It cannot be resumed.
    PutStream {
        /// Remote path.
        path: String,
        /// Modification time to set, seconds since the epoch.
        mtime: i64,
        /// Refuse to replace an existing file.
        no_clobber: bool,
    },
    /// [`Request::Put`] or [`Request::PutStream`] (`size: None`) with the file's
    /// permission bits: `put path size mtime flags mode`, sent only to a server that
    /// announced the `modes` feature. (A variant of its own, so that code building the
    /// older requests stays as it is.)
    PutWithMode {
        /// Remote path.
        path: String,
        /// Size announced; `None`: a stream, its size given at the end.
        size: Option<u64>,
        /// Modification time to set, seconds since the epoch.
        mtime: i64,
        /// Refuse to replace an existing file.
        no_clobber: bool,
        /// Continue a partial upload of the same file (never for a stream).
        resume: bool,
        /// Permission bits of the source (`0o7777` at most).
        mode: u32,
        /// Keep `mode` as it is (flag `p`): the server's umask does not apply, nor the
        /// mode of the file it replaces; its policy still does.
        exact: bool,
    },
    /// Sets a path's permission bits and/or modification time (`setattr path mode
    /// mtime`, either empty for "leave it"): `chmod`, and directories' times after
    /// `put -r`. Symlinks are followed only within the user's root.
    SetAttr {
        /// Remote path.
        path: String,
        /// Permission bits, before the server's policy.
        mode: Option<u32>,
        /// Modification time, seconds since the epoch.
        mtime: Option<i64>,
    },
    /// Remove a file (`recursive`: a directory tree, never following symlinks).
    Rm {
        /// Remote path.
        path: String,
        /// Remove a directory and everything below it.
        recursive: bool,
    },
    /// Make a directory.
    Mkdir(String),
    /// Remove an empty directory.
    Rmdir(String),
    /// Rename or move within the user's root.
    Mv {
        /// Existing path.
        from: String,
        /// New path.
        to: String,
    },
    /// Expand a glob pattern inside the sandbox.
    Glob(String),
    /// Change the logged-in user's password.
    Passwd {
        /// Current password.
        old: String,
        /// New password.
        new: String,
    },
    /// The user's storage: bytes used, and the quota and file size limit if any.
    Df,
    /// Discovery: name, protocol version and session port.
    Discover,
    /// End the session.
    Bye,
    /// The synchronization family (`manifest`, conditional writes, `cflush`, …).
    Sync(super::sync::SyncRequest),
}

pub(super) fn text(field: &[u8], what: &str, max: usize) -> Result<String, Error> {
    if field.len() > max {
        return Err(Error::BadRequest(format!("{what} longer than {max} bytes")));
    }
    String::from_utf8(field.to_vec()).map_err(|_| Error::BadRequest(format!("{what} is not UTF-8")))
}

pub(super) fn number<T: std::str::FromStr>(field: &[u8], what: &str) -> Result<T, Error> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::BadRequest(format!("{what} is not a number")))
}

/// Parses permission bits written in octal (at most `7777`).
pub fn octal_mode(field: &[u8]) -> Result<u32, Error> {
    std::str::from_utf8(field)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 4)
        .and_then(|s| u32::from_str_radix(s, 8).ok())
        .ok_or_else(|| Error::BadRequest("mode is not octal permission bits".into()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits into a SHA-256 value.
pub fn unhex32(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

impl Request {
    /// The verb, as sent on the wire and written in the server log.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Login { .. } => "login",
            Request::Pwd => "pwd",
            Request::Cd(_) => "cd",
            Request::Ls(_) | Request::LsWithModes(_) => "ls",
            Request::Stat(_) => "stat",
            Request::Cat(_) => "cat",
            Request::Get { .. } => "get",
            Request::Put { .. } | Request::PutStream { .. } | Request::PutWithMode { .. } => "put",
            Request::SetAttr { .. } => "setattr",
            Request::Rm { .. } => "rm",
            Request::Mkdir(_) => "mkdir",
            Request::Rmdir(_) => "rmdir",
            Request::Mv { .. } => "mv",
            Request::Glob(_) => "glob",
            Request::Passwd { .. } => "passwd",
            Request::Df => "df",
            Request::Discover => "discover",
            Request::Bye => "bye",
            Request::Sync(s) => s.verb(),
        }
    }

    /// The request as fields (the payload of a `Request` frame).
    pub fn encode(&self) -> Vec<u8> {
        let verb = self.verb().to_string();
        let fields: Vec<String> = match self {
            Request::Login { user, password } => vec![verb, user.clone(), password.clone()],
            Request::Pwd | Request::Df | Request::Discover | Request::Bye => vec![verb],
            Request::Cd(p) | Request::Ls(p) => std::iter::once(verb).chain(p.clone()).collect(),
            Request::LsWithModes(p) => vec![verb, p.clone().unwrap_or_default(), "m".into()],
            Request::PutWithMode {
                path,
                size,
                mtime,
                no_clobber,
                resume,
                mode,
                exact,
            } => {
                let mut flags = String::new();
                for (on, f) in [(*no_clobber, 'n'), (*resume, 'r'), (*exact, 'p')] {
                    if on {
                        flags.push(f);
                    }
                }
                vec![
                    verb,
                    path.clone(),
                    size.map_or_else(|| STREAM_SIZE.to_string(), |s| s.to_string()),
                    mtime.to_string(),
                    flags,
                    format!("{mode:o}"),
                ]
            }
            Request::SetAttr { path, mode, mtime } => vec![
                verb,
                path.clone(),
                mode.map(|m| format!("{m:o}")).unwrap_or_default(),
                mtime.map(|t| t.to_string()).unwrap_or_default(),
            ],
            Request::Stat(p)
            | Request::Cat(p)
            | Request::Mkdir(p)
            | Request::Rmdir(p)
            | Request::Glob(p) => vec![verb, p.clone()],
            Request::Get {
                path,
                offset,
                prefix,
            } => vec![
                verb,
                path.clone(),
                offset.to_string(),
                prefix.map(|p| hex(&p)).unwrap_or_default(),
            ],
            Request::Put {
                path,
                size,
                mtime,
                no_clobber,
                resume,
            } => {
                let mut flags = String::new();
                if *no_clobber {
                    flags.push('n');
                }
                if *resume {
                    flags.push('r');
                }
                vec![
                    verb,
                    path.clone(),
                    size.to_string(),
                    mtime.to_string(),
                    flags,
                ]
            }
            Request::PutStream {
                path,
                mtime,
                no_clobber,
            } => vec![
                verb,
                path.clone(),
                STREAM_SIZE.to_string(),
                mtime.to_string(),
                if *no_clobber { "n" } else { "" }.to_string(),
            ],
            Request::Rm { path, recursive } => {
                vec![
                    verb,
                    path.clone(),
                    if *recursive { "r" } else { "" }.to_string(),
                ]
            }
            Request::Mv { from, to } => vec![verb, from.clone(), to.clone()],
            Request::Passwd { old, new } => vec![verb, old.clone(), new.clone()],
            Request::Sync(s) => return s.encode(),
        };
        encode_fields(&fields)
    }

    /// Parses a `Request` frame payload.
    pub fn decode(payload: &[u8]) -> Result<Request, Error> {
        let fields = decode_fields(payload)?;
        let (verb, args) = fields
            .split_first()
            .ok_or(Error::BadRequest("empty request".into()))?;
        let verb = std::str::from_utf8(verb).unwrap_or("?");
        let path = |i: usize| text(args[i], "path", MAX_PATH);
        // the table says which verbs there are and how many arguments each takes
        let row = super::verbs::find(verb).ok_or(Error::BadRequest("unknown command".into()))?;
        if !row.admits(args.len()) {
            return Err(Error::BadRequest(format!(
                "wrong number of arguments for {verb}"
            )));
        }
        let req = match verb {
            "login" => Request::Login {
                user: text(args[0], "user name", MAX_ARG)?,
                password: text(args[1], "password", MAX_ARG)?,
            },
            "pwd" => Request::Pwd,
            "df" => Request::Df,
            "discover" => Request::Discover,
            "bye" => Request::Bye,
            "cd" => Request::Cd(if args.is_empty() {
                None
            } else {
                Some(path(0)?)
            }),
            "ls" => {
                let p = match args.first() {
                    None | Some([]) => None,
                    Some(_) => Some(path(0)?),
                };
                match args.get(1).copied() {
                    None => Request::Ls(p),
                    Some(b"m") => Request::LsWithModes(p),
                    Some(_) => return Err(Error::BadRequest("unknown ls flag".into())),
                }
            }
            "setattr" => Request::SetAttr {
                path: path(0)?,
                mode: match args[1] {
                    [] => None,
                    m => Some(octal_mode(m)?),
                },
                mtime: match args[2] {
                    [] => None,
                    t => Some(number(t, "mtime")?),
                },
            },
            "stat" => Request::Stat(path(0)?),
            "cat" => Request::Cat(path(0)?),
            "mkdir" => Request::Mkdir(path(0)?),
            "rmdir" => Request::Rmdir(path(0)?),
            "glob" => Request::Glob(path(0)?),
            "get" => {
                let offset = number(args[1], "offset")?;
                let prefix = match args[2] {
                    [] => None,
                    h => Some(unhex32(h).ok_or(Error::BadRequest("bad prefix hash".into()))?),
                };
                if offset > 0 && prefix.is_none() {
                    return Err(Error::BadRequest("resume needs the prefix hash".into()));
                }
                Request::Get {
                    path: path(0)?,
                    offset,
                    prefix,
                }
            }
            "put" if args.len() == 5 => {
                let flags = args[3];
                if flags.iter().any(|f| !b"nrp".contains(f)) {
                    return Err(Error::BadRequest("unknown put flag".into()));
                }
                let stream = args[1] == STREAM_SIZE.as_bytes();
                if stream && flags.contains(&b'r') {
                    return Err(Error::BadRequest(
                        "an upload of unknown size cannot be resumed".into(),
                    ));
                }
                Request::PutWithMode {
                    path: path(0)?,
                    size: match stream {
                        true => None,
                        false => Some(number(args[1], "size")?),
                    },
                    mtime: number(args[2], "mtime")?,
                    no_clobber: flags.contains(&b'n'),
                    resume: flags.contains(&b'r'),
                    mode: octal_mode(args[4])?,
                    exact: flags.contains(&b'p'),
                }
            }
            "put" => {
                let flags = args[3];
                if flags.iter().any(|f| !b"nr".contains(f)) {
                    return Err(Error::BadRequest("unknown put flag".into()));
                }
                if args[1] == STREAM_SIZE.as_bytes() {
                    if flags.contains(&b'r') {
                        return Err(Error::BadRequest(
                            "an upload of unknown size cannot be resumed".into(),
                        ));
                    }
                    return Ok(Request::PutStream {
                        path: path(0)?,
                        mtime: number(args[2], "mtime")?,
                        no_clobber: flags.contains(&b'n'),
                    });
                }
                Request::Put {
                    path: path(0)?,
                    size: number(args[1], "size")?,
                    mtime: number(args[2], "mtime")?,
                    no_clobber: flags.contains(&b'n'),
                    resume: flags.contains(&b'r'),
                }
            }
            "rm" => {
                let recursive = match args.get(1).copied() {
                    None | Some(b"") => false,
                    Some(b"r") => true,
                    Some(_) => return Err(Error::BadRequest("unknown rm flag".into())),
                };
                Request::Rm {
                    path: path(0)?,
                    recursive,
                }
            }
            "mv" => Request::Mv {
                from: path(0)?,
                to: path(1)?,
            },
            "passwd" => Request::Passwd {
                old: text(args[0], "password", MAX_ARG)?,
                new: text(args[1], "password", MAX_ARG)?,
            },
            v => match super::sync::SyncRequest::decode(v, args)? {
                Some(s) => Request::Sync(s),
                None => return Err(Error::BadRequest("unknown command".into())),
            },
        };
        Ok(req)
    }
}

/// Why a request failed, as sent in an `Error` frame's first field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The path does not exist, or the sandbox refused it (deliberately the same).
    NotFound,
    /// The target exists (mkdir, put -n, mv onto a directory).
    Exists,
    /// rmdir of a non-empty directory.
    NotEmpty,
    /// A directory was needed.
    NotADirectory,
    /// A file was needed.
    IsADirectory,
    /// Malformed or unknown request.
    Invalid,
    /// Wrong user name or password.
    Auth,
    /// Too many failed logins from this address.
    Throttled,
    /// Session limits reached.
    Busy,
    /// Over `--max-file-size`.
    TooLarge,
    /// Over the user's quota.
    Quota,
    /// SHA-256 mismatch; nothing was committed.
    Integrity,
    /// Server-side I/O failure (disk full, permissions).
    Io,
    /// Not supported by this server or for this user.
    Unsupported,
    /// The transfer was aborted by its sender.
    Aborted,
    /// A conditional write (sync) found the path no longer as its plan saw it.
    Changed,
    /// Another running upload holds the partial this resume needs, and did not let go
    /// in time (it may run on another server sharing the storage): try again shortly.
    InUse,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not-found",
            ErrorCode::Exists => "exists",
            ErrorCode::NotEmpty => "not-empty",
            ErrorCode::NotADirectory => "not-a-directory",
            ErrorCode::IsADirectory => "is-a-directory",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Auth => "auth",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Busy => "busy",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Quota => "quota",
            ErrorCode::Integrity => "integrity",
            ErrorCode::Io => "io",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Aborted => "aborted",
            ErrorCode::Changed => "changed",
            ErrorCode::InUse => "in-use",
        }
    }

    /// Parses a wire code; unknown codes (from a newer server) become `Invalid`.
    pub fn parse(s: &[u8]) -> ErrorCode {
        const ALL: [ErrorCode; 17] = [
            ErrorCode::NotFound,
            ErrorCode::Exists,
            ErrorCode::NotEmpty,
            ErrorCode::NotADirectory,
            ErrorCode::IsADirectory,
            ErrorCode::Invalid,
            ErrorCode::Auth,
            ErrorCode::Throttled,
            ErrorCode::Busy,
            ErrorCode::TooLarge,
            ErrorCode::Quota,
            ErrorCode::Integrity,
            ErrorCode::Io,
            ErrorCode::Unsupported,
            ErrorCode::Aborted,
            ErrorCode::Changed,
            ErrorCode::InUse,
        ];
        ALL.into_iter()
            .find(|c| c.as_str().as_bytes() == s)
            .unwrap_or(ErrorCode::Invalid)
    }
}

/// The wire byte of each entry kind.
pub(super) fn kind_byte(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Dir => b'd',
        EntryKind::File => b'f',
        EntryKind::Link => b'l',
        EntryKind::Other => b'o',
    }
}

/// The entry kind of a wire byte made by [`kind_byte`].
pub(super) fn byte_kind(b: u8) -> Result<EntryKind, Error> {
    Ok(match b {
        b'd' => EntryKind::Dir,
        b'f' => EntryKind::File,
        b'l' => EntryKind::Link,
        b'o' => EntryKind::Other,
        _ => return Err(Error::BadFields),
    })
}

impl Entry {
    /// Encodes as one field: kind byte, size (u64 BE), mtime (i64 BE), name.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.name.len());
        out.push(kind_byte(self.kind));
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.mtime.to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    /// Encodes as one field with the permission bits: kind byte, size (u64 BE), mtime
    /// (i64 BE), mode (u32 BE), name. For [`Request::LsWithModes`] only.
    pub fn encode_with_mode(&self) -> Vec<u8> {
        let mut out = self.encode();
        let mode = self.mode.unwrap_or(0).to_be_bytes();
        out.splice(17..17, mode);
        out
    }

    /// Decodes one field made by [`Entry::encode_with_mode`].
    pub fn decode_with_mode(field: &[u8]) -> Result<Entry, Error> {
        if field.len() < 21 {
            return Err(Error::BadFields);
        }
        let mode = u32::from_be_bytes(field[17..21].try_into().map_err(|_| Error::BadFields)?);
        let plain: Vec<u8> = [&field[..17], &field[21..]].concat();
        Ok(Entry {
            mode: Some(mode & 0o7777),
            ..Entry::decode(&plain)?
        })
    }

    /// Decodes one field made by [`Entry::encode`].
    pub fn decode(field: &[u8]) -> Result<Entry, Error> {
        if field.len() < 17 {
            return Err(Error::BadFields);
        }
        let kind = byte_kind(field[0])?;
        let size = u64::from_be_bytes(field[1..9].try_into().map_err(|_| Error::BadFields)?);
        let mtime = i64::from_be_bytes(field[9..17].try_into().map_err(|_| Error::BadFields)?);
        let name = String::from_utf8_lossy(&field[17..]).into_owned();
        Ok(Entry {
            name,
            kind,
            size,
            mtime,
            mode: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(req: Request) {
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
    }

    #[test]
    fn every_request_round_trips() {
        round(Request::Login {
            user: "u".into(),
            password: "p:w d".into(),
        });
        round(Request::Pwd);
        round(Request::Cd(None));
        round(Request::Cd(Some("a b".into())));
        round(Request::Ls(Some("x".into())));
        round(Request::Ls(None));
        round(Request::LsWithModes(None));
        round(Request::LsWithModes(Some("d".into())));
        round(Request::PutWithMode {
            path: "p".into(),
            size: Some(9),
            mtime: 4,
            no_clobber: true,
            resume: true,
            mode: 0o755,
            exact: true,
        });
        round(Request::PutWithMode {
            path: "p".into(),
            size: None,
            mtime: 4,
            no_clobber: false,
            resume: false,
            mode: 0o600,
            exact: false,
        });
        round(Request::SetAttr {
            path: "s".into(),
            mode: Some(0o644),
            mtime: None,
        });
        round(Request::SetAttr {
            path: "s".into(),
            mode: None,
            mtime: Some(-1),
        });
        round(Request::Stat("s".into()));
        round(Request::Cat("c".into()));
        round(Request::Get {
            path: "g".into(),
            offset: 0,
            prefix: None,
        });
        round(Request::Get {
            path: "g".into(),
            offset: 7,
            prefix: Some([0xab; 32]),
        });
        round(Request::Put {
            path: "p".into(),
            size: 9,
            mtime: -3,
            no_clobber: true,
            resume: false,
        });
        round(Request::PutStream {
            path: "p".into(),
            mtime: 5,
            no_clobber: true,
        });
        round(Request::Rm {
            path: "r".into(),
            recursive: true,
        });
        round(Request::Mkdir("m".into()));
        round(Request::Rmdir("m".into()));
        round(Request::Mv {
            from: "a".into(),
            to: "b".into(),
        });
        round(Request::Glob("*.txt".into()));
        round(Request::Passwd {
            old: "o".into(),
            new: "n".into(),
        });
        round(Request::Df);
        round(Request::Discover);
        round(Request::Bye);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let bad: &[&[&str]] = &[
            &[],
            &["frobnicate"],
            &["cat"],
            &["cat", "a", "b"],
            &["get", "a", "x", ""],
            &["get", "a", "5", ""],
            &["get", "a", "0", "zz"],
            &["put", "a", "1", "0", "q"],
            &["put", "a", "-1", "0", ""],
            &["put", "a", "-", "0", "r"],
            &["put", "a", "-", "x", ""],
            &["rm", "a", "x"],
            &["login", "u"],
            &["df", "x"],
            &["ls", "d", "q"],
            &["put", "a", "1", "0", "x", "644"],
            &["put", "a", "1", "0", "", "9"],
            &["put", "a", "-", "0", "r", "644"],
            &["setattr", "a", "77777", ""],
            &["setattr", "a"],
        ];
        for fields in bad {
            assert!(
                Request::decode(&encode_fields(fields)).is_err(),
                "{fields:?}"
            );
        }
        let long = "a".repeat(MAX_PATH + 1);
        assert!(Request::decode(&encode_fields(&["cat", &long])).is_err());
        assert!(Request::decode(&encode_fields(&[&b"cat"[..], b"\xff"])).is_err());
    }

    #[test]
    fn entries_and_codes_round_trip() {
        let e = Entry {
            name: "n x".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 1 << 40,
            mode: None,
        };
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        let m = Entry {
            mode: Some(0o750),
            ..e.clone()
        };
        assert_eq!(Entry::decode_with_mode(&m.encode_with_mode()).unwrap(), m);
        assert!(Entry::decode_with_mode(&e.encode()[..20]).is_err());
        assert!(Entry::decode(b"short").is_err());
        for code in ["not-found", "quota", "busy", "aborted", "changed"] {
            assert_eq!(ErrorCode::parse(code.as_bytes()).as_str(), code);
        }
        assert_eq!(ErrorCode::parse(b"new-thing"), ErrorCode::Invalid);
    }

    #[test]
    fn hex_round_trips() {
        let v = [0x01, 0xfe, 0x7a];
        assert_eq!(hex(&v), "01fe7a");
        let h = [0x5c; 32];
        assert_eq!(unhex32(hex(&h).as_bytes()), Some(h));
        assert_eq!(unhex32(b"12"), None);
    }
}
