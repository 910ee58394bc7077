//! The HTTP side of the source: one reqwest client (no transparent
//! decompression, so `Range` offsets hold), whole small GETs, object sizes,
//! the ranged GET the download engine resumes with, and what each failure
//! means (worth another try or not).

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{self, HeaderMap};
use reqwest::{Client, StatusCode};
use url::Url;

use crate::error::{Error, Result};
use crate::net::{encode_key, RequestError, RetryPolicy};
use crate::source::fetch::{self, Ranged, RangedGet};

const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The client and prefix, shared with the download tasks.
pub(super) struct Http {
    client: Client,
    /// Ends with '/', no query.
    pub(super) base: Url,
}

/// A whole (small) response.
pub(super) struct Page {
    pub(super) status: StatusCode,
    /// After redirects: what relative links resolve against.
    pub(super) url: Url,
    pub(super) body: Bytes,
}

impl Http {
    /// The client for the prefix `base` (ending with '/', no query), its
    /// timeouts set from the retry policy.
    pub(super) fn new(base: Url, policy: &RetryPolicy) -> Result<Http> {
        // No gzip/zstd features: bodies arrive as stored, so Range offsets hold.
        let client = Client::builder()
            .user_agent(concat!("rockpack/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(policy.stall_timeout))
            // Also bounds the wait for response headers, which the body
            // stall timeout in fetch.rs does not cover.
            .read_timeout(policy.stall_timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {}", chain(&e))))?;
        Ok(Http { client, base })
    }

    pub(super) fn url(&self, key: &str) -> Result<Url, String> {
        Url::parse(&format!("{}{}", self.base, encode_key(key)))
            .map_err(|e| format!("{key:?}: not a URL path: {e}"))
    }

    /// GETs `url` whole. Throttling and 5xx are `Retry`; other statuses are
    /// for the caller; a body over `limit` is `Fatal`.
    pub(super) async fn fetch(&self, url: &Url, limit: u64) -> Result<Page, RequestError> {
        let mut resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status();
        if retryable(status) {
            return Err(RequestError::Retry(format!("HTTP {status}")));
        }
        let page_url = resp.url().clone();
        if !status.is_success() {
            return Ok(Page {
                status,
                url: page_url,
                body: Bytes::new(),
            });
        }
        let too_large = || RequestError::Fatal(format!("larger than {limit} bytes"));
        if content_length(resp.headers()).is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| RequestError::Retry(chain(&e.without_url())))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Page {
            status,
            url: page_url,
            body: body.into(),
        })
    }

    /// The object's size: HEAD's Content-Length, else a one-byte ranged GET.
    pub(super) async fn size(&self, url: &Url) -> Result<u64, RequestError> {
        let resp = self
            .client
            .head(url.clone())
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status();
        // Read the header: for HEAD, reqwest reports an empty body's length.
        match content_length(resp.headers()) {
            Some(n) if status.is_success() => return Ok(n),
            _ if status.is_success() || matches!(status.as_u16(), 405 | 501) => {}
            _ => return Err(status_error(status)),
        }
        let resp = self
            .client
            .get(url.clone())
            .header(header::RANGE, "bytes=0-0")
            .send()
            .await
            .map_err(send_error)?;
        let total = match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                content_range(resp.headers()).and_then(|(_, _, total)| total)
            }
            StatusCode::OK => content_length(resp.headers()),
            s => return Err(status_error(s)),
        };
        total.ok_or_else(|| RequestError::Fatal("the server does not say how large it is".into()))
    }
}

