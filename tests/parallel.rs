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

/// `--summary` reports the serial part, and with one artifact at a time it
/// is all of decode and repack.
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
    assert!(serial > 0.0, "{cpu}");
    assert!(serial <= decode + repack + 1e-6, "{cpu}");
}

/// What an artifact holds ahead of its turn stays within its share of the
/// budget: with a 1 MiB share, the larger artifacts switch to being decided
/// as they are read, and none held more than the share plus what one read
/// adds (a decoded chunk of 256 KiB, or one entry's header and record).
#[test]
fn held_ahead_stays_within_its_share() {
    let src = tempfile::tempdir().unwrap();
    let spec = rockpack::fixtures::FixtureSpec {
        layout: rockpack::fixtures::Layout::Kpack,
        families: vec!["gfx94X-dcgpu".into()],
        seed: 7,
        large_bytes: 24 << 20,
        sidecars: false,
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
    let (mut live, mut ahead) = (0, 0);
    for d in &decided {
        let held = d["held_ahead"].as_u64().unwrap();
        assert_eq!(d["limit"].as_u64(), Some(1 << 20), "{d}");
        assert!(held <= (1 << 20) + (256 << 10) + (16 << 10), "{d}");
        if d["live"].as_bool().unwrap() {
            live += 1;
        } else if held > 0 {
            ahead += 1;
        }
    }
    assert!(live > 0 && ahead > 0, "live {live}, decided ahead {ahead}");
}
