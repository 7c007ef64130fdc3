//! The one-line progress bar of a transfer, on stderr, shown only on a terminal and
//! only for transfers that last longer than half a second. It fits the terminal: the
//! width is read with `TIOCGWINSZ` when the bar starts and again after each `SIGWINCH`
//! (the client's signal thread sets [`Screen::resized`]); the name is shortened in the
//! middle before the numbers go, and the line never reaches the last column, so it never
//! wraps. Each redraw clears the row first; when the transfer ends the row is cleared,
//! leaving it to the caller's one summary line.
//!
//! While a bar is up, the terminal does not echo what is typed (keys typed ahead still
//! reach the next prompt): an echoed `^C` or a stray letter would break the row.

use std::cell::Cell;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::human_bytes;
use super::width::{shorten_middle, str_width};

/// What the progress bars share with the client's signal thread.
#[derive(Debug, Clone, Default)]
pub struct Screen {
    /// Set on `SIGWINCH`: the next redraw reads the terminal's width again.
    pub resized: Arc<AtomicBool>,
    /// Set while a transfer with a bar runs: the signal thread then prints nothing on
    /// Ctrl-C (the transfer's own line says it was cancelled).
    pub busy: Arc<AtomicBool>,
}

/// Width assumed when the terminal does not say.
const DEFAULT_COLS: usize = 80;
/// The name is never shortened below this many columns while anything else can go.
const MIN_NAME: usize = 12;
/// Narrowest and widest bar.
const BAR_MIN: usize = 10;
const BAR_MAX: usize = 24;

fn stderr_cols() -> usize {
    crate::sys::window_size(io::stderr().as_fd()).map_or(DEFAULT_COLS, |(c, _)| usize::from(c))
}

/// A transfer's progress bar.
pub struct Progress {
    label: String,
    screen: Option<Screen>,
    started: Instant,
    last: Cell<Option<Instant>>,
    drawn: Cell<bool>,
    cols: Cell<usize>,
    /// Whether standard input echoed before the bar turned echo off.
    echo: Cell<Option<bool>>,
}

impl Progress {
    /// A bar named `label` (escaped before it is drawn); `screen` is `None` when no bar
    /// is to be shown (quiet, or stderr is not a terminal).
    pub fn new(label: &str, screen: Option<Screen>) -> Progress {
        let mut echo = None;
        if let Some(s) = &screen {
            s.busy.store(true, Ordering::SeqCst);
            let stdin = io::stdin();
            if stdin.is_terminal() {
                echo = crate::sys::set_echo(stdin.as_fd(), false).ok();
            }
        }
        Progress {
            label: crate::log::escape(label),
            cols: Cell::new(if screen.is_some() {
                stderr_cols()
            } else {
                DEFAULT_COLS
            }),
            screen,
            started: Instant::now(),
            last: Cell::new(None),
            drawn: Cell::new(false),
            echo: Cell::new(echo),
        }
    }

    /// `done` of `total` bytes (0: unknown) have moved; redraws at most ten times a second.
    pub fn update(&self, done: u64, total: u64) {
        let Some(screen) = &self.screen else {
            return;
        };
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        if elapsed < Duration::from_millis(500)
            || self
                .last
                .get()
                .is_some_and(|l| now.duration_since(l) < Duration::from_millis(100))
        {
            return;
        }
        self.last.set(Some(now));
        if screen.resized.swap(false, Ordering::SeqCst) {
            self.cols.set(stderr_cols());
        }
        let line = bar_line(&self.label, done, total, elapsed, self.cols.get());
        eprint!("\r\x1b[K{line}");
        self.drawn.set(true);
    }

