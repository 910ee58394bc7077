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
use crate::plan::TarballPlan;

/// A destination for a run's tarballs.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Where the tarballs go, for messages.
    fn describe(&self) -> String;

    /// Starts a tarball: its name, format, sidecar and size bound are the
    /// plan's.
    async fn create(&self, tarball: &TarballPlan) -> Result<Box<dyn TarballWriter>>;
}

/// One tarball on its way into a sink.
#[async_trait]
pub trait TarballWriter: Send {
    /// Appends the next compressed bytes.
    async fn write(&mut self, chunk: Bytes) -> Result<()>;

    /// All bytes are written: make them durable, not yet visible.
    async fn finish(&mut self) -> Result<()>;

    /// Makes the tarball visible under its final name, then its sidecar
    /// (the plan's, if it has one).
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
