//! The table of commands: one row per verb of the native protocol, with its arity on
//! the wire, its usage and summary, whether the Python tool's protocol has it (and
//! with how many arguments) and whether it needs a logged-in session. The request
//! decoder ([`super::Request::decode`], [`super::sync::SyncRequest::decode`]), the
//! server's dispatcher and its legacy arity check all read it, so a new command is a
//! handler, a row here and a client method.
//!
//! This module only describes; it parses nothing and knows nothing of files or users.

/// How many arguments a command takes: at least `.0`, at most `.1`.
pub type Arity = (usize, usize);

/// One command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verb {
    /// The verb on the wire (the first field of a `Request` frame).
    pub name: &'static str,
    /// Arguments on the wire after the verb.
    pub arity: Arity,
    /// The fields on the wire, for documentation and error messages.
    pub usage: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// The command's arity in the Python tool's protocol, where it has it (its
    /// arguments are words of the command line).
    pub legacy: Option<Arity>,
    /// Refused before login.
    pub login: bool,
}

impl Verb {
    /// Whether `n` arguments on the wire fit [`Verb::arity`].
    pub fn admits(&self, n: usize) -> bool {
        (self.arity.0..=self.arity.1).contains(&n)
    }

    /// Whether `n` words fit the legacy arity (`false` where legacy lacks the command).
    pub fn legacy_admits(&self, n: usize) -> bool {
        self.legacy
            .is_some_and(|(min, max)| (min..=max).contains(&n))
    }
}

const fn row(
    name: &'static str,
    arity: Arity,
    usage: &'static str,
    summary: &'static str,
    legacy: Option<Arity>,
) -> Verb {
    Verb {
        name,
        arity,
        usage,
        summary,
        legacy,
        login: true,
    }
}

/// A command answered before login as well.
const fn open(
    name: &'static str,
    arity: Arity,
    usage: &'static str,
    summary: &'static str,
) -> Verb {
    Verb {
        login: false,
        ..row(name, arity, usage, summary, None)
    }
}

/// Every command, in the order of `docs/PROTOCOL.md`: the session, looking around,
/// transfers, changes, then the synchronization family.
// one row a line, so that the table reads as one
#[rustfmt::skip]
pub const VERBS: &[Verb] = &[
    open("login", (2, 2), "login USER PASSWORD", "log in"),
    open("discover", (0, 0), "discover", "the server's name, protocol version, session port and cluster"),
    open("bye", (0, 0), "bye", "end the session"),
    row("pwd", (0, 0), "pwd", "the current directory", Some((0, 0))),
    row("cd", (0, 1), "cd [PATH]", "change directory (none: to the root)", Some((0, 1))),
    row("ls", (0, 2), "ls [PATH [m]]", "list a directory or describe a file (m: with permission bits)", Some((0, 1))),
    row("stat", (1, 1), "stat PATH", "describe one path", None),
    row("cat", (1, 1), "cat PATH", "the first 1024 bytes of a file", Some((1, 1))),
    row("glob", (1, 1), "glob PATTERN", "expand a wildcard pattern", None),
    row("df", (0, 0), "df", "bytes used, and the quota and file size limit", None),
    row("get", (3, 3), "get PATH OFFSET PREFIX-SHA", "download a file from an offset", Some((1, 1))),
    row("put", (4, 5), "put PATH SIZE|- MTIME FLAGS [MODE]", "upload a file (size -: a stream)", Some((1, 1))),
    row("setattr", (3, 3), "setattr PATH MODE MTIME", "set permission bits and/or modification time", None),
    row("mkdir", (1, 1), "mkdir PATH", "make a directory", Some((1, 1))),
    row("rmdir", (1, 1), "rmdir PATH", "remove an empty directory", Some((1, 1))),
    row("rm", (1, 2), "rm PATH [r]", "remove a file (r: a whole tree)", Some((1, 1))),
    row("mv", (2, 2), "mv FROM TO", "rename or move", None),
    row("passwd", (2, 2), "passwd OLD NEW", "change the password", None),
    row("manifest", (2, 2), "manifest PATH HASHES", "everything beneath a directory, recursively", None),
    row("cput", (6, 6), "cput PATH SIZE MTIME-NS MODE EXPECT FLAGS", "a conditional upload", None),
    row("crm", (2, 2), "crm PATH EXPECT", "remove a file that still has this content", None),
    row("cmv", (3, 3), "cmv FROM TO EXPECT", "rename onto nothing, if the source still matches", None),
    row("cmkdir", (1, 1), "cmkdir PATH", "make a directory (one that exists is fine)", None),
    row("crmdir", (1, 1), "crmdir PATH", "remove an empty directory", None),
    row("cflush", (0, 0), "cflush", "make the uploads answered so far durable", None),
    row("blocks", (2, 2), "blocks PATH BLOCK-SIZE", "the hash of each block of a file", None),
    row("cpatch", (7, 7), "cpatch PATH SIZE MTIME-NS MODE BLOCK-SIZE EXPECT FLAGS", "a conditional upload built from the existing file", None),
    row("fetch", (4, 4), "fetch PATH EXPECT BLOCK-SIZE BLOCKS", "some blocks of a file", None),
];

