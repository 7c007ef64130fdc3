//! The server's live connections and the limits on them. A connection is in one of
//! three phases:
//!
//! - **waiting**: accepted while its address (or the server) had no pre-login room;
//!   it holds a socket and an idle thread, no TLS state, and waits a bounded time for
//!   room;
//! - **pre-login**: TLS handshake, hello and login, capped per address and in total;
//! - **session**: logged in, capped per address and in total, apart from the
//!   pre-login caps, so connections that never log in cannot take a session's room.
//!
//! Beyond the waiting room a connection is refused at accept, before any TLS. This
//! module only counts and decides; threads, TLS and logging live in the server.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::ServerConfig;

/// Counts in one phase: (all, from one address).
pub(super) type Counts = (usize, usize);

/// How many connections may wait at the door, per pre-login place.
const WAITING_PER_PLACE: usize = 4;
/// A waiting connection looks at the shutdown flag at least this often.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// The caps, from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    sessions: usize,
    sessions_per_ip: usize,
    prelogin: usize,
    prelogin_per_ip: usize,
    waiting: usize,
    waiting_per_ip: usize,
}

impl Limits {
    /// The caps a configuration sets: its four, and a waiting room of
    /// [`WAITING_PER_PLACE`] times the pre-login room.
    pub(super) fn new(cfg: &ServerConfig) -> Limits {
        Limits {
            sessions: cfg.max_sessions,
            sessions_per_ip: cfg.max_sessions_per_ip,
            prelogin: cfg.max_prelogin.max(1),
            prelogin_per_ip: cfg.max_prelogin_per_ip.max(1),
            waiting: cfg.max_prelogin.saturating_mul(WAITING_PER_PLACE),
            waiting_per_ip: cfg.max_prelogin_per_ip.saturating_mul(WAITING_PER_PLACE),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    PreLogin,
    Session,
}

/// A live connection, as the limit and shutdown logic sees it.
#[derive(Debug)]
struct Entry {
    /// A second handle on the socket, to shut it down from outside its thread.
    tcp: TcpStream,
    /// The peer's address, canonical (an IPv4-mapped IPv6 address is the IPv4 one).
    ip: IpAddr,
    peer: SocketAddr,
    /// Inside a command or transfer (shutdown lets these finish).
    busy: Arc<AtomicBool>,
    phase: Phase,
}

/// Where an accepted connection was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admitted {
    /// Straight to the pre-login phase.
    Now(u64),
    /// Into the waiting room: call [`Registry::wait_turn`] before serving it.
    Waiting(u64),
}

impl Admitted {
    /// The connection's id.
    pub(super) fn id(self) -> u64 {
        match self {
            Admitted::Now(id) | Admitted::Waiting(id) => id,
        }
    }
}

/// Why an accepted connection was refused.
#[derive(Debug)]
pub(super) enum Refused {
    /// No room: pre-login and waiting counts (all, from this address).
    Full {
        /// Connections in the pre-login phase.
        prelogin: Counts,
        /// Connections waiting for room.
        waiting: Counts,
    },
    /// The socket could not be duplicated.
    Io(io::Error),
}

/// The live connections.
#[derive(Debug)]
pub(super) struct Registry {
    limits: Limits,
    conns: Mutex<HashMap<u64, Entry>>,
    /// Signalled whenever pre-login room may have opened (or shutdown began).
    turn: Condvar,
    next_id: AtomicU64,
}

impl Registry {
    /// An empty registry with these caps.
    pub(super) fn new(limits: Limits) -> Registry {
        Registry {
            limits,
            conns: Mutex::new(HashMap::new()),
            turn: Condvar::new(),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection just accepted: into the pre-login phase if there is
    /// room, else into the waiting room if there is room there, else refused.
    pub(super) fn admit(
        &self,
        tcp: &TcpStream,
        peer: SocketAddr,
        busy: &Arc<AtomicBool>,
    ) -> Result<Admitted, Refused> {
        let ip = peer.ip().to_canonical();
        let l = self.limits;
        let mut conns = self.lock();
        let prelogin = count(&conns, ip, Phase::PreLogin);
        let mut waiting = count(&conns, ip, Phase::Waiting);
        if waiting.0 >= l.waiting || waiting.1 >= l.waiting_per_ip {
            // clients that gave up while waiting make room before a new one is refused
            conns.retain(|_, e| {
                e.phase != Phase::Waiting || !crate::sys::peer_closed(e.tcp.as_fd())
            });
            waiting = count(&conns, ip, Phase::Waiting);
        }
        let phase = if prelogin.0 < l.prelogin && prelogin.1 < l.prelogin_per_ip {
            Phase::PreLogin
        } else if waiting.0 < l.waiting && waiting.1 < l.waiting_per_ip {
            Phase::Waiting
        } else {
            return Err(Refused::Full { prelogin, waiting });
        };
        let tcp = tcp.try_clone().map_err(Refused::Io)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::clone(busy);
        conns.insert(
            id,
            Entry {
                tcp,
                ip,
                peer,
                busy,
                phase,
            },
        );
        Ok(match phase {
            Phase::PreLogin => Admitted::Now(id),
            _ => Admitted::Waiting(id),
        })
    }

    /// Waits until waiting connection `id` may enter the pre-login phase (true), or
    /// until `deadline`, `stop`, or its client gives up (false: close it).
    pub(super) fn wait_turn(&self, id: u64, deadline: Instant, stop: &AtomicBool) -> bool {
        let l = self.limits;
        let mut conns = self.lock();
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            let Some(entry) = conns.get(&id) else {
                return false;
            };
            if crate::sys::peer_closed(entry.tcp.as_fd()) {
                return false;
            }
            let (all, from_ip) = count(&conns, entry.ip, Phase::PreLogin);
            if all < l.prelogin && from_ip < l.prelogin_per_ip {
                if let Some(e) = conns.get_mut(&id) {
                    e.phase = Phase::PreLogin;
                }
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            conns = self
                .turn
                .wait_timeout(conns, left.min(WAIT_POLL))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Turns connection `id` into a session if the session caps leave room: checked
    /// and taken in one step, so logins in parallel cannot overshoot. Otherwise
    /// returns the session counts that refused it.
    pub(super) fn promote(&self, id: u64) -> Result<(), Counts> {
        let l = self.limits;
        let mut conns = self.lock();
        let Some(ip) = conns.get(&id).map(|e| e.ip) else {
            return Err((0, 0));
        };
        let (all, from_ip) = count(&conns, ip, Phase::Session);
        if all >= l.sessions || from_ip >= l.sessions_per_ip {
            return Err((all, from_ip));
        }
        if let Some(e) = conns.get_mut(&id) {
            e.phase = Phase::Session;
        }
        drop(conns);
        self.turn.notify_all();
        Ok(())
    }

    /// Logged-in sessions now: (all, from `ip`).
    pub(super) fn sessions(&self, ip: IpAddr) -> Counts {
        count(&self.lock(), ip.to_canonical(), Phase::Session)
    }

    /// Forgets connection `id`; returns its peer if it was registered.
    pub(super) fn remove(&self, id: u64) -> Option<SocketAddr> {
        let entry = self.lock().remove(&id);
        self.turn.notify_all();
        entry.map(|e| e.peer)
    }

    /// Wakes every waiting connection (to see that the server is shutting down).
    pub(super) fn wake_all(&self) {
        self.turn.notify_all();
    }

    /// Shuts down the sockets of connections not inside a command; returns how many
    /// connections are left in all.
    pub(super) fn close_idle(&self) -> usize {
        let conns = self.lock();
        for e in conns.values().filter(|e| !e.busy.load(Ordering::SeqCst)) {
            let _ = e.tcp.shutdown(Shutdown::Both);
        }
        conns.len()
    }

    /// Shuts down every socket; returns the peers cut.
    pub(super) fn cut_all(&self) -> Vec<SocketAddr> {
        let conns = self.lock();
        for e in conns.values() {
            let _ = e.tcp.shutdown(Shutdown::Both);
        }
        conns.values().map(|e| e.peer).collect()
    }

    /// Whether no connection is left.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Counts the connections in `phase`: (all, from `ip`).
fn count(conns: &HashMap<u64, Entry>, ip: IpAddr, phase: Phase) -> Counts {
    conns
        .values()
        .filter(|e| e.phase == phase)
        .fold((0, 0), |(all, from_ip), e| {
            (all + 1, from_ip + usize::from(e.ip == ip))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn limits() -> Limits {
        Limits::new(&ServerConfig {
            max_sessions: 3,
            max_sessions_per_ip: 2,
            max_prelogin: 4,
            max_prelogin_per_ip: 2,
            ..ServerConfig::default()
        })
    }

    /// A connected socket pair: (server end, client end). Registered entries share the
    /// server end; the client end must stay open, or they count as given up.
    fn socket(l: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (l.accept().unwrap().0, client)
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 40000)
    }

    #[test]
    fn prelogin_caps_then_waiting_room_then_refusal() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tcp, _client) = socket(&l);
        let busy = Arc::new(AtomicBool::new(false));
        let r = Registry::new(limits());
        let a = peer("127.0.0.2");
        let admit = |p| r.admit(&tcp, p, &busy).ok();
        assert!(matches!(admit(a), Some(Admitted::Now(_))));
        assert!(matches!(admit(a), Some(Admitted::Now(_))));
        // the address's two places are taken: eight may wait, then no more
        for _ in 0..8 {
            assert!(matches!(admit(a), Some(Admitted::Waiting(_))));
        }
        assert!(matches!(
            r.admit(&tcp, a, &busy),
            Err(Refused::Full {
                prelogin: (2, 2),
                waiting: (8, 8)
            })
        ));
        // other addresses still come in, up to the total of four
        let mapped = peer("::ffff:127.0.0.3");
        assert!(matches!(admit(mapped), Some(Admitted::Now(_))));
        assert!(matches!(admit(peer("127.0.0.3")), Some(Admitted::Now(_))));
        assert!(matches!(
            admit(peer("127.0.0.4")),
            Some(Admitted::Waiting(_))
        ));
    }

    #[test]
    fn clients_that_gave_up_waiting_make_room() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tcp, _client) = socket(&l);
        let (gone, client) = socket(&l);
        drop(client);
        let busy = Arc::new(AtomicBool::new(false));
        let r = Registry::new(limits());
        let a = peer("127.0.0.2");
        for _ in 0..2 {
            r.admit(&tcp, a, &busy).unwrap();
        }
        let waiting: Vec<u64> = (0..8)
            .map(|_| r.admit(&gone, a, &busy).unwrap().id())
            .collect();
        assert!(
            matches!(r.admit(&tcp, a, &busy), Ok(Admitted::Waiting(_))),
            "the room was full of clients that had left"
        );
        let stop = AtomicBool::new(false);
        assert!(!r.wait_turn(waiting[0], Instant::now() + Duration::from_secs(10), &stop));
    }

    #[test]
    fn sessions_count_apart_and_promotion_is_capped() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tcp, _client) = socket(&l);
        let busy = Arc::new(AtomicBool::new(false));
        let r = Registry::new(limits());
        let ids: Vec<u64> = ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"]
            .iter()
            .map(|p| r.admit(&tcp, peer(p), &busy).unwrap().id())
            .collect();
        assert_eq!(r.promote(ids[0]), Ok(()));
        assert_eq!(r.promote(ids[1]), Ok(()));
        assert_eq!(r.sessions("127.0.0.2".parse().unwrap()), (2, 2));
        // sessions do not take pre-login places
        let more = r.admit(&tcp, peer("127.0.0.2"), &busy).unwrap();
        assert!(matches!(more, Admitted::Now(_)));
        assert_eq!(r.promote(more.id()), Err((2, 2)), "per address");
        assert_eq!(r.promote(ids[2]), Ok(()));
        assert_eq!(r.promote(ids[3]), Err((3, 1)), "in total");
        r.remove(ids[0]);
        assert_eq!(r.promote(ids[3]), Ok(()));
    }

    #[test]
    fn a_waiting_connection_gets_its_turn_when_a_place_frees() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tcp, _client) = socket(&l);
        let busy = Arc::new(AtomicBool::new(false));
        let r = Arc::new(Registry::new(limits()));
        let a = peer("127.0.0.2");
        let first = r.admit(&tcp, a, &busy).unwrap().id();
        r.admit(&tcp, a, &busy).unwrap();
        let Admitted::Waiting(w) = r.admit(&tcp, a, &busy).unwrap() else {
            panic!("expected to wait")
        };
        let stop = AtomicBool::new(false);
        // no place frees: the wait ends at its deadline
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(!r.wait_turn(w, soon, &stop));
        let r2 = Arc::clone(&r);
        let freer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            r2.remove(first);
        });
        assert!(r.wait_turn(w, Instant::now() + Duration::from_secs(10), &stop));
        freer.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        let Admitted::Waiting(w2) = r.admit(&tcp, a, &busy).unwrap() else {
            panic!("expected to wait")
        };
        assert!(
            !r.wait_turn(w2, Instant::now() + Duration::from_secs(10), &stop),
            "shutdown ends the wait"
        );
    }
}
