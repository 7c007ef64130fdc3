//! One server at a time sweeps stale partial uploads off the storage that several
//! servers share: the sweep walks every user's tree, and N servers doing it hourly
//! would do N times the work for nothing (and race each other's removals).
//!
//! The servers elect the sweeper with a lock file, `.fos-locks/.sweeper` in the
//! storage root (no user name starts with a dot, so it is never a user's usage lock):
//! whoever holds its `flock` sweeps, for as long as it runs; the others try again
//! every minute, so when the sweeper stops (or dies: the lock goes with its process)
//! another takes over. The file records when the last sweep ran, and by whom, so a
//! new sweeper waits for the sweep that is due rather than sweeping again at once.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a server that is not the sweeper tries to become it (at most).
const ELECT_EVERY: Duration = Duration::from_secs(60);
/// First line of the lock file.
const MAGIC: &str = "fos-sweep 1";

/// The election and schedule of the sweeps (see the module documentation).
#[derive(Debug)]
pub(super) struct Sweeper {
    path: PathBuf,
    holder: String,
    every: Duration,
    /// The lock file while this server is the sweeper.
    held: Option<File>,
    next_try: Instant,
    /// When the next sweep is due, while this server is the sweeper.
    due: SystemTime,
}

/// What a [`Sweeper::tick`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tick {
    /// Nothing (not the sweeper, or no sweep due).
    Idle,
    /// This server just became the sweeper; the last sweep (by any server) ran at
    /// the time given, if one is recorded.
    Elected(Option<SystemTime>),
    /// A sweep ran.
    Swept,
}

impl Sweeper {
    /// The sweeper election for the storage `root`, where this server is `holder`
    /// and sweeps `every` so often while elected.
    pub(super) fn new(root: &Path, holder: &str, every: Duration) -> Sweeper {
        Sweeper {
            path: root.join(".fos-locks").join(".sweeper"),
            holder: holder.to_string(),
            every,
            held: None,
            next_try: Instant::now(),
            due: SystemTime::now(),
        }
    }

    /// Tries for the election when it is time, and runs `sweep` when this server
    /// is the sweeper and a sweep is due.
    pub(super) fn tick(&mut self, sweep: impl FnOnce()) -> io::Result<Tick> {
        if self.held.is_none() {
            if Instant::now() < self.next_try {
                return Ok(Tick::Idle);
            }
            self.next_try = Instant::now() + ELECT_EVERY.min(self.every);
            let Some((file, last)) = self.try_elect()? else {
                return Ok(Tick::Idle);
            };
            self.held = Some(file);
            self.due = last.map_or_else(SystemTime::now, |t| t + self.every);
            return Ok(Tick::Elected(last));
        }
        if SystemTime::now() < self.due {
            return Ok(Tick::Idle);
        }
        sweep();
        let now = SystemTime::now();
        self.due = now + self.every;
        if let Some(file) = &self.held {
            use std::os::unix::fs::FileExt;
            let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let text = format!("{MAGIC}\n{secs}\n{}\n", crate::log::escape(&self.holder));
            file.write_all_at(text.as_bytes(), 0)?;
            file.set_len(text.len() as u64)?;
        }
        Ok(Tick::Swept)
    }

    /// Takes the lock if nobody holds it; returns it with the last sweep's time.
    fn try_elect(&self) -> io::Result<Option<(File, Option<SystemTime>)>> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(dir) = self.path.parent() {
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let mut file = crate::sys::open_lock_file(&self.path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut text = String::new();
        (&mut file).take(4096).read_to_string(&mut text)?;
        let mut lines = text.lines();
        let last = match (lines.next(), lines.next().and_then(|s| s.parse().ok())) {
            (Some(MAGIC), Some(secs)) => Some(UNIX_EPOCH + Duration::from_secs(secs)),
            _ => None,
        };
        Ok(Some((file, last)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sweeper_at_a_time_and_another_takes_over() {
        let t = crate::testutil::TempDir::new();
        let every = Duration::from_millis(300);
        let mut a = Sweeper::new(t.path(), "a", every);
        let mut b = Sweeper::new(t.path(), "b", every);
        let mut swept = [0, 0];
        assert_eq!(a.tick(|| swept[0] += 1).unwrap(), Tick::Elected(None));
        assert_eq!(b.tick(|| swept[1] += 1).unwrap(), Tick::Idle, "a holds it");
        assert_eq!(
            a.tick(|| swept[0] += 1).unwrap(),
            Tick::Swept,
            "due at once"
        );
        // for a while: only a sweeps, b keeps trying
        let until = Instant::now() + Duration::from_millis(1000);
        while Instant::now() < until {
            a.tick(|| swept[0] += 1).unwrap();
            assert_eq!(b.tick(|| swept[1] += 1).unwrap(), Tick::Idle);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!((3..=5).contains(&swept[0]), "{swept:?}");
        assert_eq!(swept[1], 0);
        // a stops: b is elected at its next try, and waits for the sweep that is due
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(5);
        let last = loop {
            if let Tick::Elected(last) = b.tick(|| swept[1] += 1).unwrap() {
                break last;
            }
            assert!(Instant::now() < deadline, "b was never elected");
            std::thread::sleep(Duration::from_millis(20));
        };
        let last = last.expect("a recorded its sweep");
        assert!(last.elapsed().unwrap() < Duration::from_secs(3));
        assert_eq!(swept[1], 0);
    }
}
