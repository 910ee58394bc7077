//! The fan-out: every compressed block, in plan order, to each tarball
//! that holds it. One dispatcher takes the blocks in plan order and works
//! out where earlier tarballs hold each one's bytes ([`Origins`]); each
//! tarball has a writer of its own with a short queue, so a sink that is
//! slow for one tarball (a throttled part upload, a slow disk) holds the
//! others back only once that queue is full, not at every block.
//!
//! A block's bytes stay counted in the output budget (`Held`) until every
//! tarball that holds it has written it: what waits in the queues is part
//! of what the budget bounds.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::held::Held;
use super::output::{Origins, Output};
use super::workers::{Out, Workers};
use crate::codec::zip_block::{cannot_repeat, link_in};
use crate::codec::{Compressed, OpenFile};
use crate::error::{Error, Result};
use crate::pipeline::progress::Progress;
use crate::sink::Chunk;

/// Chunks one tarball's writer may have waiting before the dispatcher
/// waits for it.
const QUEUE: usize = 8;

/// Bytes of one block counted in the output budget, given back when the
/// last tarball that holds the block has written it.
struct Counted {
    held: Arc<Held>,
    bytes: u64,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.held.release(self.bytes);
    }
}

/// One chunk on its way to a tarball's writer.
struct Queued {
    chunk: Chunk,
    block: Arc<Compressed>,
    /// The artifact (plan index) it comes from, for messages.
    artifact: usize,
    _counted: Arc<Counted>,
}

/// Hands the workers' blocks (`receivers`, one per artifact in plan
/// order) to `outputs`, each in its own order, until every artifact's
/// blocks are written. The first error wins: a writer's own (its sink's),
/// else the dispatcher's.
pub(super) async fn fan_out(
    workers: &Workers,
    receivers: Vec<mpsc::Receiver<Out>>,
    outputs: &mut [Output],
    origins: &mut Origins,
    progress: &Progress,
) -> Result<()> {
    let mut offsets: Vec<u64> = outputs.iter().map(|o| o.bytes).collect();
    let (senders, queues): (Vec<_>, Vec<_>) = (0..outputs.len())
        .map(|_| mpsc::channel::<Queued>(QUEUE))
        .unzip();
    let plan = &workers.plan;
    let dispatch = async move {
        // The ZIP file cut into blocks whose data is passing.
        let mut open = OpenFile::default();
        for (i, mut rx) in receivers.into_iter().enumerate() {
            workers.held.at(i);
            workers.windows.at(i);
            while let Some((block, mask, held)) = rx.recv().await {
                let mut c: Compressed = block
                    .await
                    .map_err(|_| Error::internal("a compression thread failed"))?;
                open.pass(&mut c);
                let counted = Arc::new(Counted {
                    held: workers.held.clone(),
                    bytes: (c.bytes.len() as u64).min(held),
                });
                let tarballs: Vec<usize> = mask.iter().copied().collect();
                let chunks = origins.chunks(&c.bytes, c.stored, &tarballs, |t| offsets[t]);
                let block = Arc::new(c);
                for (t, chunk) in chunks {
                    offsets[t] += chunk.bytes.len() as u64;
                    let queued = Queued {
                        chunk,
                        block: block.clone(),
                        artifact: i,
                        _counted: counted.clone(),
                    };
                    if senders[t].send(queued).await.is_err() {
                        // Its writer failed, and says why.
                        return Err(Error::internal("a tarball's writer stopped"));
                    }
                }
            }
        }
        Ok(())
    };
    let writers =
        outputs
            .iter_mut()
            .zip(queues)
            .enumerate()
            .map(|(t, (o, mut queue))| async move {
                while let Some(q) = queue.recv().await {
                    o.content.append(&q.block, o.bytes).map_err(|e| {
                        let artifact = plan.artifacts[q.artifact].name.file_name();
                        Error::failed(
                            e.kind(),
                            format!("{}: {artifact}: {e}", o.writer.location()),
                        )
                    })?;
                    if let Some(link) = link_in(&q.block) {
                        if !o.writer.can_read_back() {
                            return Err(cannot_repeat(link, &o.writer.location()));
                        }
                    }
                    let n = q.chunk.bytes.len() as u64;
                    o.put(q.chunk).await?;
                    progress.written[t].fetch_add(n, Ordering::Relaxed);
                }
                Ok::<(), Error>(())
            });
    // A writer that fails ends the fan-out at once (the dispatcher might
    // otherwise wait on the workers for its next block first).
    futures_util::future::try_join(dispatch, futures_util::future::try_join_all(writers))
        .await
        .map(|_| ())
}
