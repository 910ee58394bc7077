//! Conformance: every tarball rockpack builds extracts (with GNU tar and
//! with Python's tarfile) to exactly the tree an independent flatten of the
//! same artifacts gives, and runs are reproducible byte for byte.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use rockpack::fixtures::Layout;

/// Packs `args`, then checks every planned tarball against the oracle.
fn pack_and_check(source: &Path, select: &[&str], format: &str) -> Vec<String> {
    let dest = tempfile::tempdir().unwrap();
    let mut plan_args = vec!["--source", s(source), "--format", format];
    plan_args.extend_from_slice(select);
    let plan = plan_json(&plan_args);
    let mut pack = vec!["pack", "--dest", s(dest.path())];
    pack.extend_from_slice(&plan_args);
    rockpack_ok(&pack);

    let planned = planned(&plan, source);
    let mut expected_files: Vec<String> = planned
        .iter()
        .flat_map(|(n, _)| [n.clone(), format!("{n}.sha256sum")])
        .collect();
    expected_files.sort();
    assert_eq!(files_in(dest.path()), expected_files);

    let work = tempfile::tempdir().unwrap();
    for (name, artifacts) in &planned {
        let tarball = dest.path().join(name);
        matches_the_oracle(&tarball, artifacts, &[], &work.path().join(name));
        integrity(&tarball, format);
        sidecar_matches(&tarball);
    }
    planned.into_iter().map(|(n, _)| n).collect()
}

/// `tarball` read with tarfile and extracted with GNU tar is the tree
/// `trees.py flatten` (with `flatten_flags`) makes of `artifacts`; returns
/// the tarfile view (`at.tarfile.json`). `tarball` also fails on a path
/// listed twice, non-root owners and names without "./".
fn matches_the_oracle(
    tarball: &Path,
    artifacts: &[std::path::PathBuf],
    flatten_flags: &[&str],
    at: &Path,
) -> std::path::PathBuf {
    let json = |view: &str| std::path::PathBuf::from(format!("{}.{view}.json", s(at)));
    let (want, via_tarfile, via_gnutar) = (json("want"), json("tarfile"), json("gnutar"));
    let mut flatten = vec!["flatten", "--out", s(&want)];
    flatten.extend_from_slice(flatten_flags);
    flatten.extend(artifacts.iter().map(|p| s(p)));
    trees(&flatten);
    trees(&["tarball", "--out", s(&via_tarfile), s(tarball)]);
    trees(&["gnutar", "--out", s(&via_gnutar), s(tarball)]);
    trees(&["compare", s(&want), s(&via_tarfile)]);
    trees(&["compare", s(&want), s(&via_gnutar)]);
    via_tarfile
}

/// `gzip -t` / `zstd -t` accept the file.
fn integrity(tarball: &Path, format: &str) {
    let tool = if format == "gz" { "gzip" } else { "zstd" };
    let st = Command::new(tool).arg("-tq").arg(tarball).status().unwrap();
    assert!(st.success(), "{tool} -t {}", tarball.display());
}

fn sidecar_matches(tarball: &Path) {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(tarball).unwrap();
    let name = tarball.file_name().unwrap().to_str().unwrap();
    let sidecar = std::fs::read_to_string(format!("{}.sha256sum", tarball.display())).unwrap();
    assert_eq!(
        sidecar,
        format!("{}  {name}\n", hex::encode(Sha256::digest(&data)))
    );
}

#[test]
fn plain_run_two_families() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Plain, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let names = pack_and_check(
        src.path(),
        &["--families", "gfx94X-dcgpu;gfx110X-all"],
        "gz",
    );
    // Not kpack-split: no multiarch tarball.
    assert_eq!(
        names,
        [
            "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz",
            "therock-dist-linux-gfx110X-all-0.0.0.tar.gz"
        ]
    );
}

#[test]
fn kpack_run_multiarch_and_tests() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let names = pack_and_check(
        src.path(),
        &[
            "--dist-amdgpu-families",
            "gfx94X-dcgpu;gfx110X-all",
            "--include-test-tarballs",
            "--package-version",
            "7.1.0",
        ],
        "gz",
    );
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains(&"therock-dist-linux-multiarch-tests-7.1.0.tar.gz".to_string()));
}

#[test]
fn kpack_run_zstd() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let names = pack_and_check(
        src.path(),
        &["--families", "gfx94X-dcgpu;gfx110X-all", "--tests"],
        "zst",
    );
    assert!(names.iter().all(|n| n.ends_with(".tar.zst")));
}

