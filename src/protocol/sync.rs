//! The requests `sync` adds to the native protocol ([`SyncRequest`]), their field
//! encodings, and the entries of a recursive manifest ([`ManifestEntry`]). See
//! `docs/PROTOCOL.md`, "Synchronization".
//!
//! The conditional writes carry what the client's plan was made from ([`Expect`]):
//! the server refuses with `changed` when the path no longer matches. This module only
//! parses and formats; the server side lives in `server::syncops` and
//! `server::manifest`, the client side in the `sync` module.

use super::EntryKind;
use super::command::{MAX_PATH, byte_kind, hex, kind_byte, number, text, unhex32};
use super::frame::{Error, encode_fields};

/// What a conditional write expects to find at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: the path must not exist (`-` on the wire).
    Absent,
    /// A regular file with exactly this SHA-256 (64 hex digits).
    Sha([u8; 32]),
    /// A directory, whatever it holds (`d`).
    Dir,
    /// Anything or nothing: no condition (`*`).
    Any,
}

impl Expect {
    /// The wire form.
    pub fn encode(&self) -> String {
        match self {
            Expect::Absent => "-".into(),
            Expect::Sha(s) => hex(s),
            Expect::Dir => "d".into(),
            Expect::Any => "*".into(),
        }
    }

    /// Parses the wire form.
    pub fn decode(f: &[u8]) -> Result<Expect, Error> {
        Ok(match f {
            b"-" => Expect::Absent,
            b"d" => Expect::Dir,
            b"*" => Expect::Any,
            h => Expect::Sha(unhex32(h).ok_or(Error::BadRequest("bad expected hash".into()))?),
        })
    }
}

/// Which SHA-256 values a manifest carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashes {
    /// None (flag empty).
    None,
    /// Only those the server's hash cache holds for the file's current state (`c`): cheap.
    Cached,
    /// Every file's, hashing those the cache does not hold (`h`).
    All,
}

/// A request of the synchronization family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// Everything beneath a directory, recursively, in one streamed reply.
    Manifest {
        /// The directory.
        path: String,
        /// Which hashes to include.
        hashes: Hashes,
    },
    /// A conditional upload: the content (`Data`… `End`) follows the request at once
    /// unless `resume` is set (then the server first answers `Ok [offset, prefix]` as
    /// for `put`). One reply after the content, possibly deferred until `Flush`.
    Put {
        /// Remote path.
        path: String,
        /// Exact size.
        size: u64,
        /// Modification time to set, nanoseconds since the epoch.
        mtime_ns: i64,
        /// Permission bits to set (the server keeps the owner's read and write).
        mode: u32,
        /// What the path must hold when the file is renamed into place.
        expect: Expect,
        /// Resumable: the server announces what it already has before the content.
        resume: bool,
        /// The client does not need this file durable before the reply.
        no_fsync: bool,
    },
    /// Removes a file that must still have this content.
    Rm {
        /// Remote path.
        path: String,
        /// The SHA-256 the file must have.
        expect: Expect,
    },
    /// Renames `from` to `to`, which must not exist; `from` must match `expect`.
    Mv {
        /// Existing path.
        from: String,
        /// New path (never replaced).
        to: String,
        /// What `from` must be: a file's SHA-256 or a directory.
        expect: Expect,
    },
    /// Makes a directory; one that already exists is fine.
    Mkdir(String),
    /// Removes a directory if it is empty.
    Rmdir(String),
    /// Makes every upload answered so far durable, sends the replies held back for
    /// that, then answers itself.
    Flush,
    /// The hash of each fixed-size block of a file (for a delta), and the whole
    /// file's SHA-256: `Ok [size, block-size, whole-sha hex, block hashes]`, the last
    /// field [`BLOCK_HASH`] bytes per block.
    Blocks {
        /// Remote path.
        path: String,
        /// Block size in bytes (a power of two from 64 KiB to 64 MiB).
        block: u64,
    },
    /// A conditional upload built from the existing file: `path` must have `expect`'s
    /// content. The changed bytes follow at once as `Data` frames (an 8-byte
    /// big-endian offset, then the bytes), then `End` with the new file's SHA-256;
    /// every range not sent is copied from the old file at the same offset.
    Patch {
        /// Remote path.
        path: String,
        /// New size.
        size: u64,
        /// Modification time to set, nanoseconds.
        mtime_ns: i64,
        /// Permission bits to set.
        mode: u32,
        /// Block size the client's block list was made with.
        block: u64,
        /// The SHA-256 the old file must have.
        expect: Expect,
        /// No durability needed before the reply.
        no_fsync: bool,
    },
    /// Some blocks of a file (for a delta download): `Ok [size]`, then the blocks as
    /// `Data` frames (an 8-byte big-endian offset, then the bytes) and `End` with the
    /// whole file's SHA-256. The file must still have `expect`'s content.
    Fetch {
        /// Remote path.
        path: String,
        /// The SHA-256 the file must have (or [`Expect::Any`]).
        expect: Expect,
        /// Block size.
        block: u64,
        /// The blocks wanted, by index, increasing.
        blocks: Vec<u32>,
    },
}

