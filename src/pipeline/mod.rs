//! Drives one run: every artifact is read, decoded, repacked and
//! compressed once, in plan order, and each compressed block goes to every
//! tarball that contains it. Any error, Ctrl-C or SIGTERM aborts every
//! tarball; tarballs are published only when all of them are complete.

mod checksum;
pub(crate) mod decode_ahead;
pub mod stages;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::SyncIoBridge;

use crate::budget::Budget;
use crate::codec::{pool::Pool, Block, Codec, Compressed, TarballContent};
use crate::error::{Error, Result};
use crate::plan::{Plan, SourceArtifact};
use crate::progress::Progress;
use crate::repack::{
    decode, flatten, tar_reader::TarReader, BlockOut, ConflictPolicy, Mask, Repacker,
};
use crate::sink::{Sink, TarballWriter};
use crate::source::verify::{parse_sidecar, VerifyMode};
use crate::source::{kpack_flag, Listing, Source, RUN_MANIFEST_KEY};
use checksum::TarballSha;
use stages::{Stage, StageSeconds, Stages};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub codec: Codec,
    pub on_conflict: ConflictPolicy,
    pub mtime_clamp: Option<i64>,
    pub verify: VerifyMode,
    /// Decoded bytes one artifact may expand to.
    pub max_unpacked: u64,
    /// Threads, read-ahead and buffer sizes (`--memory`).
    pub budget: Budget,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TarballResult {
    pub file_name: String,
    pub label: String,
    pub tests: bool,
    pub location: String,
    pub bytes: u64,
    pub sha256: String,
    /// Uncompressed tar size.
    pub content_bytes: u64,
    pub input_bytes: u64,
    pub artifacts: usize,
    pub seconds: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RunSummary {
    pub tarballs: Vec<TarballResult>,
    pub artifacts: usize,
    pub input_bytes: u64,
    pub seconds: f64,
    /// CPU seconds per stage.
    pub cpu: StageSeconds,
}

const MAX_SIDECAR: u64 = 4096;
const MAX_RUN_MANIFEST: u64 = 1 << 20;

/// One tarball being written.
struct Output {
    writer: Box<dyn TarballWriter>,
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
            r = sink.create(&t.file_name, t.size_bound()) => r,
            s = shutdown.recv() => Err(interrupted(s)),
        };
        match created {
            Ok(writer) => outputs.push(Output {
                writer,
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
            tests: t.tests,
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
    let header = opts.codec.header();
    for o in outputs.iter_mut() {
        o.put(header.clone()).await?;
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
                .map_err(|_| Error::Other("a compression thread failed".into()))?;
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
        .map_err(|e| Error::Other(format!("repack thread failed: {e}")))?;
    fanout?;
    repacked?;
    for o in outputs.iter_mut() {
        let trailer = opts.codec.trailer(&o.content);
        o.put(trailer).await?;
        o.done_at = Some(started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Sends blocks to the pool and their result receivers down the queue,
/// which bounds how much is in flight.
struct PoolOut<'a> {
    pool: &'a Pool,
    queue: &'a Queue,
}

impl BlockOut for PoolOut<'_> {
    fn send(&mut self, block: Block, mask: Mask) -> Result<()> {
        let rx = self.pool.submit(block);
        self.queue
            .blocking_send((rx, mask))
            .map_err(|_| Error::Other("output stopped".into()))
    }
}

fn repack_all(
    plan: Arc<Plan>,
    source: Arc<dyn Source>,
    opts: RunOptions,
    queue: Queue,
    handle: Handle,
    progress: Arc<Progress>,
    stages: Arc<Stages>,
) -> Result<()> {
    let pool = Pool::new(opts.codec, opts.budget.jobs);
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

fn repack_decoded(
    plan: &Plan,
    opts: &RunOptions,
    decoded: &mut decode_ahead::Decoded,
    pool: &Pool,
    queue: &Queue,
) -> Result<()> {
    let mut repacker = Repacker::new(plan, opts.on_conflict, opts.mtime_clamp)
        .with_compare_buffer(opts.budget.compare_buffer);
    let mut out = PoolOut { pool, queue };
    for (i, a) in plan.artifacts.iter().enumerate() {
        let name = a.name.file_name();
        let mut input = decoded.next_artifact()?;
        let stats = repacker.repack(i, &name, &mut input, &mut out, opts.codec.format)?;
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

async fn expected_digest(
    source: &dyn Source,
    a: &SourceArtifact,
    mode: VerifyMode,
) -> Result<Option<[u8; 32]>> {
    let name = a.name.file_name();
    match (&a.sha256_key, mode) {
        (_, VerifyMode::Off) => Ok(None),
        (None, VerifyMode::Require) => Err(Error::artifact(
            &name,
            None,
            "no .sha256sum sidecar, and --verify require is set",
        )),
        (None, VerifyMode::Auto) => Ok(None),
        (Some(key), _) => {
            let text = source.read_small(key, MAX_SIDECAR).await?.ok_or_else(|| {
                Error::artifact(&name, None, format!("sidecar {key} disappeared"))
            })?;
            parse_sidecar(&text)
                .map(Some)
                .map_err(|e| Error::artifact(&name, None, e))
        }
    }
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

async fn abort_all(outputs: &mut [Output]) {
    for o in outputs.iter_mut() {
        o.writer.abort().await;
    }
}

fn interrupted(signal: &str) -> Error {
    Error::Other(format!("interrupted by {signal}; every output was aborted"))
}

/// Ctrl-C and SIGTERM, listened for from the moment of `install` (tokio's
/// `ctrl_c()` would only listen once first polled).
struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    fn install() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .ok()
                .zip(signal(SignalKind::terminate()).ok());
            Shutdown { signals }
        }
        #[cfg(not(unix))]
        Shutdown {}
    }

    /// Resolves on the next signal, naming it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            match self.signals.as_mut() {
                Some((int, term)) => tokio::select! {
                    _ = int.recv() => "Ctrl-C",
                    _ = term.recv() => "SIGTERM",
                },
                None => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Whether the run is kpack-split: from `manifests/therock_manifest.json`
/// when published, else (when `peek` is set) from the copy inside
/// `base_lib_generic`, reading that archive only up to that member.
pub async fn detect_kpack(
    source: &Arc<dyn Source>,
    listing: &Listing,
    peek: bool,
) -> Result<Option<bool>> {
    // Published manifests: the top-level one, else any artifact group's
    // (every group of one run has the same flags).
    let keys =
        std::iter::once(RUN_MANIFEST_KEY).chain(listing.run_manifests.iter().map(String::as_str));
    for key in keys {
        if let Some(json) = source.read_small(key, MAX_RUN_MANIFEST).await? {
            return kpack_flag(&json).map(Some);
        }
    }
    let listed = &listing.artifacts;
    if !peek {
        return Ok(None);
    }
    let Some(base) = listed
        .iter()
        .filter(|a| a.name.name == "base" && a.name.component == "lib" && a.name.is_generic())
        .min_by_key(|a| a.name.compression)
    else {
        return Ok(None);
    };
    // Read straight through: nothing else downloads meanwhile.
    let stream = source.open(base, 8 << 20).await?;
    let (base, handle) = (base.clone(), Handle::current());
    let json = tokio::task::spawn_blocking(move || find_run_manifest(&base, stream, handle))
        .await
        .map_err(|e| Error::Other(format!("manifest reader failed: {e}")))??;
    json.map(|j| kpack_flag(&j)).transpose()
}

fn find_run_manifest(
    a: &SourceArtifact,
    stream: crate::source::ByteStream,
    handle: Handle,
) -> Result<Option<Vec<u8>>> {
    let name = a.name.file_name();
    let fail = |member: Option<&[u8]>, m: String| Error::artifact(&name, member, m);
    let decoded = decode::decoder(
        a.name.compression,
        SyncIoBridge::new_with_handle(stream, handle),
        decode::DEFAULT_MAX_UNPACKED,
    )
    .map_err(|e| fail(None, e.to_string()))?;
    let mut tar = TarReader::new(decoded);
    let first = tar
        .next_member()
        .map_err(|e| fail(e.member.as_deref(), e.message))?;
    let Some(first) = first.filter(|m| m.path == flatten::MANIFEST_NAME) else {
        return Err(fail(
            None,
            "the first member must be artifact_manifest.txt".into(),
        ));
    };
    let mut text = vec![0; first.size.min(flatten::MAX_MANIFEST) as usize];
    read_all(&mut tar, &mut text).map_err(|e| fail(e.member.as_deref(), e.message))?;
    let manifest = flatten::Manifest::parse(&text).map_err(|e| fail(None, e))?;
    while let Some(m) = tar
        .next_member()
        .map_err(|e| fail(e.member.as_deref(), e.message))?
    {
        if let Ok(Some(rel)) = manifest.strip(&m.path) {
            if rel == b"share/therock/therock_manifest.json" && m.size <= MAX_RUN_MANIFEST {
                let mut json = vec![0; m.size as usize];
                read_all(&mut tar, &mut json).map_err(|e| fail(e.member.as_deref(), e.message))?;
                return Ok(Some(json));
            }
        }
    }
    Ok(None)
}

fn read_all<R: std::io::Read>(
    tar: &mut TarReader<R>,
    mut dst: &mut [u8],
) -> Result<(), crate::repack::tar_reader::TarError> {
    while !dst.is_empty() {
        let n = tar.read_data(dst)?;
        dst = &mut dst[n..];
    }
    Ok(())
}
