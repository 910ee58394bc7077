//! Standard output, for a plan of exactly one tarball. Bytes are visible as
//! they are written, so on failure the process only exits non-zero.

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{Chunk, Sink, TarballWriter};
use crate::error::{Error, Result};
use crate::plan::TarballPlan;

/// Writes the run's one tarball to standard output.
pub struct StdoutSink;

#[async_trait]
impl Sink for StdoutSink {
    fn describe(&self) -> String {
        "standard output".into()
    }

    async fn create(
        &self,
        _index: usize,
        _tarball: &TarballPlan,
        _origin: bool,
    ) -> Result<Box<dyn TarballWriter>> {
        Ok(Box::new(StdoutWriter {
            out: tokio::io::stdout(),
        }))
    }
}

struct StdoutWriter {
    out: tokio::io::Stdout,
}

#[async_trait]
impl TarballWriter for StdoutWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<()> {
        let chunk = chunk.bytes;
        self.out
            .write_all(&chunk)
            .await
            .map_err(|e| Error::write("writing to standard output", e))
    }

    async fn finish(&mut self) -> Result<()> {
        self.out
            .flush()
            .await
            .map_err(|e| Error::write("writing to standard output", e))
    }

    async fn publish(&mut self, _sha256_hex: &str) -> Result<()> {
        Ok(())
    }

    async fn abort(&mut self) {}

    fn location(&self) -> String {
        "-".into()
    }
}
