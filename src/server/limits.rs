//! Login limits: a counting semaphore that bounds concurrent password checks (so a
//! login flood cannot pin every core), and throttling of failed password checks per
//! (user, address) and per address, counted in this process or, for servers that
//! share one storage, in files on it ([`super::shared_records`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::shared_records::SharedRecords;
use crate::log::Logger;

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
/// How often a check beyond the limit looks again for the verdicts in flight.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);
/// A reserved check not judged within this long counts no more (its server died
/// mid-check; a real check ends within the login deadline).
const PENDING_TTL: Duration = Duration::from_secs(120);
/// Records kept at most per table; beyond it idle records are forgotten.
pub(super) const MAX_TRACKED: usize = 65_536;

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// Now, in milliseconds since the Unix epoch: failure records use the wall clock so
/// that servers sharing them through their storage agree on times (their clocks must
/// agree, as NTP keeps them).
pub(super) fn now_ms() -> u64 {
    ms(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default())
}

/// What is known of one address, or one (address, user) pair. Times are
/// [`now_ms`] milliseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// Failures within the window, oldest first.
    pub(super) failures: Vec<u64>,
    /// Checks reserved and not yet judged: (token, when it stops counting).
    pub(super) pending: Vec<(u64, u64)>,
    pub(super) locked_until: Option<u64>,
    /// The next lock-out's length (doubles each time, capped).
    pub(super) next_lockout: Option<u64>,
}

impl Record {
    /// Refuses a new check if locked out, or if `max` failures and reservations are
    /// already counted.
    fn refuses(&mut self, now: u64, max: usize) -> Option<Refusal> {
        if let Some(left) = self.locked_until.and_then(|u| u.checked_sub(now))
            && left > 0
        {
            return Some(Refusal::Locked(left));
        }
        self.forget_old(now);
        (self.failures.len() + self.pending.len() >= max).then_some(Refusal::InFlight)
    }

    /// Drops failures out of the window and reservations past their time.
    fn forget_old(&mut self, now: u64) {
        let window = ms(WINDOW);
        self.failures.retain(|&t| now.saturating_sub(t) < window);
        self.pending.retain(|&(_, until)| until > now);
    }

    /// Stops counting the reserved check `token`.
    fn settle(&mut self, token: u64) {
        self.pending.retain(|&(t, _)| t != token);
    }

    /// Records a judged failure; returns the lock-out it started, if any.
    fn fail(&mut self, now: u64, max: usize, base: u64) -> Option<u64> {
        self.forget_old(now);
        self.failures.push(now);
        if self.failures.len() < max {
            return None;
        }
        let cap = ms(MAX_LOCKOUT);
        // a lock-out long past does not make the next one longer
        if self
            .locked_until
            .is_some_and(|u| now > u.saturating_add(cap))
        {
            self.next_lockout = None;
        }
        let lockout = self.next_lockout.unwrap_or(base).min(cap);
        self.next_lockout = Some(lockout.saturating_mul(2).min(cap));
        self.locked_until = Some(now.saturating_add(lockout));
        self.failures.clear();
        Some(lockout)
    }

    /// Whether the record still says anything (otherwise it can be dropped).
    pub(super) fn live(&self, now: u64) -> bool {
        self.pending.iter().any(|&(_, until)| until > now)
            || self
                .failures
                .last()
                .is_some_and(|&t| now.saturating_sub(t) < ms(WINDOW))
            || self
                .locked_until
                .is_some_and(|u| now < u.saturating_add(ms(MAX_LOCKOUT)))
    }

    /// The latest time the record mentions (to forget the idlest records first).
    pub(super) fn last_activity(&self) -> u64 {
        let pending = self.pending.iter().map(|&(_, until)| until);
        let failures = self.failures.iter().copied();
        pending
            .chain(failures)
            .chain(self.locked_until)
            .max()
            .unwrap_or(0)
    }
}

/// The failure records: per (address, user) and per address.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Records {
    pub(super) pairs: HashMap<(IpAddr, String), Record>,
    pub(super) addrs: HashMap<IpAddr, Record>,
}

