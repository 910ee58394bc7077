//! One part the server copies from a published tarball of the run
//! (UploadPartCopy with a byte range), with retries of its own. The copy
//! is checked against the CRCs of the bytes rockpack wrote; a server that
//! answers that it does not implement copies gets the part's bytes read
//! back from that tarball and sent (and no further copies are tried).

use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::CompletedPart;
use futures_util::{StreamExt, TryStreamExt};

use super::assembly::Range;
use super::part::{no_sdk_retries, part_timeout, Checksums, PartBody, PartJob};
use super::{Published, Shared};
use crate::error::Result;
use crate::net::aws::{error_text, request_error};
use crate::net::keys::copy_source;
use crate::net::{with_retries, RequestError};
use crate::object_crc::ObjectCrc;

/// Parts copying at once for one tarball (the server does the work).
const COPIES_PER_TARBALL: usize = 8;

/// Runs part copies, `COPIES_PER_TARBALL` at once.
pub(super) async fn run_copies(jobs: Vec<CopyJob>) -> Result<Vec<CompletedPart>> {
    futures_util::stream::iter(jobs)
        .map(CopyJob::run)
        .buffer_unordered(COPIES_PER_TARBALL)
        .try_collect()
        .await
}

/// One part to copy.
pub(super) struct CopyJob {
    pub(super) shared: Arc<Shared>,
    pub(super) key: String,
    pub(super) url: String,
    pub(super) upload_id: String,
    pub(super) number: i32,
    /// The tarball it copies from, published.
    pub(super) source: Arc<Published>,
    pub(super) start: u64,
    /// The CRCs and length of the bytes it copies.
    pub(super) crc: ObjectCrc,
    pub(super) checksums: Checksums,
    /// A copy of a staged origin to its final key: counted as staged, not
    /// as a copy of shared bytes.
    pub(super) staged: bool,
}

/// What a copy request came to.
enum Copied {
    Done(Box<CompletedPart>),
    /// The server does not copy: its answer.
    Refused(String),
}

impl CopyJob {
    /// Part `number` of the upload `upload_id` of `key` (its checksums
    /// `checksums`): the bytes `range` names, copied from `source`.
    pub(super) fn new(
        shared: &Arc<Shared>,
        key: &str,
        upload_id: &str,
        checksums: Checksums,
        number: u64,
        range: &Range,
        source: Arc<Published>,
    ) -> CopyJob {
        CopyJob {
            shared: shared.clone(),
            key: key.to_string(),
            url: shared.at.object_url(key),
            upload_id: upload_id.to_string(),
            number: number as i32,
            source,
            start: range.start,
            crc: range.crc,
            checksums,
            staged: false,
        }
    }

    pub(super) async fn run(self) -> Result<CompletedPart> {
        let len = self.crc.len;
        if self.shared.copies() {
            match self.copy().await? {
                Copied::Done(part) if self.staged => {
                    self.shared.stats.add_staged(len);
                    return Ok(*part);
                }
                Copied::Done(part) => {
                    self.shared.stats.add_copied(len);
                    return Ok(*part);
                }
                Copied::Refused(answer) => self.shared.stop_copies(&answer),
            }
        }
        let part = PartJob {
            client: self.shared.client.clone(),
            bucket: self.shared.at.bucket.clone(),
            key: self.key,
            url: self.url,
            upload_id: self.upload_id,
            number: self.number,
            body: PartBody::ReadBack {
                key: self.source.key.clone(),
                etag: self.source.etag.clone(),
                start: self.start,
            },
            crc: self.crc,
            checksums: self.checksums,
            policy: self.shared.settings.retry.clone(),
        }
        .run()
        .await?;
        self.shared.stats.add_read_back(len);
        Ok(part)
    }

    async fn copy(&self) -> Result<Copied> {
        let s = &self.shared;
        let (start, len) = (self.start, self.crc.len);
        let end = start + len - 1;
        let timeout = part_timeout(len);
        let what = format!(
            "UploadPartCopy {} part {} (bytes {start}-{end} of {})",
            self.url, self.number, self.source.url
        );
        let copied = with_retries(&s.settings.retry, &what, || async {
            let send = s
                .client
                .upload_part_copy()
                .bucket(&s.at.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .part_number(self.number)
                .copy_source(copy_source(&s.at.bucket, &self.source.key))
                .copy_source_range(format!("bytes={start}-{end}"))
                .set_copy_source_if_match(self.source.etag.clone())
                .customize()
                .config_override(no_sdk_retries())
                .send();
            let out = match tokio::time::timeout(timeout, send).await {
                Ok(Ok(out)) => out,
                Ok(Err(e)) if e.code() == Some("NotImplemented") => {
                    return Ok(Copied::Refused(error_text(&e)))
                }
                Ok(Err(e)) => return Err(request_error(&e)),
                Err(_) => {
                    return Err(RequestError::Retry(format!(
                        "no answer within {}s",
                        timeout.as_secs()
                    )))
                }
            };
            let result = out.copy_part_result();
            let etag = result
                .and_then(|r| r.e_tag())
                .ok_or_else(|| RequestError::Retry("the answer has no ETag".into()))?;
            // The server's checksum of what it copied, where it gives one.
            let theirs = match self.checksums {
                Checksums::FullObject => result.and_then(|r| r.checksum_crc64_nvme()),
                Checksums::Composite => result.and_then(|r| r.checksum_crc32_c()),
            };
            let ours = self.checksums.text(self.crc);
            if let Some(theirs) = theirs.filter(|t| *t != ours) {
                return Err(RequestError::Fatal(format!(
                    "the copied bytes have checksum {theirs}, the bytes rockpack wrote there {ours}"
                )));
            }
            Ok(Copied::Done(Box::new(self.checksums.completed(
                self.number,
                etag.to_string(),
                self.crc,
            ))))
        })
        .await;
        copied.map_err(|e| e.into_error(&what))
    }
}
