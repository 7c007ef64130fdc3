//! The façade over the two protocols: [`Remote`] is a logged-in session with a fos
//! server or a Python server, and each of its methods hands the command to the
//! protocol in use ([`super::native`], [`super::legacy`]) or, for a transfer, to its
//! steps ([`super::native_transfer`], [`super::legacy_transfer`]). What a Python
//! server cannot do is refused here, with a message that says so.
//!
//! Connecting is [`super::connect`]'s ([`Remote::connect`] is defined there); retries,
//! progress bars and trees are [`super::transfers`]'.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::ClientConfig;
use super::legacy::Legacy;
use super::legacy_transfer::{self, unsupported};
use super::local::LocalTarget;
use super::local_reason;
use super::native::{Native, Usage};
use super::native_transfer::{self, UploadSource};
use super::partial::already_here;
use super::stream;
use crate::Error;
use crate::log::human_bytes;
use crate::protocol::{Entry, Request, verbs};

/// A logged-in session with a fos server or a Python server.
#[derive(Debug)]
pub enum Remote {
    /// A fos server.
    Native(Native),
    /// A Python server.
    Legacy(Legacy),
}

/// What a finished transfer reports.
#[derive(Debug, Clone, Copy)]
pub struct TransferReport {
    /// Bytes moved in this transfer.
    pub bytes: u64,
    /// Whole file size.
    pub size: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl TransferReport {
    /// `12.0 MiB in 0.10 s (120.0 MiB/s)`.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        format!(
            "{} in {:.2} s ({}/s)",
            human_bytes(self.bytes),
            secs,
            human_bytes((self.bytes as f64 / secs) as u64)
        )
    }
}

impl TransferReport {
    /// The report of a transfer that started at `started`.
    fn since(started: Instant, bytes: u64, size: u64) -> TransferReport {
        TransferReport {
            bytes,
            size,
            elapsed: started.elapsed(),
        }
    }
}

/// Options of one transfer.
pub struct TransferOpts<'a> {
    /// Refuse to replace an existing file (`-n`).
    pub no_clobber: bool,
    /// Gets the byte count (and the total, when known) as data moves.
    pub progress: &'a dyn Fn(u64, u64),
    /// Polled between chunks; true cancels (Ctrl-C).
    pub cancel: &'a dyn Fn() -> bool,
    /// Continue an interrupted transfer of the same file (`reget`, `reput`, retries).
    pub resume: bool,
    /// Keep the permission bits exactly (`-p`): the receiver's umask and the mode of
    /// the file replaced do not narrow them.
    pub preserve: bool,
}

impl Default for TransferOpts<'_> {
    fn default() -> Self {
        TransferOpts {
            no_clobber: false,
            progress: &|_, _| {},
            cancel: &|| false,
            resume: false,
            preserve: false,
        }
    }
}

