//! One object copied inside S3, from any bucket to any key: CopyObject up
//! to [`COPY_OBJECT_LIMIT`] (5 GiB, S3's largest CopyObject), above it a
//! multipart upload of UploadPartCopy ranges. The source's version is
//! pinned by its ETag, the copy keeps the source's metadata (content type
//! and the other headers a CopyObject keeps, user metadata), tags and
//! full-object checksum (the server checks it on completion), and the copy
//! is then checked against its source: size, and that checksum where the
//! server keeps one.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use futures_util::{StreamExt, TryStreamExt};

use super::changes::Changes;
use super::object_info::{algorithm, check, head, Checked, ObjectInfo};
use crate::error::{Error, Kind, Result};
use crate::net::aws::{error_text, request_error, status, upload_id};
use crate::net::keys::tagging_query;
use crate::net::{with_retries, RequestError, RetryPolicy};
use crate::units::{GIB, MIB};

/// S3's largest CopyObject; larger objects are copied in parts.
pub const COPY_OBJECT_LIMIT: u64 = 5 * GIB;
/// Parts of a multipart copy (S3 allows 5 MiB to 5 GiB each).
pub const COPY_PART_SIZE: u64 = GIB;
/// Part copies of one object in flight.
const PARTS_AT_ONCE: usize = 4;

/// How copies are made.
#[derive(Clone, Debug)]
pub struct CopySettings {
    /// Objects larger than this are copied in parts.
    pub object_limit: u64,
    /// The size of those parts.
    pub part_size: u64,
    /// How hard each request tries (`--retries`, `--retry-for`).
    pub retry: RetryPolicy,
}

impl Default for CopySettings {
    fn default() -> Self {
        CopySettings {
            object_limit: COPY_OBJECT_LIMIT,
            part_size: COPY_PART_SIZE,
            retry: RetryPolicy::default(),
        }
    }
}

impl CopySettings {
    /// Checks S3's bounds: a CopyObject and a part hold at most 5 GiB, a
    /// part at least 5 MiB.
    pub fn check(&self) -> Result<()> {
        if self.object_limit > COPY_OBJECT_LIMIT {
            return Err(Error::Usage(
                "a CopyObject copies at most 5 GiB; larger objects are copied in parts".into(),
            ));
        }
        if !(5 * MIB..=5 * GIB).contains(&self.part_size) {
            return Err(Error::Usage("copied parts are 5 MiB to 5 GiB each".into()));
        }
        Ok(())
    }

    /// How `size` bytes are copied: `None` for one CopyObject, else the
    /// number of parts (at most 10,000: the part size grows if need be).
    pub fn parts(&self, size: u64) -> Option<(u64, u64)> {
        if size <= self.object_limit {
            return None;
        }
        let part = self.part_size.max(size.div_ceil(10_000));
        Some((part, size.div_ceil(part)))
    }
}

/// Copies `from` to `bucket/key` and checks the copy; returns how, and the
/// copy as HeadObject describes it. `changes` learns of the key before it may
/// exist (and of an open multipart upload), so that a failure, or a signal
/// that drops this future, can take it back.
pub async fn copy(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    bucket: &str,
    key: &str,
    settings: &CopySettings,
    changes: &Changes,
) -> Result<(Checked, ObjectInfo)> {
    let url = format!("s3://{bucket}/{key}");
    match settings.parts(from.size) {
        None => copy_whole(client, from, bucket, key, changes, &settings.retry).await?,
        Some(parts) => {
            copy_parts(client, from, bucket, key, parts, changes, &settings.retry).await?
        }
    }
    let Some(copy) = head(client, bucket, key, &settings.retry).await? else {
        return Err(Error::failed(
            Kind::Remote,
            format!("copying {} to {url}: the copy is not there", from.url()),
        ));
    };
    Ok((check(from, &copy)?, copy))
}

async fn copy_whole(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    bucket: &str,
    key: &str,
    changes: &Changes,
    policy: &RetryPolicy,
) -> Result<()> {
    let what = format!("CopyObject {} to s3://{bucket}/{key}", from.url());
    let alg = from.full_checksum().map(|c| algorithm(c.algorithm));
    changes.made(key);
    let (client, source, etag) = (client.clone(), from.copy_source(), from.etag.clone());
    let (bucket, key) = (bucket.to_string(), key.to_string());
    let policy = policy.clone();
    changes
        .request(async move {
            with_retries(&policy, &what, || async {
                client
                    .copy_object()
                    .bucket(&bucket)
                    .key(&key)
                    .copy_source(&source)
                    .set_copy_source_if_match(etag.clone())
                    .set_checksum_algorithm(alg.clone())
                    .send()
                    .await
                    .map_err(|e| request_error(&e))
            })
            .await
            .map_err(|e| e.into_error(&what))
        })
        .await?;
    Ok(())
}

