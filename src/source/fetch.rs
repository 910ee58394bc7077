//! Downloads that survive the network: every network source implements one
//! ranged GET ([`RangedGet`]); [`download`] turns it into a byte stream that
//! resumes a dropped body from the byte where it stopped (pinned to the
//! object's ETag, so bytes of two versions are never mixed), retries
//! connect errors, timeouts, 5xx and throttling with exponential backoff and
//! jitter, times out a stalled body, and gives up with a clear error after a
//! bounded number of tries. The policy and the error type are
//! [`crate::net::retry`]'s, shared with whole requests and the S3 sink.
//!
//! The download runs in its own tasks, ahead of the reader, into a bounded
//! buffer: opening the next artifacts early is how the pipeline reads ahead.
//! A large object is fetched as several ranged GETs in parallel (one
//! connection often delivers a fraction of what a store can serve), each
//! resumed on its own, and handed to the reader in order.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::ByteStream;
use crate::error::{Kind, SourceFailure};
use crate::net::{RequestError, RetryPolicy};

/// The answer to one ranged GET.
pub struct Ranged {
    /// The body from the requested offset on.
    pub body: BoxStream<'static, io::Result<Bytes>>,
    /// Where the body stops (exclusive) when the server honoured a closed
    /// range; None when it runs to the object's end.
    pub end: Option<u64>,
    /// The object's version identity (ETag), to pin later resumes to.
    pub validator: Option<String>,
}

/// A network source's one ranged GET, which [`download`] resumes, retries
/// and runs in parallel.
#[async_trait]
pub trait RangedGet: Send + Sync + 'static {
    /// GET `key` from byte `from` on, up to byte `end` (exclusive) when
    /// given. With `validator`, the server must answer only if the object
    /// still has it (If-Range / If-Match).
    async fn get(
        &self,
        key: &str,
        from: u64,
        end: Option<u64>,
        validator: Option<&str>,
    ) -> Result<Ranged, RequestError>;
}

/// The `Range` header value for bytes `from` to `end` (exclusive, or the
/// object's end), or None for the whole object.
pub fn range_header(from: u64, end: Option<u64>) -> Option<String> {
    match end {
        Some(end) => Some(format!("bytes={from}-{}", end.saturating_sub(1))),
        None if from > 0 => Some(format!("bytes={from}-")),
        None => None,
    }
}

/// A `Content-Range` value, `bytes A-B/TOTAL` (TOTAL may be `*`), as the
/// first byte, the end (exclusive) and the total when known.
pub fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let last: u64 = b.trim().parse().ok()?;
    (last >= start).then_some((start, last + 1, total.trim().parse().ok()))
}

/// How a large object is split into parallel ranged GETs.
#[derive(Clone, Copy, Debug)]
pub struct Ranges {
    /// Ranged GETs in flight for one object at most; 1 reads it as one
    /// stream.
    pub connections: usize,
    /// Bytes per ranged GET.
    pub size: usize,
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges {
            connections: 4,
            size: 8 << 20,
        }
    }
}

impl Ranges {
    /// Ranged GETs in flight for an object of `len` bytes read through a
    /// buffer of `buffer` bytes: each range's bytes are held until the
    /// reader reaches them, so the buffer must hold them all. Below 2 the
    /// object is read as one stream.
    pub fn in_flight(&self, len: Option<u64>, buffer: usize) -> usize {
        let size = self.size.max(1);
        match len {
            Some(len) if len > size as u64 => self.connections.min(buffer / size),
            _ => 1,
        }
    }
}

