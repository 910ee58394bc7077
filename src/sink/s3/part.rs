//! Parts: how large each part of an upload is (so that 10,000 always hold
//! the tarball), the checksums parts and objects carry, and one part's
//! upload with its checksum, a timeout and retries of its own.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::CompletedPart;
use bytes::Bytes;

use crate::error::Result;
use crate::net::aws::{error_text, is_transient, request_error};
use crate::net::{with_retries, RequestError, RetryPolicy};
use crate::object_crc::ObjectCrc;
use crate::sink::StoredChecksum;
use crate::units::{GIB, MIB};
/// S3's smallest part (except the last one).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// The size bound is spread over this many parts; the rest are a reserve
/// for a bound that proves wrong (see [`part_size`]).
const PLANNED_PARTS: u64 = 8_000;
/// Past `PLANNED_PARTS`, the part size doubles every this many parts.
const GROWTH_STEP: u64 = 100;
/// One try of a part gets this long, plus a second per MiB.
const PART_TIMEOUT_BASE: Duration = Duration::from_secs(60);

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
pub(crate) fn part_size(base: u64, number: u64) -> u64 {
    if number <= PLANNED_PARTS {
        return base.min(MAX_PART_SIZE);
    }
    let doublings = ((number - PLANNED_PARTS - 1) / GROWTH_STEP + 1).min(32);
    base.saturating_mul(1 << doublings).min(MAX_PART_SIZE)
}

/// The most bytes an upload whose first parts are `base` bytes can hold.
#[cfg(test)]
pub(crate) fn capacity(base: u64) -> u64 {
    (1..=MAX_PARTS).map(|n| part_size(base, n)).sum()
}

/// The checksums an upload's parts and object carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Checksums {
    /// CRC64NVME of the whole object (`FULL_OBJECT`): the same however
    /// the object was split into parts or copied.
    FullObject,
    /// CRC32C of each part, and of those (`COMPOSITE`): for servers that
    /// refuse full-object checksums.
    Composite,
}

impl Checksums {
    /// The object's checksum as the store reports it, from the whole
    /// object's CRCs and its parts'.
    pub(super) fn stored(self, object: ObjectCrc, parts: &[ObjectCrc]) -> StoredChecksum {
        match self {
            Checksums::FullObject => StoredChecksum {
                algorithm: "CRC64NVME",
                kind: "FULL_OBJECT",
                value: crc64_text(object.crc64nvme),
            },
            Checksums::Composite => {
                let joined: Vec<u8> = parts.iter().flat_map(|p| p.crc32c.to_be_bytes()).collect();
                StoredChecksum {
                    algorithm: "CRC32C",
                    kind: "COMPOSITE",
                    value: format!(
                        "{}-{}",
                        checksum_text(ObjectCrc::of(&joined).crc32c),
                        parts.len()
                    ),
                }
            }
        }
    }

    /// The checksum header value a part (or a single-part object) with
    /// these CRCs carries: CRC64NVME or CRC32C, base64.
    pub(super) fn text(self, crc: ObjectCrc) -> String {
        match self {
            Checksums::FullObject => crc64_text(crc.crc64nvme),
            Checksums::Composite => checksum_text(crc.crc32c),
        }
    }

    /// A completed part as CompleteMultipartUpload lists it.
    pub(super) fn completed(self, number: i32, etag: String, crc: ObjectCrc) -> CompletedPart {
        let b = CompletedPart::builder().part_number(number).e_tag(etag);
        match self {
            Checksums::FullObject => b.checksum_crc64_nvme(self.text(crc)),
            Checksums::Composite => b.checksum_crc32_c(self.text(crc)),
        }
        .build()
    }
}

/// Where a part's bytes come from.
#[derive(Clone)]
pub(super) enum PartBody {
    /// The tarball's chunks, in memory.
    Chunks(Arc<[Bytes]>),
    /// A range of a published object of the run, read again on every try:
    /// a copy the server would not make.
    ReadBack {
        key: String,
        etag: Option<String>,
        start: u64,
    },
}

