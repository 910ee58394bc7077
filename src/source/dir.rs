//! A local directory of artifacts (TheRock's local staging layout: the
//! archives side by side, sidecars next to them).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use super::{collect, ByteStream, Listing, Source};
use crate::error::{Error, Kind, Result};
use crate::plan::SourceArtifact;

/// Artifacts in a local directory tree.
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// The tree below `root`; nothing is read until it is listed.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

#[async_trait]
impl Source for DirSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn list(&self) -> Result<Listing> {
        let root = self.root.clone();
        let entries = tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| Error::internal(format!("listing failed: {e}")))?
            .map_err(|e| Error::io(format!("listing {}", self.root.display()), e))?;
        Ok(collect(&entries))
    }

    async fn open(&self, artifact: &SourceArtifact, _buffer: usize) -> Result<ByteStream> {
        let path = self.path(&artifact.key);
        let f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(1 << 20, f)))
    }

    async fn read_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        read_small_file(&self.path(key), limit).await
    }
}

async fn read_small_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if buf.len() as u64 > limit {
        return Err(Error::failed(
            Kind::Malformed,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(Some(buf))
}

/// Every regular file below `root` as (relative key with '/', size), in a
/// stable order. Symlinked directories are not followed.
pub(crate) fn walk(root: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push((e.path(), key));
            } else if ft.is_file() || (ft.is_symlink() && e.path().is_file()) {
                out.push((key, std::fs::metadata(e.path())?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}
