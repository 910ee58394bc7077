//! The HTTP source end to end: a generated run served by the static test
//! server (listed through index.html, faults injected), packed by the real
//! binary. The acceptance criterion is that every output file is byte-
//! identical to packing the same run from the local directory.

mod common;
// The servers are a part of tests/common compiled only where needed.
#[path = "common/servers/mod.rs"]
mod servers;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use hyper::Method;
use rockpack::fixtures::{FixtureSpec, Layout};
use servers::faults::{
    assert_one_range_resumed, assert_read_in_ranges, Action, Faults, Rule, Seen,
};
use servers::http_server::HttpServer;
use servers::s3_server::S3Server;
use tempfile::TempDir;

const FAMILY: &str = "gfx94X-dcgpu";
/// Selection for every plan and pack: the family and its -tests variant.
const SELECT: &[&str] = &["--families", FAMILY, "--tests"];
/// No child may run longer (a hang fails the test instead of the suite).
const LIMIT: Duration = Duration::from_secs(120);

/// A generated run: `root` is served, the run lives at `root/run`.
struct Run {
    _tmp: TempDir,
    root: PathBuf,
    run: PathBuf,
}

impl Run {
    fn generate() -> Run {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("www");
        let run = root.join("run");
        let spec = FixtureSpec {
            layout: Layout::Kpack,
            families: vec![FAMILY.to_string()],
            seed: 7,
            large_bytes: 6 << 20,
            sidecars: true,
            windows: false,
        };
        rockpack::fixtures::generate(&spec, &run).unwrap();
        Run {
            _tmp: tmp,
            root,
            run,
        }
    }

    /// A private copy of the shared run, for tests that change files.
    fn copy() -> Run {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("www");
        copy_dir(&shared().run.root, &root);
        let run = root.join("run");
        Run {
            _tmp: tmp,
            root,
            run,
        }
    }
}

/// The run every read-only test serves, and the reference outputs.
struct Shared {
    run: Run,
    expected: TempDir,
    /// Planned artifacts as (key, size), largest first.
    planned: Vec<(String, u64)>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let run = Run::generate();
        let expected = pack_dir(&run.run);
        let mut args = vec!["--source", s(&run.run)];
        args.extend_from_slice(SELECT);
        let plan = plan_json(&args);
        let mut planned: Vec<(String, u64)> = plan["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["key"].as_str().unwrap().to_string(),
                    a["size"].as_u64().unwrap(),
                )
            })
            .collect();
        planned.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        assert!(planned.len() >= 3 && planned[2].1 > 64 << 10, "{planned:?}");
        Shared {
            run,
            expected,
            planned,
        }
    })
}

/// The `i`-th largest planned artifact: (key, size).
fn big(i: usize) -> (&'static str, u64) {
    let (k, n) = &shared().planned[i];
    (k.as_str(), *n)
}

fn pack_dir(run: &Path) -> TempDir {
    let dest = tempfile::tempdir().unwrap();
    let mut args = vec!["pack", "--source", s(run), "--dest", s(dest.path())];
    args.extend_from_slice(SELECT);
    rockpack_ok(&args);
    dest
}

/// Packs from `url` into a new directory (created by rockpack), with
/// `extra` arguments.
fn pack_http(url: &str, extra: &[&str]) -> (TempDir, PathBuf, Output) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let mut args = vec!["pack", "--source", url, "--dest", s(&dest)];
    args.extend_from_slice(SELECT);
    args.extend_from_slice(extra);
    let out = run_bounded(&args);
    (tmp, dest, out)
}

/// Runs rockpack, killing it (and failing) after `LIMIT`. The test server
/// is on 127.0.0.1 only: no proxy may be in the way.
fn run_bounded(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rockpack"));
    cmd.args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("NO_PROXY", "*")
        .env("no_proxy", "*");
    output_within(&mut cmd, LIMIT)
        .unwrap_or_else(|err| panic!("rockpack {args:?} still running after {LIMIT:?}: {err}"))
}