impl Records {
    /// Forgets records that say nothing any more, and beyond `cap` per table the
    /// idlest ones (keeps memory and shared files bounded whatever names and
    /// addresses are tried).
    pub(super) fn prune(&mut self, now: u64, cap: usize) {
        fn prune<K: std::hash::Hash + Eq + Clone>(
            table: &mut HashMap<K, Record>,
            now: u64,
            cap: usize,
        ) {
            table.retain(|_, r| r.live(now));
            if table.len() > cap {
                let mut by_age: Vec<(u64, K)> = table
                    .iter()
                    .map(|(k, r)| (r.last_activity(), k.clone()))
                    .collect();
                by_age.sort_by_key(|(t, _)| *t);
                for (_, k) in by_age.into_iter().take(table.len() - cap) {
                    table.remove(&k);
                }
            }
        }
        prune(&mut self.pairs, now, cap);
        prune(&mut self.addrs, now, cap);
    }
}

/// Where the failure records live.
#[derive(Debug)]
enum Store {
    /// In this process (a lone server, tests).
    Memory(Mutex<Records>),
    /// On the storage every server of a cluster shares.
    Shared(SharedRecords),
}

impl Store {
    /// Runs `f` on the records that concern `ip` (its address record and its pairs),
    /// as one step for every server that shares them.
    fn with<R>(&self, ip: IpAddr, f: impl FnOnce(&mut Records, u64) -> R) -> R {
        match self {
            Store::Memory(m) => {
                let mut records = m.lock().unwrap_or_else(|p| p.into_inner());
                let now = now_ms();
                // only when full, and then well below full, so the cost is rare
                if records.pairs.len() >= MAX_TRACKED || records.addrs.len() >= MAX_TRACKED {
                    records.prune(now, MAX_TRACKED / 4 * 3);
                }
                f(&mut records, now)
            }
            Store::Shared(s) => s.with(ip, f),
        }
    }
}

/// Throttling of password checks (logins, and `passwd`'s check of the current
/// password), counted per (user, address) and per address. A check is reserved
/// ([`Throttle::begin`]) before the password is verified and judged after, so checks
/// running in parallel are counted before they can pass the limit: beyond it they
/// wait for the verdicts of those in flight, and are refused if those fail.
///
/// A server keeps the counts on its storage ([`Throttle::shared`]), so that every
/// server sharing that storage counts the same guesses: N servers do not allow N
/// times as many.
#[derive(Debug)]
pub struct Throttle {
    base: Duration,
    store: Store,
}

