//! The S3 source end to end: the rockpack binary reads a run from an
//! in-process S3 server (s3s-fs behind the fault layer) and must build
//! exactly the tarballs it builds from the same local directory, across
//! paginated listings, dropped bodies, 5xx answers and anonymous access; an
//! object that changes mid-read, or retries that run out, fail cleanly.

mod common;
// The servers are a part of tests/common compiled only where needed.
#[path = "common/servers/mod.rs"]
mod servers;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use hyper::Method;
use rockpack::fixtures::{self, FixtureSpec, GeneratedArtifact, Layout};
use servers::faults::{assert_one_range_resumed, assert_read_in_ranges, Action, Rule};
use servers::s3_server::S3Server;

const BUCKET: &str = "bucket";
const PREFIX: &str = "123-linux";
const FAMILIES: &str = "gfx94X-dcgpu;gfx110X-all";
/// Every child gets this long; nothing here should come close.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// A kpack-split run of two families, with some larger artifacts; returns
/// the archives generated, largest first.
fn generate_run(dir: &Path) -> Vec<GeneratedArtifact> {
    let spec = FixtureSpec {
        layout: Layout::Kpack,
        families: FAMILIES.split(';').map(String::from).collect(),
        seed: 7,
        large_bytes: 6 << 20,
        sidecars: true,
        windows: false,
    };
    let mut made = fixtures::generate(&spec, dir).expect("generate fixtures");
    made.sort_by(|a, b| b.size.cmp(&a.size).then(a.file_name.cmp(&b.file_name)));
    made
}

/// The largest `.tar.zst` artifact, with its sidecar removed: fault rules
/// match by substring, and the sidecar's key contains the artifact's.
fn faulted_artifact(dir: &Path, made: &[GeneratedArtifact]) -> GeneratedArtifact {
    let a = made
        .iter()
        .find(|a| a.file_name.ends_with(".tar.zst"))
        .expect("a .tar.zst artifact")
        .clone();
    let _ = std::fs::remove_file(dir.join(format!("{}.sha256sum", a.file_name)));
    a
}

/// rockpack with only the server's environment (nothing inherited that
/// could point elsewhere), killed after `timeout`.
fn run_env(env: &[(&'static str, String)], args: &[String], timeout: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rockpack"));
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("ROCKPACK_LOG", "rockpack=info");
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    output_within(&mut cmd, timeout).unwrap_or_else(|err| {
        panic!("rockpack did not finish within {timeout:?}; stderr so far:\n{err}")
    })
}

/// `args` plus `--endpoint-url` of `server`.
fn with_endpoint(server: &S3Server, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push("--endpoint-url".into());
    v.push(server.endpoint.clone());
    v
}

fn run(server: &S3Server, args: &[&str]) -> Output {
    run_env(&server.env(), &with_endpoint(server, args), CHILD_TIMEOUT)
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status,
        stderr(out)
    );
}

/// The selection every packing test uses.
fn select() -> Vec<&'static str> {
    vec!["--families", FAMILIES, "--tests", "--format", "gz"]
}

/// What packing the local directory gives.
fn pack_local(src: &Path) -> Vec<(String, Vec<u8>)> {
    let dest = tempfile::tempdir().unwrap();
    let mut args = vec!["pack", "--source", s(src), "--dest", s(dest.path())];
    args.extend(select());
    rockpack_ok(&args);
    let out = dir_contents(dest.path());
    assert_eq!(
        out.len(),
        12,
        "{:?}",
        out.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    out
}

/// Packs `source` (an s3:// URL or other source arguments) from `server`;
/// returns the run and the destination.
fn pack_s3(server: &S3Server, source: &[&str]) -> (Output, tempfile::TempDir) {
    let dest = tempfile::tempdir().unwrap();
    let mut args = vec!["pack"];
    args.extend_from_slice(source);
    args.extend(["--dest", s(dest.path())]);
    args.extend(select());
    let out = run(server, &args);
    (out, dest)
}

fn assert_same(local: &[(String, Vec<u8>)], dest: &Path) {
    let got = dir_contents(dest);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(local));
    for ((name, a), (_, b)) in got.iter().zip(local) {
        assert!(
            a == b,
            "{name} differs from the one packed from the directory"
        );
    }
}

/// A server holding a generated run at s3://bucket/123-linux/.
struct Setup {
    server: S3Server,
    src: tempfile::TempDir,
    made: Vec<GeneratedArtifact>,
}

