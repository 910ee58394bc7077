//! Codec throughput by format, level and thread count: compresses a
//! realistic tar stream through the same pool the pipeline uses.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rockpack::codec::{pool::Pool, Block, Codec};
use rockpack::plan::Format;

/// Tar-like data: headers, text and some incompressible bytes.
fn corpus(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let words = [
        "hipMalloc",
        "rocblas_sgemm",
        "kernel",
        "gfx942",
        "include",
        "0x00ff",
        "\n",
        " ",
    ];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(17) {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn compress_all(codec: Codec, pool: &Pool, data: &Bytes) -> usize {
    let block = codec.format.block_size();
    let dict = codec.format.dictionary_size();
    let mut receivers = Vec::new();
    let mut prev: Option<Bytes> = None;
    for start in (0..data.len()).step_by(block) {
        let chunk = data.slice(start..(start + block).min(data.len()));
        let history = if dict > 0 {
            Some(chunk.slice(chunk.len().saturating_sub(dict)..))
        } else {
            None
        };
        receivers.push(pool.submit(
            Block {
                data: chunk,
                dictionary: prev.take(),
                zip: None,
            },
            codec,
            None,
        ));
        prev = history;
    }
    receivers
        .into_iter()
        .map(|r| r.blocking_recv().unwrap().bytes.len())
        .sum()
}

fn bench_codec(c: &mut Criterion) {
    let data = Bytes::from(corpus(16 << 20));
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for (format, levels) in [(Format::Gzip, [1, 6, 9]), (Format::Zstd, [1, 3, 9])] {
        for level in levels {
            for jobs in [1, threads] {
                let codec = Codec::new(format, Some(level)).unwrap();
                let pool = Pool::new(jobs);
                let id = BenchmarkId::new(
                    format!("{}-l{level}", format.extension()),
                    format!("{jobs}t"),
                );
                group.bench_with_input(id, &data, |b, d| {
                    b.iter(|| black_box(compress_all(codec, &pool, d)))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
