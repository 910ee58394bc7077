//! The CRCs S3 keeps of an object: CRC-64/NVME (full-object checksums) and
//! CRC-32C (the composite fallback). Both combine: the CRC of `a ‖ b` comes
//! from the CRCs of `a` and `b` and the length of `b`, so each compressed
//! block is checksummed once, on the compression thread that made it, and
//! every tarball, part and copied range that holds it combines that value
//! instead of reading the bytes again.

use crc_fast::CrcAlgorithm::{Crc32Iscsi, Crc64Nvme};

/// An object checksum as the store keeps it, for the summary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoredChecksum {
    /// `CRC64NVME` or `CRC32C`.
    pub algorithm: &'static str,
    /// `FULL_OBJECT` (the checksum of the bytes, however they were split)
    /// or `COMPOSITE` (a checksum of the parts' checksums, `-N` parts).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Base64, as S3 gives it.
    pub value: String,
}

/// CRC-64/NVME and CRC-32C of some bytes, and their length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectCrc {
    /// CRC-64/NVME, as S3's `CRC64NVME`.
    pub crc64nvme: u64,
    /// CRC-32C (Castagnoli), as S3's `CRC32C`.
    pub crc32c: u32,
    /// How many bytes they cover.
    pub len: u64,
}

impl ObjectCrc {
    /// The CRCs of `data`.
    pub fn of(data: &[u8]) -> ObjectCrc {
        ObjectCrc {
            crc64nvme: crc_fast::checksum(Crc64Nvme, data),
            crc32c: crc_fast::checksum(Crc32Iscsi, data) as u32,
            len: data.len() as u64,
        }
    }

    /// The CRCs of `self`'s bytes followed by `next`'s.
    pub fn then(self, next: ObjectCrc) -> ObjectCrc {
        if next.len == 0 {
            return self;
        }
        if self.len == 0 {
            return next;
        }
        ObjectCrc {
            crc64nvme: crc_fast::checksum_combine(
                Crc64Nvme,
                self.crc64nvme,
                next.crc64nvme,
                next.len,
            ),
            crc32c: crc_fast::checksum_combine(
                Crc32Iscsi,
                u64::from(self.crc32c),
                u64::from(next.crc32c),
                next.len,
            ) as u32,
            len: self.len + next.len,
        }
    }

    /// Adds `next` at the end.
    pub fn append(&mut self, next: ObjectCrc) {
        *self = self.then(next);
    }
}

/// The CRCs of pieces laid end to end, in order.
impl std::iter::Sum for ObjectCrc {
    fn sum<I: Iterator<Item = ObjectCrc>>(pieces: I) -> ObjectCrc {
        pieces.fold(ObjectCrc::default(), ObjectCrc::then)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The check values of the CRC catalogue for "123456789".
        let c = ObjectCrc::of(b"123456789");
        assert_eq!(c.crc32c, 0xE306_9283);
        assert_eq!(c.crc64nvme, 0xAE8B_1486_0A79_9888);
        assert_eq!(ObjectCrc::of(b""), ObjectCrc::default());
    }

    #[test]
    fn any_split_combines_to_the_whole() {
        let mut rng = fastrand::Rng::with_seed(3);
        let data: Vec<u8> = (0..20_000).map(|_| rng.u8(..)).collect();
        let whole = ObjectCrc::of(&data);
        for cuts in [
            vec![],
            vec![0],
            vec![1],
            vec![7, 7, 19_999],
            vec![100, 5000, 12_345],
        ] {
            let mut at = 0;
            let mut pieces = Vec::new();
            for &cut in cuts.iter().chain([data.len()].iter()) {
                pieces.push(ObjectCrc::of(&data[at..cut]));
                at = cut;
            }
            assert_eq!(
                pieces.into_iter().sum::<ObjectCrc>(),
                whole,
                "cuts {cuts:?}"
            );
        }
    }
}
