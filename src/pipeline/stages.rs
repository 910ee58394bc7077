//! CPU time per pipeline stage, measured on the stage's own threads, so a
//! run can tell which stage bounds it: the serial ones (decode, repack) cap
//! how many compression threads a machine can keep busy.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cpu_time::thread_cpu_ns;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Stage {
    /// Reading the stored bytes and decoding them (one thread; downloads
    /// and their SHA-256 run on the async runtime).
    Decode,
    /// Tar parsing, flattening, conflict fingerprints, blocks (one thread).
    Repack,
    /// Compression (all pool threads together).
    Compress,
    /// SHA-256 of the tarballs (a thread each, side by side).
    Checksum,
}

/// Nanoseconds of CPU per stage.
#[derive(Default, Debug)]
pub(crate) struct Stages {
    decode: AtomicU64,
    repack: AtomicU64,
    compress: AtomicU64,
    checksum: AtomicU64,
}

/// What `Stages` measured, for the run summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StageSeconds {
    /// Reading and decoding artifacts.
    pub decode: f64,
    /// Flattening artifacts into tar blocks.
    pub repack: f64,
    /// Compression, over all pool threads.
    pub compress: f64,
    /// SHA-256 of the tarballs.
    pub checksum: f64,
}

impl Stages {
    fn counter(&self, s: Stage) -> &AtomicU64 {
        match s {
            Stage::Decode => &self.decode,
            Stage::Repack => &self.repack,
            Stage::Compress => &self.compress,
            Stage::Checksum => &self.checksum,
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
        self.counter(stage)
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    pub fn seconds(&self) -> StageSeconds {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        StageSeconds {
            decode: s(&self.decode),
            repack: s(&self.repack),
            compress: s(&self.compress),
            checksum: s(&self.checksum),
        }
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
