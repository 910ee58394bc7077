//! An in-process S3-compatible server for tests: s3s-fs on 127.0.0.1 with
//! fixed credentials, behind the fault-injection layer. It runs on its own
//! thread and runtime, so tests stay plain `#[test]` functions that run the
//! rockpack binary as a child process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};

use super::faults::{self, Faults};

pub const ACCESS_KEY: &str = "rockpack-test-key";
pub const SECRET_KEY: &str = "rockpack-test-secret";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    pub endpoint: String,
    pub addr: SocketAddr,
    pub faults: Faults,
    /// Where s3s-fs keeps buckets (one directory each) and objects (files).
    pub root: PathBuf,
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl S3Server {
    /// Starts a server with the given buckets.
    pub fn start(buckets: &[&str]) -> S3Server {
        S3Server::start_with(buckets, false, serve_plain)
    }

    /// s3s-fs with `buckets` in a new directory, signed requests with
    /// [`ACCESS_KEY`] and [`SECRET_KEY`], anonymous reads too when `public`
    /// (see [`PublicRead`]); `serve` puts it on the listener behind the
    /// server's fault layer.
    fn start_with(
        buckets: &[&str],
        public: bool,
        serve: impl FnOnce(&tokio::runtime::Runtime, tokio::net::TcpListener, Faults, S3Service, &Path),
    ) -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).unwrap();
        }
        let (runtime, listener, addr) = faults::runtime_and_listener();
        let faults = Faults::default();
        let fs = s3s_fs::FileSystem::new(&root).unwrap();
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        if public {
            b.set_access(PublicRead);
        }
        serve(&runtime, listener, faults.clone(), b.build(), &root);
        S3Server {
            endpoint: format!("http://{addr}"),
            addr,
            faults,
            root,
            _dir: dir,
            runtime,
        }
    }

    /// Environment for a child process that talks to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        child_env(ACCESS_KEY, SECRET_KEY, REGION)
    }

    /// Copies every file below `dir` to `s3://bucket/prefix/…`.
    pub fn upload_dir(&self, dir: &Path, bucket: &str, prefix: &str) {
        let client = self.client();
        self.runtime.block_on(async {
            for (key, path) in files_below(dir) {
                let full = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}/{key}")
                };
                let body = aws_sdk_s3::primitives::ByteStream::from(std::fs::read(&path).unwrap());
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&full)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
        });
    }

    /// Every object key in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let client = self.client();
        self.runtime.block_on(async {
            let mut keys = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(bucket)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for o in page.unwrap().contents() {
                    keys.push(o.key().unwrap().to_string());
                }
            }
            keys.sort();
            keys
        })
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let client = self.client();
        self.runtime.block_on(async {
            let o = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            o.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    /// A signed client for setting up and inspecting the bucket.
    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, ACCESS_KEY, SECRET_KEY, REGION)
    }

    /// Runs a future on the server's runtime (for ad-hoc client calls).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

/// Environment for a child process that talks to an S3 server with these
/// credentials, and looks for no others (nor for a region or instance
/// metadata) elsewhere.
pub fn child_env(access_key: &str, secret_key: &str, region: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", access_key.into()),
        ("AWS_SECRET_ACCESS_KEY", secret_key.into()),
        ("AWS_REGION", region.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
    ]
}

/// A path-style client signing with these credentials.
pub fn s3_client(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "test");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .force_path_style(true)
        // The tests compare bytes themselves; moto's stored full-object
        // checksums are not what the SDK would check them against.
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Serves s3s-fs behind the fault layer.
fn serve_plain(
    runtime: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    faults: Faults,
    service: S3Service,
    _root: &Path,
) {
    faults::serve(runtime, listener, faults, move |req| {
        let service = service.clone();
        async move {
            match hyper::service::Service::call(&service, req).await {
                Ok(resp) => resp,
                Err(e) => hyper::Response::builder()
                    .status(500)
                    .body(s3s::Body::from(format!("{e:?}")))
                    .unwrap(),
            }
        }
    });
}

