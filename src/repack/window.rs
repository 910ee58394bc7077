//! The history an archive's decoder keeps, as its own header declares it:
//! a zstd frame's window, an xz block's LZMA2 dictionary. A run budgets
//! each artifact what it declares (TheRock's zstd-3 artifacts declare
//! 2 MiB, xz -6 ones 8 MiB) instead of the largest window it accepts.

use crate::plan::Compression;

/// Bytes of an archive's start that hold the declaration: a zstd frame
/// header is at most 18 bytes, an xz stream header and block header at
/// most 12 + 1024 (in practice 12 + 12).
pub const PEEK: usize = 64;

/// The window `head` (an archive's first bytes) declares, or `None` when
/// it cannot be told from them (another frame type, a header that does not
/// fit in [`PEEK`] bytes, or not this format at all: the decoder reports
/// that).
pub fn declared(compression: Compression, head: &[u8]) -> Option<u64> {
    match compression {
        Compression::Zst => zstd_window(head),
        Compression::Xz => xz_dictionary(head),
    }
}

/// RFC 8878, 3.1.1.1: magic, frame header descriptor, then the window
/// descriptor, or (single segment) the content size as the window.
fn zstd_window(head: &[u8]) -> Option<u64> {
    if head.get(..4)? != [0x28, 0xB5, 0x2F, 0xFD] {
        return None;
    }
    let fhd = *head.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let wd = *head.get(5)?;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        return Some(base + (base / 8) * u64::from(wd & 7));
    }
    let dict_id = [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = [1, 2, 4, 8][usize::from(fhd >> 6)];
    let at = 5 + dict_id;
    let field = head.get(at..at + fcs_len)?;
    let mut v = [0u8; 8];
    v[..fcs_len].copy_from_slice(field);
    let size = u64::from_le_bytes(v);
    Some(if fcs_len == 2 { size + 256 } else { size })
}

/// The xz file format 1.0.4, 2.1.1 and 3.1: stream header, then the first
/// block's header, whose last filter is LZMA2 (id 0x21) with one property
/// byte, the dictionary size.
fn xz_dictionary(head: &[u8]) -> Option<u64> {
    if head.get(..6)? != [0xFD, b'7', b'z', b'X', b'Z', 0] {
        return None;
    }
    let block = head.get(12..)?;
    let size = (usize::from(*block.first()?) + 1) * 4;
    if block[0] == 0 {
        // The index: an empty stream decodes with no dictionary.
        return Some(0);
    }
    let header = block.get(..size)?;
    let flags = header[1];
    let mut i = 2;
    let varint = |i: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..63).step_by(7) {
            let b = *header.get(*i)?;
            *i += 1;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
        if present {
            varint(&mut i)?;
        }
    }
    let mut dictionary = None;
    for _ in 0..=(flags & 3) {
        let id = varint(&mut i)?;
        let props = varint(&mut i)? as usize;
        let p = header.get(i..i + props)?;
        i += props;
        if id == 0x21 && props == 1 {
            let d = u32::from(p[0] & 0x3F);
            dictionary = match d {
                0..=39 => Some(u64::from(2 | (d & 1)) << (d / 2 + 11)),
                40 => Some(u64::from(u32::MAX)),
                _ => None,
            };
        }
    }
    dictionary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::xz_with_dictionary;

    fn zstd_with(level: i32, window_log: Option<u32>, data: &[u8]) -> Vec<u8> {
        let mut e = zstd::stream::Encoder::new(Vec::new(), level).unwrap();
        if let Some(w) = window_log {
            e.window_log(w).unwrap();
        }
        e.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn zstd_frames_declare_their_window() {
        let data = vec![7u8; 1 << 20];
        // Level 3 on a stream of unknown size: 2 MiB, as pyzstd writes TheRock's.
        assert_eq!(
            declared(Compression::Zst, &zstd_with(3, None, &data)),
            Some(2 << 20)
        );
        assert_eq!(
            declared(Compression::Zst, &zstd_with(19, Some(27), &data)),
            Some(128 << 20)
        );
        // A frame of known small size: one segment, the content size.
        let one = zstd::bulk::compress(&data[..1000], 3).unwrap();
        assert_eq!(declared(Compression::Zst, &one), Some(1000));
        // Not a zstd frame.
        assert_eq!(declared(Compression::Zst, b"not zstd at all"), None);
        assert_eq!(declared(Compression::Zst, &[0x28, 0xB5]), None);
    }

    #[test]
    fn xz_blocks_declare_their_dictionary() {
        let data = b"some bytes to compress, some bytes to compress".repeat(100);
        // Byte d: (2 | (d & 1)) << (d / 2 + 11).
        for (byte, dict) in [
            (18u8, 2u64 << 20),
            (19, 3 << 20),
            (22, 8 << 20),
            (24, 16 << 20),
        ] {
            let xz = xz_with_dictionary(&data, byte);
            assert_eq!(declared(Compression::Xz, &xz), Some(dict), "{byte}");
        }
        assert_eq!(declared(Compression::Xz, b"\xFD7zXZ\0"), None);
        assert_eq!(declared(Compression::Xz, b"plain text"), None);
    }
}
