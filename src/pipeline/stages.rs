//! CPU time per pipeline stage, measured on the stage's own threads, so a
//! run can tell which stage bounds it, and the serial part: the work that
//! runs one artifact at a time, which caps how many threads a machine can
//! keep busy.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// SHA-256 of the tarballs (a thread each, side by side).
    Checksum,
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
}

/// What `Stages` measured, for the run summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StageSeconds {
    /// Reading and decoding artifacts.
    pub decode: f64,
    /// Flattening artifacts into tar blocks.
    pub repack: f64,
    /// Of decode and repack, the work that ran one artifact at a time (in
    /// plan order; all of it with one artifact thread): `compress /
    /// serial` is how many compression threads the run could keep busy.
    pub serial: f64,
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
            Stage::Serial => &self.serial,
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
        StageSeconds {
            decode,
            repack,
            serial: if self.all_serial.load(Ordering::Relaxed) {
                decode + repack
            } else {
                s(&self.serial)
            },
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
