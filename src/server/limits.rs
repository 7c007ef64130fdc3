//! Login limits: a counting semaphore that bounds concurrent password checks (so a
//! login flood cannot pin every core), and throttling of failed password checks per
//! (user, address) and per address.

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

/// Failed password checks allowed for one user from one address within [`WINDOW`]
/// before that pair is locked out.
pub const MAX_FAILURES: usize = 5;
/// Failed password checks allowed from one address within [`WINDOW`], all users
/// together, before the whole address is locked out.
pub const MAX_ADDRESS_FAILURES: usize = 20;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The longest lock-out.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// What a caller is told to wait when the limit stayed taken up by checks still
/// running (they may yet succeed) until its deadline.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);
/// Records kept at most per table; beyond it idle records are forgotten.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Default)]
struct Record {
    /// Failures within the window, oldest first.
    failures: Vec<Instant>,
    /// Checks reserved and not yet judged.
    pending: usize,
    locked_until: Option<Instant>,
    /// The next lock-out's length (doubles each time, capped).
    next_lockout: Option<Duration>,
}

impl Record {
    /// Refuses a new check if locked out, or if `max` failures and reservations are
    /// already counted.
    fn refuses(&mut self, now: Instant, max: usize) -> Option<Refusal> {
        if let Some(left) = self
            .locked_until
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero())
        {
            return Some(Refusal::Locked(left));
        }
        self.failures.retain(|&t| now.duration_since(t) < WINDOW);
        (self.failures.len() + self.pending >= max).then_some(Refusal::InFlight)
    }

    /// Records a judged failure; returns the lock-out it started, if any.
    fn fail(&mut self, now: Instant, max: usize, base: Duration) -> Option<Duration> {
        self.pending = self.pending.saturating_sub(1);
        self.failures.retain(|&t| now.duration_since(t) < WINDOW);
        self.failures.push(now);
        if self.failures.len() < max {
            return None;
        }
        // a lock-out long past does not make the next one longer
        if self.locked_until.is_some_and(|u| now > u + MAX_LOCKOUT) {
            self.next_lockout = None;
        }
        let lockout = self.next_lockout.unwrap_or(base).min(MAX_LOCKOUT);
        self.next_lockout = Some((lockout * 2).min(MAX_LOCKOUT));
        self.locked_until = Some(now + lockout);
        self.failures.clear();
        Some(lockout)
    }

    /// Whether the record still says anything (otherwise it can be dropped).
    fn live(&self, now: Instant) -> bool {
        self.pending > 0
            || self
                .failures
                .last()
                .is_some_and(|&t| now.duration_since(t) < WINDOW)
            || self.locked_until.is_some_and(|u| now < u + MAX_LOCKOUT)
    }
}

/// The failure records: per (address, user) and per address.
#[derive(Debug, Default)]
struct Records {
    pairs: HashMap<(IpAddr, String), Record>,
    addrs: HashMap<IpAddr, Record>,
}

/// Forgets idle records once a table is full (keeps memory bounded whatever names
/// and addresses are tried).
fn make_room<K: std::hash::Hash + Eq>(table: &mut HashMap<K, Record>, key: &K, now: Instant) {
    if table.len() >= MAX_TRACKED && !table.contains_key(key) {
        table.retain(|_, r| r.live(now));
    }
}

/// Throttling of password checks (logins, and `passwd`'s check of the current
/// password), counted per (user, address) and per address. A check is reserved
/// ([`Throttle::begin`]) before the password is verified and judged after, so checks
/// running in parallel are counted before they can pass the limit: beyond it they
/// wait for the verdicts of those in flight, and are refused if those fail.
#[derive(Debug)]
pub struct Throttle {
    base: Duration,
    records: Mutex<Records>,
    /// Signalled whenever a reserved check is judged or dropped.
    judged: Condvar,
}

/// A reserved password check. Judge it with [`Attempt::succeeded`] or
/// [`Attempt::failed`]; dropped unjudged (an error, a panic), it counts for nothing.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    ip: IpAddr,
    user: String,
    judged: bool,
}

/// A lock-out a failure started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// How long.
    pub length: Duration,
    /// Whether the whole address is locked out (else only the user from it).
    pub address: bool,
}

