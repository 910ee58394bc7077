//! Segment fan-out: the cost of handing every compressed block to N
//! tarballs (1, 6, 20) through the whole pipeline (`pipeline::run`), from a
//! `DirSource` over a generated kpack run into a sink whose writers discard
//! their bytes.
//!
//! Every tarball of the plan holds every artifact of the run (the plan's
//! `multiarch-tests` tarball, repeated N times), so the input, the decoding
//! and the compression are the same for every N; only the fan-out grows
//! (one `Bytes` clone, one sha256 update and one write call per block and
//! tarball, plus the per-tarball conflict bookkeeping). Throughput is in
//! bytes of one tarball's uncompressed tar stream: the compression work,
//! done once whatever N is. Equal throughput for 1, 6 and 20 tarballs means
//! the fan-out costs nothing beyond compressing once.
//!
//! Under `cargo test --all-targets` (criterion's test mode) the generated
//! run is tiny; `cargo bench --bench fanout` uses 64 MiB of large files.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rockpack::codec::{Codecs, Levels};
use rockpack::fixtures::{generate, FixtureSpec, Layout};
use rockpack::pipeline::budget::{Budget, Needs, DEFAULT_MEMORY};
use rockpack::pipeline::progress::Progress;
use rockpack::pipeline::{self, RunOptions};
use rockpack::plan::{
    build_plan, FamilyTable, Format, MultiarchMode, Plan, PlanOptions, TarballPlan,
};
use rockpack::repack::{decode, ConflictPolicy};
use rockpack::sink::{Chunk, Sink, TarballWriter};
use rockpack::source::{dir::DirSource, verify::VerifyMode, Source};

const FAMILIES: [&str; 3] = ["gfx94X-dcgpu", "gfx110X-all", "gfx120X-all"];

/// Whether criterion measures (`cargo bench`) rather than runs each
/// benchmark once as a test (`cargo test --benches`, or `--list`).
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    has("--bench") && !has("--test") && !has("--list")
}

/// A sink whose tarballs go nowhere.
struct NullSink;

struct NullWriter {
    bytes: u64,
}

#[async_trait]
impl Sink for NullSink {
    fn describe(&self) -> String {
        "null".into()
    }

    async fn create(
        &self,
        _index: usize,
        _tarball: &TarballPlan,
        _origin: bool,
    ) -> rockpack::Result<Box<dyn TarballWriter>> {
        Ok(Box::new(NullWriter { bytes: 0 }))
    }
}

#[async_trait]
impl TarballWriter for NullWriter {
    async fn write(&mut self, chunk: Chunk) -> rockpack::Result<()> {
        self.bytes += black_box(chunk.bytes).len() as u64;
        Ok(())
    }

    async fn finish(&mut self) -> rockpack::Result<()> {
        Ok(())
    }

    async fn publish(&mut self, _sha256_hex: &str) -> rockpack::Result<()> {
        Ok(())
    }

    async fn abort(&mut self) {}

    fn location(&self) -> String {
        format!("null ({} bytes)", self.bytes)
    }
}

/// The plan's largest tarball (`multiarch-tests`: every artifact), repeated
/// `n` times under different names.
fn fan_plan(base: &Plan, n: usize) -> Plan {
    let one = &base.tarballs[0];
    let tarballs = (0..n)
        .map(|i| {
            let mut t = one.clone();
            t.label = format!("copy{i}");
            t.file_name = format!("copy{i}.{}", t.format.extension());
            t
        })
        .collect();
    Plan {
        tarballs,
        ..base.clone()
    }
}

fn bench_fanout(c: &mut Criterion) {
    let large_bytes = if measuring() { 64 << 20 } else { 0 };
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        layout: Layout::Kpack,
        families: FAMILIES.iter().map(|f| f.to_string()).collect(),
        seed: 1,
        large_bytes,
        sidecars: false,
        windows: false,
    };
    generate(&spec, dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let source: Arc<dyn Source> = Arc::new(DirSource::new(dir.path()));
    let listing = rt.block_on(source.list()).unwrap();
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let mut g = c.benchmark_group("fanout");
    g.sample_size(10);
    // Iterations take 0.2-2 s: the same count per sample, not 1, 2, 3, ...
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(15));
    for (format, level) in [(Format::Gzip, 6), (Format::Zstd, 3)] {
        let opts = PlanOptions {
            families: FAMILIES.iter().map(|f| f.to_string()).collect(),
            targets: vec![],
            per_target: false,
            platform: "linux".into(),
            version: "0.0.0".into(),
            tests: true,
            multiarch: MultiarchMode::Always,
            formats: vec![format],
            exclude_artifacts: vec!["fftw3".into()],
            exclude_components: vec!["test".into()],
        };
        let base = build_plan(
            listing.artifacts.clone(),
            &opts,
            &FamilyTable::builtin(),
            Some(true),
        )
        .unwrap()
        .only(&["multiarch-tests".to_string()])
        .unwrap();
        let codecs = Codecs::new(&[format], &Levels::parse(&level.to_string()).unwrap()).unwrap();
        let budget = Budget::new(&Needs {
            memory: DEFAULT_MEMORY,
            memory_from: "the bench".into(),
            jobs: Some(jobs),
            artifact_jobs: None,
            cores: jobs,
            cores_from: "the bench".into(),
            codecs: codecs.all().to_vec(),
            part_sizes: Vec::new(),
        })
        .unwrap();
        let run_opts = RunOptions {
            codecs,
            on_conflict: ConflictPolicy::Error,
            metadata: Default::default(),
            verify: VerifyMode::Off,
            max_unpacked: decode::DEFAULT_MAX_UNPACKED,
            budget,
        };
        let run = |plan: &Arc<Plan>| {
            rt.block_on(pipeline::run(
                plan.clone(),
                source.clone(),
                &NullSink,
                &run_opts,
                Progress::new(plan),
            ))
            .unwrap()
        };
        // One tarball's uncompressed size: the work compressed once.
        let content = run(&Arc::new(fan_plan(&base, 1))).tarballs[0].content_bytes;
        g.throughput(Throughput::Bytes(content));
        for n in [1, 6, 20] {
            let plan = Arc::new(fan_plan(&base, n));
            let id = BenchmarkId::new(
                format!("{}-l{level}", format.extension()),
                format!("{n}-tarballs"),
            );
            g.bench_function(id, |b| b.iter(|| black_box(run(&plan).tarballs.len())));
        }
    }
    g.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
