//! Several artifacts at once (`--artifact-jobs`): the output is byte for
//! byte what one artifact at a time built, whatever the number of artifacts
//! read at once and however much each may hold ahead of its turn (a tiny
//! `--artifact-pending` makes every artifact switch to being decided as it
//! is read, mid-member).

mod common;

use std::path::Path;

use common::golden::{digests, golden, Sources, CASES};
use common::*;

/// (artifacts at once, bytes each may hold ahead of its turn).
const SETTINGS: &[(&str, Option<&str>)] = &[
    ("1", None),
    ("2", None),
    ("3", Some("1")),
    ("4", Some("40K")),
    ("6", Some("700K")),
];

fn pack_with(src: &Path, dest: &Path, args: &[&str], jobs: &str, pending: Option<&str>) {
    let mut all = vec![
        "pack",
        "--source",
        s(src),
        "--dest",
        s(dest),
        "--artifact-jobs",
        jobs,
        "--memory",
        "2G",
    ];
    if let Some(p) = pending {
        all.extend_from_slice(&["--artifact-pending", p]);
    }
    all.extend_from_slice(args);
    rockpack_ok(&all);
}

/// The conformance cases (two layouts, gzip and zstd, kpack and per-target
/// plans, last-wins conflicts at level 9) build the golden bytes at every
/// setting.
#[test]
fn any_number_at_once_builds_the_bytes_of_before() {
    let golden = golden();
    let sources = Sources::generate();
    for (case, layout, select, packing) in CASES {
        let src = sources.of(*layout);
        let mut args: Vec<&str> = select.to_vec();
        args.extend_from_slice(packing);
        for &(jobs, pending) in SETTINGS {
            let dest = tempfile::tempdir().unwrap();
            pack_with(src, dest.path(), &args, jobs, pending);
            assert_eq!(
                &digests(dest.path()),
                &golden[*case],
                "{case}: --artifact-jobs {jobs}, --artifact-pending {pending:?}"
            );
        }
    }
}

/// A set that cuts pieces everywhere (overlays, component and path
/// exclusions, both formats, sidecars) builds the same files at every
/// setting.
#[test]
fn sets_with_exclusions_are_the_same_at_any_setting() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-run");
    for set in ["radeon-instinct.toml", "hpc-overlay.toml", "rfc0013.toml"] {
        let set = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/sets")
            .join(set);
        let mut first: Option<Vec<(String, Vec<u8>)>> = None;
        for &(jobs, pending) in SETTINGS {
            let dest = tempfile::tempdir().unwrap();
            pack_with(&sample, dest.path(), &["--set", s(&set)], jobs, pending);
            let got = dir_contents(dest.path());
            assert!(!got.is_empty());
            match &first {
                None => first = Some(got),
                Some(want) => assert!(
                    want == &got,
                    "{}: --artifact-jobs {jobs} differs from one at a time",
                    set.display()
                ),
            }
        }
    }
}

/// `--summary` reports the serial part: with one artifact at a time all of
/// decode and repack, unless the fan-out or the largest tarball's digest
/// took longer.
#[test]
fn summary_reports_serial_cpu() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-run");
    let dest = tempfile::tempdir().unwrap();
    let summary = dest.path().join("summary.json");
    pack_with(
        &sample,
        &dest.path().join("out"),
        &["--families", "gfx94X-dcgpu", "--summary", s(&summary)],
        "1",
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let cpu = &v["cpu_seconds"];
    let (serial, decode, repack) = (
        cpu["serial"].as_f64().unwrap(),
        cpu["decode"].as_f64().unwrap(),
        cpu["repack"].as_f64().unwrap(),
    );
    let (fanout, digest, write) = (
        cpu["fanout"].as_f64().unwrap(),
        cpu["largest_checksum"].as_f64().unwrap(),
        cpu["largest_write"].as_f64().unwrap(),
    );
    assert!(serial > 0.0, "{cpu}");
    let slowest = (decode + repack).max(fanout).max(digest).max(write);
    assert!((serial - slowest).abs() < 1e-6, "{cpu}");
}