fn setup() -> Setup {
    let src = tempfile::tempdir().unwrap();
    let made = generate_run(src.path());
    let server = S3Server::start(&[BUCKET]);
    Setup { server, src, made }
}

fn upload(setup: &Setup) {
    setup.server.upload_dir(setup.src.path(), BUCKET, PREFIX);
}

fn source_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// GETs of `name` (not of its sidecar) the server saw.
fn artifact_gets(server: &S3Server, name: &str) -> Vec<servers::faults::Seen> {
    let needle = format!("/{name}");
    server
        .faults
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::GET && uri_path(&r.uri).ends_with(&needle))
        .collect()
}

fn uri_path(uri: &str) -> &str {
    uri.split('?').next().unwrap_or(uri)
}

fn is_archive_key(path: &str) -> bool {
    path.ends_with(".tar.zst") || path.ends_with(".tar.xz")
}

#[test]
fn s3_source_packs_what_the_directory_packs() {
    let t = setup();
    upload(&t);
    let local = pack_local(t.src.path());
    let url = source_url();
    let (out, dest) = pack_s3(&t.server, &["--source", &url]);
    assert_ok(&out, "pack from S3");
    assert_same(&local, dest.path());

    // A trailing slash names the same prefix.
    let url = format!("{}/", source_url());
    let (out, dest) = pack_s3(&t.server, &["--source", &url]);
    assert_ok(&out, "pack from S3 with a trailing slash");
    assert_same(&local, dest.path());
}

#[test]
fn run_manifest_is_read_before_any_artifact() {
    let t = setup();
    upload(&t);
    let url = source_url();
    let (out, _dest) = pack_s3(&t.server, &["--source", &url, "--multiarch", "auto"]);
    assert_ok(&out, "pack from S3");
    let seen = t.server.faults.seen();
    let gets: Vec<&str> = seen
        .iter()
        .filter(|r| r.method == Method::GET)
        .map(|r| uri_path(&r.uri))
        .collect();
    let manifest = gets
        .iter()
        .position(|p| p.ends_with(&format!("/{PREFIX}/manifests/therock_manifest.json")))
        .unwrap_or_else(|| panic!("no manifest GET in {gets:?}"));
    let first_artifact = gets
        .iter()
        .position(|p| is_archive_key(p))
        .unwrap_or_else(|| panic!("no artifact GET in {gets:?}"));
    assert!(
        manifest < first_artifact,
        "the manifest was read after an artifact: {gets:?}"
    );
    // And the listing came first of all.
    let first_list = seen
        .iter()
        .position(|r| r.method == Method::GET && r.uri.contains("list-type=2"))
        .expect("a ListObjectsV2 request");
    let first_get = seen
        .iter()
        .position(|r| r.method == Method::GET && !r.uri.contains("list-type=2"))
        .unwrap();
    assert!(first_list < first_get);
}

