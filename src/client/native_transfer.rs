//! The steps of a transfer with a fos server, each resumable where the protocol
//! allows: a download into the partial file (continued after the server checked the
//! SHA-256 of what is already there), a download into a stream, and an upload of a
//! regular file (continued after comparing the SHA-256 of what the server has with
//! the local start).
//!
//! This module frames nothing itself ([`super::native`] does) and does not put a
//! download in place ([`super::partial`] does); [`super::Remote`] chooses it.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use super::local::LocalTarget;
use super::local_reason;
use super::native::Native;
use super::partial::{Fetched, LocalPartial};
use super::remote::TransferOpts;
use super::stream::Sink;
use crate::Error;
use crate::protocol::{self, ErrorCode, Request};
use crate::transfer::{self, LocalError};
use crate::writeback::WriteBehind;

/// What the local side says of a regular file being uploaded.
#[derive(Debug, Clone, Copy)]
pub struct UploadSource {
    /// Its size.
    pub size: u64,
    /// Its modification time, in seconds since the epoch.
    pub mtime: i64,
    /// Its permission bits.
    pub mode: u32,
}

/// The fields of the reply to a download's start did not match what was asked.
fn bad_fields() -> Error {
    Error::Protocol(protocol::Error::BadFields)
}

/// The server ended the data with an abort instead of its SHA-256.
fn aborted() -> Error {
    Error::Remote(ErrorCode::Aborted, "the server aborted the transfer".into())
}

/// Downloads `remote` into the partial file of `target`; with `opts.resume`, what the
/// partial already holds is continued if the server agrees it is the start of the
/// file, else the download starts over. Returns the download complete but not in place.
pub fn get_file(
    n: &mut Native,
    remote: &str,
    target: &LocalTarget,
    opts: &TransferOpts<'_>,
) -> Result<Fetched, Error> {
    let mut partial = LocalPartial::open(target, opts.resume)?;
    let mut ctx = transfer::sha();
    let mut offset = partial.len()?;
    let hdr = if offset > 0 {
        transfer::hash_prefix(&mut partial.reader()?, offset, &mut ctx)?;
        match n.get_start(remote, offset, Some(transfer::finish(ctx.clone()))) {
            Err(Error::Remote(ErrorCode::Integrity | ErrorCode::Invalid, _)) => {
                // the remote file changed since: start over
                partial.truncate()?;
                offset = 0;
                ctx = transfer::sha();
                n.get_start(remote, 0, None)?
            }
            other => other?,
        }
    } else {
        n.get_start(remote, 0, None)?
    };
    // (`Native::get_start` refused a header for another offset, or a size below it)
    // from here on, a cut keeps what arrived
    partial.keep = true;
    let got = {
        let mut w = WriteBehind::buffered(partial.append()?, offset, hdr.size - offset);
        n.receive(
            &mut w,
            hdr.size - offset,
            ctx,
            &mut |b| (opts.progress)(offset + b, hdr.size),
            opts.cancel,
        )?
    };
    if let Some(e) = got.local_error {
        partial.keep = false;
        let why = match e {
            LocalError::Write(e) => local_reason(&e),
            LocalError::TooLong(_) => "more data than announced".into(),
        };
        return Err(Error::Local(format!(
            "writing the local file {} failed: {why}",
            target.shown().display()
        )));
    }
    if got.sender_sha.is_none() {
        return Err(aborted());
    }
    if !got.is_intact() || offset + got.bytes != hdr.size {
        partial.keep = false;
        return Err(Error::Remote(
            ErrorCode::Integrity,
            "SHA-256 mismatch: the download was corrupted; nothing was saved".into(),
        ));
    }
    Ok(Fetched {
        partial,
        bytes: got.bytes,
        size: hdr.size,
        mtime: Some(hdr.mtime),
        mode: hdr.mode,
    })
}

/// Downloads `remote` into `sink` as the data arrives; bytes already in the sink (an
/// earlier try was cut) are continued after once the server checked their SHA-256.
/// Returns the bytes moved and the file's size.
pub fn get_stream(
    n: &mut Native,
    remote: &str,
    sink: &mut Sink,
    opts: &TransferOpts<'_>,
) -> Result<(u64, u64), Error> {
    let offset = sink.written();
    let prefix = (offset > 0).then(|| transfer::finish(sink.hash()));
    let hdr = match n.get_start(remote, offset, prefix) {
        Err(Error::Remote(ErrorCode::Integrity | ErrorCode::Invalid, _)) if offset > 0 => {
            return Err(Error::Remote(
                ErrorCode::Integrity,
                format!(
                    "{remote} changed on the server after {offset} bytes of it were written to {}; cannot continue",
                    sink.label()
                ),
            ));
        }
        other => other?,
    };
    let ctx = sink.hash();
    let got = n.receive(
        sink,
        hdr.size - offset,
        ctx,
        &mut |b| (opts.progress)(offset + b, hdr.size),
        opts.cancel,
    )?;
    sink.finish()?;
    match got.local_error {
        Some(LocalError::Write(e)) => {
            return Err(Error::Local(format!(
                "writing the local {} failed: {}",
                sink.label(),
                local_reason(&e)
            )));
        }
        Some(LocalError::TooLong(_)) => return Err(bad_fields()),
        None => {}
    }
    if got.sender_sha.is_none() {
        return Err(aborted());
    }
    if !got.is_intact() || offset + got.bytes != hdr.size {
        return Err(Error::Remote(
            ErrorCode::Integrity,
            format!(
                "SHA-256 mismatch: the {} bytes written to {} are corrupt",
                sink.written(),
                sink.label()
            ),
        ));
    }
    Ok((got.bytes, hdr.size))
}

/// Uploads the regular file `file` (described by `src`) as `remote`; with
/// `opts.resume`, what the server kept of an earlier try is continued if its SHA-256
/// is that of the local start, else discarded. Returns the bytes sent.
pub fn put_file(
    n: &mut Native,
    file: &mut File,
    src: UploadSource,
    remote: &str,
    opts: &TransferOpts<'_>,
) -> Result<u64, Error> {
    let UploadSource { size, mtime, mode } = src;
    // the permission bits travel where the server takes them
    let modes = n.has("modes");
    let req = |resume| match modes {
        true => Request::PutWithMode {
            path: remote.into(),
            size: Some(size),
            mtime,
            no_clobber: opts.no_clobber,
            resume,
            mode,
            exact: opts.preserve,
        },
        false => Request::Put {
            path: remote.into(),
            size,
            mtime,
            no_clobber: opts.no_clobber,
            resume,
        },
    };
    let (mut offset, server_prefix) = n.put_start(&req(opts.resume))?;
    let mut ctx = transfer::sha();
    if offset > 0 {
        // (`Native::put_start` refused an offset past the file or without a prefix,
        // and any but 0 for a fresh upload)
        transfer::hash_prefix(file, offset, &mut ctx)?;
        if protocol::command::hex(&transfer::finish(ctx.clone())) != server_prefix {
            // what the server has is not the start of this file: discard it
            n.abort_discard()?;
            (offset, _) = n.put_start(&req(false))?;
            ctx = transfer::sha();
        }
        file.seek(SeekFrom::Start(offset))?;
    }
    // transfer::send reads whole chunks itself: no buffering layer needed
    n.send_content(
        file,
        size - offset,
        ctx,
        &mut |b| (opts.progress)(offset + b, size),
        opts.cancel,
    )?;
    Ok(size - offset)
}
