//! fos — file orchestration & synchronization: a TLS file server and client for the LAN.
//!
//! A server ([`server::Server`]) gives each user an isolated directory
//! (`<root>/<user>`, every path resolved beneath it); clients ([`client`]) find servers
//! on the LAN ([`discovery`]), connect over TLS ([`tls`]), log in and work there with
//! `ls cat get put rm mkdir rmdir cd pwd`. Two wire protocols share the ports: fos's own
//! ([`protocol`], ALPN `fos/1`) and the Python tool's, for drop-in migration.
//!
//! Design: blocking `std::net`, one thread per connection, hand-written framing, and
//! all `unsafe` in one private module, `sys`.

// The API: what a program embedding fos (and the two binaries) builds on.
pub mod client;
mod entry;
pub mod error;
pub mod protocol;
pub mod server;
pub mod tls;

// The machinery beneath it, private: reached through the modules above, or by the
// tests through `internals`.
mod auth;
mod delta;
mod glob;
mod ioerror;
mod linger;
mod log;
mod random;
mod sandbox;
mod socket;
mod sys;
mod term;
mod transfer;
mod writeback;
mod x509;

#[cfg(test)]
pub(crate) mod testutil;

pub use client::{discovery, sync};
pub use error::Error;
pub use log::{Level, Logger, escape};

/// What the integration tests, the benchmarks and the fuzz targets reach beneath the
/// API: not part of it, and free to change in any release.
#[doc(hidden)]
pub mod internals {
    /// System calls the tests need: binding a chosen loopback source, a close that
    /// resets, the umask.
    pub mod sys {
        pub use crate::sys::{connect_from, reset_on_close, umask};
    }
    /// Password hashing, to write a users file.
    pub mod auth {
        pub use crate::auth::Secret;
    }
    /// Path resolution beneath a user's root and its bounds.
    pub mod sandbox {
        pub use crate::sandbox::{MAX_DEPTH, RESERVED_PREFIX, UserPath};
    }
    /// The data frames' chunk and hash.
    pub mod transfer {
        pub use crate::transfer::{CHUNK, finish, sha};
    }
    /// Write-behind, measured by the benchmark.
    pub mod writeback {
        pub use crate::writeback::WriteBehind;
    }
    /// Wildcard patterns, fuzzed.
    pub mod glob {
        pub use crate::glob::{check, matches};
    }
    /// The client's command-line parser (fuzzed) and the name of a download's partial.
    pub mod client {
        pub use crate::client::line::parse;
        pub use crate::client::local::partial_name;
    }
    /// Certificate fingerprints, as the client prints them.
    pub mod x509 {
        pub use crate::x509::fingerprint;
    }
}

/// The fos version, as `--version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