/// Starts downloading `key` (of `len` bytes, when known) and returns its
/// bytes as a stream, holding at most `buffer` bytes ahead of the reader.
/// `what` names the object in errors.
pub fn download(
    getter: Arc<dyn RangedGet>,
    key: String,
    len: Option<u64>,
    policy: RetryPolicy,
    ranges: Ranges,
    buffer: usize,
    what: String,
) -> ByteStream {
    let buffer = buffer.max(1);
    let (order_tx, order_rx) = mpsc::unbounded_channel();
    let job = Job {
        getter,
        key: Arc::from(key),
        len,
        policy: Arc::new(policy),
        budget: Arc::new(Semaphore::new(buffer)),
        buffer,
        what: Arc::from(what),
    };
    let parallel = ranges.in_flight(len, buffer);
    tokio::spawn(async move {
        match len {
            Some(len) if parallel >= 2 => job.ranged(len, ranges.size, parallel, order_tx).await,
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                if order_tx.send(rx).is_ok() {
                    Span::new(job, 0, None, tx).fetch().await;
                }
            }
        }
    });
    // Ranges in order; each range's chunks in order.
    let stream = unbounded_stream(order_rx)
        .flat_map(unbounded_stream)
        .map(|item| item.map(|(chunk, _permit)| chunk));
    Box::new(tokio_util::io::StreamReader::new(stream))
}

/// A stream of what `rx` receives.
pub(crate) fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> BoxStream<'static, T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

fn unbounded_stream<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> BoxStream<'static, T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Resumes after progress are not counted as failures, but are bounded too.
const MAX_RESUMES: u32 = 1000;

/// Bytes for the reader, each holding its share of the download buffer
/// until the reader is done with it. The channels are unbounded: the
/// buffer's permits bound what they hold.
type Tx = mpsc::UnboundedSender<io::Result<(Bytes, OwnedSemaphorePermit)>>;
type Rx = mpsc::UnboundedReceiver<io::Result<(Bytes, OwnedSemaphorePermit)>>;

/// What the first answer of the first range said.
enum FirstAnswer {
    /// The server honoured the range; later ranges are pinned to this
    /// version.
    Ranged(Option<String>),
    /// It sent the whole object instead, which that range now reads on.
    Whole,
}

/// One object's download, shared by the tasks fetching its ranges.
#[derive(Clone)]
struct Job {
    getter: Arc<dyn RangedGet>,
    key: Arc<str>,
    len: Option<u64>,
    policy: Arc<RetryPolicy>,
    /// Bytes fetched and not yet read, at most `buffer`.
    budget: Arc<Semaphore>,
    buffer: usize,
    what: Arc<str>,
}

impl Job {
    /// Fetches `len` bytes as ranges of `size`, at most `parallel` at once,
    /// handing each range's receiver to the reader in order. The first
    /// range goes alone: its answer gives the version later ranges are
    /// pinned to, and shows whether the server honours ranges at all.
    async fn ranged(
        self,
        len: u64,
        size: usize,
        parallel: usize,
        order: mpsc::UnboundedSender<Rx>,
    ) {
        let connections = Arc::new(Semaphore::new(parallel));
        let mut validator = None;
        let mut from = 0;
        while from < len {
            let end = (from + size as u64).min(len);
            // The whole range's share of the buffer is taken before it
            // starts, so a range never waits on the reader while the one
            // the reader waits for cannot get room.
            let (Ok(reserved), Ok(connection)) = (
                self.budget
                    .clone()
                    .acquire_many_owned((end - from) as u32)
                    .await,
                connections.clone().acquire_owned().await,
            ) else {
                return;
            };
            let (tx, rx) = mpsc::unbounded_channel();
            if order.send(rx).is_err() {
                return; // the reader is gone
            }
            let mut span = Span::new(self.clone(), from, Some(end), tx);
            span.reserved = Some(reserved);
            span.validator = validator.clone();
            let first = (from == 0).then(|| {
                let (first_tx, first_rx) = oneshot::channel();
                span.first = Some(first_tx);
                first_rx
            });
            tokio::spawn(async move {
                span.fetch().await;
                drop(connection);
            });
            if let Some(first) = first {
                match first.await {
                    Ok(FirstAnswer::Ranged(v)) => validator = v,
                    // The first range reads the whole object, or failed
                    // and says so to the reader.
                    Ok(FirstAnswer::Whole) | Err(_) => return,
                }
            }
            from = end;
        }
    }
}

