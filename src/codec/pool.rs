//! A fixed pool of compression threads. Callers get a receiver per block
//! and keep receivers in submission order, which keeps output ordered while
//! blocks compress in parallel; a bounded queue of receivers bounds memory.

use std::thread;

use crossbeam_channel::{unbounded, Sender};
use tokio::sync::oneshot;

use super::{Block, Codec, Compressed};

struct Job {
    block: Block,
    reply: oneshot::Sender<Compressed>,
}

pub struct Pool {
    tx: Option<Sender<Job>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Pool {
    pub fn new(codec: Codec, threads: usize) -> Self {
        let (tx, rx) = unbounded::<Job>();
        let threads = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                thread::Builder::new()
                    .name(format!("compress-{i}"))
                    .spawn(move || {
                        for job in rx {
                            let out = codec.compress(&job.block);
                            // The receiver is gone only when the run is aborting.
                            let _ = job.reply.send(out);
                        }
                    })
                    .expect("spawn compression thread")
            })
            .collect();
        Pool {
            tx: Some(tx),
            threads,
        }
    }

    pub fn submit(&self, block: Block) -> oneshot::Receiver<Compressed> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .expect("pool open")
            .send(Job { block, reply })
            .expect("compression threads alive");
        rx
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
