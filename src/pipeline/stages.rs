//! CPU time per pipeline stage, measured on the stage's own threads, so a
//! run can tell which stage bounds it, and the serial part: the work that
//! runs one thing at a time, which caps how many threads a machine can
//! keep busy. Chains run one at a time, side by side: the decisions in
//! plan order (and the artifacts read while they hold the turn), the
//! fan-out task (every block, in plan order, handed to the sinks' writes),
//! each tarball's writes where its sink writes on threads of its own, and
//! each tarball's digest. The slowest of them bounds the run: that is
//! `serial`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::cpu_time::thread_cpu_ns;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Stage {
    /// Reading the stored bytes and decoding them (a thread per artifact
    /// being read; downloads and their SHA-256 run on the async runtime).
    Decode,
    /// Tar parsing, flattening, fingerprints, decisions, blocks (a thread
    /// per artifact being scanned).
    Repack,
    /// What runs one artifact at a time, in plan order, on whatever thread:
    /// the decisions on entries, and an artifact's whole decode and repack
    /// while it is decided as it is read. Also counted in its stage.
    Serial,
    /// Compression (all pool threads together).
    Compress,
    /// The fan-out task: every compressed block, in plan order, handed to
    /// its tarballs and through their sinks' writes.
    Fanout,
}

/// Nanoseconds of CPU per stage.
#[derive(Default, Debug)]
pub(crate) struct Stages {
    decode: AtomicU64,
    repack: AtomicU64,
    serial: AtomicU64,
    /// One artifact at a time for the whole run: all of decode and repack
    /// is serial.
    all_serial: std::sync::atomic::AtomicBool,
    compress: AtomicU64,
    checksum: AtomicU64,
    /// The largest one tarball's digest took.
    largest_checksum: AtomicU64,
    /// The most one tarball's writes took on its sink's own threads.
    largest_write: AtomicU64,
    fanout: AtomicU64,
}

/// What `Stages` measured, for the run summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StageSeconds {
    /// Reading and decoding artifacts.
    pub decode: f64,
    /// Flattening artifacts into tar blocks.
    pub repack: f64,
    /// The slowest chain of work that ran one thing at a time: the
    /// decisions and the artifacts read while holding the turn (all of
    /// decode and repack with one artifact thread), the fan-out, the
    /// largest tarball's writes, or the largest tarball's digest.
    /// `compress / serial` is how many compression threads the run could
    /// keep busy.
    pub serial: f64,
    /// Compression, over all pool threads.
    pub compress: f64,
    /// SHA-256 of the tarballs.
    pub checksum: f64,
    /// Of that, the tarball whose digest took longest.
    pub largest_checksum: f64,
    /// The fan-out task (and the sinks' writes it awaits).
    pub fanout: f64,
    /// The tarball whose writes took longest on its sink's own threads
    /// (a directory's files are written there, not in the fan-out task).
    pub largest_write: f64,
}

impl Stages {
    fn counter(&self, s: Stage) -> &AtomicU64 {
        match s {
            Stage::Decode => &self.decode,
            Stage::Repack => &self.repack,
            Stage::Serial => &self.serial,
            Stage::Compress => &self.compress,
            Stage::Fanout => &self.fanout,
        }
    }

    /// One tarball's digest took `ns` of CPU.
    pub fn add_tarball_checksum(&self, ns: u64) {
        self.checksum.fetch_add(ns, Ordering::Relaxed);
        self.largest_checksum.fetch_max(ns, Ordering::Relaxed);
    }

    /// One tarball's writes took `ns` of CPU on its sink's own threads.
    pub fn add_tarball_write(&self, ns: u64) {
        self.largest_write.fetch_max(ns, Ordering::Relaxed);
    }

    /// `future`, with the CPU its polls take counted as `stage` (for a
    /// task: the thread it runs on runs other tasks between its polls).
    pub fn timed<'a, F: Future + Send + 'a>(
        &'a self,
        stage: Stage,
        future: F,
    ) -> Timed<'a, F::Output> {
        Timed {
            stages: self,
            stage,
            inner: Box::pin(future),
        }
    }

    /// Counts the calling thread's CPU time from now until the guard drops.
    pub fn start(&self, stage: Stage) -> StageGuard<'_> {
        StageGuard {
            stages: self,
            stage,
            from: thread_cpu_ns(),
        }
    }

    /// Adds CPU time measured elsewhere (the compression pool's).
    pub fn add(&self, stage: Stage, seconds: f64) {
        self.add_ns(stage, (seconds * 1e9) as u64);
    }

    /// Adds CPU nanoseconds measured by the caller.
    pub fn add_ns(&self, stage: Stage, ns: u64) {
        self.counter(stage).fetch_add(ns, Ordering::Relaxed);
    }

    /// The run read one artifact at a time: its serial work is all of
    /// decode and repack (whatever was counted as it went).
    pub fn all_serial(&self) {
        self.all_serial.store(true, Ordering::Relaxed);
    }

    pub fn seconds(&self) -> StageSeconds {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        let (decode, repack) = (s(&self.decode), s(&self.repack));
        let decided = if self.all_serial.load(Ordering::Relaxed) {
            decode + repack
        } else {
            s(&self.serial)
        };
        let (fanout, largest_checksum) = (s(&self.fanout), s(&self.largest_checksum));
        let largest_write = s(&self.largest_write);
        StageSeconds {
            decode,
            repack,
            serial: decided.max(fanout).max(largest_checksum).max(largest_write),
            compress: s(&self.compress),
            checksum: s(&self.checksum),
            largest_checksum,
            fanout,
            largest_write,
        }
    }
}

/// A future whose polls' CPU is counted (see [`Stages::timed`]).
pub(crate) struct Timed<'a, T> {
    stages: &'a Stages,
    stage: Stage,
    inner: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
}

impl<T> Future for Timed<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let from = thread_cpu_ns();
        let polled = self.inner.as_mut().poll(cx);
        let used = thread_cpu_ns().saturating_sub(from);
        self.stages.add_ns(self.stage, used);
        polled
    }
}

pub(crate) struct StageGuard<'a> {
    stages: &'a Stages,
    stage: Stage,
    from: u64,
}

impl Drop for StageGuard<'_> {
    fn drop(&mut self) {
        let used = thread_cpu_ns().saturating_sub(self.from);
        self.stages
            .counter(self.stage)
            .fetch_add(used, Ordering::Relaxed);
    }
}
