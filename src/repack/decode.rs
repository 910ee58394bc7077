//! Decompression of artifact archives.

use std::io::{self, Read};

use crate::plan::Compression;
use crate::source::verify::is_digest_error;

/// A decoder for `compression` over `input`. Decoder errors are reworded to
/// say which format failed; digest errors from below pass through as is.
pub fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    input: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let inner: Box<dyn Read + Send + 'a> = match compression {
        Compression::Zst => {
            let mut d = zstd::stream::read::Decoder::new(input)?;
            // Artifacts may be compressed with long windows.
            d.window_log_max(31)?;
            Box::new(d)
        }
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
    };
    Ok(Box::new(Annotate {
        inner,
        what: compression,
    }))
}

struct Annotate<'a> {
    inner: Box<dyn Read + Send + 'a>,
    what: Compression,
}

impl Read for Annotate<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if is_digest_error(&e) {
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
