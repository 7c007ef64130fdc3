//! fos — file orchestration & synchronization: a TLS file server and client for the LAN.
//!
//! A server ([`server::Server`]) gives each user an isolated directory
//! (`<root>/<user>`, see [`sandbox`]); clients ([`client`]) find servers on the LAN
//! ([`discovery`]), connect over TLS ([`tls`]), log in ([`auth`]) and work there with
//! `ls cat get put rm mkdir rmdir cd pwd`. Two wire protocols share the ports: fos's own
//! ([`protocol`], ALPN `fos/1`) and the Python tool's, for drop-in migration.
//!
//! Design: blocking `std::net`, one thread per connection, hand-written framing, and
//! all `unsafe` in [`sys`].

pub mod auth;
pub mod client;
pub mod delta;
pub mod discovery;
mod entry;
pub mod error;
pub mod glob;
mod ioerror;
mod linger;
pub mod log;
pub mod protocol;
mod random;
pub mod sandbox;
pub mod server;
pub mod sync;
pub mod sys;
pub mod term;
pub mod tls;
pub mod transfer;
pub mod writeback;
pub mod x509;

#[cfg(test)]
pub(crate) mod testutil;

pub use error::Error;

/// The fos version, as `--version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
