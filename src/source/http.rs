//! HTTP(S) source: a prefix URL whose artifacts are plain objects below it.
//!
//! Listing: when the host speaks S3, ListObjectsV2 (virtual-hosted style,
//! then path-style); otherwise the prefix's `index.html` pages, followed
//! into subdirectories, with sizes from concurrent HEAD requests.
//! Downloads go through [`fetch::download`], so they resume with `Range` +
//! `If-Range` pinned to the object's validator (strong ETag, else
//! Last-Modified). A server that ignores `Range` and sends the same version
//! whole is skipped forward to the resume point rather than retried.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use quick_xml::events::Event;
use reqwest::header::{self, HeaderMap};
use reqwest::{Client, StatusCode};
use url::Url;

use super::fetch::{self, Ranged, RangedGet, Ranges};
use super::{collect, ByteStream, Listing, Source};
use crate::error::{Error, Result};
use crate::net::{decode_key, encode_key, with_retries, RequestError, RetryPolicy};
use crate::plan::SourceArtifact;

/// Largest listing page (XML or HTML) read.
const MAX_PAGE: u64 = 32 << 20;
/// How deep index.html listings are followed below the prefix.
const MAX_DEPTH: usize = 8;
/// HEAD requests in flight while sizing index.html listings.
const HEADS_IN_FLIGHT: usize = 16;
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct HttpSource {
    http: Arc<Http>,
    policy: RetryPolicy,
    ranges: Ranges,
    /// Every key the listing saw: `read_small` of another key is None without
    /// a request (some servers answer 403 for a missing object).
    listed: OnceLock<HashSet<String>>,
}

impl HttpSource {
    /// The source as main.rs uses it (behind `dyn Source`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(base: Url, policy: RetryPolicy, ranges: Ranges) -> Result<Arc<dyn Source>> {
        let mut base = base;
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        // No gzip/zstd features: bodies arrive as stored, so Range offsets hold.
        let client = Client::builder()
            .user_agent(concat!("rockpack/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(policy.stall_timeout))
            // Also bounds the wait for response headers, which the body
            // stall timeout in fetch.rs does not cover.
            .read_timeout(policy.stall_timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| Error::Other(format!("HTTP client: {}", chain(&e))))?;
        Ok(Arc::new(HttpSource {
            http: Arc::new(Http { client, base }),
            policy,
            ranges,
            listed: OnceLock::new(),
        }))
    }

    /// "listing BASE: [URL: ]message".
    fn list_error(&self, url: &Url, msg: String) -> Error {
        let base = &self.http.base;
        if url == base {
            Error::Other(format!("listing {base}: {msg}"))
        } else {
            Error::Other(format!("listing {base}: {url}: {msg}"))
        }
    }

    async fn retry<T, F, Fut>(&self, what: &Url, attempt: F) -> Result<T, RequestError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        with_retries(&self.policy, what.as_str(), attempt).await
    }

    /// (key, size) of every object below the prefix, or None when the host
    /// does not answer ListObjectsV2.
    async fn list_s3(&self) -> Result<Option<Vec<(String, u64)>>> {
        for (endpoint, prefix) in s3_candidates(&self.http.base) {
            let mut token: Option<String> = None;
            let mut out = Vec::new();
            loop {
                let url = list_url(&endpoint, &prefix, token.as_deref());
                let page = match self.retry(&url, || self.http.fetch(&url, MAX_PAGE)).await {
                    Ok(p) if p.status.is_success() => p,
                    // Not S3 here (an HTML page, an error, too large): try the next way.
                    Ok(_) | Err(RequestError::Fatal(_)) if token.is_none() => break,
                    Ok(p) => return Err(self.list_error(&url, format!("HTTP {}", p.status))),
                    Err(e) => return Err(self.list_error(&url, e.to_string())),
                };
                let parsed = match parse_list_page(&page.body) {
                    Ok(Some(p)) => p,
                    Ok(None) | Err(_) if token.is_none() => break,
                    Ok(None) => return Err(self.list_error(&url, "not a ListBucketResult".into())),
                    Err(e) => return Err(self.list_error(&url, e)),
                };
                for (key, size) in parsed.objects {
                    match key.strip_prefix(prefix.as_str()) {
                        Some(rel) if !rel.is_empty() && !rel.ends_with('/') => {
                            out.push((rel.to_string(), size))
                        }
                        _ => {}
                    }
                }
                match parsed.next {
                    Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                    Some(_) => {
                        return Err(self.list_error(&url, "the continuation token repeats".into()))
                    }
                    None => {
                        tracing::debug!(%endpoint, objects = out.len(), "listed with ListObjectsV2");
                        return Ok(Some(out));
                    }
                }
            }
        }
        Ok(None)
    }

