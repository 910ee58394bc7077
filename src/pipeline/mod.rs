//! Drives one run: every artifact is read, decoded, repacked and
//! compressed once, several at a time, and each compressed block goes, in
//! plan order, to every tarball that contains it. Any error, Ctrl-C or
//! SIGTERM aborts every tarball; tarballs are published only when all of
//! them are complete.
//!
//! Read in order: [`run`] creates the outputs and ends with them published
//! or aborted; `produce` writes each tarball's header, fans the compressed
//! blocks out and writes the trailers; `workers` (threads of their own)
//! decode (`decode_ahead`) and repack the artifacts and feed the
//! compression pool; `output` holds each tarball being written (its
//! trailer, where its bytes are first written) and finishes, publishes or
//! aborts them all. Per-stage CPU time (`stages`) and the tarballs'
//! digests (`checksum`) have modules of their own; signals are
//! [`crate::signals`].

pub mod budget;
mod checksum;
pub(crate) mod decode_ahead;
mod fanout;
mod held;
mod output;
pub mod progress;
pub mod stages;
mod turn;
mod windows;
mod workers;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::codec::{Block, Codecs, TarballContent};
use crate::error::{Error, Result};
use crate::object_crc::ObjectCrc;
use crate::pipeline::budget::Budget;
use crate::pipeline::progress::Progress;
use crate::plan::{Format, Plan};
use crate::repack::{flatten::Metadata, ConflictPolicy};
use crate::signals::{interrupted, Shutdown};
use crate::sink::{
    set_id, Assembled, RecordedTarball, SetRecord, Sink, StoredChecksum, UploadStats,
};
use crate::source::verify::VerifyMode;
use crate::source::Source;
use checksum::TarballSha;
use output::{abort_all, prepare_all, publish_all, Origins, Output, CREATE_GRACE};
use stages::{Stage, StageSeconds, Stages};
use workers::Workers;

/// How a run packs, besides its plan: compression, conflicts, mtimes,
/// verification and the memory budget.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The codec (format and level) of each format the plan writes.
    pub codecs: Codecs,
    /// What happens when two artifacts give one path different contents.
    pub on_conflict: ConflictPolicy,
    /// How entries' mtimes and modes are written.
    pub metadata: Metadata,
    /// Which artifacts are checked against their `.sha256sum` sidecar.
    pub verify: VerifyMode,
    /// Decoded bytes one artifact may expand to.
    pub max_unpacked: u64,
    /// Threads, read-ahead and buffer sizes (`--memory`).
    pub budget: Budget,
}

/// One tarball a run published.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TarballResult {
    /// As planned: the file name, without the sink's prefix.
    pub file_name: String,
    /// `{label}` of its name: family, target, group or union label.
    pub label: String,
    /// Its table's variant (`tests` for a `-tests` tarball), if any.
    pub variant: Option<String>,
    /// `gz` or `zst`.
    pub format: Format,
    /// Its checksum file's name, if it has one (beside it in the sink).
    pub sidecar: Option<String>,
    /// Where the sink put it: a path, an `s3://` URL, or `-` (stdout).
    pub location: String,
    /// Compressed size: the tarball's bytes as stored.
    pub bytes: u64,
    /// Hex SHA-256 of those bytes, as in the sidecar.
    pub sha256: String,
    /// The checksum the store keeps of it (S3), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
    /// How its bytes reached a store that copies (S3), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assembled: Option<Assembled>,
    /// Uncompressed tar size.
    pub content_bytes: u64,
    /// Sum of the compressed sizes of its artifacts.
    pub input_bytes: u64,
    /// How many artifacts it holds.
    pub artifacts: usize,
    /// When its trailer was written, in seconds since the run started.
    pub seconds: f64,
}

/// What a run did: its tarballs, input and time.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunSummary {
    /// In plan order.
    pub tarballs: Vec<TarballResult>,
    /// Artifacts read (each once, whatever the number of tarballs).
    pub artifacts: usize,
    /// Sum of the compressed sizes of those artifacts.
    pub input_bytes: u64,
    /// Compressed bytes of the run, each counted once however many
    /// tarballs hold it (tarballs' own headers and trailers included):
    /// the least an uploading sink can send.
    pub distinct_bytes: u64,
    /// What an uploading sink sent and copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadStats>,
    /// Wall-clock time of the whole run.
    pub seconds: f64,
    /// Seconds between the first and the last final name written (the
    /// tarballs and their sidecars, published together at the end).
    pub publish_window: f64,
    /// CPU seconds per stage.
    pub cpu: StageSeconds,
    /// What the run chose: memory, threads, artifacts at once, and why.
    pub budget: Budget,
    /// Artifacts too large to hold ahead of their turn, decided from their
    /// entries' heads and read a second time to be cut.
    pub artifacts_read_twice: usize,
}

