//! Where tarballs go. A sink creates one writer per tarball; a writer takes
//! compressed chunks in order and is then finished, published or aborted.
//! Publication happens only after every tarball of the run is finished, so
//! a failed run publishes nothing.

pub mod dir;
#[cfg(feature = "net")]
pub mod s3;
pub mod stdout;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

#[async_trait]
pub trait Sink: Send + Sync {
    fn describe(&self) -> String;

    /// Starts a tarball. `size_bound` is an upper bound of its final size.
    async fn create(&self, file_name: &str, size_bound: u64) -> Result<Box<dyn TarballWriter>>;
}

#[async_trait]
pub trait TarballWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<()>;

    /// All bytes are written: make them durable, not yet visible.
    async fn finish(&mut self) -> Result<()>;

    /// Makes the tarball visible under its final name, then its sidecar.
    async fn publish(&mut self, sha256_hex: &str) -> Result<()>;

    /// Discards everything; never fails (best effort, logged).
    async fn abort(&mut self);

    /// Where it ended up, for the summary.
    fn location(&self) -> String;
}

/// `<hex>  <name>\n`, as sha256sum writes it.
pub fn sidecar_text(sha256_hex: &str, file_name: &str) -> String {
    format!("{sha256_hex}  {file_name}\n")
}