/// A reserved password check. Judge it with [`Attempt::succeeded`] or
/// [`Attempt::failed`]; dropped unjudged (an error, a panic), it counts for nothing.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    ip: IpAddr,
    user: String,
    /// This check's reservation in the records.
    token: u64,
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
    /// Lock-outs start at `base` and double up to `MAX_LOCKOUT`; the counts are
    /// kept in this process.
    pub fn new(base: Duration) -> Throttle {
        Throttle {
            base,
            store: Store::Memory(Mutex::new(Records::default())),
        }
    }

    /// As [`Throttle::new`], with the counts kept in files under `dir` (on the
    /// storage root), where every server that shares it reads and updates them under
    /// a lock. If they cannot be read or written, the counts of this process stand in
    /// (and `log` says so).
    pub fn shared(base: Duration, dir: &Path, log: Arc<Logger>) -> Throttle {
        Throttle {
            base,
            store: Store::Shared(SharedRecords::new(dir, log)),
        }
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
        let token = random_token();
        loop {
            let refused = self.store.with(ip, |records, now| {
                let addr = records.addrs.entry(ip).or_default();
                let refused = addr.refuses(now, MAX_ADDRESS_FAILURES);
                let pair = records.pairs.entry(key.clone()).or_default();
                let refused = refused.max(pair.refuses(now, MAX_FAILURES));
                if refused.is_none() {
                    let until = now.saturating_add(ms(PENDING_TTL));
                    pair.pending.push((token, until));
                    let addr = records.addrs.get_mut(&ip).expect("inserted above");
                    addr.pending.push((token, until));
                }
                refused
            });
            match refused {
                None => {
                    return Ok(Attempt {
                        throttle: self,
                        ip,
                        user: key.1,
                        token,
                        judged: false,
                    });
                }
                Some(Refusal::Locked(left)) => return Err(Duration::from_millis(left)),
                Some(Refusal::InFlight) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(IN_FLIGHT_WAIT);
                    }
                    std::thread::sleep(left.min(IN_FLIGHT_POLL));
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
    /// Locked out for this many more milliseconds.
    Locked(u64),
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

/// A random reservation token.
fn random_token() -> u64 {
    crate::random::u64()
}

impl Attempt<'_> {
    /// The password was right: forgets this user's failures from this address (and
    /// only those: the address's count, other users' counts, stay).
    pub fn succeeded(mut self) {
        self.judged = true;
        let (ip, token) = (self.ip, self.token);
        let key = (ip, std::mem::take(&mut self.user));
        self.throttle.store.with(ip, |records, _| {
            if let Some(a) = records.addrs.get_mut(&ip) {
                a.settle(token);
            }
            if let Some(p) = records.pairs.get_mut(&key) {
                p.settle(token);
                // other checks of the same pair may still be running
                *p = Record {
                    pending: std::mem::take(&mut p.pending),
                    ..Record::default()
                };
                if p.pending.is_empty() {
                    records.pairs.remove(&key);
                }
            }
        });
    }

    /// The password was wrong: counts the failure for the pair and the address;
    /// returns the lock-out it started, if any.
    pub fn failed(mut self) -> Option<Lockout> {
        self.judged = true;
        let (ip, token) = (self.ip, self.token);
        let base = ms(self.throttle.base);
        let key = (ip, std::mem::take(&mut self.user));
        let (address, pair) = self.throttle.store.with(ip, |records, now| {
            let addr = records.addrs.entry(ip).or_default();
            addr.settle(token);
            let address = addr.fail(now, MAX_ADDRESS_FAILURES, base);
            let pair = records.pairs.entry(key).or_default();
            pair.settle(token);
            (address, pair.fail(now, MAX_FAILURES, base))
        });
        match (address, pair) {
            (Some(length), _) => Some(Lockout {
                length: Duration::from_millis(length),
                address: true,
            }),
            (None, Some(length)) => Some(Lockout {
                length: Duration::from_millis(length),
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
        let (ip, token) = (self.ip, self.token);
        let key = (ip, std::mem::take(&mut self.user));
        self.throttle.store.with(ip, |records, now| {
            if let Some(a) = records.addrs.get_mut(&ip) {
                a.settle(token);
                if !a.live(now) {
                    records.addrs.remove(&ip);
                }
            }
            if let Some(p) = records.pairs.get_mut(&key) {
                p.settle(token);
                if !p.live(now) {
                    records.pairs.remove(&key);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    impl Throttle {
        /// The in-process records (tests only).
        fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
            match &self.store {
                Store::Memory(m) => m.lock().unwrap(),
                Store::Shared(_) => panic!("not in memory"),
            }
        }
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
    fn servers_sharing_a_storage_count_the_same_guesses() {
        let dir = crate::testutil::TempDir::new();
        let log = std::sync::Arc::new(Logger::silent());
        let th = dir.path().join(".fos-throttle");
        let (a, b) = (
            Throttle::shared(Duration::from_secs(60), &th, std::sync::Arc::clone(&log)),
            Throttle::shared(Duration::from_secs(60), &th, log),
        );
        let from = ip("127.0.0.9");
        // three wrong passwords through one server, two through the other
        assert_eq!(fail(&a, from, "u", 3), None);
        let lockout = fail(&b, from, "u", 2).expect("the fifth failure locks out");
        assert!(!lockout.address);
        assert!(a.begin(from, "u", soon()).is_err(), "locked out on both");
        assert!(b.begin(from, "u", soon()).is_err());
        assert!(a.begin(from, "v", soon()).is_ok(), "per user");
        // a reservation through one is counted by the other before its verdict
        let held: Vec<_> = (0..MAX_FAILURES)
            .map(|_| a.begin(from, "w", soon()).unwrap())
            .collect();
        assert_eq!(b.begin(from, "w", soon()).err(), Some(IN_FLIGHT_WAIT));
        held.into_iter().for_each(Attempt::succeeded);
        assert!(b.begin(from, "w", soon()).is_ok());
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
