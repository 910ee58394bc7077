//! Where artifacts come from. A source lists artifacts and opens each as a
//! byte stream; everything downstream is the same for every source.

pub mod dir;
pub mod fetch;
#[cfg(feature = "net")]
pub mod http;
pub mod location;
#[cfg(feature = "net")]
pub mod s3;
pub mod verify;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
use crate::plan::{ArtifactName, SourceArtifact};

pub type ByteStream = Box<dyn AsyncRead + Send + Unpin>;

#[async_trait]
pub trait Source: Send + Sync {
    /// For messages: the directory, bucket/prefix or URL.
    fn describe(&self) -> String;

    /// Every artifact archive below the source (recursively), and the run
    /// manifests found there.
    async fn list(&self) -> Result<Listing>;

    /// The archive's bytes, as stored. Network sources start downloading
    /// at once, ahead of the reader, into a buffer of at most `buffer`
    /// bytes: opening the next artifacts early is how the pipeline reads
    /// ahead.
    async fn open(&self, artifact: &SourceArtifact, buffer: usize) -> Result<ByteStream>;

    /// A small object by key (sidecars, the run manifest), or None when it
    /// does not exist. More than `limit` bytes is an error.
    async fn read_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>>;
}

/// An I/O error raised by a source below the decoder (a download that gave
/// up, a digest mismatch): decoders pass it through unchanged, so it is not
/// mistaken for a corrupt archive.
#[derive(Debug)]
pub struct SourceFailure(pub String);

impl std::fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceFailure {}

impl SourceFailure {
    pub fn io(message: String) -> std::io::Error {
        std::io::Error::other(SourceFailure(message))
    }

    /// Whether `e` (or the error inside it) is a source failure.
    pub fn is(e: &std::io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<SourceFailure>())
    }
}

/// What a source holds. Keys are relative to the source's root.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub artifacts: Vec<SourceArtifact>,
    /// Keys of `therock_manifest.json` files under `manifests/`, the
    /// top-level one first.
    pub run_manifests: Vec<String>,
}

/// Key of the run manifest TheRock publishes beside the artifacts (newer
/// runs put one per artifact group under `manifests/{group}/`).
pub const RUN_MANIFEST_KEY: &str = "manifests/therock_manifest.json";

/// Turns listed keys (relative to the root) with their sizes into a
/// listing: artifacts are recognised by their basename, and paired with
/// their `.sha256sum` sidecars.
pub fn collect(entries: &[(String, u64)]) -> Result<Listing> {
    let keys: std::collections::HashSet<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let mut run_manifests: Vec<String> = entries
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| k.starts_with("manifests/") && k.ends_with("therock_manifest.json"))
        .collect();
    run_manifests.sort_by_key(|k| (k != RUN_MANIFEST_KEY, k.clone()));
    let mut out = Vec::new();
    for (key, size) in entries {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let Some(name) = ArtifactName::parse(file_name).map_err(Error::Selection)? else {
            continue;
        };
        let sidecar = format!("{key}.sha256sum");
        out.push(SourceArtifact {
            name,
            key: key.clone(),
            size: *size,
            sha256_key: keys.contains(sidecar.as_str()).then_some(sidecar),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Listing {
        artifacts: out,
        run_manifests,
    })
}

/// Whether the run manifest says the artifacts are kpack-split.
pub fn kpack_flag(manifest_json: &[u8]) -> Result<bool> {
    let v: serde_json::Value = serde_json::from_slice(manifest_json)
        .map_err(|e| Error::Other(format!("therock_manifest.json is not valid JSON: {e}")))?;
    Ok(v.get("flags")
        .and_then(|f| f.get("KPACK_SPLIT_ARTIFACTS"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false))
}
