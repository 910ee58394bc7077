//! An S3 prefix: each tarball is one multipart upload at `{prefix}/{name}`.
//!
//! Chunks are gathered into parts without copying: a part is a list of the
//! same `Bytes` the pipeline hands every tarball, a chunk that straddles a
//! part boundary being split with a zero-copy slice. Full parts upload in
//! the background, each with its CRC32C, retried with backoff; how many are
//! in flight is bounded per tarball and over the whole sink, so `write`
//! waits only when that limit is reached and memory stays bounded.
//!
//! `finish` uploads the last part and waits for all of them; the upload is
//! completed only by `publish`, then the `.sha256sum` sidecar is put next
//! to it. `abort` stops the part uploads, aborts the multipart upload and
//! deletes anything already published: afterwards neither a part nor an
//! object of this tarball is left.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};

use super::{sidecar_text, Sink, TarballWriter};
use crate::error::{Error, Result};
use crate::net::aws::{error_text, is_transient};
use crate::net::keys::encode_component;
use crate::net::{with_retries, RequestError, RetryPolicy};

#[derive(Clone, Debug, Default)]
pub struct S3SinkOptions {
    /// Fixed part size; otherwise chosen from the tarball's size bound.
    pub part_size: Option<u64>,
    /// Bytes of parts uploading at once, over all tarballs (0: the
    /// default); a part larger than this uploads alone.
    pub upload_bytes: u64,
    pub storage_class: Option<String>,
    /// `key=value` object tags.
    pub tags: Vec<(String, String)>,
    /// `AES256` or `aws:kms`.
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
    pub content_type: String,
}

const MIB: u64 = 1 << 20;
/// S3's smallest part (except the last one).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Used when `upload_bytes` is 0: eight of the smallest parts.
pub const DEFAULT_UPLOAD_BYTES: u64 = 8 * MIN_PART_SIZE;
/// Parts uploading at once for one tarball, so that one tarball cannot
/// hold every upload slot.
const PARTS_PER_TARBALL: usize = 4;
/// The size bound is spread over this many parts; the rest are a reserve
/// for a bound that proves wrong (see [`part_size`]).
const PLANNED_PARTS: u64 = 8_000;
/// Past `PLANNED_PARTS`, the part size doubles every this many parts.
const GROWTH_STEP: u64 = 100;
/// Tries of one part before the upload fails.
const PART_TRIES: u32 = 5;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// One try of a part gets this long, plus a second per MiB.
const PART_TIMEOUT_BASE: Duration = Duration::from_secs(60);
const SIDECAR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The size of the first parts of a tarball whose size is at most
/// `size_bound`: at least 5 MiB, a whole number of MiB, and large enough that
/// `PLANNED_PARTS` (8,000) parts hold the bound, so 10,000 always suffice.
pub fn base_part_size(size_bound: u64) -> u64 {
    size_bound
        .div_ceil(PLANNED_PARTS)
        .div_ceil(MIB)
        .saturating_mul(MIB)
        .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// The size of part `number` (1-based) of an upload whose first parts are
/// `base` bytes. Parts past the 8,000th exist only when the size bound was
/// wrong (or a fixed part size was too small for the tarball); their size
/// doubles every 100 parts, up to 5 GiB, so that even from 5 MiB the 10,000
/// parts hold more than S3's largest object (5 TiB).
pub fn part_size(base: u64, number: u64) -> u64 {
    if number <= PLANNED_PARTS {
        return base.min(MAX_PART_SIZE);
    }
    let doublings = ((number - PLANNED_PARTS - 1) / GROWTH_STEP + 1).min(32);
    base.saturating_mul(1 << doublings).min(MAX_PART_SIZE)
}

/// The most bytes an upload whose first parts are `base` bytes can hold.
pub fn capacity(base: u64) -> u64 {
    (1..=MAX_PARTS).map(|n| part_size(base, n)).sum()
}

/// Options checked and turned into request values.
#[derive(Debug)]
struct Settings {
    part_size: Option<u64>,
    storage_class: Option<StorageClass>,
    tagging: Option<String>,
    sse: Option<ServerSideEncryption>,
    sse_kms_key_id: Option<String>,
    content_type: String,
    upload_bytes: u64,
}

impl Settings {
    fn new(opts: S3SinkOptions) -> Result<Settings> {
        if let Some(p) = opts.part_size {
            check_part_size(p)?;
        }
        let storage_class = opts
            .storage_class
            .map(|s| {
                let upper = s.trim().to_ascii_uppercase();
                StorageClass::try_parse(&upper).map_err(|_| {
                    Error::Usage(format!(
                        "--storage-class {s:?}: expected one of {}",
                        StorageClass::values().join(", ")
                    ))
                })
            })
            .transpose()?;
        let sse = opts
            .sse
            .map(|s| match s.trim().to_ascii_lowercase().as_str() {
                "aes256" => Ok(ServerSideEncryption::Aes256),
                "aws:kms" => Ok(ServerSideEncryption::AwsKms),
                "aws:kms:dsse" => Ok(ServerSideEncryption::AwsKmsDsse),
                _ => Err(Error::Usage(format!(
                    "--sse {s:?}: expected AES256, aws:kms or aws:kms:dsse"
                ))),
            })
            .transpose()?;
        let sse_kms_key_id = opts.sse_kms_key_id.filter(|k| !k.is_empty());
        if sse_kms_key_id.is_some()
            && !matches!(
                sse,
                Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
            )
        {
            return Err(Error::Usage(
                "--sse-kms-key-id needs --sse aws:kms (or aws:kms:dsse)".into(),
            ));
        }
        let tagging = tagging(&opts.tags)?;
        let content_type = if opts.content_type.is_empty() {
            "application/octet-stream".to_string()
        } else {
            opts.content_type
        };
        let upload_bytes = match opts.upload_bytes {
            0 => DEFAULT_UPLOAD_BYTES,
            n => n,
        };
        Ok(Settings {
            part_size: opts.part_size,
            storage_class,
            tagging,
            sse,
            sse_kms_key_id,
            content_type,
            upload_bytes,
        })
    }
}

/// `--part-size`: within S3's limits.
pub fn check_part_size(p: u64) -> Result<()> {
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p) {
        return Err(Error::Usage(format!(
            "--part-size {p}: S3 parts are {MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB) bytes"
        )));
    }
    Ok(())
}