/// What an artifact holds ahead of its turn stays within its share of the
/// budget: with a 1 MiB share, the larger artifacts keep only their heads
/// and are read twice (or, holding the turn, are decided as they are
/// read), and none held more than the share plus what one read adds (a
/// decoded chunk of 256 KiB, or one entry's header and record).
#[test]
fn held_ahead_stays_within_its_share() {
    let src = tempfile::tempdir().unwrap();
    let spec = rockpack::fixtures::FixtureSpec {
        layout: rockpack::fixtures::Layout::Kpack,
        families: vec!["gfx94X-dcgpu".into()],
        seed: 7,
        large_bytes: 24 << 20,
        sidecars: false,
        windows: false,
    };
    rockpack::fixtures::generate(&spec, src.path()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = rockpack_ok(&[
        "pack",
        "--source",
        s(src.path()),
        "--families",
        "gfx94X-dcgpu",
        "--tests",
        "--format",
        "zst",
        "--dest",
        s(dest.path()),
        "--artifact-jobs",
        "3",
        "--memory",
        "2G",
        "--artifact-pending",
        "1M",
        "-v",
        "--log-format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let decided: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "decided")
        .map(|v| v["fields"].clone())
        .collect();
    assert!(decided.len() > 10, "{stderr}");
    let (mut live, mut twice, mut ahead) = (0, 0, 0);
    for d in &decided {
        let held = d["held_ahead"].as_u64().unwrap();
        assert_eq!(d["limit"].as_u64(), Some(1 << 20), "{d}");
        assert!(held <= (1 << 20) + (256 << 10) + (16 << 10), "{d}");
        let (is_live, two) = (
            d["live"].as_bool().unwrap(),
            d["two_passes"].as_bool().unwrap(),
        );
        assert!(!(is_live && two), "{d}");
        if is_live {
            live += 1;
        } else if two {
            twice += 1;
        } else if held > 0 {
            ahead += 1;
        }
    }
    assert!(
        twice > 0 && ahead > 0,
        "live {live}, read twice {twice}, decided ahead {ahead}"
    );
    eprintln!("live {live}, read twice {twice}, decided ahead {ahead}");
}

/// A sink whose writes burn CPU on the fan-out task (20 ms per MiB): what
/// an S3 sink's part assembly costs there, made large.
struct BurnSink;
struct BurnWriter;

#[async_trait::async_trait]
impl rockpack::sink::Sink for BurnSink {
    fn describe(&self) -> String {
        "burn".into()
    }
    async fn create(
        &self,
        _index: usize,
        _tarball: &rockpack::plan::TarballPlan,
        _origin: bool,
    ) -> rockpack::Result<Box<dyn rockpack::sink::TarballWriter>> {
        Ok(Box::new(BurnWriter))
    }
}

#[async_trait::async_trait]
impl rockpack::sink::TarballWriter for BurnWriter {
    async fn write(&mut self, chunk: rockpack::sink::Chunk) -> rockpack::Result<()> {
        use rockpack::cpu_time::thread_cpu_ns;
        let until = thread_cpu_ns() + chunk.bytes.len() as u64 * 20_000_000 / (1 << 20);
        while thread_cpu_ns() < until {
            std::hint::spin_loop();
        }
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
        "burn".into()
    }
}

/// `cpu_seconds.serial` is the slowest chain that runs one thing at a time,
/// not only the decisions: with several artifacts at once (each held
/// ahead of its turn) the decisions take next to nothing, and the serial
/// part is the largest tarball's digest or writes — or, with a sink whose
/// writes take CPU on the fan-out task, the fan-out.
#[test]
fn serial_counts_the_fanout_and_the_largest_digest() {
    use rockpack::codec::{Codecs, Levels};
    use rockpack::pipeline::budget::{Budget, Needs};
    use rockpack::pipeline::{self, RunOptions};
    use rockpack::plan::{build_plan, FamilyTable, Format, MultiarchMode, PlanOptions};
    use rockpack::source::{dir::DirSource, verify::VerifyMode, Source};
    use std::sync::Arc;

    let src = tempfile::tempdir().unwrap();
    let families = vec!["gfx94X-dcgpu".to_string(), "gfx110X-all".to_string()];
    let spec = rockpack::fixtures::FixtureSpec {
        layout: rockpack::fixtures::Layout::Kpack,
        families: families.clone(),
        seed: 5,
        large_bytes: 16 << 20,
        sidecars: false,
        windows: false,
    };
    rockpack::fixtures::generate(&spec, src.path()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let source: Arc<dyn Source> = Arc::new(DirSource::new(src.path()));
    let listing = rt.block_on(source.list()).unwrap();
    let opts = PlanOptions {
        families,
        targets: vec![],
        per_target: false,
        platform: "linux".into(),
        version: "0.0.0".into(),
        tests: true,
        multiarch: MultiarchMode::Always,
        formats: vec![Format::Gzip],
        exclude_artifacts: vec![],
        exclude_components: vec![],
    };
    let plan = Arc::new(
        build_plan(
            listing.artifacts,
            &opts,
            &FamilyTable::builtin(),
            Some(true),
        )
        .unwrap(),
    );
    let codecs = Codecs::new(&[Format::Gzip], &Levels::parse("1").unwrap()).unwrap();
    let budget = Budget::new(&Needs {
        memory: 2 << 30,
        memory_from: "--memory".into(),
        jobs: Some(2),
        artifact_jobs: Some(4),
        cores: 2,
        cores_from: "a test".into(),
        codecs: codecs.all().to_vec(),
        part_sizes: Vec::new(),
    })
    .unwrap();
    let run_opts = RunOptions {
        codecs,
        on_conflict: rockpack::repack::ConflictPolicy::Error,
        metadata: Default::default(),
        verify: VerifyMode::Off,
        max_unpacked: rockpack::repack::decode::DEFAULT_MAX_UNPACKED,
        budget,
    };
    let run = |sink: &dyn rockpack::sink::Sink| {
        rt.block_on(pipeline::run(
            plan.clone(),
            source.clone(),
            sink,
            &run_opts,
            rockpack::pipeline::progress::Progress::new(&plan),
        ))
        .unwrap()
    };
    let dest = tempfile::tempdir().unwrap();
    let plain = run(&rockpack::sink::dir::DirSink::new(
        dest.path().to_path_buf(),
    ))
    .cpu;
    assert!(plain.largest_checksum > 0.0, "{plain:?}");
    assert!(plain.serial >= plain.largest_checksum, "{plain:?}");
    // A directory's files are written on threads of their own: the
    // largest tarball's writes are a chain of their own.
    assert!(plain.largest_write > 0.0, "{plain:?}");
    assert!(plain.serial >= plain.largest_write, "{plain:?}");
    assert!(plain.serial >= plain.fanout, "{plain:?}");
    assert!(plain.largest_checksum <= plain.checksum, "{plain:?}");

    let burnt = run(&BurnSink).cpu;
    // Every tarball's bytes pass the burning writes: 20 ms per MiB.
    assert!(burnt.fanout > 0.5, "{burnt:?}");
    assert!(burnt.serial >= burnt.fanout, "{burnt:?}");
    assert!(burnt.serial > 2.0 * plain.serial, "{plain:?} {burnt:?}");
}
