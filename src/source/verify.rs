//! SHA-256 verification of an artifact's stored bytes as they flow.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// `--verify`: what to do about `.sha256sum` sidecars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum VerifyMode {
    /// Check a sidecar where one exists.
    Auto,
    /// Every artifact must have a sidecar.
    Require,
    Off,
}

/// Parses a sidecar: the hex digest is the first word of the first line.
pub fn parse_sidecar(text: &[u8]) -> Result<[u8; 32], String> {
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

/// True for the error a `Verifier` raises on a mismatch.
pub fn is_digest_error(e: &io::Error) -> bool {
    super::SourceFailure::is(e) && e.to_string().starts_with("sha256 mismatch")
}

/// Hashes what passes through and fails the read that reaches the end when
/// the digest differs, so a bad artifact never completes.
pub struct Verifier<R> {
    inner: R,
    hasher: Sha256,
    expected: Option<[u8; 32]>,
    reached_end: Arc<AtomicBool>,
}

impl<R: Read> Verifier<R> {
    /// The flag turns true once the whole stream was read (and verified).
    pub fn new(inner: R, expected: Option<[u8; 32]>) -> (Self, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (
            Verifier {
                inner,
                hasher: Sha256::new(),
                expected,
                reached_end: flag.clone(),
            },
            flag,
        )
    }
}

impl<R: Read> Read for Verifier<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        if !buf.is_empty() && !self.reached_end.load(Ordering::Relaxed) {
            if let Some(want) = self.expected {
                let got: [u8; 32] = self.hasher.clone().finalize().into();
                if got != want {
                    return Err(super::SourceFailure::io(format!(
                        "sha256 mismatch: sidecar says {}, content is {}",
                        hex::encode(want),
                        hex::encode(got)
                    )));
                }
            }
            self.reached_end.store(true, Ordering::Relaxed);
        }
        Ok(0)
    }
}

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

    #[test]
    fn mismatch_fails_at_end() {
        let (mut v, done) = Verifier::new(&b"hello"[..], Some([0; 32]));
        let mut out = Vec::new();
        let e = v.read_to_end(&mut out).unwrap_err();
        assert!(is_digest_error(&e));
        assert!(!done.load(Ordering::Relaxed));
        let want: [u8; 32] = Sha256::digest(b"hello").into();
        let (mut v, done) = Verifier::new(&b"hello"[..], Some(want));
        v.read_to_end(&mut out).unwrap();
        assert!(done.load(Ordering::Relaxed));
    }
}
