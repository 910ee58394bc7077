//! A fixed pool of compression threads. Callers get a receiver per block
//! and keep receivers in submission order, which keeps output ordered while
//! blocks compress in parallel; a bounded queue of receivers bounds memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crossbeam_channel::{unbounded, Sender};
use tokio::sync::oneshot;

use super::{Block, Codec, Compressed};
use crate::cpu_time::thread_cpu_ns;

/// Called on the compression thread with a block's result, before it is
/// sent: lets the caller account for its size as soon as it is known.
pub type Done = Box<dyn FnOnce(&Compressed) + Send>;

struct Job {
    block: Block,
    codec: Codec,
    done: Option<Done>,
    reply: oneshot::Sender<Compressed>,
}

/// Compression threads taking blocks from one queue.
pub struct Pool {
    tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    /// CPU time of the threads, added as each one ends.
    cpu_ns: Arc<AtomicU64>,
}

impl Pool {
    /// Starts `threads` threads (at least one); each job names its codec.
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = unbounded::<Job>();
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let threads = (0..threads.max(1))
            .map(|i| {
                let (rx, cpu_ns) = (rx.clone(), cpu_ns.clone());
                thread::Builder::new()
                    .name(format!("compress-{i}"))
                    .spawn(move || {
                        for job in rx {
                            let out = job.codec.compress(&job.block);
                            drop(job.block);
                            if let Some(done) = job.done {
                                done(&out);
                            }
                            // The receiver is gone only when the run is aborting.
                            let _ = job.reply.send(out);
                        }
                        cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
                    })
                    .expect("spawn compression thread")
            })
            .collect();
        Pool {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            cpu_ns,
        }
    }

    /// Queues a block for `codec`; the receiver gets it compressed (after
    /// `done` has seen it).
    pub fn submit(
        &self,
        block: Block,
        codec: Codec,
        done: Option<Done>,
    ) -> oneshot::Receiver<Compressed> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .lock()
            .expect("pool")
            .as_ref()
            .expect("pool open")
            .send(Job {
                block,
                codec,
                done,
                reply,
            })
            .expect("compression threads alive");
        rx
    }

    /// Takes no more blocks, waits for every submitted one, then returns
    /// the threads' CPU seconds.
    pub fn finish(&self) -> f64 {
        self.stop();
        self.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    fn stop(&self) {
        self.tx.lock().expect("pool").take();
        let threads = std::mem::take(&mut *self.threads.lock().expect("pool"));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}
