//! `--memory`: splits one budget among the buffers of a run, so that peak
//! memory is set by configuration, not by the size of the input.
//!
//! Without `--memory` the budget comes from the machine
//! ([`default_memory`]): a quarter of the memory it offers, at most 1 GiB
//! per core, at least 512 MiB.
//!
//! Fixed needs come first (per artifact read at once its decoder window, a
//! small download buffer and its decoded chunks; one block per compression
//! thread, the S3 parts being filled, one part uploading); what is left is
//! shared among artifacts held ahead of their turn (with several read at
//! once), download read-ahead, parts uploading at once and compressed
//! blocks queued for the sinks, each capped at the point where more stops
//! helping.

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::plan::Format;
use crate::repack::decode::MAX_WINDOW_LOG;
use crate::repack::COMPARE_BUFFER as MAX_COMPARE_BUFFER;
use crate::source::verify;
use crate::units::{whole_mib, MIB};

/// The least `--memory` a run takes by default (and what it takes where
/// the machine's memory is unknown).
pub const DEFAULT_MEMORY: u64 = 512 * MIB;

mod defaults;
pub mod machine;
pub use defaults::{default_memory, scale_table, SCALE_MACHINES};

/// The process itself: code, runtime, HTTP/S3 clients, plan, progress, and
/// the conflict table of a run of typical size (it keeps ~64 bytes per
/// path, so 200,000 paths take ~13 MiB).
const RUNTIME: u64 = 64 * MIB;

/// zstd windows (and xz dictionaries) from 8 MiB (what `zstd -19` writes)
/// up to the decoder's own limit, 128 MiB (`zstd --long`).
const MIN_WINDOW_LOG: u32 = 23;

/// The decoder window budgeted per artifact read at once: what archives
/// declare in practice (pyzstd level 3 on a stream, TheRock's artifacts:
/// 2 MiB; xz -6: 8 MiB). An artifact that declares more takes it from the
/// pool's one largest window ([`Budget::decoder_windows`]), or waits.
const TYPICAL_WINDOW: u64 = 8 * MIB;

/// Downloads: at most this many artifacts open at once (one being read,
/// the rest read ahead), with a buffer of 4 to 32 MiB each.
const MAX_DOWNLOADS: u64 = 5;
const MIN_DOWNLOAD_BUFFER: u64 = 4 * MIB;
const MAX_DOWNLOAD_BUFFER: u64 = 32 * MIB;

/// Parts uploading at once, over all tarballs, where memory allows.
const MAX_PARTS_UPLOADING: u64 = 8;

/// With several artifacts read at once, each may hold at least this much
/// ahead of its turn.
const MIN_PENDING: u64 = 16 * MIB;

/// Readers chosen by default each hold at least this much ahead of their
/// turn.
const MIN_DEFAULT_AHEAD: u64 = 40 * MIB;

/// Cores per artifact read at once, by default. Readers are what keeps
/// the turn moving: an artifact whose turn comes before it was read far
/// ahead is read on the one-at-a-time chain. On the release-size run at
/// 64 cores and 4 GiB, one reader per 4 cores left zstd-3 with 12.8
/// compression threads' worth of serial work, one per 2 cores with 18.0
/// (and a lower peak RSS: each holds less ahead).
const CORES_PER_ARTIFACT: usize = 2;

