//! `rockpack promote` and `rockpack abort-uploads`, end to end against the
//! same servers as tests/s3_sink.rs (s3s-fs behind the checking front, or
//! moto with `ROCKPACK_TEST_S3_ENDPOINT`): a run's tarballs packed to
//! `run/tarballs/` are promoted to `release/tarball/` inside S3, renamed,
//! sidecars rewritten, the large ones in part copies; a conflict, a failing
//! copy and SIGTERM leave the destination as it was.

mod common;
#[path = "common/servers/mod.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use hyper::Method;
use rockpack::fixtures::{FixtureSpec, Layout};
use servers::backend::Backend;
use servers::faults::{Action, Rule};
use sha2::{Digest, Sha256};

const RUN: &str = "run/tarballs";
const RELEASE: &str = "release/tarball";
/// Lowered from 5 GiB so that the larger tarballs are copied in parts.
const SMALL_COPIES: &[&str] = &["--copy-object-limit", "18M", "--copy-part-size", "5M"];

/// Two families: six tarballs of 12 to 26 MiB at level 0.
fn run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        common::cached_run(
            "s3_store",
            "promote-kpack",
            FixtureSpec {
                layout: Layout::Kpack,
                families: vec!["gfx94X-dcgpu".into(), "gfx110X-all".into()],
                seed: 17,
                large_bytes: 24 << 20,
                sidecars: true,
                windows: false,
            },
        )
    })
}

fn output(c: &mut Command) -> (Output, String) {
    let o = c.output().expect("run rockpack");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, stderr)
}

/// Packs the run into `s3://bucket/run/tarballs/` as release candidate
/// 7.13.0rc1; returns the tarball names.
fn pack_candidate(b: &Backend) -> Vec<String> {
    let src = run().display().to_string();
    let dest = format!("s3://{}/{RUN}/", b.bucket);
    let (o, stderr) = output(&mut b.rockpack(&[
        "pack",
        "--source",
        &src,
        "--dest",
        &dest,
        "--families",
        "gfx94X-dcgpu;gfx110X-all",
        "--tests",
        "--level",
        "0",
        "--version",
        "7.13.0rc1",
        "--tag",
        "stage=release candidate",
    ]));
    assert!(o.status.success(), "pack: {stderr}");
    let names: Vec<String> = b
        .keys_under(RUN)
        .iter()
        .filter(|k| k.ends_with(".tar.gz"))
        .map(|k| k[RUN.len() + 1..].to_string())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    names
}

