//! Live progress: counters the pipeline bumps as bytes flow. Showing them
//! is the caller's (the binary draws bars or logs a line).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::plan::Plan;

/// Counters shared by the pipeline (writer) and the renderer (reader).
pub struct Progress {
    /// Index of the latest artifact started (several may be read at once).
    pub current: AtomicUsize,
    /// Stored bytes read so far, per artifact.
    read: Vec<AtomicU64>,
    /// Compressed bytes written per tarball.
    pub written: Vec<AtomicU64>,
    sizes: Vec<u64>,
    /// When the run started.
    pub started: Instant,
}

impl Progress {
    /// Counters at zero for `plan`'s artifacts and tarballs.
    pub fn new(plan: &Plan) -> Arc<Progress> {
        let sizes: Vec<u64> = plan.artifacts.iter().map(|a| a.size).collect();
        Arc::new(Progress {
            current: AtomicUsize::new(0),
            read: sizes.iter().map(|_| AtomicU64::new(0)).collect(),
            written: plan.tarballs.iter().map(|_| AtomicU64::new(0)).collect(),
            sizes,
            started: Instant::now(),
        })
    }

    /// Artifact `index` (in plan order) starts being read.
    pub(crate) fn start_artifact(&self, index: usize) {
        self.current.fetch_max(index, Ordering::Relaxed);
    }

    /// Stored bytes of artifact `a` read so far.
    pub fn read_of(&self, a: usize) -> u64 {
        self.read[a].load(Ordering::Relaxed).min(self.sizes[a])
    }

    /// Stored bytes read over the whole run.
    pub fn input_done(&self) -> u64 {
        (0..self.sizes.len()).map(|a| self.read_of(a)).sum()
    }

    /// Stored bytes of all the run's artifacts.
    pub fn input_total(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Stored bytes of `artifacts` (plan indices) read so far.
    pub fn input_done_of(&self, artifacts: &[usize]) -> u64 {
        artifacts.iter().map(|&a| self.read_of(a)).sum()
    }

    /// Compressed bytes written, over all tarballs.
    pub fn written_total(&self) -> u64 {
        self.written.iter().map(|w| w.load(Ordering::Relaxed)).sum()
    }
}

/// A reader that counts what passes as artifact `index`'s bytes read.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub progress: Arc<Progress>,
    pub index: usize,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.read[self.index].fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
