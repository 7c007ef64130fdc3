//! The prompt's command history: the lines typed at the interactive prompt, oldest
//! first, kept in `$XDG_STATE_HOME/fos/history` (`~/.local/state/fos/history` when it is
//! unset), mode 0600, at most [`MAX_LINES`] lines. A line that mentions a password
//! (`passwd ...`, `password`) or starts with a space is never stored; secrets asked for
//! at a password prompt are read outside the line editor and never reach it.
//!
//! Each added line is merged into the file as it is now (so two sessions do not erase
//! each other's lines) and the file is replaced in one rename. Nothing here prints.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Most lines the history keeps, in memory and in its file.
pub const MAX_LINES: usize = 1000;

/// Longest history file read; anything beyond is ignored (its newest lines are kept).
const MAX_FILE: u64 = 1 << 20;

/// Longest line kept.
const MAX_LINE: usize = 4096;

/// Where the history lives: `$XDG_STATE_HOME/fos/history`, or
/// `$HOME/.local/state/fos/history`; `None` without either (relative values are
/// ignored, as the XDG specification asks).
pub fn default_path() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    let state = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        })?;
    Some(state.join("fos").join("history"))
}

/// Whether `line` may be stored: not empty, not starting with a space (the shells'
/// `ignorespace` convention, to keep one line out on purpose), and not about passwords.
pub fn worth_keeping(line: &str) -> bool {
    !line.trim().is_empty()
        && !line.starts_with(' ')
        && line.len() <= MAX_LINE
        && !line.chars().any(char::is_control)
        && !mentions_secret(line)
}

fn mentions_secret(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.contains("passwd") || lower.contains("password")
}

/// The lines, oldest first, and the file they are kept in.
#[derive(Debug, Default)]
pub struct History {
    lines: Vec<String>,
    path: Option<PathBuf>,
}

impl History {
    /// Loads the history kept at `path` (a missing or unreadable file is an empty
    /// history); `None` keeps it in memory only.
    pub fn open(path: Option<PathBuf>) -> History {
        let lines = path.as_deref().map(read_lines).unwrap_or_default();
        History { lines, path }
    }

    /// The lines, oldest first.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Adds `line` (unless [`worth_keeping`] says no, or it repeats the newest line)
    /// and stores it. A failure to store leaves the line in memory and is returned.
    pub fn add(&mut self, line: &str) -> io::Result<()> {
        let line = line.trim_end();
        if !worth_keeping(line) || self.lines.last().is_some_and(|l| l == line) {
            return Ok(());
        }
        self.lines.push(line.to_string());
        keep_newest(&mut self.lines);
        match &self.path {
            Some(path) => store(path, line),
            None => Ok(()),
        }
    }
}

fn keep_newest(lines: &mut Vec<String>) {
    if lines.len() > MAX_LINES {
        lines.drain(..lines.len() - MAX_LINES);
    }
}

/// The file's lines, newest [`MAX_LINES`] of them, skipping any that could not have
/// been stored (too long, control characters, not UTF-8).
fn read_lines(path: &Path) -> Vec<String> {
    let Ok(file) = fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let mut data = Vec::new();
    let mut file = file;
    if len > MAX_FILE {
        use std::io::Seek;
        if file.seek(io::SeekFrom::Start(len - MAX_FILE)).is_err() {
            return Vec::new();
        }
    }
    if io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE), &mut data).is_err() {
        return Vec::new();
    }
    let mut segments = data.split(|&b| b == b'\n');
    if len > MAX_FILE {
        // read from the middle of a line: its end is not a line of its own
        segments.next();
    }
    let mut lines: Vec<String> = segments
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter(|l| worth_keeping(l))
        .map(str::to_string)
        .collect();
    keep_newest(&mut lines);
    lines
}

/// Appends `line` to the file as it is now, keeps its newest lines, and replaces it
/// in one rename with a file only its owner can read.
fn store(path: &Path, line: &str) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "history path has no directory")
    })?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut lines = read_lines(path);
    lines.push(line.to_string());
    keep_newest(&mut lines);
    let tmp = dir.join(format!(".history.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut text = lines.join("\n");
        text.push('\n');
        f.write_all(text.as_bytes())?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lines_persist_with_mode_0600_and_load_again() {
        let dir = TempDir::new();
        let path = dir.path().join("state/fos/history");
        let mut h = History::open(Some(path.clone()));
        assert!(h.lines().is_empty());
        h.add("ls -l").unwrap();
        h.add("cd docs  ").unwrap();
        h.add("cd docs").unwrap(); // a repeat of the newest line
        assert_eq!(fs::read_to_string(&path).unwrap(), "ls -l\ncd docs\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = History::open(Some(path));
        assert_eq!(again.lines(), ["ls -l", "cd docs"]);
    }

    #[test]
    fn secrets_and_blank_lines_are_never_stored() {
        let dir = TempDir::new();
        let path = dir.path().join("history");
        let mut h = History::open(Some(path.clone()));
        for line in [
            "passwd",
            "passwd old new",
            "ls; PASSWD hunter2",
            "put password.txt",
            " rm secret-plan",
            "   ",
            "",
        ] {
            h.add(line).unwrap();
        }
        assert!(h.lines().is_empty());
        assert!(!path.exists());
        h.add("pwd").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "pwd\n");
    }

    #[test]
    fn at_most_a_thousand_lines_newest_kept() {
        let dir = TempDir::new();
        let path = dir.path().join("history");
        // a file written by an older or foreign program, far too long
        let old: String = (0..1500).map(|i| format!("cd old{i}\n")).collect();
        fs::write(&path, old).unwrap();
        let mut h = History::open(Some(path.clone()));
        assert_eq!(h.lines().len(), MAX_LINES);
        assert_eq!(h.lines()[0], "cd old500");
        h.add("pwd").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0], "cd old501");
        assert_eq!(lines[MAX_LINES - 1], "pwd");
        assert_eq!(h.lines().len(), MAX_LINES);
    }

    #[test]
    fn two_sessions_keep_each_others_lines() {
        let dir = TempDir::new();
        let path = dir.path().join("history");
        let mut a = History::open(Some(path.clone()));
        let mut b = History::open(Some(path.clone()));
        a.add("ls a").unwrap();
        b.add("ls b").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "ls a\nls b\n");
        assert_eq!(b.lines(), ["ls b"], "a session's memory is its own");
    }

    #[test]
    fn garbage_in_the_file_is_skipped() {
        let dir = TempDir::new();
        let path = dir.path().join("history");
        fs::write(&path, b"ls\n\xff\xfe\ncat a\x1b[31m\npwd\n").unwrap();
        assert_eq!(History::open(Some(path)).lines(), ["ls", "pwd"]);
    }
}