fn promote(b: &Backend, flags: &[&str]) -> Command {
    let from = format!("s3://{}/{RUN}/", b.bucket);
    let to = format!("s3://{}/{RELEASE}/", b.bucket);
    let mut args = vec!["promote", &from, &to];
    args.extend(flags);
    b.rockpack(&args)
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The tags of `key`.
fn tags(b: &Backend, key: &str) -> Vec<(String, String)> {
    let client = b.client();
    let out = b
        .block_on(
            client
                .get_object_tagging()
                .bucket(&b.bucket)
                .key(key)
                .send(),
        )
        .unwrap_or_else(|e| panic!("GetObjectTagging {key}: {e:?}"));
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// What the destination holds: key → bytes.
fn contents(b: &Backend, prefix: &str) -> Vec<(String, Vec<u8>)> {
    b.keys_under(prefix)
        .into_iter()
        .map(|k| {
            let data = b.get(&k);
            (k, data)
        })
        .collect()
}

/// What HeadObject says of `key`: the headers a CopyObject keeps.
fn headers(b: &Backend, key: &str) -> Vec<(&'static str, String)> {
    let client = b.client();
    let out = b
        .block_on(client.head_object().bucket(&b.bucket).key(key).send())
        .unwrap_or_else(|e| panic!("HeadObject {key}: {e:?}"));
    let mut meta: Vec<(&'static str, String)> = [
        ("content-type", out.content_type()),
        ("content-encoding", out.content_encoding()),
        ("content-disposition", out.content_disposition()),
        ("content-language", out.content_language()),
        ("cache-control", out.cache_control()),
    ]
    .into_iter()
    .filter_map(|(h, v)| Some((h, v?.to_string())))
    .collect();
    let mut user: Vec<(&String, &String)> = out.metadata().into_iter().flatten().collect();
    user.sort();
    meta.extend(
        user.into_iter()
            .map(|(k, v)| ("x-amz-meta", format!("{k}={v}"))),
    );
    meta
}

/// Tarballs stored with headers and user metadata by another tool keep
/// them when promoted, copied whole or in parts alike (a CopyObject keeps
/// them by itself; a copy in parts is given them).
#[test]
fn copies_keep_their_metadata_whole_or_in_parts() {
    let b = Backend::new("copies_keep_their_metadata_whole_or_in_parts");
    let client = b.client();
    let sizes = [("gfx94X-dcgpu", 20 << 20), ("gfx110X-all", 1 << 20)];
    for (label, size) in sizes {
        let key = format!("{RUN}/therock-dist-linux-{label}-7.13.0rc1.tar.gz");
        let data: Vec<u8> = (0..size).map(|i: usize| (i * 31 % 251) as u8).collect();
        b.block_on(
            client
                .put_object()
                .bucket(&b.bucket)
                .key(&key)
                .content_type("application/x-gzip")
                .content_disposition("attachment")
                .content_language("en")
                .cache_control("max-age=60")
                .metadata("run-id", "12345")
                .metadata("built-by", "build_tarballs.py")
                .body(data.into())
                .send(),
        )
        .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }
    // Another tool's tarballs: no set record vouches for them.
    let mut flags = vec!["--rename", "7.13.0rc1=7.13.0", "--unrecorded"];
    flags.extend(SMALL_COPIES);
    let (o, stderr) = output(&mut promote(&b, &flags));
    assert!(o.status.success(), "promote: {stderr}");
    assert!(!b.copy_parts().is_empty(), "no UploadPartCopy");
    for (label, _) in sizes {
        let old = headers(
            &b,
            &format!("{RUN}/therock-dist-linux-{label}-7.13.0rc1.tar.gz"),
        );
        assert!(old.len() >= 3, "{label}: the server kept {old:?}");
        let new = headers(
            &b,
            &format!("{RELEASE}/therock-dist-linux-{label}-7.13.0.tar.gz"),
        );
        assert_eq!(new, old, "{label}");
    }
}

/// Promoted with a new version: every tarball byte-identical under its
/// new name, every sidecar naming it, the large ones copied in parts, no
/// tarball byte sent; the CI outputs key them as `pack` does. Promoting
/// again changes nothing.
#[test]
fn promote_renames_copies_and_rewrites_sidecars() {
    let b = Backend::new("promote_renames_copies_and_rewrites_sidecars");
    let names = pack_candidate(&b);
    let before = b.recorder.bytes_received();
    let out = tempfile::tempdir().unwrap();
    let summary_file = out.path().join("promote.json");
    let gh_output = out.path().join("github_output");
    let mut flags = vec!["--rename", "7.13.0rc1=7.13.0", "--summary"];
    let summary_arg = summary_file.display().to_string();
    flags.push(&summary_arg);
    flags.extend(SMALL_COPIES);
    let (o, stderr) = output(promote(&b, &flags).env("GITHUB_OUTPUT", &gh_output));
    assert!(o.status.success(), "promote: {stderr}");
    // Only sidecars' text and requests' XML were sent, no tarball byte.
    let sent = b.recorder.bytes_received() - before;
    assert!(sent < 16 << 10, "{sent} bytes sent by the promote");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_file).unwrap()).unwrap();
    let tarballs = summary["tarballs"].as_array().unwrap();
    assert_eq!(tarballs.len(), 6, "{summary}");
    let (mut multipart, mut whole) = (0, 0);
    for old in &names {
        let new = old.replace("-7.13.0rc1.", "-7.13.0.");
        assert_ne!(&new, old);
        let data = b.get(&format!("{RUN}/{old}"));
        assert_eq!(
            b.get(&format!("{RELEASE}/{new}")),
            data,
            "{new} is not {old}"
        );
        let sidecar = b.get(&format!("{RELEASE}/{new}.sha256sum"));
        assert_eq!(
            String::from_utf8(sidecar).unwrap(),
            format!("{}  {new}\n", sha(&data))
        );
        let t = tarballs
            .iter()
            .find(|t| t["file_name"] == new.as_str())
            .unwrap_or_else(|| panic!("{new} not in {summary}"));
        assert_eq!(t["action"], "copy", "{t}");
        assert_eq!(t["bytes"], data.len() as u64, "{t}");
        match t["parts"].as_u64() {
            Some(n) => {
                assert!(data.len() > 18 << 20, "{t}");
                assert_eq!(n, (data.len() as u64).div_ceil(5 << 20), "{t}");
                multipart += 1;
            }
            None => {
                assert!(data.len() <= 18 << 20, "{t}");
                whole += 1;
            }
        }
        // Copies keep their source's tags, whole or in parts.
        if !b.is_local() {
            assert_eq!(
                tags(&b, &format!("{RELEASE}/{new}")),
                [("stage".to_string(), "release candidate".to_string())],
                "{t}"
            );
        }
        // A server that keeps the source's full-object checksum shows the
        // copy has it; s3s-fs keeps none of multipart objects.
        let checked = t["checked"].as_str().unwrap();
        eprintln!("{new}: copy checked by {checked}");
        if t["checksum"]["type"] == "FULL_OBJECT" {
            assert_eq!(checked, t["checksum"]["algorithm"].as_str().unwrap(), "{t}");
        } else {
            assert_eq!(checked, "size", "{t}");
        }
    }
    assert!(
        multipart >= 1 && whole >= 1,
        "{multipart} in parts, {whole} whole"
    );
    if b.is_local() {
        b.skip("copies keep tags (s3s-fs keeps none)");
    }
    assert!(!b.copy_parts().is_empty(), "no UploadPartCopy");
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
    let urls = common::tarball_urls(&gh_output);
    for key in [
        "gfx94X-dcgpu",
        "gfx94X-dcgpu-tests",
        "gfx110X-all",
        "multiarch",
    ] {
        let url = urls[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {urls}"));
        assert!(
            url.contains(RELEASE) && url.ends_with("-7.13.0.tar.gz"),
            "{url}"
        );
    }
    // Nothing at the source changed; a second promote finds it all there.
    assert_eq!(b.keys_under(RUN).len(), 13);
    let copies = b.recorder.requests().len();
    let (o, stderr) = output(&mut promote(&b, &["--rename", "7.13.0rc1=7.13.0"]));
    assert!(o.status.success(), "second promote: {stderr}");
    assert_eq!(stderr.matches("already there").count(), 6, "{stderr}");
    let again: Vec<_> = b.recorder.requests()[copies..]
        .iter()
        .filter(|r| r.method == Method::PUT)
        .map(|r| r.uri.clone())
        .collect();
    assert!(again.is_empty(), "the second promote wrote: {again:?}");
    // TheRock's promote_packages.py flags name the same promotion.
    let (o, stderr) = output(&mut promote(&b, &["--dest-version", "release"]));
    assert!(
        o.status.success(),
        "promote --dest-version release: {stderr}"
    );
    assert_eq!(stderr.matches("already there").count(), 6, "{stderr}");
}

/// `--dry-run` changes nothing; `--only` picks a family's tarballs; names
/// that pick nothing, and renames that rename nothing, are usage errors.
#[test]
fn promote_dry_run_only_and_usage_errors() {
    let b = Backend::new("promote_dry_run_only_and_usage_errors");
    pack_candidate(&b);
    let (o, stderr) = output(&mut promote(
        &b,
        &["--dry-run", "--rename", "7.13.0rc1=7.13.0"],
    ));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stderr.matches("would copy").count(), 6, "{stderr}");
    assert!(b.keys_under(RELEASE).is_empty());
    let (o, stderr) = output(&mut promote(&b, &["--only", "gfx94X-dcgpu"]));
    assert!(o.status.success(), "{stderr}");
    // The tarballs, their sidecars, and the record of what was promoted.
    let (records, keys): (Vec<String>, Vec<String>) = b
        .keys_under(RELEASE)
        .into_iter()
        .partition(|k| k.contains("/rockpack-set."));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.contains("-gfx94X-dcgpu-")),
        "{keys:?}"
    );
    for (flags, says) in [
        (
            &["--only", "gfx1151"][..],
            "--only \"gfx1151\" names no tarball",
        ),
        (
            &["--rename", "7.12.0=7.12.1"][..],
            "--rename 7.12.0 (no '-'-separated part is 7.12.0): changes no tarball name",
        ),
        (&["--rename", "7.13.0rc1"][..], "expected OLD=NEW"),
        // No nightly (a<YYYYMMDD>) version among the rc1 tarballs.
        (
            &["--src-version-type", "a"][..],
            "--dest-version (no version of the --src-version-type to promote)",
        ),
        (
            &["--dest-version", "a20260230"][..],
            "a<YYYYMMDD> with a real date",
        ),
    ] {
        let (o, stderr) = output(&mut promote(&b, flags));
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
    // Onto itself.
    let here = format!("s3://{}/{RUN}/", b.bucket);
    let (o, stderr) = output(&mut b.rockpack(&["promote", &here, &here]));
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("onto itself"), "{stderr}");
}