/// Builds every tarball of `plan` from `source` into `sink`: all of them
/// published, or none (any error, Ctrl-C or SIGTERM aborts every one).
pub async fn run(
    plan: Arc<Plan>,
    source: Arc<dyn Source>,
    sink: &dyn Sink,
    opts: &RunOptions,
    progress: Arc<Progress>,
) -> Result<RunSummary> {
    let started = Instant::now();
    let stages = Arc::new(Stages::default());
    // Installed before anything is created, so no upload can be left behind.
    let mut shutdown = Shutdown::install();
    let mut outputs: Vec<Output> = Vec::with_capacity(plan.tarballs.len());
    let copy_origins = plan.copy_origins();
    let set = set_id(plan.tarballs.iter().map(|t| t.file_name.as_str()));
    let begun = tokio::select! {
        r = sink.begin(&set) => r,
        s = shutdown.recv() => Err(interrupted(s)),
    };
    if let Err(e) = begun {
        sink.abort_rest().await;
        return Err(e);
    }
    for (i, t) in plan.tarballs.iter().enumerate() {
        let output = |writer| Output {
            index: i,
            writer,
            codec: opts.codecs.get(t.format),
            sha: TarballSha::start(stages.clone()),
            content: TarballContent::default(),
            bytes: 0,
            done_at: None,
            pending: Vec::new(),
        };
        let create = sink.create(i, t, copy_origins[i]);
        tokio::pin!(create);
        let created = tokio::select! {
            r = &mut create => r,
            s = shutdown.recv() => {
                // Cut short, the request could leave behind an upload the
                // server started: it gets a moment to answer, so that its
                // writer aborts what it made (past that, `abort_rest` does).
                if let Ok(Ok(writer)) = tokio::time::timeout(CREATE_GRACE, &mut create).await {
                    outputs.push(output(writer));
                }
                Err(interrupted(s))
            }
        };
        match created {
            Ok(writer) => outputs.push(output(writer)),
            Err(e) => {
                abort_all(sink, &mut outputs).await;
                return Err(e);
            }
        }
    }
    let mut origins = Origins {
        rank: plan.upload_order(),
        origin: copy_origins,
        distinct: 0,
    };
    let result = tokio::select! {
        r = produce(&plan, source, &mut outputs, &mut origins, opts, started, &progress, &stages) => r,
        s = shutdown.recv() => Err(interrupted(s)),
    };
    let read_twice = match result {
        Ok(n) => n,
        Err(e) => {
            abort_all(sink, &mut outputs).await;
            return Err(e);
        }
    };
    // Everything short of the final names (copies, staging); a signal
    // still aborts every tarball.
    let prepared = tokio::select! {
        r = prepare_all(&mut outputs, started) => r,
        s = shutdown.recv() => Err(interrupted(s)),
    };
    let digests = match prepared {
        Ok(d) => d,
        Err(e) => {
            abort_all(sink, &mut outputs).await;
            return Err(e);
        }
    };
    for o in &outputs {
        stages.add_tarball_write(o.writer.write_cpu_ns());
    }
    // What the burst changes is written down, and what it replaces kept,
    // first; a signal still aborts every tarball (and takes that back).
    let protected = tokio::select! {
        r = sink.protect() => r,
        s = shutdown.recv() => Err(interrupted(s)),
    };
    if let Err(e) = protected {
        abort_all(sink, &mut outputs).await;
        return Err(e);
    }
    // The final names, in one burst, then the record of the set. A signal
    // does not cut it short: it takes seconds, and stopping halfway would
    // leave a mix of the old set and the new.
    let burst = Instant::now();
    let published = publish_all(&mut outputs, &digests).await;
    let publish_window = burst.elapsed().as_secs_f64();
    if let Err(e) = published {
        abort_all(sink, &mut outputs).await;
        return Err(e);
    }
    let tarballs: Vec<TarballResult> = plan
        .tarballs
        .iter()
        .zip(&outputs)
        .zip(digests)
        .map(|((t, o), sha256)| TarballResult {
            file_name: t.file_name.clone(),
            label: t.label.clone(),
            variant: t.variant.clone(),
            format: t.format,
            sidecar: t.sidecar.clone(),
            location: o.writer.location(),
            bytes: o.bytes,
            sha256,
            checksum: o.writer.checksum(),
            assembled: o.writer.assembled(),
            content_bytes: o.content.len,
            input_bytes: t.input_bytes,
            artifacts: t.artifacts.len(),
            seconds: o.done_at.unwrap_or_default(),
        })
        .collect();
    let record = SetRecord::of(tarballs.iter().map(|t| RecordedTarball {
        name: t.file_name.clone(),
        bytes: t.bytes,
        sha256: t.sha256.clone(),
        sidecar: t.sidecar.clone(),
        checksum: t.checksum.clone(),
    }));
    if let Err(e) = sink.seal(&record).await {
        abort_all(sink, &mut outputs).await;
        return Err(e);
    }
    Ok(RunSummary {
        tarballs,
        artifacts: plan.artifacts.len(),
        input_bytes: plan.artifacts.iter().map(|a| a.size).sum(),
        distinct_bytes: origins.distinct,
        upload: sink.upload_stats(),
        seconds: started.elapsed().as_secs_f64(),
        publish_window,
        cpu: stages.seconds(),
        budget: opts.budget.clone(),
        artifacts_read_twice: read_twice,
    })
}