/// (key with '/', path) for every regular file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                stack.push((e.path(), key));
            } else {
                out.push((key, e.path()));
            }
        }
    }
    out.sort();
    out
}

/// Anonymous (unsigned) requests may read: GetObject, HeadObject, the
/// listings, as a public bucket allows; everything else needs a signature.
struct PublicRead;

#[async_trait::async_trait]
impl s3s::access::S3Access for PublicRead {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        if cx.credentials().is_some() {
            return Ok(());
        }
        match cx.s3_op().name() {
            "GetObject" | "HeadObject" | "ListObjectsV2" | "ListObjects" | "HeadBucket"
            | "GetBucketLocation" => Ok(()),
            _ => Err(s3s::s3_error!(
                AccessDenied,
                "anonymous requests may only read"
            )),
        }
    }
}

impl S3Server {
    /// Like [`S3Server::start`], but the buckets are public: unsigned
    /// requests may list and read (as with `--no-sign-request` against
    /// TheRock's buckets), and signed ones (the set-up client) may do
    /// everything. s3s accepts unsigned requests only when no auth provider
    /// is set, and then it rejects signed ones, so the auth provider stays
    /// and an access policy lets anonymous readers through.
    pub fn start_public(buckets: &[&str]) -> S3Server {
        S3Server::start_with(buckets, true, serve_plain)
    }

    /// Environment for a child process that has no AWS credentials at all
    /// (and cannot look for any beyond 127.0.0.1).
    pub fn env_without_credentials(&self) -> Vec<(&'static str, String)> {
        self.env()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
            .collect()
    }

    /// Writes one object (replacing any).
    pub fn put(&self, bucket: &str, key: &str, data: Vec<u8>) {
        let client = self.client();
        self.runtime.block_on(async {
            let body = aws_sdk_s3::primitives::ByteStream::from(data);
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .unwrap();
        });
    }

