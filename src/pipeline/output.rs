//! The tarballs being written: each one's writer, digest and content so
//! far, its trailer, where its bytes are first written
//! ([`Origins`]), and the steps that finish, publish or abort them all.

use std::sync::Arc;

use bytes::Bytes;

use super::checksum::TarballSha;
use crate::codec::{Codec, Tail, TarballContent};
use crate::error::{Error, Result};
use crate::object_crc::ObjectCrc;
use crate::plan::Format;
use crate::repack::at_end::zip_directories;
use crate::repack::tarfmt::END_OF_ARCHIVE;
use crate::sink::{Chunk, Holders, Origin, Sink, TarballWriter};

/// One tarball being written.
pub(super) struct Output {
    pub(super) writer: Box<dyn TarballWriter>,
    pub(super) codec: Codec,
    pub(super) sha: TarballSha,
    pub(super) content: TarballContent,
    pub(super) bytes: u64,
    pub(super) done_at: Option<f64>,
}

/// Bytes read back at a time to be written again.
const AGAIN_AT_ONCE: u64 = 4 << 20;

impl Output {
    pub(super) async fn put(&mut self, chunk: Chunk) -> Result<()> {
        self.sha.update(chunk.bytes.clone()).await;
        self.bytes += chunk.bytes.len() as u64;
        self.writer.write(chunk).await
    }

    /// Writes `len` bytes the tarball holds from `offset` on again, read
    /// back from its writer a few MiB at a time.
    async fn again(&mut self, offset: u64, len: u64) -> Result<()> {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(AGAIN_AT_ONCE);
            let bytes = self.writer.read_back(offset + done, n as usize).await?;
            self.put(Chunk::own(bytes)).await?;
            done += n;
        }
        Ok(())
    }

    /// Writes the tarball's trailer: its content's end (`tail`: the
    /// directory entries it gets at its end), closed by its codec.
    pub(super) async fn close(&mut self, tail: &[u8], origins: &mut Origins) -> Result<()> {
        let dirs = match self.codec.format {
            Format::Zip => zip_directories(tail)?,
            _ => Vec::new(),
        };
        let trailer = self.codec.trailer(
            &mut self.content,
            &[tail, &END_OF_ARCHIVE[..]].concat(),
            dirs,
            self.bytes,
        )?;
        for part in trailer {
            match part {
                Tail::Bytes(bytes) => {
                    origins.distinct += bytes.len() as u64;
                    self.put(Chunk::own(bytes)).await?;
                }
                Tail::Again { offset, len } => self.again(offset, len).await?,
            }
        }
        Ok(())
    }
}

/// Where each compressed byte is first written: a chunk goes to each of
/// its tarballs with the tarballs ranked before it ([`Plan::upload_order`])
/// that hold it, and their offsets: an uploading sink copies it from one
/// of those instead of sending it again.
pub(super) struct Origins {
    pub(super) rank: Vec<usize>,
    /// The tarballs others copy from ([`Plan::copy_origins`]): the only
    /// holders a chunk names.
    pub(super) origin: Vec<bool>,
    /// Bytes counted once.
    pub(super) distinct: u64,
}

impl Origins {
    /// The chunk `bytes` for each of `tarballs` (which hold it at the
    /// offsets `offset` gives), in the order given.
    pub(super) fn chunks(
        &mut self,
        bytes: &Bytes,
        crc: ObjectCrc,
        tarballs: &[usize],
        offset: impl Fn(usize) -> u64,
    ) -> Vec<(usize, Chunk)> {
        let mut by_rank: Vec<usize> = tarballs.to_vec();
        by_rank.sort_by_key(|&t| self.rank[t]);
        let all: Arc<[Origin]> = by_rank
            .iter()
            .filter(|&&t| self.origin[t])
            .map(|&t| Origin {
                tarball: t,
                offset: offset(t),
            })
            .collect();
        self.distinct += bytes.len() as u64;
        tarballs
            .iter()
            .map(|&t| {
                let before = by_rank
                    .iter()
                    .take_while(|&&u| u != t)
                    .filter(|&&u| self.origin[u])
                    .count();
                let chunk = Chunk {
                    bytes: bytes.clone(),
                    crc,
                    held: Holders::new(all.clone(), before),
                };
                (t, chunk)
            })
            .collect()
    }
}

/// Finishes every tarball, then prepares them together (a tarball that
/// copies from another waiting, in its sink, until that one is ready);
/// returns their SHA-256 digests (hex). Nothing has its final name yet.
pub(super) async fn prepare_all(outputs: &mut [Output]) -> Result<Vec<String>> {
    for o in outputs.iter_mut() {
        o.writer.finish().await?;
    }
    let preparing = outputs.iter_mut().map(|o| async move {
        let sha = o.sha.finish().await;
        o.writer.prepare().await?;
        Ok::<String, Error>(sha)
    });
    futures_util::future::try_join_all(preparing).await
}

/// Gives every prepared tarball its final name, and its sidecar, at once.
/// Every tarball is tried even when one fails: the first error is returned.
pub(super) async fn publish_all(outputs: &mut [Output], digests: &[String]) -> Result<()> {
    let publishing = outputs
        .iter_mut()
        .zip(digests)
        .map(|(o, sha)| o.writer.publish(sha));
    let results = futures_util::future::join_all(publishing).await;
    results.into_iter().collect()
}

/// How long an output being created when a signal comes may still take.
pub(super) const CREATE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Aborts every tarball (an error or a signal), then what the sink was
/// still starting.
pub(super) async fn abort_all(sink: &dyn Sink, outputs: &mut [Output]) {
    for o in outputs.iter_mut() {
        o.writer.abort().await;
    }
    sink.abort_rest().await;
}