/// The state of one range's download: bytes `offset` to `end` (or the
/// object's end) go to `tx`.
struct Span {
    job: Job,
    /// The next byte to fetch.
    offset: u64,
    /// Where the range stops (exclusive); None: the object's end.
    end: Option<u64>,
    /// The version to pin to (a later range: the first range's).
    validator: Option<String>,
    /// The buffer share taken for the range before it started.
    reserved: Option<OwnedSemaphorePermit>,
    /// Set on the first range of a ranged download: its first answer is
    /// reported, and if the server sent the whole object the range reads
    /// on to the end.
    first: Option<oneshot::Sender<FirstAnswer>>,
    tx: Tx,
}

impl Span {
    fn new(job: Job, offset: u64, end: Option<u64>, tx: Tx) -> Span {
        Span {
            job,
            offset,
            end,
            validator: None,
            reserved: None,
            first: None,
            tx,
        }
    }

    /// Fetches the span, resuming a dropped body where it stopped; a
    /// failure reaches the reader in place of the bytes that are missing.
    async fn fetch(mut self) {
        if let Err((kind, e)) = self.run().await {
            let what = &self.job.what;
            let _ = self
                .tx
                .send(Err(SourceFailure::io(kind, format!("{what}: {e}"))));
        }
    }

    /// Fetches the span; an error says what kind of failure ended it.
    async fn run(&mut self) -> Result<(), (Kind, String)> {
        let job = self.job.clone();
        let policy = &*job.policy;
        let mut failures: u32 = 0;
        let mut resumes: u32 = 0;
        let mut last_error = String::new();
        // When the failures in a row began (progress resets them).
        let mut failing_since = std::time::Instant::now();
        loop {
            if resumes > MAX_RESUMES {
                return Err((
                    Kind::GaveUp,
                    format!(
                        "giving up after {resumes} resumed connections at byte {}: {last_error}",
                        self.offset
                    ),
                ));
            }
            if failures > 0 {
                if failures == 1 {
                    failing_since = std::time::Instant::now();
                }
                if policy.gives_up(failures, failing_since) {
                    return Err((
                        Kind::GaveUp,
                        format!(
                            "giving up after {failures} failed tries at byte {}: {last_error}",
                            self.offset
                        ),
                    ));
                }
                tokio::time::sleep(policy.backoff(failures)).await;
            }
            let resp = match job
                .getter
                .get(&job.key, self.offset, self.end, self.validator.as_deref())
                .await
            {
                Ok(r) => r,
                Err(RequestError::Retry(e)) => {
                    tracing::debug!(key = &*job.key, offset = self.offset, "retrying: {e}");
                    last_error = e;
                    failures += 1;
                    continue;
                }
                Err(RequestError::Changed(e)) => {
                    return Err((
                        Kind::ObjectChanged,
                        format!(
                        "the object changed while it was being read ({e}); its bytes are not mixed"
                    ),
                    ))
                }
                Err(RequestError::Fatal(e)) => return Err((Kind::Remote, e)),
            };
            match (&self.validator, &resp.validator) {
                (Some(a), Some(b)) if a != b => {
                    return Err((
                        Kind::ObjectChanged,
                        format!("the object changed while it was being read (ETag {a} became {b})"),
                    ));
                }
                (None, v) => self.validator = v.clone(),
                _ => {}
            }
            if let Some(first) = self.first.take() {
                // A closed range, even a shorter one (the rest is resumed).
                let answer = if resp.end.is_some() {
                    FirstAnswer::Ranged(self.validator.clone())
                } else {
                    self.end = None;
                    FirstAnswer::Whole
                };
                let _ = first.send(answer);
            }
            let before = self.offset;
            let outcome = match self.read_body(resp.body).await? {
                Some(outcome) => outcome,
                None => return Ok(()), // the range is complete, or the reader is gone
            };
            last_error = outcome;
            tracing::debug!(
                key = &*job.key,
                offset = self.offset,
                "resuming: {last_error}"
            );
            resumes += 1;
            failures = if self.offset > before {
                1
            } else {
                failures + 1
            };
        }
    }

