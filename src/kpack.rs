//! Whether a run is kpack-split, the one fact about a run that selection
//! needs from outside the artifact names (the multiarch tarball and
//! per-target tarballs depend on it). Everything rockpack knows about
//! TheRock's run manifest lives here: where it is published, where it lies
//! inside `base_lib_generic`, and the flag it carries. Reading it inside an
//! archive goes through the repacker's own manifest and member readers, so
//! it refuses what repacking refuses.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use crate::error::{Error, Kind, Result};
use crate::plan::{MultiarchMode, PlanOptions, SourceArtifact};
use crate::repack::tar_reader::TarReader;
use crate::repack::{decode, read_manifest, read_small_member};
use crate::source::{ByteStream, Listing, Source};
use crate::units::MIB;

/// Key of the run manifest TheRock publishes beside the artifacts (newer
/// runs put one per artifact group under `manifests/{group}/`).
pub const RUN_MANIFEST_KEY: &str = "manifests/therock_manifest.json";

/// Where the run manifest lies inside `base_lib_generic`, below its
/// manifest prefix.
const IN_ARCHIVE: &[u8] = b"share/therock/therock_manifest.json";

/// Largest run manifest read, published or inside an archive.
const MAX_RUN_MANIFEST: u64 = MIB;

/// Download buffer for peeking into `base_lib_generic`.
const PEEK_BUFFER: usize = 8 << 20;

/// Whether the plan `opts` asks for depends on the kpack flag (see
/// `build_plan`): `--multiarch auto`, `--per-target` and `--targets`.
pub fn needed(opts: &PlanOptions) -> bool {
    opts.multiarch == MultiarchMode::Auto || opts.per_target || !opts.targets.is_empty()
}

/// Whether the run is kpack-split: from `manifests/therock_manifest.json`
/// when published, else (when `peek` is set) from the copy inside
/// `base_lib_generic`, reading that archive only up to that member.
pub async fn detect(
    source: &Arc<dyn Source>,
    listing: &Listing,
    peek: bool,
) -> Result<Option<bool>> {
    // Published manifests: the top-level one, else any artifact group's
    // (every group of one run has the same flags).
    let groups = listing
        .run_manifests
        .iter()
        .map(String::as_str)
        .filter(|k| *k != RUN_MANIFEST_KEY);
    for key in std::iter::once(RUN_MANIFEST_KEY).chain(groups) {
        if let Some(json) = source.read_small(key, MAX_RUN_MANIFEST).await? {
            return kpack_flag(&json).map(Some);
        }
    }
    if !peek {
        return Ok(None);
    }
    let Some(base) = listing
        .artifacts
        .iter()
        .filter(|a| a.name.name == "base" && a.name.component == "lib" && a.name.is_generic())
        .min_by_key(|a| a.name.compression)
    else {
        return Ok(None);
    };
    // Read straight through: nothing else downloads meanwhile.
    let stream = source.open(base, PEEK_BUFFER).await?;
    let (base, handle) = (base.clone(), Handle::current());
    let json = tokio::task::spawn_blocking(move || find_run_manifest(&base, stream, handle))
        .await
        .map_err(|e| Error::internal(format!("manifest reader failed: {e}")))??;
    json.map(|j| kpack_flag(&j)).transpose()
}