/// What a run is allowed to hold, derived from `--memory`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    /// Compression threads.
    pub jobs: usize,
    /// Artifacts decoded and scanned at once (a thread each, and one
    /// decoding for each).
    pub artifact_jobs: usize,
    /// Bytes an artifact read ahead of its turn may hold (its entries and
    /// decoded bytes), with more than one artifact at once.
    pub pending: u64,
    /// Largest zstd window an artifact may use (log2 bytes); xz
    /// dictionaries are held to the same size.
    pub window_log_max: u32,
    /// Bytes of decoder windows the artifacts being decoded share, each
    /// taking what its archive's header declares: a typical window per
    /// artifact read at once and one of the largest. (The artifact the
    /// output is at may take one more of the largest, so it never waits.)
    pub decoder_windows: u64,
    /// A file sharing its path with an earlier one is held in memory up to
    /// this size, to compare before its header is written.
    pub compare_buffer: u64,
    /// Artifacts opened ahead of the one being repacked.
    pub read_ahead: usize,
    /// Bytes each open download may hold ahead of its reader.
    pub download_buffer: usize,
    /// Compressed blocks queued between an artifact and the sinks.
    pub blocks_in_flight: usize,
    /// Bytes of blocks compressing (their input) or compressed and queued
    /// (their output) for artifacts the sinks have not reached yet.
    pub held_output: u64,
    /// Bytes of S3 parts uploading at once (0 without an S3 destination).
    pub upload_bytes: u64,
    /// Bytes of short copied runs S3 uploads may hold beside a part that
    /// waits for them, over all tarballs (0 without an S3 destination).
    pub held_runs: u64,
    /// The whole budget (`--memory`, or the machine's default).
    pub memory: u64,
    /// Why that much: `--memory`, or how the default was chosen.
    pub memory_from: String,
    /// The cores the run sized itself for, and where that came from.
    pub cores: usize,
    /// `ROCKPACK_CORES`, or the cores the process may use.
    pub cores_from: String,
}

/// What a run needs to size its buffers.
#[derive(Clone, Debug)]
pub struct Needs {
    /// `--memory`: the whole budget, in bytes.
    pub memory: u64,
    /// Why that much (for the log and the summary).
    pub memory_from: String,
    /// `--jobs`, when given; otherwise the core count, lowered to fit.
    pub jobs: Option<usize>,
    /// `--artifact-jobs`, when given; otherwise one per
    /// [`CORES_PER_ARTIFACT`] cores, lowered to fit.
    pub artifact_jobs: Option<usize>,
    /// Cores available to the process.
    pub cores: usize,
    /// Where `cores` came from.
    pub cores_from: String,
    /// The run's codecs (one per format): set the block size and each
    /// thread's state; a thread may compress for any of them.
    pub codecs: Vec<Codec>,
    /// For each tarball, the bytes its sink buffers before writing them out
    /// (an S3 part; 0 for directories and standard output).
    pub part_sizes: Vec<u64>,
}

/// Memory one compression thread uses besides its input and output:
/// measured as the growth of peak RSS while compressing one 4 MiB frame.
fn codec_state(codec: Codec) -> u64 {
    match codec.format {
        Format::Gzip | Format::Zip => MIB / 2,
        Format::Zstd => match codec.level {
            ..=3 => 2 * MIB,
            4..=6 => 4 * MIB,
            7..=9 => 12 * MIB,
            _ => 66 * MIB,
        },
    }
}

impl Needs {
    /// A block held as input and output, of the largest format's size.
    fn block(&self) -> u64 {
        let size = self.codecs.iter().map(|c| c.format.block_size()).max();
        2 * size.unwrap_or(0) as u64
    }

    /// The largest state a compression thread may hold.
    fn state(&self) -> u64 {
        self.codecs
            .iter()
            .map(|&c| codec_state(c))
            .max()
            .unwrap_or(0)
    }
}

impl Budget {
    /// Bytes in one buffer of decoded artifact bytes queued for an artifact
    /// thread: the decode stage's unit of work.
    pub const DECODED_CHUNK: usize = 256 << 10;
    /// Such buffers in all: what one decode thread may hold ahead of its
    /// artifact thread (2 MiB).
    pub const DECODED_CHUNKS: usize = 8;

