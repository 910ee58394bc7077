//! How the decode thread waits on async work (opening, sidecars, reads):
//! until it is done, or the run or its artifact has stopped.

use std::io::{self, Read};

use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::source::ByteStream;

/// Blocks the decode thread on async work (opening, sidecars, reading)
/// until it is done or the scanning thread has gone.
#[derive(Clone)]
pub struct Wait {
    pub handle: Handle,
    pub stop: CancellationToken,
    /// Also stops the wait: work on this artifact is no longer needed.
    pub artifact: Option<CancellationToken>,
}

impl Wait {
    /// `work`'s result, or `stopped()` once the run stops.
    fn until<T, E>(
        &self,
        work: impl std::future::Future<Output = std::result::Result<T, E>>,
        stopped: impl FnOnce() -> E,
    ) -> std::result::Result<T, E> {
        let artifact = async {
            match &self.artifact {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        self.handle.block_on(async {
            tokio::select! {
                r = work => r,
                _ = self.stop.cancelled() => Err(stopped()),
                _ = artifact => Err(stopped()),
            }
        })
    }

    /// Whether the run, or work on this artifact, has stopped.
    pub(super) fn stopped(&self) -> bool {
        self.stop.is_cancelled() || self.artifact.as_ref().is_some_and(|t| t.is_cancelled())
    }

    pub fn on<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.until(work, || Error::internal("the run stopped"))
    }
}

/// A stored byte stream read from the decode thread (as `SyncIoBridge`
/// does, but a read gives up as soon as the run stops).
pub(super) struct Blocking {
    pub(super) stream: ByteStream,
    pub(super) wait: Wait,
}

impl Read for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Blocking { stream, wait } = self;
        wait.until(stream.read(buf), || io::Error::other("the run stopped"))
    }
}
