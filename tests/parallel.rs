//! Several artifacts at once (`--artifact-jobs`): the output is byte for
//! byte what one artifact at a time built, whatever the number of artifacts
//! read at once and however much each may hold ahead of its turn (a tiny
//! `--artifact-pending` makes every artifact switch to being decided as it
//! is read, mid-member).

mod common;

use std::path::Path;

use common::golden::{digests, golden, CASES};
use common::*;
use rockpack::fixtures::Layout;

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
    let plain = tempfile::tempdir().unwrap();
    let kpack = tempfile::tempdir().unwrap();
    generate(
        Layout::Plain,
        &["gfx94X-dcgpu", "gfx110X-all"],
        plain.path(),
    );
    generate(
        Layout::Kpack,
        &["gfx94X-dcgpu", "gfx110X-all"],
        kpack.path(),
    );
    for (case, layout, select, packing) in CASES {
        let src = if *layout == Layout::Plain {
            plain.path()
        } else {
            kpack.path()
        };
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
