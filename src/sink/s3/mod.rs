//! An S3 prefix: each tarball is one multipart upload at `{prefix}/{name}`.
//!
//! Each byte is sent once: a chunk an earlier-published tarball of the run
//! holds (its [`crate::sink::Origin`]) is not sent again but copied by the
//! server from that tarball once it is published (UploadPartCopy of a byte
//! range); [`assembly`] cuts each tarball into parts to send and parts to
//! copy within S3's part rules. A server that does not copy (asked once,
//! before the first upload; or `--no-server-copy`) gets every byte sent.
//!
//! Parts to send are lists of the same `Bytes` the pipeline hands every
//! tarball (a chunk that straddles a part boundary is split with a
//! zero-copy slice). They upload in the background, retried with backoff;
//! how many are in flight is bounded per tarball and over the whole sink,
//! so `write` waits only when that limit is reached and memory stays
//! bounded. Objects carry a full-object CRC64NVME checksum (composite
//! CRC32C where the server refuses it): combined from the CRCs each block
//! got on its compression thread, checked against what the server reports.
//!
//! `finish` uploads the last part and waits for all of them; `prepare`
//! waits for the tarballs it copies from and copies its ranges (an origin
//! is completed under its staging name and copied to an upload at its
//! final key); `publish` completes the upload at the final key, then puts
//! the `.sha256sum` sidecar next to it. `abort` stops the part uploads,
//! aborts the multipart uploads and deletes the keys it made where nothing
//! was; what the final burst replaced is put back from the set's journal
//! (`abort_rest`).
//!
//! The folder follows those jobs: [`options`] checks the options and turns
//! them into request values, [`writer`] is one tarball's upload (its state
//! machine), [`assembly`] cuts it into parts, [`part`] sizes the parts and
//! uploads one, [`copy`] copies one, [`commit`] keeps what the final
//! burst replaces (the set's journal and backups) and takes it back.

mod assembly;
mod commit;
mod copy;
mod options;
mod part;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
use bytes::Bytes;
use tokio::sync::{watch, OnceCell, Semaphore};

use super::{SetRecord, Sink, TarballWriter, UploadStats};
use crate::error::{Error, Kind, Result};
use crate::net::aws::{
    abort_started, error_text, is_transient, may_have_happened, request_error, s3_error, status,
    upload_id,
};
use crate::net::in_flight::InFlight;
use crate::net::keys::copy_source;
use crate::net::leftovers;
use crate::net::retry::Tries;
use crate::net::S3Prefix;
use crate::net::{with_retries, RequestError};
use crate::plan::TarballPlan;
pub use assembly::COPY_PIECE;
use options::Settings;
pub use options::{check_part_size, S3SinkOptions, DEFAULT_UPLOAD_BYTES};
pub(crate) use part::no_sdk_retries;
use part::Checksums;
pub use part::{base_part_size, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use writer::{Before, S3Writer};

/// Tarballs as multipart uploads below an S3 prefix.
pub struct S3Sink {
    shared: Arc<Shared>,
}

/// What every writer of one sink shares.
struct Shared {
    client: aws_sdk_s3::Client,
    at: S3Prefix,
    settings: Settings,
    /// KiB of parts uploading, over all tarballs.
    upload_kib: Arc<Semaphore>,
    /// Whether ranges of published tarballs are copied by the server: the
    /// option, until the server shows it does not copy.
    copies: AtomicBool,
    /// Asked once, before the first upload starts.
    probed: OnceCell<()>,
    /// The bucket was found (HeadBucket), once, before anything else.
    bucket_found: OnceCell<()>,
    /// Until the server refuses full-object CRC64NVME checksums.
    full_object: AtomicBool,
    /// Requests that start an upload or make an object, under way (an
    /// abort waits for them), and the uploads started and not yet ended.
    in_flight: InFlight,
    /// Short runs held beside parts that wait for them (`held_runs`).
    held: Arc<assembly::HeldPool>,
    /// Each tarball's publication, for the tarballs that copy from it.
    publications: Mutex<HashMap<usize, watch::Receiver<Publication>>>,
    /// Staging and temporary objects of the run, deleted once the set is
    /// sealed (a writer's abort deletes its own).
    leftovers: Mutex<Vec<String>>,
    /// The set the run makes (`begin`).
    set_id: std::sync::OnceLock<String>,
    /// What the final burst changes, as each writer finds it once prepared.
    changes: Mutex<commit::Changes>,
    /// The set's journal, from before it is written until the set is
    /// sealed or taken back.
    journal: Mutex<Option<commit::Written>>,
    /// Objects an abort could not delete.
    undeleted: AtomicU64,
    /// Whether leftovers of earlier runs are still swept.
    sweeping: leftovers::Sweeping,
    /// When the sink was made: uploads and temporaries of its tarballs
    /// from before are a killed run's, swept by `create`.
    since: std::time::SystemTime,
    stats: Stats,
}

/// Where a tarball stands, for the tarballs that copy from it.
#[derive(Clone, Debug)]
enum Publication {
    Pending,
    Done(Arc<Published>),
    Failed,
}

/// A tarball of the run, published: copies name it as their source.
#[derive(Debug)]
struct Published {
    key: String,
    url: String,
    /// Copies and read-backs are made only from this version of it.
    etag: Option<String>,
}

/// Bytes sent and copied, over the sink.
#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    copied: AtomicU64,
    read_back: AtomicU64,
    temp: AtomicU64,
    staged: AtomicU64,
    backed_up: AtomicU64,
    sent_parts: AtomicU64,
    copied_parts: AtomicU64,
    staged_parts: AtomicU64,
    temporaries: AtomicU64,
}

