//! Tarball sets: the command line's flags are a preset that builds the same
//! bytes as before sets existed; set files build what an independent oracle
//! (tests/tools/trees.py set + flatten --exclude-path) says; both formats
//! come from one pass; errors name the file and line.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::golden::{digests, golden, Sources, CASES};
use common::*;
use rockpack::fixtures::{FixtureSpec, Layout};

fn table() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/therock_amdgpu_targets.cmake")
        .display()
        .to_string()
}

/// The flags build what they built before sets, byte for byte, and so does
/// the set file `plan --print-set` prints for them.
#[test]
fn preset_and_printed_set_build_the_bytes_of_before() {
    let golden = golden();
    let sources = Sources::generate();
    for (case, layout, select, packing) in CASES {
        let src = sources.of(*layout);
        let want = &golden[*case];
        // The flags.
        let dest = tempfile::tempdir().unwrap();
        let mut args = vec!["pack", "--source", s(src), "--dest", s(dest.path())];
        args.extend_from_slice(select);
        args.extend_from_slice(packing);
        rockpack_ok(&args);
        assert_eq!(&digests(dest.path()), want, "{case}: the flags");

        // The set they mean.
        let mut print = vec!["plan", "--source", s(src), "--print-set"];
        print.extend_from_slice(select);
        let printed = rockpack_ok(&print);
        let set_file = dest.path().join("printed.toml");
        std::fs::write(&set_file, &printed.stdout).unwrap();
        let dest2 = tempfile::tempdir().unwrap();
        let mut args = vec![
            "pack",
            "--source",
            s(src),
            "--dest",
            s(dest2.path()),
            "--set",
            s(&set_file),
        ];
        args.extend_from_slice(packing);
        rockpack_ok(&args);
        assert_eq!(
            &digests(dest2.path()),
            want,
            "{case}: the printed set\n{}",
            String::from_utf8_lossy(&printed.stdout)
        );
    }
}