/// Runs the artifact workers and fans their compressed blocks out, in plan
/// order; returns how many artifacts were read twice.
#[allow(clippy::too_many_arguments)]
async fn produce(
    plan: &Arc<Plan>,
    source: Arc<dyn Source>,
    outputs: &mut [Output],
    origins: &mut Origins,
    opts: &RunOptions,
    started: Instant,
    progress: &Arc<Progress>,
    stages: &Arc<Stages>,
) -> Result<usize> {
    // Every tarball of a format opens with the same bytes: the codec's
    // header and the `./` entry.
    let root = Bytes::from(opts.metadata.root_entry());
    for codec in opts.codecs.all() {
        let same: Vec<usize> = (0..outputs.len())
            .filter(|&t| outputs[t].codec.format == codec.format)
            .collect();
        if same.is_empty() {
            continue;
        }
        let first = codec.compress(&Block {
            data: root.clone(),
            dictionary: None,
            zip: None,
        });
        let opening = Bytes::from([codec.header(), first.bytes.clone()].concat());
        if opening.is_empty() {
            // A ZIP archive: no header, and no root entry.
            continue;
        }
        let crc = ObjectCrc::of(&opening);
        for (t, chunk) in origins.chunks(&opening, crc, &same, |_| 0) {
            outputs[t].content.append(&first, 0)?;
            outputs[t].put(chunk).await?;
        }
    }
    let (workers, receivers) = Workers::new(
        plan.clone(),
        source,
        opts.clone(),
        Handle::current(),
        progress.clone(),
        stages.clone(),
    )?;
    // Whatever ends this future (an error, a signal) stops the workers.
    let _stop = StopOnDrop(workers.clone());
    let repack = {
        let workers = workers.clone();
        tokio::task::spawn_blocking(move || workers.run())
    };
    let fanout = stages
        .timed(
            Stage::Fanout,
            fanout::fan_out(&workers, receivers, outputs, origins, progress),
        )
        .await;
    if fanout.is_err() {
        workers.abort();
    }
    let (repacked, compress) = repack
        .await
        .map_err(|e| Error::internal(format!("the artifact threads failed: {e}")))?;
    stages.add(Stage::Compress, compress);
    // The output's own error first: the workers only saw it stop.
    fanout?;
    repacked?;
    let tails = workers.at_end.lock().expect("at_end").tails(outputs.len());
    for (o, tail) in outputs.iter_mut().zip(tails) {
        o.close(&tail, origins).await?;
        o.done_at = Some(started.elapsed().as_secs_f64());
    }
    Ok(workers.read_twice.load(Ordering::Relaxed))
}

/// Stops a run's workers when dropped.
struct StopOnDrop(Arc<Workers>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