fn assert_success(out: &Output) {
    assert!(out.status.success(), "rockpack failed: {}", stderr(out));
}

/// Exit 1, with one error line that contains every word of `needles`.
fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("rockpack: error:"))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    eprintln!("{line}");
    for n in needles {
        assert!(line.contains(n), "{n:?} not in {line:?}");
    }
}

/// Same file names, same bytes.
fn assert_same_outputs(want: &Path, got: &Path) {
    let names = files_in(want);
    assert!(!names.is_empty());
    assert_eq!(files_in(got), names);
    for n in &names {
        let (a, b) = (
            fs::read(want.join(n)).unwrap(),
            fs::read(got.join(n)).unwrap(),
        );
        assert!(a == b, "{n} differs from the directory run");
    }
}

fn assert_nothing_published(dest: &Path) {
    let finals: Vec<String> = files_in(dest)
        .into_iter()
        .filter(|f| f.ends_with(".tar.gz") || f.ends_with(".sha256sum"))
        .collect();
    assert!(finals.is_empty(), "left under final names: {finals:?}");
}

/// Sidecar requests never reach the rules added after this one (their
/// paths contain the artifact's name). Add it first.
fn shield_sidecars(faults: &Faults) {
    faults.add(
        Rule::new(Action::Delay(Duration::ZERO))
            .path(".sha256sum")
            .always(),
    );
}

/// Ranges small enough that the larger artifacts are read as several.
const RANGE_SIZE: u64 = 64 << 10;
const SMALL_RANGES: &[&str] = &["--range-size", "64K"];

/// The GETs of `key` the server saw, in order.
fn gets_of(faults: &Faults, key: &str) -> Vec<Seen> {
    let path = format!("/run/{key}");
    faults
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::GET && s.uri == path)
        .collect()
}

/// GETs of the artifact `key` of the run at /run/.
fn artifact_get(key: &str, action: Action) -> Rule {
    Rule::new(action)
        .method(Method::GET)
        .path(&format!("/run/{key}"))
}

/// The `Range` headers of the GETs of `key`, in order.
fn ranges(faults: &Faults, key: &str) -> Vec<Option<String>> {
    gets_of(faults, key).into_iter().map(|s| s.range).collect()
}

/// Where the GETs of `key` after the first resumed (the first has no Range).
fn resumed_at(faults: &Faults, key: &str) -> Vec<u64> {
    let r = ranges(faults, key);
    assert_eq!(r.first(), Some(&None), "{r:?}");
    r[1..]
        .iter()
        .map(|v| {
            let v = v
                .as_deref()
                .unwrap_or_else(|| panic!("a retry from byte 0: {r:?}"));
            let from = v.strip_prefix("bytes=").and_then(|v| v.strip_suffix('-'));
            from.and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{r:?}"))
        })
        .collect()
}

/// One resume per drop, each from further on, by at most the `n` bytes the
/// drop let through (less any the server had not flushed when it broke).
fn assert_resumed(faults: &Faults, key: &str, drops: &[u64]) {
    let at = resumed_at(faults, key);
    assert_eq!(at.len(), drops.len(), "resumed at {at:?}");
    let mut prev = 0;
    for (&a, &n) in at.iter().zip(drops) {
        assert!(
            a > prev && a <= prev + n,
            "resumed at {at:?} for drops after {drops:?}"
        );
        prev = a;
    }
}

/// The file name of the artifact `key`.
fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap()
}