/// `--format gz,zst` writes both from one pass, each byte-identical to a
/// run of that format alone.
#[test]
fn both_formats_from_one_pass_equal_each_alone() {
    let golden = golden();
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let pack = |format: &str, dest: &Path, summary: &Path| {
        rockpack_ok(&[
            "pack",
            "--source",
            s(src.path()),
            "--families",
            "gfx94X-dcgpu;gfx110X-all",
            "--tests",
            "--format",
            format,
            "--dest",
            s(dest),
            "--summary",
            s(summary),
        ]);
    };
    let dest = tempfile::tempdir().unwrap();
    let summary = dest.path().join("summary.json");
    pack("gz,zst", dest.path(), &summary);
    let got = digests(dest.path());
    assert_eq!(got.len(), 12);
    let mut want = golden["kpack-zst"].clone();
    // No golden gz case has version 0.0.0 at the default level: gz alone,
    // in this test.
    let gz = tempfile::tempdir().unwrap();
    pack("gz", gz.path(), &gz.path().join("summary.json"));
    want.extend(digests(gz.path()));
    assert_eq!(got, want);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let formats: Vec<&str> = summary["tarballs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats.iter().filter(|f| **f == "zst").count(), 6);
    // Tarballs of one label and variant stay together, formats in order.
    assert_eq!(
        summary["tarballs"][0]["file_name"],
        "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz"
    );
    assert_eq!(
        summary["tarballs"][1]["file_name"],
        "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.zst"
    );
}

/// Packs `set` from `src`, then checks every tarball against the oracle:
/// the same tarballs, artifacts and sidecars as `trees.py set` chooses, and
/// each tree equal to `trees.py flatten --exclude-path` of those artifacts
/// (with tarfile and GNU tar); the formats of one name hold one tree.
fn pack_set_and_check(src: &Path, set: &Path, version: &str) -> Vec<String> {
    pack_set_and_check_on(src, set, version, "linux")
}

/// `pack_set_and_check` for a run of `platform`.
fn pack_set_and_check_on(src: &Path, set: &Path, version: &str, platform: &str) -> Vec<String> {
    let dest = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let table = table();
    let select = [
        "--source",
        s(src),
        "--set",
        s(set),
        "--version",
        version,
        "--family-table",
        &table,
        "--platform",
        platform,
    ];
    let mut pack = vec!["pack", "--dest", s(dest.path())];
    pack.extend_from_slice(&select);
    rockpack_ok(&pack);
    let oracle_json = work.path().join("oracle.json");
    trees(&[
        "set",
        "--table",
        &table,
        "--set",
        s(set),
        "--version",
        version,
        "--platform",
        platform,
        "--out",
        s(&oracle_json),
        s(src),
    ]);
    let oracle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&oracle_json).unwrap()).unwrap();
    let oracle = oracle.as_object().unwrap();

    let mut want_files: Vec<String> = Vec::new();
    for (name, t) in oracle {
        want_files.push(name.clone());
        if let Some(sc) = t["sidecar"].as_str() {
            want_files.push(sc.to_string());
        }
    }
    want_files.sort();
    assert_eq!(files_in(dest.path()), want_files, "{}", set.display());

    let plan = plan_json(&select);
    let planned = planned(&plan, src);
    let mut trees_of_stem: BTreeMap<String, String> = BTreeMap::new();
    for (name, artifacts) in &planned {
        let t = &oracle[name];
        let mut mine: Vec<String> = artifacts.iter().map(|p| p.display().to_string()).collect();
        mine.sort();
        let theirs: Vec<String> = t["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        assert_eq!(mine, theirs, "{name}: artifacts");

        let tarball = dest.path().join(name);
        let want = work.path().join(format!("{name}.want.json"));
        let got_tarfile = work.path().join(format!("{name}.tarfile.json"));
        let got_gnutar = work.path().join(format!("{name}.gnutar.json"));
        let zip = name.ends_with(".zip");
        let mut flatten = vec!["flatten".to_string(), "--out".into(), s(&want).into()];
        if zip {
            // A ZIP archive has no root entry.
            flatten.push("--no-root".into());
        }
        for p in t["exclude_paths"].as_array().unwrap() {
            flatten.push("--exclude-path".into());
            flatten.push(p.as_str().unwrap().into());
        }
        // Plan order: what the oracle flattens in, as rockpack does.
        flatten.extend(artifacts.iter().map(|p| p.display().to_string()));
        let flatten: Vec<&str> = flatten.iter().map(String::as_str).collect();
        trees(&flatten);
        if zip {
            trees(&["zip", "--out", s(&got_tarfile), s(&tarball)]);
        } else {
            trees(&["tarball", "--out", s(&got_tarfile), s(&tarball)]);
            trees(&["gnutar", "--out", s(&got_gnutar), s(&tarball)]);
            trees(&["compare", s(&want), s(&got_gnutar)]);
        }
        trees(&["compare", s(&want), s(&got_tarfile)]);

        let tool = if zip {
            "unzip"
        } else if name.ends_with(".gz") {
            "gzip"
        } else {
            "zstd"
        };
        match Command::new(tool).arg("-tq").arg(&tarball).status() {
            Ok(st) => assert!(st.success(), "{tool} -t {name}"),
            Err(_) if zip => eprintln!("unzip is not installed: {name} not tested with it"),
            Err(e) => panic!("{tool}: {e}"),
        }
        if let Some(sc) = t["sidecar"].as_str() {
            use sha2::{Digest, Sha256};
            let text = std::fs::read_to_string(dest.path().join(sc)).unwrap();
            let data = std::fs::read(&tarball).unwrap();
            assert_eq!(
                text,
                format!("{}  {name}\n", hex::encode(Sha256::digest(&data)))
            );
        }
        // gz and zst of one name: one tree.
        let stem = name
            .trim_end_matches(".tar.gz")
            .trim_end_matches(".tar.zst")
            .to_string();
        let tree = std::fs::read_to_string(&got_tarfile).unwrap();
        if let Some(other) = trees_of_stem.insert(stem.clone(), tree.clone()) {
            assert!(other == tree, "{stem}: the formats hold different trees");
        }
    }
    planned.into_iter().map(|(n, _)| n).collect()
}

