//! One test's S3 server and bucket, for the test files that talk to S3
//! through the rockpack binary (tests/s3_sink.rs, tests/s3_store.rs):
//! s3s-fs behind the checking front by default, or with
//! `ROCKPACK_TEST_S3_ENDPOINT` set an external server (moto) through the
//! same front as a proxy, each test in a bucket of its own.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::faults::{Faults, Rule};
use super::s3_server::{child_env, s3_client, Recorded, Recorder, S3Proxy, S3Server};

/// The prefix the tests pack below.
pub const PREFIX: &str = "some/prefix";
const EXTERNAL: &str = "ROCKPACK_TEST_S3_ENDPOINT";

pub enum Server {
    Local(S3Server),
    External {
        proxy: S3Proxy,
        /// Talks to the server directly, not through the fault layer.
        client: aws_sdk_s3::Client,
        access_key: String,
        secret_key: String,
        region: String,
    },
}

/// The S3 server of one test, and its bucket.
pub struct Backend {
    pub server: Server,
    pub recorder: Recorder,
    pub bucket: String,
    pub test: &'static str,
}

fn external_var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

impl Backend {
    pub fn new(test: &'static str) -> Backend {
        match std::env::var(EXTERNAL).ok().filter(|e| !e.is_empty()) {
            None => {
                let (server, recorder) = S3Server::start_checked(&["dist"]);
                Backend {
                    server: Server::Local(server),
                    recorder,
                    bucket: "dist".into(),
                    test,
                }
            }
            Some(upstream) => {
                let access_key = external_var("ROCKPACK_TEST_S3_ACCESS_KEY_ID", "testing");
                let secret_key = external_var("ROCKPACK_TEST_S3_SECRET_ACCESS_KEY", "testing");
                let region = external_var("ROCKPACK_TEST_S3_REGION", "us-east-1");
                let proxy = S3Proxy::start(&upstream);
                let client = s3_client(&upstream, &access_key, &secret_key, &region);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let mut bucket = format!(
                    "rp-{}-{}-{nanos:x}",
                    std::process::id(),
                    test.replace('_', "-")
                );
                bucket.truncate(63);
                let bucket = bucket.trim_end_matches('-').to_string();
                proxy
                    .block_on(client.create_bucket().bucket(&bucket).send())
                    .unwrap_or_else(|e| panic!("creating bucket {bucket} at {upstream}: {e:?}"));
                let recorder = proxy.recorder.clone();
                Backend {
                    server: Server::External {
                        proxy,
                        client,
                        access_key,
                        secret_key,
                        region,
                    },
                    recorder,
                    bucket,
                    test,
                }
            }
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.server, Server::Local(_))
    }

    /// Where rockpack sends its requests (through the fault layer).
    pub fn endpoint(&self) -> &str {
        match &self.server {
            Server::Local(s) => &s.endpoint,
            Server::External { proxy, .. } => &proxy.endpoint,
        }
    }

    pub fn faults(&self) -> &Faults {
        match &self.server {
            Server::Local(s) => &s.faults,
            Server::External { proxy, .. } => &proxy.faults,
        }
    }