/// A child started at `start` gave up (or got through) within a minute.
fn assert_within_a_minute(start: Instant) {
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

fn serve_shared() -> HttpServer {
    HttpServer::start(&shared().run.root)
}

#[test]
fn undisturbed_run_is_byte_identical() {
    let server = serve_shared();
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    let seen = server.faults.seen();
    // Listed through index.html (sized by HEAD), every artifact read once.
    assert!(seen.iter().any(|s| s.method == Method::HEAD));
    for (key, _) in &shared().planned {
        assert_eq!(ranges(&server.faults, key), vec![None], "{key}");
    }
}

#[test]
fn dropped_connection_is_resumed() {
    let server = serve_shared();
    let (key, size) = big(0);
    let n = size / 2;
    shield_sidecars(&server.faults);
    server.faults.add(artifact_get(key, Action::DropAfter(n)));
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    assert_resumed(&server.faults, key, &[n]);
}

#[test]
fn several_drops_are_resumed() {
    let server = serve_shared();
    let ((a, a_size), (b, b_size)) = (big(0), big(1));
    let (na, nb) = (a_size / 3, b_size / 4);
    shield_sidecars(&server.faults);
    // `a` drops twice: in the first answer and in the resumed one.
    server
        .faults
        .add(artifact_get(a, Action::DropAfter(na)).times(2));
    server.faults.add(artifact_get(b, Action::DropAfter(nb)));
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    assert_resumed(&server.faults, a, &[na, na]);
    assert_resumed(&server.faults, b, &[nb]);
}

#[test]
fn server_errors_are_retried() {
    let server = serve_shared();
    let ((a, _), (b, _)) = (big(0), big(1));
    let f = &server.faults;
    // Sidecar reads and the listing's sizing see errors too.
    f.add(Rule::new(Action::Status(503)).path(".sha256sum").times(2));
    shield_sidecars(f);
    f.add(
        Rule::new(Action::Status(500))
            .method(Method::HEAD)
            .path(&format!("/run/{b}")),
    );
    f.add(artifact_get(a, Action::Status(500)).times(2));
    f.add(artifact_get(b, Action::Status(503)).times(3));
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    assert_eq!(ranges(f, a), vec![None; 3]);
    assert_eq!(ranges(f, b), vec![None; 4]);
}

/// A server that ignores Range answers a resume with the whole object (same
/// ETag): the client skips what it already has.
#[test]
fn resume_without_range_support_skips_forward() {
    let server = serve_shared();
    server.ignore_ranges();
    let (key, size) = big(0);
    shield_sidecars(&server.faults);
    server
        .faults
        .add(artifact_get(key, Action::DropAfter(size / 2)));
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    assert_resumed(&server.faults, key, &[size / 2]);
}

/// With ranges smaller than the artifacts, each larger artifact is read as
/// several ranged GETs at once (the server holds each answer back a while,
/// so overlapping requests show), and the outputs are the same bytes.
#[test]
fn large_artifacts_are_read_as_parallel_ranges() {
    let server = serve_shared();
    let (key, _) = big(0);
    shield_sidecars(&server.faults);
    server
        .faults
        .add(artifact_get(key, Action::Delay(Duration::from_millis(200))).always());
    let (_t, dest, out) = pack_http(&server.url("run/"), SMALL_RANGES);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    for (key, size) in &shared().planned {
        let gets = gets_of(&server.faults, key);
        if *size > RANGE_SIZE {
            assert_read_in_ranges(&gets, *size, RANGE_SIZE);
        } else {
            assert_eq!(ranges(&server.faults, key), vec![None], "{key}");
        }
    }
    let gets = gets_of(&server.faults, key);
    // The first range goes alone (its answer pins the version).
    assert_eq!(gets[0].concurrent, 0, "{gets:#?}");
    let most = gets.iter().map(|g| g.concurrent + 1).max().unwrap();
    assert!(most >= 2, "never two GETs of {key} at once: {gets:#?}");
    assert!(
        most <= 4,
        "more GETs at once than --range-connections: {gets:#?}"
    );
}

/// A range whose connection drops is resumed within the range: from where
/// it stopped, to the same end.
#[test]
fn a_dropped_range_is_resumed_within_it() {
    let server = serve_shared();
    let (key, size) = big(0);
    assert!(size > 4 * RANGE_SIZE, "{key}: {size}");
    let n = RANGE_SIZE / 3;
    shield_sidecars(&server.faults);
    // The third GET (a range after the first) drops.
    server
        .faults
        .add(artifact_get(key, Action::DropAfter(n)).skip(2));
    let (_t, dest, out) = pack_http(&server.url("run/"), SMALL_RANGES);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    let gets = gets_of(&server.faults, key);
    assert_read_in_ranges(&gets, size, RANGE_SIZE);
    assert_one_range_resumed(&gets, n);
}

/// A server that ignores Range answers the first range with the whole
/// object: it is read on as one stream, once.
#[test]
fn server_without_range_support_is_read_in_one_stream() {
    let server = serve_shared();
    server.ignore_ranges();
    let (_t, dest, out) = pack_http(&server.url("run/"), SMALL_RANGES);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    for (key, size) in &shared().planned {
        let want = if *size > RANGE_SIZE {
            Some(format!("bytes=0-{}", RANGE_SIZE - 1))
        } else {
            None
        };
        assert_eq!(ranges(&server.faults, key), vec![want], "{key}");
    }
}

/// The object is replaced after its first range was read: a later range
/// (pinned to the first one's ETag) refuses the new version.
#[test]
fn object_changed_between_ranges_is_an_error() {
    let run = Run::copy();
    let server = HttpServer::start(&run.root);
    let (key, _) = big(0);
    let path = format!("run/{key}");
    let mut changed = fs::read(run.run.join(key)).unwrap();
    changed[0] ^= 0xff;
    server.replace_on_range(&path, 1, changed);
    shield_sidecars(&server.faults);
    let (_t, dest, out) = pack_http(&server.url("run/"), SMALL_RANGES);
    assert_fails_with(&out, &[file_name(key), "changed"]);
    assert_nothing_published(&dest);
}

/// Three artifacts at once with nothing held ahead of the turn, while the
/// first one's download is slow: the next ones keep only their heads and
/// are read twice, the second time once the first is decided.
const TWO_PASSES: &[&str] = &[
    "--artifact-jobs",
    "3",
    "--memory",
    "2G",
    "--artifact-pending",
    "1",
];

fn slow_first_artifact(server: &HttpServer, order: &[String]) {
    server.faults.add(artifact_get(
        &order[0],
        Action::Delay(Duration::from_secs(2)),
    ));
}

/// An artifact read twice (decided from its heads, cut on its second read)
/// gives the bytes of one read once.
#[test]
fn an_artifact_read_twice_gives_the_same_bytes() {
    let server = serve_shared();
    let order = plan_order(&shared().run);
    shield_sidecars(&server.faults);
    slow_first_artifact(&server, &order);
    let summary = tempfile::tempdir().unwrap();
    let summary = summary.path().join("summary.json");
    let mut args = TWO_PASSES.to_vec();
    args.extend_from_slice(&["--summary", s(&summary)]);
    let (_t, dest, out) = pack_http(&server.url("run/"), &args);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    assert_eq!(ranges(&server.faults, &order[0]), vec![None]);
    assert_eq!(ranges(&server.faults, &order[1]), vec![None, None]);
    // Every artifact GET twice is counted as read twice.
    let twice = order
        .iter()
        .filter(|k| ranges(&server.faults, k).len() == 2)
        .count() as u64;
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&summary).unwrap()).unwrap();
    assert_eq!(v["artifacts_read_twice"].as_u64(), Some(twice), "{v}");
}

