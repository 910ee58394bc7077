//! HTTP(S) source: a prefix URL whose artifacts are plain objects below it.
//!
//! Listing: when the host speaks S3, ListObjectsV2 (virtual-hosted style,
//! then path-style); otherwise the prefix's `index.html` pages, followed
//! into subdirectories, with sizes from concurrent HEAD requests.
//! Downloads go through [`fetch::download`], so they resume with `Range` +
//! `If-Range` pinned to the object's validator (strong ETag, else
//! Last-Modified). A server that ignores `Range` and sends the same version
//! whole is skipped forward to the resume point rather than retried.
//!
//! [`transport`] makes the requests (whole pages, sizes, ranged GETs);
//! [`listing`] reads what they return (ListObjectsV2 XML, index.html).

mod listing;
mod transport;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use url::Url;

use super::fetch::{self, RangedGet, Ranges};
use super::{collect, ByteStream, Listing, Source};
use crate::error::{Error, Kind, Result};
use crate::net::{with_retries, RequestError, RetryPolicy};
use crate::plan::SourceArtifact;
use listing::{links_below, list_url, parse_list_page, s3_candidates};
use transport::Http;

/// Largest listing page (XML or HTML) read.
const MAX_PAGE: u64 = 32 << 20;
/// How deep index.html listings are followed below the prefix.
const MAX_DEPTH: usize = 8;
/// HEAD requests in flight while sizing index.html listings.
const HEADS_IN_FLIGHT: usize = 16;

/// Artifacts below a prefix URL.
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
        Ok(Arc::new(HttpSource {
            http: Arc::new(Http::new(base, &policy)?),
            policy,
            ranges,
            listed: OnceLock::new(),
        }))
    }

    /// "listing BASE: [URL: ]message".
    fn list_error(&self, url: &Url, msg: String) -> Error {
        let base = &self.http.base;
        if url == base {
            Error::failed(Kind::Remote, format!("listing {base}: {msg}"))
        } else {
            Error::failed(Kind::Remote, format!("listing {base}: {url}: {msg}"))
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
        let url = self.http.url(&artifact.key).map_err(Error::Usage)?;
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
        let url = self.http.url(key).map_err(Error::Usage)?;
        match self.retry(&url, || self.http.fetch(&url, limit)).await {
            Ok(p) if p.status.is_success() => Ok(Some(p.body.to_vec())),
            Ok(p) if matches!(p.status.as_u16(), 404 | 410) => Ok(None),
            Ok(p) => Err(Error::failed(
                Kind::Remote,
                format!("{url}: HTTP {}", p.status),
            )),
            Err(e) => Err(e.into_error(url.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
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
}
