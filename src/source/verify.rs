//! SHA-256 verification of an artifact's stored bytes as they flow.

use std::io;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::io::{ReaderStream, StreamReader};

use super::fetch::tokio_stream_from;
use super::{ByteStream, Source};
use crate::error::{Error, Kind, Result, SourceFailure};
use crate::plan::SourceArtifact;

/// `--verify`: what to do about `.sha256sum` sidecars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum VerifyMode {
    /// Check a sidecar where one exists.
    Auto,
    /// Every artifact must have a sidecar.
    Require,
    /// Check nothing, even where a sidecar exists.
    Off,
}

/// Parses a sidecar: the hex digest is the first word of the first line.
pub fn parse_sidecar(text: &[u8]) -> std::result::Result<[u8; 32], String> {
    let text =
        std::str::from_utf8(text).map_err(|_| "sha256sum sidecar is not text".to_string())?;
    let word = text
        .split_whitespace()
        .next()
        .ok_or("sha256sum sidecar is empty")?;
    let bytes = hex::decode(word)
        .map_err(|_| format!("sha256sum sidecar: {word:?} is not a hex digest"))?;
    bytes
        .try_into()
        .map_err(|_| format!("sha256sum sidecar: {word:?} is not a 64-digit SHA-256 digest"))
}

/// Largest `.sha256sum` sidecar read: one digest and a file name.
pub const MAX_SIDECAR: u64 = 4096;

/// The digest `a` must have, from its sidecar at `source`, as `mode`
/// asks: None when there is nothing to check.
pub async fn expected_digest(
    source: &dyn Source,
    a: &SourceArtifact,
    mode: VerifyMode,
) -> Result<Option<[u8; 32]>> {
    let name = a.name.file_name();
    match (&a.sha256_key, mode) {
        (_, VerifyMode::Off) => Ok(None),
        (None, VerifyMode::Require) => Err(Error::artifact(
            &name,
            None,
            "no .sha256sum sidecar, and --verify require is set",
        )),
        (None, VerifyMode::Auto) => Ok(None),
        (Some(key), _) => {
            let text = source.read_small(key, MAX_SIDECAR).await?.ok_or_else(|| {
                Error::artifact(&name, None, format!("sidecar {key} disappeared"))
            })?;
            parse_sidecar(&text)
                .map(Some)
                .map_err(|e| Error::artifact(&name, None, e))
        }
    }
}

/// True for the error a `Verifier` raises on a mismatch.
pub fn is_digest_error(e: &io::Error) -> bool {
    SourceFailure::kind_of(e) == Some(Kind::DigestMismatch)
}

/// Checks `stream` against `expected` as its bytes pass: a task of the
/// async runtime hashes each chunk on its way to the reader (so hashing runs
/// beside decoding, not on the decode thread), and in place of the end of
/// the stream yields an error when the digest differs, so a bad artifact
/// never completes. Without a digest the stream is returned as it is.
pub fn verified(stream: ByteStream, expected: Option<[u8; 32]>, handle: &Handle) -> ByteStream {
    let Some(want) = expected else {
        return stream;
    };
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    handle.spawn(async move {
        let mut chunks = ReaderStream::with_capacity(stream, CHUNK);
        let mut hasher = Sha256::new();
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            if let Ok(c) = &chunk {
                hasher.update(c);
            }
            // The reader is gone only when the run is over.
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
        let got: [u8; 32] = hasher.finalize().into();
        if got != want {
            let _ = tx
                .send(Err(SourceFailure::io(
                    Kind::DigestMismatch,
                    format!(
                        "sha256 mismatch: sidecar says {}, content is {}",
                        hex::encode(want),
                        hex::encode(got)
                    ),
                )))
                .await;
        }
    });
    Box::new(StreamReader::new(tokio_stream_from(rx)))
}

/// Bytes hashed at a time, and chunks queued for the reader.
const CHUNK: usize = 256 << 10;
const QUEUE: usize = 4;

/// What the check of one artifact holds at most: the queued chunks and the
/// one being read.
pub const BUFFERED: usize = (QUEUE + 1) * CHUNK;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars() {
        let d = "ab".repeat(32);
        assert_eq!(
            parse_sidecar(format!("{d}  x.tar.zst\n").as_bytes()).unwrap(),
            [0xab; 32]
        );
        assert!(parse_sidecar(b"").is_err());
        assert!(parse_sidecar(b"xyz  file").is_err());
        assert!(parse_sidecar(b"abcd  file").is_err());
    }

    #[tokio::test]
    async fn mismatch_fails_at_end() {
        use tokio::io::AsyncReadExt;
        let data = vec![7u8; 3 * CHUNK + 5];
        let stream = |d: &[u8]| -> ByteStream { Box::new(std::io::Cursor::new(d.to_vec())) };
        let handle = Handle::current();
        let mut out = Vec::new();
        let mut v = verified(stream(&data), Some([0; 32]), &handle);
        let e = v.read_to_end(&mut out).await.unwrap_err();
        assert!(is_digest_error(&e), "{e}");
        // Every byte came through before the error.
        assert_eq!(out, data);
        let want: [u8; 32] = Sha256::digest(&data).into();
        let mut out = Vec::new();
        verified(stream(&data), Some(want), &handle)
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, data);
    }
}
