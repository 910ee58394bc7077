//! How hard a network request tries: the retry policy (tries, exponential
//! backoff with jitter, the stall timeout), the one loop that retries a
//! whole request, and the error every request reports (retry, changed or
//! fatal). Sources' ranged downloads resume instead of retrying whole
//! (`source::fetch`), but count their failed tries with the same policy.
//! Free of the AWS SDK and reqwest, so always compiled.

use std::time::Duration;

use crate::error::{Error, Kind};

/// How hard a request, or a download, tries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries in a row that deliver no byte before giving up.
    pub max_attempts: u32,
    /// The first backoff (before jitter); each one after doubles it.
    pub base_delay: Duration,
    /// Backoff never grows past this (before jitter).
    pub max_delay: Duration,
    /// A body that delivers nothing for this long is dropped and resumed.
    pub stall_timeout: Duration,
    /// However many tries failed, a request keeps trying (with backoff)
    /// until it has failed for this long: S3's bad minutes (503 SlowDown,
    /// an endpoint that does not answer) are waited out.
    pub patience: Duration,
}

/// How long a failing request keeps trying by default (`--retry-for`).
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(60),
            patience: DEFAULT_PATIENCE,
        }
    }
}

impl RetryPolicy {
    /// Whether a request that has failed `tries` times in a row, the first
    /// of them at `since`, gives up: only once both `max_attempts` and
    /// `patience` are used up.
    pub fn gives_up(&self, tries: u32, since: std::time::Instant) -> bool {
        tries >= self.max_attempts && since.elapsed() >= self.patience
    }

    /// Exponential backoff, jittered to 50-100%, before try `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// How a request failed: a ranged GET, or any whole request retried by
/// [`with_retries`].
#[derive(Debug)]
pub enum RequestError {
    /// Worth another try: connect error, timeout, 5xx, throttling.
    Retry(String),
    /// The object changed since the first byte was read.
    Changed(String),
    /// Not worth another try: missing object, access denied, bad request.
    Fatal(String),
}

/// The message alone: callers say which request it was.
impl RequestError {
    /// The kind of failure this is once retrying is over: a retryable error
    /// that is still an error means rockpack gave up.
    pub fn kind(&self) -> Kind {
        match self {
            RequestError::Retry(_) => Kind::GaveUp,
            RequestError::Changed(_) => Kind::ObjectChanged,
            RequestError::Fatal(_) => Kind::Remote,
        }
    }

    /// The run's error for this failure of `what` (a request, an object).
    pub fn into_error(self, what: &str) -> Error {
        Error::failed(self.kind(), format!("{what}: {self}"))
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Retry(m) | RequestError::Changed(m) | RequestError::Fatal(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Runs a whole request until it succeeds or fails for good: while it fails
/// with [`RequestError::Retry`], waits the policy's backoff and tries again,
/// until the policy [gives up](RetryPolicy::gives_up), logging each retry as a warning
/// that names `what`. The one retry loop for whole requests (listing pages,
/// sizes, sidecars, S3 parts); downloads resume instead
/// (`source::fetch::download`).
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let mut tries = Tries::new(policy);
    loop {
        match attempt().await {
            Err(RequestError::Retry(e)) => {
                tries.again(what, &e).await.map_err(RequestError::Retry)?
            }
            other => return other,
        }
    }
}

/// The failed tries of one request, for a loop that retries by hand (where
/// a try needs more than [`with_retries`] gives it: noting each start,
/// telling a lost answer from a refusal).
#[derive(Debug)]
pub struct Tries<'a> {
    policy: &'a RetryPolicy,
    failed: u32,
    since: Option<std::time::Instant>,
}

impl<'a> Tries<'a> {
    /// No try failed yet.
    pub fn new(policy: &'a RetryPolicy) -> Tries<'a> {
        Tries {
            policy,
            failed: 0,
            since: None,
        }
    }

    /// How many tries failed.
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// A try of `what` failed with `e`, worth another try: waits the
    /// policy's backoff (logged as a warning), or, once the policy gives
    /// up, returns what to report.
    pub async fn again(&mut self, what: &str, e: &str) -> Result<(), String> {
        self.failed += 1;
        let first = *self.since.get_or_insert_with(std::time::Instant::now);
        let policy = self.policy;
        if policy.gives_up(self.failed, first) {
            return Err(format!(
                "giving up after {} tries in {:.0}s: {e}",
                self.failed,
                first.elapsed().as_secs_f64()
            ));
        }
        let wait = policy.backoff(self.failed);
        tracing::warn!(
            "{what}: {e}; try {} in {:.1}s (failing for {:.0}s; gives up after {} tries and {}s)",
            self.failed + 1,
            wait.as_secs_f64(),
            first.elapsed().as_secs_f64(),
            policy.max_attempts,
            policy.patience.as_secs()
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}