#[test]
fn listing_longer_than_one_page() {
    let t = setup();
    // A few artifacts in nested "directories", in the local run too.
    let donor = t
        .made
        .iter()
        .find(|a| a.file_name.ends_with(".tar.zst"))
        .unwrap();
    let nested = [
        "nested/deeper/zzextra_lib_generic.tar.zst",
        "logs/zz/zzlogged_dev_generic.tar.zst",
        "aaa/first_run_generic.tar.zst",
    ];
    for key in nested {
        let path = t.src.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&donor.path, &path).unwrap();
    }
    let sidecar = t.src.path().join(format!("{}.sha256sum", nested[0]));
    std::fs::write(
        &sidecar,
        format!("{}  zzextra_lib_generic.tar.zst\n", "0".repeat(64)),
    )
    .unwrap();
    upload(&t);
    // Many objects that are not artifacts, in the middle of the key space
    // (between "base_…" and "rocblas_…"), so artifacts land on several pages.
    let logs: Vec<(String, Vec<u8>)> = (0..1100)
        .map(|i| {
            (
                format!("{PREFIX}/logs/job-{:02}/step-{i:04}.log", i % 7),
                format!("log {i}\n").into_bytes(),
            )
        })
        .collect();
    t.server.put_many(BUCKET, logs);
    // And objects beside the prefix that must not be listed.
    t.server.put(
        BUCKET,
        "123-linux-other/zzz_lib_generic.tar.zst",
        b"x".to_vec(),
    );
    t.server
        .put(BUCKET, "123-linu/yyy_lib_generic.tar.zst", b"x".to_vec());

    let plan = |source: &str, env_server: Option<&S3Server>| -> serde_json::Value {
        let mut args = vec!["plan", "--json", "--source", source];
        args.extend(select());
        let out = match env_server {
            Some(server) => run(server, &args),
            None => rockpack(&args),
        };
        assert_ok(&out, "plan");
        serde_json::from_slice(&out.stdout).expect("plan JSON")
    };
    // The second page fails twice before it is served.
    t.server.faults.add(
        Rule::new(Action::Status(500))
            .method(Method::GET)
            .query("continuation-token")
            .times(2),
    );
    let t0 = t.server.faults.seen().len();
    let from_s3 = plan(&source_url(), Some(&t.server));
    let from_dir = plan(s(t.src.path()), None);
    assert_eq!(from_s3, from_dir, "S3 and directory plans differ");
    let keys: Vec<&str> = from_s3["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    for key in nested {
        assert!(keys.contains(&key), "{key} is not in the plan: {keys:?}");
    }
    let with_sidecar = from_s3["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == nested[0])
        .unwrap();
    assert_eq!(
        with_sidecar["sha256_key"],
        format!("{}.sha256sum", nested[0])
    );
    assert!(keys.len() > 20, "{keys:?}");
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("zzz_") || k.contains("yyy_")),
        "{keys:?}"
    );

    // Pagination happened.
    let lists: Vec<String> = t.server.faults.seen()[t0..]
        .iter()
        .filter(|r| r.uri.contains("list-type=2"))
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(t.server.faults.fired(), 2, "the page faults did not fire");
    assert!(lists.len() >= 4, "{lists:?}");
    assert!(
        lists.iter().any(|u| u.contains("continuation-token")),
        "{lists:?}"
    );
}

/// Packs with one fault rule set on the largest artifact and checks the
/// output against the directory's.
fn pack_with_faults(
    extra: &[&str],
    rules: impl FnOnce(&S3Server, &GeneratedArtifact),
) -> (Setup, GeneratedArtifact) {
    let t = setup();
    let big = faulted_artifact(t.src.path(), &t.made);
    upload(&t);
    let local = pack_local(t.src.path());
    rules(&t.server, &big);
    let url = source_url();
    let mut source = vec!["--source", url.as_str()];
    source.extend_from_slice(extra);
    let (out, dest) = pack_s3(&t.server, &source);
    assert_ok(&out, "pack from S3 with faults");
    assert_same(&local, dest.path());
    (t, big)
}

#[test]
fn dropped_body_resumes_with_range() {
    let (t, big) = pack_with_faults(&[], |server, big| {
        assert!(
            big.size > 100_000,
            "{} is only {} bytes",
            big.file_name,
            big.size
        );
        server.faults.add(
            Rule::new(Action::DropAfter(big.size / 3))
                .method(Method::GET)
                .path(&big.file_name),
        );
    });
    let gets = artifact_gets(&t.server, &big.file_name);
    assert_eq!(t.server.faults.fired(), 1);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    let from = range_start(&gets[1]);
    assert!(from > 0 && from <= big.size / 3, "{gets:?}");
}

/// A large artifact is read as several ranged GETs at once (each pinned to
/// the first one's ETag); a range whose body drops resumes within it.
#[test]
fn large_artifact_is_read_in_parallel_ranges() {
    const RANGE: u64 = 64 << 10;
    let n = RANGE / 3;
    let (t, big) = pack_with_faults(&["--range-size", "64K"], |server, big| {
        assert!(big.size > 4 * RANGE, "{}: {}", big.file_name, big.size);
        let get = |action| Rule::new(action).method(Method::GET).path(&big.file_name);
        // The third GET drops; every answer is held back a while, so GETs
        // in flight together show.
        server.faults.add(get(Action::DropAfter(n)).skip(2));
        server
            .faults
            .add(get(Action::Delay(Duration::from_millis(200))).always());
    });
    let gets = artifact_gets(&t.server, &big.file_name);
    assert_read_in_ranges(&gets, big.size, RANGE);
    assert_one_range_resumed(&gets, n);
    assert!(gets.iter().any(|g| g.concurrent > 0), "{gets:#?}");
}