impl Stats {
    /// A part of `n` bytes sent.
    fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.sent_parts.fetch_add(1, Ordering::Relaxed);
    }
    /// A part of `n` bytes copied by the store.
    fn add_copied(&self, n: u64) {
        self.copied.fetch_add(n, Ordering::Relaxed);
        self.copied_parts.fetch_add(1, Ordering::Relaxed);
    }
    /// A part of `n` bytes copied from a staging object to a final name.
    fn add_staged(&self, n: u64) {
        self.staged.fetch_add(n, Ordering::Relaxed);
        self.staged_parts.fetch_add(1, Ordering::Relaxed);
    }
    fn add_backed_up(&self, n: u64) {
        self.backed_up.fetch_add(n, Ordering::Relaxed);
    }
    /// A temporary object of `n` bytes made.
    fn add_temp(&self, n: u64) {
        self.temp.fetch_add(n, Ordering::Relaxed);
        self.temporaries.fetch_add(1, Ordering::Relaxed);
    }
    fn add_read_back(&self, n: u64) {
        self.read_back.fetch_add(n, Ordering::Relaxed);
        self.add_sent(n);
    }
}

impl Shared {
    /// `key` is an object of the run to delete once the set is sealed.
    fn note_leftover(&self, key: &str) {
        self.leftovers
            .lock()
            .expect("leftovers")
            .push(key.to_string());
    }

    fn copies(&self) -> bool {
        self.copies.load(Ordering::Relaxed)
    }