/// A set with a group, each and union, an overlay, component, artifact and
/// path exclusions, both formats and both sidecars.
#[test]
fn set_file_matches_the_oracle() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let set = src.path().join("release.toml");
    std::fs::write(
        &set,
        r#"
[groups]
radeon = ["gfx110X-all", "gfx120X-all"]
everything = ["radeon", "gfx94X-dcgpu"]

[[tarball]]
name = "rocm-sdk-{label}-{version}-{platform}"
each = ["radeon", "gfx94X-dcgpu"]
exclude-components = ["test"]
exclude-artifacts = ["fftw3"]
exclude-paths = ["share/doc/**", "include/rocprim/", "*.cmake"]
formats = ["gz", "zst"]
sidecar = "sha256"

[[tarball]]
name = "rocm-sdk-lite-{version}-{platform}"
variant = "lite"
union = ["everything"]
label = "all"
components = ["lib", "run"]
artifacts = ["base", "hip", "rocblas", "rand"]

[[tarball]]
name = "rocm-sdk-device-{label}-{version}"
variant = "device"
each = ["gfx110X-all"]
generic = false
exclude-paths = ["bin/*-test-*", "!bin/rocblas-test-gfx1100*"]
formats = ["zst"]
sidecar = "none"
"#,
    )
    .unwrap();
    let names = pack_set_and_check(src.path(), &set, "7.13.0");
    assert_eq!(
        names,
        [
            "rocm-sdk-radeon-7.13.0-linux.tar.gz",
            "rocm-sdk-radeon-7.13.0-linux.tar.zst",
            "rocm-sdk-gfx94X-dcgpu-7.13.0-linux.tar.gz",
            "rocm-sdk-gfx94X-dcgpu-7.13.0-linux.tar.zst",
            "rocm-sdk-lite-7.13.0-linux.tar.gz",
            "rocm-sdk-device-gfx110X-all-7.13.0.tar.zst",
        ]
    );
}

/// Every shipped example set builds on the shipped sample, as the oracle says.
#[test]
fn example_sets_build_on_the_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("examples/sample-run");
    let mut found = 0;
    // ZIP sets are for Windows runs (a Linux run's paths are longer than
    // Windows takes).
    let windows = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        layout: Layout::Kpack,
        families: vec!["gfx110X-all".into(), "gfx1151".into()],
        seed: 3,
        large_bytes: 0,
        sidecars: false,
        windows: true,
    };
    rockpack::fixtures::generate(&spec, windows.path()).expect("generate a Windows run");
    for f in files_in(&root.join("examples/sets")) {
        let set = root.join("examples/sets").join(&f);
        let names = if std::fs::read_to_string(&set).unwrap().contains("\"zip\"") {
            pack_set_and_check_on(windows.path(), &set, "7.13.0", "windows")
        } else {
            pack_set_and_check(&sample, &set, "7.13.0")
        };
        assert!(!names.is_empty(), "{f}");
        found += 1;
    }
    assert!(found >= 4, "examples/sets has {found} sets");
}