/// Whether the run manifest says the artifacts are kpack-split.
pub fn kpack_flag(manifest_json: &[u8]) -> Result<bool> {
    let v: serde_json::Value = serde_json::from_slice(manifest_json).map_err(|e| {
        Error::failed(
            Kind::Malformed,
            format!("therock_manifest.json is not valid JSON: {e}"),
        )
    })?;
    Ok(v.get("flags")
        .and_then(|f| f.get("KPACK_SPLIT_ARTIFACTS"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false))
}

/// The run manifest inside artifact `a`, read from `stream` on a blocking
/// thread, or None when the archive has none.
fn find_run_manifest(
    a: &SourceArtifact,
    stream: ByteStream,
    handle: Handle,
) -> Result<Option<Vec<u8>>> {
    let name = a.name.file_name();
    let decoded = decode::decoder(
        a.name.compression,
        SyncIoBridge::new_with_handle(stream, handle),
        decode::DEFAULT_MAX_UNPACKED,
    )
    .map_err(|e| Error::artifact(&name, None, e.to_string()))?;
    let mut tar = TarReader::new(decoded);
    let manifest = read_manifest(&mut tar, &name)?;
    while let Some(m) = tar.next_member().map_err(|e| e.into_error(&name))? {
        if let Ok(Some(rel)) = manifest.strip(&m.path) {
            if rel == IN_ARCHIVE {
                return read_small_member(&mut tar, &name, &m, MAX_RUN_MANIFEST).map(Some);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{compress, raw_tar, Member};
    use crate::plan::Compression;
    use crate::source::dir::DirSource;

    const KPACK: &[u8] = br#"{"flags": {"KPACK_SPLIT_ARTIFACTS": true}}"#;

    /// A run directory holding `base_lib_generic.tar.zst` made of `tar`.
    fn run_with_base(tar: &[u8]) -> (tempfile::TempDir, Arc<dyn Source>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base_lib_generic.tar.zst"),
            compress(tar, Compression::Zst),
        )
        .unwrap();
        let source: Arc<dyn Source> = Arc::new(DirSource::new(dir.path()));
        (dir, source)
    }

    /// `base_lib_generic`'s tar, holding `json` as its run manifest.
    fn base_holding(json: &[u8]) -> Vec<u8> {
        let path = "base/share/therock/therock_manifest.json";
        raw_tar(Some(&["base"]), &[Member::file(path, json)])
    }

    async fn detect_in(source: &Arc<dyn Source>) -> Result<Option<bool>> {
        let listing = source.list().await?;
        detect(source, &listing, true).await
    }

    #[tokio::test]
    async fn published_manifest_comes_first() {
        let (dir, source) = run_with_base(&raw_tar(Some(&["base"]), &[]));
        std::fs::create_dir(dir.path().join("manifests")).unwrap();
        std::fs::write(dir.path().join(RUN_MANIFEST_KEY), KPACK).unwrap();
        let listing = source.list().await.unwrap();
        assert_eq!(detect(&source, &listing, false).await.unwrap(), Some(true));
    }

    #[tokio::test]
    async fn peeks_into_base_lib_generic() {
        let (_dir, source) = run_with_base(&base_holding(KPACK));
        assert_eq!(detect_in(&source).await.unwrap(), Some(true));
        let listing = source.list().await.unwrap();
        assert_eq!(detect(&source, &listing, false).await.unwrap(), None);
    }

    /// An oversized run manifest inside the archive is refused, as repacking
    /// refuses an oversized `artifact_manifest.txt` (it was once skipped).
    #[tokio::test]
    async fn oversized_run_manifest_is_refused() {
        let big = vec![b' '; MAX_RUN_MANIFEST as usize + 1];
        let (_dir, source) = run_with_base(&base_holding(&big));
        let e = detect_in(&source).await.unwrap_err().to_string();
        assert!(
            e.contains("therock_manifest.json is 1048577 bytes, over the 1 MiB limit"),
            "{e}"
        );
        assert!(e.contains("base_lib_generic.tar.zst"), "{e}");
    }

    /// The artifact manifest goes through the repacker's reader: oversized,
    /// it is refused with the repacker's words (it was once truncated).
    #[tokio::test]
    async fn oversized_artifact_manifest_is_refused_as_repack_refuses_it() {
        let mut text = b"base\n".to_vec();
        text.resize(crate::repack::flatten::MAX_MANIFEST as usize + 1, b'\n');
        let tar = raw_tar(None, &[Member::file("artifact_manifest.txt", text)]);
        let (_dir, source) = run_with_base(&tar);
        let e = detect_in(&source).await.unwrap_err().to_string();
        assert!(
            e.contains("artifact_manifest.txt is 1048577 bytes, over the 1 MiB limit"),
            "{e}"
        );
    }
}
