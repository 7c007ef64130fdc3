//! The login throttle's failure records on the storage that every server of a
//! cluster shares, so that guesses are counted once however many servers take them.
//!
//! The records are spread over [`BUCKETS`] small text files in `.fos-throttle/` at the
//! storage root, by a hash of the client's address: one address's record and all its
//! (address, user) pairs are in one file. A change is one step under an exclusive
//! `flock` of that file (taken by every server, on whichever mount): read, change,
//! write back in place, unlock. A file holds at most [`PER_BUCKET`] records per kind
//! (the idlest are forgotten first), so the whole store stays bounded.
//!
//! If a file cannot be read, locked or written in time, the step runs on records kept
//! in this process instead, and the log says so: throttling then counts per server
//! until the storage answers again, never not at all.

use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::limits::{MAX_TRACKED, Record, Records, now_ms};
use crate::log::Logger;

/// Files the records are spread over.
pub(super) const BUCKETS: u32 = 256;
/// Records of each kind kept at most in one file.
const PER_BUCKET: usize = MAX_TRACKED / BUCKETS as usize;
/// Largest file read.
const MAX_FILE: u64 = 1 << 20;
/// How long a step waits for another server's step on the same file.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// First line of a records file.
const MAGIC: &str = "fos-throttle 1";

/// The shared records (see the module documentation).
#[derive(Debug)]
pub(super) struct SharedRecords {
    dir: PathBuf,
    /// Stands in while the files cannot be used.
    fallback: Mutex<Records>,
    /// Whether the log has been told the files failed (once until they work again).
    failing: AtomicBool,
    log: Arc<Logger>,
}

impl SharedRecords {
    /// Records in `dir` (made on first use).
    pub(super) fn new(dir: &Path, log: Arc<Logger>) -> SharedRecords {
        SharedRecords {
            dir: dir.to_path_buf(),
            fallback: Mutex::new(Records::default()),
            failing: AtomicBool::new(false),
            log,
        }
    }

    /// Runs `f` on the records of `ip`'s file under that file's lock, then writes
    /// them back.
    pub(super) fn with<R>(&self, ip: IpAddr, f: impl FnOnce(&mut Records, u64) -> R) -> R {
        let path = self.dir.join(format!("{:02x}", bucket(ip)));
        let (file, mut records) = match self.load(&path) {
            Ok(loaded) => loaded,
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    self.log.warn(format_args!(
                        "login throttle records {}: {e}; counting failed logins on this server alone until they can be used",
                        path.display()
                    ));
                }
                let mut records = self.fallback.lock().unwrap_or_else(|p| p.into_inner());
                let now = now_ms();
                records.prune(now, MAX_TRACKED / 4 * 3);
                return f(&mut records, now);
            }
        };
        let now = now_ms();
        let out = f(&mut records, now);
        records.prune(now, PER_BUCKET);
        match store(&file, &records) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    self.log.info(format_args!(
                        "login throttle records in {} can be used again",
                        self.dir.display()
                    ));
                }
            }
            Err(e) => self.log.warn(format_args!(
                "login throttle records {}: cannot write: {e}",
                path.display()
            )),
        }
        out
    }

    /// Opens, locks and reads one file; the lock lasts as long as the file is open.
    fn load(&self, path: &Path) -> io::Result<(File, Records)> {
        match std::fs::create_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let mut file = crate::sys::open_lock_file(path)?;
        crate::sys::lock_within(
            &file,
            LOCK_WAIT,
            Duration::from_millis(2),
            "locked by another server for too long",
        )?;
        let mut text = String::new();
        (&mut file).take(MAX_FILE).read_to_string(&mut text)?;
        Ok((file, parse(&text)))
    }
}

/// Writes `records` over the file's content, in place (the lock is on this file).
fn store(file: &File, records: &Records) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let text = format(records);
    file.write_all_at(text.as_bytes(), 0)?;
    file.set_len(text.len() as u64)
}

/// Which file holds `ip`'s records (FNV-1a over its bytes).
fn bucket(ip: IpAddr) -> u32 {
    let bytes = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let hash = bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % BUCKETS
}