/// The row of `name`, if it is a command.
pub fn find(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;
    use crate::protocol::sync::{Expect, Hashes, SyncRequest};

    /// Fails to compile when a variant is added without a sample below.
    fn covered(r: &Request) {
        match r {
            Request::Login { .. }
            | Request::Pwd
            | Request::Cd(_)
            | Request::Ls(_)
            | Request::LsWithModes(_)
            | Request::Stat(_)
            | Request::Cat(_)
            | Request::Get { .. }
            | Request::Put { .. }
            | Request::PutStream { .. }
            | Request::PutWithMode { .. }
            | Request::SetAttr { .. }
            | Request::Rm { .. }
            | Request::Mkdir(_)
            | Request::Rmdir(_)
            | Request::Mv { .. }
            | Request::Glob(_)
            | Request::Passwd { .. }
            | Request::Df
            | Request::Discover
            | Request::Bye => {}
            Request::Sync(s) => match s {
                SyncRequest::Manifest { .. }
                | SyncRequest::Put { .. }
                | SyncRequest::Rm { .. }
                | SyncRequest::Mv { .. }
                | SyncRequest::Mkdir(_)
                | SyncRequest::Rmdir(_)
                | SyncRequest::Flush
                | SyncRequest::Blocks { .. }
                | SyncRequest::Patch { .. }
                | SyncRequest::Fetch { .. } => {}
            },
        }
    }

    fn samples() -> Vec<Request> {
        let p = || "p".to_string();
        let sync = |s| Request::Sync(s);
        vec![
            Request::Login {
                user: "u".into(),
                password: "w".into(),
            },
            Request::Pwd,
            Request::Cd(Some(p())),
            Request::Ls(None),
            Request::LsWithModes(Some(p())),
            Request::Stat(p()),
            Request::Cat(p()),
            Request::Get {
                path: p(),
                offset: 0,
                prefix: None,
            },
            Request::Put {
                path: p(),
                size: 1,
                mtime: 0,
                no_clobber: false,
                resume: true,
            },
            Request::PutStream {
                path: p(),
                mtime: 0,
                no_clobber: true,
            },
            Request::PutWithMode {
                path: p(),
                size: Some(3),
                mtime: 0,
                no_clobber: false,
                resume: false,
                mode: 0o644,
                exact: true,
            },
            Request::SetAttr {
                path: p(),
                mode: Some(0o600),
                mtime: None,
            },
            Request::Rm {
                path: p(),
                recursive: true,
            },
            Request::Mkdir(p()),
            Request::Rmdir(p()),
            Request::Mv { from: p(), to: p() },
            Request::Glob("*".into()),
            Request::Passwd {
                old: "o".into(),
                new: "n".into(),
            },
            Request::Df,
            Request::Discover,
            Request::Bye,
            sync(SyncRequest::Manifest {
                path: p(),
                hashes: Hashes::Cached,
            }),
            sync(SyncRequest::Put {
                path: p(),
                size: 1,
                mtime_ns: 5,
                mode: 0o644,
                expect: Expect::Absent,
                resume: false,
                no_fsync: true,
            }),
            sync(SyncRequest::Rm {
                path: p(),
                expect: Expect::Sha([1; 32]),
            }),
            sync(SyncRequest::Mv {
                from: p(),
                to: p(),
                expect: Expect::Dir,
            }),
            sync(SyncRequest::Mkdir(p())),
            sync(SyncRequest::Rmdir(p())),
            sync(SyncRequest::Flush),
            sync(SyncRequest::Blocks {
                path: p(),
                block: 1 << 16,
            }),
            sync(SyncRequest::Patch {
                path: p(),
                size: 9,
                mtime_ns: 1,
                mode: 0o600,
                block: 1 << 16,
                expect: Expect::Sha([2; 32]),
                no_fsync: false,
            }),
            sync(SyncRequest::Fetch {
                path: p(),
                expect: Expect::Any,
                block: 1 << 16,
                blocks: vec![0, 3],
            }),
        ]
    }

    #[test]
    fn every_request_has_a_row_and_every_row_a_request() {
        let samples = samples();
        for r in &samples {
            covered(r);
            let row = find(r.verb()).unwrap_or_else(|| panic!("no row for {}", r.verb()));
            // the row's arity admits what the encoder sends, and the decoder takes it back
            let wire = r.encode();
            let fields = crate::protocol::frame::decode_fields(&wire).unwrap();
            assert!(
                row.admits(fields.len() - 1),
                "{}: {:?}",
                row.name,
                row.arity
            );
            assert_eq!(&Request::decode(&r.encode()).unwrap(), r);
        }
        for v in VERBS {
            assert!(
                samples.iter().any(|r| r.verb() == v.name),
                "row {} has no request",
                v.name
            );
            assert!(v.usage.starts_with(v.name), "{}", v.usage);
            assert!(!v.summary.is_empty() && !v.summary.ends_with('.'));
        }
        let mut names: Vec<&str> = VERBS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VERBS.len(), "a verb has two rows");
    }

    #[test]
    fn only_the_session_verbs_come_before_login() {
        let open: Vec<&str> = VERBS.iter().filter(|v| !v.login).map(|v| v.name).collect();
        assert_eq!(open, ["login", "discover", "bye"]);
        assert!(find("get").unwrap().legacy_admits(1));
        assert!(!find("get").unwrap().legacy_admits(2));
        assert!(!find("stat").unwrap().legacy_admits(1));
        assert!(find("frobnicate").is_none());
    }
}
