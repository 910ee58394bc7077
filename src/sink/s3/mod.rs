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
//!
//! The folder follows those jobs: [`options`] checks the options and turns
//! them into request values, [`writer`] is one tarball's upload (its state
//! machine), [`part`] sizes the parts and uploads one.

mod options;
mod part;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ChecksumAlgorithm;
use tokio::sync::Semaphore;

use super::{Sink, TarballWriter};
use crate::error::{Error, Kind, Result};
use crate::net::aws::error_text;
use crate::plan::TarballPlan;
use options::Settings;
pub use options::{check_part_size, S3SinkOptions, DEFAULT_UPLOAD_BYTES};
pub use part::{base_part_size, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use writer::S3Writer;

/// Tarballs as multipart uploads below an S3 prefix.
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

    async fn create(&self, tarball: &TarballPlan) -> Result<Box<dyn TarballWriter>> {
        let file_name = tarball.file_name.as_str();
        let shared = self.shared.clone();
        let key = shared.key(file_name);
        let url = shared.url(&key);
        let set = &shared.settings;
        let base_part = set
            .part_size
            .unwrap_or_else(|| base_part_size(tarball.size_bound()));
        let out = shared
            .client
            .create_multipart_upload()
            .bucket(&shared.bucket)
            .key(&key)
            .content_type(tarball.format.content_type())
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
                Error::failed(
                    Kind::Remote,
                    format!("CreateMultipartUpload {url}: the answer has no upload id"),
                )
            })?
            .to_string();
        tracing::debug!(%url, %upload_id, base_part, "multipart upload started");
        Ok(Box::new(S3Writer::new(
            shared,
            file_name.to_string(),
            tarball.sidecar.clone(),
            key,
            url,
            upload_id,
            base_part,
        )))
    }
}

/// Upload allowance is counted in KiB (semaphore permits are u32).
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(crate::units::KIB).clamp(1, u32::MAX as u64) as u32
}

fn s3_error<E>(op: &str, url: &str, e: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::failed(Kind::Remote, format!("{op} {url}: {}", error_text(e)))
}
