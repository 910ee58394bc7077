//! Repack throughput: decode an artifact, parse its tar stream, apply the
//! flattening rules and write the flattened entries as tar blocks, with a
//! `BlockOut` that drops the blocks (no compression, no sink).
//!
//! - `repack-large`: a few large files; throughput in bytes of the
//!   artifact's (uncompressed) tar stream.
//! - `repack-small`: many small files in many directories; throughput in
//!   tar entries.
//!
//! Each comes as `zst` (the archive as stored: zstd decode + repack) and
//! `tar` (the decoded tar bytes fed in directly: repack alone), which shows
//! how the time splits between decoding and the tar rewrite.
//!
//! Under `cargo test --all-targets` (criterion's test mode: one iteration
//! each) the inputs are tiny; `cargo bench --bench repack` uses full sizes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rockpack::codec::Block;
use rockpack::fixtures::{compress, plan_of, raw_tar, Member, MemberKind};
use rockpack::plan::{Compression, Format, Plan};
use rockpack::repack::{decode, BlockOut, ConflictPolicy, Mask, Repacker};

/// Whether criterion measures (`cargo bench`) rather than runs each
/// benchmark once as a test (`cargo test --benches`, or `--list`).
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    has("--bench") && !has("--test") && !has("--list")
}

/// Drops every block, counting bytes so the work cannot be optimised away.
#[derive(Default)]
struct Discard {
    bytes: u64,
    blocks: u64,
}

impl BlockOut for Discard {
    fn send(&mut self, block: Block, _format: Format, _mask: Mask) -> rockpack::Result<()> {
        self.bytes += block.data.len() as u64;
        self.blocks += 1;
        Ok(())
    }

    fn at_end(&mut self, _tarballs: &Mask, _bytes: &[u8]) -> rockpack::Result<()> {
        Ok(())
    }
}

const PREFIX: &str = "math-libs/BLAS/rocBLAS/stage";
const ARTIFACT: &str = "blas_lib_generic.tar.zst";

/// Text-like bytes (compressible, not trivially).
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "hipMalloc",
        "rocblas_",
        "kernel",
        "gfx942",
        "#include",
        "0x00ff",
        "\n",
        " ",
        "return",
        "(void*)",
        "const",
        ";\n",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

/// `files` large generated files sharing `total` bytes, plus a few small ones.
fn large_members(total: u64, files: u64) -> Vec<Member> {
    let mut m = vec![
        Member::dir(format!("{PREFIX}/include")),
        Member::dir(format!("{PREFIX}/lib")),
        Member::dir(format!("{PREFIX}/lib/rocblas")),
        Member::dir(format!("{PREFIX}/lib/rocblas/library")),
    ];
    for i in 0..16 {
        m.push(Member::file(
            format!("{PREFIX}/include/rocblas_{i:02}.h"),
            text(i, 8 << 10),
        ));
    }
    m.push(Member::new(
        format!("{PREFIX}/lib/librocblas.so.4.4.0"),
        MemberKind::Generated {
            len: total / files,
            seed: 7,
            mode: 0o755,
        },
    ));
    m.push(Member::symlink(
        format!("{PREFIX}/lib/librocblas.so.4"),
        "librocblas.so.4.4.0",
    ));
    m.push(Member::symlink(
        format!("{PREFIX}/lib/librocblas.so"),
        "librocblas.so.4",
    ));
    for i in 1..files {
        m.push(Member::new(
            format!("{PREFIX}/lib/rocblas/library/TensileLibrary_gfx942_{i:03}.co"),
            MemberKind::Generated {
                len: total / files,
                seed: 100 + i,
                mode: 0o644,
            },
        ));
    }
    m
}

/// `count` small files (0.5-4 KiB) in directories of 100, with a symlink
/// every 50 files.
fn small_members(count: usize) -> Vec<Member> {
    let mut m = Vec::with_capacity(count + count / 50 + count / 100 + 2);
    m.push(Member::dir(format!("{PREFIX}/include")));
    for i in 0..count {
        if i % 100 == 0 {
            m.push(Member::dir(format!("{PREFIX}/include/d{:04}", i / 100)));
        }
        let dir = format!("{PREFIX}/include/d{:04}", i / 100);
        let len = 512 + (i * 7919) % 3584;
        m.push(Member::file(
            format!("{dir}/header_{i:06}.h"),
            text(i as u64, len),
        ));
        if i % 50 == 49 {
            m.push(Member::symlink(
                format!("{dir}/alias_{i:06}.h"),
                format!("header_{i:06}.h"),
            ));
        }
    }
    m
}

/// Repacks one artifact with a fresh `Repacker` (a second pass over the
/// same paths would take the duplicate-comparison path).
fn repack(plan: &Plan, input: &[u8], compression: Option<Compression>) -> (u64, u64) {
    let mut repacker = Repacker::new(plan, ConflictPolicy::Error, Default::default()).unwrap();
    let mut out = Discard::default();
    let stats = match compression {
        Some(c) => {
            let decoded = decode::decoder(c, input, decode::DEFAULT_MAX_UNPACKED).unwrap();
            repacker.repack(0, ARTIFACT, std::io::BufReader::new(decoded), &mut out)
        }
        None => repacker.repack(0, ARTIFACT, input, &mut out),
    }
    .unwrap();
    (stats.members, out.bytes + out.blocks)
}

fn bench_case(c: &mut Criterion, group: &str, members: Vec<Member>, per_entries: bool) {
    // One artifact in one tarball.
    let plan = Arc::new(plan_of(&[ARTIFACT], &[&[0]], Format::Gzip));
    let tar = raw_tar(Some(&[PREFIX]), &members);
    let zst = compress(&tar, Compression::Zst);
    let entries = members.len() as u64;
    drop(members);
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(if per_entries {
        Throughput::Elements(entries)
    } else {
        Throughput::Bytes(tar.len() as u64)
    });
    let label = format!(
        "{:.1}MiB-tar_{}entries",
        tar.len() as f64 / (1 << 20) as f64,
        entries
    );
    g.bench_with_input(BenchmarkId::new("zst", &label), &zst, |b, zst| {
        b.iter(|| black_box(repack(&plan, zst, Some(Compression::Zst))))
    });
    g.bench_with_input(BenchmarkId::new("tar", &label), &tar, |b, tar| {
        b.iter(|| black_box(repack(&plan, tar, None)))
    });
    g.finish();
}

fn bench_repack(c: &mut Criterion) {
    let full = measuring();
    let (large, small) = if full {
        (256u64 << 20, 20_000)
    } else {
        (2u64 << 20, 300)
    };
    bench_case(c, "repack-large", large_members(large, 16), false);
    bench_case(c, "repack-small", small_members(small), true);
}

criterion_group!(benches, bench_repack);
criterion_main!(benches);
