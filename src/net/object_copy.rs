//! One object copied inside S3, from any bucket to any key: CopyObject up
//! to [`COPY_OBJECT_LIMIT`] (5 GiB, S3's largest CopyObject), above it a
//! multipart upload of UploadPartCopy ranges. The source's version is
//! pinned by its ETag, the copy keeps the source's metadata (content type
//! and the other headers a CopyObject keeps, user metadata), tags and
//! full-object checksum (the server checks it on completion), and the copy
//! is then checked against its source: size, and that checksum where the
//! server keeps one.

use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
};
use futures_util::{StreamExt, TryStreamExt};

use super::undo::Undo;
use crate::error::{Error, Kind, Result};
use crate::net::aws::{error_text, request_error, status, upload_id};
use crate::net::keys::{copy_source, tagging_query};
use crate::net::{with_retries, RequestError, RetryPolicy};
use crate::object_crc::StoredChecksum;
use crate::units::{GIB, MIB};

/// S3's largest CopyObject; larger objects are copied in parts.
pub const COPY_OBJECT_LIMIT: u64 = 5 * GIB;
/// Parts of a multipart copy (S3 allows 5 MiB to 5 GiB each).
pub const COPY_PART_SIZE: u64 = GIB;
/// Part copies of one object in flight.
const PARTS_AT_ONCE: usize = 4;

/// An object as HeadObject describes it.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its version, for conditional copies.
    pub etag: Option<String>,
    /// The checksum the store keeps of it, if any.
    pub checksum: Option<StoredChecksum>,
    /// What a CopyObject keeps of it, and a copy in parts is given.
    pub headers: Headers,
}

/// An object's system and user metadata: what a CopyObject keeps (its
/// default `COPY` directive), so that a copy in parts is given the same and
/// a copy keeps them whatever its size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: Option<std::collections::HashMap<String, String>>,
}

impl ObjectInfo {
    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Its checksum, if it is of the whole object: the one a copy keeps.
    pub fn full_checksum(&self) -> Option<&StoredChecksum> {
        self.checksum.as_ref().filter(|c| c.kind == "FULL_OBJECT")
    }

    /// Its full-object checksum and `other`'s, where they can be compared
    /// (both have one, of one algorithm).
    pub fn comparable_checksums<'a>(
        &'a self,
        other: &'a ObjectInfo,
    ) -> Option<(&'a StoredChecksum, &'a StoredChecksum)> {
        let (a, b) = (self.full_checksum()?, other.full_checksum()?);
        (a.algorithm == b.algorithm).then_some((a, b))
    }

    fn copy_source(&self) -> String {
        copy_source(&self.bucket, &self.key)
    }
}

/// HeadObject of `bucket/key` with its checksum, retried under `policy`;
/// `None` if there is none.
pub async fn head(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    policy: &RetryPolicy,
) -> Result<Option<ObjectInfo>> {
    let what = format!("HeadObject s3://{bucket}/{key}");
    let got = with_retries(policy, &what, || async {
        let got = client
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match got {
            Ok(out) => Ok(Some(out)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(request_error(&e)),
        }
    })
    .await
    .map_err(|e| e.into_error(&what))?;
    let Some(out) = got else { return Ok(None) };
    Ok(Some(ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size: out.content_length().unwrap_or(0).max(0) as u64,
        etag: out.e_tag().map(str::to_string),
        checksum: stored_checksum(&out),
        headers: Headers {
            content_type: out.content_type().map(str::to_string),
            content_encoding: out.content_encoding().map(str::to_string),
            content_disposition: out.content_disposition().map(str::to_string),
            content_language: out.content_language().map(str::to_string),
            cache_control: out.cache_control().map(str::to_string),
            metadata: out.metadata().filter(|m| !m.is_empty()).cloned(),
        },
    }))
}

/// The checksum HeadObject reports (CRC64NVME, CRC32C or CRC32); a value
/// ending in `-N` is composite, whatever the type header says or omits.
fn stored_checksum(out: &HeadObjectOutput) -> Option<StoredChecksum> {
    let (algorithm, value) = [
        ("CRC64NVME", out.checksum_crc64_nvme()),
        ("CRC32C", out.checksum_crc32_c()),
        ("CRC32", out.checksum_crc32()),
    ]
    .into_iter()
    .find_map(|(a, v)| v.filter(|v| !v.is_empty()).map(|v| (a, v.to_string())))?;
    let composite = out.checksum_type() == Some(&ChecksumType::Composite)
        || value
            .rsplit_once('-')
            .is_some_and(|(_, n)| n.parse::<u32>().is_ok());
    Some(StoredChecksum {
        algorithm,
        kind: if composite {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        },
        value,
    })
}

fn algorithm(name: &str) -> ChecksumAlgorithm {
    match name {
        "CRC64NVME" => ChecksumAlgorithm::Crc64Nvme,
        "CRC32C" => ChecksumAlgorithm::Crc32C,
        _ => ChecksumAlgorithm::Crc32,
    }
}

/// How a copy was checked against its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Checked {
    /// Same size and the same full-object checksum (its algorithm).
    Checksum(&'static str),
    /// Same size: the source has no full-object checksum, or the server
    /// keeps none of the copy.
    Size,
}