/// The text of a records file: the magic line, then one line per record,
/// `a IP REC` for an address and `p IP USER REC` for a pair, where `REC` is
/// `LOCKED_UNTIL NEXT_LOCKOUT FAILURES PENDING` (`-` for none; lists joined by `,`;
/// a pending check as `TOKEN:UNTIL`). An invalid user name, which all share one
/// record, is written as `-`.
fn format(records: &Records) -> String {
    fn rec(r: &Record) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let list = |items: Vec<String>| match items.is_empty() {
            true => "-".to_string(),
            false => items.join(","),
        };
        format!(
            "{} {} {} {}",
            opt(r.locked_until),
            opt(r.next_lockout),
            list(r.failures.iter().map(u64::to_string).collect()),
            list(r.pending.iter().map(|(t, u)| format!("{t}:{u}")).collect())
        )
    }
    let mut out = format!("{MAGIC}\n");
    for (ip, r) in &records.addrs {
        out.push_str(&format!("a {ip} {}\n", rec(r)));
    }
    for ((ip, user), r) in &records.pairs {
        let user = if user.is_empty() { "-" } else { user };
        out.push_str(&format!("p {ip} {user} {}\n", rec(r)));
    }
    out
}

/// Reads what [`format`] wrote; lines that do not parse (a file cut by a crash) are
/// skipped, which forgets those records.
fn parse(text: &str) -> Records {
    fn rec(fields: &[&str]) -> Option<Record> {
        let [locked, next, failures, pending] = fields else {
            return None;
        };
        let opt = |s: &str| match s {
            "-" => Some(None),
            s => s.parse().ok().map(Some),
        };
        let list = |s: &str| -> Option<Vec<u64>> {
            match s {
                "-" => Some(Vec::new()),
                s => s.split(',').map(|v| v.parse().ok()).collect(),
            }
        };
        let pending = match *pending {
            "-" => Vec::new(),
            s => s
                .split(',')
                .map(|p| {
                    let (t, u) = p.split_once(':')?;
                    Some((t.parse().ok()?, u.parse().ok()?))
                })
                .collect::<Option<_>>()?,
        };
        Some(Record {
            failures: list(failures)?,
            pending,
            locked_until: opt(locked)?,
            next_lockout: opt(next)?,
        })
    }
    let mut records = Records::default();
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return records;
    }
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        match &fields[..] {
            ["a", ip, rest @ ..] => {
                if let (Ok(ip), Some(r)) = (ip.parse(), rec(rest)) {
                    records.addrs.insert(ip, r);
                }
            }
            ["p", ip, user, rest @ ..] => {
                let user = match *user {
                    "-" => String::new(),
                    u if crate::auth::valid_username(u) => u.to_string(),
                    _ => continue,
                };
                if let (Ok(ip), Some(r)) = (ip.parse(), rec(rest)) {
                    records.pairs.insert((ip, user), r);
                }
            }
            _ => {}
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_the_text_form() {
        let mut records = Records::default();
        let ip: IpAddr = "::ffff:127.0.0.9".parse::<IpAddr>().unwrap().to_canonical();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        records.addrs.insert(
            ip,
            Record {
                failures: vec![1, 2, 3],
                pending: vec![(7, 9), (8, 10)],
                locked_until: Some(99),
                next_lockout: Some(120_000),
            },
        );
        records.pairs.insert((ip, "u".into()), Record::default());
        records.pairs.insert(
            (v6, String::new()),
            Record {
                failures: vec![5],
                ..Record::default()
            },
        );
        assert_eq!(parse(&format(&records)), records);
        // a torn file loses the torn lines only
        let text = format(&records);
        let cut = &text[..text.len() - 3];
        assert!(parse(cut).addrs.contains_key(&ip) || parse(cut).pairs.len() < 2);
        assert_eq!(parse("garbage\na 1.2.3.4 - - - -\n"), Records::default());
    }

    #[test]
    fn two_stores_on_one_directory_see_each_others_changes() {
        let t = crate::testutil::TempDir::new();
        let log = Arc::new(Logger::silent());
        let a = SharedRecords::new(&t.path().join("th"), Arc::clone(&log));
        let b = SharedRecords::new(&t.path().join("th"), log);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        a.with(ip, |r, now| {
            r.addrs.entry(ip).or_default().failures.push(now);
        });
        let seen = b.with(ip, |r, _| r.addrs.get(&ip).map(|r| r.failures.len()));
        assert_eq!(seen, Some(1));
        assert!(!b.failing.load(Ordering::Relaxed));
    }
}
