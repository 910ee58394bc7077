//! Drives one run: every artifact is read, decoded, repacked and
//! compressed once, in plan order, and each compressed block goes to every
//! tarball that contains it. Any error, Ctrl-C or SIGTERM aborts every
//! tarball; tarballs are published only when all of them are complete.
//!
//! Read in order: [`run`] creates the outputs and ends with them published
//! or aborted; `produce` writes each tarball's header, fans the compressed
//! blocks out and writes the trailers; `repack_all` (a blocking thread)
//! repacks what the decode stage (`decode_ahead`) hands it and feeds the
//! compression pool; `publish_all` makes the finished tarballs visible.
//! Signals (`signals`), per-stage CPU time (`stages`) and the tarballs'
//! digests (`checksum`) have modules of their own.

mod checksum;
pub(crate) mod decode_ahead;
mod signals;
pub mod stages;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::budget::Budget;
use crate::codec::{pool::Pool, Block, Codec, Codecs, Compressed, TarballContent};
use crate::error::{Error, Result};
use crate::plan::{Format, Plan};
use crate::progress::Progress;
use crate::repack::{tarfmt::END_OF_ARCHIVE, BlockOut, ConflictPolicy, Mask, Repacker};
use crate::sink::{Sink, TarballWriter};
use crate::source::verify::VerifyMode;
use crate::source::Source;
use checksum::TarballSha;
use signals::{interrupted, Shutdown};
use stages::{Stage, StageSeconds, Stages};

/// How a run packs, besides its plan: compression, conflicts, mtimes,
/// verification and the memory budget.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The codec (format and level) of each format the plan writes.
    pub codecs: Codecs,
    /// What happens when two artifacts give one path different contents.
    pub on_conflict: ConflictPolicy,
    /// Later mtimes are written as this (Unix seconds).
    pub mtime_clamp: Option<i64>,
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
    /// Wall-clock time of the whole run.
    pub seconds: f64,
    /// CPU seconds per stage.
    pub cpu: StageSeconds,
}

/// One tarball being written.
struct Output {
    writer: Box<dyn TarballWriter>,
    codec: Codec,
    sha: TarballSha,
    content: TarballContent,
    bytes: u64,
    done_at: Option<f64>,
}

impl Output {
    async fn put(&mut self, chunk: Bytes) -> Result<()> {
        self.sha.update(chunk.clone()).await;
        self.bytes += chunk.len() as u64;
        self.writer.write(chunk).await
    }
}

type Queue = mpsc::Sender<(oneshot::Receiver<Compressed>, Mask)>;

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
    for t in &plan.tarballs {
        let created = tokio::select! {
            r = sink.create(t) => r,
            s = shutdown.recv() => Err(interrupted(s)),
        };
        match created {
            Ok(writer) => outputs.push(Output {
                writer,
                codec: opts.codecs.get(t.format),
                sha: TarballSha::start(stages.clone()),
                content: TarballContent::default(),
                bytes: 0,
                done_at: None,
            }),
            Err(e) => {
                abort_all(&mut outputs).await;
                return Err(e);
            }
        }
    }
    let result = tokio::select! {
        r = produce(&plan, source, &mut outputs, opts, started, &progress, &stages) => r,
        s = shutdown.recv() => Err(interrupted(s)),
    };
    if let Err(e) = result {
        abort_all(&mut outputs).await;
        return Err(e);
    }
    let published = tokio::select! {
        r = publish_all(&mut outputs) => r,
        s = shutdown.recv() => Err(interrupted(s)),
    };
    let digests = match published {
        Ok(d) => d,
        Err(e) => {
            abort_all(&mut outputs).await;
            return Err(e);
        }
    };
    let tarballs = plan
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
            content_bytes: o.content.len,
            input_bytes: t.input_bytes,
            artifacts: t.artifacts.len(),
            seconds: o.done_at.unwrap_or_default(),
        })
        .collect();
    Ok(RunSummary {
        tarballs,
        artifacts: plan.artifacts.len(),
        input_bytes: plan.artifacts.iter().map(|a| a.size).sum(),
        seconds: started.elapsed().as_secs_f64(),
        cpu: stages.seconds(),
    })
}