impl Remote {
    /// Whether this is a Python server.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Remote::Legacy(_))
    }

    /// Whether the server answers the request `verb` (a row of
    /// [`verbs::VERBS`]): a fos server every one, a Python server those the Python
    /// tool's protocol has.
    pub fn has_verb(&self, verb: &str) -> bool {
        let row = verbs::find(verb);
        match self {
            Remote::Native(_) => row.is_some(),
            Remote::Legacy(_) => row.is_some_and(|v| v.legacy.is_some()),
        }
    }

    /// `pwd`.
    pub fn pwd(&mut self) -> Result<String, Error> {
        match self {
            Remote::Native(n) => n.call_text(&Request::Pwd),
            Remote::Legacy(l) => Ok(l.pwd()),
        }
    }

    /// `cd`; returns the new directory.
    pub fn cd(&mut self, path: Option<&str>) -> Result<String, Error> {
        match self {
            Remote::Native(n) => n.call_text(&Request::Cd(path.map(Into::into))),
            Remote::Legacy(l) => l.cd(path),
        }
    }

    /// `ls`.
    pub fn ls(&mut self, path: Option<&str>) -> Result<Vec<Entry>, Error> {
        match self {
            Remote::Native(n) => n.ls(path),
            Remote::Legacy(l) => l.ls(path),
        }
    }

    /// `stat`.
    pub fn stat(&mut self, path: &str) -> Result<Entry, Error> {
        match self {
            Remote::Native(n) => n.stat(path),
            Remote::Legacy(_) => Err(unsupported("stat")),
        }
    }

    /// `cat`: up to 1024 bytes.
    pub fn cat(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        self.cat_sized(path).map(|(head, _)| head)
    }

    /// `cat`: up to 1024 bytes, and the whole file's size when the server says it (a
    /// Python server does not).
    pub fn cat_sized(&mut self, path: &str) -> Result<(Vec<u8>, Option<u64>), Error> {
        match self {
            Remote::Native(n) => n.cat(path).map(|(head, size)| (head, Some(size))),
            Remote::Legacy(l) => l.cat(path).map(|head| (head, None)),
        }
    }

    /// `df`: the user's usage and the server's limits.
    pub fn df(&mut self) -> Result<Usage, Error> {
        match self {
            Remote::Native(n) => n.df(),
            Remote::Legacy(_) => Err(unsupported("df")),
        }
    }

    /// `mkdir`.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n.call(&Request::Mkdir(path.into())).map(drop),
            Remote::Legacy(l) => l.simple_path("mkdir", path),
        }
    }

    /// `rmdir`.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n.call(&Request::Rmdir(path.into())).map(drop),
            Remote::Legacy(l) => l.simple_path("rmdir", path),
        }
    }

    /// `rm` (with `recursive`, a whole tree).
    pub fn rm(&mut self, path: &str, recursive: bool) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n
                .call(&Request::Rm {
                    path: path.into(),
                    recursive,
                })
                .map(drop),
            Remote::Legacy(_) if recursive => Err(unsupported("rm -r")),
            Remote::Legacy(l) => l.simple_path("rm", path),
        }
    }

    /// `mv`; returns the final path.
    pub fn mv(&mut self, from: &str, to: &str) -> Result<String, Error> {
        match self {
            Remote::Native(n) => n.call_text(&Request::Mv {
                from: from.into(),
                to: to.into(),
            }),
            Remote::Legacy(_) => Err(unsupported("mv")),
        }
    }

    /// Expands a wildcard pattern on the server (inside the user's root).
    pub fn glob(&mut self, pattern: &str) -> Result<Vec<String>, Error> {
        match self {
            Remote::Native(n) => n.glob(pattern),
            Remote::Legacy(_) => Err(unsupported("wildcards")),
        }
    }

    /// `passwd`.
    pub fn passwd(&mut self, old: &str, new: &str) -> Result<(), Error> {
        match self {
            Remote::Native(n) => n
                .call(&Request::Passwd {
                    old: old.into(),
                    new: new.into(),
                })
                .map(drop),
            Remote::Legacy(_) => Err(unsupported("passwd")),
        }
    }

    /// Downloads `remote` to `local` (a file path): see [`Remote::get_to`].
    pub fn get(
        &mut self,
        cfg: &ClientConfig,
        remote: &str,
        local: &Path,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        self.get_to(cfg, remote, &LocalTarget::open(local)?, opts)
    }

    /// Downloads `remote` to `target`. The content goes to a partial file beside it
    /// (`.NAME.fos-partial`, see [`super::local::partial_name`]) and is renamed over it
    /// only when complete and verified. With `opts.resume`, an existing partial is
    /// continued after the server has checked that its SHA-256 matches the start of
    /// the remote file. A download cut by the network or cancelled keeps its partial
    /// for `reget`.
    ///
    /// An existing symlink at the target is never replaced; a FIFO or character device
    /// there (or at the end of the symlink) is written in place instead, as
    /// [`Remote::get_stream`] does.
    pub fn get_to(
        &mut self,
        cfg: &ClientConfig,
        remote: &str,
        target: &LocalTarget,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let local = target.shown();
        if opts.no_clobber && target.exists() {
            return Err(already_here(local));
        }
        // a FIFO or device there (or at the end of a symlink) is written in place; any
        // other symlink is refused: a download never replaces one
        if stream::classify(local)? == stream::Target::Stream {
            let mut sink = stream::Sink::open(local, opts.cancel)?;
            return self.get_stream(remote, &mut sink, opts);
        }
        if target.is_dir() {
            return Err(Error::Local(format!("{}: is a directory", local.display())));
        }
        let started = Instant::now();
        let fetched = match self {
            Remote::Native(n) => native_transfer::get_file(n, remote, target, &opts)?,
            Remote::Legacy(l) => legacy_transfer::get_file(l, remote, target, &opts)?,
        };
        let (bytes, size) = fetched.land(target, opts.preserve, opts.no_clobber, cfg.fsync)?;
        Ok(TransferReport::since(started, bytes, size))
    }

    /// Downloads `remote` into `sink` (a FIFO, a character device, standard output),
    /// written as the data arrives, with no partial file. The SHA-256 is checked at
    /// the end; by then the bytes are written, so a mismatch is an error that says so.
    /// If `sink` already has bytes (an earlier try was cut), a fos server is asked to
    /// continue after them once it has checked their SHA-256. A Python server sends
    /// no checksum and cannot continue.
    pub fn get_stream(
        &mut self,
        remote: &str,
        sink: &mut stream::Sink,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let started = Instant::now();
        let (bytes, size) = match self {
            Remote::Native(n) => native_transfer::get_stream(n, remote, sink, &opts)?,
            Remote::Legacy(l) => legacy_transfer::get_stream(l, remote, sink, &opts)?,
        };
        Ok(TransferReport::since(started, bytes, size))
    }

    /// Uploads the local file `local` as `remote`. With `opts.resume`, an interrupted
    /// upload of the same file (same size and modification time) continues where it
    /// stopped, after comparing the SHA-256 of what the server has with the local start.
    pub fn put(
        &mut self,
        local: &Path,
        remote: &str,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let (mut file, src) = match open_upload(local)? {
            (file, Some(src)) => (file, src),
            // a pipe, FIFO or device: its size is what it gives until its end
            (mut file, None) => return self.put_stream(&mut file, remote, opts),
        };
        let started = Instant::now();
        let bytes = match self {
            Remote::Native(n) => native_transfer::put_file(n, &mut file, src, remote, &opts)?,
            Remote::Legacy(l) => legacy_transfer::put(l, &mut file, src.size, remote, &opts)?,
        };
        Ok(TransferReport::since(started, bytes, src.size))
    }

    /// Uploads what `src` gives until its end (a pipe, a FIFO, standard input) as
    /// `remote`: the size is not known beforehand, so a fos server is told it at the
    /// end together with the SHA-256, and checks its limits as the data arrives. Such
    /// an upload cannot be resumed (`opts.resume` is ignored). The report has the real
    /// size.
    pub fn put_stream(
        &mut self,
        src: &mut impl io::Read,
        remote: &str,
        opts: TransferOpts<'_>,
    ) -> Result<TransferReport, Error> {
        let started = Instant::now();
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let bytes = match self {
            Remote::Native(n) => n.put_stream(
                src,
                remote,
                mtime,
                opts.no_clobber,
                &mut |b| (opts.progress)(b, 0),
                opts.cancel,
            )?,
            Remote::Legacy(l) => legacy_transfer::put(l, src, 0, remote, &opts)?,
        };
        Ok(TransferReport::since(started, bytes, bytes))
    }

    /// Sets the permission bits and/or modification time of a remote path (`chmod`;
    /// a directory's time after `put -r`); returns its mode then. A server from before
    /// modes, or a Python server, cannot.
    pub fn set_attrs(
        &mut self,
        path: &str,
        mode: Option<u32>,
        mtime: Option<i64>,
    ) -> Result<Option<u32>, Error> {
        match self {
            Remote::Native(n) => n.set_attrs(path, mode, mtime),
            Remote::Legacy(_) => Err(unsupported("setting permissions or times")),
        }
    }

    /// Whether the server keeps permission bits (and can set them and times).
    pub fn has_modes(&self) -> bool {
        matches!(self, Remote::Native(n) if n.has("modes"))
    }

    /// Ends the session politely.
    pub fn close(self) {
        match self {
            Remote::Native(n) => n.bye(),
            Remote::Legacy(l) => l.exit(),
        }
    }
}