#[async_trait]
impl RangedGet for Http {
    async fn get(
        &self,
        key: &str,
        from: u64,
        end: Option<u64>,
        validator: Option<&str>,
    ) -> Result<Ranged, RequestError> {
        let url = self.url(key).map_err(RequestError::Fatal)?;
        let mut req = self.client.get(url.clone());
        if let Some(range) = fetch::range_header(from, end) {
            req = req.header(header::RANGE, range);
            // A weak ETag never matches If-Range; it is still compared below.
            if let Some(v) = validator.filter(|v| !v.starts_with("W/")) {
                req = req.header(header::IF_RANGE, v);
            }
        }
        let resp = req.send().await.map_err(send_error)?;
        let status = resp.status();
        let now = validator_of(resp.headers());
        let (skip, body_end) = match status {
            StatusCode::PARTIAL_CONTENT => match content_range(resp.headers()) {
                Some((start, stop, _)) if start == from => (0, Some(stop)),
                other => {
                    let got = other.map_or("no Content-Range".to_string(), |(s, _, _)| {
                        format!("bytes from {s}")
                    });
                    return Err(RequestError::Fatal(format!(
                        "asked for bytes from {from}, got {got}"
                    )));
                }
            },
            StatusCode::OK if from == 0 => (0, None),
            // The whole object instead of the range: If-Range did not match,
            // or the server ignores Range. The same version is skipped
            // forward (as is any answer when no validator is known: the
            // sha256 sidecar still checks the bytes); another is an error.
            StatusCode::OK => match (validator, now.as_deref()) {
                (None, _) => (from, None),
                (Some(v), Some(n)) if v == n => (from, None),
                (Some(v), n) => {
                    return Err(RequestError::Changed(format!(
                    "asked for bytes from {from} of version {v}, the server sent all of version {}",
                    n.unwrap_or("(none)")
                )))
                }
            },
            s => return Err(status_error(s)),
        };
        let body = resp
            .bytes_stream()
            .map_err(|e| io::Error::other(chain(&e.without_url())));
        Ok(Ranged {
            body: skip_bytes(body, skip),
            end: body_end,
            validator: now,
        })
    }
}

/// Drops the first `skip` bytes. Skipped chunks become empty ones, so the
/// stall timeout keeps seeing progress.
fn skip_bytes(
    body: impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static,
    mut skip: u64,
) -> BoxStream<'static, io::Result<Bytes>> {
    if skip == 0 {
        return body.boxed();
    }
    body.map_ok(move |mut b| {
        let n = skip.min(b.len() as u64);
        skip -= n;
        b.split_off(n as usize)
    })
    .boxed()
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429) || status.is_server_error()
}

fn status_error(status: StatusCode) -> RequestError {
    let msg = format!("HTTP {status}");
    if retryable(status) {
        RequestError::Retry(msg)
    } else {
        RequestError::Fatal(msg)
    }
}

/// Messages leave the URL out: callers name it once.
fn send_error(e: reqwest::Error) -> RequestError {
    let fatal = e.is_redirect() || e.is_builder();
    let msg = chain(&e.without_url());
    if fatal {
        RequestError::Fatal(msg)
    } else {
        RequestError::Retry(msg)
    }
}

/// An error and its causes, on one line ("connection refused" lives deep).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        cur = c.source();
    }
    s
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL` as (START, TOTAL unless `*`).
fn content_range(h: &HeaderMap) -> Option<(u64, u64, Option<u64>)> {
    fetch::parse_content_range(h.get(header::CONTENT_RANGE)?.to_str().ok()?)
}

/// What pins a download to one version: a strong ETag, else Last-Modified,
/// else a weak ETag (compared between answers, never sent in If-Range).
fn validator_of(h: &HeaderMap) -> Option<String> {
    let get = |name| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let etag = get(header::ETAG).filter(|e| !e.is_empty());
    match etag {
        Some(e) if !e.starts_with("W/") => Some(e),
        weak => get(header::LAST_MODIFIED)
            .filter(|d| !d.is_empty())
            .or(weak),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, "bytes 100-199/1000".parse().unwrap());
        assert_eq!(content_range(&h), Some((100, 200, Some(1000))));
        h.insert(header::ETAG, "W/\"weak\"".parse().unwrap());
        assert_eq!(validator_of(&h).as_deref(), Some("W/\"weak\""));
        h.insert(
            header::LAST_MODIFIED,
            "Tue, 24 Nov 2026 10:31:09 GMT".parse().unwrap(),
        );
        assert_eq!(
            validator_of(&h).as_deref(),
            Some("Tue, 24 Nov 2026 10:31:09 GMT")
        );
        h.insert(header::ETAG, "\"strong\"".parse().unwrap());
        assert_eq!(validator_of(&h).as_deref(), Some("\"strong\""));
    }
    #[tokio::test]
    async fn skips_forward() {
        let chunks = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defg")),
        ];
        let s = skip_bytes(futures_util::stream::iter(chunks), 4);
        let got: Vec<Bytes> = s.try_collect().await.unwrap();
        assert_eq!(got, vec![Bytes::new(), Bytes::from_static(b"efg")]);
    }
}
