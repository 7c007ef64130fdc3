//! One download, for both protocols: [`Session::begin_get`] opens the file beneath the
//! user's root and checks a resume (its offset within the file, the SHA-256 of the
//! client's prefix against the file's), then [`Download::send`] sends it as native
//! frames or [`Download::copy_raw`] copies it to a legacy data connection, both
//! through read-behind. The protocol adapters only frame the reply.

use std::fs::File;
use std::io::{self, Read, Write};
use std::time::Instant;

use super::conn::ServerTls;
use super::session::{Error, Session};
use crate::log::{Level, escape};
use crate::protocol::ErrorCode;
use crate::protocol::command::hex;
use crate::sys::Stat;
use crate::transfer::{self, Sha};
use crate::writeback::ReadBehind;

/// An opened download.
pub(super) struct Download<'s> {
    session: &'s Session,
    path: String,
    file: File,
    st: Stat,
    offset: u64,
    /// The SHA-256 of the bytes before `offset`, carried on into the whole file's.
    ctx: Option<Sha>,
    started: Instant,
}

impl Session {
    /// Opens `path` for a download from `offset`; with a `prefix` (a resume) the file's
    /// first `offset` bytes must have that SHA-256.
    pub(super) fn begin_get(
        &self,
        path: &str,
        offset: u64,
        prefix: Option<[u8; 32]>,
    ) -> Result<Download<'_>, Error> {
        let (mut file, st) = self.open_read(path)?;
        if offset > st.size {
            return Err(Error::Refused(
                ErrorCode::Invalid,
                "resume offset is past the end of the file".into(),
            ));
        }
        let mut ctx = transfer::sha();
        if let Some(expected) = prefix {
            let ok = transfer::hash_prefix(&mut file, offset, &mut ctx).is_ok()
                && transfer::finish(ctx.clone()) == expected;
            if !ok {
                return Err(Error::Refused(
                    ErrorCode::Integrity,
                    "the partial download does not match the file; start over".into(),
                ));
            }
        }
        Ok(Download {
            session: self,
            path: path.to_string(),
            file,
            st,
            offset,
            ctx: Some(ctx),
            started: Instant::now(),
        })
    }
}

impl Download<'_> {
    /// The file's size.
    pub(super) fn size(&self) -> u64 {
        self.st.size
    }

    /// The file's modification time, seconds since the epoch.
    pub(super) fn mtime(&self) -> i64 {
        self.st.mtime
    }

    /// The file's permission bits.
    pub(super) fn mode(&self) -> u32 {
        self.st.mode & 0o7777
    }

    /// Sends the file from the offset as `D` frames and `Z` with the whole file's
    /// SHA-256. A source that fails mid-way is an `Abort` (logged); only a failed
    /// connection is an error.
    pub(super) fn send(&mut self, stream: &mut ServerTls) -> Result<(), Error> {
        let len = self.st.size - self.offset;
        let ctx = self.ctx.take().unwrap_or_else(transfer::sha);
        let mut src = ReadBehind::new(&mut self.file, self.offset, len);
        match transfer::send(stream, &mut src, len, ctx, &mut |_| {}, &|| false) {
            Ok(sha) => {
                self.log_sent(len, Some(&sha));
                Ok(())
            }
            Err(transfer::SendError::Net(e)) => Err(Error::Net(e.into())),
            Err(e) => {
                self.session.log(
                    Level::Warn,
                    format_args!("get {:?} aborted: {e:?}", escape(&self.path)),
                );
                Ok(())
            }
        }
    }

    /// Copies the whole file to `dst` (a legacy data connection) in large writes; the
    /// caller ends the connection.
    pub(super) fn copy_raw(&mut self, dst: &mut impl Write) -> io::Result<u64> {
        let size = self.st.size;
        let mut src = ReadBehind::new(&mut self.file, 0, size);
        let sent = match copy(&mut (&mut src).take(size), dst) {
            Ok(n) => n,
            Err(e) => {
                // a warning, as a native download's abort is
                self.session.log(
                    Level::Warn,
                    format_args!("get {:?} failed: {e}", escape(&self.path)),
                );
                return Err(e);
            }
        };
        self.log_sent(sent, None);
        Ok(sent)
    }

    fn log_sent(&self, bytes: u64, sha: Option<&[u8; 32]>) {
        self.session.log(
            Level::Info,
            format_args!(
                "sent {:?}: {bytes} bytes in {:.3?}{}",
                escape(&self.path),
                self.started.elapsed(),
                sha.map_or_else(String::new, |s| format!(" sha256 {}", hex(s)))
            ),
        );
    }
}

/// Copies `src` to `dst` in large writes: each becomes full 16 KiB TLS records rather
/// than the 8 KiB ones `io::copy`'s buffer would make (twice the records, the syscalls
/// and the client's decryption calls).
fn copy(src: &mut impl Read, dst: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; transfer::CHUNK];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
}
