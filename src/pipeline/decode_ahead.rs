//! The decode stage: artifacts are opened in plan order a few ahead of the
//! ones being read (so their downloads start early), and each artifact
//! thread has a decode thread of its own, which takes the artifacts it will
//! scan, has each one's SHA-256 checked as its stored bytes pass, decodes
//! it and queues the decoded bytes in a few fixed buffers. Decoding runs
//! beside scanning instead of inside it, so an artifact costs the slower of
//! the two, not their sum, and the next artifact is taken and decoded while
//! the end of the last one is still being scanned. When the scanning thread
//! stops (an error), its decoder stops at once, even in the middle of a
//! stalled download.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{unbounded, Receiver, Sender};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::windows::{windowed_decoder, Lease, Windows};
use super::{stages::Stage, RunOptions, Stages};
use crate::cpu_time::thread_cpu_ns;
use crate::error::{Error, Result};
use crate::pipeline::budget::Budget;
use crate::pipeline::progress::{Counting, Progress};
use crate::plan::Plan;
use crate::repack::artifact::ArtifactInput;
use crate::source::verify::{expected_digest, verified};
use crate::source::{ByteStream, Source};

/// Bytes in one queued buffer, and buffers in all: what the stage may hold
/// ahead of its scanning thread (the budget counts them among a run's fixed
/// needs, so they are its to set).
const CHUNK: usize = Budget::DECODED_CHUNK;
const CHUNKS: usize = Budget::DECODED_CHUNKS;

enum Msg {
    /// The next artifact (its plan index) is open and decoding.
    Opened(usize),
    /// It could not be opened (download, sidecar, decoder).
    Failed(usize, Error),
    /// Decoded bytes: the first `n` of the buffer.
    Data(Vec<u8>, usize),
    /// Its decoded bytes ended; `complete`: its stored bytes were read to
    /// the end (and verified), none left over after the compressed stream.
    End { complete: bool },
    /// Reading or decoding failed.
    ReadError(io::Error),
}

/// The scanning thread's end of the stage.
pub struct Decoded {
    rx: Receiver<Msg>,
    free: Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
    /// Stops the stage's waits on the network when dropped.
    _stop: DropGuard,
}

/// An opened artifact: its stored bytes and the digest they must have.
pub type Opened = Result<(ByteStream, Option<[u8; 32]>)>;

/// Opens a run's artifacts in plan order, up to `read_ahead` beyond the
/// latest one asked for, each on a task of the runtime (with its sidecar),
/// so the threads that read them never wait for a round trip they could
/// have started earlier.
pub struct Opener {
    opened: Mutex<(usize, BTreeMap<usize, JoinHandle<Opened>>)>,
}

