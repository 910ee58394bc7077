//! The output budget (`Budget::held_output`): how many bytes of blocks may
//! be compressing or waiting for their tarballs' writers ahead of the
//! artifact the fan-out is at.

use std::sync::{Condvar, Mutex};

use super::turn::Stop;

/// The output budget: bytes of blocks compressing (their input) or
/// waiting for the fan-out and their tarballs' writers (their output), for
/// every artifact but the one the fan-out is at (which never waits for it,
/// so the run always moves).
pub(super) struct Held {
    state: Mutex<(u64, usize)>,
    cv: Condvar,
    limit: u64,
}

impl Held {
    pub(super) fn new(limit: u64) -> Self {
        Held {
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
            limit,
        }
    }

    /// Takes `bytes` for a block of artifact `index`; false if stopped.
    pub(super) fn acquire(&self, index: usize, bytes: u64, stop: &Stop) -> bool {
        let mut s = self.state.lock().expect("held");
        loop {
            if stop.cancels(index) || stop.checking() {
                return false;
            }
            if s.1 == index || s.0 + bytes <= self.limit {
                s.0 += bytes;
                return true;
            }
            s = self.cv.wait(s).expect("held");
        }
    }

    /// Gives back `bytes`: what a block's compression saved, or the rest
    /// once every tarball that holds it has written it.
    pub fn release(&self, bytes: u64) {
        let mut s = self.state.lock().expect("held");
        s.0 = s.0.saturating_sub(bytes);
        drop(s);
        self.cv.notify_all();
    }

    /// The fan-out moves on to artifact `index`.
    pub fn at(&self, index: usize) {
        let mut s = self.state.lock().expect("held");
        s.1 = index;
        drop(s);
        self.cv.notify_all();
    }

    /// Wakes every thread waiting for room (to see the run stop).
    pub(super) fn wake(&self) {
        self.cv.notify_all();
    }
}