    /// Splits `n.memory` among the run's buffers; a usage error, saying
    /// what the run needs at least, when it does not fit.
    pub fn new(n: &Needs) -> Result<Budget> {
        // A block held as input and output; per thread, the codec's state,
        // plus one block queued for each thread and one being filled.
        let block = n.block();
        let state = n.state();
        let threads = |jobs: usize| jobs as u64 * (state + block) + 2 * block;
        let partials: u64 = n.part_sizes.iter().sum();
        let largest_part = n.part_sizes.iter().copied().max().unwrap_or(0);
        let avail = n.memory.saturating_sub(RUNTIME);

        let window_log_max = (avail / 3)
            .checked_ilog2()
            .unwrap_or(0)
            .clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG);
        let window = 1u64 << window_log_max;
        let compare_buffer = (avail / 16).clamp(MIB, MAX_COMPARE_BUFFER);
        // Besides the threads: per artifact read at once, a typical window,
        // its downloads (and their digest checks: two with several at once,
        // as a large artifact's second read runs beside the next one's
        // first) and the decoded bytes queued for its scanning thread; one
        // part uploading; the largest window once (twice with several at
        // once: the artifact the output is at never waits for one).
        let decoded = (Self::DECODED_CHUNK * Self::DECODED_CHUNKS + verify::BUFFERED) as u64;
        let opens = |readers: usize| if readers > 1 { 2 } else { 1 };
        let per_artifact = |readers: usize| opens(readers) * MIN_DOWNLOAD_BUFFER + decoded;
        let shared = compare_buffer + partials + largest_part;
        // One artifact at a time decodes one archive at a time: the
        // largest window is all it needs.
        let windows = |readers: usize| {
            if readers > 1 {
                readers as u64 * TYPICAL_WINDOW.min(window) + window
            } else {
                window
            }
        };
        let overdraft = |readers: usize| if readers > 1 { window } else { 0 };
        let fixed = |readers: usize| {
            let ahead = if readers > 1 { MIN_PENDING } else { 0 };
            shared
                + windows(readers)
                + overdraft(readers)
                + readers as u64 * (per_artifact(readers) + ahead)
        };

        let wanted = n.jobs.unwrap_or(n.cores).max(1);
        let fits = |jobs: usize, readers: usize| fixed(readers) + threads(jobs) <= avail;
        let jobs = match n.jobs {
            Some(j) => j.max(1),
            None => (1..=wanted).rev().find(|&j| fits(j, 1)).unwrap_or(1),
        };
        let wanted_readers = n
            .artifact_jobs
            .unwrap_or((n.cores / CORES_PER_ARTIFACT).max(1))
            .max(1);
        // With several readers, half of what is left besides them and the
        // threads goes to what they read ahead of their turn.
        let left = |r: usize| avail.saturating_sub(fixed(r) + threads(jobs));
        let ahead = |r: usize| MIN_PENDING + left(r) / 2 / r as u64;
        // Readers chosen by default leave a quarter of the budget to what
        // makes them useful (read-ahead, output held ahead of the sinks),
        // and each at least MIN_DEFAULT_AHEAD ahead of its turn (more
        // readers holding less each would only go live sooner).
        let default_fits = |r: usize| {
            fixed(r) + threads(jobs) + avail / 4 <= avail && ahead(r) >= MIN_DEFAULT_AHEAD
        };
        let readers = match n.artifact_jobs {
            Some(r) => r.max(1),
            None => (1..=wanted_readers)
                .rev()
                .find(|&r| r == 1 || default_fits(r))
                .unwrap_or(1),
        };
        if !fits(jobs, readers) {
            let need = RUNTIME + fixed(readers) + threads(jobs);
            let mut parts = format!(
                "{readers} artifact(s) read at once ({} for their decoder windows, {} each for buffers{}), {jobs} compression thread(s) ({} each)",
                whole_mib(windows(readers) + overdraft(readers)),
                whole_mib(per_artifact(readers) + if readers > 1 { MIN_PENDING } else { 0 }),
                if readers > 1 { " and scanning ahead" } else { "" },
                whole_mib(state + block)
            );
            if partials > 0 {
                parts += &format!(
                    ", and an S3 part being filled for each tarball ({} tarball(s), {} in all)",
                    n.part_sizes.len(),
                    whole_mib(partials)
                );
            }
            let lower = match (n.jobs.is_some(), n.artifact_jobs.is_some()) {
                (true, true) => " or lower --jobs or --artifact-jobs",
                (true, false) => " or lower --jobs",
                (false, true) => " or lower --artifact-jobs",
                (false, false) => "",
            };
            return Err(Error::Usage(format!(
                "--memory {}: too small for this run, which needs at least {} for {parts}; raise --memory{lower}",
                whole_mib(n.memory),
                whole_mib(need),
            )));
        }
        if jobs < wanted || readers < wanted_readers {
            tracing::info!(
                "--memory {} allows {jobs} of {wanted} compression threads and {readers} of {wanted_readers} artifacts at once",
                whole_mib(n.memory)
            );
        }

