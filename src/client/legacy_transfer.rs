//! The steps of a transfer with a Python server: a download into the partial file
//! (never continued: the server sends no checksum to check a start against), a
//! download into a stream, an upload. What the server lacks is refused with
//! [`unsupported`].
//!
//! The protocol itself is [`super::legacy`]; putting a download in place is
//! [`super::partial`]'s; [`super::Remote`] chooses this module.

use std::io::{self, BufWriter, Read};

use super::legacy::Legacy;
use super::local::LocalTarget;
use super::partial::{Fetched, LocalPartial};
use super::remote::TransferOpts;
use super::stream::Sink;
use crate::Error;
use crate::protocol::ErrorCode;
use crate::transfer;

/// The refusal of what a Python server cannot do (`what`: "stat", "put -n", ...).
pub fn unsupported(what: &str) -> Error {
    Error::Remote(
        ErrorCode::Unsupported,
        format!("{what} is not supported by a Python server"),
    )
}

/// Downloads `remote` into a new partial file of `target`. Returns the download
/// complete but not in place.
pub fn get_file(
    l: &mut Legacy,
    remote: &str,
    target: &LocalTarget,
    opts: &TransferOpts<'_>,
) -> Result<Fetched, Error> {
    if opts.resume && target.partial_exists() {
        eprintln!(
            "fos-client: a Python server cannot resume: downloading {} again",
            crate::log::escape(remote)
        );
    }
    let partial = LocalPartial::open(target, false)?;
    let n = {
        let mut w = BufWriter::with_capacity(transfer::CHUNK, partial.append()?);
        let n = l.get(remote, &mut w, &mut |b| (opts.progress)(b, 0))?;
        io::Write::flush(&mut w)?;
        n
    };
    Ok(Fetched {
        partial,
        bytes: n,
        size: n,
        mtime: None,
        mode: None,
    })
}

/// Downloads `remote` into `sink`, which must be empty: the server cannot continue
/// after bytes already written. Returns the bytes moved and the file's size.
pub fn get_stream(
    l: &mut Legacy,
    remote: &str,
    sink: &mut Sink,
    opts: &TransferOpts<'_>,
) -> Result<(u64, u64), Error> {
    let offset = sink.written();
    if offset > 0 {
        return Err(Error::Local(format!(
            "a Python server cannot continue a download: {} already has {offset} bytes of {remote}",
            sink.label()
        )));
    }
    let n = l.get(remote, sink, &mut |b| (opts.progress)(b, 0))?;
    sink.finish()?;
    Ok((n, n))
}

/// Uploads what `src` gives as `remote` (`size` for the progress bar: 0 when not
/// known). Returns the bytes sent. `put -n` is refused: the server cannot keep a
/// file from being replaced.
pub fn put(
    l: &mut Legacy,
    src: &mut impl Read,
    size: u64,
    remote: &str,
    opts: &TransferOpts<'_>,
) -> Result<u64, Error> {
    if opts.no_clobber {
        return Err(unsupported("put -n"));
    }
    l.put(remote, src, &mut |b| (opts.progress)(b, size))
}