#[test]
fn per_target_tarballs() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    let names = pack_and_check(
        src.path(),
        &[
            "--families",
            "gfx110X-all",
            "--per-target",
            "--targets",
            "gfx942",
            "--multiarch",
            "never",
        ],
        "gz",
    );
    assert_eq!(
        names,
        [
            "therock-dist-linux-gfx110X-all-0.0.0.tar.gz",
            "therock-dist-linux-gfx1100-0.0.0.tar.gz",
            "therock-dist-linux-gfx1101-0.0.0.tar.gz",
            "therock-dist-linux-gfx942-0.0.0.tar.gz",
        ]
    );
}

#[test]
fn per_target_needs_kpack() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Plain, &["gfx110X-all"], src.path());
    let out = rockpack(&[
        "plan",
        "--source",
        s(src.path()),
        "--families",
        "gfx110X-all",
        "--per-target",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kpack-split"));
}

#[test]
fn runs_are_byte_identical_whatever_the_thread_count() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu", "gfx110X-all"], src.path());
    for format in ["gz", "zst"] {
        let mut outputs = Vec::new();
        for jobs in ["1", "2", "2"] {
            let dest = tempfile::tempdir().unwrap();
            rockpack_ok(&[
                "pack",
                "--source",
                s(src.path()),
                "--families",
                "gfx94X-dcgpu;gfx110X-all",
                "--tests",
                "--format",
                format,
                "--jobs",
                jobs,
                "--dest",
                s(dest.path()),
            ]);
            outputs.push(dir_contents(dest.path()));
        }
        assert_eq!(outputs[0].len(), 12);
        assert!(
            outputs[0] == outputs[1] && outputs[1] == outputs[2],
            "{format} output differs between runs"
        );
    }
}

/// The acceptance check: the plain way (extract each selected artifact's
/// prefixed members, flattened, in plan order, then `tar czf`) gives the
/// same tree as rockpack's tarball of the shipped sample.
#[test]
fn sample_matches_the_plain_way() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-run");
    let select = [
        "--source",
        s(&sample),
        "--families",
        "gfx94X-dcgpu;gfx110X-all",
        "--tests",
    ];
    let plan = plan_json(&select);
    let dest = tempfile::tempdir().unwrap();
    let mut pack = vec!["pack", "--dest", s(dest.path())];
    pack.extend_from_slice(&select);
    rockpack_ok(&pack);
    let work = tempfile::tempdir().unwrap();
    for (name, artifacts) in planned(&plan, &sample) {
        let flat = work.path().join(format!("{name}.d"));
        let plain = work.path().join(format!("{name}.plain.tar.gz"));
        let mut flatten = vec!["flatten", "--extract-to", s(&flat), "--out", "-"];
        flatten.extend(artifacts.iter().map(|p| s(p)));
        trees(&flatten);
        let st = Command::new("tar")
            .args([
                "czf",
                s(&plain),
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-C",
                s(&flat),
                ".",
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let a = work.path().join(format!("{name}.plain.json"));
        let b = work.path().join(format!("{name}.rockpack.json"));
        trees(&["gnutar", "--out", s(&a), s(&plain)]);
        trees(&["gnutar", "--out", s(&b), s(&dest.path().join(&name))]);
        trees(&["compare", s(&a), s(&b)]);
    }
}

#[test]
fn stdout_sink_writes_the_single_tarball() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let dest = tempfile::tempdir().unwrap();
    // A kpack run also gets a multiarch tarball: one tarball only for stdout.
    let select = [
        "--source",
        s(src.path()),
        "--families",
        "gfx94X-dcgpu",
        "--multiarch",
        "never",
    ];
    let mut to_dir = vec!["pack", "--dest", s(dest.path())];
    to_dir.extend_from_slice(&select);
    rockpack_ok(&to_dir);
    let mut to_stdout = vec!["pack", "--dest", "-"];
    to_stdout.extend_from_slice(&select);
    let out = rockpack_ok(&to_stdout);
    let file = std::fs::read(
        dest.path()
            .join("therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz"),
    )
    .unwrap();
    assert!(
        out.stdout == file,
        "stdout differs from the directory sink's file"
    );
}

#[test]
fn mtime_clamp_and_source_date_epoch() {
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Kpack, &["gfx94X-dcgpu"], src.path());
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rockpack"))
        .args([
            "pack",
            "--source",
            s(src.path()),
            "--families",
            "gfx94X-dcgpu",
            "--dest",
            s(dest.path()),
        ])
        .env("SOURCE_DATE_EPOCH", "1000")
        .output()
        .unwrap();
    assert!(out.status.success());
    let tarball = dest
        .path()
        .join("therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz");
    let listing = Command::new("tar")
        .args(["tvzf", s(&tarball), "--full-time", "--utc"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.lines().count() > 10);
    assert!(
        text.lines().all(|l| l.contains("1970-01-01 00:16:40")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.contains("root/root")), "{text}");
}