    /// The server answered a copy with `answer`: every later part is sent.
    fn stop_copies(&self, answer: &str) {
        if self.copies.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "s3://{}/: the server does not copy parts ({answer}); sending their bytes instead",
                self.at.bucket
            );
        }
    }

    /// Asks the server whether it copies parts (UploadPartCopy), without
    /// creating anything: a copy into an upload that does not exist is
    /// refused as NoSuchUpload (or the like, 4xx) by a server that copies,
    /// and as NotImplemented (501) by one that does not. Only that answer
    /// turns copying off: a server error or no answer is retried like any
    /// request, and if it never clears, copying stays on (a copy the
    /// server then refuses falls back to sending, part by part).
    async fn probe(&self, key: &str) {
        let what = format!("UploadPartCopy probe {}", self.at.object_url(key));
        let answer = with_retries(&self.settings.retry, &what, || async {
            let sent = self
                .client
                .upload_part_copy()
                .bucket(&self.at.bucket)
                .key(key)
                .upload_id("rockpack-copy-probe")
                .part_number(1)
                .copy_source(copy_source(
                    &self.at.bucket,
                    &self.at.key(".rockpack-copy-probe"),
                ))
                .customize()
                .config_override(no_sdk_retries())
                .send()
                .await;
            match sent {
                Ok(_) => Ok(None),
                Err(e) if refuses_copies(&e) => Ok(Some(error_text(&e))),
                Err(e) if is_transient(&e) => Err(RequestError::Retry(error_text(&e))),
                // Any other refusal shows the request is understood.
                Err(_) => Ok(None),
            }
        })
        .await;
        match answer {
            Ok(Some(answer)) => self.stop_copies(&answer),
            Ok(None) => tracing::debug!(bucket = %self.at.bucket, "the server copies parts"),
            Err(e) => tracing::warn!(
                "{what}: {e}; copying stays on (a copy the server refuses is sent instead)"
            ),
        }
    }

    /// Fails, before anything is made, if the bucket does not exist; a
    /// role that may not ask (403) goes on.
    async fn find_bucket(&self) -> Result<()> {
        let what = format!("HeadBucket s3://{}/", self.at.bucket);
        let found = with_retries(&self.settings.retry, &what, || async {
            match self
                .client
                .head_bucket()
                .bucket(&self.at.bucket)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if status(&e) == Some(404) => Ok(false),
                Err(e) if is_transient(&e) => Err(RequestError::Retry(error_text(&e))),
                Err(_) => Ok(true),
            }
        })
        .await
        .map_err(|e| e.into_error(&what))?;
        if found {
            return Ok(());
        }
        Err(Error::failed(
            Kind::Remote,
            format!("{what}: NoSuchBucket: the bucket does not exist"),
        ))
    }

    /// Tarball `index` once published (an error if it never will be).
    async fn published(&self, index: usize, by: &str) -> Result<Arc<Published>> {
        let rx = self
            .publications
            .lock()
            .expect("publications")
            .get(&index)
            .cloned();
        let gone = || {
            Error::failed(
                Kind::Remote,
                format!("{by}: the tarball it copies from was not published"),
            )
        };
        let mut rx = rx.ok_or_else(gone)?;
        loop {
            match &*rx.borrow_and_update() {
                Publication::Done(p) => return Ok(p.clone()),
                Publication::Failed => return Err(gone()),
                Publication::Pending => {}
            }
            rx.changed().await.map_err(|_| gone())?;
        }
    }

    /// Starts the multipart upload of `key`: with a full-object CRC64NVME
    /// checksum, or composite CRC32C once the server has refused that.
    /// Transient failures are retried under the run's policy (each try is
    /// noted: an upload a failed try may have started is aborted too).
    async fn start_upload(
        &self,
        key: &str,
        url: &str,
        content_type: &str,
    ) -> Result<(String, Checksums)> {
        let mut tries = Tries::new(&self.settings.retry);
        loop {
            let full = self.full_object.load(Ordering::Relaxed);
            let set = &self.settings;
            let req = self
                .client
                .create_multipart_upload()
                .bucket(&self.at.bucket)
                .key(key)
                .content_type(content_type)
                .set_storage_class(set.storage_class.clone())
                .set_tagging(set.tagging.clone())
                .set_server_side_encryption(set.sse.clone())
                .set_ssekms_key_id(set.sse_kms_key_id.clone());
            let req = if full {
                req.checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                    .checksum_type(ChecksumType::FullObject)
            } else {
                req.checksum_algorithm(ChecksumAlgorithm::Crc32C)
            };
            let req = req.customize().config_override(no_sdk_retries()).send();
            // Its own task, which notes the upload: a signal that drops
            // this future after the server started it leaves it to abort.
            let sent = self
                .in_flight
                .start_upload(key, req, |o| o.upload_id())
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) if full && refuses_checksum(&e) => {
                    self.in_flight.refused(key);
                    if self.full_object.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            "{url}: the server refuses full-object CRC64NVME checksums ({}); using composite CRC32C",
                            error_text(&e)
                        );
                    }
                    continue;
                }
                Err(e) if is_transient(&e) => {
                    let what = format!("CreateMultipartUpload {url}");
                    tries
                        .again(&what, &error_text(&e))
                        .await
                        .map_err(|m| Error::failed(Kind::GaveUp, format!("{what}: {m}")))?;
                    continue;
                }
                Err(e) => {
                    // A clean refusal (no such bucket, access denied)
                    // started nothing: nothing to look for on abort.
                    if !may_have_happened(&e) {
                        self.in_flight.refused(key);
                    }
                    return Err(s3_error("CreateMultipartUpload", url, &e));
                }
            };
            let upload_id = upload_id(&out, url)?;
            let checksums = if full {
                Checksums::FullObject
            } else {
                Checksums::Composite
            };
            return Ok((upload_id, checksums));
        }
    }
}