/// An artifact that changes between its two reads fails the run, naming
/// it and the first member that differs; nothing is published.
#[test]
fn an_artifact_changed_between_its_two_reads_fails() {
    let run = Run::copy();
    let server = HttpServer::start(&run.root);
    let order = plan_order(&shared().run);
    // The same artifact, other contents: from a run generated from another seed.
    let other = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        layout: Layout::Kpack,
        families: vec![FAMILY.to_string()],
        seed: 8,
        large_bytes: 6 << 20,
        sidecars: false,
        windows: false,
    };
    rockpack::fixtures::generate(&spec, other.path()).unwrap();
    let key = &order[1];
    let changed = fs::read(other.path().join(key)).unwrap();
    assert_ne!(changed, fs::read(run.run.join(key)).unwrap());
    server.replace_on_get(&format!("run/{key}"), 1, changed);
    shield_sidecars(&server.faults);
    slow_first_artifact(&server, &order);
    let (_t, dest, out) = pack_http(&server.url("run/"), TWO_PASSES);
    assert_fails_with(&out, &[file_name(key), "changed while it was packed"]);
    assert_nothing_published(&dest);
}

/// An S3-compatible server at `http://host/bucket/prefix/`: listed with
/// ListObjectsV2 path-style over several pages (no HEADs), read with GET.
#[test]
fn s3_compatible_host_is_listed_with_list_objects_v2() {
    let server = S3Server::start_public(&["bucket"]);
    server.upload_dir(&shared().run.run, "bucket", "run");
    // Sorted before the artifacts, so they are only on a later page.
    let pad = (0..1001)
        .map(|i| (format!("run/aa-pad/{i:04}.txt"), vec![b'x']))
        .collect();
    server.put_many("bucket", pad);
    let (key, size) = big(0);
    shield_sidecars(&server.faults);
    server.faults.add(
        Rule::new(Action::DropAfter(size / 2))
            .method(Method::GET)
            .path(&format!("/bucket/run/{key}")),
    );
    let (_t, dest, out) = pack_http(&format!("{}/bucket/run/", server.endpoint), &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
    let seen = server.faults.seen();
    assert!(
        seen.iter().any(|s| s.uri.contains("continuation-token=")),
        "{seen:#?}"
    );
    assert!(!seen.iter().any(|s| s.method == Method::HEAD));
    let gets: Vec<_> = seen
        .iter()
        .filter(|s| s.uri == format!("/bucket/run/{key}"))
        .map(|s| s.range.clone())
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[1].as_deref().is_some_and(|r| r.starts_with("bytes=")));
}

