//! Where artifacts come from. A source lists artifacts and opens each as a
//! byte stream; everything downstream is the same for every source.

pub mod buckets;
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

use crate::error::Result;
use crate::plan::{ArtifactName, SourceArtifact};

/// An artifact's stored bytes, as [`Source::open`] yields them.
pub type ByteStream = Box<dyn AsyncRead + Send + Unpin>;

/// A place that holds a run's artifacts: a directory, an S3 prefix or an
/// HTTP prefix.
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

/// What a source holds. Keys are relative to the source's root.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The artifact archives, with their sizes and sidecar keys.
    pub artifacts: Vec<SourceArtifact>,
    /// Keys of `therock_manifest.json` files under `manifests/`, in key
    /// order (`kpack` reads the top-level one first).
    pub run_manifests: Vec<String>,
    /// Files that are neither artifacts, their sidecars nor run manifests
    /// (logs, index pages, `python/`, `tarballs/`, ...), with why each is
    /// not an artifact, in key order.
    pub skipped: Vec<Skipped>,
}

/// A listed file that is not an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its key, relative to the source's root.
    pub key: String,
    /// Why it is not an artifact, for `-v`.
    pub why: String,
}

impl Listing {
    /// Logs the skipped files at debug level (`-v`), one line each.
    pub fn log_skipped(&self) {
        for s in &self.skipped {
            tracing::debug!(key = %s.key.escape_debug(), "skipped: {}", s.why);
        }
        if !self.skipped.is_empty() {
            tracing::debug!(
                "{} files at the source are not artifacts and were skipped",
                self.skipped.len()
            );
        }
    }
}

/// Turns listed keys (relative to the root) with their sizes into a
/// listing: artifacts are recognised by their basename, at any depth, and
/// paired with their `.sha256sum` sidecars. Like TheRock's own listing,
/// only files named `{name}_{component}_{target}.tar.{zst,xz}` are
/// artifacts: everything else a run prefix holds (`logs/**/ccache_logs.tar.zst`,
/// index pages, `python/`, `tarballs/`) is skipped, never an error.
pub fn collect(entries: &[(String, u64)]) -> Listing {
    let mut artifacts = Vec::new();
    let mut rest = Vec::new();
    for (key, size) in entries {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        match ArtifactName::parse(file_name) {
            Ok(Some(name)) => artifacts.push(SourceArtifact {
                name,
                key: key.clone(),
                size: *size,
                sha256_key: None,
            }),
            Ok(None) => rest.push(Skipped {
                key: key.clone(),
                why: "not an artifact archive (*.tar.zst or *.tar.xz)".into(),
            }),
            Err(why) => rest.push(Skipped {
                key: key.clone(),
                why,
            }),
        }
    }
    let mut used = std::collections::HashSet::new();
    let keys: std::collections::HashSet<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    for a in &mut artifacts {
        let sidecar = format!("{}.sha256sum", a.key);
        if keys.contains(sidecar.as_str()) {
            used.insert(sidecar.clone());
            a.sha256_key = Some(sidecar);
        }
    }
    let mut run_manifests: Vec<String> = entries
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| k.starts_with("manifests/") && k.ends_with("therock_manifest.json"))
        .collect();
    run_manifests.sort();
    used.extend(run_manifests.iter().cloned());
    let mut skipped: Vec<Skipped> = rest
        .into_iter()
        .filter(|s| !used.contains(&s.key))
        .collect();
    skipped.sort_by(|a, b| a.key.cmp(&b.key));
    artifacts.sort_by(|a, b| a.key.cmp(&b.key));
    Listing {
        artifacts,
        run_manifests,
        skipped,
    }
}