    /// (key, size) of every file the index pages link to below the prefix.
    async fn list_index(&self) -> Result<Vec<(String, u64)>> {
        let mut files = BTreeSet::new();
        let mut dirs = HashSet::new();
        let mut queue = VecDeque::from([(String::new(), 0usize)]);
        while let Some((dir, depth)) = queue.pop_front() {
            let url = self
                .http
                .url(&dir)
                .map_err(|e| self.list_error(&self.http.base, e))?;
            let page = match self.retry(&url, || self.http.fetch(&url, MAX_PAGE)).await {
                Ok(p) if p.status.is_success() => p,
                Ok(p) => return Err(self.list_error(&url, format!("HTTP {}", p.status))),
                Err(e) => return Err(self.list_error(&url, e.to_string())),
            };
            let html = String::from_utf8_lossy(&page.body);
            for (key, is_dir) in links_below(&page.url, &html, &self.http.base) {
                if !is_dir {
                    files.insert(key);
                } else if depth + 1 >= MAX_DEPTH {
                    tracing::warn!("not listing {key}: more than {MAX_DEPTH} directories deep");
                } else if dirs.insert(key.clone()) {
                    queue.push_back((key, depth + 1));
                }
            }
        }
        // Only archives need a size (sidecars and manifests are read whole).
        let sized = futures_util::stream::iter(files)
            .map(|key| async move {
                if !(key.ends_with(".tar.zst") || key.ends_with(".tar.xz")) {
                    return Ok((key, 0));
                }
                let url = self
                    .http
                    .url(&key)
                    .map_err(|e| self.list_error(&self.http.base, e))?;
                match self.retry(&url, || self.http.size(&url)).await {
                    Ok(size) => Ok((key, size)),
                    Err(e) => Err(self.list_error(&url, format!("sizing: {e}"))),
                }
            })
            .buffered(HEADS_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        tracing::debug!(
            pages = dirs.len() + 1,
            files = sized.len(),
            "listed through index.html"
        );
        Ok(sized)
    }
}

#[async_trait]
impl Source for HttpSource {
    fn describe(&self) -> String {
        self.http.base.to_string()
    }

    async fn list(&self) -> Result<Listing> {
        let mut entries = match self.list_s3().await? {
            Some(e) => e,
            None => self.list_index().await?,
        };
        entries.sort();
        let _ = self
            .listed
            .set(entries.iter().map(|(k, _)| k.clone()).collect());
        Ok(collect(&entries))
    }

    async fn open(&self, artifact: &SourceArtifact, buffer: usize) -> Result<ByteStream> {
        let url = self.http.url(&artifact.key).map_err(Error::Other)?;
        let getter: Arc<dyn RangedGet> = self.http.clone();
        Ok(fetch::download(
            getter,
            artifact.key.clone(),
            Some(artifact.size),
            self.policy.clone(),
            self.ranges,
            buffer,
            url.to_string(),
        ))
    }

    async fn read_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        if self.listed.get().is_some_and(|keys| !keys.contains(key)) {
            return Ok(None);
        }
        let url = self.http.url(key).map_err(Error::Other)?;
        match self.retry(&url, || self.http.fetch(&url, limit)).await {
            Ok(p) if p.status.is_success() => Ok(Some(p.body.to_vec())),
            Ok(p) if matches!(p.status.as_u16(), 404 | 410) => Ok(None),
            Ok(p) => Err(Error::Other(format!("{url}: HTTP {}", p.status))),
            Err(e) => Err(Error::Other(format!("{url}: {e}"))),
        }
    }
}

/// The client and prefix, shared with the download tasks.
struct Http {
    client: Client,
    /// Ends with '/', no query.
    base: Url,
}

