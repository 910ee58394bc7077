//! Downloads that survive the network: every network source implements one
//! ranged GET ([`RangedGet`]); [`download`] turns it into a byte stream that
//! resumes a dropped body from the byte where it stopped (pinned to the
//! object's ETag, so bytes of two versions are never mixed), retries
//! connect errors, timeouts, 5xx and throttling with exponential backoff and
//! jitter, times out a stalled body, and gives up with a clear error after a
//! bounded number of tries.
//!
//! The download runs in its own task, ahead of the reader, into a bounded
//! buffer: opening the next artifacts early is how the pipeline reads ahead.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::ByteStream;

/// How hard a download tries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries in a row that deliver no byte before giving up.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A body that delivers nothing for this long is dropped and resumed.
    pub stall_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff, jittered to 50-100%, before try `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Runs a whole request until it succeeds or fails for good: while it fails
/// with [`GetError::Retry`], waits the policy's backoff and tries again, up
/// to `policy.max_attempts` tries in all, logging each retry as a warning
/// that names `what`. The one retry loop for whole requests (listing pages,
/// sizes, sidecars, S3 parts); downloads resume instead ([`download`]).
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, GetError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, GetError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(GetError::Retry(e)) => {
                if tries >= policy.max_attempts {
                    return Err(GetError::Retry(format!(
                        "giving up after {tries} tries: {e}"
                    )));
                }
                let wait = policy.backoff(tries);
                tracing::warn!(
                    "{what}: {e}; try {} of {} in {:.1}s",
                    tries + 1,
                    policy.max_attempts,
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The answer to one ranged GET.
pub struct Ranged {
    /// The body from the requested offset on.
    pub body: BoxStream<'static, io::Result<Bytes>>,
    /// The object's version identity (ETag), to pin later resumes to.
    pub validator: Option<String>,
}

/// How a request failed: a ranged GET, or any whole request retried by
/// [`with_retries`].
#[derive(Debug)]
pub enum GetError {
    /// Worth another try: connect error, timeout, 5xx, throttling.
    Retry(String),
    /// The object changed since the first byte was read.
    Changed(String),
    /// Not worth another try: missing object, access denied, bad request.
    Fatal(String),
}

#[async_trait]
pub trait RangedGet: Send + Sync + 'static {
    /// GET `key` from byte `from` on. With `validator`, the server must
    /// answer only if the object still has it (If-Range / If-Match).
    async fn get(&self, key: &str, from: u64, validator: Option<&str>) -> Result<Ranged, GetError>;
}

/// Starts downloading `key` (of `len` bytes, when known) and returns its
/// bytes as a stream, holding at most `buffer` bytes ahead of the reader.
/// `what` names the object in errors.
pub fn download(
    getter: Arc<dyn RangedGet>,
    key: String,
    len: Option<u64>,
    policy: RetryPolicy,
    buffer: usize,
    what: String,
) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<(Bytes, OwnedSemaphorePermit)>>(64);
    let buffer = buffer.max(1);
    let budget = Arc::new(Semaphore::new(buffer));
    tokio::spawn(async move {
        if let Err(e) = run(getter.as_ref(), &key, len, &policy, &tx, &budget, buffer).await {
            let _ = tx
                .send(Err(super::SourceFailure::io(format!("{what}: {e}"))))
                .await;
        }
    });
    let stream = tokio_stream_from(rx).map(|item| item.map(|(chunk, _permit)| chunk));
    Box::new(tokio_util::io::StreamReader::new(stream))
}

/// A stream of what `rx` receives.
pub(crate) fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> BoxStream<'static, T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Resumes after progress are not counted as failures, but are bounded too.
const MAX_RESUMES: u32 = 1000;

type Tx = mpsc::Sender<io::Result<(Bytes, OwnedSemaphorePermit)>>;

async fn run(
    getter: &dyn RangedGet,
    key: &str,
    len: Option<u64>,
    policy: &RetryPolicy,
    tx: &Tx,
    budget: &Arc<Semaphore>,
    buffer: usize,
) -> Result<(), String> {
    let mut offset: u64 = 0;
    let mut validator: Option<String> = None;
    let mut failures: u32 = 0;
    let mut resumes: u32 = 0;
    let mut last_error = String::new();
    loop {
        if resumes > MAX_RESUMES {
            return Err(format!(
                "giving up after {resumes} resumed connections at byte {offset}: {last_error}"
            ));
        }
        if failures > 0 {
            if failures >= policy.max_attempts {
                return Err(format!(
                    "giving up after {failures} failed tries at byte {offset}: {last_error}"
                ));
            }
            tokio::time::sleep(policy.backoff(failures)).await;
        }
        let resp = match getter.get(key, offset, validator.as_deref()).await {
            Ok(r) => r,
            Err(GetError::Retry(e)) => {
                tracing::debug!(key, offset, "retrying: {e}");
                last_error = e;
                failures += 1;
                continue;
            }
            Err(GetError::Changed(e)) => {
                return Err(format!(
                    "the object changed while it was being read ({e}); its bytes are not mixed"
                ))
            }
            Err(GetError::Fatal(e)) => return Err(e),
        };
        match (&validator, &resp.validator) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "the object changed while it was being read (ETag {a} became {b})"
                ));
            }
            (None, v) => validator = v.clone(),
            _ => {}
        }
        let before = offset;
        let mut body = resp.body;
        let outcome = loop {
            match tokio::time::timeout(policy.stall_timeout, body.next()).await {
                Err(_) => break Some(format!("no data for {:?}", policy.stall_timeout)),
                Ok(None) => break None,
                Ok(Some(Err(e))) => break Some(e.to_string()),
                Ok(Some(Ok(chunk))) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    offset += chunk.len() as u64;
                    if len.is_some_and(|l| offset > l) {
                        return Err(format!(
                            "the object is larger than the {} bytes listed",
                            len.unwrap()
                        ));
                    }
                    for piece in split(chunk, buffer) {
                        let permit = budget
                            .clone()
                            .acquire_many_owned(piece.len() as u32)
                            .await
                            .expect("budget semaphore is never closed");
                        if tx.send(Ok((piece, permit))).await.is_err() {
                            return Ok(()); // the reader is gone: the run is over
                        }
                    }
                }
            }
        };
        match (outcome, len) {
            (None, Some(l)) if offset < l => {
                last_error = format!("connection closed at byte {offset} of {l}");
            }
            (None, _) => return Ok(()),
            (Some(e), _) => last_error = e,
        }
        tracing::debug!(key, offset, "resuming: {last_error}");
        resumes += 1;
        failures = if offset > before { 1 } else { failures + 1 };
    }
}

/// Keeps every buffered piece within the semaphore's capacity.
fn split(chunk: Bytes, max: usize) -> Vec<Bytes> {
    let max = max.clamp(1, u32::MAX as usize);
    if chunk.len() <= max {
        return vec![chunk];
    }
    (0..chunk.len())
        .step_by(max)
        .map(|s| chunk.slice(s..(s + max).min(chunk.len())))
        .collect()
}
