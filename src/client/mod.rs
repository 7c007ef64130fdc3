//! The fos client library: connect (TLS with a pinned certificate or CA
//! verification), log in, and run commands against a fos server (native protocol) or
//! a Python server (legacy protocol), behind one interface, [`Remote`].
//!
//! The parts, one job each: `connect` (addresses, TCP, TLS, login; discovery uses it
//! alone), `remote` (the façade: one delegation per command to [`native`] or
//! `legacy`), the transfer steps of each protocol (`native_transfer`,
//! `legacy_transfer`), the local side of a download (`local`: the directory held
//! open; `partial`: the partial file and putting it in place), and the application
//! around them: `shell` (the commands, run by one loop, `command_loop`, for `-c`,
//! scripts and the prompt), `line` (command-line parsing), `transfers`
//! (retries, progress, trees) and [`app`]. File transfers land atomically on both
//! sides: downloads go to a partial file beside the target and are renamed into place
//! only when complete and verified.

pub mod app;
mod command_loop;
mod complete;
pub(crate) mod connect;
pub mod discovery;
mod editor;
mod history;
mod legacy;
mod legacy_transfer;
pub(crate) mod line;
pub(crate) mod local;
pub mod native;
mod native_transfer;
mod partial;
mod progress;
mod prompt;
mod remote;
mod shell;
mod stream;
pub mod sync;
mod sync_cmd;
mod transfers;
mod trust;
mod width;

pub use crate::log::human_bytes;
/// The socket under a [`ClientTls`] (it derefs to its `TcpStream`).
pub use crate::socket::Socket;
pub use connect::{
    ClientConfig, ClientTls, DEFAULT_PORT, handshake, pick_first, resolve, server_list,
    split_host_port, tls_connect,
};
use local::local_reason;
pub use native::Usage;
pub use partial::download_mode;
pub use remote::{Remote, TransferOpts, TransferReport};
