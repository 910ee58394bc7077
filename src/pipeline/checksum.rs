//! SHA-256 of each tarball on a thread of its own: the fan-out hands every
//! compressed chunk over (a shared buffer, no copy), so the tarballs of a
//! run are hashed side by side instead of one after another on the fan-out
//! task, which would otherwise be a serial stage as costly as decoding.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::stages::Stages;
use crate::cpu_time::thread_cpu_ns;

/// Chunks queued for one tarball's hashing thread.
const QUEUE: usize = 16;

pub struct TarballSha {
    tx: Option<mpsc::Sender<Bytes>>,
    digest: Option<oneshot::Receiver<[u8; 32]>>,
}

impl TarballSha {
    pub fn start(stages: Arc<Stages>) -> TarballSha {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let (done, digest) = oneshot::channel();
        std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let from = thread_cpu_ns();
                let mut sha = Sha256::new();
                while let Some(chunk) = rx.blocking_recv() {
                    sha.update(&chunk);
                }
                let digest: [u8; 32] = sha.finalize().into();
                // Counted before the digest is handed over and the run ends.
                stages.add_tarball_checksum(thread_cpu_ns().saturating_sub(from));
                // Nobody waits when the run was aborted.
                let _ = done.send(digest);
            })
            .expect("spawn a hashing thread");
        TarballSha {
            tx: Some(tx),
            digest: Some(digest),
        }
    }

    pub async fn update(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.tx {
            // The thread lives until the sender is dropped.
            let _ = tx.send(chunk).await;
        }
    }

    /// The digest of everything passed to `update`, in hex (once).
    pub async fn finish(&mut self) -> String {
        self.tx.take();
        let rx = self
            .digest
            .take()
            .expect("a tarball's digest is taken once");
        hex::encode(rx.await.expect("the hashing thread ends with a digest"))
    }
}