    /// Clears the bar's row (the caller prints the summary) and gives the terminal its
    /// echo back.
    pub fn finish(&self) {
        if self.drawn.replace(false) {
            eprint!("\r\x1b[K");
        }
        if let Some(was) = self.echo.take() {
            let _ = crate::sys::set_echo(io::stdin().as_fd(), was);
        }
        if let Some(s) = &self.screen {
            s.busy.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The bar's text for a `cols`-wide terminal, at most `cols - 1` columns: the name, the
/// bar and the numbers; on a narrower terminal the bar shrinks, then the name is
/// shortened in the middle, then the bar goes, then the numbers shrink to percent and ETA.
pub fn bar_line(label: &str, done: u64, total: u64, elapsed: Duration, cols: usize) -> String {
    let room = cols.max(2) - 1;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-6);
    let rate_text = human_bytes(rate as u64);
    if total == 0 {
        let full = format!("{} {rate_text}/s", human_bytes(done));
        return fit(label, &[&full, &human_bytes(done)], room);
    }
    let pct = (done as f64 * 100.0 / total as f64).min(100.0);
    let eta = if rate > 0.0 {
        total.saturating_sub(done) as f64 / rate
    } else {
        0.0
    };
    let full = format!(
        "{pct:5.1}% {} / {} {rate_text}/s ETA {eta:.0}s",
        human_bytes(done),
        human_bytes(total)
    );
    let fixed = str_width(&full) + 4; // " [" and "] "
    if room >= fixed + BAR_MIN + MIN_NAME {
        let name = shorten_middle(label, room - fixed - BAR_MIN);
        let bar = (room - fixed - str_width(&name)).min(BAR_MAX);
        let filled = (((pct / 100.0) * bar as f64) as usize).min(bar);
        return format!(
            "{name} [{}{}] {full}",
            "#".repeat(filled),
            " ".repeat(bar - filled)
        );
    }
    fit(label, &[&full, &format!("{pct:.0}% ETA {eta:.0}s")], room)
}

/// `label` and the first of `stats` that leaves the name [`MIN_NAME`] columns; on a
/// terminal too narrow even for that, the last one and the name shortened together.
fn fit(label: &str, stats: &[&str], room: usize) -> String {
    for s in stats {
        let fixed = str_width(s) + 1;
        if room >= fixed + MIN_NAME {
            return format!("{} {s}", shorten_middle(label, room - fixed));
        }
    }
    let last = stats.last().copied().unwrap_or("");
    shorten_middle(&format!("{label} {last}"), room)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "get a-rather-long-file-name-for-the-progress-bar.bin";

    fn line(label: &str, cols: usize) -> String {
        bar_line(label, 5 << 20, 16 << 20, Duration::from_secs(2), cols)
    }

    #[test]
    fn a_wide_terminal_shows_everything() {
        let l = line("get big.bin", 120);
        assert_eq!(
            l,
            "get big.bin [#######                 ]  31.2% 5.0 MiB / 16.0 MiB 2.5 MiB/s ETA 4s"
        );
        assert!(line(NAME, 200).contains(NAME));
    }

    #[test]
    fn never_reaches_the_last_column_at_any_width() {
        for cols in 0..200 {
            for label in [
                NAME,
                "get big.bin",
                "get 日本語のとても長いファイル名です.txt",
            ] {
                let l = line(label, cols);
                assert!(str_width(&l) < cols.max(2), "{cols}: {l:?}");
                let unknown = bar_line(label, 5 << 20, 0, Duration::from_secs(2), cols);
                assert!(str_width(&unknown) < cols.max(2), "{cols}: {unknown:?}");
            }
        }
    }

    #[test]
    fn the_name_is_shortened_before_the_numbers() {
        let l = line(NAME, 80);
        assert_eq!(str_width(&l), 79, "{l:?}");
        assert!(l.contains('…') && l.contains("bar.bin ["), "{l:?}");
        assert!(l.ends_with("5.0 MiB / 16.0 MiB 2.5 MiB/s ETA 4s"), "{l:?}");
        // narrower: the bar goes, the numbers stay
        let l = line(NAME, 60);
        assert!(!l.contains('[') && l.ends_with("ETA 4s"), "{l:?}");
        assert!(l.contains("16.0 MiB"), "{l:?}");
        // narrower still: percent and ETA only
        let l = line(NAME, 30);
        assert!(l.ends_with(" 31% ETA 4s"), "{l:?}");
    }
}