    /// Passes the body on up to the range's end. Ok(None) when the range
    /// is complete or the reader is gone; Ok(Some(why)) when the body
    /// stopped early and is worth resuming.
    async fn read_body(
        &mut self,
        mut body: BoxStream<'static, io::Result<Bytes>>,
    ) -> Result<Option<String>, (Kind, String)> {
        let stall = self.job.policy.stall_timeout;
        let len = self.job.len;
        let target = self.end.or(len);
        loop {
            let mut chunk = match tokio::time::timeout(stall, body.next()).await {
                Err(_) => return Ok(Some(format!("no data for {stall:?}"))),
                Ok(Some(Err(e))) => return Ok(Some(e.to_string())),
                Ok(None) => {
                    return Ok(match target {
                        Some(t) if self.offset < t => Some(format!(
                            "connection closed at byte {} of {}",
                            self.offset,
                            len.unwrap_or(t)
                        )),
                        _ => None,
                    })
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            if chunk.is_empty() {
                continue;
            }
            let next = self.offset + chunk.len() as u64;
            if let Some(l) = len.filter(|&l| next > l) {
                return Err((
                    Kind::ObjectChanged,
                    format!("the object is larger than the {l} bytes listed"),
                ));
            }
            // A server that sent more than the range asked for: the rest
            // belongs to later ranges.
            let done = match self.end {
                Some(end) if next >= end => {
                    chunk.truncate((end - self.offset) as usize);
                    true
                }
                _ => false,
            };
            self.offset += chunk.len() as u64;
            for piece in split(chunk, self.job.buffer) {
                let permit = self.permit(piece.len()).await;
                if self.tx.send(Ok((piece, permit))).is_err() {
                    return Ok(None); // the reader is gone: the run is over
                }
            }
            if done {
                return Ok(None);
            }
        }
    }

    /// `n` bytes' share of the buffer: from the range's reservation while
    /// it lasts, else from the buffer (a first range reading the whole
    /// object).
    async fn permit(&mut self, n: usize) -> OwnedSemaphorePermit {
        if let Some(reserved) = self.reserved.as_mut() {
            if let Some(p) = reserved.split(n) {
                return p;
            }
            self.reserved = None;
        }
        self.job
            .budget
            .clone()
            .acquire_many_owned(n as u32)
            .await
            .expect("budget semaphore is never closed")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(range_header(0, None), None);
        assert_eq!(range_header(10, None).as_deref(), Some("bytes=10-"));
        assert_eq!(range_header(0, Some(100)).as_deref(), Some("bytes=0-99"));
        assert_eq!(
            range_header(100, Some(200)).as_deref(),
            Some("bytes=100-199")
        );
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, 200, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 1, None)));
        assert_eq!(parse_content_range("bytes 9-8/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
    }

    #[test]
    fn ranges_in_flight_fit_the_buffer() {
        let r = Ranges {
            connections: 4,
            size: 8 << 20,
        };
        let mib = |n: u64| n << 20;
        // Small or unsized objects, or a buffer for one range: one stream.
        assert_eq!(r.in_flight(None, 32 << 20), 1);
        assert_eq!(r.in_flight(Some(mib(8)), 32 << 20), 1);
        assert_eq!(r.in_flight(Some(mib(100)), 8 << 20), 1);
        assert_eq!(r.in_flight(Some(mib(100)), 16 << 20), 2);
        assert_eq!(r.in_flight(Some(mib(100)), 32 << 20), 4);
        assert_eq!(r.in_flight(Some(mib(100)), 64 << 20), 4);
        let one = Ranges {
            connections: 1,
            ..r
        };
        assert_eq!(one.in_flight(Some(mib(100)), 64 << 20), 1);
    }
}