impl Shared {
    /// Aborts the uploads started for keys `wanted` picks and not yet
    /// completed or aborted (see [`abort_started`]); what could not be
    /// aborted is logged (its parts stay until a lifecycle rule or
    /// `rockpack abort-uploads` removes them).
    async fn abort_started(&self, wanted: impl Fn(&str) -> bool) {
        let left = abort_started(
            &self.client,
            &self.at.bucket,
            &self.in_flight,
            REQUEST_GRACE,
            wanted,
        )
        .await;
        for e in left {
            tracing::warn!(
                "{e}; its parts stay until `rockpack abort-uploads {}` (or a lifecycle rule) removes them",
                self.at.url()
            );
        }
    }
}

/// An origin's staging key: its final key and this.
const STAGE_SUFFIX: &str = ".rockpack-stage";

impl Shared {
    /// Puts a small object of the run (a sidecar, the set's record) at
    /// `key`, with the run's storage class, tags and encryption, and its
    /// checksum as `checksums` asks; retried, and waited for by an abort.
    async fn put_small(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        checksums: Checksums,
    ) -> Result<()> {
        let url = self.at.object_url(key);
        let what = format!("PutObject {url}");
        let set = &self.settings;
        let checksum = checksums.text(crate::object_crc::ObjectCrc::of(&body));
        with_retries(&set.retry, &what, || {
            let put = self
                .client
                .put_object()
                .bucket(&self.at.bucket)
                .key(key)
                .content_type(content_type)
                .content_length(body.len() as i64);
            let put = match checksums {
                Checksums::FullObject => put.checksum_crc64_nvme(&checksum),
                Checksums::Composite => put.checksum_crc32_c(&checksum),
            };
            let put = put
                .set_storage_class(set.storage_class.clone())
                .set_tagging(set.tagging.clone())
                .set_server_side_encryption(set.sse.clone())
                .set_ssekms_key_id(set.sse_kms_key_id.clone())
                .body(ByteStream::from(body.clone()))
                .send();
            let run = self.in_flight.run(put);
            async move { run.await.map(|_| ()).map_err(|e| request_error(&e)) }
        })
        .await
        .map_err(|e| e.into_error(&what))
    }
}

/// An object a key holds, as HeadObject describes it.
#[derive(Clone, Debug)]
struct Existing {
    size: u64,
    /// Its checksum: CRC64NVME where it has one, else CRC32C.
    checksum: Option<String>,
    etag: Option<String>,
}

