//! The pool of bytes of short runs held beside parts that wait for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The bytes of short runs the sink's tarballs hold beside a part that
/// waits for them: a share of `--memory`. Taken without waiting (a
/// tarball that finds no room sends its waiting part at once: a few more
/// bytes sent rather than held), given back when the run ends or grows
/// long enough to be copied.
#[derive(Debug)]
pub(crate) struct HeldPool {
    limit: u64,
    used: AtomicU64,
}

impl HeldPool {
    pub(crate) fn new(limit: u64) -> Arc<HeldPool> {
        Arc::new(HeldPool {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub(super) fn take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    pub(super) fn give(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// A holding of nothing yet, to take bytes into.
    pub(super) fn hold(self: &Arc<Self>) -> Held {
        Held {
            pool: self.clone(),
            n: 0,
        }
    }
}

/// Bytes taken from a [`HeldPool`], given back when the holding is
/// released or dropped (the run ended, grew long, or its tarball was
/// aborted): one place gives them back, whichever way the run goes.
#[derive(Debug)]
pub(super) struct Held {
    pool: Arc<HeldPool>,
    n: u64,
}

impl Held {
    /// Takes `n` more bytes, if the pool has room.
    pub(super) fn take(&mut self, n: u64) -> bool {
        let taken = self.pool.take(n);
        if taken {
            self.n += n;
        }
        taken
    }

    /// Gives back everything held so far.
    pub(super) fn release(&mut self) {
        self.pool.give(std::mem::take(&mut self.n));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}
