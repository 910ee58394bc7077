//! Raw deflate blocks, pigz style: each block starts from a fresh
//! compressor primed with up to 32 KiB of history and ends on a sync flush,
//! so blocks concatenate into one deflate stream.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// The 10-byte gzip header: no name, no mtime (reproducible), OS = Unix.
pub fn header() -> Bytes {
    Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
}

pub fn compress_block(level: i32, data: &[u8], dictionary: Option<&[u8]>) -> Bytes {
    deflate(level, data, dictionary, FlushCompress::Sync)
}

/// Final deflate block (the tar end-of-archive), CRC32 and ISIZE.
pub fn trailer(level: i32, data: &[u8], crc: u32, len: u64) -> Bytes {
    let mut out = deflate(level, data, None, FlushCompress::Finish).to_vec();
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    Bytes::from(out)
}

/// Raw Deflate of `data` at `level` with `dictionary` as history, ended by
/// `flush` (Sync: more blocks may follow; Finish: a whole stream).
pub(super) fn deflate(
    level: i32,
    data: &[u8],
    dictionary: Option<&[u8]>,
    flush: FlushCompress,
) -> Bytes {
    // A fresh compressor per block: a reset one can carry state into the
    // next block (seen as run-to-run differences at low levels), and output
    // must depend on the input alone.
    let mut c = Compress::new(Compression::new(level as u32), false);
    if let Some(d) = dictionary {
        c.set_dictionary(d).expect("deflate dictionary");
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .expect("deflate never fails on valid input");
        let all_in = c.total_in() as usize == data.len();
        // A flush is complete once it stops filling the whole buffer.
        let done = match flush {
            FlushCompress::Finish => status == flate2::Status::StreamEnd,
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    Bytes::from(out)
}
