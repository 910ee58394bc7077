//! Every error case, run through the real `rockpack` binary: the exit code,
//! the one `rockpack: error:` line (naming the artifact and member where
//! there is one), and that nothing final-named or partial is left in DEST.
//!
//! Inputs are a small generated Kpack run (`rockpack::fixtures::generate`)
//! with one broken artifact added (`zzbad_lib_generic.*`: a generic `lib`
//! artifact, so it goes into every tarball); the harness is shared with
//! tests/hostile.rs (tests/common/bad_run.rs), which also covers the path,
//! manifest, hardlink, compression and sidecar cases in depth.

mod common;

use std::fs;

use common::bad_run::*;
use rockpack::fixtures::{compress, raw_tar, Member, MemberKind};
use rockpack::plan::Compression;

// --- Positive control ----------------------------------------------------

#[test]
fn control_unmodified_run_packs() {
    let f = Fixture::new(true);
    let r = f.pack("control_unmodified_run_packs", &[]);
    r.assert_ok();
    let sidecar = fs::read_to_string(f.dest.join(format!("{TARBALL}.sha256sum"))).unwrap();
    assert!(sidecar.contains(TARBALL), "sidecar: {sidecar}");
    assert!(fs::metadata(f.dest.join(TARBALL)).unwrap().len() > 0);
}

// --- Selection errors (exit 3) -------------------------------------------

/// A family whose tarball would hold nothing: the run has no artifact of
/// its targets and no generic artifacts. (With generic artifacts it gets a
/// generic-only tarball and a warning, as TheRock builds it: tests/cli.rs.)
#[test]
fn family_selecting_nothing() {
    let f = Fixture::empty();
    named(&f, "blas_lib_gfx942.tar.zst");
    let r = f.pack_raw(
        "family_selecting_nothing",
        &[
            "--families",
            "gfx120X-all",
            "--dest",
            &f.dest.display().to_string(),
        ],
    );
    r.assert_failed(
        3,
        &[
            "gfx120X-all",
            "selects nothing",
            "targets in this run",
            "gfx942",
            "known families",
        ],
    );
}

/// A name the family table lacks matches artifacts of that exact target,
/// as in TheRock; none here, and no generic artifacts either.
#[test]
fn unknown_family_selecting_nothing() {
    let f = Fixture::empty();
    named(&f, "blas_lib_gfx942.tar.zst");
    let r = f.pack_raw(
        "unknown_family_selecting_nothing",
        &[
            "--families",
            "gfx999X",
            "--dest",
            &f.dest.display().to_string(),
        ],
    );
    r.assert_failed(3, &["gfx999X", "selects nothing", "known families"]);
}

#[test]
fn no_artifacts() {
    let f = Fixture::empty();
    let r = f.pack("no_artifacts", &[]);
    r.assert_failed(3, &["no artifacts"]);
}

/// An artifact `name` holding one file, under `PREFIX`.
fn named(f: &Fixture, name: &str) {
    f.artifact(
        name,
        Compression::Zst,
        Some(&[PREFIX]),
        &[Member::file(at("x"), b"x".to_vec())],
    );
}

/// Like TheRock's listing, a `.tar.zst` not named
/// `{name}_{component}_{target}` is not an artifact: skipped, never read,
/// and named with the reason at `-v`.
fn skipped_name(case: &str, name: &str, why: &str) {
    let f = Fixture::new(false);
    named(&f, name);
    let r = f.pack(case, &["-v"]);
    r.assert_ok();
    assert!(
        r.stderr.contains("skipped") && r.stderr.contains(name) && r.stderr.contains(why),
        "case {case}: stderr:\n{}",
        r.stderr
    );
}

#[test]
fn malformed_name_extra_underscore_is_skipped() {
    skipped_name(
        "malformed_name_extra_underscore_is_skipped",
        "foo_bar_lib_generic.tar.zst",
        "4 underscore-separated fields",
    );
}

#[test]
fn malformed_name_unknown_component_is_skipped() {
    skipped_name(
        "malformed_name_unknown_component_is_skipped",
        "foo_blob_generic.tar.zst",
        "unknown component \"blob\"",
    );
}

// --- Hostile or malformed archives (exit 1) -------------------------------

#[test]
fn manifest_missing() {
    let f = Fixture::new(false);
    let first = at("lib/first.txt");
    f.bad(
        None,
        &[Member::file(first.clone(), b"no manifest\n".to_vec())],
    );
    let r = f.pack("manifest_missing", &[]);
    r.assert_failed(1, &[BAD, &quoted(&first), "artifact_manifest.txt"]);
}

#[test]
fn dotdot_path() {
    let evil = at("lib/../../etc/x");
    rejects_members(
        "dotdot_path",
        &with_hostile(vec![Member::file(evil.clone(), b"evil\n".to_vec())]),
        &[&quoted(&evil), "'..'"],
    );
}

