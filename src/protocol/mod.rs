//! The native wire protocol (ALPN `fos/1`): bounded frames and the typed messages
//! carried in them. See `docs/PROTOCOL.md` for the byte-level description.
//!
//! This module only encodes and decodes; it does no I/O policy (timeouts, retries)
//! and knows nothing of files or users.

pub mod command;
pub mod frame;
pub mod legacy;
pub mod sync;
pub mod verbs;

pub use command::{Entry, EntryKind, ErrorCode, Request};
pub use frame::{Error, Kind};
pub use verbs::{VERBS, Verb};

/// The ALPN protocol name a fos client offers and a fos server selects.
pub const ALPN: &[u8] = b"fos/1";
/// The protocol version exchanged in the hello.
pub const VERSION: u32 = 1;
/// The magic word that opens every hello.
pub const MAGIC: &[u8] = b"fos";
