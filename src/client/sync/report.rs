//! What a sync tells its caller: one [`Event`] per change, note, failure and progress
//! step, and the totals ([`Stats`]) whose [`Stats::summary`] is the closing line.
//! Printing is the caller's (the shell's) business; paths in [`Change`]'s display
//! are escaped, since they may come from the server.

use std::fmt;
use std::time::Duration;

use crate::log::escape;
use crate::log::human_bytes;

/// One change, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// `+ path`: a new file.
    New(&'a str),
    /// `+ path/`: a new directory.
    NewDir(&'a str),
    /// `> path`: an updated file.
    Updated(&'a str),
    /// `- path`: a deleted file.
    Deleted(&'a str),
    /// `- path/`: a deleted directory.
    DeletedDir(&'a str),
    /// `R old -> new`: a rename.
    Renamed(&'a str, &'a str),
    /// `! path (why)`: a conflict, left alone.
    Conflict(&'a str, &'a str),
}

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::New(p) => write!(f, "+ {}", escape(p)),
            Change::NewDir(p) => write!(f, "+ {}/", escape(p)),
            Change::Updated(p) => write!(f, "> {}", escape(p)),
            Change::Deleted(p) => write!(f, "- {}", escape(p)),
            Change::DeletedDir(p) => write!(f, "- {}/", escape(p)),
            Change::Renamed(a, b) => write!(f, "R {} -> {}", escape(a), escape(b)),
            Change::Conflict(p, why) => write!(f, "! {} ({why})", escape(p)),
        }
    }
}

/// What happens during a sync.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A change made (or, with `-n`, one that would be made).
    Change(Change<'a>),
    /// Something left alone, or another remark.
    Note(&'a str),
    /// An operation failed.
    Failed {
        /// The path.
        path: &'a str,
        /// Why.
        msg: &'a str,
    },
    /// Progress of the whole run.
    Progress {
        /// Files copied so far.
        files_done: u64,
        /// Files to copy.
        files: u64,
        /// Bytes copied so far.
        bytes_done: u64,
        /// Bytes to copy.
        bytes: u64,
    },
}

/// The totals of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Files copied to the server.
    pub sent_files: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Files copied from the server.
    pub received_files: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Bytes that crossed the network (TLS included), if known.
    pub wire_bytes: Option<u64>,
    /// Files deleted.
    pub deleted: u64,
    /// Renames.
    pub renamed: u64,
    /// Paths left as they were.
    pub unchanged: u64,
    /// Conflicts (skipped, or changed during the sync).
    pub conflicts: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// A dry run: nothing was changed.
    pub dry_run: bool,
}

impl Stats {
    /// The closing line: `3 files sent (1.2 MiB), 0 received (0 B), 40.1 KiB on the
    /// wire, 1 deleted, 1 renamed, 4995 unchanged, 0 conflicts, 0.21 s`.
    pub fn summary(&self) -> String {
        let wire = self
            .wire_bytes
            .map_or_else(|| "unknown".to_string(), human_bytes);
        let mut s = format!(
            "{} files sent ({}), {} received ({}), {} on the wire, {} deleted, {} renamed, {} unchanged, {} conflicts",
            self.sent_files,
            human_bytes(self.sent_bytes),
            self.received_files,
            human_bytes(self.received_bytes),
            wire,
            self.deleted,
            self.renamed,
            self.unchanged,
            self.conflicts,
        );
        if self.failed > 0 {
            s.push_str(&format!(", {} failed", self.failed));
        }
        s.push_str(&format!(", {:.2} s", self.elapsed.as_secs_f64()));
        if self.dry_run {
            s.push_str(" (dry run: nothing changed)");
        }
        s
    }

    /// Whether the run must exit 1: a failure or a conflict.
    pub fn failed(&self) -> bool {
        self.failed > 0 || self.conflicts > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_summary() {
        assert_eq!(Change::New("a b").to_string(), "+ a b");
        assert_eq!(Change::NewDir("d").to_string(), "+ d/");
        assert_eq!(Change::Updated("x").to_string(), "> x");
        assert_eq!(Change::Deleted("x").to_string(), "- x");
        assert_eq!(Change::Renamed("a", "b").to_string(), "R a -> b");
        assert_eq!(
            Change::Conflict("x\u{1b}", "why").to_string(),
            "! x\\u{1b} (why)"
        );
        let s = Stats {
            sent_files: 2,
            sent_bytes: 2048,
            wire_bytes: Some(4096),
            unchanged: 7,
            elapsed: Duration::from_millis(1500),
            ..Stats::default()
        };
        assert_eq!(
            s.summary(),
            "2 files sent (2.0 KiB), 0 received (0 B), 4.0 KiB on the wire, 0 deleted, 0 renamed, 7 unchanged, 0 conflicts, 1.50 s"
        );
        assert!(!s.failed());
    }
}