impl Opener {
    pub fn new() -> Self {
        Opener {
            opened: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Artifact `index` opened, opening the next ones too.
    pub fn take(
        &self,
        index: usize,
        plan: &Arc<Plan>,
        source: &Arc<dyn Source>,
        opts: &RunOptions,
        wait: &Wait,
    ) -> Opened {
        let task = {
            let mut guard = self.opened.lock().expect("opener");
            let (next, opened) = &mut *guard;
            let last = (index + opts.budget.read_ahead).min(plan.artifacts.len() - 1);
            while *next <= last {
                let (plan, source) = (plan.clone(), source.clone());
                let (i, buffer, verify) = (*next, opts.budget.download_buffer, opts.verify);
                opened.insert(
                    i,
                    wait.handle.spawn(async move {
                        let a = &plan.artifacts[i];
                        let stream = source.open(a, buffer).await?;
                        let expected = expected_digest(source.as_ref(), a, verify).await?;
                        Ok((stream, expected))
                    }),
                );
                *next += 1;
            }
            opened.remove(&index)
        };
        let Some(task) = task else {
            return Err(Error::internal("an artifact was opened twice"));
        };
        wait.on(async {
            task.await
                .map_err(|e| Error::internal(format!("opening an artifact failed: {e}")))?
        })
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        // Downloads opened ahead that no one will read.
        if let Ok(mut guard) = self.opened.lock() {
            for (_, task) in std::mem::take(&mut guard.1) {
                task.abort();
            }
        }
    }
}

/// `live` while none of the thread's artifacts is decided as it is read.
pub const NOT_LIVE: usize = usize::MAX;

/// The next artifact for a decode thread: its plan index, what cancels
/// work on it, and its opened stream; `None` when there is none.
pub type Claim = Box<dyn FnMut() -> Option<(usize, CancellationToken, Opened)> + Send>;

/// Starts a decode thread that decodes the artifacts `claim` gives, in
/// turn. While `live` holds an artifact's index, decoding it also counts as
/// serial work.
#[allow(clippy::too_many_arguments)]
pub fn start(
    plan: Arc<Plan>,
    opts: RunOptions,
    handle: Handle,
    progress: Arc<Progress>,
    stages: Arc<Stages>,
    live: Arc<AtomicUsize>,
    windows: Arc<Windows>,
    mut claim: Claim,
) -> Decoded {
    let (tx, rx) = unbounded();
    let (free, free_rx) = unbounded();
    // Stops the thread's waits when the reader is dropped.
    let stop = CancellationToken::new();
    let thread = handle.spawn_blocking({
        let (handle, stop) = (handle.clone(), stop.clone());
        move || {
            let stage = stages.start(Stage::Decode);
            let mut stream = Stream {
                tx,
                free: free_rx,
                spare: Vec::new(),
                made: 0,
            };
            while let Some((index, artifact_stop, opened)) = claim() {
                let wait = Wait {
                    handle: handle.clone(),
                    stop: stop.clone(),
                    artifact: Some(artifact_stop),
                };
                let serial = Serial {
                    stages: &stages,
                    live: &live,
                    index,
                };
                let go_on = decode_one(
                    &plan,
                    index,
                    opened,
                    &opts,
                    &wait,
                    &progress,
                    &windows,
                    &mut stream,
                    serial,
                );
                if !go_on {
                    break;
                }
            }
            drop(stage);
        }
    });
    Decoded {
        rx,
        free,
        thread: Some(thread),
        _stop: stop.drop_guard(),
    }
}

impl Decoded {
    /// The next artifact (its plan index) and its decoded bytes, or why it
    /// could not be opened; `None` when the thread has no more. No index
    /// with an internal error: messages of an artifact left unread came
    /// first (a bug: the reader stops at such an artifact).
    pub fn next_artifact(&mut self) -> Option<(Option<usize>, Result<ArtifactBytes<'_>>)> {
        match self.rx.recv() {
            Ok(Msg::Opened(i)) => Some((
                Some(i),
                Ok(ArtifactBytes {
                    decoded: self,
                    buf: Vec::new(),
                    pos: 0,
                    len: 0,
                    state: State::Reading,
                }),
            )),
            Ok(Msg::Failed(i, e)) => Some((Some(i), Err(e))),
            Ok(_) => Some((
                None,
                Err(Error::internal(
                    "decode stage out of step with the scanning thread",
                )),
            )),
            Err(_) => None,
        }
    }

    /// Stops the stage and waits for its thread.
    pub fn close(mut self, handle: &Handle) {
        let thread = self.thread.take();
        // Dropping the channels wakes the thread wherever it waits on them.
        drop(self);
        if let Some(t) = thread {
            let _ = handle.block_on(t);
        }
    }
}

enum State {
    Reading,
    Ended { complete: bool },
    Failed,
}

/// One artifact's decoded bytes, read with no copy through [`BufRead`].
pub struct ArtifactBytes<'a> {
    decoded: &'a mut Decoded,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    state: State,
}

impl ArtifactInput for ArtifactBytes<'_> {
    /// Whether the artifact was read to its end and nothing followed its
    /// compressed stream; false until its end was reached.
    fn complete(&self) -> bool {
        matches!(self.state, State::Ended { complete: true })
    }
}

impl ArtifactBytes<'_> {
    fn recycle(&mut self) {
        if !self.buf.is_empty() {
            // The stage is gone only when the run is over.
            let _ = self.decoded.free.send(std::mem::take(&mut self.buf));
        }
        self.pos = 0;
        self.len = 0;
    }
}

impl Drop for ArtifactBytes<'_> {
    fn drop(&mut self) {
        self.recycle();
    }
}

impl BufRead for ArtifactBytes<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            match self.state {
                State::Reading => {}
                State::Ended { .. } => return Ok(&[]),
                State::Failed => return Err(io::Error::other("decoding failed earlier")),
            }
            self.recycle();
            match self.decoded.rx.recv() {
                Ok(Msg::Data(buf, n)) => (self.buf, self.len) = (buf, n),
                Ok(Msg::End { complete }) => self.state = State::Ended { complete },
                Ok(Msg::ReadError(e)) => {
                    self.state = State::Failed;
                    return Err(e);
                }
                Ok(_) | Err(_) => {
                    self.state = State::Failed;
                    return Err(io::Error::other("the decode thread stopped"));
                }
            }
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

impl Read for ArtifactBytes<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The stage's end of the queue: buffers come back through `free`, and at
/// most `CHUNKS` are ever made.
struct Stream {
    tx: Sender<Msg>,
    free: Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    made: usize,
}

impl Stream {
    /// False once the scanning thread is gone.
    fn send(&self, m: Msg) -> bool {
        self.tx.send(m).is_ok()
    }

    fn buffer(&mut self) -> Option<Vec<u8>> {
        if let Some(b) = self.spare.pop() {
            return Some(b);
        }
        if let Ok(b) = self.free.try_recv() {
            return Some(b);
        }
        if self.made < CHUNKS {
            self.made += 1;
            return Some(vec![0; CHUNK]);
        }
        self.free.recv().ok()
    }
}

/// Blocks the decode thread on async work (opening, sidecars, reading)
/// until it is done or the scanning thread has gone.
#[derive(Clone)]
pub struct Wait {
    pub handle: Handle,
    pub stop: CancellationToken,
    /// Also stops the wait: work on this artifact is no longer needed.
    pub artifact: Option<CancellationToken>,
}