/// Most blocks one `fetch` may ask for.
pub const MAX_FETCH: usize = 65_536;

/// Smallest and largest block size a `blocks` request may ask for.
pub const BLOCK_RANGE: (u64, u64) = (64 << 10, 64 << 20);

fn flags(resume: bool, no_fsync: bool) -> String {
    let mut f = String::new();
    if resume {
        f.push('r');
    }
    if no_fsync {
        f.push('f');
    }
    f
}

impl SyncRequest {
    /// The verb, as sent on the wire and written in the server log.
    pub fn verb(&self) -> &'static str {
        match self {
            SyncRequest::Manifest { .. } => "manifest",
            SyncRequest::Put { .. } => "cput",
            SyncRequest::Rm { .. } => "crm",
            SyncRequest::Mv { .. } => "cmv",
            SyncRequest::Mkdir(_) => "cmkdir",
            SyncRequest::Rmdir(_) => "crmdir",
            SyncRequest::Flush => "cflush",
            SyncRequest::Blocks { .. } => "blocks",
            SyncRequest::Patch { .. } => "cpatch",
            SyncRequest::Fetch { .. } => "fetch",
        }
    }

    /// The request as fields (the payload of a `Request` frame).
    pub fn encode(&self) -> Vec<u8> {
        let verb = self.verb().to_string();
        if let SyncRequest::Fetch {
            path,
            expect,
            block,
            blocks,
        } = self
        {
            let list: Vec<u8> = blocks.iter().flat_map(|b| b.to_be_bytes()).collect();
            return encode_fields(&[
                verb.as_bytes(),
                path.as_bytes(),
                expect.encode().as_bytes(),
                block.to_string().as_bytes(),
                &list,
            ]);
        }
        let fields: Vec<String> = match self {
            SyncRequest::Manifest { path, hashes } => {
                let h = match hashes {
                    Hashes::None => "",
                    Hashes::Cached => "c",
                    Hashes::All => "h",
                };
                vec![verb, path.clone(), h.into()]
            }
            SyncRequest::Put {
                path,
                size,
                mtime_ns,
                mode,
                expect,
                resume,
                no_fsync,
            } => vec![
                verb,
                path.clone(),
                size.to_string(),
                mtime_ns.to_string(),
                format!("{:o}", mode & 0o7777),
                expect.encode(),
                flags(*resume, *no_fsync),
            ],
            SyncRequest::Rm { path, expect } => vec![verb, path.clone(), expect.encode()],
            SyncRequest::Mv { from, to, expect } => {
                vec![verb, from.clone(), to.clone(), expect.encode()]
            }
            SyncRequest::Mkdir(p) | SyncRequest::Rmdir(p) => vec![verb, p.clone()],
            SyncRequest::Flush => vec![verb],
            SyncRequest::Blocks { path, block } => vec![verb, path.clone(), block.to_string()],
            SyncRequest::Patch {
                path,
                size,
                mtime_ns,
                mode,
                block,
                expect,
                no_fsync,
            } => vec![
                verb,
                path.clone(),
                size.to_string(),
                mtime_ns.to_string(),
                format!("{:o}", mode & 0o7777),
                block.to_string(),
                expect.encode(),
                flags(false, *no_fsync),
            ],
            SyncRequest::Fetch { .. } => Vec::new(), // encoded above
        };
        encode_fields(&fields)
    }

    /// Parses the arguments of a sync verb; `Ok(None)` if `verb` is not one.
    pub fn decode(verb: &str, args: &[&[u8]]) -> Result<Option<SyncRequest>, Error> {
        let path = |i: usize| text(args[i], "path", MAX_PATH);
        // the table says how many arguments each verb takes
        let Some(row) = super::verbs::find(verb) else {
            return Ok(None);
        };
        if !row.admits(args.len()) {
            return Err(Error::BadRequest(format!(
                "wrong number of arguments for {verb}"
            )));
        }
        let mode = |f: &[u8]| {
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 8).ok())
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| Error::BadRequest("mode is not an octal number".into()))
        };
        let put_flags = |f: &[u8], allowed: &[u8]| {
            if f.iter().any(|c| !allowed.contains(c)) {
                return Err(Error::BadRequest(format!("unknown {verb} flag")));
            }
            Ok((f.contains(&b'r'), f.contains(&b'f')))
        };
        let req = match verb {
            "manifest" => {
                let hashes = match args[1] {
                    b"" => Hashes::None,
                    b"c" => Hashes::Cached,
                    b"h" => Hashes::All,
                    _ => return Err(Error::BadRequest("unknown manifest flag".into())),
                };
                SyncRequest::Manifest {
                    path: path(0)?,
                    hashes,
                }
            }
            "cput" => {
                let (resume, no_fsync) = put_flags(args[5], b"rf")?;
                SyncRequest::Put {
                    path: path(0)?,
                    size: number(args[1], "size")?,
                    mtime_ns: number(args[2], "mtime")?,
                    mode: mode(args[3])?,
                    expect: Expect::decode(args[4])?,
                    resume,
                    no_fsync,
                }
            }
            "crm" => SyncRequest::Rm {
                path: path(0)?,
                expect: Expect::decode(args[1])?,
            },
            "cmv" => SyncRequest::Mv {
                from: path(0)?,
                to: path(1)?,
                expect: Expect::decode(args[2])?,
            },
            "cmkdir" => SyncRequest::Mkdir(path(0)?),
            "crmdir" => SyncRequest::Rmdir(path(0)?),
            "cflush" => SyncRequest::Flush,
            "blocks" => {
                let block = number(args[1], "block size")?;
                if !block_size_ok(block) {
                    return Err(Error::BadRequest("unsupported block size".into()));
                }
                SyncRequest::Blocks {
                    path: path(0)?,
                    block,
                }
            }
            "cpatch" => {
                let (_, no_fsync) = put_flags(args[6], b"f")?;
                let block = number(args[4], "block size")?;
                if !block_size_ok(block) {
                    return Err(Error::BadRequest("unsupported block size".into()));
                }
                SyncRequest::Patch {
                    path: path(0)?,
                    size: number(args[1], "size")?,
                    mtime_ns: number(args[2], "mtime")?,
                    mode: mode(args[3])?,
                    block,
                    expect: Expect::decode(args[5])?,
                    no_fsync,
                }
            }
            "fetch" => {
                let block = number(args[2], "block size")?;
                if !block_size_ok(block)
                    || !args[3].len().is_multiple_of(4)
                    || args[3].len() > MAX_FETCH * 4
                {
                    return Err(Error::BadRequest("bad block list".into()));
                }
                let blocks: Vec<u32> = args[3]
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if blocks.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(Error::BadRequest("blocks must be listed in order".into()));
                }
                SyncRequest::Fetch {
                    path: path(0)?,
                    expect: Expect::decode(args[1])?,
                    block,
                    blocks,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(req))
    }
}