/// Other bytes under a destination name stop the promote before any
/// change; `--replace` overwrites them and keeps no backup.
#[test]
fn promote_conflict_changes_nothing_and_replace_overwrites() {
    let b = Backend::new("promote_conflict_changes_nothing_and_replace_overwrites");
    let names = pack_candidate(&b);
    let taken = format!("{RELEASE}/{}", names[0]);
    b.put(&taken, b"not this tarball".to_vec());
    let (o, stderr) = output(&mut promote(&b, &[]));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already holds other bytes"), "{stderr}");
    assert!(stderr.contains(&taken), "{stderr}");
    assert_eq!(b.keys_under(RELEASE), vec![taken.clone()]);
    let (o, stderr) = output(&mut promote(&b, &["--replace"]));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(b.get(&taken), b.get(&format!("{RUN}/{}", names[0])));
    let keys = b.keys_under(RELEASE);
    assert_eq!(keys.len(), 13, "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.contains("rockpack-backup")),
        "{keys:?}"
    );
}

/// Copies failing until their retries run out, after some succeeded, with
/// one destination tarball being replaced: exit 1 naming the copy, and
/// the destination holds exactly what it held before.
#[test]
fn failed_promote_leaves_the_destination_as_it_was() {
    let b = Backend::new("failed_promote_leaves_the_destination_as_it_was");
    let names = pack_candidate(&b);
    let taken = format!("{RELEASE}/{}", names[1]);
    b.put(&taken, b"the release's own bytes".to_vec());
    let before = contents(&b, RELEASE);
    b.recorder.fail_copies(3, 500, "InternalError", usize::MAX);
    let mut flags = vec!["--replace", "--retry-for", "0"];
    flags.extend(SMALL_COPIES);
    let (o, stderr) = output(&mut promote(&b, &flags));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("giving up after 6 tries"), "{stderr}");
    assert!(stderr.contains("Copy"), "{stderr}");
    assert_eq!(contents(&b, RELEASE), before);
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
}