impl Wait {
    /// `work`'s result, or `stopped()` once the run stops.
    fn until<T, E>(
        &self,
        work: impl std::future::Future<Output = std::result::Result<T, E>>,
        stopped: impl FnOnce() -> E,
    ) -> std::result::Result<T, E> {
        let artifact = async {
            match &self.artifact {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        self.handle.block_on(async {
            tokio::select! {
                r = work => r,
                _ = self.stop.cancelled() => Err(stopped()),
                _ = artifact => Err(stopped()),
            }
        })
    }

    /// Whether the run, or work on this artifact, has stopped.
    fn stopped(&self) -> bool {
        self.stop.is_cancelled() || self.artifact.as_ref().is_some_and(|t| t.is_cancelled())
    }

    pub fn on<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.until(work, || Error::internal("the run stopped"))
    }
}

/// A stored byte stream read from the decode thread (as `SyncIoBridge`
/// does, but a read gives up as soon as the run stops).
struct Blocking {
    stream: ByteStream,
    wait: Wait,
}

impl Read for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Blocking { stream, wait } = self;
        wait.until(stream.read(buf), || io::Error::other("the run stopped"))
    }
}

/// Counts a decode thread's CPU as serial while its artifact is decided
/// as it is scanned.
struct Serial<'a> {
    stages: &'a Stages,
    live: &'a AtomicUsize,
    index: usize,
}

/// Decodes one artifact into `out`; false once the reader is gone.
#[allow(clippy::too_many_arguments)]
fn decode_one(
    plan: &Plan,
    index: usize,
    opened: Opened,
    opts: &RunOptions,
    wait: &Wait,
    progress: &Arc<Progress>,
    windows: &Arc<Windows>,
    out: &mut Stream,
    serial: Serial<'_>,
) -> bool {
    let (stream, expected) = match opened {
        Ok(r) => r,
        Err(e) => {
            // The run fails with it: nothing more to decode.
            out.send(Msg::Failed(index, e));
            return false;
        }
    };
    progress.start_artifact(index);
    let stream = verified(stream, expected, &wait.handle);
    let counted = Counting {
        inner: Blocking {
            stream,
            wait: wait.clone(),
        },
        progress: progress.clone(),
        index,
    };
    let complete = Arc::new(AtomicBool::new(false));
    let input = UntilEnd {
        inner: counted,
        reached: complete.clone(),
    };
    let (_lease, mut decoder) =
        match windowed_decoder(plan, index, input, opts, windows, &|| wait.stopped()) {
            Ok(r) => r,
            Err(e) => {
                out.send(Msg::Failed(index, e));
                return false;
            }
        };
    if !out.send(Msg::Opened(index)) {
        return false;
    }
    loop {
        let Some(mut buf) = out.buffer() else {
            return false;
        };
        let from = thread_cpu_ns();
        // What one read gives goes on at once (never waiting to fill the
        // buffer), so bytes that arrived before a slow or stalled download
        // are scanned, and their errors reported, meanwhile.
        let got = read(&mut decoder, &mut buf);
        if serial.live.load(Ordering::Relaxed) == serial.index {
            serial
                .stages
                .add_ns(Stage::Serial, thread_cpu_ns().saturating_sub(from));
        }
        match got {
            Ok(0) => {
                out.spare.push(buf);
                let complete = complete.load(Ordering::Relaxed);
                return out.send(Msg::End { complete });
            }
            Ok(n) => {
                if !out.send(Msg::Data(buf, n)) {
                    return false;
                }
            }
            Err(e) => {
                // The reader stops at this error; the next artifact is
                // another thread's business.
                out.send(Msg::ReadError(e));
                return false;
            }
        }
    }
}

/// Artifact `index` opened and decoded again on the calling thread, for
/// the second read of one too large to hold ahead of its turn. Its bytes
/// are not counted as progress again (the first read counted them); its
/// entries are checked against those of the first read instead of its
/// digest.
pub fn reopen(
    plan: &Plan,
    index: usize,
    source: &Arc<dyn Source>,
    opts: &RunOptions,
    windows: &Arc<Windows>,
    wait: &Wait,
) -> Result<(Lease, impl BufRead + Send)> {
    let a = &plan.artifacts[index];
    let stream = wait.on(source.open(a, opts.budget.download_buffer))?;
    let input = Blocking {
        stream,
        wait: wait.clone(),
    };
    let (lease, decoder) = windowed_decoder(plan, index, input, opts, windows, &|| wait.stopped())?;
    Ok((lease, io::BufReader::with_capacity(CHUNK, decoder)))
}

/// `r.read(buf)`, again when a signal interrupted it.
fn read(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Notes when its input has been read to the end (and, with a sidecar,
/// verified): a decoder that stops before then leaves bytes over.
struct UntilEnd<R> {
    inner: R,
    reached: Arc<AtomicBool>,
}

impl<R: Read> Read for UntilEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.reached.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}