        // Shares of what is left: with several artifacts at once, half to
        // what they read ahead of their turn; of the rest, downloads 1/2,
        // uploads 1/4 and short runs they hold 1/20, blocks 1/5 (half
        // queued, half held ahead).
        let mut rest = left(readers);
        let pending = if readers > 1 {
            rest -= rest / 2;
            ahead(readers)
        } else {
            0
        };
        let readers_u = readers as u64;
        let open = readers_u * opens(readers);
        let downloads = (open * MIN_DOWNLOAD_BUFFER + rest / 2)
            .min((open + MAX_DOWNLOADS - 1) * MAX_DOWNLOAD_BUFFER);
        let streams = (downloads / MIN_DOWNLOAD_BUFFER).clamp(open, open + MAX_DOWNLOADS - 1);
        let download_buffer = (downloads / streams).min(MAX_DOWNLOAD_BUFFER);
        let upload_bytes = if largest_part == 0 {
            0
        } else {
            (largest_part + rest / 4).min(MAX_PARTS_UPLOADING * largest_part)
        };
        // At most a short run of 5 MiB for each tarball.
        let held_runs = (rest / 20).min(n.part_sizes.len() as u64 * 5 * MIB);
        let max_blocks = 4 * jobs as u64 + 4;
        let blocks_in_flight = (jobs as u64 + 1 + rest / 10 / block).min(max_blocks);