/// A copy that does not match its source (the server reports one byte
/// more of it) fails the promote, naming both objects, and the
/// destination holds exactly what it held before, the tarball it was to
/// replace included.
#[test]
fn a_copy_unlike_its_source_fails_the_promote() {
    let b = Backend::new("a_copy_unlike_its_source_fails_the_promote");
    let names = pack_candidate(&b);
    let taken = format!("{RELEASE}/{}", names[1]);
    b.put(&taken, b"the release's own bytes".to_vec());
    let before = contents(&b, RELEASE);
    let wrong = format!("{RELEASE}/{}", names[0]);
    b.recorder.misreport_length(&wrong, usize::MAX);
    let mut flags = vec!["--replace"];
    flags.extend(SMALL_COPIES);
    let (o, stderr) = output(&mut promote(&b, &flags));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let size = b.get(&format!("{RUN}/{}", names[0])).len();
    let says = format!("the copy has {} bytes, the source {size}", size + 1);
    assert!(stderr.contains(&says), "{stderr}");
    assert!(stderr.contains(&wrong), "{stderr}");
    assert_eq!(contents(&b, RELEASE), before);
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
}

/// SIGTERM while copies are held at the server: exit 1 soon, the
/// destination as it was, no upload left.
#[test]
fn sigterm_mid_promote_leaves_the_destination_as_it_was() {
    let b = Backend::new("sigterm_mid_promote_leaves_the_destination_as_it_was");
    pack_candidate(&b);
    b.sigterm_once_fired(
        &mut promote(&b, SMALL_COPIES),
        Rule::new(Action::Delay(Duration::from_secs(120)))
            .method(Method::PUT)
            .query("x-id=UploadPartCopy&partNumber=")
            .skip(1)
            .always(),
        ("a part copy", Duration::from_secs(120)),
        Duration::ZERO,
    );
    assert_eq!(b.keys_under(RELEASE), Vec::<String>::new());
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
}

