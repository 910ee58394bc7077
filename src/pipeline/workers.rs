//! Several artifacts at once: each worker thread takes the next artifact in
//! plan order, has it decoded (`decode_ahead`) and repacks it
//! (`repack::artifact`, through this module's `Turns`), while only the
//! decisions that depend on earlier artifacts run in plan order, one
//! artifact at a time (the *turn*).
//!
//! An artifact scanned before its turn is held (`repack::pending`), up to
//! `Budget::pending` bytes; when its turn comes its entries are decided in
//! one go, the turn passes on, and its bytes are cut into blocks on its own
//! thread. One that outgrows the limit keeps only its entries' heads and
//! is scanned to its end all the same; in its turn it is decided from them,
//! and once the turn has passed on it is read a second time and cut, beside
//! the others (*two passes*: TheRock's largest artifacts decode to several
//! GB, far more than any share of memory, and must not wait in line). One
//! that outgrows the limit while it holds the turn is decided as it is
//! read (*live*), as every artifact is with one worker.
//! Compressed blocks wait in a queue per artifact until the fan-out reaches
//! it; those of artifacts ahead of the fan-out share `Budget::held_output`
//! (`held.rs`). The turn and why workers stop are `turn.rs`.
//! The output is the same whatever the number of workers: every decision
//! is taken in the same order on the same metadata, and each artifact's
//! pieces are cut from the same bytes.
//!
//! Errors: the first one in plan order is reported. A worker that fails
//! ahead of its turn stops every later artifact at once and waits for its
//! turn (the earlier ones are still checked, without compressing anything);
//! the turn holder that meets an error ends the run.

use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::decode_ahead::{self, Opener, Wait};
use super::held::Held;
use super::stages::{Stage, Stages};
use super::turn::{Stop, Turn};
use super::windows::{Lease, Windows};
use super::RunOptions;
use crate::codec::pool::{Done, Pool};
use crate::codec::{Block, Compressed};
use crate::cpu_time::thread_cpu_ns;
use crate::error::{Error, Result};
use crate::pipeline::progress::Progress;
use crate::plan::{Format, Plan};
use crate::repack::artifact::{self, Ahead, Decider, Pending, Rules, Turns};
use crate::repack::{AtEnd, BlockOut, Mask, PieceWriter};
use crate::source::Source;

/// A compressed block on its way to the fan-out: its result, its tarballs
/// and its uncompressed size (it holds that much of the output budget
/// until it is compressed, then its compressed size, at most that).
pub(super) type Out = (oneshot::Receiver<Compressed>, Mask, u64);

/// What every worker of a run shares.
pub(super) struct Workers {
    pub(super) plan: Arc<Plan>,
    source: Arc<dyn Source>,
    opts: RunOptions,
    handle: Handle,
    progress: Arc<Progress>,
    stages: Arc<Stages>,
    rules: Rules,
    formats: Vec<Format>,
    pool: Pool,
    opener: Opener,
    /// The next artifact to take.
    next: AtomicUsize,
    turn: Turn,
    pub held: Arc<Held>,
    /// The decoders' windows.
    pub windows: Arc<Windows>,
    /// Artifacts read a second time (decided from their heads).
    pub read_twice: AtomicUsize,
    /// What tarballs get at their end.
    pub at_end: Mutex<AtEnd>,
    pub stop: Stop,
    /// Each artifact's queue to the fan-out, taken by its worker.
    outputs: Vec<Mutex<Option<mpsc::Sender<Out>>>>,
    /// The run's error: the first one in plan order (with its artifact).
    error: Mutex<Option<(usize, Error)>>,
    /// Cancels the decoders' waits on the network when the run stops.
    cancel: CancellationToken,
    /// Per artifact, cancelled when its work is no longer needed.
    tokens: Vec<CancellationToken>,
}

impl Workers {
    /// Shared state for a run; returns the receivers of each artifact's
    /// compressed blocks, in plan order.
    pub fn new(
        plan: Arc<Plan>,
        source: Arc<dyn Source>,
        opts: RunOptions,
        handle: Handle,
        progress: Arc<Progress>,
        stages: Arc<Stages>,
    ) -> Result<(Arc<Workers>, Vec<mpsc::Receiver<Out>>)> {
        let (senders, receivers): (Vec<_>, Vec<_>) = plan
            .artifacts
            .iter()
            .map(|_| {
                let (tx, rx) = mpsc::channel(opts.budget.blocks_in_flight.max(1));
                (Mutex::new(Some(tx)), rx)
            })
            .unzip();
        let decider = Decider::new(&plan, opts.on_conflict, opts.budget.compare_buffer);
        let cancel = CancellationToken::new();
        let workers = Workers {
            tokens: plan
                .artifacts
                .iter()
                .map(|_| cancel.child_token())
                .collect(),
            cancel,
            rules: Rules::new(&plan, opts.metadata)?,
            formats: plan.tarballs.iter().map(|t| t.format).collect(),
            pool: Pool::new(opts.budget.jobs),
            opener: Opener::new(),
            next: AtomicUsize::new(0),
            turn: Turn::new(decider),
            held: Arc::new(Held::new(opts.budget.held_output)),
            windows: Arc::new(Windows::new(&opts.budget)),
            read_twice: AtomicUsize::new(0),
            at_end: Mutex::new(AtEnd::default()),
            stop: Stop::default(),
            outputs: senders,
            error: Mutex::new(None),
            plan,
            source,
            opts,
            handle,
            progress,
            stages,
        };
        Ok((Arc::new(workers), receivers))
    }

