//! The command line as TheRock's release step and CI use it: the
//! build_tarballs.py flags, machine-readable output, and log levels.

mod common;

use common::*;
use rockpack::fixtures::Layout;

#[test]
fn build_tarballs_flags_give_the_same_file_names() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("tarballs");
    rockpack_ok(&[
        "pack",
        "--source",
        s(src.path()),
        "--dist-amdgpu-families",
        "gfx94X-dcgpu;gfx110X-all",
        "--platform",
        "linux",
        "--package-version",
        "7.13.0.dev0+abc123",
        "--output-dir",
        s(&dest),
    ]);
    let tarballs: Vec<String> = gz_tarballs_in(&dest);
    assert_eq!(
        tarballs,
        [
            "therock-dist-linux-gfx110X-all-7.13.0.dev0+abc123.tar.gz",
            "therock-dist-linux-gfx94X-dcgpu-7.13.0.dev0+abc123.tar.gz",
            "therock-dist-linux-multiarch-7.13.0.dev0+abc123.tar.gz",
        ]
    );
}

/// The compression flags of TheRock's build_tarballs.py (its PR #7670):
/// `--compression-level` is gzip's level (the bytes of `--level N`), the
/// system-gzip backend is gzip's level 6, threads and workers change
/// nothing; values the script refuses are usage errors, and so is a level
/// `--level` contradicts. `pack --help` lists the selection flags under
/// their own heading, not "S3 access".
#[test]
fn build_tarballs_compression_flags_are_accepted() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let out = tempfile::tempdir().unwrap();
    let pack = |name: &str, extra: &[&str]| {
        let dest = out.path().join(name);
        let mut args = vec![
            "pack",
            "--source",
            s(src.path()),
            "--dist-amdgpu-families",
            "gfx94X-dcgpu",
            "--output-dir",
            s(&dest),
        ];
        args.extend_from_slice(extra);
        (rockpack(&args), dest)
    };
    let contents = |extra: &[&str], name: &str| {
        let (o, dest) = pack(name, extra);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        (dir_contents(&dest), stderr(&o))
    };
    let (theirs, log) = contents(
        &[
            "--compression-backend",
            "zlib-ng",
            "--compression-level",
            "9",
            "--compression-threads",
            "8",
            "--compress-workers",
            "2",
        ],
        "theirs",
    );
    assert!(
        log.contains("--compress-workers 2: rockpack builds every tarball in one pass"),
        "{log}"
    );
    let (level9, _) = contents(&["--level", "9"], "level9");
    let (default, _) = contents(&[], "default");
    assert!(theirs == level9, "--compression-level 9 is --level 9");
    assert!(theirs != default, "level 9 differs from the default 6");
    let (system, _) = contents(
        &[
            "--compression-backend",
            "system-gzip",
            "--compression-level",
            "9",
        ],
        "system",
    );
    assert!(
        system == default,
        "system-gzip compresses at gzip's level 6"
    );
    let (agree, _) = contents(&["--compression-level", "9", "--level", "9"], "agree");
    assert!(agree == level9);

    for (bad, says) in [
        (&["--compression-level", "10"][..], "--compression-level"),
        (&["--compression-threads", "0"][..], "--compression-threads"),
        (&["--compress-workers", "0"][..], "--compress-workers"),
        (
            &["--compression-backend", "pigz"][..],
            "--compression-backend",
        ),
        (
            &["--compression-level", "9", "--level", "6"][..],
            "give one",
        ),
    ] {
        let (o, dest) = pack("bad", bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{bad:?}: {}", stderr(&o));
        assert!(!dest.exists(), "{bad:?} created {}", dest.display());
    }

    let help = String::from_utf8(rockpack_ok(&["pack", "--help"]).stdout).unwrap();
    let at = |what: &str| help.find(what).unwrap_or_else(|| panic!("{what}: {help}"));
    for flag in ["--set <FILE>", "--families", "--tests", "--only"] {
        assert!(at("Source and selection:") < at(flag), "{flag}: {help}");
        assert!(
            at(flag) < at("S3 access:"),
            "{flag} is listed under S3 access: {help}"
        );
    }
    assert!(at("TheRock's build_tarballs.py compression flags:") < at("--compress-workers"));
}

