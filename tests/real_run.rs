//! Runs laid out like real TheRock release prefixes (empty-manifest
//! artifacts, logs with `ccache_logs.tar.zst`, per-group manifests, index
//! pages, `python/`, `packages/`, `tarballs/` leftovers, targets only the
//! current family table knows), packed with the flags TheRock's release
//! step passes, from a directory, over HTTP and from S3 by `--run-id`: the
//! tarballs must be exactly the ones TheRock's script builds. Which
//! artifacts each tarball holds comes from the oracle's own reading of
//! TheRock's rules (`trees.py select`), what each holds from its flatten.

mod common;
// The servers are a part of tests/common compiled only where needed.
#[path = "common/servers/mod.rs"]
mod servers;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use hyper::Method;
use rockpack::fixtures::{self, FixtureSpec, Layout};
use servers::http_server::HttpServer;
use servers::s3_server::S3Server;

const VERSION: &str = "7.13.0.dev0+abc123";
const RUN_ID: &str = "24104028483";

/// TheRock's family table as the tests keep it (the built-in one's source).
fn table() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/therock_amdgpu_targets.cmake")
        .display()
        .to_string()
}

/// A generated run of `families` ('a;b') in a new temporary directory.
fn generate(layout: Layout, families: &str) -> tempfile::TempDir {
    generate_for(layout, families, false)
}

/// [`generate`], as TheRock's Windows build writes the run when `windows`.
fn generate_for(layout: Layout, families: &str, windows: bool) -> tempfile::TempDir {
    let run = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        layout,
        families: families.split(';').map(String::from).collect(),
        seed: 11,
        large_bytes: 256 << 10,
        sidecars: true,
        windows,
    };
    fixtures::generate(&spec, run.path()).expect("generate run");
    run
}

/// The release step's own flags (`build_tarballs.py`), after `source`.
fn release_args<'a>(source: &[&'a str], families: &'a str, dest: &'a str) -> Vec<&'a str> {
    release_args_for(source, families, dest, "linux", true)
}

/// [`release_args`] for `platform`, with or without the `-tests` tarballs.
fn release_args_for<'a>(
    source: &[&'a str],
    families: &'a str,
    dest: &'a str,
    platform: &'a str,
    tests: bool,
) -> Vec<&'a str> {
    let mut v = vec!["pack"];
    v.extend_from_slice(source);
    v.extend_from_slice(&[
        "--dist-amdgpu-families",
        families,
        "--platform",
        platform,
        "--package-version",
        VERSION,
        "--output-dir",
        dest,
    ]);
    if tests {
        v.push("--include-test-tarballs");
    }
    v
}

/// rockpack with `env` added and nothing of the GitHub Actions environment
/// inherited (it would change bucket resolution).
fn rockpack_env(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rockpack"));
    cmd.args(args);
    for k in [
        "GITHUB_REPOSITORY",
        "GITHUB_RUN_ID",
        "RELEASE_TYPE",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_EVENT_NAME",
        "GITHUB_EVENT_PATH",
        "IS_PR_FROM_FORK",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().expect("run rockpack");
    assert!(
        out.status.success(),
        "rockpack {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// DEST holds exactly the tarballs (and sidecars) the oracle selects for
/// `families` from `run`, each extracting to the oracle's flattened tree.
fn assert_as_therock_builds(run: &Path, families: &str, dest: &Path) -> Vec<String> {
    assert_as_therock_builds_for(run, families, dest, "linux", true)
}

/// [`assert_as_therock_builds`] for `platform`, with or without the
/// `-tests` tarballs.
fn assert_as_therock_builds_for(
    run: &Path,
    families: &str,
    dest: &Path,
    platform: &str,
    tests: bool,
) -> Vec<String> {
    let work = tempfile::tempdir().unwrap();
    let sel = work.path().join("select.json");
    let table = table();
    let mut select = vec![
        "select",
        "--table",
        &table,
        "--families",
        families,
        "--platform",
        platform,
        "--version",
        VERSION,
        "--out",
        s(&sel),
        s(run),
    ];
    if tests {
        select.push("--include-tests");
    }
    trees(&select);
    let selected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&sel).unwrap()).unwrap();
    let mut want: Vec<String> = selected
        .keys()
        .flat_map(|n| [n.clone(), format!("{n}.sha256sum")])
        .collect();
    want.sort();
    assert_eq!(files_in(dest), want, "tarballs in {}", dest.display());
    for (name, artifacts) in &selected {
        let a = work.path().join(format!("{name}.want.json"));
        let b = work.path().join(format!("{name}.got.json"));
        let mut flatten = vec!["flatten", "--out", s(&a)];
        flatten.extend(
            artifacts
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap()),
        );
        trees(&flatten);
        trees(&["gnutar", "--out", s(&b), s(&dest.join(name))]);
        trees(&["compare", s(&a), s(&b)]);
    }
    selected.keys().cloned().collect()
}

