//! What every tarball writer of an S3 sink shares: the client and
//! prefix, the upload allowance, whether the server copies and takes
//! full-object checksums, each tarball's publication, the run's leftovers
//! and the set's journal; and the requests they share (finding the
//! bucket, asking once whether it copies, starting an upload, putting a
//! small object, looking at what a key holds).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
use bytes::Bytes;
use tokio::sync::{watch, OnceCell, Semaphore};

use super::options::Settings;
use super::part::{no_sdk_retries, Checksums};
use super::{assembly, commit};
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

/// What every writer of one sink shares.
pub(super) struct Shared {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) at: S3Prefix,
    pub(super) settings: Settings,
    /// KiB of parts uploading, over all tarballs.
    pub(super) upload_kib: Arc<Semaphore>,
    /// Whether ranges of published tarballs are copied by the server: the
    /// option, until the server shows it does not copy.
    pub(super) copies: AtomicBool,
    /// Asked once, before the first upload starts.
    pub(super) probed: OnceCell<()>,
    /// The bucket was found (HeadBucket), once, before anything else.
    pub(super) bucket_found: OnceCell<()>,
    /// Until the server refuses full-object CRC64NVME checksums.
    pub(super) full_object: AtomicBool,
    /// Requests that start an upload or make an object, under way (an
    /// abort waits for them), and the uploads started and not yet ended.
    pub(super) in_flight: InFlight,
    /// Short runs held beside parts that wait for them (`held_runs`).
    pub(super) held: Arc<assembly::HeldPool>,
    /// Each tarball's publication, for the tarballs that copy from it.
    pub(super) publications: Mutex<HashMap<usize, watch::Receiver<Publication>>>,
    /// Staging and temporary objects of the run, deleted once the set is
    /// sealed (a writer's abort deletes its own).
    pub(super) leftovers: Mutex<Vec<String>>,
    /// The set the run makes (`begin`).
    pub(super) set_id: std::sync::OnceLock<String>,
    /// What the final burst changes, as each writer finds it once prepared.
    pub(super) changes: Mutex<commit::Changes>,
    /// The set's journal, from before it is written until the set is
    /// sealed or taken back.
    pub(super) journal: Mutex<Option<commit::Written>>,
    /// Objects an abort could not delete.
    pub(super) undeleted: AtomicU64,
    /// Whether leftovers of earlier runs are still swept.
    pub(super) sweeping: leftovers::Sweeping,
    /// When the sink was made: uploads and temporaries of its tarballs
    /// from before are a killed run's, swept by `create`.
    pub(super) since: std::time::SystemTime,
    pub(super) stats: Stats,
}

/// Where a tarball stands, for the tarballs that copy from it.
#[derive(Clone, Debug)]
pub(super) enum Publication {
    Pending,
    Done(Arc<Published>),
    Failed,
}

/// A tarball of the run, published: copies name it as their source.
#[derive(Debug)]
pub(super) struct Published {
    pub(super) key: String,
    pub(super) url: String,
    /// Copies and read-backs are made only from this version of it.
    pub(super) etag: Option<String>,
}

/// Bytes sent and copied, over the sink.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) sent: AtomicU64,
    pub(super) copied: AtomicU64,
    pub(super) read_back: AtomicU64,
    pub(super) temp: AtomicU64,
    pub(super) staged: AtomicU64,
    pub(super) backed_up: AtomicU64,
    pub(super) sent_parts: AtomicU64,
    pub(super) copied_parts: AtomicU64,
    pub(super) staged_parts: AtomicU64,
    pub(super) temporaries: AtomicU64,
}

impl Stats {
    /// A part of `n` bytes sent.
    pub(super) fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.sent_parts.fetch_add(1, Ordering::Relaxed);
    }
    /// A part of `n` bytes copied by the store.
    pub(super) fn add_copied(&self, n: u64) {
        self.copied.fetch_add(n, Ordering::Relaxed);
        self.copied_parts.fetch_add(1, Ordering::Relaxed);
    }
    /// A part of `n` bytes copied from a staging object to a final name.
    pub(super) fn add_staged(&self, n: u64) {
        self.staged.fetch_add(n, Ordering::Relaxed);
        self.staged_parts.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn add_backed_up(&self, n: u64) {
        self.backed_up.fetch_add(n, Ordering::Relaxed);
    }
    /// A temporary object of `n` bytes made.
    pub(super) fn add_temp(&self, n: u64) {
        self.temp.fetch_add(n, Ordering::Relaxed);
        self.temporaries.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn add_read_back(&self, n: u64) {
        self.read_back.fetch_add(n, Ordering::Relaxed);
        self.add_sent(n);
    }
}

impl Shared {
    /// `key` is an object of the run to delete once the set is sealed.
    pub(super) fn note_leftover(&self, key: &str) {
        self.leftovers
            .lock()
            .expect("leftovers")
            .push(key.to_string());
    }

    pub(super) fn copies(&self) -> bool {
        self.copies.load(Ordering::Relaxed)
    }

    /// The server answered a copy with `answer`: every later part is sent.
    pub(super) fn stop_copies(&self, answer: &str) {
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
    pub(super) async fn probe(&self, key: &str) {
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
    pub(super) async fn find_bucket(&self) -> Result<()> {
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
    pub(super) async fn published(&self, index: usize, by: &str) -> Result<Arc<Published>> {
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
    pub(super) async fn start_upload(
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
    pub(super) async fn abort_started(&self, wanted: impl Fn(&str) -> bool) {
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
pub(super) const STAGE_SUFFIX: &str = ".rockpack-stage";

impl Shared {
    /// Puts a small object of the run (a sidecar, the set's record) at
    /// `key`, with the run's storage class, tags and encryption, and its
    /// checksum as `checksums` asks; retried, and waited for by an abort.
    pub(super) async fn put_small(
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
pub(super) struct Existing {
    pub(super) size: u64,
    /// Its checksum: CRC64NVME where it has one, else CRC32C.
    pub(super) checksum: Option<String>,
    pub(super) etag: Option<String>,
}

impl Shared {
    /// The object at `key`, if one is there.
    pub(super) async fn existing(&self, key: &str) -> Result<Option<Existing>> {
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
pub(super) const REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether an answer to UploadPartCopy says the server does not copy.
pub(super) fn refuses_copies<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && (e.code() == Some("NotImplemented") || status(e) == Some(501))
}

/// Whether a refused CreateMultipartUpload refused its checksum settings
/// (rather than the request as a whole).
pub(super) fn refuses_checksum<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && (matches!(
            e.code(),
            Some("InvalidRequest" | "InvalidArgument" | "NotImplemented")
        ) || status(e) == Some(501))
}
