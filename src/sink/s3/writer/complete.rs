//! Completing a tarball's upload: an origin staged (completed at its
//! staging key, then copied part for part to its final key), the final
//! upload completed, or left alone when the key already holds its bytes.

use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};

use super::S3Writer;
use crate::error::{Error, Kind, Result};
use crate::net::aws::{error_text, is_transient, may_have_happened, s3_error};
use crate::net::retry::Tries;
use crate::object_crc::ObjectCrc;
use crate::sink::s3::assembly::{Range, Source};
use crate::sink::s3::copy::{run_copies, CopyJob};
use crate::sink::s3::part::Checksums;
use crate::sink::s3::{Publication, Published, Shared};
use crate::sink::StoredChecksum;

impl S3Writer {
    /// The object's checksum as the store keeps it, from the CRCs of its
    /// bytes and parts.
    pub(super) fn stored_checksum(&mut self) -> StoredChecksum {
        self.part_crcs.sort_by_key(|p| p.0);
        let part_crcs: Vec<ObjectCrc> = self.part_crcs.iter().map(|p| p.1).collect();
        self.checksums.stored(self.crc, &part_crcs)
    }

    /// Completes an origin's upload at its staging key and tells the
    /// tarballs that copy from it; then starts its upload at the final
    /// key and copies the staged object into it, part for part (the same
    /// parts, so the same checksums), leaving it to complete when the set
    /// is published.
    pub(super) async fn stage(&mut self) -> Result<()> {
        let (staged, stored) = self.complete_staged().await?;
        let final_id = self.start_final().await?;
        self.final_upload = Some((final_id.clone(), Vec::new()));
        let parts = self.part_crcs.clone();
        let copied = self.copy_staged(&staged, &final_id, &parts).await?;
        self.final_upload = Some((final_id, copied));
        self.stored = Some(stored);
        Ok(())
    }

    /// Completes the upload at the staging key (deleted on abort, or once
    /// the set is published) and tells the tarballs that copy from this
    /// one: the object and its checksum.
    pub(super) async fn complete_staged(&mut self) -> Result<(Arc<Published>, StoredChecksum)> {
        let upload_id = self.upload_id.clone().expect("upload in progress");
        self.parts.sort_by_key(|p| p.part_number());
        let stored = self.stored_checksum();
        self.temp_keys.push(self.key.clone());
        self.shared.note_leftover(&self.key);
        let mut noted = Vec::new();
        let done = complete_upload(
            &self.shared,
            &self.key,
            &upload_id,
            std::mem::take(&mut self.parts),
            self.checksums,
            &stored,
            &mut noted,
        )
        .await;
        let etag = done.map_err(|e| self.fail(e))?;
        self.upload_id = None;
        let staged = Arc::new(Published {
            key: self.key.clone(),
            url: self.shared.at.object_url(&self.key),
            etag,
        });
        self.publication
            .send_replace(Publication::Done(staged.clone()));
        Ok((staged, stored))
    }

    /// Starts the upload at the final key: its id.
    pub(super) async fn start_final(&mut self) -> Result<String> {
        let started = self
            .shared
            .start_upload(&self.final_key, &self.url, self.content_type)
            .await;
        let (final_id, checksums) = started.map_err(|e| self.fail(e))?;
        if checksums != self.checksums {
            let e = Error::failed(
                Kind::Remote,
                format!("CreateMultipartUpload {}: the server stopped taking full-object checksums mid-run", self.url),
            );
            return Err(self.fail(e));
        }
        Ok(final_id)
    }

    /// Copies the staged object's first parts (`parts`: number and CRCs,
    /// in order from part 1) into the final key's upload `final_id`.
    pub(super) async fn copy_staged(
        &mut self,
        staged: &Arc<Published>,
        final_id: &str,
        parts: &[(u64, ObjectCrc)],
    ) -> Result<Vec<CompletedPart>> {
        let mut start = 0;
        let mut copies = Vec::with_capacity(parts.len());
        for &(number, crc) in parts {
            let range = Range {
                source: Source::Tarball(usize::MAX),
                start,
                crc,
            };
            start += crc.len;
            let mut copy = CopyJob::new(
                &self.shared,
                &self.final_key,
                final_id,
                self.checksums,
                number,
                &range,
                staged.clone(),
            );
            copy.staged = true;
            copies.push(copy);
        }
        run_copies(copies).await.map_err(|e| self.fail(e))
    }

