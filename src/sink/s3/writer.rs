//! One tarball's multipart upload, as a state machine: writing (chunks
//! gathered into parts, full parts handed to [`super::part`]), finished
//! (every part uploaded), published (completed, then its sidecar put), or
//! aborted (nothing of it left).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::task::{JoinError, JoinSet};

use super::part::{capacity, checksum_text, crc32c, part_size, PartJob, MAX_PARTS};
use super::{kib, s3_error, Shared};
use crate::error::{Error, Kind, Result};
use crate::sink::{sidecar_text, TarballWriter};

/// Parts uploading at once for one tarball, so that one tarball cannot
/// hold every upload slot.
const PARTS_PER_TARBALL: usize = 4;
const SIDECAR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Writing,
    Finished,
    Published,
    Aborted,
}

/// One tarball being uploaded.
pub(super) struct S3Writer {
    shared: Arc<Shared>,
    file_name: String,
    /// The sidecar's file name, if the tarball has one.
    sidecar: Option<String>,
    key: String,
    /// `s3://bucket/key`, for messages and the summary.
    url: String,
    /// Until the upload is completed or aborted.
    upload_id: Option<String>,
    base_part: u64,
    /// The part being filled.
    buf: Vec<Bytes>,
    buf_len: u64,
    /// The number of the part being filled.
    next_part: u64,
    bytes: u64,
    /// Parts uploading.
    tasks: JoinSet<Result<CompletedPart>>,
    /// Parts uploaded.
    parts: Vec<CompletedPart>,
    /// The first failure, returned again by every later call.
    failed: Option<(Kind, String)>,
    state: State,
    /// Keys made visible (tarball, sidecar), deleted again on abort.
    published: Vec<String>,
}

impl S3Writer {
    /// The writer of a multipart upload just started, its first part
    /// `base_part` bytes.
    pub(super) fn new(
        shared: Arc<Shared>,
        file_name: String,
        sidecar: Option<String>,
        key: String,
        url: String,
        upload_id: String,
        base_part: u64,
    ) -> S3Writer {
        S3Writer {
            shared,
            file_name,
            sidecar,
            key,
            url,
            upload_id: Some(upload_id),
            base_part,
            buf: Vec::new(),
            buf_len: 0,
            next_part: 1,
            bytes: 0,
            tasks: JoinSet::new(),
            parts: Vec::new(),
            failed: None,
            state: State::Writing,
            published: Vec::new(),
        }
    }

    fn check(&self, call: &str, want: State) -> Result<()> {
        if let Some(f) = &self.failed {
            return Err(Error::failed(f.0, f.1.clone()));
        }
        if self.state != want {
            return Err(Error::internal(format!(
                "{}: {call} called in state {:?}",
                self.url, self.state
            )));
        }
        Ok(())
    }

    fn current_part_size(&self) -> u64 {
        part_size(self.base_part, self.next_part)
    }

    /// Takes the result of one part task.
    fn record(&mut self, done: Result<Result<CompletedPart>, JoinError>) -> Result<()> {
        let err = match done {
            Ok(Ok(part)) => {
                self.parts.push(part);
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(e) => Error::internal(format!(
                "UploadPart {}: the upload task failed: {e}",
                self.url
            )),
        };
        self.failed = Some((err.kind(), err.to_string()));
        Err(err)
    }

    /// Takes the results of parts already done, without waiting.
    fn reap(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            self.record(done)?;
        }
        Ok(())
    }

    /// Uploads the buffered chunks as the next part, in the background,
    /// once a slot is free.
    async fn start_part(&mut self) -> Result<()> {
        let number = self.next_part;
        while self.tasks.len() >= PARTS_PER_TARBALL {
            let done = self.tasks.join_next().await.expect("tasks is not empty");
            self.record(done)?;
        }
        // Waiting here leaves the buffer in place, so this is cancel-safe.
        // A part larger than the whole allowance waits for all of it.
        let need = kib(self.buf_len).min(kib(self.shared.settings.upload_bytes));
        let permit = self
            .shared
            .upload_kib
            .clone()
            .acquire_many_owned(need)
            .await
            .expect("the semaphore is never closed");
        let job = PartJob {
            client: self.shared.client.clone(),
            bucket: self.shared.bucket.clone(),
            key: self.key.clone(),
            url: self.url.clone(),
            upload_id: self.upload_id.clone().expect("upload in progress"),
            number: number as i32,
            chunks: std::mem::take(&mut self.buf).into(),
            len: std::mem::replace(&mut self.buf_len, 0),
        };
        self.next_part += 1;
        self.tasks.spawn(async move {
            let _permit = permit;
            job.run().await
        });
        Ok(())
    }
}