/// One part, uploaded with retries.
pub(super) struct PartJob {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) url: String,
    pub(super) upload_id: String,
    pub(super) number: i32,
    pub(super) body: PartBody,
    /// The part's CRCs and length.
    pub(super) crc: ObjectCrc,
    pub(super) checksums: Checksums,
    /// How hard it tries (the run's `--retries` and `--retry-for`).
    pub(super) policy: RetryPolicy,
}

/// One try of a part request gets this long, plus a second per MiB.
pub(super) fn part_timeout(len: u64) -> Duration {
    PART_TIMEOUT_BASE + Duration::from_secs(len / MIB)
}

/// The SDK's own retries off: ours have the run's backoff and patience.
pub(crate) fn no_sdk_retries() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new().retry_config(RetryConfig::disabled())
}

impl PartJob {
    pub(super) async fn run(self) -> Result<CompletedPart> {
        let len = self.crc.len;
        let timeout = part_timeout(len);
        let what = format!("UploadPart {} part {}", self.url, self.number);
        let sent = with_retries(&self.policy, &what, || async {
            let body = match &self.body {
                PartBody::Chunks(chunks) => part_body(chunks.clone()),
                PartBody::ReadBack { key, etag, start } => {
                    self.read_back(key, etag.as_deref(), *start).await?
                }
            };
            let req = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .part_number(self.number)
                .content_length(len as i64);
            let checksum = self.checksums.text(self.crc);
            let req = match self.checksums {
                Checksums::FullObject => req.checksum_crc64_nvme(checksum),
                Checksums::Composite => req.checksum_crc32_c(checksum),
            };
            let send = req
                .body(body)
                .customize()
                .config_override(no_sdk_retries())
                .send();
            match tokio::time::timeout(timeout, send).await {
                Ok(Ok(out)) => out
                    .e_tag()
                    .map(str::to_string)
                    .ok_or_else(|| RequestError::Retry("the answer has no ETag".into())),
                Ok(Err(e)) => Err(request_error(&e)),
                Err(_) => Err(RequestError::Retry(format!(
                    "no answer within {}s",
                    timeout.as_secs()
                ))),
            }
        })
        .await;
        match sent {
            Ok(etag) => Ok(self.checksums.completed(self.number, etag, self.crc)),
            Err(e) => Err(e.into_error(&what)),
        }
    }

    /// The part's range of a published object, as a streaming body (the
    /// upload's checksum makes the server check what arrives).
    async fn read_back(
        &self,
        key: &str,
        etag: Option<&str>,
        start: u64,
    ) -> std::result::Result<ByteStream, RequestError> {
        let range = (key, etag, start, self.crc.len);
        get_range(&self.client, &self.bucket, range).await
    }
}

/// Bytes `start..start + len` of `key` (of this version of it, with
/// `etag`), as a streaming body.
pub(super) async fn get_range(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    (key, etag, start, len): (&str, Option<&str>, u64, u64),
) -> std::result::Result<ByteStream, RequestError> {
    let end = start + len.max(1) - 1;
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={start}-{end}"))
        .set_if_match(etag.map(str::to_string))
        .customize()
        .config_override(no_sdk_retries())
        .send()
        .await;
    match got {
        Ok(out) => Ok(out.body),
        Err(e) if is_transient(&e) => Err(RequestError::Retry(format!(
            "reading it back from {key}: {}",
            error_text(&e)
        ))),
        Err(e) => Err(RequestError::Fatal(format!(
            "reading it back from {key}: {}",
            error_text(&e)
        ))),
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

/// The value of `x-amz-checksum-crc64nvme`: base64 of the big-endian CRC.
pub(crate) fn crc64_text(crc: u64) -> String {
    base64(&crc.to_be_bytes())
}

/// The value of `x-amz-checksum-crc32c`: base64 of the big-endian CRC.
pub(crate) fn checksum_text(crc: u32) -> String {
    base64(&crc.to_be_bytes())
}

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRC32C_POLY: u32 = 0x82F6_3B78;

    fn crc32c(data: &[u8]) -> u32 {
        ObjectCrc::of(data).crc32c
    }

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
            let c = ObjectCrc::of(&data[..split]).then(ObjectCrc::of(&data[split..]));
            assert_eq!(c.crc32c, crc32c(&data), "split {split}");
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
}