/// Upload allowance is counted in KiB (semaphore permits are u32).
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64) as u32
}

/// Checks object tags against S3's limits and encodes them as the
/// `x-amz-tagging` query string (`k=v&k2=v2`, percent-encoded).
pub fn tagging(tags: &[(String, String)]) -> Result<Option<String>> {
    if tags.is_empty() {
        return Ok(None);
    }
    if tags.len() > 10 {
        return Err(Error::Usage(format!(
            "--tag: S3 allows at most 10 tags on an object, got {}",
            tags.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        let bad = |why: &str| Error::Usage(format!("--tag {k}={v}: {why}"));
        if k.is_empty() || k.chars().count() > 128 {
            return Err(bad("a tag key is 1 to 128 characters"));
        }
        if v.chars().count() > 256 {
            return Err(bad("a tag value is at most 256 characters"));
        }
        if k.starts_with("aws:") {
            return Err(bad("keys starting with aws: are reserved"));
        }
        if !seen.insert(k.as_str()) {
            return Err(bad("the key is given twice"));
        }
        out.push(format!("{}={}", encode_component(k), encode_component(v)));
    }
    Ok(Some(out.join("&")))
}

pub struct S3Sink {
    shared: Arc<Shared>,
}

/// What every writer of one sink shares.
struct Shared {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// No leading or trailing slash; may be empty.
    prefix: String,
    settings: Settings,
    /// KiB of parts uploading, over all tarballs.
    upload_kib: Arc<Semaphore>,
}

impl Shared {
    fn key(&self, file_name: &str) -> String {
        if self.prefix.is_empty() {
            file_name.to_string()
        } else {
            format!("{}/{file_name}", self.prefix)
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl S3Sink {
    /// Checks the options; the sink is returned boxed, as `main` uses it.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        opts: S3SinkOptions,
    ) -> Result<Box<dyn crate::sink::Sink>> {
        if bucket.is_empty() {
            return Err(Error::Usage("the S3 destination names no bucket".into()));
        }
        let settings = Settings::new(opts)?;
        let upload_kib = kib(settings.upload_bytes) as usize;
        Ok(Box::new(S3Sink {
            shared: Arc::new(Shared {
                client,
                bucket,
                prefix: prefix.trim_matches('/').to_string(),
                upload_kib: Arc::new(Semaphore::new(upload_kib)),
                settings,
            }),
        }))
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn describe(&self) -> String {
        let s = &self.shared;
        if s.prefix.is_empty() {
            format!("s3://{}/", s.bucket)
        } else {
            format!("s3://{}/{}/", s.bucket, s.prefix)
        }
    }

    async fn create(&self, file_name: &str, size_bound: u64) -> Result<Box<dyn TarballWriter>> {
        let shared = self.shared.clone();
        let key = shared.key(file_name);
        let url = shared.url(&key);
        let set = &shared.settings;
        let base_part = set.part_size.unwrap_or_else(|| base_part_size(size_bound));
        let out = shared
            .client
            .create_multipart_upload()
            .bucket(&shared.bucket)
            .key(&key)
            .content_type(&set.content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .set_storage_class(set.storage_class.clone())
            .set_tagging(set.tagging.clone())
            .set_server_side_encryption(set.sse.clone())
            .set_ssekms_key_id(set.sse_kms_key_id.clone())
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", &url, &e))?;
        let upload_id = out
            .upload_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::Other(format!(
                    "CreateMultipartUpload {url}: the answer has no upload id"
                ))
            })?
            .to_string();
        tracing::debug!(%url, %upload_id, base_part, "multipart upload started");
        Ok(Box::new(S3Writer {
            shared,
            file_name: file_name.to_string(),
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
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Writing,
    Finished,
    Published,
    Aborted,
}

struct S3Writer {
    shared: Arc<Shared>,
    file_name: String,
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
    failed: Option<String>,
    state: State,
    /// Keys made visible (tarball, sidecar), deleted again on abort.
    published: Vec<String>,
}

impl S3Writer {
    fn check(&self, call: &str, want: State) -> Result<()> {
        if let Some(f) = &self.failed {
            return Err(Error::Other(f.clone()));
        }
        if self.state != want {
            return Err(Error::Other(format!(
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
            Err(e) => Error::Other(format!(
                "UploadPart {}: the upload task failed: {e}",
                self.url
            )),
        };
        self.failed = Some(err.to_string());
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
                let e = Error::Other(format!(
                    "UploadPart {}: the tarball exceeds {} bytes, the most {MAX_PARTS} parts hold",
                    self.url,
                    capacity(self.base_part)
                ));
                self.failed = Some(e.to_string());
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

        let sidecar_key = format!("{}.sha256sum", self.key);
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

/// One part: its chunks, uploaded with retries.
struct PartJob {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    url: String,
    upload_id: String,
    number: i32,
    chunks: Arc<[Bytes]>,
    len: u64,
}

impl PartJob {
    async fn run(self) -> Result<CompletedPart> {
        let chunks = self.chunks.clone();
        let crc = tokio::task::spawn_blocking(move || {
            chunks
                .iter()
                .fold(0, |crc, chunk| crc32c::crc32c_append(crc, chunk))
        })
        .await
        .map_err(|e| {
            Error::Other(format!(
                "UploadPart {}: checksum task failed: {e}",
                self.url
            ))
        })?;
        let checksum = checksum_text(crc);
        let timeout = PART_TIMEOUT_BASE + Duration::from_secs(self.len / MIB);
        let what = format!("UploadPart {} part {}", self.url, self.number);
        let policy = RetryPolicy {
            max_attempts: PART_TRIES,
            base_delay: BACKOFF_BASE,
            max_delay: BACKOFF_MAX,
            ..Default::default()
        };
        let sent = with_retries(&policy, &what, || async {
            let send = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .part_number(self.number)
                .content_length(self.len as i64)
                .checksum_crc32_c(&checksum)
                .body(part_body(self.chunks.clone()))
                .customize()
                // Retries are ours, with the part's own backoff and limit.
                .config_override(
                    aws_sdk_s3::config::Builder::new().retry_config(RetryConfig::disabled()),
                )
                .send();
            match tokio::time::timeout(timeout, send).await {
                Ok(Ok(out)) => out
                    .e_tag()
                    .map(str::to_string)
                    .ok_or_else(|| RequestError::Retry("the answer has no ETag".into())),
                Ok(Err(e)) if is_transient(&e) => Err(RequestError::Retry(error_text(&e))),
                Ok(Err(e)) => Err(RequestError::Fatal(error_text(&e))),
                Err(_) => Err(RequestError::Retry(format!(
                    "no answer within {}s",
                    timeout.as_secs()
                ))),
            }
        })
        .await;
        match sent {
            Ok(etag) => Ok(CompletedPart::builder()
                .part_number(self.number)
                .e_tag(etag)
                .checksum_crc32_c(checksum)
                .build()),
            Err(e) => Err(Error::Other(format!("{what}: {e}"))),
        }
    }
}

/// A request body that streams the part's chunks as they are (no copy);
/// rebuildable, so it can be sent again.
fn part_body(chunks: Arc<[Bytes]>) -> ByteStream {
    ByteStream::new(SdkBody::retryable(move || {
        let (chunks, n) = (chunks.clone(), chunks.len());
        let stream = futures_util::stream::iter(
            (0..n).map(move |i| Ok::<_, std::io::Error>(chunks[i].clone())),
        );
        SdkBody::from_body_1_x(reqwest::Body::wrap_stream(stream))
    }))
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

fn s3_error<E>(op: &str, url: &str, e: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::Other(format!("{op} {url}: {}", error_text(e)))
}

/// The value of `x-amz-checksum-crc32c`: base64 of the big-endian CRC.
pub fn checksum_text(crc: u32) -> String {
    base64(&crc.to_be_bytes())
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// CRC-32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRC32C_POLY: u32 = 0x82F6_3B78;

    fn bitwise_crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ CRC32C_POLY
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn crc32c_known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of ones, ascending.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
    }

    #[test]
    fn crc32c_slicing_matches_bitwise_and_is_incremental() {
        let mut rng = fastrand::Rng::with_seed(5);
        let data: Vec<u8> = (0..5000).map(|_| rng.u8(..)).collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4999, 5000] {
            assert_eq!(
                crc32c(&data[..len]),
                bitwise_crc32c(&data[..len]),
                "len {len}"
            );
        }
        // Any split into pieces gives the same result.
        for split in [0, 1, 3, 8, 13, 2500, 4999] {
            let c = crc32c::crc32c_append(crc32c(&data[..split]), &data[split..]);
            assert_eq!(c, crc32c(&data), "split {split}");
        }
    }

    #[test]
    fn checksum_header_is_base64_of_big_endian() {
        // The value S3 documents for "123456789" is 4waSgw==.
        assert_eq!(checksum_text(crc32c(b"123456789")), "4waSgw==");
        assert_eq!(checksum_text(0), "AAAAAA==");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xFB, 0xFF]), "+/8=");
    }

    #[test]
    fn base_part_size_is_at_least_5_mib_and_fits_the_bound() {
        assert_eq!(base_part_size(0), MIN_PART_SIZE);
        assert_eq!(base_part_size(1), MIN_PART_SIZE);
        assert_eq!(base_part_size(5 * MIB * PLANNED_PARTS), MIN_PART_SIZE);
        // 15 GB of input, bounded at 8x: 15 MiB parts.
        let bound = 15_000_000_000u64 * 8 + MIB;
        let p = base_part_size(bound);
        assert_eq!(p, 15 * MIB);
        for bound in [
            0,
            MIB,
            5 * MIB * PLANNED_PARTS,
            5 * MIB * PLANNED_PARTS + 1,
            100 << 30,
            bound,
            5 << 40,
            u64::MAX / 2,
        ] {
            let p = base_part_size(bound);
            assert!(
                (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p),
                "bound {bound}"
            );
            assert_eq!(p % MIB, 0);
            if bound <= MAX_PART_SIZE * PLANNED_PARTS {
                assert!(p * PLANNED_PARTS >= bound, "bound {bound}: {p}");
                assert!(p * MAX_PARTS >= bound);
            }
        }
        // Just over 5 MiB per planned part: 6 MiB.
        assert_eq!(base_part_size(5 * MIB * PLANNED_PARTS + 1), 6 * MIB);
    }

    #[test]
    fn parts_grow_only_past_the_planned_count() {
        let base = MIN_PART_SIZE;
        for n in [1, 2, 100, PLANNED_PARTS] {
            assert_eq!(part_size(base, n), base);
        }
        assert_eq!(part_size(base, PLANNED_PARTS + 1), 2 * base);
        assert_eq!(part_size(base, PLANNED_PARTS + GROWTH_STEP), 2 * base);
        assert_eq!(part_size(base, PLANNED_PARTS + GROWTH_STEP + 1), 4 * base);
        assert_eq!(part_size(base, MAX_PARTS), MAX_PART_SIZE);
        let mut last = 0;
        for n in 1..=MAX_PARTS {
            let p = part_size(base, n);
            assert!(p >= last && (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p));
            last = p;
        }
        // Even from 5 MiB, 10,000 parts hold S3's largest object (5 TiB).
        assert!(capacity(MIN_PART_SIZE) >= 5 << 40);
        assert_eq!(part_size(MAX_PART_SIZE, 1), MAX_PART_SIZE);
        assert_eq!(part_size(MAX_PART_SIZE, MAX_PARTS), MAX_PART_SIZE);
    }

    fn opts() -> S3SinkOptions {
        S3SinkOptions {
            content_type: "application/gzip".into(),
            ..Default::default()
        }
    }

    #[test]
    fn options_are_checked() {
        let usage = |o: S3SinkOptions| match Settings::new(o) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert!(usage(S3SinkOptions {
            part_size: Some(MIN_PART_SIZE - 1),
            ..opts()
        })
        .contains("--part-size"));
        assert!(usage(S3SinkOptions {
            part_size: Some(MAX_PART_SIZE + 1),
            ..opts()
        })
        .contains("--part-size"));
        assert!(usage(S3SinkOptions {
            storage_class: Some("COLD".into()),
            ..opts()
        })
        .contains("STANDARD_IA"));
        assert!(usage(S3SinkOptions {
            sse: Some("rot13".into()),
            ..opts()
        })
        .contains("AES256"));
        assert!(usage(S3SinkOptions {
            sse: Some("AES256".into()),
            sse_kms_key_id: Some("k".into()),
            ..opts()
        })
        .contains("aws:kms"));
        let s = Settings::new(S3SinkOptions {
            part_size: Some(MIN_PART_SIZE),
            storage_class: Some("standard_ia".into()),
            sse: Some("aws:kms".into()),
            sse_kms_key_id: Some("alias/k".into()),
            tags: vec![("team".into(), "rocm core".into())],
            ..opts()
        })
        .unwrap();
        assert_eq!(s.storage_class, Some(StorageClass::StandardIa));
        assert_eq!(s.sse, Some(ServerSideEncryption::AwsKms));
        assert_eq!(s.tagging.as_deref(), Some("team=rocm%20core"));
        assert_eq!(s.upload_bytes, DEFAULT_UPLOAD_BYTES);
        assert_eq!(
            Settings::new(S3SinkOptions {
                sse: Some("AES256".into()),
                ..opts()
            })
            .unwrap()
            .sse,
            Some(ServerSideEncryption::Aes256)
        );
    }

    #[test]
    fn tags_are_encoded_and_checked() {
        let t = |pairs: &[(&str, &str)]| {
            tagging(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(t(&[]).unwrap(), None);
        assert_eq!(
            t(&[("a", "1"), ("b&c", "x=y/z é")]).unwrap().as_deref(),
            Some("a=1&b%26c=x%3Dy%2Fz%20%C3%A9")
        );
        assert_eq!(t(&[("k", "")]).unwrap().as_deref(), Some("k="));
        assert!(matches!(t(&[("", "v")]), Err(Error::Usage(_))));
        assert!(matches!(t(&[("k", "1"), ("k", "2")]), Err(Error::Usage(_))));
        assert!(matches!(t(&[("aws:x", "1")]), Err(Error::Usage(_))));
        let many: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(matches!(tagging(&many), Err(Error::Usage(_))));
    }
}