    /// Writes many objects, a few at a time.
    pub fn put_many(&self, bucket: &str, objects: Vec<(String, Vec<u8>)>) {
        use futures_util::StreamExt;
        let client = self.client();
        self.runtime.block_on(async {
            futures_util::stream::iter(objects)
                .map(|(key, data)| {
                    let client = client.clone();
                    async move {
                        let body = aws_sdk_s3::primitives::ByteStream::from(data);
                        client
                            .put_object()
                            .bucket(bucket)
                            .key(&key)
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        });
    }
}

// --- A checking front (request log, CRC32C check) for s3s-fs, and the same
// --- front with fault injection as a proxy to an external S3 server (moto).

/// One request as a checking front saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: hyper::Method,
    pub uri: String,
    pub headers: hyper::HeaderMap,
    pub body_len: usize,
    /// Answered by a [`Recorder::fail_after_body`] rule.
    pub injected: bool,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a checking front ([`S3Server::start_checked`], [`S3Proxy`]) saw:
/// every request with its headers and body size, and the CRC32C and
/// CRC64NVME checksums it verified. A request that declares
/// `x-amz-checksum-crc32c` or `x-amz-checksum-crc64nvme` for a body that
/// does not have it is answered as S3 answers it: 400 BadDigest (s3s-fs
/// itself does not check checksums of UploadPart).
#[derive(Clone, Default)]
pub struct Recorder {
    requests: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<AfterBody>>>,
    crc32c_ok: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    crc32c_bad: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// [`Recorder::misreport_length`] rules: path fragment, times left.
    misreports: std::sync::Arc<std::sync::Mutex<Vec<(String, usize)>>>,
}

/// A [`Recorder::fail_after_body`] rule.
#[derive(Clone, Debug)]
struct AfterBody {
    method: String,
    query: String,
    /// A header the request must carry.
    header: Option<String>,
    status: u16,
    code: String,
    left: usize,
}

impl Recorder {
    /// Answers the next `times` requests with this method whose query
    /// contains `query` with an S3 error (`status`, `code`), after reading
    /// their body. (The fault layer's `Action::Status` answers before the
    /// body is read, so a client still sending a large body sees a broken
    /// connection rather than the answer.)
    pub fn fail_after_body(
        &self,
        method: &str,
        query: &str,
        status: u16,
        code: &str,
        times: usize,
    ) {
        self.rule(method, query, None, status, code, times);
    }

    /// Like [`Recorder::fail_after_body`], for requests that carry the
    /// header `header` only.
    pub fn fail_with_header(
        &self,
        method: &str,
        query: &str,
        header: &str,
        status: u16,
        code: &str,
        times: usize,
    ) {
        self.rule(method, query, Some(header), status, code, times);
    }

    /// Adds a rule: the next `times` requests with this method, `query` in
    /// their query and `header` (if given) are answered `status`, `code`
    /// (status 0: let through).
    fn rule(
        &self,
        method: &str,
        query: &str,
        header: Option<&str>,
        status: u16,
        code: &str,
        times: usize,
    ) {
        self.failures.lock().unwrap().push(AfterBody {
            method: method.to_string(),
            query: query.to_string(),
            header: header.map(str::to_string),
            status,
            code: code.to_string(),
            left: times,
        });
    }

    /// Answers UploadPartCopy requests (a PUT with `x-amz-copy-source`)
    /// with an S3 error, after letting the first `skip` through, `times`
    /// times.
    pub fn fail_copies(&self, skip: usize, status: u16, code: &str, times: usize) {
        let copies = Some("x-amz-copy-source");
        self.rule("PUT", "", copies, 0, &format!("skip {skip}"), skip);
        self.rule("PUT", "", copies, status, code, times);
    }

    /// The next `times` successful HeadObject answers for paths that
    /// contain `path` report one byte more than the object holds: what a
    /// client sees of a copy that does not match its source.
    pub fn misreport_length(&self, path: &str, times: usize) {
        self.misreports
            .lock()
            .unwrap()
            .push((path.to_string(), times));
    }

    /// Applies a [`Recorder::misreport_length`] rule to the answer to a
    /// `method` request of `path`.
    fn misreport(
        &self,
        method: &hyper::Method,
        path: &str,
        answer: &mut hyper::Response<super::faults::ResBody>,
    ) {
        if method != hyper::Method::HEAD || answer.status() != 200 {
            return;
        }
        let mut rules = self.misreports.lock().unwrap();
        let Some(rule) = rules
            .iter_mut()
            .find(|(p, left)| *left > 0 && path.contains(p.as_str()))
        else {
            return;
        };
        rule.1 -= 1;
        let length = hyper::header::CONTENT_LENGTH;
        let more = answer
            .headers()
            .get(&length)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|n| n + 1);
        if let Some(n) = more {
            answer.headers_mut().insert(length, n.into());
        }
    }

    /// Body bytes of every request the server received (injected failures
    /// and retries included): what a client sent it.
    pub fn bytes_received(&self) -> u64 {
        self.requests().iter().map(|r| r.body_len as u64).sum()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests with this method whose query contains `query`.
    pub fn matching(&self, method: &str, query: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method.as_str() == method)
            .filter(|r| {
                r.uri
                    .split_once('?')
                    .is_some_and(|(_, q)| q.contains(query))
            })
            .collect()
    }

    /// Declared CRC32C or CRC64NVME checksums that matched their bodies.
    pub fn checksums_checked(&self) -> usize {
        self.crc32c_ok.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Declared checksums that did not.
    pub fn checksum_mismatches(&self) -> usize {
        self.crc32c_bad.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Reads the body, records the request and checks a declared CRC32C.
    async fn check(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<(hyper::http::request::Parts, bytes::Bytes), hyper::Response<super::faults::ResBody>>
    {
        use http_body_util::BodyExt;
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return Err(xml_error(
                    400,
                    "IncompleteBody",
                    &format!("reading the body: {e}"),
                ))
            }
        };
        let query = parts.uri.query().unwrap_or("");
        let injected = {
            let mut failures = self.failures.lock().unwrap();
            failures
                .iter_mut()
                .find(|f| {
                    f.left > 0
                        && f.method == parts.method.as_str()
                        && query.contains(f.query.as_str())
                        && f.header
                            .as_ref()
                            .is_none_or(|h| parts.headers.contains_key(h.as_str()))
                })
                .map(|f| {
                    f.left -= 1;
                    (f.status, f.code.clone())
                })
                // A rule of status 0 lets its requests through.
                .filter(|(status, _)| *status != 0)
        };
        self.requests.lock().unwrap().push(Recorded {
            method: parts.method.clone(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body_len: body.len(),
            injected: injected.is_some(),
        });
        if let Some((status, code)) = injected {
            return Err(xml_error(status, &code, "injected fault"));
        }
        let streaming = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("STREAMING-"));
        // CompleteMultipartUpload's checksum is the object's, not the body's.
        let completing = parts.method == hyper::Method::POST && query.contains("uploadId=");
        for name in ["x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme"] {
            let Some(declared) = parts
                .headers
                .get(name)
                .filter(|_| !streaming && !completing)
            else {
                continue;
            };
            let actual = body_checksum(name, &body);
            if declared.as_bytes() != actual.as_bytes() {
                self.crc32c_bad
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Err(xml_error(
                    400,
                    "BadDigest",
                    &format!("{name} {declared:?} but the body has {actual}"),
                ));
            }
            self.crc32c_ok
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok((parts, body))
    }
}

/// The checksum header `name` (CRC32C or CRC64NVME) of `body`, computed by
/// s3s (not by rockpack's code).
pub fn body_checksum(name: &str, body: &[u8]) -> String {
    let mut h = s3s::checksum::ChecksumHasher::default();
    match name {
        "x-amz-checksum-crc32c" => h.crc32c = Some(Default::default()),
        "x-amz-checksum-crc64nvme" => h.crc64nvme = Some(Default::default()),
        _ => panic!("{name}: not a checksum the front checks"),
    }
    h.update(body);
    let sums = h.finalize();
    sums.checksum_crc32c
        .or(sums.checksum_crc64nvme)
        .unwrap_or_default()
}

/// An S3-style XML error answer.
fn xml_error(status: u16, code: &str, message: &str) -> hyper::Response<super::faults::ResBody> {
    use http_body_util::BodyExt;
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let body = http_body_util::Full::new(bytes::Bytes::from(xml))
        .map_err(|e: std::convert::Infallible| -> super::faults::BoxError { match e {} })
        .boxed();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(body)
        .unwrap()
}

/// The requests of each multipart upload being handled (by upload id).
/// An abort waits until those of its upload are done: the servers the
/// tests use would otherwise let a part that arrived just before the
/// abort outlive it (s3s-fs keeps its file), unlisted. S3 promises no
/// more than "abort again" (see `abort-uploads`, which passes again).
#[derive(Clone, Default)]
struct UploadsUnderWay(Arc<Mutex<HashMap<String, usize>>>);

impl UploadsUnderWay {
    /// For a request of an upload but its abort: counts it in while it
    /// lives. For an abort: waits until its upload's other requests are
    /// done.
    async fn handling(&self, parts: &hyper::http::request::Parts) -> Option<faults::InFlight> {
        let id = upload_id(&parts.uri)?;
        if parts.method == hyper::Method::DELETE {
            while self.0.lock().unwrap().get(&id).is_some_and(|n| *n > 0) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            return None;
        }
        Some(faults::InFlight::start(&self.0, &id).0)
    }
}

/// Serves `listener` on `runtime`: the fault layer, then the checking
/// front, then `inner`.
fn serve_checked<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    faults: Faults,
    recorder: Recorder,
    inner: F,
) where
    F: Fn(hyper::Request<bytes::Bytes>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<super::faults::ResBody>> + Send + 'static,
{
    let uploads = UploadsUnderWay::default();
    faults::serve(runtime, listener, faults, move |req| {
        let (recorder, inner, uploads) = (recorder.clone(), inner.clone(), uploads.clone());
        async move {
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let hold = req.extensions().get::<super::faults::Hold>().cloned();
            let mut answer = match recorder.check(req).await {
                // A request received whole is handled to its end even if
                // its client goes (killed): S3 does so.
                Ok((parts, body)) => tokio::spawn(async move {
                    let done = match hold {
                        Some(hold) => hold.released().await,
                        None => None,
                    };
                    let _under_way = uploads.handling(&parts).await;
                    let answer = inner(hyper::Request::from_parts(parts, body)).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    answer
                })
                .await
                .unwrap_or_else(|e| xml_error(500, "InternalError", &format!("{e}"))),
                Err(answer) => answer,
            };
            recorder.misreport(&method, &path, &mut answer);
            answer
        }
    });
}

impl S3Server {
    /// Like [`S3Server::start`], with a checking front between the fault
    /// layer and s3s-fs: every request is recorded with its headers, and
    /// declared CRC32C checksums are verified (see [`Recorder`]).
    pub fn start_checked(buckets: &[&str]) -> (S3Server, Recorder) {
        use http_body_util::BodyExt;
        let recorder = Recorder::default();
        let front = recorder.clone();
        let server = S3Server::start_with(
            buckets,
            false,
            |runtime, listener, faults, service, root| {
                let root = root.to_path_buf();
                serve_checked(runtime, listener, faults, front, move |req| {
                    let service = service.clone();
                    let listing =
                        list_multipart_uploads(&root, &req).or_else(|| no_such_upload(&root, &req));
                    async move {
                        if let Some(answer) = listing {
                            return answer;
                        }
                        let req = req.map(s3s::Body::from);
                        match service.call(req).await {
                            Ok(resp) => resp.map(|b| b.map_err(Into::into).boxed()),
                            Err(e) => xml_error(500, "InternalError", &format!("{e:?}")),
                        }
                    }
                })
            },
        );
        (server, recorder)
    }

    /// Multipart uploads s3s-fs still keeps (ListMultipartUploads, which
    /// the front answers from the same files, gives their keys); here: the
    /// names of its `.upload-{id}.json` upload
    /// records, `.upload_id-{id}.part-{n}` part files and
    /// `….upload-{id}.metadata.json` attribute files, sorted.
    pub fn pending_uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload_id-") || n.contains(".upload-"))
            .collect();
        names.sort();
        names
    }
}

/// The `uploadId` a request's query names.
fn upload_id(uri: &hyper::Uri) -> Option<String> {
    let query = uri.query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "uploadId")
        .map(|(_, v)| v.into_owned())
}

/// S3's answer to a request of an upload that is gone (completed or
/// aborted): `NoSuchUpload`, where s3s-fs says `AccessDenied`. `None` for
/// other requests.
fn no_such_upload(
    root: &Path,
    req: &hyper::Request<bytes::Bytes>,
) -> Option<hyper::Response<super::faults::ResBody>> {
    let id = upload_id(req.uri())?;
    let known = root.join(format!(".upload-{id}.json")).exists();
    (!known).then(|| xml_error(404, "NoSuchUpload", &format!("upload {id}")))
}

/// ListMultipartUploads (`GET /bucket?uploads`), which s3s-fs lacks,
/// answered from the files it keeps: an upload is its `.upload-{id}.json`
/// record (its time is when it started) and the
/// `.bucket-{b64}.object-{b64}.upload-{id}.metadata.json` file that names
/// its bucket and key. One page, the whole list; `None` for other requests.
fn list_multipart_uploads(
    root: &Path,
    req: &hyper::Request<bytes::Bytes>,
) -> Option<hyper::Response<super::faults::ResBody>> {
    use base64::Engine;
    use http_body_util::BodyExt;
    let query = req.uri().query().unwrap_or("");
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if req.method() != hyper::Method::GET
        || !params.iter().any(|(k, _)| k == "uploads")
        || params.iter().any(|(k, _)| k == "uploadId")
    {
        return None;
    }
    let bucket = req.uri().path().trim_matches('/').to_string();
    let prefix = params
        .iter()
        .find(|(k, _)| k == "prefix")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = format!(".bucket-{}.object-", b64.encode(&bucket));
    let mut uploads: Vec<(String, String, String)> = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&head)
            .and_then(|r| r.strip_suffix(".metadata.json"))
        else {
            continue;
        };
        let Some((key64, id)) = rest.split_once(".upload-") else {
            continue;
        };
        let Ok(record) = std::fs::metadata(root.join(format!(".upload-{id}.json"))) else {
            continue;
        };
        let key = String::from_utf8(b64.decode(key64).unwrap()).unwrap();
        if !key.starts_with(&prefix) {
            continue;
        }
        let secs = record
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let initiated = aws_sdk_s3::primitives::DateTime::from_secs(secs)
            .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
            .unwrap();
        uploads.push((key, id.to_string(), initiated));
    }
    uploads.sort();
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>{}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>",
        escape(&bucket),
        escape(&prefix)
    );
    for (key, id, initiated) in uploads {
        xml.push_str(&format!(
            "<Upload><Key>{}</Key><UploadId>{id}</UploadId><Initiated>{initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>",
            escape(&key)
        ));
    }
    xml.push_str("</ListMultipartUploadsResult>");
    let body = http_body_util::Full::new(bytes::Bytes::from(xml))
        .map_err(|e: std::convert::Infallible| -> super::faults::BoxError { match e {} })
        .boxed();
    Some(
        hyper::Response::builder()
            .status(200)
            .header("content-type", "application/xml")
            .body(body)
            .unwrap(),
    )
}