#[test]
fn json_logs_quiet_and_listing() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let dest = tempfile::tempdir().unwrap();
    let pack = |extra: &[&str]| {
        let mut args = vec![
            "pack",
            "--source",
            s(src.path()),
            "--families",
            "gfx94X-dcgpu",
            "--dest",
            s(dest.path()),
        ];
        args.extend_from_slice(extra);
        rockpack_ok(&args)
    };
    // JSON logs: every log line is a JSON object with a level.
    let out = pack(&["--log-format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<&str> = stderr.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!logs.is_empty(), "{stderr}");
    for l in logs {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    // -q: no info logs, the final table still.
    let out = pack(&["-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("INFO"), "{stderr}");
    assert!(
        stderr.contains("therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz"),
        "{stderr}"
    );
    // -v: debug detail per artifact.
    let out = pack(&["-v"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("repacked"));
    // list --json: every artifact with name, component, target and size.
    let out = rockpack_ok(&["list", "--source", s(src.path()), "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() > 10);
    for a in list {
        assert!(
            a["name"]["component"].is_string() && a["size"].as_u64().unwrap() > 0,
            "{a}"
        );
    }
    // Plain listing groups by name.
    let out = rockpack_ok(&["list", "--source", s(src.path())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nbase  ("), "{text}");
}

#[test]
fn only_selects_part_of_the_plan() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let select = [
        "--source",
        s(src.path()),
        "--families",
        "gfx94X-dcgpu;gfx110X-all",
        "--tests",
    ];
    let mut args = vec!["--only", "multiarch", "--only", "gfx94X-dcgpu-tests"];
    args.extend_from_slice(&select);
    let plan = plan_json(&args);
    let names: Vec<&str> = plan["tarballs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "therock-dist-linux-gfx94X-dcgpu-tests-0.0.0.tar.gz",
            "therock-dist-linux-multiarch-0.0.0.tar.gz",
            "therock-dist-linux-multiarch-tests-0.0.0.tar.gz",
        ]
    );
    let mut bad = vec!["plan", "--only", "gfx999"];
    bad.extend_from_slice(&select);
    let out = rockpack(&bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no tarball"));
}

/// `--memory` changes buffers and read-ahead, never the bytes; a budget too
/// small for the run is refused before anything is written, saying what it
/// needs.
#[test]
fn memory_budget_changes_nothing_but_memory() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let pack = |dest: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "pack",
            "--source",
            s(src.path()),
            "--families",
            "gfx94X-dcgpu;gfx110X-all",
            "--tests",
            "--dest",
            s(dest),
        ];
        args.extend_from_slice(extra);
        rockpack(&args)
    };
    let roomy = tempfile::tempdir().unwrap();
    let tight = tempfile::tempdir().unwrap();
    assert!(pack(roomy.path(), &["--memory", "2G"]).status.success());
    let out = pack(tight.path(), &["--memory", "96M", "--format", "gz"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (roomy, tight) = (dir_contents(roomy.path()), dir_contents(tight.path()));
    let names = |d: &[(String, Vec<u8>)]| d.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&roomy), names(&tight));
    for ((name, a), (_, b)) in roomy.iter().zip(&tight) {
        assert!(a == b, "{name} differs between --memory 2G and 96M");
    }

    let none = tempfile::tempdir().unwrap();
    let dest = none.path().join("out");
    let out = pack(&dest, &["--memory", "80M", "--jobs", "4"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--memory 80 MiB: too small for this run, which needs at least"),
        "{err}"
    );
    assert!(err.contains("lower --jobs"), "{err}");
    assert!(!dest.exists(), "a refused run created {}", dest.display());

    let out = pack(&dest, &["--memory", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected a size such as"));
}

/// Without `--memory` a run sizes itself from the machine, or from
/// `ROCKPACK_CORES`; says what it chose, on the log and in `--summary`;
/// and writes the same bytes whatever it chose.
#[test]
fn cores_and_memory_come_from_the_machine_or_rockpack_cores() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let pack = |cores: &str, dest: &std::path::Path| {
        let summary = dest.join("summary.json");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rockpack"))
            .args(["pack", "--source", s(src.path())])
            .args(["--families", "gfx94X-dcgpu;gfx110X-all", "--tests"])
            .args(["--dest", s(&dest.join("dist")), "--summary", s(&summary)])
            .env("ROCKPACK_CORES", cores)
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("run rockpack");
        let budget = std::fs::read(&summary)
            .ok()
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap()["budget"].clone());
        (out, budget)
    };
    let (small, big) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (out, two) = pack("2", small.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let (out, sixty_four) = pack("64", big.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let (two, sixty_four) = (two.unwrap(), sixty_four.unwrap());
    assert_eq!(sixty_four["cores"], 64);
    assert_eq!(sixty_four["cores_from"], "ROCKPACK_CORES");
    assert_eq!(two["jobs"], 2);
    assert!(sixty_four["jobs"].as_u64().unwrap() > 2, "{sixty_four}");
    assert!(
        sixty_four["artifact_jobs"].as_u64().unwrap() > 1,
        "{sixty_four}"
    );
    assert!(sixty_four["memory"].as_u64().unwrap() >= 512 << 20);
    let why = sixty_four["memory_from"].as_str().unwrap();
    assert!(
        why.contains("per core") || why.contains("a quarter of"),
        "{why}"
    );
    let err = stderr(&out);
    assert!(err.contains("for 64 cores (ROCKPACK_CORES)"), "{err}");
    let (a, b) = (
        dir_contents(&small.path().join("dist")),
        dir_contents(&big.path().join("dist")),
    );
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between ROCKPACK_CORES=2 and 64");
    }

    let (out, _) = pack("none", tempfile::tempdir().unwrap().path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ROCKPACK_CORES=none"),
        "{}",
        stderr(&out)
    );
}

/// A family without device code in the run is built from the generic
/// artifacts, as TheRock builds it, with a warning on the log, in
/// `plan --json`, in `--summary` and in the GitHub step summary.
#[test]
fn generic_only_family_warns_everywhere() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let out = tempfile::tempdir().unwrap();
    let (dest, step, summary) = (
        out.path().join("dist"),
        out.path().join("step.md"),
        out.path().join("summary.json"),
    );
    let select = [
        "--source",
        s(src.path()),
        "--families",
        "gfx94X-dcgpu;gfx120X-all",
    ];
    let plan = plan_json(&select);
    let warnings = plan["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("family \"gfx120X-all\" (targets gfx1200, gfx1201)")
            && warning.contains("generic artifacts only"),
        "{warning}"
    );
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_rockpack"))
        .arg("pack")
        .args(select)
        .args(["--dest", s(&dest), "--summary", s(&summary)])
        .env("GITHUB_STEP_SUMMARY", &step)
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("WARN") && err.contains(warning), "{err}");
    // Kpack-split: the multiarch tarball too, as TheRock builds it.
    let tarballs: Vec<String> = gz_tarballs_in(&dest);
    assert_eq!(
        tarballs,
        [
            "therock-dist-linux-gfx120X-all-0.0.0.tar.gz",
            "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz",
            "therock-dist-linux-multiarch-0.0.0.tar.gz",
        ]
    );
    let md = std::fs::read_to_string(&step).unwrap();
    assert!(md.contains(&format!("> [!WARNING]\n> {warning}\n")), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["warnings"][0].as_str(), Some(warning));
}

/// A table without the run's targets (here: one that predates gfx942)
/// warns, naming the targets, the table file and --family-table; one family
/// of a kpack-split run still gets its multiarch tarball.
#[test]
fn stale_family_table_warns_and_single_family_gets_multiarch() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let table = src.path().join("old_targets.cmake");
    std::fs::write(
        &table,
        "therock_add_amdgpu_target(gfx1100 \"AMD RX 7900 XTX\" FAMILY gfx110X-all)\n",
    )
    .unwrap();
    let plan = plan_json(&[
        "--source",
        s(src.path()),
        "--families",
        "gfx1100",
        "--family-table",
        s(&table),
    ]);
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let stale = warnings
        .iter()
        .find(|w| w.contains("does not know"))
        .unwrap_or_else(|| panic!("no stale-table warning in {warnings:?}"));
    assert!(
        stale.contains("gfx942")
            && stale.contains(&format!("the family table {}", table.display()))
            && stale.contains("--family-table"),
        "{stale}"
    );
    let labels: Vec<&str> = plan["tarballs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["gfx1100", "multiarch"]);

    // The built-in table knows the run's targets: no warning; still multiarch.
    let plan = plan_json(&["--source", s(src.path()), "--families", "gfx94X-dcgpu"]);
    assert_eq!(plan["warnings"].as_array().unwrap().len(), 0, "{plan}");
    assert_eq!(plan["tarballs"].as_array().unwrap().len(), 2, "{plan}");
}

/// Every value that becomes a part of a tarball name or an S3 key is
/// checked where it enters: a version, families, targets, run ids and
/// renamed parts that could climb out of the destination or break a
/// checksum line are usage errors naming the flag; nothing is created.
#[test]
fn values_that_become_names_are_checked() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let dest = tempfile::tempdir().unwrap();
    let out_dir = dest.path().join("out");
    let cases: &[(&[&str], &str)] = &[
        (&["--version", "../../x"], "--version"),
        (&["--version", "7\n1"], "--version"),
        (&["--version", ""], "--version"),
        (&["--families", "gfx94X-dcgpu;.."], "--families"),
        (
            &["--families", "gfx94X-dcgpu", "--targets", "gfx942/x"],
            "--targets",
        ),
    ];
    for (extra, flag) in cases {
        let mut args = vec!["pack", "--source", s(src.path()), "--dest", s(&out_dir)];
        if !extra.contains(&"--families") {
            args.extend_from_slice(&["--families", "gfx94X-dcgpu"]);
        }
        args.extend_from_slice(extra);
        let out = rockpack(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(flag) && err.contains("names"),
            "{extra:?}: {err}"
        );
        assert!(!out_dir.exists(), "{extra:?} created {}", out_dir.display());
    }
    let out = rockpack(&["pack", "--run-id", "1/../2", "--families", "gfx94X-dcgpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--run-id"));
    let out = rockpack(&[
        "promote",
        "s3://bucket/run/",
        "s3://bucket/release/",
        "--rename",
        "0.0.0=a\u{1b}b",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--rename") && err.contains("control character"),
        "{err}"
    );
}