#[async_trait]
impl TarballWriter for S3Writer {
    async fn write(&mut self, mut chunk: Bytes) -> Result<()> {
        self.check("write", State::Writing)?;
        self.reap()?;
        self.bytes += chunk.len() as u64;
        while !chunk.is_empty() {
            if self.next_part > MAX_PARTS {
                let e = Error::failed(
                    Kind::TooLarge,
                    format!(
                        "UploadPart {}: the tarball exceeds {} bytes, the most {MAX_PARTS} parts hold",
                        self.url,
                        capacity(self.base_part)
                    ),
                );
                self.failed = Some((e.kind(), e.to_string()));
                return Err(e);
            }
            let room =
                usize::try_from(self.current_part_size() - self.buf_len).unwrap_or(usize::MAX);
            if chunk.len() < room {
                self.buf_len += chunk.len() as u64;
                self.buf.push(chunk);
                return Ok(());
            }
            // Zero-copy: both halves share the chunk's memory.
            let head = chunk.split_to(room);
            self.buf_len += head.len() as u64;
            self.buf.push(head);
            self.start_part().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        self.check("finish", State::Writing)?;
        self.reap()?;
        // S3 needs at least one part, even for an empty object.
        if !self.buf.is_empty() || self.next_part == 1 {
            self.start_part().await?;
        }
        while let Some(done) = self.tasks.join_next().await {
            self.record(done)?;
        }
        self.parts.sort_by_key(|p| p.part_number());
        self.state = State::Finished;
        tracing::debug!(url = %self.url, parts = self.parts.len(), bytes = self.bytes, "all parts uploaded");
        Ok(())
    }

    async fn publish(&mut self, sha256_hex: &str) -> Result<()> {
        self.check("publish", State::Finished)?;
        let s = self.shared.clone();
        let upload_id = self.upload_id.clone().expect("upload in progress");
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(self.parts.clone()))
            .build();
        let done = s
            .client
            .complete_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(parts)
            .send()
            .await;
        if let Err(e) = done {
            if may_have_happened(&e) {
                // The object may exist now: abort deletes it too.
                self.published.push(self.key.clone());
            }
            return Err(s3_error("CompleteMultipartUpload", &self.url, &e));
        }
        self.upload_id = None;
        self.published.push(self.key.clone());

        let Some(sidecar) = &self.sidecar else {
            self.state = State::Published;
            return Ok(());
        };
        let sidecar_key = s.key(sidecar);
        let text = Bytes::from(sidecar_text(sha256_hex, &self.file_name));
        let set = &s.settings;
        let put = s
            .client
            .put_object()
            .bucket(&s.bucket)
            .key(&sidecar_key)
            .content_type(SIDECAR_CONTENT_TYPE)
            .content_length(text.len() as i64)
            .checksum_crc32_c(checksum_text(crc32c(&text)))
            .set_storage_class(set.storage_class.clone())
            .set_tagging(set.tagging.clone())
            .set_server_side_encryption(set.sse.clone())
            .set_ssekms_key_id(set.sse_kms_key_id.clone())
            .body(ByteStream::from(text))
            .send()
            .await;
        if let Err(e) = put {
            if may_have_happened(&e) {
                self.published.push(sidecar_key.clone());
            }
            return Err(s3_error("PutObject", &s.url(&sidecar_key), &e));
        }
        self.published.push(sidecar_key);
        self.state = State::Published;
        Ok(())
    }

    async fn abort(&mut self) {
        self.state = State::Aborted;
        self.buf.clear();
        self.buf_len = 0;
        // Stop every part upload first, so none lands after the abort.
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let s = self.shared.clone();
        if let Some(upload_id) = self.upload_id.take() {
            let r = s
                .client
                .abort_multipart_upload()
                .bucket(&s.bucket)
                .key(&self.key)
                .upload_id(&upload_id)
                .send()
                .await;
            match r {
                Ok(_) => tracing::debug!(url = %self.url, "multipart upload aborted"),
                Err(e) if e.code() == Some("NoSuchUpload") => {}
                Err(e) => tracing::warn!(
                    "{} (upload id {upload_id}); the parts stay until a lifecycle rule removes them",
                    s3_error("AbortMultipartUpload", &self.url, &e)
                ),
            }
        }
        for key in std::mem::take(&mut self.published).into_iter().rev() {
            if let Err(e) = s
                .client
                .delete_object()
                .bucket(&s.bucket)
                .key(&key)
                .send()
                .await
            {
                tracing::warn!("{}", s3_error("DeleteObject", &s.url(&key), &e));
            }
        }
    }

    fn location(&self) -> String {
        self.url.clone()
    }
}

/// Whether a failed request may still have taken effect: no clean answer
/// came back, or (after the SDK's own retries) the upload is gone, which an
/// earlier try that completed it explains.
fn may_have_happened<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(_) => e.code() == Some("NoSuchUpload"),
        _ => true,
    }
}
