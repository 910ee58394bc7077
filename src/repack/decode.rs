//! Decompression of artifact archives.

use std::io::{self, Read};

use crate::plan::Compression;
use crate::source::SourceFailure;

/// Default `--max-unpacked-size`: far above any real artifact, low enough
/// to stop a decompression bomb before it costs hours.
pub const DEFAULT_MAX_UNPACKED: u64 = 256 << 30;

/// A decoder for `compression` over `input` that fails once it has produced
/// more than `max_unpacked` bytes. Decoder errors are reworded to say which
/// format failed; source failures from below (downloads, digests) pass through as is.
pub fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    input: R,
    max_unpacked: u64,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let inner: Box<dyn Read + Send + 'a> = match compression {
        Compression::Zst => {
            let mut d = zstd::stream::read::Decoder::new(input)?;
            // Up to 128 MiB windows (zstd --long=27): enough for any
            // artifact seen, and bounds what a crafted frame can make the
            // decoder allocate.
            d.window_log_max(27)?;
            Box::new(d)
        }
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
    };
    Ok(Box::new(Guarded {
        inner,
        what: compression,
        left: max_unpacked,
        limit: max_unpacked,
    }))
}

struct Guarded<'a> {
    inner: Box<dyn Read + Send + 'a>,
    what: Compression,
    left: u64,
    limit: u64,
}

impl Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_inner(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompresses to more than {} bytes (--max-unpacked-size); refusing a possible decompression bomb",
                    self.limit
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl Guarded<'_> {
    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if SourceFailure::is(&e) {
                return e;
            }
            let name = match self.what {
                Compression::Zst => "zstd",
                Compression::Xz => "xz",
            };
            let why = if e.kind() == io::ErrorKind::UnexpectedEof {
                "truncated".to_string()
            } else {
                e.to_string()
            };
            io::Error::new(
                e.kind(),
                format!("corrupt or truncated {name} stream ({why})"),
            )
        })
    }
}