async fn copy_parts(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    bucket: &str,
    key: &str,
    (part, count): (u64, u64),
    changes: &Changes,
    policy: &RetryPolicy,
) -> Result<()> {
    let url = format!("s3://{bucket}/{key}");
    let full = from.full_checksum();
    let req = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_content_type(from.headers.content_type.clone())
        .set_content_encoding(from.headers.content_encoding.clone())
        .set_content_disposition(from.headers.content_disposition.clone())
        .set_content_language(from.headers.content_language.clone())
        .set_cache_control(from.headers.cache_control.clone())
        .set_metadata(from.headers.metadata.clone())
        .set_tagging(source_tagging(client, from, policy).await?);
    let req = match full {
        Some(c) => req
            .checksum_algorithm(algorithm(c.algorithm))
            .checksum_type(ChecksumType::FullObject),
        None => req,
    };
    // Noted by its own task: dropped mid-request (another copy failed, or
    // a signal), the upload the server may still start is aborted too.
    // Each try noted: an upload a failed try may have started is aborted.
    let what = format!("CreateMultipartUpload {url}");
    let out = with_retries(policy, &what, || {
        let send = changes.start_upload(key, req.clone().send(), |o| o.upload_id());
        async move { send.await.map_err(|e| request_error(&e)) }
    })
    .await
    .map_err(|e| e.into_error(&what))?;
    let upload_id = upload_id(&out, &url)?;
    let parts: Vec<CompletedPart> = futures_util::stream::iter(0..count)
        .map(|i| {
            let start = i * part;
            let end = (start + part).min(from.size) - 1;
            copy_part(
                client,
                from,
                bucket,
                key,
                &upload_id,
                i as i32 + 1,
                start,
                end,
                policy,
            )
        })
        .buffered(PARTS_AT_ONCE)
        .try_collect()
        .await?;
    let req = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        );
    // The server checks the copy's whole bytes against the source's checksum.
    let req = match full {
        Some(c) => {
            let req = req.checksum_type(ChecksumType::FullObject);
            match c.algorithm {
                "CRC64NVME" => req.checksum_crc64_nvme(&c.value),
                "CRC32C" => req.checksum_crc32_c(&c.value),
                _ => req.checksum_crc32(&c.value),
            }
        }
        None => req,
    };
    // Its key may exist from now on.
    changes.made(key);
    let what = format!("CompleteMultipartUpload {url}");
    let mut tried = false;
    with_retries(policy, &what, || {
        let send = changes.request(req.clone().send());
        let again = std::mem::replace(&mut tried, true);
        async move {
            match send.await {
                Ok(_) => Ok(()),
                // An earlier try whose answer was lost completed it (the
                // copy is checked against its source next).
                Err(e) if again && e.code() == Some("NoSuchUpload") => Ok(()),
                Err(e) => Err(request_error(&e)),
            }
        }
    })
    .await
    .map_err(|e| e.into_error(&what))?;
    changes.ended(&upload_id);
    Ok(())
}

/// The source's tags as an `x-amz-tagging` value (`None`: it has none).
/// A CopyObject keeps them by itself; a multipart copy is given them, so
/// that a copy keeps its tags whatever its size. A server that keeps no
/// tags (NotImplemented), or a role that may not read them, gets a copy
/// without tags and a warning.
async fn source_tagging(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    policy: &RetryPolicy,
) -> Result<Option<String>> {
    let what = format!("GetObjectTagging {}", from.url());
    let got = with_retries(policy, &what, || async {
        let got = client
            .get_object_tagging()
            .bucket(&from.bucket)
            .key(&from.key)
            .send()
            .await;
        match got {
            Ok(out) => Ok(Ok(out)),
            Err(e) if matches!(status(&e), Some(403 | 501)) => Ok(Err(error_text(&e))),
            Err(e) => Err(request_error(&e)),
        }
    })
    .await
    .map_err(|e| e.into_error(&what))?;
    let out = match got {
        Ok(out) => out,
        Err(why) => {
            tracing::warn!("{what}: {why}; the copy to be made in parts gets no tags");
            return Ok(None);
        }
    };
    Ok(tagging_query(
        out.tag_set().iter().map(|t| (t.key(), t.value())),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn copy_part(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: i32,
    start: u64,
    end: u64,
    policy: &RetryPolicy,
) -> Result<CompletedPart> {
    let what = format!(
        "UploadPartCopy s3://{bucket}/{key} part {number} (bytes {start}-{end} of {})",
        from.url()
    );
    let out = with_retries(policy, &what, || async {
        client
            .upload_part_copy()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .copy_source(from.copy_source())
            .copy_source_range(format!("bytes={start}-{end}"))
            .set_copy_source_if_match(from.etag.clone())
            .send()
            .await
            .map_err(|e| request_error(&e))
    })
    .await
    .map_err(|e| e.into_error(&what))?;
    let result = out.copy_part_result();
    let etag = result
        .and_then(|r| r.e_tag())
        .ok_or_else(|| RequestError::Fatal("the answer has no ETag".into()).into_error(&what))?;
    // Part checksums, where the server gives them, go with the part.
    Ok(CompletedPart::builder()
        .part_number(number)
        .e_tag(etag)
        .set_checksum_crc64_nvme(result.and_then(|r| r.checksum_crc64_nvme()).map(Into::into))
        .set_checksum_crc32_c(result.and_then(|r| r.checksum_crc32_c()).map(Into::into))
        .set_checksum_crc32(result.and_then(|r| r.checksum_crc32()).map(Into::into))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_objects_are_copied_in_parts() {
        let s = CopySettings::default();
        assert_eq!(s.parts(5 * GIB), None);
        assert_eq!(s.parts(5 * GIB + 1), Some((GIB, 6)));
        // 10,000 parts at most: the part grows.
        let huge = 20_000 * GIB;
        let (part, n) = s.parts(huge).unwrap();
        assert!(n <= 10_000 && part * n >= huge);
        let small = CopySettings {
            object_limit: 12 * MIB,
            part_size: 5 * MIB,
            ..Default::default()
        };
        small.check().unwrap();
        assert_eq!(small.parts(13 * MIB), Some((5 * MIB, 3)));
        assert!(CopySettings {
            part_size: MIB,
            ..small.clone()
        }
        .check()
        .is_err());
        assert!(CopySettings {
            object_limit: 6 * GIB,
            ..small
        }
        .check()
        .is_err());
    }
}