const FAMILIES: &str = "gfx94X-dcgpu;gfx110X-all;gfx103X-all";

#[test]
fn release_step_from_a_directory() {
    let run = generate(Layout::Kpack, FAMILIES);
    let dest = tempfile::tempdir().unwrap();
    rockpack_env(
        &release_args(&["--source", s(run.path())], FAMILIES, s(dest.path())),
        &[],
    );
    let built = assert_as_therock_builds(run.path(), FAMILIES, dest.path());
    assert_eq!(built.len(), 8, "{built:?}");
    // gfx103X-all holds the targets only the current table knows.
    let gfx103 = format!("therock-dist-linux-gfx103X-all-{VERSION}.tar.gz");
    let listing = Command::new("tar")
        .args(["tzf", s(&dest.path().join(&gfx103))])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for t in ["gfx1031", "gfx1033", "gfx1034"] {
        assert!(
            listing.contains(&format!("Kernels_{t}.hsaco")),
            "{t} missing from {gfx103}"
        );
    }
}

/// A run of TheRock's Windows build (DLLs, .exe, copies for links, `\r\n`
/// manifests, Windows' tarfile modes, dbg artifacts that list absent
/// stage directories) packed as its release step packs it with
/// `--platform=windows`: TheRock's names and trees, and every file's bytes
/// as the artifact holds them (Windows tarballs are signed downstream).
#[test]
fn windows_release_step_packs_every_file_unchanged() {
    let families = "gfx110X-all;gfx1151";
    let run = generate_for(Layout::Kpack, families, true);
    let dest = tempfile::tempdir().unwrap();
    rockpack_env(
        &release_args_for(
            &["--source", s(run.path())],
            families,
            s(dest.path()),
            "windows",
            true,
        ),
        &[],
    );
    let built = assert_as_therock_builds_for(run.path(), families, dest.path(), "windows", true);
    assert_eq!(built.len(), 6, "{built:?}");
    assert!(built.iter().all(|n| n.starts_with("therock-dist-windows-")));

    let multiarch = format!("therock-dist-windows-multiarch-tests-{VERSION}.tar.gz");
    let gz = std::fs::File::open(dest.path().join(&multiarch)).unwrap();
    let entries = common::tar_listing::tar_entries(flate2::read::GzDecoder::new(gz));
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} missing from {multiarch}"))
            .mode
    };
    // TheRock's flatten: 0644 plus the member's execute bits (Windows'
    // tarfile gives .exe and .bat 0777, other files 0666 or 0444), 0755
    // directories.
    for (path, mode) in [
        ("./bin/hipInfo.exe", 0o755),
        ("./bin/hipvars.bat", 0o755),
        ("./bin/amdhip64_7.dll", 0o644),
        ("./share/doc/rocm-core/LICENSE.txt", 0o644),
        ("./lib/amdhip64.lib", 0o644),
        ("./bin/rocblas/library/", 0o755),
    ] {
        assert_eq!(mode_of(path), mode, "{path}");
    }
    // No links: Windows copies, and the copies stay whole files.
    assert!(entries.iter().all(|e| matches!(e.typeflag, b'0' | b'5')));
    let data = |path: &str| &entries.iter().find(|e| e.path == path).unwrap().data;
    assert_eq!(
        data("./lib/llvm/bin/clang++.exe"),
        data("./lib/llvm/bin/clang.exe")
    );
    // Every file's bytes are the artifact's (the oracle compared the trees'
    // digests); one checked against the artifact directly, read by an
    // independent tar reader.
    let artifact = std::fs::File::open(run.path().join("core_lib_generic.tar.zst")).unwrap();
    let members = common::tar_listing::tar_entries(zstd::Decoder::new(artifact).unwrap());
    assert_eq!(members[0].data, b"core/clr/stage\r\n", "a Windows manifest");
    let member = members
        .iter()
        .find(|e| e.path == "core/clr/stage/bin/amdhip64_7.dll")
        .unwrap();
    assert_eq!(member.mode, 0o666);
    assert!(member.data.len() > 1000);
    assert_eq!(data("./bin/amdhip64_7.dll"), &member.data);
}

