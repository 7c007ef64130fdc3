//! Login limits: a counting semaphore that bounds concurrent password checks (so a
//! login flood cannot pin every core), and per-address throttling of failed logins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A counting semaphore (std has none).
#[derive(Debug)]
pub struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

/// Holds one permit until dropped.
#[derive(Debug)]
pub struct Permit<'a>(&'a Semaphore);

impl Semaphore {
    /// A semaphore with `n` permits.
    pub fn new(n: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }

    /// Waits for a permit.
    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

/// Failed logins allowed per address within [`WINDOW`] before a lock-out.
pub const MAX_FAILURES: usize = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The longest lock-out.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most; beyond it the oldest records are forgotten.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Default)]
struct Record {
    failures: Vec<Instant>,
    locked_until: Option<Instant>,
    /// The next lock-out's length (doubles each time, capped).
    next_lockout: Option<Duration>,
}

/// Per-address failed-login throttling.
#[derive(Debug)]
pub struct Throttle {
    base: Duration,
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl Throttle {
    /// Lock-outs start at `base` and double up to [`MAX_LOCKOUT`].
    pub fn new(base: Duration) -> Throttle {
        Throttle {
            base,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// If `ip` is locked out now, for how much longer.
    pub fn locked(&self, ip: IpAddr) -> Option<Duration> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let until = records.get(&ip)?.locked_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Records a failure; returns the lock-out it started, if any.
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() >= MAX_TRACKED && !records.contains_key(&ip) {
            // forget addresses that are neither locked nor recently failing
            records.retain(|_, r| {
                r.locked_until.is_some_and(|u| u > now)
                    || r.failures
                        .last()
                        .is_some_and(|&t| now.duration_since(t) < WINDOW)
            });
        }
        let r = records.entry(ip).or_default();
        r.failures.retain(|&t| now.duration_since(t) < WINDOW);
        r.failures.push(now);
        if r.failures.len() < MAX_FAILURES {
            return None;
        }
        let lockout = r.next_lockout.unwrap_or(self.base).min(MAX_LOCKOUT);
        r.next_lockout = Some((lockout * 2).min(MAX_LOCKOUT));
        r.locked_until = Some(now + lockout);
        r.failures.clear();
        Some(lockout)
    }

    /// A successful login forgets the address's failures and lock-out history.
    pub fn succeeded(&self, ip: IpAddr) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_five_and_doubling() {
        let t = Throttle::new(Duration::from_millis(40));
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let other: IpAddr = "127.0.0.8".parse().unwrap();
        for _ in 0..4 {
            assert_eq!(t.failed(ip), None);
        }
        assert_eq!(t.failed(ip), Some(Duration::from_millis(40)));
        assert!(t.locked(ip).is_some());
        assert!(t.locked(other).is_none(), "per address");
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.locked(ip).is_none());
        for _ in 0..4 {
            t.failed(ip);
        }
        assert_eq!(t.failed(ip), Some(Duration::from_millis(80)), "doubles");
        t.succeeded(ip);
        assert!(t.locked(ip).is_none());
        for _ in 0..4 {
            t.failed(ip);
        }
        assert_eq!(
            t.failed(ip),
            Some(Duration::from_millis(40)),
            "reset by success"
        );
    }

    #[test]
    fn lockout_is_capped() {
        let t = Throttle::new(Duration::from_secs(600));
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let mut last = None;
        for _ in 0..15 {
            last = t.failed(ip).or(last);
        }
        assert_eq!(last, Some(MAX_LOCKOUT));
    }

    #[test]
    fn semaphore_bounds() {
        let s = std::sync::Arc::new(Semaphore::new(2));
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (s, inside, peak) = (s.clone(), inside.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _p = s.acquire();
                    let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    peak.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
