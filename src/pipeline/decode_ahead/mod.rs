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
use crate::source::verify::{expected_digest, verified};
use crate::source::{ByteStream, Source};

/// Bytes in one queued buffer, and buffers in all: what the stage may hold
/// ahead of its scanning thread (the budget counts them among a run's fixed
/// needs, so they are its to set).
mod queue;
mod wait;

pub use queue::ArtifactBytes;
use queue::{State, Stream};
use wait::Blocking;
pub use wait::Wait;

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