impl Throttle {
    /// Lock-outs start at `base` and double up to [`MAX_LOCKOUT`].
    pub fn new(base: Duration) -> Throttle {
        Throttle {
            base,
            records: Mutex::new(Records::default()),
            judged: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves one password check of `user` from `ip`, or says how long to wait if
    /// the pair or the address is locked out. Checking and reserving are one step
    /// under one lock. When the limit is taken up by checks still running (which may
    /// yet succeed: a script logging in many times at once), waits for them until
    /// `deadline`, then refuses.
    pub fn begin(
        &self,
        ip: IpAddr,
        user: &str,
        deadline: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let ip = ip.to_canonical();
        let key = (ip, key_user(user));
        let mut guard = self.lock();
        loop {
            let now = Instant::now();
            let records = &mut *guard;
            make_room(&mut records.addrs, &ip, now);
            make_room(&mut records.pairs, &key, now);
            let addr = records.addrs.entry(ip).or_default();
            let refused = addr.refuses(now, MAX_ADDRESS_FAILURES);
            let pair = records.pairs.entry(key.clone()).or_default();
            match refused.max(pair.refuses(now, MAX_FAILURES)) {
                None => {
                    pair.pending += 1;
                    records.addrs.get_mut(&ip).expect("inserted above").pending += 1;
                    return Ok(Attempt {
                        throttle: self,
                        ip,
                        user: key.1,
                        judged: false,
                    });
                }
                Some(Refusal::Locked(left)) => return Err(left),
                Some(Refusal::InFlight) => {
                    let left = deadline.saturating_duration_since(now);
                    if left.is_zero() {
                        return Err(IN_FLIGHT_WAIT);
                    }
                    guard = self
                        .judged
                        .wait_timeout(guard, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}

/// Why a check cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    /// Failures and checks in flight fill the limit: wait for a verdict.
    InFlight,
    /// Locked out for this long.
    Locked(Duration),
}

/// The name a record is kept under: names that cannot exist share one record, so
/// guessed garbage cannot fill the table with long keys.
fn key_user(user: &str) -> String {
    if crate::auth::valid_username(user) {
        user.to_string()
    } else {
        String::new()
    }
}

impl Attempt<'_> {
    /// The password was right: forgets this user's failures from this address (and
    /// only those: the address's count, other users' counts, stay).
    pub fn succeeded(mut self) {
        self.judged = true;
        let mut records = self.throttle.lock();
        if let Some(a) = records.addrs.get_mut(&self.ip) {
            a.pending = a.pending.saturating_sub(1);
        }
        let key = (self.ip, std::mem::take(&mut self.user));
        if let Some(p) = records.pairs.get_mut(&key) {
            // other checks of the same pair may still be running
            *p = Record {
                pending: p.pending.saturating_sub(1),
                ..Record::default()
            };
            if p.pending == 0 {
                records.pairs.remove(&key);
            }
        }
        drop(records);
        self.throttle.judged.notify_all();
    }

    /// The password was wrong: counts the failure for the pair and the address;
    /// returns the lock-out it started, if any.
    pub fn failed(mut self) -> Option<Lockout> {
        self.judged = true;
        let now = Instant::now();
        let base = self.throttle.base;
        let mut records = self.throttle.lock();
        let address =
            records
                .addrs
                .entry(self.ip)
                .or_default()
                .fail(now, MAX_ADDRESS_FAILURES, base);
        let pair = records
            .pairs
            .entry((self.ip, std::mem::take(&mut self.user)))
            .or_default()
            .fail(now, MAX_FAILURES, base);
        drop(records);
        self.throttle.judged.notify_all();
        match (address, pair) {
            (Some(length), _) => Some(Lockout {
                length,
                address: true,
            }),
            (None, Some(length)) => Some(Lockout {
                length,
                address: false,
            }),
            (None, None) => None,
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.judged {
            return;
        }
        let now = Instant::now();
        let mut records = self.throttle.lock();
        if let Some(a) = records.addrs.get_mut(&self.ip) {
            a.pending = a.pending.saturating_sub(1);
            if !a.live(now) {
                records.addrs.remove(&self.ip);
            }
        }
        let key = (self.ip, std::mem::take(&mut self.user));
        if let Some(p) = records.pairs.get_mut(&key) {
            p.pending = p.pending.saturating_sub(1);
            if !p.live(now) {
                records.pairs.remove(&key);
            }
        }
        drop(records);
        self.throttle.judged.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// How long a test's check may wait for checks in flight.
    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    /// `n` judged failures of `user` from `from`; the last lock-out started.
    fn fail(t: &Throttle, from: IpAddr, user: &str, n: usize) -> Option<Lockout> {
        (0..n)
            .map(|_| {
                t.begin(from, user, soon())
                    .expect("not locked yet")
                    .failed()
            })
            .last()
            .flatten()
    }

    #[test]
    fn lockout_after_five_and_doubling() {
        let t = Throttle::new(Duration::from_millis(40));
        let (a, b) = (ip("127.0.0.9"), ip("127.0.0.8"));
        assert_eq!(fail(&t, a, "u", 4), None);
        assert_eq!(
            fail(&t, a, "u", 1),
            Some(Lockout {
                length: Duration::from_millis(40),
                address: false
            })
        );
        assert!(t.begin(a, "u", soon()).is_err());
        assert!(t.begin(b, "u", soon()).is_ok(), "per address");
        assert!(t.begin(a, "v", soon()).is_ok(), "per user");
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.begin(a, "u", soon()).is_ok());
        assert_eq!(
            fail(&t, a, "u", 5).map(|l| l.length),
            Some(Duration::from_millis(80)),
            "doubles"
        );
        std::thread::sleep(Duration::from_millis(100));
        t.begin(a, "u", soon()).unwrap().succeeded();
        assert_eq!(
            fail(&t, a, "u", 5).map(|l| l.length),
            Some(Duration::from_millis(40)),
            "reset by success"
        );
    }

    #[test]
    fn a_success_clears_only_its_own_pair() {
        let t = Throttle::new(Duration::from_secs(60));
        let a = ip("127.0.0.9");
        fail(&t, a, "u", 4);
        t.begin(a, "v", soon()).unwrap().succeeded();
        assert!(fail(&t, a, "u", 1).is_some(), "u's four failures were kept");
        assert!(
            t.begin(a, "v", soon()).is_ok(),
            "v is not locked by u's failures"
        );
    }

    #[test]
    fn the_address_has_its_own_higher_limit() {
        let t = Throttle::new(Duration::from_secs(60));
        let a = ip("::ffff:127.0.0.9");
        let mut last = None;
        for n in 0..MAX_ADDRESS_FAILURES {
            last = fail(&t, a, &format!("user{}", n / 4), 1);
        }
        assert_eq!(last.map(|l| l.address), Some(true));
        assert!(
            t.begin(a, "fresh", soon()).is_err(),
            "every user of the address"
        );
        assert!(
            t.begin(ip("127.0.0.9"), "fresh", soon()).is_err(),
            "an IPv4-mapped address is the IPv4 address"
        );
        assert!(t.begin(ip("127.0.0.10"), "fresh", soon()).is_ok());
    }

    #[test]
    fn reservations_count_before_the_verdict() {
        let t = Throttle::new(Duration::from_secs(60));
        let a = ip("127.0.0.9");
        let held: Vec<_> = (0..MAX_FAILURES)
            .map(|_| t.begin(a, "u", soon()).unwrap())
            .collect();
        assert_eq!(
            t.begin(a, "u", soon()).err(),
            Some(IN_FLIGHT_WAIT),
            "limit taken by checks in flight"
        );
        // one succeeds: room again, and the others are still counted when they fail
        let mut held = held.into_iter();
        held.next().unwrap().succeeded();
        let again = t.begin(a, "u", soon()).unwrap();
        drop(again); // unjudged: counts for nothing
        let started: Vec<_> = held.map(Attempt::failed).collect();
        assert!(
            started.iter().all(Option::is_none),
            "four failures, no lock-out"
        );
        assert!(fail(&t, a, "u", 1).is_some());
    }

    #[test]
    fn a_check_waits_for_the_verdicts_in_flight() {
        let t = Throttle::new(Duration::from_secs(60));
        let a = ip("127.0.0.9");
        let long = || Instant::now() + Duration::from_secs(10);
        std::thread::scope(|scope| {
            // five right passwords in flight: a sixth check waits, then passes
            let held: Vec<_> = (0..MAX_FAILURES)
                .map(|_| t.begin(a, "u", long()).unwrap())
                .collect();
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                held.into_iter().for_each(Attempt::succeeded);
            });
            t.begin(a, "u", long())
                .expect("room after the successes")
                .succeeded();
            // five wrong ones in flight: the sixth waits, then sees the lock-out
            let held: Vec<_> = (0..MAX_FAILURES)
                .map(|_| t.begin(a, "u", long()).unwrap())
                .collect();
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                held.into_iter().for_each(|h| {
                    h.failed();
                });
            });
            let waited = t.begin(a, "u", long());
            assert!(
                waited.is_err_and(|left| left > Duration::from_secs(50)),
                "locked out by the failures it waited for"
            );
        });
    }

    #[test]
    fn lockout_is_capped_and_garbage_names_share_a_record() {
        let t = Throttle::new(Duration::from_secs(600));
        let a = ip("127.0.0.9");
        let mut last = None;
        for _ in 0..3 {
            last = fail(&t, a, "u", MAX_FAILURES).or(last);
            // lift the lock as time would, keeping its history
            t.lock()
                .pairs
                .get_mut(&(a, "u".into()))
                .unwrap()
                .locked_until = None;
        }
        assert_eq!(last.map(|l| l.length), Some(MAX_LOCKOUT));
        let b = ip("127.0.0.10");
        fail(&t, b, "bad name\n1", 4);
        assert_eq!(
            fail(&t, b, "bad name\n2", 1).map(|l| l.address),
            Some(false),
            "one record for all invalid names"
        );
        assert_eq!(t.lock().pairs.len(), 2);
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
