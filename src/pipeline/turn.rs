//! Plan order among the artifact threads: the turn (which artifact's
//! entries are decided next, with the conflict table handed to it) and why
//! threads stop (the run aborted, or an artifact failed ahead of its turn).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use crate::repack::artifact::Decider;

/// Why workers stop: the run was aborted, or an artifact failed ahead of
/// its turn (everything after it stops; everything before it is still
/// checked).
pub(super) struct Stop {
    aborted: AtomicBool,
    failed_at: AtomicUsize,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            aborted: AtomicBool::new(false),
            failed_at: AtomicUsize::new(usize::MAX),
        }
    }
}

impl Stop {
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Whether work on artifact `index` is no longer needed.
    pub fn cancels(&self, index: usize) -> bool {
        self.aborted() || index > self.failed_at()
    }

    /// Whether the run will fail: nothing needs compressing any more.
    pub fn checking(&self) -> bool {
        self.failed_at() != usize::MAX
    }

    /// Stops everything.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Artifact `index` failed ahead of its turn: every later one stops.
    pub fn fail_at(&self, index: usize) {
        self.failed_at.fetch_min(index, Ordering::SeqCst);
    }

    /// The earliest artifact that failed ahead of its turn (`usize::MAX`:
    /// none).
    pub fn failed_at(&self) -> usize {
        self.failed_at.load(Ordering::SeqCst)
    }
}

/// The turn: which artifact's entries are decided next, and the conflict
/// table, handed to that artifact's worker.
pub(super) struct Turn {
    /// The conflict table, while no worker holds it.
    decider: Mutex<Option<Decider>>,
    /// Whose turn it is; changed only with `decider` locked, read without
    /// the lock by scanning threads, which ask at every entry.
    at: AtomicUsize,
    cv: Condvar,
}

impl Turn {
    pub(super) fn new(decider: Decider) -> Self {
        Turn {
            decider: Mutex::new(Some(decider)),
            at: AtomicUsize::new(0),
            cv: Condvar::new(),
        }
    }

    /// Waits for artifact `index`'s turn; `None` if it is cancelled first.
    pub(super) fn wait(&self, index: usize, stop: &Stop) -> Option<Decider> {
        let mut decider = self.decider.lock().expect("turn");
        loop {
            if stop.cancels(index) {
                return None;
            }
            if self.is(index) {
                return decider.take();
            }
            decider = self.cv.wait(decider).expect("turn");
        }
    }

    /// Whether it is artifact `index`'s turn now.
    pub(super) fn is(&self, index: usize) -> bool {
        self.at.load(Ordering::Acquire) == index
    }

    /// Artifact `index` is decided: the next one's turn.
    pub(super) fn pass(&self, index: usize, decider: Decider) {
        let mut held = self.decider.lock().expect("turn");
        *held = Some(decider);
        self.at.store(index + 1, Ordering::Release);
        drop(held);
        self.cv.notify_all();
    }

    /// Wakes every thread waiting for its turn (to see the run stop).
    pub(super) fn wake(&self) {
        self.cv.notify_all();
    }
}