fn write_set(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("set.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A hardlink whose target a tarball leaves out while it keeps the link:
/// an error naming both paths; nothing is published.
#[test]
fn hardlink_to_an_excluded_target_is_an_error() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let set = write_set(
        src.path(),
        "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx94X-dcgpu\"]\nexclude-paths = [\"bin/rocblas-test-gfx942\"]\n",
    );
    let dest = tempfile::tempdir().unwrap();
    let out = rockpack(&[
        "pack",
        "--source",
        s(src.path()),
        "--set",
        s(&set),
        "--dest",
        s(dest.path()),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "rocblas_test_gfx942.tar.zst",
        "hardlink ./bin/rocblas-test-gfx942-gtest -> ./bin/rocblas-test-gfx942",
        "exclude-paths of x-gfx94X-dcgpu.tar.gz leaves out the target and not the link",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(
        files_in(dest.path()).is_empty(),
        "{:?}",
        files_in(dest.path())
    );
}

/// Errors that need the run name the line of the tarball they are about.
#[test]
fn run_dependent_errors_name_the_line() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let cases: &[(&str, i32, &str)] = &[
        (
            "[[tarball]]\nname = \"a-{label}\"\neach = [\"gfx94X-dcgpu\"]\n\n[[tarball]]\nname = \"b-{label}\"\neach = [\"gfx110X-all\"]\ngeneric = false\n",
            3,
            "set.toml:5: tarball b-gfx110X-all selects no artifact: no artifact of this run has the targets of \"gfx110X-all\" (gfx1100, gfx1101, gfx1102, gfx1103), and generic = false leaves out the generic ones; targets in this run: gfx942",
        ),
        (
            "[[tarball]]\nname = \"a-{label}\"\neach = [\"gfx94X-dcgpu\"]\nartifacts = [\"nosuch\"]\n",
            3,
            "set.toml:1: tarball a-gfx94X-dcgpu selects no artifact: its component and artifact filters leave none",
        ),
        (
            "[[tarball]]\nname = \"sdk\"\neach = [\"gfx94X-dcgpu\", \"dcgpu-all\"]\n",
            2,
            "set.toml:1: tarball name sdk.tar.gz is also the name of a tarball of set.toml:1 (a name without {label} gives every entry the same name)",
        ),
        (
            "[[tarball]]\nname = \"a-{label}\"\neach = [\"gfx94X-dcgpu\"]\n[[tarball]]\nname = \"a-{label}\"\nunion = [\"gfx94X-dcgpu\"]\nlabel = \"gfx94X-dcgpu\"\n",
            2,
            "set.toml:4: tarball name a-gfx94X-dcgpu.tar.gz is also the name of a tarball of set.toml:1",
        ),
        (
            "[[tarball]]\nname = \"a-{label}\"\neach = [\"gfx94X-dcgpu\"]\nunion = [\"gfx94X-dcgpu\"]\n",
            2,
            "set.toml:1: each, union and each-target exclude each other",
        ),
        (
            "[[tarball]]\nname = \"a-{label}\"\neach = [\"gfx94X-dcgpu\", \"radeon\"]\n",
            2,
            "set.toml:3: \"radeon\" is not a group of this file (it has none) nor a family or target of the built-in family table",
        ),
    ];
    for (text, code, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let set = write_set(dir.path(), text);
        let out = rockpack(&["plan", "--source", s(src.path()), "--set", s(&set)]);
        let err = stderr(&out).replace(&format!("{}/", dir.path().display()), "");
        assert_eq!(out.status.code(), Some(*code), "{err}");
        assert!(err.contains(want), "want {want}\n got {err}");
    }
    // The selection flags and --set exclude each other.
    let dir = tempfile::tempdir().unwrap();
    let set = write_set(
        dir.path(),
        "[[tarball]]\nname = \"a\"\nunion = [\"gfx942\"]\nlabel = \"x\"\n",
    );
    let out = rockpack(&[
        "plan",
        "--source",
        s(src.path()),
        "--set",
        s(&set),
        "--families",
        "gfx94X-dcgpu",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

/// `--only` takes a set's labels, `{label}-{variant}` and tarball names.
#[test]
fn only_takes_labels_variants_and_names() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let set = write_set(
        src.path(),
        "[[tarball]]\nname = \"sdk-{label}\"\neach = [\"gfx94X-dcgpu\", \"gfx110X-all\"]\nformats = [\"gz\", \"zst\"]\n\
         [[tarball]]\nname = \"sdk-lite-{label}\"\nvariant = \"lite\"\neach = [\"gfx94X-dcgpu\", \"gfx110X-all\"]\ncomponents = [\"lib\"]\n",
    );
    let names = |only: &[&str]| -> Vec<String> {
        let mut args = vec!["--source", s(src.path()), "--set", s(&set)];
        for o in only {
            args.extend_from_slice(&["--only", o]);
        }
        plan_json(&args)["tarballs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["file_name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&["gfx110X-all"]),
        [
            "sdk-gfx110X-all.tar.gz",
            "sdk-gfx110X-all.tar.zst",
            "sdk-lite-gfx110X-all.tar.gz"
        ]
    );
    assert_eq!(
        names(&["gfx94X-dcgpu-lite"]),
        ["sdk-lite-gfx94X-dcgpu.tar.gz"]
    );
    assert_eq!(
        names(&["sdk-gfx94X-dcgpu", "sdk-gfx110X-all.tar.zst"]),
        [
            "sdk-gfx94X-dcgpu.tar.gz",
            "sdk-gfx94X-dcgpu.tar.zst",
            "sdk-gfx110X-all.tar.zst"
        ]
    );
    let out = rockpack(&[
        "plan",
        "--source",
        s(src.path()),
        "--set",
        s(&set),
        "--only",
        "gfx950-dcgpu",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("it has: gfx94X-dcgpu, gfx94X-dcgpu-lite, gfx110X-all, gfx110X-all-lite"),
        "{}",
        stderr(&out)
    );
}

/// `--print-set` for a family the table lacks says why the file it prints
/// would be refused, and the file says so when read.
#[test]
fn printed_set_names_what_the_table_lacks() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-run");
    let out = rockpack_ok(&[
        "plan",
        "--source",
        s(&sample),
        "--families",
        "gfx94X-dcgpu;gfx1099",
        "--print-set",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("# Not in the built-in family table (TheRock 89553ce3746e): gfx1099"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let set = write_set(dir.path(), &text);
    let out = rockpack(&["plan", "--source", s(&sample), "--set", s(&set)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"gfx1099\" is not a group of this file"),
        "{}",
        stderr(&out)
    );
}
