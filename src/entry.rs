//! A directory entry as both sides see it: what `ls` and `stat` tell of a name (its
//! kind, size, mtime and mode), and the longest path either side accepts.
//!
//! Only the data: how an entry travels is the protocol's business
//! (`protocol::command` encodes and decodes it), how one is read from the disk the
//! sandbox's; a kind is named from a `st_mode` ([`EntryKind::of_mode`]).

use crate::sys::ftype;

/// Longest path argument either side accepts, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// What kind of thing a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A directory (sorted first).
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Link,
    /// Anything else (FIFO, socket, device).
    Other,
}

impl EntryKind {
    /// The kind of a file whose `st_mode` is `mode`.
    pub fn of_mode(mode: u32) -> EntryKind {
        match mode & ftype::MASK {
            ftype::DIR => EntryKind::Dir,
            ftype::FILE => EntryKind::File,
            ftype::LINK => EntryKind::Link,
            _ => EntryKind::Other,
        }
    }

    /// One letter, as `ls -l` shows it.
    pub fn letter(self) -> char {
        match self {
            EntryKind::Dir => 'd',
            EntryKind::File => '-',
            EntryKind::Link => 'l',
            EntryKind::Other => '?',
        }
    }
}

/// One directory entry or `stat` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name (or path, for glob and stat results).
    pub name: String,
    /// Type.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Permission bits (`0o7777` at most), when the other side said them.
    pub mode: Option<u32>,
}