/// Files at least this large are sent as a delta when the other side has an older
/// version.
pub const DELTA_MIN: u64 = 8 << 20;

/// Bytes of each block's hash in a `blocks` reply (the start of its SHA-256; the
/// whole file's SHA-256 is checked at the end, so a collision costs a retry, never a
/// wrong file).
pub const BLOCK_HASH: usize = 16;

/// The block size for a delta of a file of `size` bytes: about 4096 blocks, a power
/// of two within [`BLOCK_RANGE`].
pub fn block_size_for(size: u64) -> u64 {
    (size / 4096)
        .next_power_of_two()
        .clamp(BLOCK_RANGE.0, BLOCK_RANGE.1)
}

/// The hash of one block.
pub fn block_hash(data: &[u8]) -> [u8; BLOCK_HASH] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; BLOCK_HASH];
    out.copy_from_slice(&d.as_ref()[..BLOCK_HASH]);
    out
}

/// Whether `b` is a block size `blocks` and `cpatch` accept.
pub fn block_size_ok(b: u64) -> bool {
    b.is_power_of_two() && (BLOCK_RANGE.0..=BLOCK_RANGE.1).contains(&b)
}

/// One entry of a manifest: a path relative to the manifest's directory (names
/// joined by `/`), its kind, size, modification time in nanoseconds, permission bits
/// and, when asked for and known, the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative path (`a/b/c`).
    pub path: String,
    /// Type.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// SHA-256 of the content (files only).
    pub sha: Option<[u8; 32]>,
}