impl Shared {
    /// The object at `key`, if one is there.
    async fn existing(&self, key: &str) -> Result<Option<Existing>> {
        let url = self.at.object_url(key);
        let what = format!("HeadObject {url}");
        let head = with_retries(&self.settings.retry, &what, || async {
            let got = self
                .client
                .head_object()
                .bucket(&self.at.bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await;
            match got {
                Ok(h) => Ok(Some(h)),
                Err(e) if status(&e) == Some(404) => Ok(None),
                // A role that may only write: what is there is unknown,
                // taken as nothing (no same-bytes check; an abort may then
                // delete what the run completed there).
                Err(e) if status(&e) == Some(403) => Ok(None),
                Err(e) => Err(request_error(&e)),
            }
        })
        .await
        .map_err(|e| e.into_error(&what))?;
        Ok(head.map(|h| Existing {
            size: h.content_length().unwrap_or(0).max(0) as u64,
            checksum: h
                .checksum_crc64_nvme()
                .or(h.checksum_crc32_c())
                .map(str::to_string),
            etag: h.e_tag().map(str::to_string),
        }))
    }
}

/// How long an abort waits for requests under way.
const REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether an answer to UploadPartCopy says the server does not copy.
fn refuses_copies<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && (e.code() == Some("NotImplemented") || status(e) == Some(501))
}

/// Whether a refused CreateMultipartUpload refused its checksum settings
/// (rather than the request as a whole).
fn refuses_checksum<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && (matches!(
            e.code(),
            Some("InvalidRequest" | "InvalidArgument" | "NotImplemented")
        ) || status(e) == Some(501))
}

