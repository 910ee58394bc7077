//! An S3 object as HeadObject describes it (size, version, checksum, the
//! headers a copy keeps), and whether two such descriptions are surely the
//! same bytes: what copies are checked with and what a rollback asks of
//! the keys it restores.

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};

use crate::error::{Error, Kind, Result};
use crate::net::aws::{request_error, status};
use crate::net::keys::copy_source;
use crate::net::{with_retries, RetryPolicy};
use crate::object_crc::StoredChecksum;

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

    /// Its `x-amz-copy-source`.
    pub(super) fn copy_source(&self) -> String {
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

/// The SDK's name of checksum algorithm `name`.
pub(super) fn algorithm(name: &str) -> ChecksumAlgorithm {
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
}