#[test]
fn object_changed_during_resume_is_an_error() {
    let run = Run::copy();
    let server = HttpServer::start(&run.root);
    let (key, size) = big(0);
    let path = format!("run/{key}");
    let mut changed = fs::read(run.run.join(key)).unwrap();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    server.replace_on_range(&path, 0, changed);
    shield_sidecars(&server.faults);
    server
        .faults
        .add(artifact_get(key, Action::DropAfter(size / 2)));
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    let name = file_name(key);
    assert_fails_with(&out, &[name, "changed"]);
    assert_nothing_published(&dest);
    assert_eq!(ranges(&server.faults, key).len(), 2);
}

/// Every GET of the `i`-th largest artifact fails with `action`: with
/// `--retry-for 0` the run gives up after its `--retries`, within a minute,
/// with an error naming the artifact and `needles`, and publishes nothing.
fn retries_run_out(i: usize, action: Action, needles: &[&str]) {
    let server = serve_shared();
    let (key, _) = big(i);
    shield_sidecars(&server.faults);
    server.faults.add(artifact_get(key, action).always());
    let start = Instant::now();
    let (_t, dest, out) = pack_http(&server.url("run/"), &["--retry-for", "0"]);
    assert_within_a_minute(start);
    assert_fails_with(&out, &[&[file_name(key)], needles].concat());
    assert_nothing_published(&dest);
}

#[test]
fn retries_run_out_on_503() {
    retries_run_out(0, Action::Status(503), &["giving up", "503"]);
}

#[test]
fn retries_run_out_on_drops_at_byte_0() {
    retries_run_out(1, Action::DropAfter(0), &["giving up"]);
}

#[test]
fn stalled_body_is_timed_out_and_resumed() {
    let server = serve_shared();
    let (key, size) = big(0);
    let n = size / 2;
    shield_sidecars(&server.faults);
    server.faults.add(artifact_get(
        key,
        Action::StallAfter(n, Duration::from_secs(100)),
    ));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let url = server.url("run/");
    let mut args = vec![
        "pack",
        "--source",
        &url,
        "--dest",
        s(&dest),
        "--stall-timeout",
        "2",
    ];
    args.extend_from_slice(SELECT);
    let start = Instant::now();
    let out = run_bounded(&args);
    assert_success(&out);
    assert_within_a_minute(start);
    assert_same_outputs(shared().expected.path(), &dest);
    assert_resumed(&server.faults, key, &[n]);
}