/// Runs the repack thread and fans its compressed blocks out, in order.
async fn produce(
    plan: &Arc<Plan>,
    source: Arc<dyn Source>,
    outputs: &mut [Output],
    opts: &RunOptions,
    started: Instant,
    progress: &Arc<Progress>,
    stages: &Arc<Stages>,
) -> Result<()> {
    for o in outputs.iter_mut() {
        let header = o.codec.header();
        o.put(header).await?;
    }
    let (tx, mut rx) = mpsc::channel(opts.budget.blocks_in_flight.max(1));
    let repack = {
        let (plan, opts) = (plan.clone(), opts.clone());
        let handle = Handle::current();
        let (progress, stages) = (progress.clone(), stages.clone());
        tokio::task::spawn_blocking(move || {
            repack_all(plan, source, opts, tx, handle, progress, stages)
        })
    };
    let fanout = async {
        while let Some((block, mask)) = rx.recv().await {
            let c: Compressed = block
                .await
                .map_err(|_| Error::internal("a compression thread failed"))?;
            for &t in mask.iter() {
                outputs[t].content.append(&c);
                outputs[t].put(c.bytes.clone()).await?;
                progress.written[t].fetch_add(c.bytes.len() as u64, Ordering::Relaxed);
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    // Unblocks the repack thread if the fan-out stopped early.
    drop(rx);
    let repacked = repack
        .await
        .map_err(|e| Error::internal(format!("repack thread failed: {e}")))?;
    fanout?;
    repacked?;
    for o in outputs.iter_mut() {
        let trailer = o.codec.trailer(&o.content, &END_OF_ARCHIVE);
        o.put(trailer).await?;
        o.done_at = Some(started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Sends blocks to the pool and their result receivers down the queue,
/// which bounds how much is in flight.
struct PoolOut<'a> {
    pool: &'a Pool,
    codecs: &'a Codecs,
    queue: &'a Queue,
}

impl BlockOut for PoolOut<'_> {
    fn send(&mut self, block: Block, format: Format, mask: Mask) -> Result<()> {
        let rx = self.pool.submit(block, self.codecs.get(format));
        self.queue
            .blocking_send((rx, mask))
            .map_err(|_| Error::internal("output stopped"))
    }
}

/// The repack thread: starts the decode stage and the compression pool,
/// repacks every artifact in plan order, then stops both.
fn repack_all(
    plan: Arc<Plan>,
    source: Arc<dyn Source>,
    opts: RunOptions,
    queue: Queue,
    handle: Handle,
    progress: Arc<Progress>,
    stages: Arc<Stages>,
) -> Result<()> {
    let pool = Pool::new(opts.budget.jobs);
    let mut decoded = decode_ahead::start(
        plan.clone(),
        source,
        opts.clone(),
        handle.clone(),
        progress,
        stages.clone(),
    );
    let repacked = {
        let _stage = stages.start(Stage::Repack);
        repack_decoded(&plan, &opts, &mut decoded, &pool, &queue)
    };
    decoded.close(&handle);
    let compress = pool.join();
    stages.add(Stage::Compress, compress);
    repacked
}

/// Repacks each decoded artifact in turn, sending its blocks to the pool.
fn repack_decoded(
    plan: &Plan,
    opts: &RunOptions,
    decoded: &mut decode_ahead::Decoded,
    pool: &Pool,
    queue: &Queue,
) -> Result<()> {
    let mut repacker = Repacker::new(plan, opts.on_conflict, opts.mtime_clamp)?
        .with_compare_buffer(opts.budget.compare_buffer);
    let mut out = PoolOut {
        pool,
        codecs: &opts.codecs,
        queue,
    };
    for (i, a) in plan.artifacts.iter().enumerate() {
        let name = a.name.file_name();
        let mut input = decoded.next_artifact()?;
        let stats = repacker.repack(i, &name, &mut input, &mut out)?;
        if !input.complete() {
            return Err(Error::artifact(
                &name,
                None,
                "data after the end of the compressed stream",
            ));
        }
        tracing::debug!(artifact = %name, members = stats.members, bytes = stats.data_bytes, "repacked");
    }
    Ok(())
}

/// Publishes every tarball; returns their SHA-256 digests (hex).
async fn publish_all(outputs: &mut [Output]) -> Result<Vec<String>> {
    for o in outputs.iter_mut() {
        o.writer.finish().await?;
    }
    let mut digests = Vec::with_capacity(outputs.len());
    for o in outputs.iter_mut() {
        let sha = o.sha.finish().await;
        o.writer.publish(&sha).await?;
        digests.push(sha);
    }
    Ok(digests)
}

/// Aborts every tarball (an error or a signal).
async fn abort_all(outputs: &mut [Output]) {
    for o in outputs.iter_mut() {
        o.writer.abort().await;
    }
}
