//! An in-process S3-compatible server for tests: s3s-fs on 127.0.0.1 with
//! fixed credentials, behind the fault-injection layer. It runs on its own
//! thread and runtime, so tests stay plain `#[test]` functions that run the
//! rockpack binary as a child process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

use super::faults::Faults;

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
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let faults = Faults::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let fs = s3s_fs::FileSystem::new(&root).unwrap();
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let f = faults.clone();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, faults) = (service.clone(), f.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (service, faults) = (service.clone(), faults.clone());
                        async move {
                            faults
                                .handle(req, |req| async move {
                                    match hyper::service::Service::call(&service, req).await {
                                        Ok(resp) => resp,
                                        Err(e) => hyper::Response::builder()
                                            .status(500)
                                            .body(s3s::Body::from(format!("{e:?}")))
                                            .unwrap(),
                                    }
                                })
                                .await
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
                });
            }
        });
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
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
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
        let creds =
            aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(REGION))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Runs a future on the server's runtime (for ad-hoc client calls).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
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
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let faults = Faults::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let fs = s3s_fs::FileSystem::new(&root).unwrap();
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        b.set_access(PublicRead);
        let service = b.build();
        let f = faults.clone();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, faults) = (service.clone(), f.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (service, faults) = (service.clone(), faults.clone());
                        async move {
                            faults
                                .handle(req, |req| async move {
                                    match hyper::service::Service::call(&service, req).await {
                                        Ok(resp) => resp,
                                        Err(e) => hyper::Response::builder()
                                            .status(500)
                                            .body(s3s::Body::from(format!("{e:?}")))
                                            .unwrap(),
                                    }
                                })
                                .await
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            addr,
            faults,
            root,
            _dir: dir,
            runtime,
        }
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