        Ok(Budget {
            jobs,
            artifact_jobs: readers,
            pending,
            window_log_max,
            decoder_windows: windows(readers),
            compare_buffer,
            read_ahead: (streams - open) as usize,
            download_buffer: download_buffer as usize,
            blocks_in_flight: blocks_in_flight as usize,
            held_output: rest / 10,
            upload_bytes,
            held_runs,
            memory: n.memory,
            memory_from: n.memory_from.clone(),
            cores: n.cores,
            cores_from: n.cores_from.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(memory: u64, jobs: Option<usize>, format: Format, parts: Vec<u64>) -> Needs {
        Needs {
            memory,
            memory_from: "--memory".into(),
            jobs,
            artifact_jobs: None,
            cores: 2,
            cores_from: "a test".into(),
            codecs: vec![Codec::new(format, None).unwrap()],
            part_sizes: parts,
        }
    }

    /// Everything the budget lets the run hold, as the module doc counts it.
    fn held(b: &Budget, n: &Needs) -> u64 {
        let block = n.block();
        let readers = b.artifact_jobs as u64;
        let decoded = (Budget::DECODED_CHUNK * Budget::DECODED_CHUNKS + verify::BUFFERED) as u64;
        let window = 1u64 << b.window_log_max;
        let overdraft = if readers > 1 { window } else { 0 };
        RUNTIME
            + b.decoder_windows
            + overdraft
            + readers * (decoded + b.pending)
            + b.compare_buffer
            + n.part_sizes.iter().sum::<u64>()
            + b.upload_bytes
            + b.held_runs
            + (b.read_ahead as u64 + readers * if readers > 1 { 2 } else { 1 })
                * b.download_buffer as u64
            + b.jobs as u64 * n.state()
            + (b.blocks_in_flight as u64 + 1) * block
            + b.held_output
    }

    #[test]
    fn default_budget_keeps_the_old_settings_and_fits() {
        let n = needs(DEFAULT_MEMORY, None, Format::Gzip, vec![5 * MIB; 8]);
        let b = Budget::new(&n).unwrap();
        assert_eq!(b.jobs, 2);
        assert_eq!(b.window_log_max, 27);
        assert_eq!(b.read_ahead, 4);
        assert!(b.download_buffer >= (16 << 20) as usize, "{b:?}");
        assert_eq!(b.upload_bytes, 8 * 5 * MIB);
        assert!(b.blocks_in_flight >= 6, "{b:?}");
        assert!(held(&b, &n) <= DEFAULT_MEMORY, "{b:?}");
    }

    #[test]
    fn every_budget_is_kept() {
        for memory in [160, 200, 256, 384, 512, 1024, 4096, 16384] {
            for format in [Format::Gzip, Format::Zstd] {
                for parts in [vec![], vec![5 * MIB; 8], vec![16 * MIB; 3]] {
                    for cores in [2, 16, 64] {
                        let mut n = needs(memory * MIB, None, format, parts.clone());
                        n.cores = cores;
                        if let Ok(b) = Budget::new(&n) {
                            assert!(held(&b, &n) <= n.memory, "{memory} MiB: {b:?}");
                            assert!(b.blocks_in_flight > b.jobs);
                            assert!(b.artifact_jobs >= 1);
                            assert!((b.artifact_jobs > 1) == (b.pending > 0), "{b:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn artifacts_at_once_follow_cores_and_memory() {
        let mut n = needs(16384 * MIB, None, Format::Gzip, vec![]);
        n.cores = 64;
        let b = Budget::new(&n).unwrap();
        assert_eq!(b.artifact_jobs, 32, "{b:?}");
        assert!(b.pending >= 240 * MIB, "{b:?}");
        // Two cores, the default budget: one artifact at a time, as before.
        let b = Budget::new(&needs(DEFAULT_MEMORY, None, Format::Gzip, vec![])).unwrap();
        assert_eq!((b.artifact_jobs, b.pending), (1, 0));
        // 64 cores, the default budget: one at a time.
        n.memory = DEFAULT_MEMORY;
        assert_eq!(Budget::new(&n).unwrap().artifact_jobs, 1);
        // A small budget reads fewer at once.
        n.memory = 1024 * MIB;
        let b = Budget::new(&n).unwrap();
        assert!(b.artifact_jobs < 32 && b.artifact_jobs >= 1, "{b:?}");
        // Asked for, and too many: the error says what they need.
        n.artifact_jobs = Some(32);
        let e = Budget::new(&n).unwrap_err().to_string();
        assert!(e.contains("32 artifact(s) read at once"), "{e}");
        assert!(e.contains("lower --artifact-jobs"), "{e}");
    }

    #[test]
    fn more_memory_never_gives_less() {
        // Except that a larger decoder window may take from the buffers.
        let downloads = |b: &Budget| (b.read_ahead as u64 + 1) * b.download_buffer as u64;
        let mut last: Option<Budget> = None;
        for memory in (192..=2048).step_by(32) {
            let b =
                Budget::new(&needs(memory * MIB, None, Format::Zstd, vec![5 * MIB; 8])).unwrap();
            if let Some(l) = &last {
                assert!(b.window_log_max >= l.window_log_max && b.jobs >= l.jobs);
                if b.window_log_max == l.window_log_max {
                    assert!(downloads(&b) >= downloads(l), "{l:?} {b:?}");
                    assert!(b.read_ahead >= l.read_ahead, "{l:?} {b:?}");
                    assert!(b.upload_bytes >= l.upload_bytes);
                    assert!(b.blocks_in_flight >= l.blocks_in_flight);
                }
            }
            last = Some(b);
        }
    }

    #[test]
    fn threads_are_lowered_to_fit_unless_asked_for() {
        let mut n = needs(256 * MIB, None, Format::Zstd, vec![]);
        n.codecs = vec![Codec::new(Format::Zstd, Some(19)).unwrap()];
        n.cores = 16;
        let b = Budget::new(&n).unwrap();
        assert!(b.jobs < 16 && b.jobs >= 1, "{b:?}");
        assert!(held(&b, &n) <= n.memory);

        n.jobs = Some(16);
        let e = Budget::new(&n).unwrap_err().to_string();
        assert!(e.contains("--memory 256 MiB: too small"), "{e}");
        assert!(e.contains("lower --jobs"), "{e}");
    }

    #[test]
    fn too_many_parts_for_the_budget_say_what_is_needed() {
        let n = needs(256 * MIB, None, Format::Gzip, vec![16 * MIB; 20]);
        let e = Budget::new(&n).unwrap_err().to_string();
        assert!(e.contains("(20 tarball(s), 320 MiB in all)"), "{e}");
        assert!(e.contains("raise --memory"), "{e}");
    }
}
