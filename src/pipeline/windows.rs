//! Decoder windows: the memory a zstd or xz decoder needs for an archive
//! is what its own header declares, so each artifact takes that much from
//! a pool shared by every artifact being decoded ([`Budget::decoder_windows`])
//! before its decoder is made, and gives it back when done.

use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex};

use super::RunOptions;
use crate::error::{Error, Result};
use crate::pipeline::budget::Budget;
use crate::plan::Plan;
use crate::repack::{decode, window};

/// The decoder windows of the artifacts being decoded
/// ([`Budget::decoder_windows`]): each takes what its archive's header
/// declares before it is decoded, and waits while they would overflow the
/// pool, except the artifact the output is at, which every other one
/// waits for.
pub struct Windows {
    /// (bytes taken, the artifact the output is at).
    state: Mutex<(u64, usize)>,
    cv: Condvar,
    total: u64,
    /// The largest window an artifact may take (`--memory`'s cap).
    largest: u64,
}

impl Windows {
    pub fn new(budget: &Budget) -> Self {
        Windows {
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
            total: budget.decoder_windows,
            largest: 1 << budget.window_log_max,
        }
    }

    /// The output moves on to artifact `index`.
    pub fn at(&self, index: usize) {
        self.state.lock().expect("windows").1 = index;
        self.cv.notify_all();
    }

    /// Takes the window `head` declares (the largest where it declares
    /// none) for artifact `index`; `None` if the run stops first.
    fn take(
        self: &Arc<Self>,
        index: usize,
        want: Option<u64>,
        stopped: &dyn Fn() -> bool,
    ) -> Option<Lease> {
        let bytes = want.unwrap_or(self.largest).min(self.largest);
        let mut s = self.state.lock().expect("windows");
        loop {
            if s.0 == 0 || s.0 + bytes <= self.total || s.1 == index {
                s.0 += bytes;
                return Some(Lease {
                    windows: self.clone(),
                    bytes,
                });
            }
            if stopped() {
                return None;
            }
            // Waits end on a release, the output moving on, or (to see
            // the run stop) a timeout.
            s = self
                .cv
                .wait_timeout(s, std::time::Duration::from_millis(50))
                .expect("windows")
                .0;
        }
    }
}

/// A window taken from [`Windows`], given back when dropped.
pub struct Lease {
    windows: Arc<Windows>,
    bytes: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut s = self.windows.state.lock().expect("windows");
        s.0 = s.0.saturating_sub(self.bytes);
        drop(s);
        self.windows.cv.notify_all();
    }
}

/// A decoder of artifact `index`'s stored bytes `input`, with the window
/// its first bytes (up to [`window::PEEK`]) declare taken from `windows`
/// for as long as the lease is kept; `stopped` says when to stop waiting
/// for one.
pub(super) fn windowed_decoder<'a, R: Read + Send + 'a>(
    plan: &Plan,
    index: usize,
    mut input: R,
    opts: &RunOptions,
    windows: &Arc<Windows>,
    stopped: &dyn Fn() -> bool,
) -> Result<(Lease, Box<dyn Read + Send + 'a>)> {
    let compression = plan.artifacts[index].name.compression;
    let failed = |e: io::Error| {
        Error::artifact(&plan.artifacts[index].name.file_name(), None, e.to_string())
    };
    let mut head = Vec::with_capacity(window::PEEK);
    (&mut input)
        .take(window::PEEK as u64)
        .read_to_end(&mut head)
        .map_err(failed)?;
    let declared = window::declared(compression, &head);
    let lease = windows
        .take(index, declared, stopped)
        .ok_or_else(|| Error::internal("the run stopped"))?;
    let input = Read::chain(io::Cursor::new(head), input);
    let decoder = decode::decoder_with_window(
        compression,
        input,
        opts.max_unpacked,
        opts.budget.window_log_max,
    )
    .map_err(failed)?;
    Ok((lease, decoder))
}
