//! Decompression of artifact archives.

use std::io::{self, Read};

use crate::error::{Kind, SourceFailure};
use crate::plan::Compression;
use crate::units::exact_bytes;

/// Default `--max-unpacked-size`: far above any real artifact, low enough
/// to stop a decompression bomb before it costs hours.
pub const DEFAULT_MAX_UNPACKED: u64 = 256 << 30;

/// Largest zstd window (zstd --long=27) and xz dictionary accepted by
/// default: 128 MiB. Enough for any artifact seen (Python's lzma default
/// uses 8 MiB, xz -9 64 MiB); the limit bounds what a crafted header can
/// make the decoder allocate and fill, as it keeps that much history.
pub const MAX_WINDOW_LOG: u32 = 27;

/// A decoder for `compression` over `input` that fails once it has produced
/// more than `max_unpacked` bytes, with zstd windows and xz dictionaries of
/// up to 2^`MAX_WINDOW_LOG` bytes. Decoder errors are reworded to say which
/// format failed; source failures from below (downloads, digests) pass
/// through as is.
pub fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    input: R,
    max_unpacked: u64,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    decoder_with_window(compression, input, max_unpacked, MAX_WINDOW_LOG)
}

/// `decoder`, with zstd windows and xz dictionaries of up to
/// 2^`window_log_max` bytes (a memory budget's share).
pub fn decoder_with_window<'a, R: Read + Send + 'a>(
    compression: Compression,
    input: R,
    max_unpacked: u64,
    window_log_max: u32,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let inner: Box<dyn Read + Send + 'a> = match compression {
        Compression::Zst => {
            let mut d = zstd::stream::read::Decoder::new(input)?;
            d.window_log_max(window_log_max)?;
            Box::new(d)
        }
        Compression::Xz => {
            // The .xz format only (not legacy .lzma, which has no integrity
            // check), concatenated streams allowed, as `xz -d` does. The
            // memory limit is the dictionary plus the decoder's own state.
            let memlimit = (1u64 << window_log_max) + (1 << 20);
            let stream = liblzma::stream::Stream::new_stream_decoder(
                memlimit,
                liblzma::stream::CONCATENATED,
            )
            .map_err(io::Error::from)?;
            Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
        }
    };
    Ok(Box::new(Guarded {
        inner,
        what: compression,
        left: max_unpacked,
        limit: max_unpacked,
        window_log_max,
    }))
}

struct Guarded<'a> {
    inner: Box<dyn Read + Send + 'a>,
    what: Compression,
    left: u64,
    limit: u64,
    window_log_max: u32,
}

impl Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_inner(buf)?;
        if n as u64 > self.left {
            return Err(SourceFailure::io(
                Kind::TooLarge,
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
            let over_limit = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<liblzma::stream::Error>())
                == Some(&liblzma::stream::Error::MemLimit);
            if over_limit {
                return io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "xz stream needs a dictionary over {} to decode; refusing (memory)",
                        exact_bytes(1 << self.window_log_max)
                    ),
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::xz_with_dictionary;

    fn decode_all(c: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(c, data, u64::MAX)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn xz_dictionary_limit() {
        let data = b"rockpack ".repeat(1000);
        // 128 MiB (30): accepted; 256 MiB (32) and 4 GiB (40): refused
        // before anything is allocated.
        assert_eq!(
            decode_all(Compression::Xz, &xz_with_dictionary(&data, 30)).unwrap(),
            data
        );
        for b in [32, 40] {
            let e = decode_all(Compression::Xz, &xz_with_dictionary(&data, b)).unwrap_err();
            assert!(e.to_string().contains("dictionary over 128 MiB"), "{e}");
        }
        // A smaller budget: 8 MiB (22) passes, 16 MiB (24) does not.
        let with_window = |b, log| {
            let mut out = Vec::new();
            decoder_with_window(
                Compression::Xz,
                &xz_with_dictionary(&data, b)[..],
                u64::MAX,
                log,
            )?
            .read_to_end(&mut out)
            .map(|_| out)
        };
        assert!(with_window(22, 23).is_ok());
        let e = with_window(24, 23).unwrap_err();
        assert!(e.to_string().contains("dictionary over 8 MiB"), "{e}");
    }

    #[test]
    fn xz_only_not_legacy_lzma() {
        let data = b"rockpack ".repeat(100);
        let mut alone = Vec::new();
        let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
        let mut enc = liblzma::write::XzEncoder::new_stream(&mut alone, stream);
        std::io::Write::write_all(&mut enc, &data).unwrap();
        enc.finish().unwrap();
        let e = decode_all(Compression::Xz, &alone).unwrap_err();
        assert!(
            e.to_string().contains("corrupt or truncated xz stream"),
            "{e}"
        );
    }

    #[test]
    fn zstd_window_limit() {
        let data = b"rockpack ".repeat(1000);
        let frame = |window_log: u32| {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(window_log))
                .unwrap();
            std::io::Write::write_all(&mut enc, &data).unwrap();
            enc.finish().unwrap()
        };
        assert_eq!(decode_all(Compression::Zst, &frame(27)).unwrap(), data);
        let e = decode_all(Compression::Zst, &frame(28)).unwrap_err();
        assert!(
            e.to_string().contains("corrupt or truncated zstd stream"),
            "{e}"
        );
    }
}
