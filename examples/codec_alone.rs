//! rockpack's codec alone: compresses a tar file held in memory the way a
//! run compresses its tar stream (same blocks, dictionaries, pool and
//! framing), so `bench/e2e.sh` can compare a whole run with the time
//! compression alone needs.
//!
//! ```sh
//! cargo run --release --example codec_alone -- FILE --format gz --level 6 --jobs 2
//! ```
//!
//! Prints one JSON object: the seconds spent compressing (the file is read
//! first, outside the timing), input and output bytes.

use std::collections::VecDeque;
use std::time::Instant;

use rockpack::codec::{pool::Pool, Block, Codec, Compressed, TarballContent};
use rockpack::plan::Format;
use rockpack::repack::tarfmt::END_OF_ARCHIVE;
use rockpack::repack::{BlockOut, Mask, PieceWriter};
use tokio::sync::oneshot;

/// Keeps a bounded queue of blocks in the pool, taking results in order.
struct Collect<'a> {
    pool: &'a Pool,
    codec: Codec,
    pending: VecDeque<oneshot::Receiver<Compressed>>,
    in_flight: usize,
    content: TarballContent,
    bytes: u64,
}

impl Collect<'_> {
    fn take_one(&mut self) {
        if let Some(rx) = self.pending.pop_front() {
            let c = rx.blocking_recv().expect("compression thread alive");
            self.content
                .append(&c, self.bytes)
                .expect("a tar has no ZIP names");
            self.bytes += c.bytes.len() as u64;
        }
    }
}

impl BlockOut for Collect<'_> {
    fn send(&mut self, block: Block, _format: Format, _mask: Mask) -> rockpack::Result<()> {
        self.pending
            .push_back(self.pool.submit(block, self.codec, None));
        while self.pending.len() > self.in_flight {
            self.take_one();
        }
        Ok(())
    }

    fn at_end(&mut self, _tarballs: &Mask, _bytes: &[u8]) -> rockpack::Result<()> {
        // One tarball: every entry goes to all of them, none to the end.
        Err(rockpack::Error::internal("codec_alone writes one tarball"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let path = args
        .first()
        .expect("usage: codec_alone FILE [--format gz|zst] [--level N] [--jobs N]");
    let format = match opt("--format").as_deref() {
        None | Some("gz") => Format::Gzip,
        Some("zst") => Format::Zstd,
        Some(f) => panic!("--format {f}: gz or zst"),
    };
    let level = opt("--level").map(|l| l.parse().expect("--level N"));
    let jobs: usize = opt("--jobs").map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j.parse().expect("--jobs N"),
    );
    let codec = Codec::new(format, level).expect("codec");
    let data = std::fs::read(path).expect("reading the input");

    let started = Instant::now();
    let pool = Pool::new(jobs);
    let mut out = Collect {
        pool: &pool,
        codec,
        pending: VecDeque::new(),
        // As a run at the default --memory allows.
        in_flight: 4 * jobs + 4,
        content: TarballContent::default(),
        bytes: codec.header().len() as u64,
    };
    let mut pieces = PieceWriter::new(&mut out, &[format], "input");
    pieces.set_mask(Mask(vec![0].into())).unwrap();
    pieces.data(&data).unwrap();
    pieces.finish().unwrap();
    while !out.pending.is_empty() {
        out.take_one();
    }
    let at = out.bytes;
    let trailer = codec
        .trailer(&mut out.content, &END_OF_ARCHIVE, Vec::new(), at)
        .expect("a tar trailer");
    out.bytes += trailer.len() as u64;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\": {seconds:.3}, \"input_bytes\": {}, \"output_bytes\": {}, \"jobs\": {jobs}, \"level\": {}}}",
        data.len(),
        out.bytes,
        codec.level
    );
}
