//! The shell's `sync` command: parses it ([`crate::client::sync::options`]), runs it over the
//! session ([`crate::client::sync::run`]) and prints what it reports: one line per change on
//! stdout, notes and failures on stderr, one progress bar for the whole run on a
//! terminal, then the summary line. Exit status 1 when anything failed or a
//! conflict was skipped.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shell::Shell;
use super::{Remote, human_bytes};
use crate::Error;
use crate::client::sync::{Event, options};
use crate::protocol::ErrorCode;

/// One progress bar for a whole sync, on stderr.
struct Bar {
    enabled: bool,
    started: Instant,
    drawn: bool,
}

impl Bar {
    fn draw(&mut self, files_done: u64, files: u64, done: u64, total: u64) {
        let elapsed = self.started.elapsed();
        if !self.enabled || elapsed < Duration::from_millis(500) {
            return;
        }
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-6);
        let eta = if rate > 0.0 {
            total.saturating_sub(done) as f64 / rate
        } else {
            0.0
        };
        let width = 24;
        let filled = if total > 0 {
            ((done as f64 / total as f64) * width as f64) as usize
        } else {
            width
        }
        .min(width);
        eprint!(
            "\rsync [{}{}] {files_done}/{files} files, {} / {}, {}/s, ETA {:.0}s\x1b[K",
            "#".repeat(filled),
            " ".repeat(width - filled),
            human_bytes(done),
            human_bytes(total),
            human_bytes(rate as u64),
            eta
        );
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// First pause before a sync is tried again on a new connection; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

impl Shell {
    /// `sync push|pull|LOCAL REMOTE …`. A run cut by the network is tried again on a
    /// new connection (0.5 s doubling to 8 s, `--retries` tries): it plans afresh, so
    /// what was done is not done again, and large files resume where they stopped.
    pub(super) fn sync(&mut self, args: &[String]) -> Result<(), Error> {
        let opts = options::parse(args)?;
        let tries = self.opts.retries.max(1);
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let err = match self.sync_once(&opts) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !err.is_network()
                || attempt >= tries
                || self.login.is_none()
                || self.interrupt.load(Ordering::SeqCst)
            {
                return Err(err);
            }
            eprintln!(
                "fos: sync: {err}; reconnecting in {:.1} s (try {} of {tries}), then syncing again",
                delay.as_secs_f64(),
                attempt + 1
            );
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.interrupt.load(Ordering::SeqCst) {
                    return Err(Error::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            delay = (delay * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    fn sync_once(&mut self, opts: &options::Options) -> Result<(), Error> {
        let quiet = opts.quiet || self.opts.quiet;
        let user = self
            .login
            .as_ref()
            .map(|l| l.user.clone())
            .unwrap_or_default();
        let interrupt = Arc::clone(&self.interrupt);
        let mut bar = Bar {
            enabled: !quiet && io::stderr().is_terminal(),
            started: Instant::now(),
            drawn: false,
        };
        let remote = self.remote()?;
        let Remote::Native(n) = remote else {
            return Err(Error::Remote(
                ErrorCode::Unsupported,
                "sync is not supported by a Python server: it has no recursive listing, no checksums and no conditional writes, so changes could neither be found nor protected".into(),
            ));
        };
        let mut out = io::stdout().lock();
        let stats = crate::client::sync::run(
            n,
            &user,
            opts,
            &|| interrupt.load(Ordering::SeqCst),
            &mut |ev| match ev {
                Event::Change(c) => {
                    // conflicts are always shown; the rest unless quiet
                    if !quiet || matches!(c, crate::client::sync::Change::Conflict(..)) {
                        bar.clear();
                        let _ = writeln!(out, "{c}");
                    }
                }
                Event::Note(m) => {
                    if !quiet {
                        bar.clear();
                        eprintln!("fos: sync: {m}");
                    }
                }
                Event::Failed { path, msg } => {
                    bar.clear();
                    eprintln!("fos: sync: {}: {msg}", crate::log::escape(path));
                }
                Event::Progress {
                    files_done,
                    files,
                    bytes_done,
                    bytes,
                } => bar.draw(files_done, files, bytes_done, bytes),
            },
        );
        bar.clear();
        // a run that stopped part way may leave replies unread: start afresh next time
        let stats = stats.inspect_err(|_| self.remote = None)?;
        if !quiet {
            let _ = writeln!(out, "{}", stats.summary());
        }
        let _ = out.flush();
        if stats.failed() {
            return Err(Error::Local(format!(
                "sync: {} conflicts, {} failures",
                stats.conflicts, stats.failed
            )));
        }
        Ok(())
    }
}
