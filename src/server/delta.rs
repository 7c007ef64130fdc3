//! Block deltas for large files (`blocks`, `cpatch`): not yet served.

use super::conn::Tls;
use super::session::{Failure, Session};
use super::syncops::{self, Upload};
use crate::protocol::{self, ErrorCode};

/// `blocks path size`.
pub(super) fn blocks(
    stream: &mut Tls,
    session: &mut Session,
    _path: &str,
    _block: u64,
) -> Result<(), protocol::Error> {
    let f = Failure::Refused(ErrorCode::Unsupported, "deltas are not supported".into());
    syncops::reply(stream, session, syncops::outcome(Err(f)))
}

/// `cpatch …`.
pub(super) fn patch(
    stream: &mut Tls,
    _peer: std::net::SocketAddr,
    session: &mut Session,
    _up: &Upload<'_>,
    _block: u64,
) -> Result<(), protocol::Error> {
    syncops::drain(stream, u64::MAX)?;
    let f = Failure::Refused(ErrorCode::Unsupported, "deltas are not supported".into());
    syncops::reply(stream, session, syncops::outcome(Err(f)))
}