impl S3Sink {
    /// Checks the options; the sink is returned boxed, as `main` uses it.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        client: aws_sdk_s3::Client,
        at: S3Prefix,
        opts: S3SinkOptions,
    ) -> Result<Box<dyn crate::sink::Sink>> {
        if at.bucket.is_empty() {
            return Err(Error::Usage("the S3 destination names no bucket".into()));
        }
        let settings = Settings::new(opts)?;
        let upload_kib = kib(settings.upload_bytes) as usize;
        Ok(Box::new(S3Sink {
            shared: Arc::new(Shared {
                client,
                at,
                upload_kib: Arc::new(Semaphore::new(upload_kib)),
                copies: AtomicBool::new(settings.server_copy),
                probed: OnceCell::new(),
                bucket_found: OnceCell::new(),
                held: assembly::HeldPool::new(settings.held_runs),
                in_flight: InFlight::default(),
                full_object: AtomicBool::new(true),
                publications: Mutex::new(HashMap::new()),
                leftovers: Mutex::new(Vec::new()),
                set_id: std::sync::OnceLock::new(),
                changes: Mutex::new(commit::Changes::default()),
                journal: Mutex::new(None),
                undeleted: AtomicU64::new(0),
                sweeping: leftovers::Sweeping::default(),
                since: std::time::SystemTime::now(),
                stats: Stats::default(),
                settings,
            }),
        }))
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn describe(&self) -> String {
        self.shared.at.url()
    }

    async fn begin(&self, set_id: &str) -> Result<()> {
        self.shared.begin(set_id).await
    }

    async fn protect(&self) -> Result<()> {
        self.shared.protect().await
    }

    async fn create(
        &self,
        index: usize,
        tarball: &TarballPlan,
        origin: bool,
    ) -> Result<Box<dyn TarballWriter>> {
        let file_name = tarball.file_name.as_str();
        let shared = self.shared.clone();
        let final_key = shared.at.key(file_name);
        let url = shared.at.object_url(&final_key);
        shared
            .bucket_found
            .get_or_try_init(|| shared.find_bucket())
            .await?;
        if shared.copies() {
            shared.probed.get_or_init(|| shared.probe(&final_key)).await;
        }
        // An origin uploads to a staging key until the set is published
        // (where the server copies: otherwise nothing copies from it).
        let key = if origin && shared.copies() {
            format!("{final_key}{STAGE_SUFFIX}")
        } else {
            final_key.clone()
        };
        leftovers::sweep(
            &shared.client,
            &shared.at,
            &final_key,
            shared.since,
            &shared.settings.retry,
            &shared.sweeping,
        )
        .await;
        let before = Before {
            tarball: shared.existing(&final_key).await?,
            sidecar: match &tarball.sidecar {
                Some(name) => shared.existing(&shared.at.key(name)).await?.is_some(),
                None => false,
            },
        };
        let base_part = shared
            .settings
            .part_size
            .unwrap_or_else(|| base_part_size(tarball.size_bound()));
        let upload_url = shared.at.object_url(&key);
        let content_type = tarball.format.content_type();
        let (upload_id, checksums) = shared.start_upload(&key, &upload_url, content_type).await?;
        tracing::debug!(url = %upload_url, %upload_id, base_part, ?checksums, origin, "multipart upload started");
        let (tx, rx) = watch::channel(Publication::Pending);
        shared
            .publications
            .lock()
            .expect("publications")
            .insert(index, rx);
        Ok(Box::new(S3Writer::new(
            shared,
            file_name.to_string(),
            tarball.sidecar.clone(),
            (key, final_key),
            before,
            content_type,
            url,
            upload_id,
            base_part,
            checksums,
            tx,
        )))
    }

    /// Puts the set's record beside it, then deletes the run's journal,
    /// backups, staging and temporary objects (one that cannot be deleted
    /// is left to the next run of the same pack, or `rockpack
    /// abort-uploads`).
    async fn seal(&self, record: &SetRecord) -> Result<()> {
        let s = &self.shared;
        let key = s.at.key(&record.file_name());
        let body = Bytes::from(
            serde_json::to_vec_pretty(record)
                .map_err(|e| Error::internal(format!("the set record: {e}")))?,
        );
        let checksums = if s.full_object.load(Ordering::Relaxed) {
            Checksums::FullObject
        } else {
            Checksums::Composite
        };
        s.put_small(&key, body, "application/json", checksums)
            .await?;
        s.forget().await;
        // An upload a start whose answer was lost may have begun beside the
        // one the retry got (see `InFlight`): every other upload is ended.
        s.abort_started(|_| true).await;
        let leftovers = std::mem::take(&mut *s.leftovers.lock().expect("leftovers"));
        leftovers::delete(&s.client, &s.at, &leftovers).await;
        Ok(())
    }

    fn upload_stats(&self) -> Option<UploadStats> {
        let s = &self.shared.stats;
        Some(UploadStats {
            server_copy: self.shared.copies(),
            sent_bytes: s.sent.load(Ordering::Relaxed),
            copied_bytes: s.copied.load(Ordering::Relaxed),
            read_back_bytes: s.read_back.load(Ordering::Relaxed),
            temporary_bytes: s.temp.load(Ordering::Relaxed),
            staged_bytes: s.staged.load(Ordering::Relaxed),
            backed_up_bytes: s.backed_up.load(Ordering::Relaxed),
            sent_parts: s.sent_parts.load(Ordering::Relaxed),
            copied_parts: s.copied_parts.load(Ordering::Relaxed),
            staged_parts: s.staged_parts.load(Ordering::Relaxed),
            temporary_objects: s.temporaries.load(Ordering::Relaxed),
        })
    }

    /// An upload whose tarball never got a writer (its `create` was cut
    /// short): every writer has taken its own. Then what the final burst
    /// changed is taken back from the set's journal, and the sink says
    /// what the failed run leaves under the prefix.
    async fn abort_rest(&self) {
        let s = &self.shared;
        s.abort_started(|_| true).await;
        let taken_back = s.take_back().await;
        let undeleted = s.undeleted.load(Ordering::Relaxed);
        if taken_back == Some(false) {
            tracing::warn!(
                "{}: the run stopped while publishing and not all of it could be taken back (see above)",
                s.at.url()
            );
        } else if undeleted > 0 {
            tracing::warn!(
                "{}: {undeleted} object(s) of the run could not be deleted (see above); `rockpack abort-uploads {}` removes them",
                s.at.url(),
                s.at.url()
            );
        } else {
            tracing::warn!(
                "{}: every object there is as it was before the run",
                s.at.url()
            );
        }
    }
}

/// Upload allowance is counted in KiB (semaphore permits are u32).
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(crate::units::KIB).clamp(1, u32::MAX as u64) as u32
}
