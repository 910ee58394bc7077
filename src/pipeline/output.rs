//! The tarballs being written: each one's writer, digest and content so
//! far, its trailer, where its bytes are first written
//! ([`Origins`]), and the steps that finish, publish or abort them all.

use std::sync::Arc;
use std::time::Instant;

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
    /// Its index in the plan.
    pub(super) index: usize,
    pub(super) writer: Box<dyn TarballWriter>,
    pub(super) codec: Codec,
    pub(super) sha: TarballSha,
    pub(super) content: TarballContent,
    pub(super) bytes: u64,
    pub(super) done_at: Option<f64>,
    /// A trailer that repeats bytes the tarball holds, written once the
    /// other tarballs are being prepared ([`prepare_all`]): a writer may
    /// read its bytes back only once those it copies from are ready.
    pub(super) pending: Vec<Tail>,
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
    /// back from its writer a few MiB at a time; each chunk says the
    /// tarball itself holds it, so a sink that copies inside its store
    /// copies it instead of sending it again.
    async fn again(&mut self, offset: u64, len: u64) -> Result<()> {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(AGAIN_AT_ONCE);
            let at = offset + done;
            let bytes = self.writer.read_back(at, n as usize).await?;
            let chunk = Chunk {
                crc: ObjectCrc::of(&bytes),
                bytes,
                held: Holders::only(Origin {
                    tarball: self.index,
                    offset: at,
                }),
            };
            self.put(chunk).await?;
            done += n;
        }
        Ok(())
    }

    /// Makes the tarball's trailer: its content's end (`tail`: the
    /// directory entries it gets at its end), closed by its codec. Written
    /// at once, unless it repeats bytes the tarball holds: then it waits
    /// for [`prepare_all`].
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
        for part in &trailer {
            if let Tail::Bytes(bytes) = part {
                origins.distinct += bytes.len() as u64;
            }
        }
        self.pending = trailer;
        if self.pending.iter().all(|p| matches!(p, Tail::Bytes(_))) {
            self.write_pending().await?;
        }
        Ok(())
    }

    /// Writes the trailer [`close`](Output::close) made, if still to write.
    async fn write_pending(&mut self) -> Result<()> {
        for part in std::mem::take(&mut self.pending) {
            match part {
                Tail::Bytes(bytes) => self.put(Chunk::own(bytes)).await?,
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

/// Writes the trailers still to write, finishes every tarball and
/// prepares them, all together (a tarball that copies from another, or
/// reads back bytes it copied from another, waiting in its sink until that
/// one is ready); returns their SHA-256 digests (hex). Nothing has its
/// final name yet.
pub(super) async fn prepare_all(outputs: &mut [Output], started: Instant) -> Result<Vec<String>> {
    let preparing = outputs.iter_mut().map(|o| async move {
        if !o.pending.is_empty() {
            o.write_pending().await?;
            o.done_at = Some(started.elapsed().as_secs_f64());
        }
        o.writer.finish().await?;
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
