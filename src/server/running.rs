//! The registry of running resumable uploads, each with a handle on the connection
//! writing it (the upload itself is `upload.rs`).
//!
//! A client whose connection died without the server noticing (a cable pulled, a
//! laptop gone to sleep, a router restarted) retries on a new connection and asks to
//! resume. The server's thread for the old connection may be waiting in a read for the
//! whole idle timeout, holding the partial file locked, and the retry would have to
//! start over. Instead, a resume that finds its partial held cuts the connection that
//! holds it (same user, same target, same source size and time: the same upload) and
//! continues once the partial is let go.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::sandbox::FileId;

/// How long a resume waits for a cut connection's thread to let go of the partial.
pub(crate) const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// The registry of running resumable uploads.
#[derive(Debug, Default)]
pub(crate) struct UploadRegistry {
    /// Partial → (registration number, the writing connection).
    running: Mutex<HashMap<FileId, (u64, TcpStream)>>,
    next: AtomicU64,
}

/// Keeps an upload registered until dropped.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    uploads: &'a UploadRegistry,
    id: FileId,
    /// So that a cut upload's late drop never removes the upload that took over.
    number: u64,
}

impl UploadRegistry {
    /// Registers the upload into partial `id`, written by the connection `tcp`.
    pub(crate) fn register(&self, id: FileId, tcp: &TcpStream) -> Registration<'_> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        // without a second handle the upload simply cannot be taken over
        if let Ok(handle) = tcp.try_clone() {
            self.lock().insert(id, (number, handle));
        }
        Registration {
            uploads: self,
            id,
            number,
        }
    }

    /// Cuts the connection writing partial `id`, if one is registered: its thread then
    /// fails its read, keeps what arrived and lets go of the partial.
    pub(crate) fn cut(&self, id: FileId) -> bool {
        match self.lock().remove(&id) {
            Some((_, tcp)) => {
                let _ = tcp.shutdown(Shutdown::Both);
                true
            }
            None => false,
        }
    }

    /// Calls `attempt` until it returns `Some` or `TAKEOVER_WAIT` has passed.
    pub(crate) fn wait_for<T>(mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + TAKEOVER_WAIT;
        loop {
            if let Some(t) = attempt() {
                return Some(t);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileId, (u64, TcpStream)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut running = self.uploads.lock();
        if running
            .get(&self.id)
            .is_some_and(|(n, _)| *n == self.number)
        {
            running.remove(&self.id);
        }
    }
}