/// The fault layer and the checking front as a proxy to an S3 server that
/// runs elsewhere (moto): requests go to `upstream` unchanged (Host
/// included), answers come back unchanged.
pub struct S3Proxy {
    pub endpoint: String,
    pub upstream: String,
    pub faults: Faults,
    pub recorder: Recorder,
    runtime: tokio::runtime::Runtime,
}

impl S3Proxy {
    pub fn start(upstream: &str) -> S3Proxy {
        let (runtime, listener, addr) = faults::runtime_and_listener();
        let faults = Faults::default();
        let recorder = Recorder::default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let up = upstream.trim_end_matches('/').to_string();
        serve_checked(
            &runtime,
            listener,
            faults.clone(),
            recorder.clone(),
            move |req| {
                let (client, up) = (client.clone(), up.clone());
                async move { forward(&client, &up, req).await }
            },
        );
        S3Proxy {
            endpoint: format!("http://{addr}"),
            upstream: upstream.to_string(),
            faults,
            recorder,
            runtime,
        }
    }

    /// Runs a future on the proxy's runtime (for ad-hoc client calls).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

fn hop_by_hop(name: &hyper::header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    req: hyper::Request<bytes::Bytes>,
) -> hyper::Response<super::faults::ResBody> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut rb = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (name, value) in parts.headers.iter() {
        // reqwest sets the length from the body.
        if !hop_by_hop(name) && name != hyper::header::CONTENT_LENGTH {
            rb = rb.header(name, value);
        }
    }
    let resp = match rb.body(body).send().await {
        Ok(r) => r,
        Err(e) => return xml_error(502, "ProxyError", &format!("{e}")),
    };
    let mut out = hyper::Response::builder().status(resp.status().as_u16());
    for (name, value) in resp.headers().iter() {
        if !hop_by_hop(name) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return xml_error(502, "ProxyError", &format!("{e}")),
    };
    let body = http_body_util::Full::new(bytes)
        .map_err(|e: std::convert::Infallible| -> super::faults::BoxError { match e {} })
        .boxed();
    out.body(body).unwrap()
}