/// N of a `Range: bytes=N-` request.
fn range_start(seen: &servers::faults::Seen) -> u64 {
    let r = seen
        .range
        .as_deref()
        .unwrap_or_else(|| panic!("no Range in {seen:?}"));
    r.strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected Range {r:?}"))
}

#[test]
fn body_dropped_several_times_resumes_each_time() {
    let (t, big) = pack_with_faults(&[], |server, big| {
        // Each try gets a fifth of the object before the connection breaks.
        server.faults.add(
            Rule::new(Action::DropAfter(big.size / 5))
                .method(Method::GET)
                .path(&big.file_name)
                .times(4),
        );
    });
    let gets = artifact_gets(&t.server, &big.file_name);
    assert_eq!(gets.len(), 5, "{gets:?}");
    assert_eq!(gets[0].range, None);
    // Each resume starts where the previous try stopped: further on each time.
    let starts: Vec<u64> = gets[1..].iter().map(range_start).collect();
    let step = big.size / 5;
    for (i, w) in starts.windows(2).enumerate() {
        assert!(w[0] < w[1] && w[1] - w[0] <= step, "try {i}: {starts:?}");
    }
    assert!(starts[0] > 0 && starts[0] <= step, "{starts:?}");
}

#[test]
fn stalled_body_is_dropped_and_resumed() {
    let started = Instant::now();
    let (t, big) = pack_with_faults(&[], |server, big| {
        server.faults.add(
            Rule::new(Action::StallAfter(big.size / 2, Duration::from_secs(600)))
                .method(Method::GET)
                .path(&big.file_name),
        );
    });
    let gets = artifact_gets(&t.server, &big.file_name);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(range_start(&gets[1]) > 0);
    // Long before the server would give up on the stalled connection.
    assert!(started.elapsed() < Duration::from_secs(100));
}

#[test]
fn server_errors_are_retried() {
    let (t, big) = pack_with_faults(&[], |server, big| {
        for code in [500, 503, 500, 503] {
            server.faults.add(
                Rule::new(Action::Status(code))
                    .method(Method::GET)
                    .path(&big.file_name),
            );
        }
    });
    assert_eq!(t.server.faults.fired(), 4);
    assert_eq!(artifact_gets(&t.server, &big.file_name).len(), 5);
}