/// An error stops the run at once, even while the same artifact's download
/// is stalled: the repack thread refuses a member that arrived just before
/// the stall (by then the decode stage is waiting on the stalled body), and
/// the decode stage gives up its wait instead of sitting out the stall
/// timeout (60 s, then retries: over the test's `LIMIT`).
#[test]
fn error_before_a_stalled_download_stops_the_run_at_once() {
    use rockpack::fixtures::{compress, raw_tar, Member};
    use rockpack::plan::Compression;
    use sha2::{Digest, Sha256};

    let run = Run::copy();
    let (key, _) = big(0);
    let name = file_name(key);
    // Data that does not compress, so stored offsets follow tar offsets.
    let noise = |n: usize, seed: u64| {
        let mut v = vec![0u8; n];
        fastrand::Rng::with_seed(seed).fill(&mut v);
        v
    };
    let tar = raw_tar(
        Some(&["bad/stage"]),
        &[
            Member::dir("bad/stage"),
            Member::file("bad/stage/before.bin", noise(1 << 20, 5)),
            Member::symlink("bad/stage/escape", "/etc/passwd"),
            Member::file("bad/stage/after.bin", noise(512 << 10, 6)),
        ],
    );
    let refused = tar
        .windows(16)
        .position(|w| w == b"bad/stage/escape")
        .unwrap() as u64;
    let stored = compress(&tar, Compression::Zst);
    fs::write(run.run.join(key), &stored).unwrap();
    let digest = hex::encode(Sha256::digest(&stored));
    fs::write(
        run.run.join(format!("{key}.sha256sum")),
        format!("{digest}  {name}\n"),
    )
    .unwrap();
    let server = HttpServer::start(&run.root);
    shield_sidecars(&server.faults);
    // Past the end of the zstd block (128 KiB) that holds the refused
    // member, inside the next one.
    let at = refused + (192 << 10);
    assert!(at < stored.len() as u64);
    server
        .faults
        .add(artifact_get(key, Action::StallAfter(at, Duration::from_secs(300))).always());
    let start = Instant::now();
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_fails_with(&out, &[name, "escape", "absolute"]);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the run sat out the stall: {:?}",
        start.elapsed()
    );
    assert_nothing_published(&dest);
}

/// Replaces artifact `key` of `run` with `stored`, and its sidecar.
fn replace_artifact(run: &Run, key: &str, stored: &[u8]) {
    use sha2::{Digest, Sha256};
    fs::write(run.run.join(key), stored).unwrap();
    fs::write(
        run.run.join(format!("{key}.sha256sum")),
        format!(
            "{}  {}\n",
            hex::encode(Sha256::digest(stored)),
            file_name(key)
        ),
    )
    .unwrap();
}

/// The planned artifacts' keys, in plan order.
fn plan_order(run: &Run) -> Vec<String> {
    let mut args = vec!["--source", s(&run.run)];
    args.extend_from_slice(SELECT);
    plan_json(&args)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_string())
        .collect()
}