    /// Environment of a rockpack child.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match &self.server {
            Server::Local(s) => s.env(),
            Server::External {
                access_key,
                secret_key,
                region,
                ..
            } => child_env(access_key, secret_key, region),
        }
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        match &self.server {
            Server::Local(s) => s.client(),
            Server::External { client, .. } => client.clone(),
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.server {
            Server::Local(s) => s.block_on(f),
            Server::External { proxy, .. } => proxy.block_on(f),
        }
    }

    pub fn dest(&self) -> String {
        format!("s3://{}/{PREFIX}/", self.bucket)
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Says, where CI logs show it, that a check did not run here.
    pub fn skip(&self, what: &str) {
        let server = if self.is_local() {
            "s3s-fs"
        } else {
            "the external server"
        };
        let _ = writeln!(
            std::io::stderr(),
            "{}: skipped with {server}: {what}",
            self.test
        );
    }

    /// Every key under `prefix/`, sorted.
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        let client = self.client();
        let mut keys: Vec<String> = self.block_on(async {
            let mut keys = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{prefix}/"))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for o in page.expect("ListObjectsV2").contents() {
                    keys.push(o.key().unwrap().to_string());
                }
            }
            keys
        });
        keys.sort();
        keys
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let client = self.client();
        self.block_on(async {
            let o = client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
            o.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    pub fn put(&self, key: &str, data: Vec<u8>) {
        let client = self.client();
        self.block_on(
            client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(data.into())
                .send(),
        )
        .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }

    pub fn delete(&self, key: &str) {
        let client = self.client();
        self.block_on(client.delete_object().bucket(&self.bucket).key(key).send())
            .unwrap_or_else(|e| panic!("DeleteObject {key}: {e:?}"));
    }

    pub fn head(&self, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        let client = self.client();
        self.block_on(client.head_object().bucket(&self.bucket).key(key).send())
            .unwrap_or_else(|e| panic!("HeadObject {key}: {e:?}"))
    }

    /// Multipart uploads the server still has in the bucket: from
    /// ListMultipartUploads where the server has it, and for s3s-fs (which
    /// has not) from the upload files it keeps.
    pub fn pending_uploads(&self) -> Vec<String> {
        let client = self.client();
        let listed = self.block_on(client.list_multipart_uploads().bucket(&self.bucket).send());
        let mut out = Vec::new();
        match listed {
            Ok(r) => out.extend(r.uploads().iter().map(|u| {
                format!(
                    "{} (upload {})",
                    u.key().unwrap_or_default(),
                    u.upload_id().unwrap_or_default()
                )
            })),
            Err(e) if self.is_local() => {
                // s3s-fs answers NotImplemented; its files tell instead.
                let _ = e;
            }
            Err(e) => panic!("ListMultipartUploads: {e:?}"),
        }
        if let Server::Local(s) = &self.server {
            out.extend(s.pending_uploads());
        }
        out
    }

    /// Nothing under the prefix, no multipart upload pending.
    pub fn assert_untouched(&self) {
        if !self.is_local() {
            self.skip("s3s-fs's upload files (ListMultipartUploads is checked instead)");
        }
        let keys = self.keys_under(PREFIX);
        assert!(keys.is_empty(), "objects left under {PREFIX}/: {keys:?}");
        let pending = self.pending_uploads();
        assert!(pending.is_empty(), "multipart uploads left: {pending:?}");
    }

    /// UploadPart requests (parts sent, not copied) the server took (not
    /// those the fault layer answered).
    pub fn upload_parts(&self) -> Vec<Recorded> {
        self.recorder
            .matching("PUT", "partNumber=")
            .into_iter()
            .filter(|r| !r.injected && r.header("x-amz-copy-source").is_none())
            .collect()
    }

    /// UploadPartCopy requests the server took (the copy probe included).
    pub fn copy_parts(&self) -> Vec<Recorded> {
        self.recorder
            .matching("PUT", "partNumber=")
            .into_iter()
            .filter(|r| !r.injected && r.header("x-amz-copy-source").is_some())
            .collect()
    }
}

/// The rockpack binary with `args`, in an environment that names no AWS
/// profile, endpoint or region of the machine's.
pub fn rockpack_command(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rockpack"));
    c.args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_DEFAULT_REGION")
        .stdin(Stdio::null());
    c
}

impl Backend {
    /// `rockpack ARGS --endpoint-url …` with this server's credentials.
    pub fn rockpack(&self, args: &[&str]) -> Command {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--endpoint-url".to_string(), self.endpoint().to_string()]);
        let mut c = rockpack_command(&args);
        c.envs(self.env());
        c
    }
}

impl Backend {
    /// Runs `cmd` with `rule` in the fault layer; once the rule has fired
    /// (`what`: the request it holds up; within `limit`) and `settle` has
    /// passed, sends SIGTERM: rockpack must stop soon, saying so
    /// (`Running::interrupt`). Clears the rule after.
    pub fn sigterm_once_fired(
        &self,
        cmd: &mut Command,
        rule: Rule,
        (what, limit): (&str, Duration),
        settle: Duration,
    ) {
        // Rules of earlier runs of the test may have fired already.
        let before = self.faults().fired();
        self.faults().add(rule);
        let mut run = crate::common::Running::start(cmd);
        let faults = self.faults().clone();
        run.wait_until(what, limit, || faults.fired() > before);
        std::thread::sleep(settle);
        run.interrupt("TERM", "SIGTERM");
        self.faults().clear();
    }
}