    /// Runs the worker threads to the end (blocking); then the run's
    /// error, if any, and the compression threads' CPU seconds.
    pub fn run(self: &Arc<Self>) -> (Result<()>, f64) {
        let n = self.opts.budget.artifact_jobs.max(1);
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let w = self.clone();
                std::thread::Builder::new()
                    .name(format!("artifact-{i}"))
                    .spawn(move || {
                        let stage = w.stages.start(Stage::Repack);
                        let worked =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.work()));
                        drop(stage);
                        if worked.is_err() {
                            // The others may wait for its turn: stop them.
                            w.abort();
                        }
                        worked.is_err()
                    })
                    .expect("spawn artifact thread")
            })
            .collect();
        let mut panicked = false;
        for t in threads {
            panicked |= t.join().unwrap_or(true);
        }
        self.cancel.cancel();
        if n == 1 {
            self.stages.all_serial();
        }
        // Artifacts never started: their queues end, so the fan-out does.
        for tx in &self.outputs {
            tx.lock().expect("outputs").take();
        }
        let error = self.error.lock().expect("error").take().map(|(_, e)| e);
        let result = match error {
            None if panicked => Err(Error::internal("an artifact thread failed")),
            Some(e) => Err(e),
            None if self.stop.aborted() => Err(Error::internal("the run stopped")),
            None => Ok(()),
        };
        (result, self.pool.finish())
    }

    /// Stops everything at once (the output failed, or the run was
    /// interrupted).
    pub fn abort(&self) {
        self.stop.abort();
        self.wake();
    }

    fn wake(&self) {
        self.turn.wake();
        self.held.wake();
        if self.stop.aborted() {
            self.cancel.cancel();
        }
        for t in self
            .tokens
            .iter()
            .skip(self.stop.failed_at().saturating_add(1))
        {
            t.cancel();
        }
    }

    /// Ends the run with `e`, the error of artifact `index`: called by the
    /// turn holder, or by an artifact's second read after its turn, so the
    /// error kept is the first in plan order.
    fn fail(&self, index: usize, e: Error) {
        let mut error = self.error.lock().expect("error");
        if error.as_ref().is_none_or(|(at, _)| index < *at) {
            *error = Some((index, e));
        }
        drop(error);
        self.abort();
    }

    /// One artifact thread: its decode thread takes the next artifacts in
    /// plan order, and it scans each as it comes.
    fn work(self: &Arc<Self>) {
        let live = Arc::new(AtomicUsize::new(decode_ahead::NOT_LIVE));
        let claim: decode_ahead::Claim = {
            let w = self.clone();
            Box::new(move || {
                let i = w.next.fetch_add(1, Ordering::SeqCst);
                if i >= w.plan.artifacts.len() || w.stop.cancels(i) {
                    return None;
                }
                let wait = Wait {
                    handle: w.handle.clone(),
                    stop: w.cancel.clone(),
                    artifact: Some(w.tokens[i].clone()),
                };
                let opened = w.opener.take(i, &w.plan, &w.source, &w.opts, &wait);
                Some((i, w.tokens[i].clone(), opened))
            })
        };
        let mut decoded = decode_ahead::start(
            self.plan.clone(),
            self.opts.clone(),
            self.handle.clone(),
            self.progress.clone(),
            self.stages.clone(),
            live.clone(),
            self.windows.clone(),
            claim,
        );
        let mut pending = Pending::default();
        // Artifacts come in plan order: once one is no longer needed, none
        // after it is; and one left unread (it failed, or the run stopped)
        // leaves the run failing.
        while let Some((i, bytes)) = decoded.next_artifact() {
            let Some(i) = i else {
                if let Err(e) = bytes {
                    self.fail(usize::MAX, e);
                }
                break;
            };
            if self.stop.cancels(i) || !self.artifact(i, bytes, &live, &mut pending) {
                break;
            }
        }
        decoded.close(&self.handle);
    }

    /// Scans, decides and cuts artifact `i`; false unless it was read to
    /// its end and written.
    fn artifact(
        &self,
        i: usize,
        bytes: Result<decode_ahead::ArtifactBytes<'_>>,
        live: &AtomicUsize,
        pending: &mut Pending,
    ) -> bool {
        let tx = self.outputs[i].lock().expect("outputs").take();
        let name = self.plan.artifacts[i].name.file_name();
        let mut out = WorkerOut {
            workers: self,
            index: i,
            tx,
        };
        let mut pieces = PieceWriter::new(&mut out, &self.formats, &name);
        let turns = WorkerTurns {
            workers: self,
            live,
        };
        // One artifact thread: nothing to scan ahead of, every artifact is live.
        let ahead = Ahead {
            allowed: self.opts.budget.artifact_jobs > 1,
            limit: self.opts.budget.pending,
        };
        let ended = artifact::repack(
            &self.rules,
            &turns,
            i,
            &name,
            bytes,
            &mut pieces,
            pending,
            ahead,
        );
        // A write fails only when the output stopped, which reports its own error.
        ended.is_ok() && pieces.finish().is_ok()
    }
}