/// TheRock's shared package owners (PR #8328; its build_tarballs test
/// `test_shared_owner_preserves_selected_targets`): `gfx1250-strict` ships
/// in `gfx1250`'s tarball, which holds the payloads of whichever of the two
/// were selected, in any order, with and without `-tests` tarballs, in
/// kpack runs (and multiarch) and plain ones, as the oracle selects them.
/// In a plain run the two families' device code shares paths: with both
/// selected, TheRock's flatten keeps one by chance; rockpack stops and
/// names both.
#[test]
fn shared_owners_as_therock_builds_them() {
    for layout in [Layout::Kpack, Layout::Plain] {
        let run = generate(layout, "gfx1250;gfx1250-strict;gfx1151");
        for families in [
            "gfx1250;gfx1151",
            "gfx1250-strict;gfx1151",
            "gfx1250;gfx1250-strict;gfx1151",
            "gfx1151;gfx1250-strict;gfx1250",
        ] {
            for tests in [true, false] {
                let dest = tempfile::tempdir().unwrap();
                let args = release_args_for(
                    &["--source", s(run.path())],
                    families,
                    s(dest.path()),
                    "linux",
                    tests,
                );
                let both = families
                    .split(';')
                    .filter(|f| f.starts_with("gfx1250"))
                    .count()
                    == 2;
                if layout == Layout::Plain && both {
                    let out = rockpack(&args);
                    let err = stderr(&out);
                    assert_eq!(out.status.code(), Some(1), "{families}: {err}");
                    for needle in ["conflict", "_gfx1250.tar.zst", "_gfx1250-strict.tar.zst"] {
                        assert!(err.contains(needle), "{families}: {needle}: {err}");
                    }
                    assert!(files_in(dest.path()).is_empty());
                    continue;
                }
                rockpack_env(&args, &[]);
                let built =
                    assert_as_therock_builds_for(run.path(), families, dest.path(), "linux", tests);
                let labels = if layout == Layout::Kpack { 3 } else { 2 };
                assert_eq!(built.len(), labels * (1 + tests as usize), "{built:?}");
                assert!(
                    built.iter().any(|n| n.contains("-gfx1250-"))
                        && !built.iter().any(|n| n.contains("strict")),
                    "{families}: {built:?}"
                );
            }
        }
    }
}