impl Checked {
    /// `CRC64NVME`, `CRC32C`, `CRC32` or `size`.
    pub fn name(self) -> &'static str {
        match self {
            Checked::Checksum(a) => a,
            Checked::Size => "size",
        }
    }
}

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
/// copy as HeadObject describes it. `undo` learns of the key before it may
/// exist (and of an open multipart upload), so that a failure, or a signal
/// that drops this future, can take it back.
pub async fn copy(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    bucket: &str,
    key: &str,
    settings: &CopySettings,
    undo: &Arc<Undo>,
) -> Result<(Checked, ObjectInfo)> {
    let url = format!("s3://{bucket}/{key}");
    match settings.parts(from.size) {
        None => copy_whole(client, from, bucket, key, undo, &settings.retry).await?,
        Some(parts) => copy_parts(client, from, bucket, key, parts, undo, &settings.retry).await?,
    }
    let Some(copy) = head(client, bucket, key, &settings.retry).await? else {
        return Err(Error::failed(
            Kind::Remote,
            format!("copying {} to {url}: the copy is not there", from.url()),
        ));
    };
    Ok((check(from, &copy)?, copy))
}

/// Whether `copy` is `from`: same size, and the same full-object checksum
/// where both have one of one algorithm.
pub fn check(from: &ObjectInfo, copy: &ObjectInfo) -> Result<Checked> {
    let fail = |what: String| {
        Err(Error::failed(
            Kind::Remote,
            format!("copying {} to {}: {what}", from.url(), copy.url()),
        ))
    };
    if copy.size != from.size {
        return fail(format!(
            "the copy has {} bytes, the source {}",
            copy.size, from.size
        ));
    }
    match from.comparable_checksums(copy) {
        None => Ok(Checked::Size),
        Some((a, b)) if a.value == b.value => Ok(Checked::Checksum(a.algorithm)),
        Some((a, b)) => fail(format!(
            "the copy has {} {}, the source {}",
            a.algorithm, b.value, a.value
        )),
    }
}

/// Whether `a` and `b` surely hold the same bytes: the same size and
/// full-object checksum, or the same size and ETag (a single-part copy
/// keeps its source's). A key a failed run never overwrote needs no restore.
pub fn same_object(a: &ObjectInfo, b: &ObjectInfo) -> bool {
    matches!(check(a, b), Ok(Checked::Checksum(_)))
        || (a.size == b.size && a.etag.is_some() && a.etag == b.etag)
}

async fn copy_whole(
    client: &aws_sdk_s3::Client,
    from: &ObjectInfo,
    bucket: &str,
    key: &str,
    undo: &Arc<Undo>,
    policy: &RetryPolicy,
) -> Result<()> {
    let what = format!("CopyObject {} to s3://{bucket}/{key}", from.url());
    let alg = from.full_checksum().map(|c| algorithm(c.algorithm));
    undo.made(key);
    let (client, source, etag) = (client.clone(), from.copy_source(), from.etag.clone());
    let (bucket, key) = (bucket.to_string(), key.to_string());
    let policy = policy.clone();
    undo.request(async move {
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
    undo: &Arc<Undo>,
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
        let send = undo.start_upload(key, req.clone().send(), |o| o.upload_id());
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
    undo.made(key);
    let what = format!("CompleteMultipartUpload {url}");
    let mut tried = false;
    with_retries(policy, &what, || {
        let send = undo.request(req.clone().send());
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
    undo.ended(&upload_id);
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

    fn object(
        key: &str,
        size: u64,
        checksum: Option<(&'static str, &'static str, &str)>,
    ) -> ObjectInfo {
        ObjectInfo {
            bucket: "b".into(),
            key: key.into(),
            size,
            etag: None,
            checksum: checksum.map(|(algorithm, kind, value)| StoredChecksum {
                algorithm,
                kind,
                value: value.into(),
            }),
            headers: Headers::default(),
        }
    }

    #[test]
    fn a_copy_is_checked_by_size_and_full_object_checksum() {
        let full = |v| Some(("CRC64NVME", "FULL_OBJECT", v));
        let from = object("run/a.tar.gz", 10, full("AAAA"));
        let same = object("rel/a.tar.gz", 10, full("AAAA"));
        assert_eq!(check(&from, &same).unwrap(), Checked::Checksum("CRC64NVME"));
        let e = check(&from, &object("rel/a.tar.gz", 11, full("AAAA")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "s3://b/run/a.tar.gz to s3://b/rel/a.tar.gz: the copy has 11 bytes, the source 10"
            ),
            "{e}"
        );
        let e = check(&from, &object("rel/a.tar.gz", 10, full("BBBB")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the copy has CRC64NVME BBBB, the source AAAA"),
            "{e}"
        );
        // Checksums of different algorithms, or a composite one, cannot be
        // compared: the size is what is checked.
        let crc32c = object("rel/a.tar.gz", 10, Some(("CRC32C", "FULL_OBJECT", "CCCC")));
        assert_eq!(check(&from, &crc32c).unwrap(), Checked::Size);
        let composite = object(
            "rel/a.tar.gz",
            10,
            Some(("CRC64NVME", "COMPOSITE", "AAAA-2")),
        );
        assert_eq!(check(&from, &composite).unwrap(), Checked::Size);
        assert_eq!(
            check(&object("run/a", 10, None), &same).unwrap(),
            Checked::Size
        );
    }

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