/// A whole (small) response.
struct Page {
    status: StatusCode,
    /// After redirects: what relative links resolve against.
    url: Url,
    body: Bytes,
}

impl Http {
    fn url(&self, key: &str) -> Result<Url, String> {
        Url::parse(&format!("{}{}", self.base, encode_key(key)))
            .map_err(|e| format!("{key:?}: not a URL path: {e}"))
    }

    /// GETs `url` whole. Throttling and 5xx are `Retry`; other statuses are
    /// for the caller; a body over `limit` is `Fatal`.
    async fn fetch(&self, url: &Url, limit: u64) -> Result<Page, RequestError> {
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
    async fn size(&self, url: &Url) -> Result<u64, RequestError> {
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

// ---- S3 ListObjectsV2 ----

/// (endpoint, key prefix) to try: virtual-hosted style (the host is the
/// bucket), then path-style (the first path segment is).
fn s3_candidates(base: &Url) -> Vec<(Url, String)> {
    let path = decode_key(base.path().trim_start_matches('/'));
    let mut root = base.clone();
    root.set_path("/");
    let mut out = vec![(root.clone(), path.clone())];
    if let Some((bucket, rest)) = path.split_once('/') {
        if !bucket.is_empty() {
            let mut ep = root;
            ep.path_segments_mut()
                .expect("http URLs have paths")
                .clear()
                .push(bucket);
            out.push((ep, rest.to_string()));
        }
    }
    out
}

fn list_url(endpoint: &Url, prefix: &str, token: Option<&str>) -> Url {
    let mut u = endpoint.clone();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("list-type", "2")
            .append_pair("prefix", prefix);
        if let Some(t) = token {
            q.append_pair("continuation-token", t);
        }
    }
    u
}

/// One ListObjectsV2 answer.
#[derive(Debug, Default, PartialEq)]
struct ListPage {
    objects: Vec<(String, u64)>,
    next: Option<String>,
}

/// Ok(None) when the document is not a ListBucketResult (an HTML page, a
/// ListAllMyBucketsResult, an error).
fn parse_list_page(xml: &[u8]) -> Result<Option<ListPage>, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut page = ListPage::default();
    let (mut key, mut size, mut truncated, mut rooted) =
        (None::<String>, None::<u64>, false, false);
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(_) if path.is_empty() => return Ok(None),
            Err(e) => return Err(format!("bad ListBucketResult XML: {e}")),
        };
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if rooted || name != "ListBucketResult" {
                        return Ok(None);
                    }
                    rooted = true;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(_) if path.is_empty() => return Ok(None),
            Event::Text(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                text.push_str(&format!("&{};", r.decode().map_err(|e| e.to_string())?))
            }
            Event::CData(c) => text.push_str(&quick_xml::escape::escape(
                c.decode().map_err(|e| e.to_string())?,
            )),
            Event::End(_) => {
                let value = quick_xml::escape::unescape(&text)
                    .map_err(|e| e.to_string())?
                    .into_owned();
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                match p.as_slice() {
                    [_, "Contents", "Key"] => key = Some(value),
                    [_, "Contents", "Size"] => size = value.trim().parse().ok(),
                    [_, "Contents"] => match (key.take(), size.take()) {
                        (Some(k), Some(s)) => page.objects.push((k, s)),
                        _ => return Err("a Contents entry without Key or Size".into()),
                    },
                    [_, "IsTruncated"] => truncated = value.trim() == "true",
                    [_, "NextContinuationToken"] => {
                        page.next = Some(value).filter(|t| !t.is_empty())
                    }
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !rooted {
        return Ok(None);
    }
    if !truncated {
        page.next = None;
    } else if page.next.is_none() {
        return Err("IsTruncated without a NextContinuationToken".into());
    }
    Ok(Some(page))
}

// ---- index.html ----

/// `href` values in an HTML page, entity-decoded, in page order.
fn hrefs(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("href") {
        let name_at = from + at;
        let mut i = name_at + 4;
        from = i;
        // The attribute itself, not the end of another name (data-href).
        if name_at > 0
            && (bytes[name_at - 1].is_ascii_alphanumeric()
                || matches!(bytes[name_at - 1], b'-' | b'_'))
        {
            continue;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let (start, end) = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => match html[i + 1..].find(q as char) {
                Some(n) => (i + 1, i + 1 + n),
                None => break,
            },
            Some(_) => {
                let n = html[i..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(html.len() - i);
                (i, i + n)
            }
            None => break,
        };
        out.push(decode_entities(&html[start..end]));
        from = end;
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// Links of `page` that point below `base` (same origin, no query, not
/// `base` itself), as (decoded key relative to `base`, is a directory).
fn links_below(page: &Url, html: &str, base: &Url) -> Vec<(String, bool)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for href in hrefs(html) {
        if href.is_empty() || href.starts_with('#') || href.starts_with('?') {
            continue;
        }
        let Ok(mut u) = page.join(&href) else {
            continue;
        };
        u.set_fragment(None);
        if u.query().is_some()
            || u.scheme() != base.scheme()
            || u.host() != base.host()
            || u.port_or_known_default() != base.port_or_known_default()
        {
            continue;
        }
        let Some(rel) = u.path().strip_prefix(base.path()) else {
            continue;
        };
        let key = decode_key(rel);
        if key.is_empty()
            || key
                .split('/')
                .rev()
                .skip(1)
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            continue;
        }
        if seen.insert(key.clone()) {
            out.push((key.clone(), key.ends_with('/')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_a_truncated_list_page() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>therock-ci-artifacts</Name><Prefix>123-linux/</Prefix><KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
  <Contents><Key>123-linux/base_lib_generic.tar.zst</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>123-linux/a&amp;b_lib_gfx942:xnack+.tar.zst</Key><Size>5</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let page = parse_list_page(xml).unwrap().unwrap();
        assert_eq!(
            page.objects,
            vec![
                ("123-linux/base_lib_generic.tar.zst".to_string(), 1234),
                ("123-linux/a&b_lib_gfx942:xnack+.tar.zst".to_string(), 5)
            ]
        );
        assert_eq!(
            page.next.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
    }

    #[test]
    fn last_page_and_other_documents() {
        let last = b"<ListBucketResult><IsTruncated>false</IsTruncated>\
            <Contents><Key>p/x</Key><Size>0</Size></Contents></ListBucketResult>";
        assert_eq!(
            parse_list_page(last).unwrap(),
            Some(ListPage {
                objects: vec![("p/x".into(), 0)],
                next: None
            })
        );
        let empty =
            b"<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(parse_list_page(empty).unwrap(), Some(ListPage::default()));
        for other in [
            &b"<?xml version=\"1.0\"?><ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>"
                [..],
            b"<Error><Code>AccessDenied</Code></Error>",
            b"<!DOCTYPE html><html><body><a href=\"x\">x</a><br></body></html>",
            b"not xml at all & <",
            b"",
        ] {
            assert_eq!(
                parse_list_page(other).unwrap(),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        let bad = b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
        assert!(parse_list_page(bad).is_err());
    }

    #[test]
    fn s3_candidates_and_list_urls() {
        let c = s3_candidates(&url(
            "https://therock-ci-artifacts.s3.amazonaws.com/123-linux/",
        ));
        assert_eq!(
            c[0].0.as_str(),
            "https://therock-ci-artifacts.s3.amazonaws.com/"
        );
        assert_eq!(c[0].1, "123-linux/");
        assert_eq!(
            c[1].0.as_str(),
            "https://therock-ci-artifacts.s3.amazonaws.com/123-linux"
        );
        assert_eq!(c[1].1, "");
        let c = s3_candidates(&url("http://127.0.0.1:9000/bucket/a%20b/run/"));
        assert_eq!(c[1].0.as_str(), "http://127.0.0.1:9000/bucket");
        assert_eq!(c[1].1, "a b/run/");
        assert_eq!(
            list_url(&c[1].0, &c[1].1, Some("t/+=")).as_str(),
            "http://127.0.0.1:9000/bucket?list-type=2&prefix=a+b%2Frun%2F&continuation-token=t%2F%2B%3D"
        );
        assert_eq!(s3_candidates(&url("http://h/")).len(), 1);
    }

    #[test]
    fn extracts_links_below_the_prefix() {
        let base = url("http://127.0.0.1:8000/run/");
        let html = r#"<html><body><h1>Index of /run/</h1>
<a href="../">../</a>
<a href="?C=N;O=D">Name</a> <a href='#top'>top</a>
<A HREF="base_lib_generic.tar.zst">base_lib_generic.tar.zst</A>
<a class="x" href = "base_lib_generic.tar.zst.sha256sum">sidecar</a>
<a href="sub/">sub/</a> <a href="sub/">again</a>
<a href="/run/manifests/">manifests/</a>
<a href="/other/x.tar.zst">outside</a>
<a href="http://example.com/run/x.tar.zst">elsewhere</a>
<a href="foo_lib_gfx942%3Axnack%2B.tar.zst">encoded</a>
<a href="a&amp;b.txt">amp</a>
<a data-href="nothere">no</a>
<a href=plain.txt>unquoted</a>
</body></html>"#;
        let links = links_below(&base, html, &base);
        let want: Vec<(String, bool)> = [
            ("base_lib_generic.tar.zst", false),
            ("base_lib_generic.tar.zst.sha256sum", false),
            ("sub/", true),
            ("manifests/", true),
            ("foo_lib_gfx942:xnack+.tar.zst", false),
            ("a&b.txt", false),
            ("plain.txt", false),
        ]
        .iter()
        .map(|(k, d)| (k.to_string(), *d))
        .collect();
        assert_eq!(links, want);
        // A subdirectory's page: keys stay relative to the prefix.
        let page = url("http://127.0.0.1:8000/run/sub/");
        let links = links_below(
            &page,
            r#"<a href="../">up</a><a href="x.tar.xz">x</a>"#,
            &base,
        );
        assert_eq!(links, vec![("sub/x.tar.xz".to_string(), false)]);
    }

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

    /// A raw HTTP/1.1 server: the first answer sends `stall_after` bytes and
    /// then nothing; ranged requests are answered properly. Records the
    /// Range header of every request.
    fn stalling_server(
        data: Vec<u8>,
        stall_after: usize,
    ) -> (String, Arc<std::sync::Mutex<Vec<Option<String>>>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/run/", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let (mut sock, data, record) = (sock.unwrap(), data.clone(), record.clone());
                std::thread::spawn(move || {
                    let mut range = None;
                    let mut reader = BufReader::new(sock.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range:") {
                            range = Some(v.trim().to_string());
                        }
                    }
                    record.lock().unwrap().push(range.clone());
                    let len = data.len();
                    let from: usize = range
                        .as_deref()
                        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
                        .unwrap_or(0);
                    let head = if from == 0 {
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nETag: \"v1\"\r\n\r\n")
                    } else {
                        let last = len - 1;
                        format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n\
                             Content-Range: bytes {from}-{last}/{len}\r\nETag: \"v1\"\r\n\r\n",
                            len - from
                        )
                    };
                    sock.write_all(head.as_bytes()).unwrap();
                    let end = if from == 0 { stall_after } else { len };
                    sock.write_all(&data[from..end]).unwrap();
                    sock.flush().unwrap();
                    std::thread::sleep(Duration::from_secs(10));
                });
            }
        });
        (url, seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_body_is_resumed() {
        use tokio::io::AsyncReadExt;
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (base, seen) = stalling_server(data.clone(), 70_000);
        let policy = RetryPolicy {
            stall_timeout: Duration::from_millis(300),
            ..RetryPolicy::default()
        };
        let source = HttpSource::new(url(&base), policy, Ranges::default()).unwrap();
        let artifact = SourceArtifact {
            name: crate::plan::ArtifactName::parse("x_lib_generic.tar.zst")
                .unwrap()
                .unwrap(),
            key: "x_lib_generic.tar.zst".into(),
            size: data.len() as u64,
            sha256_key: None,
        };
        let start = std::time::Instant::now();
        let mut got = Vec::new();
        source
            .open(&artifact, 1 << 20)
            .await
            .unwrap()
            .read_to_end(&mut got)
            .await
            .unwrap();
        assert!(got == data, "the resumed bytes differ");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![None, Some("bytes=70000-".to_string())]
        );
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