#[test]
fn release_step_over_http() {
    let run = generate(Layout::Kpack, FAMILIES);
    let server = HttpServer::start(run.path());
    let url = format!("{}/", server.base);
    let dest = tempfile::tempdir().unwrap();
    rockpack_env(
        &release_args(&["--source", &url], FAMILIES, s(dest.path())),
        &[],
    );
    assert_as_therock_builds(run.path(), FAMILIES, dest.path());
    // The listing followed the run prefix's own index pages, and nothing
    // it skipped was downloaded.
    let seen = server.faults.seen();
    for page in ["/logs/", "/manifests/"] {
        assert!(
            seen.iter()
                .any(|r| r.method == Method::GET && r.uri == page),
            "{page} was not read"
        );
    }
    let fetched_skipped = seen
        .iter()
        .filter(|r| r.method == Method::GET)
        .find(|r| r.uri.contains("ccache_logs") || r.uri.starts_with("/tarballs/therock"));
    assert!(fetched_skipped.is_none(), "{fetched_skipped:?}");
}

#[test]
fn release_step_from_s3_by_run_id() {
    let run = generate(Layout::Kpack, FAMILIES);
    let server = S3Server::start(&["therock-ci-artifacts"]);
    server.upload_dir(
        run.path(),
        "therock-ci-artifacts",
        &format!("{RUN_ID}-linux"),
    );
    let dest = tempfile::tempdir().unwrap();
    // As TheRock's workflow passes them: blank inputs mean "unset".
    let source = ["--run-id", RUN_ID, "--run-github-repo=", "--release-type="];
    let mut args = release_args(&source, FAMILIES, s(dest.path()));
    args.extend_from_slice(&["--endpoint-url", &server.endpoint]);
    rockpack_env(&args, &server.env());
    assert_as_therock_builds(run.path(), FAMILIES, dest.path());
}

/// TheRock builds the multiarch tarball for any kpack-split run, one
/// family included (its upload step fails without it).
#[test]
fn kpack_run_of_one_family_gets_multiarch() {
    let run = generate(Layout::Kpack, "gfx94X-dcgpu");
    let dest = tempfile::tempdir().unwrap();
    rockpack_env(
        &release_args(&["--source", s(run.path())], "gfx94X-dcgpu", s(dest.path())),
        &[],
    );
    let built = assert_as_therock_builds(run.path(), "gfx94X-dcgpu", dest.path());
    assert!(
        built.iter().any(|n| n.contains("-multiarch-tests-")),
        "{built:?}"
    );
}

/// Without kpack splitting there is no multiarch tarball, and families
/// share device-code paths, each in its own tarball.
#[test]
fn plain_run_has_no_multiarch() {
    let families = "gfx94X-dcgpu;gfx110X-all";
    let run = generate(Layout::Plain, families);
    let dest = tempfile::tempdir().unwrap();
    rockpack_env(
        &release_args(&["--source", s(run.path())], families, s(dest.path())),
        &[],
    );
    let built = assert_as_therock_builds(run.path(), families, dest.path());
    assert_eq!(built.len(), 4, "{built:?}");
}

/// `list` counts the files that are not artifacts; `-v` names them.
#[test]
fn list_counts_and_names_skipped_files() {
    let run = generate(Layout::Kpack, "gfx94X-dcgpu");
    let out = rockpack_env(&["list", "--source", s(run.path()), "-v"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stdout.lines().next().unwrap_or_default();
    // logs: 2 folders x (build.log, ccache_logs.tar.zst) + index.html;
    // python, packages: a file + index.html; tarballs: a tarball, its
    // sidecar + index.html; manifests/index.html (the run manifests
    // themselves are used).
    assert!(first.contains("; 13 other files skipped"), "{first}");
    for key in [
        "logs/math-libs/gfx94X-dcgpu/ccache_logs.tar.zst",
        "logs/index.html",
        "tarballs/therock-dist-linux-multiarch-7.0.0rc0.tar.gz",
        "python/rocm_sdk_core-7.0.0rc0-py3-none-linux_x86_64.whl",
    ] {
        assert!(stderr.contains(key), "-v does not name {key}:\n{stderr}");
    }
    // Empty-manifest artifacts are artifacts.
    assert!(stdout.contains("host-blas"), "{stdout}");
}