    /// Completes the upload at the final key, unless that key already
    /// holds these very bytes (a re-run of the same pack): then it is left
    /// as it is and the upload aborted.
    pub(super) async fn complete_final(&mut self) -> Result<()> {
        let stored = self.stored.clone().expect("prepared");
        let (upload_id, mut parts) = match self.final_upload.take() {
            Some(f) => f,
            None => {
                let id = self.upload_id.take().expect("upload in progress");
                (id, std::mem::take(&mut self.parts))
            }
        };
        parts.sort_by_key(|p| p.part_number());
        if self.same {
            tracing::info!(url = %self.url, "already holds these bytes; left as it is");
            let aborted = crate::net::aws::abort_upload(
                &self.shared.client,
                &self.shared.at.bucket,
                &self.final_key,
                &upload_id,
            )
            .await;
            if let Err(e) = aborted {
                tracing::warn!("{e}; `rockpack abort-uploads` removes it");
            }
            self.shared.in_flight.ended(&upload_id);
            return Ok(());
        }
        // A key that held something before is not deleted on abort: the
        // set's journal puts its old bytes back.
        let mut not_noted = Vec::new();
        let made = if self.before.tarball.is_some() {
            &mut not_noted
        } else {
            &mut self.published
        };
        let done = complete_upload(
            &self.shared,
            &self.final_key,
            &upload_id,
            parts,
            self.checksums,
            &stored,
            made,
        )
        .await;
        done.map_err(|e| self.fail(e))?;
        tracing::debug!(url = %self.url, checksum = %stored.value, "upload completed");
        Ok(())
    }
}

/// Completes the upload `upload_id` of `key` with `parts` and the object's
/// checksum `stored`; the server's own checksum of the object, if it
/// reports one, must be the same. Returns the object's ETag. `key` is in
/// `made` (deleted on abort) from the moment the object may exist: before
/// the request, and after it unless it was cleanly refused.
#[allow(clippy::too_many_arguments)]
pub(super) async fn complete_upload(
    s: &Shared,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
    checksums: Checksums,
    stored: &StoredChecksum,
    made: &mut Vec<String>,
) -> Result<Option<String>> {
    // Recorded first: a signal may drop this future mid-request.
    made.push(key.to_string());
    let url = s.at.object_url(key);
    let mut tries = Tries::new(&s.settings.retry);
    let out = loop {
        let req = s
            .client
            .complete_multipart_upload()
            .bucket(&s.at.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.clone()))
                    .build(),
            );
        let req = match checksums {
            Checksums::FullObject => req
                .checksum_type(ChecksumType::FullObject)
                .checksum_crc64_nvme(&stored.value),
            Checksums::Composite => req,
        };
        let e = match s.in_flight.run(req.send()).await {
            Ok(out) => break out,
            Err(e) => e,
        };
        // An earlier try whose answer was lost may have completed it.
        if tries.failed() > 0 && e.code() == Some("NoSuchUpload") {
            if let Some(etag) = completed_earlier(s, key, stored).await {
                s.in_flight.ended(upload_id);
                return Ok(Some(etag));
            }
        }
        if !is_transient(&e) {
            if !may_have_happened(&e) && tries.failed() == 0 {
                made.pop();
            }
            return Err(s3_error("CompleteMultipartUpload", &url, &e));
        }
        let what = format!("CompleteMultipartUpload {url}");
        tries
            .again(&what, &error_text(&e))
            .await
            .map_err(|m| Error::failed(Kind::GaveUp, format!("{what}: {m}")))?;
    };
    s.in_flight.ended(upload_id);
    let theirs = match checksums {
        Checksums::FullObject => out.checksum_crc64_nvme(),
        Checksums::Composite => out.checksum_crc32_c(),
    };
    if let Some(theirs) = theirs.filter(|t| *t != stored.value) {
        return Err(Error::failed(
            Kind::Remote,
            format!(
                "CompleteMultipartUpload {url}: the object has {} {theirs}, the bytes rockpack wrote {}",
                stored.algorithm, stored.value
            ),
        ));
    }
    Ok(out.e_tag().map(str::to_string))
}

/// The ETag of `key` if it holds the object `stored` describes: a
/// CompleteMultipartUpload whose answer was lost did complete it.
async fn completed_earlier(s: &Shared, key: &str, stored: &StoredChecksum) -> Option<String> {
    let there = s.existing(key).await.ok()??;
    (there.checksum.as_deref() == Some(stored.value.as_str()))
        .then(|| there.etag.unwrap_or_default())
}