#[test]
fn fifo_member() {
    let fifo = at("lib/pipe");
    let mut members = good_members();
    members.insert(
        2,
        Member::new(fifo.clone(), MemberKind::Special { typeflag: b'6' }),
    );
    rejects_members(
        "fifo_member",
        &members,
        &[&quoted(&fifo), "unsupported member type", "fifo"],
    );
}

/// Built by hand: a regular file's header patched to typeflag '3' with the
/// checksum recomputed here (not through `MemberKind::Special`).
#[test]
fn char_device_member() {
    let dev = at("lib/tty0");
    let mut members = good_members();
    members.insert(2, Member::file(dev.clone(), Vec::new()).without_pax());
    let mut tar = raw_tar(Some(&[PREFIX]), &members);
    let h = header_offset(&tar, &dev);
    retype(&mut tar[h..h + 512], b'3');
    rejects_tar(
        "char_device_member",
        &tar,
        &[&quoted(&dev), "unsupported member type", "character device"],
    );
}

/// Decoded bytes that end inside a member's PAX extended header: the
/// stream is `compress(tar[..k])` with the frame's trailing 4-byte content
/// checksum cut off, so the decoder yields exactly `tar[..k]` and then
/// reports truncation.
fn truncated_inside_pax(compression: Compression, cut_tail: usize) -> Vec<u8> {
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let ustar = header_offset(&tar, &at("lib/big-b.dat"));
    // PAX header block, one block of records (the mtime), then the ustar header.
    let pax = ustar - 1024;
    assert_eq!(tar[pax + 156], b'x', "no PAX header in front of big-b.dat");
    let k = pax + 512 + 10;
    let full = compress(&tar[..k], compression);
    full[..full.len() - cut_tail].to_vec()
}

#[test]
fn truncated_zstd_inside_pax_header() {
    rejects_file(
        "truncated_zstd_inside_pax_header",
        BAD,
        &truncated_inside_pax(Compression::Zst, 4),
        &["zstd", "truncated"],
    );
}

#[test]
fn truncated_xz_inside_pax_header() {
    // Cut the 12-byte stream footer and the index in front of it.
    rejects_file(
        "truncated_xz_inside_pax_header",
        BAD_XZ,
        &truncated_inside_pax(Compression::Xz, 24),
        &["xz", "truncated"],
    );
}

// --- Sidecars --------------------------------------------------------------

#[test]
fn sha256_mismatch_and_verify_off() {
    let f = Fixture::new(true);
    f.bad(Some(&[PREFIX]), &good_members());
    let wrong = "ab".repeat(32);
    f.put(
        &format!("{BAD}.sha256sum"),
        format!("{wrong}  {BAD}\n").as_bytes(),
    );
    let r = f.pack("sha256_mismatch_and_verify_off", &[]);
    r.assert_failed(1, &[BAD, "sha256 mismatch", &wrong]);
    // Followed by what to do about it.
    assert!(
        r.stderr
            .contains("rockpack: hint: the archive or its .sha256sum sidecar"),
        "{}",
        r.stderr
    );
    // The same input passes without verification: the check is real.
    let r = f.pack("sha256_mismatch_and_verify_off", &["--verify", "off"]);
    r.assert_ok();
}

#[test]
fn sidecar_not_hex() {
    bad_sidecar(
        "sidecar_not_hex",
        format!("not-a-digest  {BAD}\n").as_bytes(),
        &["sha256sum", "not-a-digest"],
    );
}

// --- Conflicts -------------------------------------------------------------

#[test]
fn conflict_then_last_wins() {
    let f = Fixture::new(true);
    let a = "zzclasha_lib_generic.tar.zst";
    let b = "zzclashb_lib_generic.tar.zst";
    let path = "share/clash/config.txt";
    for (name, content) in [(a, &b"first\n"[..]), (b, &b"second\n"[..])] {
        f.artifact(
            name,
            Compression::Zst,
            Some(&[PREFIX]),
            &[
                Member::dir(at("share")),
                Member::dir(at("share/clash")),
                Member::file(at(path), content.to_vec()),
            ],
        );
    }
    let r = f.pack("conflict_then_last_wins", &[]);
    r.assert_failed(1, &["conflict", a, b, path]);
    let r = f.pack("conflict_then_last_wins", &["--on-conflict", "last-wins"]);
    r.assert_ok();
}

// --- Usage errors (exit 2) -------------------------------------------------

#[test]
fn dest_stdout_with_several_tarballs() {
    let f = Fixture::new(false);
    // Base and -tests variant: two tarballs.
    let r = f.pack_raw(
        "dest_stdout_with_several_tarballs",
        &["--families", FAMILY, "--tests", "--dest", "-"],
    );
    r.assert_failed(2, &["--dest -", TARBALL]);
    assert!(r.stdout.is_empty(), "{} bytes on stdout", r.stdout.len());
    assert!(
        !f.tmp.path().join("-").exists(),
        "'-' was treated as a directory"
    );
}