#[test]
fn object_changed_before_the_resume_fails() {
    let t = setup();
    let big = faulted_artifact(t.src.path(), &t.made);
    upload(&t);
    let key = format!("{PREFIX}/{}", big.file_name);
    // First GET: dropped a third of the way. The resume waits, and the
    // object is replaced meanwhile.
    t.server.faults.add(
        Rule::new(Action::DropAfter(big.size / 3))
            .method(Method::GET)
            .path(&big.file_name),
    );
    t.server.faults.add(
        Rule::new(Action::Delay(Duration::from_secs(3)))
            .method(Method::GET)
            .path(&big.file_name),
    );
    let dest = tempfile::tempdir().unwrap();
    let mut args = vec![
        "pack".to_string(),
        "--source".into(),
        source_url(),
        "--dest".into(),
        s(dest.path()).into(),
    ];
    args.extend(select().iter().map(|s| s.to_string()));
    let args = with_endpoint(
        &t.server,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let env = t.server.env();
    let child = std::thread::spawn(move || run_env(&env, &args, CHILD_TIMEOUT));

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The resume is being held back: replace the object now.
        let faulted = artifact_gets(&t.server, &big.file_name)
            .iter()
            .filter(|g| g.faulted)
            .count();
        if faulted >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the resume never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut changed = std::fs::read(&big.path).unwrap();
    for b in changed.iter_mut() {
        *b ^= 0x5a;
    }
    t.server.put(BUCKET, &key, changed);

    let out = child.join().unwrap();
    let err = stderr(&out);
    eprintln!("--- rockpack stderr:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&big.file_name), "{err}");
    assert!(err.contains("changed"), "{err}");
    assert_eq!(files_in(dest.path()), Vec::<String>::new(), "{err}");
    let gets = artifact_gets(&t.server, &big.file_name);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[1].range.is_some());
}

#[test]
fn retries_run_out() {
    let t = setup();
    let big = faulted_artifact(t.src.path(), &t.made);
    upload(&t);
    t.server.faults.add(
        Rule::new(Action::Status(503))
            .method(Method::GET)
            .path(&big.file_name)
            .always(),
    );
    let dest = tempfile::tempdir().unwrap();
    let mut args = vec![
        "pack",
        "--source",
        "s3://bucket/123-linux",
        "--dest",
        s(dest.path()),
        "--retry-for",
        "0",
    ];
    args.extend(select());
    let started = Instant::now();
    let out = run_env(
        &t.server.env(),
        &with_endpoint(&t.server, &args),
        Duration::from_secs(90),
    );
    let err = stderr(&out);
    eprintln!("--- rockpack stderr:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&big.file_name), "{err}");
    assert!(err.contains("giving up"), "{err}");
    assert!(err.contains("SlowDown"), "{err}");
    assert_eq!(
        err.trim_end()
            .lines()
            .filter(|l| l.starts_with("rockpack: error:"))
            .count(),
        1,
        "{err}"
    );
    assert_eq!(files_in(dest.path()), Vec::<String>::new());
    assert!(started.elapsed() < Duration::from_secs(90));
    // Bounded: a handful of tries, not an endless loop.
    let tries = artifact_gets(&t.server, &big.file_name).len();
    assert!((2..=30).contains(&tries), "{tries} GETs");
}

#[test]
fn missing_bucket_and_empty_prefix_are_clear_errors() {
    let t = setup();
    upload(&t);
    let out = run(
        &t.server,
        &[
            "plan",
            "--source",
            "s3://no-such-bucket/123-linux",
            "--families",
            FAMILIES,
        ],
    );
    let err = stderr(&out);
    eprintln!("--- rockpack stderr:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("s3://no-such-bucket/123-linux/"), "{err}");
    assert!(err.contains("NoSuchBucket"), "{err}");

    // A prefix with nothing below it (a mistyped run) says so.
    let out = run(
        &t.server,
        &[
            "plan",
            "--source",
            "s3://bucket/124-linux",
            "--families",
            FAMILIES,
        ],
    );
    let err = stderr(&out);
    eprintln!("--- rockpack stderr:\n{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("nothing is stored under s3://bucket/124-linux/"),
        "{err}"
    );
}

#[test]
fn anonymous_access() {
    let src = tempfile::tempdir().unwrap();
    generate_run(src.path());
    let local = pack_local(src.path());
    let url = source_url();
    let pack_args = |dest: &Path| -> Vec<String> {
        let mut v: Vec<String> = ["pack", "--source", url.as_str(), "--dest", s(dest)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(select().iter().map(|s| s.to_string()));
        v
    };

    let public = S3Server::start_public(&[BUCKET]);
    public.upload_dir(src.path(), BUCKET, PREFIX);
    let private = S3Server::start(&[BUCKET]);
    private.upload_dir(src.path(), BUCKET, PREFIX);

    // --no-sign-request with credentials present: unsigned, so a public
    // bucket serves it...
    let dest = tempfile::tempdir().unwrap();
    let mut args = pack_args(dest.path());
    args.push("--no-sign-request".into());
    let out = run_env(&public.env(), &endpoint_args(&public, &args), CHILD_TIMEOUT);
    assert_ok(&out, "--no-sign-request against a public bucket");
    assert_same(&local, dest.path());
    // ...and a private one refuses it.
    let dest = tempfile::tempdir().unwrap();
    let mut args = pack_args(dest.path());
    args.push("--no-sign-request".into());
    let out = run_env(
        &private.env(),
        &endpoint_args(&private, &args),
        CHILD_TIMEOUT,
    );
    let err = stderr(&out);
    eprintln!("--- rockpack stderr:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("AccessDenied") && err.contains("s3://bucket/123-linux/"),
        "{err}"
    );
    assert_eq!(files_in(dest.path()), Vec::<String>::new());

    // No credentials anywhere: falls back to anonymous.
    let dest = tempfile::tempdir().unwrap();
    let args = pack_args(dest.path());
    let out = run_env(
        &public.env_without_credentials(),
        &endpoint_args(&public, &args),
        CHILD_TIMEOUT,
    );
    assert_ok(&out, "anonymous fallback against a public bucket");
    assert_same(&local, dest.path());
    let dest = tempfile::tempdir().unwrap();
    let args = pack_args(dest.path());
    let out = run_env(
        &private.env_without_credentials(),
        &endpoint_args(&private, &args),
        CHILD_TIMEOUT,
    );
    let err = stderr(&out);
    eprintln!("--- rockpack stderr:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("AccessDenied"), "{err}");
}

fn endpoint_args(server: &S3Server, args: &[String]) -> Vec<String> {
    with_endpoint(server, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn run_id_of_an_external_repository() {
    let src = tempfile::tempdir().unwrap();
    generate_run(src.path());
    let local = pack_local(src.path());
    let server = S3Server::start(&["therock-ci-artifacts-external"]);
    server.upload_dir(
        src.path(),
        "therock-ci-artifacts-external",
        "me-TheRock/123-linux",
    );
    let (out, dest) = pack_s3(
        &server,
        &[
            "--run-id",
            "123",
            "--run-github-repo",
            "me/TheRock",
            "--platform",
            "linux",
        ],
    );
    assert_ok(&out, "pack --run-id");
    assert_same(&local, dest.path());
    let seen = server.faults.seen();
    assert!(
        seen.iter()
            .any(|r| r.uri.starts_with("/therock-ci-artifacts-external")
                && r.uri.contains("prefix=me-TheRock%2F123-linux%2F")),
        "{:?}",
        seen.iter().map(|r| &r.uri).collect::<Vec<_>>()
    );
}

/// `--upload` writes to the `tarballs/` folder of the run doing the packing,
/// as TheRock's `upload_tarballs.py --run-id ${{ github.run_id }}` does:
/// without `$GITHUB_RUN_ID` that is the `--run-id` run itself; with it, that
/// run in `$GITHUB_REPOSITORY`'s bucket (here another repository's, so the
/// shared external bucket under `{owner}-{repo}/`). `tarball_urls` names the
/// multiarch tarball where it landed.
#[test]
fn upload_goes_to_the_packing_runs_tarballs_folder() {
    let src = tempfile::tempdir().unwrap();
    generate_run(src.path());
    let local = pack_local(src.path());
    let server = S3Server::start(&["therock-ci-artifacts", "therock-ci-artifacts-external"]);
    server.upload_dir(src.path(), "therock-ci-artifacts", "123-linux");
    let outputs = tempfile::tempdir().unwrap();
    /// Environment, then the bucket and prefix the tarballs must land in.
    type Case<'a> = (&'a [(&'static str, &'a str)], &'a str, &'a str);
    let cases: [Case; 3] = [
        (&[], "therock-ci-artifacts", "123-linux/tarballs"),
        (
            &[("GITHUB_RUN_ID", "456")],
            "therock-ci-artifacts",
            "456-linux/tarballs",
        ),
        (
            &[
                ("GITHUB_RUN_ID", "789"),
                ("GITHUB_REPOSITORY", "me/TheRock"),
            ],
            "therock-ci-artifacts-external",
            "me-TheRock/789-linux/tarballs",
        ),
    ];
    for (i, (vars, bucket, prefix)) in cases.into_iter().enumerate() {
        let gh_output = outputs.path().join(format!("github_output_{i}"));
        let mut env = server.env();
        env.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
        env.push(("GITHUB_OUTPUT", s(&gh_output).to_string()));
        let mut args = vec![
            "pack",
            "--run-id",
            "123",
            "--run-github-repo",
            "ROCm/TheRock",
            "--platform",
            "linux",
            "--upload",
        ];
        args.extend(select());
        let out = run_env(&env, &with_endpoint(&server, &args), CHILD_TIMEOUT);
        assert_ok(&out, &format!("pack --upload with {vars:?}"));

        // The generated run already has a tarballs/ folder of its own
        // (an index and an older tarball), which stays as it is.
        let keys = server.keys(bucket);
        for (name, data) in &local {
            let key = format!("{prefix}/{name}");
            assert!(keys.contains(&key), "{key} missing: {keys:?}");
            assert!(server.get(bucket, &key) == *data, "{key} differs");
        }

        let urls = tarball_urls(&gh_output);
        assert_eq!(
            urls["multiarch"].as_str().unwrap(),
            format!(
                "{}/{bucket}/{prefix}/therock-dist-linux-multiarch-0.0.0.tar.gz",
                server.endpoint.trim_end_matches('/')
            ),
            "{urls}"
        );
    }

    // With neither --run-id nor $GITHUB_RUN_ID there is no run to upload to.
    let args = [
        "pack",
        "--source",
        s(src.path()),
        "--upload",
        "--families",
        FAMILIES,
    ];
    let out = run(&server, &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--upload-run-id"), "{}", stderr(&out));
}