/// The run's plan order, stopping and second reads, as one artifact's
/// repacking sees them.
struct WorkerTurns<'w> {
    workers: &'w Workers,
    /// The index of the artifact this thread decides live, for its decoder.
    live: &'w AtomicUsize,
}

impl Turns for WorkerTurns<'_> {
    fn cancelled(&self, index: usize) -> bool {
        self.workers.stop.cancels(index)
    }

    fn is_turn(&self, index: usize) -> bool {
        self.workers.turn.is(index)
    }

    fn wait_turn(&self, index: usize) -> Option<Decider> {
        self.workers.turn.wait(index, &self.workers.stop)
    }

    fn pass_turn(&self, index: usize, decider: Decider) {
        self.workers.turn.pass(index, decider);
    }

    fn failed_ahead(&self, index: usize) {
        self.workers.stop.fail_at(index);
        self.workers.wake();
    }

    fn fail(&self, index: usize, error: Error) {
        self.workers.fail(index, error);
    }

    fn live(&self, index: Option<usize>) {
        let index = index.unwrap_or(decode_ahead::NOT_LIVE);
        self.live.store(index, Ordering::Relaxed);
    }

    fn cpu_ns(&self) -> u64 {
        thread_cpu_ns()
    }

    fn serial(&self, ns: u64) {
        self.workers.stages.add_ns(Stage::Serial, ns);
    }

    fn reopen(&self, index: usize) -> Result<Box<dyn BufRead + '_>> {
        let w = self.workers;
        let wait = Wait {
            handle: w.handle.clone(),
            stop: w.cancel.clone(),
            artifact: Some(w.tokens[index].clone()),
        };
        let (lease, input) =
            decode_ahead::reopen(&w.plan, index, &w.source, &w.opts, &w.windows, &wait)?;
        Ok(Box::new(Leased {
            _lease: lease,
            input,
        }))
    }

    fn read_twice(&self) {
        self.workers.read_twice.fetch_add(1, Ordering::Relaxed);
    }
}

/// A second read's bytes, with the decoder window they hold.
struct Leased<R> {
    _lease: Lease,
    input: R,
}

impl<R: Read> Read for Leased<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl<R: BufRead> BufRead for Leased<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.input.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.input.consume(n);
    }
}

/// Sends an artifact's blocks to the pool and their results down its queue.
struct WorkerOut<'w> {
    workers: &'w Workers,
    index: usize,
    tx: Option<mpsc::Sender<Out>>,
}

impl BlockOut for WorkerOut<'_> {
    fn send(&mut self, block: Block, format: Format, mask: Mask) -> Result<()> {
        let w = self.workers;
        if w.stop.cancels(self.index) {
            return Err(Error::internal("the run stopped"));
        }
        // After a failure the run only checks the earlier artifacts.
        if w.stop.checking() {
            return Ok(());
        }
        let Some(tx) = &self.tx else {
            return Err(Error::internal("an artifact's output was taken twice"));
        };
        let bytes = block.data.len() as u64;
        if !w.held.acquire(self.index, bytes, &w.stop) {
            return Ok(());
        }
        // Once compressed, a block holds only its output until the fan-out
        // takes it: what waits ahead of the fan-out is compressed bytes.
        let held = w.held.clone();
        let done: Done = Box::new(move |c: &Compressed| {
            held.release(bytes.saturating_sub(c.bytes.len() as u64));
        });
        let rx = w.pool.submit(block, w.opts.codecs.get(format), Some(done));
        if tx.blocking_send((rx, mask, bytes)).is_err() {
            // The output failed and reports why.
            w.held.release(bytes);
            w.abort();
            return Err(Error::internal("output stopped"));
        }
        Ok(())
    }

    fn at_end(&mut self, tarballs: &Mask, bytes: &[u8]) -> Result<()> {
        let w = self.workers;
        if w.stop.cancels(self.index) {
            return Err(Error::internal("the run stopped"));
        }
        w.at_end
            .lock()
            .expect("at_end")
            .add(self.index, tarballs, bytes);
        Ok(())
    }
}