/// Several artifacts at once report the error one at a time would: the
/// first in plan order. The first artifact is slow and fails only at its
/// end; the second fails at once, long before (on another thread).
#[test]
fn first_error_in_plan_order_whatever_fails_first() {
    let run = Run::copy();
    let order = plan_order(&run);
    let (first, second) = (order[0].as_str(), order[1].as_str());
    // A block after the end-of-archive marker: refused once all is read.
    use std::io::Read;
    let compression = rockpack::plan::ArtifactName::parse(file_name(first))
        .unwrap()
        .unwrap()
        .compression;
    let stored = fs::read(run.run.join(first)).unwrap();
    let mut tar = Vec::new();
    rockpack::repack::decode::decoder(compression, &stored[..], u64::MAX)
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    tar.extend_from_slice(&[b'x'; 512]);
    replace_artifact(
        &run,
        first,
        &rockpack::fixtures::compress(&tar, compression),
    );
    // Cut short: its decoder fails as soon as it is read.
    let stored = fs::read(run.run.join(second)).unwrap();
    replace_artifact(&run, second, &stored[..stored.len() / 2]);
    let server = HttpServer::start(&run.root);
    shield_sidecars(&server.faults);
    server
        .faults
        .add(artifact_get(first, Action::Delay(Duration::from_secs(2))).always());
    for jobs in ["1", "2", "3"] {
        let (_t, dest, out) = pack_http(
            &server.url("run/"),
            &["--artifact-jobs", jobs, "--memory", "2G"],
        );
        assert_fails_with(
            &out,
            &[file_name(first), "data after the end-of-archive marker"],
        );
        assert_nothing_published(&dest);
    }
}

/// A failing artifact stops the ones after it at once, though one of them
/// is read at the same time and its download stalls.
#[test]
fn a_failure_stops_the_artifacts_after_it_at_once() {
    let run = Run::copy();
    let order = plan_order(&run);
    let (first, second) = (order[0].as_str(), order[1].as_str());
    let stored = fs::read(run.run.join(first)).unwrap();
    replace_artifact(&run, first, &stored[..stored.len() / 2]);
    let server = HttpServer::start(&run.root);
    shield_sidecars(&server.faults);
    server
        .faults
        .add(artifact_get(second, Action::StallAfter(0, Duration::from_secs(300))).always());
    for jobs in ["1", "2", "3"] {
        let start = Instant::now();
        let (_t, dest, out) = pack_http(
            &server.url("run/"),
            &["--artifact-jobs", jobs, "--memory", "2G"],
        );
        assert_fails_with(&out, &[file_name(first)]);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "--artifact-jobs {jobs}: the run waited for the stalled artifact: {:?}",
            start.elapsed()
        );
        assert_nothing_published(&dest);
    }
}

#[test]
fn sidecar_mismatch_fails_and_publishes_nothing() {
    let run = Run::copy();
    let (key, _) = big(2);
    let sidecar = run.run.join(format!("{key}.sha256sum"));
    let name = file_name(key);
    fs::write(&sidecar, format!("{}  {name}\n", "0".repeat(64))).unwrap();
    let server = HttpServer::start(&run.root);
    let (_t, dest, out) = pack_http(&server.url("run/"), &[]);
    assert_fails_with(&out, &[name, "sha256 mismatch"]);
    assert_nothing_published(&dest);
}

/// `run/linux/` has a hand-written index.html with absolute links (and links
/// to skip), test artifacts live one level deeper in `run/linux/tests/`, and
/// the run manifest in `run/manifests/`: all found by following index pages.
#[test]
fn nested_index_listing() {
    let shared_run = &shared().run;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    let (linux, tests) = (root.join("run/linux"), root.join("run/linux/tests"));
    fs::create_dir_all(&tests).unwrap();
    copy_dir(
        &shared_run.run.join("manifests"),
        &root.join("run/manifests"),
    );
    let mut links = vec![
        "<a href=\"../\">Parent Directory</a>".to_string(),
        "<a href=\"?C=M;O=A\">Last modified</a>".to_string(),
        "<a href=\"https://example.invalid/run/linux/x_lib_generic.tar.zst\">elsewhere</a>"
            .to_string(),
        "<a href=\"/run/linux/tests/\">tests/</a>".to_string(),
    ];
    for e in fs::read_dir(&shared_run.run).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            continue;
        }
        if name.contains("_test_") {
            fs::copy(e.path(), tests.join(&name)).unwrap();
        } else {
            fs::copy(e.path(), linux.join(&name)).unwrap();
            links.push(format!(
                "<a href=\"/run/linux/{}\">{name}</a>",
                name.replace(':', "%3A")
            ));
        }
    }
    assert!(fs::read_dir(&tests).unwrap().count() > 0);
    let page = format!(
        "<html><body><pre>\n{}\n</pre></body></html>\n",
        links.join("\n")
    );
    fs::write(linux.join("index.html"), page).unwrap();

    let server = HttpServer::start(&root);
    let url = server.url("run/");
    let mut args = vec!["plan", "--source", url.as_str()];
    args.extend_from_slice(SELECT);
    let out = run_bounded(&args);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(kpack-split)"), "{text}");
    for (key, _) in &shared().planned {
        let name = file_name(key);
        assert!(text.contains(name), "{name} not in the plan:\n{text}");
    }
    let (_t, dest, out) = pack_http(&url, &[]);
    assert_success(&out);
    assert_same_outputs(shared().expected.path(), &dest);
}

