//! A local directory: each tarball is written as `NAME.partial` and renamed
//! when the run succeeds; its sidecar (`.sha256sum` or `.sha256`) follows.

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{sidecar_text, Chunk, Sink, TarballWriter};
use crate::error::{Error, Result};
use crate::plan::TarballPlan;

/// Writes tarballs into a local directory.
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// Into `root`, which is created (with its parents) where missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSink { root: root.into() }
    }
}

#[async_trait]
impl Sink for DirSink {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn create(
        &self,
        _index: usize,
        tarball: &TarballPlan,
        _origin: bool,
    ) -> Result<Box<dyn TarballWriter>> {
        let file_name = tarball.file_name.as_str();
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|e| Error::write(format!("creating {}", self.root.display()), e))?;
        let final_path = self.root.join(file_name);
        let partial = self.root.join(format!("{file_name}.partial"));
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| Error::write(format!("creating {}", partial.display()), e))?;
        Ok(Box::new(DirWriter {
            file: Some(tokio::io::BufWriter::with_capacity(1 << 20, file)),
            partial,
            final_path,
            file_name: file_name.to_string(),
            sidecar: tarball.sidecar.clone(),
            published: Vec::new(),
        }))
    }
}

struct DirWriter {
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    partial: PathBuf,
    final_path: PathBuf,
    file_name: String,
    sidecar: Option<String>,
    /// Final-named files this writer created, removed again on abort.
    published: Vec<PathBuf>,
}

#[async_trait]
impl TarballWriter for DirWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<()> {
        let chunk = chunk.bytes;
        let f = self.file.as_mut().expect("write after finish");
        f.write_all(&chunk)
            .await
            .map_err(|e| Error::write(format!("writing {}", self.partial.display()), e))
    }

    async fn finish(&mut self) -> Result<()> {
        let mut f = self.file.take().expect("finish once");
        let ctx = || format!("writing {}", self.partial.display());
        f.flush().await.map_err(|e| Error::write(ctx(), e))?;
        f.get_ref()
            .sync_all()
            .await
            .map_err(|e| Error::write(ctx(), e))?;
        Ok(())
    }

    async fn publish(&mut self, sha256_hex: &str) -> Result<()> {
        tokio::fs::rename(&self.partial, &self.final_path)
            .await
            .map_err(|e| Error::write(format!("renaming {}", self.partial.display()), e))?;
        self.published.push(self.final_path.clone());
        let Some(name) = &self.sidecar else {
            return Ok(());
        };
        let sidecar = self.root_join(name);
        let tmp = self.root_join(&format!("{name}.partial"));
        let ctx = || format!("writing {}", tmp.display());
        tokio::fs::write(&tmp, sidecar_text(sha256_hex, &self.file_name))
            .await
            .map_err(|e| Error::write(ctx(), e))?;
        tokio::fs::rename(&tmp, &sidecar)
            .await
            .map_err(|e| Error::write(ctx(), e))?;
        self.published.push(sidecar);
        Ok(())
    }

    async fn abort(&mut self) {
        self.file.take();
        let tmp = self
            .sidecar
            .as_ref()
            .map(|name| self.root_join(&format!("{name}.partial")));
        for p in std::iter::once(&self.partial)
            .chain(tmp.iter())
            .chain(self.published.iter())
        {
            match tokio::fs::remove_file(p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("could not remove {}: {e}", p.display()),
            }
        }
        self.published.clear();
    }

    fn location(&self) -> String {
        self.final_path.display().to_string()
    }
}

impl DirWriter {
    fn root_join(&self, name: &str) -> PathBuf {
        self.final_path.with_file_name(name)
    }
}