/// SIGTERM while a multipart copy's CreateMultipartUpload has started the
/// upload at the server but its answer has not come back (the answer
/// stalls): the upload whose id rockpack never learnt is found and aborted.
#[test]
fn sigterm_while_an_upload_starts_leaves_no_upload() {
    let b = Backend::new("sigterm_while_an_upload_starts_leaves_no_upload");
    pack_candidate(&b);
    // The server has started the upload by the time its answer stalls.
    b.sigterm_once_fired(
        &mut promote(&b, SMALL_COPIES),
        Rule::new(Action::StallAfter(0, Duration::from_secs(120)))
            .method(Method::POST)
            .query("uploads")
            .always(),
        ("a CreateMultipartUpload", Duration::from_secs(120)),
        Duration::from_millis(300),
    );
    assert_eq!(b.keys_under(RELEASE), Vec::<String>::new());
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
}

/// Uploads and temporary objects a killed run left: listed by
/// `--dry-run`, kept by `--older-than` while young, removed below the
/// prefix only; promote's backups and every other object kept.
#[test]
fn abort_uploads_aborts_what_is_left_below_the_prefix() {
    let b = Backend::new("abort_uploads_aborts_what_is_left_below_the_prefix");
    let client = b.client();
    let kept = [
        "some/prefix/a.tar.gz.sha256sum",
        "some/prefix/z.tar.gz.rockpack-backup-0123456789abcdef",
        "other/c.tar.gz.rockpack-tmp-1",
    ];
    let temporaries = [
        "some/prefix/a.tar.gz.rockpack-tmp-3",
        "some/prefix/deeper/b.tar.gz.rockpack-stage",
    ];
    for key in kept.iter().chain(&temporaries) {
        b.put(key, b"bytes".to_vec());
    }
    let keys = [
        "some/prefix/a.tar.gz",
        "some/prefix/deeper/b.tar.gz",
        "other/c.tar.gz",
    ];
    for key in keys {
        b.block_on(
            client
                .create_multipart_upload()
                .bucket(&b.bucket)
                .key(key)
                .send(),
        )
        .unwrap_or_else(|e| panic!("CreateMultipartUpload {key}: {e:?}"));
    }
    let at = format!("s3://{}/some/prefix/", b.bucket);
    let run = |flags: &[&str]| {
        let mut args = vec!["abort-uploads", &at];
        args.extend(flags);
        let (o, stderr) = output(&mut b.rockpack(&args));
        assert!(o.status.success(), "{flags:?}: {stderr}");
        String::from_utf8(o.stdout).unwrap()
    };
    let listed = run(&["--dry-run"]);
    let removed = |listed: &str| -> Vec<String> {
        listed
            .lines()
            .filter(|l| !l.starts_with("kept "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(removed(&listed).len(), 4, "{listed}");
    assert!(
        removed(&listed)
            .iter()
            .all(|l| l.starts_with("would remove ")),
        "{listed}"
    );
    for key in ["some/prefix/a.tar.gz ", "deeper/b.tar.gz "]
        .iter()
        .chain(&[temporaries[0], temporaries[1]])
    {
        assert!(listed.contains(key), "{key} in {listed}");
    }
    assert!(
        listed.contains("kept s3://") && listed.contains("rockpack-backup"),
        "{listed}"
    );
    assert_eq!(b.keys_under("some/prefix").len(), 4);
    let below = |b: &Backend| {
        b.pending_uploads()
            .iter()
            .filter(|u| u.contains("some/prefix/"))
            .count()
    };
    assert_eq!(below(&b), 2, "{:?}", b.pending_uploads());
    assert_eq!(
        removed(&run(&["--older-than", "36500d"])),
        Vec::<String>::new()
    );
    if b.is_local() {
        assert_eq!(removed(&run(&["--older-than", "1h"])), Vec::<String>::new());
        // It says how many it left alone: two uploads, two temporaries.
        let (o, stderr) = output(&mut b.rockpack(&["abort-uploads", &at, "--older-than", "1h"]));
        assert!(o.status.success(), "{stderr}");
        assert!(
            stderr.contains("left 4 younger than --older-than alone"),
            "{stderr}"
        );
    } else {
        b.skip(
            "young uploads kept by --older-than 1h (moto reports every upload as started in 2010)",
        );
    }
    let aborted = run(&[]);
    assert_eq!(removed(&aborted).len(), 4, "{aborted}");
    assert_eq!(below(&b), 0, "{:?}", b.pending_uploads());
    let mut left = b.keys_under("some/prefix");
    left.extend(b.keys_under("other"));
    left.sort();
    let mut want: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(left, want);
    assert!(
        b.pending_uploads()
            .iter()
            .any(|u| u.contains("other/c.tar.gz")),
        "{:?}",
        b.pending_uploads()
    );
    let listed = run(&["--dry-run"]);
    assert_eq!(removed(&listed), Vec::<String>::new(), "{listed}");
}

/// A prefix without a set record (a pack that failed, was killed or is
/// still publishing, or another tool's), or whose tarball is not the one
/// its record names (a mix of two runs), is refused before any change;
/// `--unrecorded` promotes it. A promote writes the record of what it
/// promoted at the destination.
#[test]
fn promote_refuses_a_set_its_record_does_not_vouch_for() {
    let b = Backend::new("promote_refuses_a_set_its_record_does_not_vouch_for");
    let names = pack_candidate(&b);
    let records: Vec<String> = b
        .keys_under(RUN)
        .into_iter()
        .filter(|k| k.contains("/rockpack-set."))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = b.get(&records[0]);
    // A mix: one tarball's sidecar and bytes from another run.
    let mixed = format!("{RUN}/{}", names[1]);
    let good = (b.get(&mixed), b.get(&format!("{mixed}.sha256sum")));
    let other = b"other bytes".to_vec();
    b.put(
        &format!("{mixed}.sha256sum"),
        format!("{}  {}\n", sha(&other), names[1]).into_bytes(),
    );
    b.put(&mixed, other);
    let (o, stderr) = output(&mut promote(&b, &[]));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a mix of two runs"), "{stderr}");
    assert!(stderr.contains(&names[1]), "{stderr}");
    assert!(b.keys_under(RELEASE).is_empty());
    b.put(&mixed, good.0);
    b.put(&format!("{mixed}.sha256sum"), good.1);
    // No record: an incomplete set.
    b.delete(&records[0]);
    let (o, stderr) = output(&mut promote(&b, &[]));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no set record"), "{stderr}");
    assert!(stderr.contains("--unrecorded"), "{stderr}");
    assert!(b.keys_under(RELEASE).is_empty());
    // Vouched for by hand: promoted, with a record at the destination
    // that a promote from there accepts.
    let (o, stderr) = output(&mut promote(&b, &["--unrecorded"]));
    assert!(o.status.success(), "{stderr}");
    b.put(&records[0], record);
    let promoted: Vec<String> = b
        .keys_under(RELEASE)
        .into_iter()
        .filter(|k| k.contains("/rockpack-set."))
        .collect();
    assert_eq!(promoted.len(), 1, "{promoted:?}");
    let again = format!("s3://{}/{RELEASE}/", b.bucket);
    let onward = format!("s3://{}/final/", b.bucket);
    let (o, stderr) = output(&mut b.rockpack(&["promote", &again, &onward]));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(b.keys_under("final").len(), 13);
}

/// Runs `cmd` and kills it (SIGKILL) once `rule` has fired.
fn killed_once_fired(b: &Backend, cmd: &mut Command, rule: Rule, what: &str) {
    let before = b.faults().fired();
    b.faults().add(rule);
    let mut run = common::Running::start(cmd);
    let faults = b.faults().clone();
    run.wait_until(what, Duration::from_secs(120), || faults.fired() > before);
    run.child.kill().unwrap();
    let _ = run.child.wait();
    b.faults().clear();
}

/// A `promote --replace` killed mid-copy (SIGKILL: it takes nothing back)
/// leaves its journal; `abort-uploads` takes the promote back from it:
/// the destination exactly as it was. Killed again, the next promote
/// takes the killed one back itself, then succeeds, leaving no backup.
#[test]
fn a_killed_promote_is_taken_back() {
    let b = Backend::new("a_killed_promote_is_taken_back");
    let names = pack_candidate(&b);
    let taken = format!("{RELEASE}/{}", names[1]);
    b.put(&taken, b"the release's own bytes".to_vec());
    b.put(
        &format!("{taken}.sha256sum"),
        format!("{}  {}\n", sha(b"the release's own bytes"), names[1]).into_bytes(),
    );
    let before = contents(&b, RELEASE);
    let copies = || {
        Rule::new(Action::Delay(Duration::from_secs(120)))
            .method(Method::PUT)
            .header_contains("x-amz-copy-source", "/")
            .skip(4)
            .always()
    };
    let mut flags = vec!["--replace"];
    flags.extend(SMALL_COPIES);
    killed_once_fired(&b, &mut promote(&b, &flags), copies(), "a copy");
    let now = b.keys_under(RELEASE);
    assert!(
        now.iter().any(|k| k.ends_with(".rockpack-journal")),
        "{now:?}"
    );
    let at = format!("s3://{}/{RELEASE}/", b.bucket);
    let (o, stderr) = output(&mut b.rockpack(&["abort-uploads", &at]));
    assert!(o.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("took back the killed promote"), "{stdout}");
    assert!(
        contents(&b, RELEASE) == before,
        "{:?}",
        b.keys_under(RELEASE)
    );
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
    // Killed again; the next promote takes it back first.
    killed_once_fired(&b, &mut promote(&b, &flags), copies(), "a copy");
    let (o, stderr) = output(&mut promote(&b, &flags));
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("a promote was killed here"), "{stderr}");
    let keys = b.keys_under(RELEASE);
    assert_eq!(keys.len(), 13, "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains(".rockpack-")), "{keys:?}");
    assert_eq!(b.get(&taken), b.get(&format!("{RUN}/{}", names[1])));
}