/// The tree TheRock's step writes, member by member: `./` first, files
/// 0644 plus their execute bits, directories 0755, symlinks 0777, and an
/// entry for every directory a member is in, whatever the artifact says.
/// `--keep-modes` keeps the members' own modes less set-id and world-write.
/// (The modes are those a probe of TheRock's script gave for these
/// members; the oracle derives the same from its rule.)
#[test]
fn modes_root_and_made_directories_as_therock_writes_them() {
    use rockpack::fixtures::{write_artifact, Member};
    use rockpack::plan::Compression;
    let src = tempfile::tempdir().unwrap();
    generate(Layout::Plain, &["gfx94X-dcgpu"], src.path());
    let p = |rel: &str| format!("zzmodes/stage/{rel}");
    let members = [
        Member::dir(p("zzlib")).with_mode(0o700),
        Member::file(p("zzlib/private.so"), b"private\n".to_vec()).with_mode(0o600),
        Member::file(p("zzlib/readonly.txt"), b"read only\n".to_vec()).with_mode(0o444),
        Member::file(p("zzlib/group.txt"), b"group writable\n".to_vec()).with_mode(0o664),
        Member::exe(p("zzlib/tool"), b"#!/bin/sh\n".to_vec()).with_mode(0o700),
        Member::exe(p("zzlib/script"), b"#!/bin/sh\necho\n".to_vec()).with_mode(0o775),
        Member::hardlink(p("zzlib/tool-link"), p("zzlib/tool")),
        Member::symlink(p("zzlib/private.so.1"), "private.so"),
        Member::dir(p("scratch")).with_mode(0o1777),
        Member::exe(p("scratch/setuid"), b"suid\n".to_vec()).with_mode(0o4755),
        // No entries for share/zzmodes or share/zzmodes/deep.
        Member::file(p("share/zzmodes/deep/data.txt"), b"deep\n".to_vec()),
    ];
    write_artifact(
        &src.path().join("zzmodes_lib_generic.tar.zst"),
        Compression::Zst,
        Some(&["zzmodes/stage"]),
        &members,
    )
    .unwrap();
    let select = ["--source", s(src.path()), "--families", "gfx94X-dcgpu"];
    let planned = planned(&plan_json(&select), src.path());
    let name = "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz";
    let (_, artifacts) = planned.iter().find(|(n, _)| n == name).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mode_of = |json: &Path, path: &str| -> String {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
        v[path]["mode"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} in {}", json.display()))
            .to_string()
    };
    for (keep, want) in [
        (
            false,
            [
                (".", "0755"),
                ("zzlib", "0755"),
                ("zzlib/private.so", "0644"),
                ("zzlib/readonly.txt", "0644"),
                ("zzlib/group.txt", "0644"),
                ("zzlib/tool", "0744"),
                ("zzlib/tool-link", "0744"),
                ("zzlib/script", "0755"),
                ("zzlib/private.so.1", "0777"),
                ("scratch", "0755"),
                ("scratch/setuid", "0755"),
                ("share/zzmodes", "0755"),
                ("share/zzmodes/deep", "0755"),
            ],
        ),
        (
            true,
            [
                (".", "0755"),
                ("zzlib", "0700"),
                ("zzlib/private.so", "0600"),
                ("zzlib/readonly.txt", "0444"),
                ("zzlib/group.txt", "0664"),
                ("zzlib/tool", "0700"),
                ("zzlib/tool-link", "0700"),
                ("zzlib/script", "0775"),
                ("zzlib/private.so.1", "0777"),
                ("scratch", "1775"),
                ("scratch/setuid", "0755"),
                ("share/zzmodes", "0755"),
                ("share/zzmodes/deep", "0755"),
            ],
        ),
    ] {
        let dest = work.path().join(format!("dest-{keep}"));
        let mut pack = vec!["pack", "--dest", s(&dest)];
        pack.extend_from_slice(&select);
        if keep {
            pack.push("--keep-modes");
        }
        rockpack_ok(&pack);
        let tarball = dest.join(name);
        // `./` opens the tarball.
        let listing = Command::new("tar")
            .args(["tzf", s(&tarball)])
            .output()
            .unwrap();
        assert!(listing.status.success());
        let first = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .next()
            .map(str::to_string);
        assert_eq!(first.as_deref(), Some("./"), "keep-modes {keep}");
        let flags: &[&str] = if keep { &["--keep-modes"] } else { &[] };
        let tarfile = matches_the_oracle(
            &tarball,
            artifacts,
            flags,
            &work.path().join(format!("keep-{keep}")),
        );
        for (path, mode) in want {
            assert_eq!(mode_of(&tarfile, path), mode, "{path}, keep-modes {keep}");
        }
    }
}