impl ManifestEntry {
    /// One field: kind byte, size (u64 BE), mtime ns (i64 BE), mode (u32 BE), hash
    /// length (0 or 32) and the hash, then the path.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(54 + self.path.len());
        out.push(kind_byte(self.kind));
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.mtime_ns.to_be_bytes());
        out.extend_from_slice(&self.mode.to_be_bytes());
        match &self.sha {
            Some(s) => {
                out.push(32);
                out.extend_from_slice(s);
            }
            None => out.push(0),
        }
        out.extend_from_slice(self.path.as_bytes());
        out
    }

    /// Decodes one field made by [`ManifestEntry::encode`]. The path must be UTF-8;
    /// whether its names are acceptable is the receiver's to check.
    pub fn decode(f: &[u8]) -> Result<ManifestEntry, Error> {
        if f.len() < 22 {
            return Err(Error::BadFields);
        }
        let kind = byte_kind(f[0])?;
        let be8 = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut b = [0u8; 8];
            b.copy_from_slice(&f[r]);
            b
        };
        let size = u64::from_be_bytes(be8(1..9));
        let mtime_ns = i64::from_be_bytes(be8(9..17));
        let mut m = [0u8; 4];
        m.copy_from_slice(&f[17..21]);
        let mode = u32::from_be_bytes(m);
        let (sha, rest) = match f[21] {
            0 => (None, &f[22..]),
            32 if f.len() >= 54 => {
                let mut s = [0u8; 32];
                s.copy_from_slice(&f[22..54]);
                (Some(s), &f[54..])
            }
            _ => return Err(Error::BadFields),
        };
        let path = String::from_utf8(rest.to_vec()).map_err(|_| Error::BadFields)?;
        Ok(ManifestEntry {
            path,
            kind,
            size,
            mtime_ns,
            mode,
            sha,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    fn round(req: SyncRequest) {
        let req = Request::Sync(req);
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
    }

    #[test]
    fn every_sync_request_round_trips() {
        for hashes in [Hashes::None, Hashes::Cached, Hashes::All] {
            round(SyncRequest::Manifest {
                path: "a b".into(),
                hashes,
            });
        }
        for expect in [
            Expect::Absent,
            Expect::Sha([7; 32]),
            Expect::Dir,
            Expect::Any,
        ] {
            round(SyncRequest::Put {
                path: "p".into(),
                size: 3,
                mtime_ns: -1_500_000_000,
                mode: 0o644,
                expect,
                resume: true,
                no_fsync: false,
            });
            round(SyncRequest::Rm {
                path: "r".into(),
                expect,
            });
            round(SyncRequest::Mv {
                from: "a".into(),
                to: "b".into(),
                expect,
            });
        }
        round(SyncRequest::Mkdir("m".into()));
        round(SyncRequest::Rmdir("m".into()));
        round(SyncRequest::Flush);
        round(SyncRequest::Blocks {
            path: "big".into(),
            block: 1 << 20,
        });
        round(SyncRequest::Fetch {
            path: "big".into(),
            expect: Expect::Sha([3; 32]),
            block: 1 << 16,
            blocks: vec![0, 7, 70_000],
        });
        round(SyncRequest::Patch {
            path: "big".into(),
            size: 9 << 20,
            mtime_ns: 5,
            mode: 0o600,
            block: 1 << 20,
            expect: Expect::Sha([1; 32]),
            no_fsync: true,
        });
    }

    #[test]
    fn malformed_sync_requests_are_refused() {
        let bad: &[&[&str]] = &[
            &["manifest", "a"],
            &["manifest", "a", "x"],
            &["cput", "a", "1", "0", "644", "-"],
            &["cput", "a", "1", "0", "9", "-", ""],
            &["cput", "a", "1", "0", "644", "zz", ""],
            &["cput", "a", "1", "0", "644", "-", "q"],
            &["crm", "a"],
            &["cmv", "a", "b"],
            &["blocks", "a", "1000"],
            &["cpatch", "a", "1", "0", "644", "65536", "-", "r"],
            &["fetch", "a", "*", "65536", "abc"],
            &["fetch", "a", "*", "1000", ""],
        ];
        for fields in bad {
            assert!(
                Request::decode(&encode_fields(fields)).is_err(),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn manifest_entries_round_trip() {
        for sha in [None, Some([9u8; 32])] {
            let e = ManifestEntry {
                path: "d/é x".into(),
                kind: EntryKind::File,
                size: 1 << 33,
                mtime_ns: 1_767_225_600_123_456_789,
                mode: 0o640,
                sha,
            };
            assert_eq!(ManifestEntry::decode(&e.encode()).unwrap(), e);
        }
        assert!(ManifestEntry::decode(b"f").is_err());
        let mut e = ManifestEntry {
            path: "x".into(),
            kind: EntryKind::Dir,
            size: 0,
            mtime_ns: 0,
            mode: 0o755,
            sha: None,
        }
        .encode();
        e[21] = 5;
        assert!(ManifestEntry::decode(&e).is_err());
    }
}