/// Opens the local file of an upload: with what the upload says of it when it is a
/// regular file, with `None` when it is a pipe, a FIFO or a device (read to its end).
fn open_upload(local: &Path) -> Result<(File, Option<UploadSource>), Error> {
    let file = File::open(local)
        .map_err(|e| Error::Local(format!("{}: {}", local.display(), local_reason(&e))))?;
    let md = file.metadata()?;
    if md.is_dir() {
        return Err(Error::Local(format!(
            "{}: is a directory (use put -r)",
            local.display()
        )));
    }
    if !md.is_file() {
        return Ok((file, None));
    }
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777;
    Ok((
        file,
        Some(UploadSource {
            size: md.len(),
            mtime,
            mode,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_python_server_is_refused_is_what_its_protocol_lacks() {
        // the requests the methods above refuse on a Python server, and the ones they
        // hand to it
        for verb in ["stat", "df", "mv", "glob", "passwd", "setattr"] {
            assert_eq!(verbs::find(verb).unwrap().legacy, None, "{verb}");
        }
        for verb in [
            "pwd", "cd", "ls", "cat", "get", "put", "mkdir", "rmdir", "rm",
        ] {
            assert!(verbs::find(verb).unwrap().legacy.is_some(), "{verb}");
        }
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 20), "10.0 MiB");
    }
}