#[test]
fn unreachable_or_missing_source_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/run/");
    let start = Instant::now();
    let out = run_bounded(&[
        "plan",
        "--source",
        &url,
        "--families",
        FAMILY,
        "--retry-for",
        "0",
    ]);
    assert_within_a_minute(start);
    assert_fails_with(&out, &["listing", &format!("http://127.0.0.1:{port}/")]);

    let server = serve_shared();
    let url = server.url("nope/");
    let out = run_bounded(&["plan", "--source", &url, "--families", FAMILY]);
    assert_fails_with(&out, &["listing", &url, "404"]);
}

/// The test server itself: ranges, validators, HEAD, index pages, no S3.
#[test]
fn test_server_serves_ranges_and_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("d/sub")).unwrap();
    let content: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    fs::write(tmp.path().join("d/f:x+.bin"), &content).unwrap();
    let server = HttpServer::start(tmp.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let file = server.url("d/f%3Ax%2B.bin");
    rt.block_on(async {
        let get = |range: Option<&str>, if_range: Option<&str>| {
            let mut r = client.get(&file);
            if let Some(v) = range {
                r = r.header("range", v);
            }
            if let Some(v) = if_range {
                r = r.header("if-range", v);
            }
            r.send()
        };
        let full = get(None, None).await.unwrap();
        assert_eq!(full.status(), 200);
        let etag = full.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"'), "{etag}");
        assert!(full.headers().contains_key("last-modified"));
        assert_eq!(full.bytes().await.unwrap(), content);

        let part = get(Some("bytes=100-"), Some(&etag)).await.unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.headers()["content-range"], "bytes 100-999/1000");
        assert_eq!(part.bytes().await.unwrap(), content[100..]);
        let part = get(Some("bytes=10-19"), None).await.unwrap();
        assert_eq!(part.bytes().await.unwrap(), content[10..20]);
        let stale = get(Some("bytes=100-"), Some("\"other\"")).await.unwrap();
        assert_eq!(stale.status(), 200);
        assert_eq!(get(Some("bytes=1000-"), None).await.unwrap().status(), 416);

        let head = client.head(&file).send().await.unwrap();
        assert_eq!(head.headers()["content-length"], "1000");

        server.replace("d/f:x+.bin", b"new");
        let after = get(Some("bytes=1-"), Some(&etag)).await.unwrap();
        assert_eq!(after.status(), 200);
        assert_ne!(after.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(after.bytes().await.unwrap(), &b"new"[..]);

        let index = client.get(server.url("d/")).send().await.unwrap();
        let html = index.text().await.unwrap();
        assert!(html.contains("href=\"f%3Ax%2B.bin\""), "{html}");
        assert!(html.contains("href=\"sub/\""), "{html}");
        let redirected = client.get(server.url("d")).send().await.unwrap();
        assert_eq!(redirected.url().path(), "/d/");
        let s3 = client
            .get(server.url("?list-type=2&prefix=d/"))
            .send()
            .await
            .unwrap();
        assert!(!s3.text().await.unwrap().contains("ListBucketResult"));
        let missing = client.get(server.url("d/none")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
    });
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}
