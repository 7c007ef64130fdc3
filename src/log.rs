//! Event log: one line per event on stderr (and optionally a file): UTC timestamp,
//! level, client address, user, event. Passwords and hashes are never passed here.
//!
//! Text a client chose (names, paths, patterns, user names) goes through one helper,
//! [`escape`], before it is written: control characters, line and paragraph
//! separators and the Unicode bidirectional and invisible format characters are
//! written as `\u{..}`, so a client can neither end the line nor make it display as
//! something else. As a second line of defence, [`Logger::log`] passes every whole
//! event through the same helper (backslashes excepted, so that escaped text is not
//! escaped twice): a call site that forgets, or an error message that quotes a
//! client, still cannot forge a line.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Per-command detail (`--verbose`).
    Debug,
    /// Normal events.
    Info,
    /// Something an administrator should look at.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// The logger shared by all connections (pass it in an `Arc`).
#[derive(Debug)]
pub struct Logger {
    min: Level,
    file: Option<Mutex<File>>,
    /// Where `file` was opened, to open it again after a rotation ([`Logger::reopen`]).
    path: Option<std::path::PathBuf>,
    stderr: bool,
}

impl Logger {
    /// Logs events at `min` and above to stderr.
    pub fn new(min: Level) -> Logger {
        Logger {
            min,
            file: None,
            path: None,
            stderr: true,
        }
    }

    /// A logger that drops everything (library users and tests that do not care).
    pub fn silent() -> Logger {
        Logger {
            min: Level::Error,
            file: None,
            path: None,
            stderr: false,
        }
    }

    /// Also appends every line to `file`.
    pub fn with_file(mut self, file: File) -> Logger {
        self.file = Some(Mutex::new(file));
        self
    }

    /// Also appends every line to the file at `path` (created mode 0640 if missing),
    /// which [`Logger::reopen`] opens again.
    pub fn with_log_file(mut self, path: &std::path::Path) -> std::io::Result<Logger> {
        self.file = Some(Mutex::new(open_log(path)?));
        self.path = Some(path.to_path_buf());
        Ok(self)
    }

    /// Opens the log file again by its path, and writes to the new file from the next
    /// line on: after `logrotate` (or a `mv`) renamed the old one. Without a log file
    /// nothing happens. If the path cannot be opened the old file stays in use.
    pub fn reopen(&self) -> std::io::Result<()> {
        let (Some(path), Some(file)) = (&self.path, &self.file) else {
            return Ok(());
        };
        let new = open_log(path)?;
        *file.lock().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }

    /// Whether lines at `level` are written.
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.min && (self.stderr || self.file.is_some())
    }

    /// Writes one event line.
    pub fn log(
        &self,
        level: Level,
        peer: Option<SocketAddr>,
        user: Option<&str>,
        event: fmt::Arguments<'_>,
    ) {
        if !self.enabled(level) {
            return;
        }
        let peer = peer.map_or_else(|| "-".to_string(), |p| p.to_string());
        let user = user.map_or_else(|| "-".to_string(), escape);
        let event = escape_with(&event.to_string(), false);
        let line = format!("{} {} {peer} {user} {event}\n", utc_now(), level.as_str());
        if self.stderr {
            // one write_all per line keeps lines from threads whole
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        if let Some(f) = &self.file {
            let _ = f
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_all(line.as_bytes());
        }
    }

    /// Server-wide event at Info.
    pub fn info(&self, event: fmt::Arguments<'_>) {
        self.log(Level::Info, None, None, event);
    }

    /// Server-wide event at Warn.
    pub fn warn(&self, event: fmt::Arguments<'_>) {
        self.log(Level::Warn, None, None, event);
    }
}

/// Opens a log file for appending.
fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Bytes in binary units, as people read them: `12 B`, `1.5 KiB`, `10.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Escapes a client-chosen string for a log line or a terminal: backslash, control
/// characters, line and paragraph separators, and the bidirectional and invisible
/// format characters (which can make a line display as another). The result prints
/// on one line and reads as what was sent.
pub fn escape(s: &str) -> String {
    escape_with(s, true)
}

/// [`escape`], optionally leaving backslashes alone (for text that may already hold
/// escaped parts).
fn escape_with(s: &str, backslash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' if backslash => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Escapes control characters for showing text on a terminal, like [`escape`] but
/// keeping what makes text text: newlines, tabs and the `\r` of a `\r\n`. Nothing
/// else is left that a terminal would act on (no escape sequences, no lone `\r` to
/// overwrite a line, no C1 controls, none of the invisible characters [`escape`]
/// escapes).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => out.push(c),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Characters that do not show as themselves: C0/C1 controls and DEL, line and
/// paragraph separators, bidirectional embeddings, overrides, isolates and marks,
/// zero-width characters and the byte-order mark, interlinear annotation.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}')
}

/// Now, as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:03}Z",
        utc_seconds(d.as_secs() as i64),
        d.subsec_millis()
    )
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC, ISO 8601, no zone letter).
pub fn utc_seconds(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_seconds(0), "1970-01-01T00:00:00");
        assert_eq!(utc_seconds(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(utc_seconds(1_795_525_199), "2026-11-24T12:59:59");
        assert_eq!(utc_seconds(-1), "1969-12-31T23:59:59");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a\nb\x1b[31m\\"), "a\\nb\\u{1b}[31m\\\\");
        assert_eq!(escape("plain é"), "plain é");
        assert_eq!(
            escape_text("a\tb\r\nc\rd\x1b]0;t\x07\u{9b}2J\\"),
            "a\tb\r\nc\\u{d}d\\u{1b}]0;t\\u{7}\\u{9b}2J\\"
        );
        assert_eq!(
            escape("a\u{2028}b\u{202e}c\u{2066}d\u{200b}e\u{85}f\u{7f}"),
            "a\\u{2028}b\\u{202e}c\\u{2066}d\\u{200b}e\\u{85}f\\u{7f}"
        );
    }

    #[test]
    fn every_event_is_one_line() {
        let t = crate::testutil::TempDir::new();
        let path = t.path().join("log");
        let log = Logger::silent().with_file(File::create(&path).unwrap());
        let log = Logger {
            min: Level::Debug,
            ..log
        };
        // a call site that forgot to escape, and one that did
        let raw = "x\n2001-01-01T00:00:00.000Z WARN - - forged\u{2029}y";
        log.log(
            Level::Warn,
            None,
            Some("u\nv"),
            format_args!("no match for {raw}"),
        );
        log.info(format_args!("put {:?}", escape("a\nb")));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(
                " WARN - u\\nv no match for x\\n2001-01-01T00:00:00.000Z WARN - - forged\\u{2029}y"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(r#" put "a\\nb""#),
            "escaped once: {}",
            lines[1]
        );
    }
}
