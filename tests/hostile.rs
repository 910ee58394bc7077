//! The table of hostile artifacts (issue 7), run through the real binary.
//!
//! Artifacts come from build jobs any pull request can influence, so
//! rockpack must never emit a tarball carrying an attack, never crash and
//! never hang. Every case below builds one hostile archive in code (with
//! `rockpack::fixtures`, or with the raw ustar/PAX/GNU header writer at the
//! bottom of this file where the fixture API cannot express it), adds it as
//! `zzbad_lib_generic.*` (a generic `lib` artifact, so it goes into every
//! tarball) to a small valid generated Kpack run, runs
//! `rockpack pack --source SRC --families gfx94X-dcgpu --dest DEST` and checks:
//!
//! - the exit code (1; 3 for a malformed artifact name),
//! - exactly one `rockpack: error:` line on stderr, naming the artifact file,
//!   the member where one is involved, and a key phrase of the reason,
//! - nothing final-named and no `.partial` left in DEST,
//! - the child finished within `DEADLINE` (it is killed and the test fails
//!   otherwise), was not killed by a signal and did not panic.
//!
//! Cases where rockpack's behaviour is wrong keep the assertion of the
//! correct behaviour and are marked `#[ignore = "BUG: ..."]`.
//!
//! The fixture, the run and these checks are shared with tests/errors.rs
//! (tests/common/bad_run.rs).

mod common;

use std::fs;
use std::io::Write;

use common::bad_run::*;
use rockpack::fixtures::{
    compress, raw_tar, xz_with_dictionary, Member, MemberKind, BASE_MTIME, MANIFEST_NAME,
};
use rockpack::plan::Compression;

/// `MAX_EXTENDED_HEADER` of the reader, as its error message states it.
const EXTENDED_LIMIT: &str = "1048576-byte limit";

// --- Positive controls -------------------------------------------------------

/// The members of the packed gfx94X-dcgpu tarball.
fn tarball_entries(f: &Fixture) -> Vec<common::tar_listing::TarEntry> {
    let gz = fs::File::open(f.dest.join(TARBALL)).unwrap();
    common::tar_listing::tar_entries(flate2::read::GzDecoder::new(gz))
}

#[test]
fn control_valid_run_packs() {
    let f = Fixture::new(true);
    f.bad(Some(&[PREFIX]), &good_members());
    f.pack("control_valid_run_packs", &[]).assert_ok();
}

/// Relative symlinks that stay inside the tree, including a chain and one
/// that climbs to the root and down again, are carried as they are.
#[test]
fn control_in_tree_symlink_chain_packs() {
    let f = Fixture::new(false);
    let members = vec![
        Member::dir(at("lib")),
        Member::file(at("lib/libfoo.so.1.2.3"), b"\x7fELF fake\n".to_vec()),
        Member::symlink(at("lib/libfoo.so.1"), "libfoo.so.1.2.3"),
        Member::symlink(at("lib/libfoo.so"), "libfoo.so.1"),
        Member::dir(at("share")),
        Member::dir(at("share/x")),
        Member::file(at("share/x/config.cmake"), b"set(X 1)\n".to_vec()),
        Member::dir(at("lib/cmake")),
        Member::symlink(at("lib/cmake/x"), "../../share/x"),
    ];
    f.bad(Some(&[PREFIX]), &members);
    f.pack("control_in_tree_symlink_chain_packs", &[])
        .assert_ok();

    let entries = tarball_entries(&f);
    let has_config = entries.iter().any(|e| e.path == "./share/x/config.cmake");
    let links: Vec<(String, String)> = entries
        .into_iter()
        .filter(|e| e.typeflag == b'2')
        .map(|e| (e.path, e.link.unwrap()))
        .collect();
    for want in [
        ("./lib/libfoo.so.1", "libfoo.so.1.2.3"),
        ("./lib/libfoo.so", "libfoo.so.1"),
        ("./lib/cmake/x", "../../share/x"),
    ] {
        assert!(
            links.iter().any(|(p, t)| p == want.0 && t == want.1),
            "symlink {want:?} missing from the tarball; symlinks: {links:?}"
        );
    }
    assert!(
        has_config,
        "./share/x/config.cmake missing from the tarball"
    );
}

/// Set-uid and set-gid bits are dropped: a tarball extracted as root must
/// not install set-uid binaries an artifact asked for.
#[test]
fn control_setid_and_world_write_bits_dropped() {
    let f = Fixture::new(false);
    let file = |path: &str, mode: u32| {
        Member::new(
            at(path),
            MemberKind::File {
                data: b"#!/bin/sh\n".to_vec(),
                mode,
            },
        )
    };
    f.bad(
        Some(&[PREFIX]),
        &[
            Member::dir(at("bin")),
            file("bin/suid", 0o4755),
            file("bin/sgid", 0o2755),
            file("bin/both", 0o6777),
        ],
    );
    let modes = |f: &Fixture| {
        let mut modes: Vec<(String, u32)> = tarball_entries(f)
            .into_iter()
            .filter(|e| ["./bin/suid", "./bin/sgid", "./bin/both"].contains(&e.path.as_str()))
            .map(|e| (e.path, e.mode))
            .collect();
        modes.sort();
        modes
    };
    // TheRock's modes: 0644 plus the execute bits.
    f.pack("control_setid_and_world_write_bits_dropped", &[])
        .assert_ok();
    assert_eq!(
        modes(&f),
        vec![
            ("./bin/both".to_string(), 0o755),
            ("./bin/sgid".to_string(), 0o755),
            ("./bin/suid".to_string(), 0o755),
        ]
    );
    // The members' own, less set-id and world-write.
    f.pack(
        "control_setid_and_world_write_bits_dropped",
        &["--keep-modes"],
    )
    .assert_ok();
    assert_eq!(
        modes(&f),
        vec![
            ("./bin/both".to_string(), 0o775),
            ("./bin/sgid".to_string(), 0o755),
            ("./bin/suid".to_string(), 0o755),
        ]
    );
}

// --- Paths -------------------------------------------------------------------

#[test]
fn path_dotdot_direct() {
    let evil = at("../../etc/x");
    rejects_members(
        "path_dotdot_direct",
        &with_hostile(vec![Member::file(evil.clone(), b"evil\n".to_vec())]),
        &[&quoted(&evil), "'..'"],
    );
}

#[test]
fn path_dotdot_after_prefix() {
    let evil = at("lib/../../../x");
    rejects_members(
        "path_dotdot_after_prefix",
        &with_hostile(vec![Member::file(evil.clone(), b"evil\n".to_vec())]),
        &[&quoted(&evil), "'..'"],
    );
}

#[test]
fn path_absolute() {
    rejects_members(
        "path_absolute",
        &with_hostile(vec![Member::file(
            "/etc/passwd",
            b"root:x:0:0::/root:/bin/sh\n".to_vec(),
        )]),
        &[&quoted("/etc/passwd"), "absolute"],
    );
}

/// The PAX `path` has a NUL after a harmless-looking name: a reader that
/// stops at the NUL sees `ok.txt`, another sees the traversal.
#[test]
fn path_nul_in_pax_path() {
    let evil = format!("{PREFIX}/lib/ok.txt\0/../../../../etc/passwd");
    rejects_members(
        "path_nul_in_pax_path",
        &with_hostile(vec![
            Member::file(at("lib/ok.txt"), b"x\n".to_vec()).with_pax("path", evil.as_bytes())
        ]),
        &[&quoted(&evil), "NUL"],
    );
}

/// A newline in a PAX path (found by fuzz/): legal in POSIX, but PAX
/// readers that split records on newlines (the `tar` crate) cannot read the
/// tarball, and line-based tools that list it can be fed forged lines.
#[test]
fn path_newline_in_pax_path() {
    let evil = format!("{PREFIX}/lib/a\n37 path=../../../../etc/cron.d/x");
    rejects_members(
        "path_newline_in_pax_path",
        &with_hostile(vec![
            Member::file(at("lib/a"), b"x\n".to_vec()).with_pax("path", evil.as_bytes())
        ]),
        &[&quoted(&evil), "control character '\\n' in path"],
    );
}

/// An escape sequence in a symlink target.
#[test]
fn symlink_control_character_in_target() {
    let link = at("lib/libfoo.so");
    rejects_members(
        "symlink_control_character_in_target",
        &with_hostile(vec![Member::symlink(link.clone(), "libfoo.so.1\x1b[2J")]),
        &[&quoted(&link), "control character", "in symlink target"],
    );
}

#[test]
fn path_outside_manifest_prefixes() {
    let stray = "elsewhere/stage/lib/stray.txt";
    rejects_members(
        "path_outside_manifest_prefixes",
        &with_hostile(vec![Member::file(stray, b"stray\n".to_vec())]),
        &[&quoted(stray), "not under any prefix"],
    );
}

/// `zzbad/stagex/...` starts with the prefix text but is not below it.
#[test]
fn path_in_sibling_of_prefix() {
    let stray = "zzbad/stagex/lib/stray.txt";
    rejects_members(
        "path_in_sibling_of_prefix",
        &with_hostile(vec![Member::file(stray, b"stray\n".to_vec())]),
        &[&quoted(stray), "not under any prefix"],
    );
}

/// The PAX `path` (which rockpack must use) traverses; the ustar name
/// field, which a careless reader would use, looks harmless.
#[test]
fn path_pax_traversal_behind_benign_ustar_name() {
    let evil = at("../../../etc/cron.d/evil");
    rejects_members(
        "path_pax_traversal_behind_benign_ustar_name",
        &with_hostile(vec![Member::file(
            at("lib/benign.txt"),
            b"* * * * * root sh\n".to_vec(),
        )
        .with_pax("path", evil.as_bytes())]),
        &[&quoted(&evil), "'..'"],
    );
}

/// The same through a GNU long-name (`L`) entry.
#[test]
fn path_gnu_longname_traversal() {
    let evil = format!("{PREFIX}/lib/{}etc/passwd", "../".repeat(40));
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(gnu_long(b'L', evil.as_bytes()));
    tar.extend(ustar(at("lib/benign").as_bytes(), b'0', 0, b""));
    tar.extend(end_of_archive());
    rejects_tar(
        "path_gnu_longname_traversal",
        &tar,
        &[&quoted(&evil), "'..'"],
    );
}

#[test]
fn path_dot_component() {
    let evil = format!("./{PREFIX}/lib/x");
    rejects_members(
        "path_dot_component",
        &with_hostile(vec![Member::file(evil.clone(), b"x\n".to_vec())]),
        &[&quoted(&evil), "'.' component"],
    );
}

/// A manifest prefix itself stored as a symlink (`zzbad/stage -> /`).
#[test]
fn path_prefix_itself_a_symlink() {
    rejects_members(
        "path_prefix_itself_a_symlink",
        &[
            Member::symlink(PREFIX, "/"),
            Member::file(at("lib/x"), b"x\n".to_vec()),
        ],
        &[&quoted(PREFIX), "prefix must be a directory"],
    );
}

// --- Symlinks ------------------------------------------------------------------

#[test]
fn symlink_absolute_target() {
    let link = at("lib/passwd");
    rejects_members(
        "symlink_absolute_target",
        &with_hostile(vec![Member::symlink(link.clone(), "/etc/passwd")]),
        &[&quoted(&link), "\"/etc/passwd\"", "absolute"],
    );
}

#[test]
fn symlink_relative_target_climbs_out() {
    let link = at("lib/x");
    rejects_members(
        "symlink_relative_target_climbs_out",
        &with_hostile(vec![Member::symlink(link.clone(), "../../etc")]),
        &[&quoted(&link), "\"../../etc\"", "leaves the tree"],
    );
}

/// The PAX `linkpath` (authoritative) is absolute; the ustar link field
/// looks harmless.
#[test]
fn symlink_pax_linkpath_behind_benign_ustar_link() {
    let link = at("lib/libfoo.so");
    rejects_members(
        "symlink_pax_linkpath_behind_benign_ustar_link",
        &with_hostile(vec![
            Member::symlink(link.clone(), "libfoo.so.1").with_pax("linkpath", "/etc/shadow")
        ]),
        &[&quoted(&link), "/etc/shadow", "absolute"],
    );
}

/// A GNU `K` long-link entry carrying an absolute target.
#[test]
fn symlink_gnu_longlink_absolute() {
    let link = at("lib/s");
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(gnu_long(b'K', b"/etc/shadow"));
    tar.extend(ustar(link.as_bytes(), b'2', 0, b"harmless"));
    tar.extend(end_of_archive());
    rejects_tar(
        "symlink_gnu_longlink_absolute",
        &tar,
        &[&quoted(&link), "/etc/shadow", "absolute"],
    );
}

#[test]
fn symlink_nul_in_pax_linkpath() {
    let link = at("lib/libfoo.so");
    rejects_members(
        "symlink_nul_in_pax_linkpath",
        &with_hostile(vec![Member::symlink(link.clone(), "libfoo.so.1").with_pax(
            "linkpath",
            b"libfoo.so.1\0/../../../../etc/shadow".to_vec(),
        )]),
        &[&quoted(&link), "NUL"],
    );
}

/// `lib/evil -> ../bin`, then `lib/evil/payload`: extraction would write
/// the payload wherever the link points.
#[test]
fn symlink_member_through_symlink_same_archive() {
    let payload = at("lib/evil/payload");
    rejects_members(
        "symlink_member_through_symlink_same_archive",
        &with_hostile(vec![
            Member::dir(at("bin")),
            Member::symlink(at("lib/evil"), "../bin"),
            Member::file(payload.clone(), b"payload\n".to_vec()),
        ]),
        &[
            &quoted(&payload),
            "runs through the symlink",
            "\"lib/evil\"",
        ],
    );
}

/// Artifact A has `lib/evil -> ../share`; artifact B, later in plan order
/// (both generic `lib`, ordered by name), has `lib/evil/payload`.
#[test]
fn symlink_member_through_symlink_across_artifacts() {
    let f = Fixture::new(false);
    let a = "zzevila_lib_generic.tar.zst";
    let b = "zzevilb_lib_generic.tar.zst";
    f.put_tar(
        a,
        &raw_tar(
            Some(&["zzevila/stage"]),
            &[
                Member::dir("zzevila/stage/lib"),
                Member::symlink("zzevila/stage/lib/evil", "../share"),
            ],
        ),
    );
    let payload = "zzevilb/stage/lib/evil/payload";
    f.put_tar(
        b,
        &raw_tar(
            Some(&["zzevilb/stage"]),
            &[
                Member::dir("zzevilb/stage/lib"),
                Member::file(payload, b"payload\n".to_vec()),
            ],
        ),
    );
    f.pack("symlink_member_through_symlink_across_artifacts", &[])
        .assert_failed(
            1,
            &[
                b,
                &quoted(payload),
                "runs through the symlink",
                "\"lib/evil\"",
                a,
            ],
        );
}

/// Each link passes a purely lexical check, but together they leave the
/// tree: `lib/up -> ..` resolves to the root, so `lib/out -> up/..`
/// resolves to the root's parent.
#[test]
fn symlink_escape_through_another_symlink() {
    let out = at("lib/out");
    rejects_members(
        "symlink_escape_through_another_symlink",
        &with_hostile(vec![
            Member::symlink(at("lib/up"), ".."),
            Member::symlink(out.clone(), "up/.."),
        ]),
        &[
            &quoted(&out),
            "\"up/..\"",
            "climbs with '..' after descending",
        ],
    );
}

#[test]
fn symlink_empty_target() {
    let link = at("lib/empty");
    rejects_members(
        "symlink_empty_target",
        &with_hostile(vec![Member::symlink(link.clone(), "")]),
        &[&quoted(&link), "empty target"],
    );
}

/// With `--on-conflict last-wins`, artifact B's directory `lib/evil`
/// "replaces" A's symlink `lib/evil -> ../share`, and B's
/// `lib/evil/payload` passes the below-a-symlink check because the current
/// entry is the directory. But the symlink is still in the tarball: GNU tar
/// replaces it with the directory, Python's tarfile keeps it (mkdir fails
/// with EEXIST, `isdir` follows the link) and writes the payload into
/// `share/`.
#[test]
fn symlink_replaced_by_directory_last_wins() {
    let f = Fixture::new(false);
    let a = "zzevila_lib_generic.tar.zst";
    let b = "zzevilb_lib_generic.tar.zst";
    f.put_tar(
        a,
        &raw_tar(
            Some(&["zzevila/stage"]),
            &[
                Member::dir("zzevila/stage/lib"),
                Member::dir("zzevila/stage/share"),
                Member::symlink("zzevila/stage/lib/evil", "../share"),
            ],
        ),
    );
    f.put_tar(
        b,
        &raw_tar(
            Some(&["zzevilb/stage"]),
            &[
                Member::dir("zzevilb/stage/lib"),
                Member::dir("zzevilb/stage/lib/evil"),
                Member::file("zzevilb/stage/lib/evil/payload", b"payload\n".to_vec()),
            ],
        ),
    );
    f.pack(
        "symlink_replaced_by_directory_last_wins",
        &["--on-conflict", "last-wins"],
    )
    .assert_failed(1, &[b, "lib/evil", "symlink"]);
}

/// `symlink_escape_through_another_symlink` and
/// `symlink_replaced_by_directory_last_wins` together write outside the
/// extraction root: A has `lib/up -> ..` and `lib/out -> up/..` (the
/// root's parent), B (last-wins) the directory `lib/out` and
/// `lib/out/PWNED`. Extracted with Python 3.11's `tarfile.extractall` (no
/// filter), PWNED lands next to the root.
#[test]
fn symlink_escape_combined_last_wins() {
    let f = Fixture::new(false);
    f.put_tar(
        "zzevila_lib_generic.tar.zst",
        &raw_tar(
            Some(&["zzevila/stage"]),
            &[
                Member::dir("zzevila/stage/lib"),
                Member::symlink("zzevila/stage/lib/up", ".."),
                Member::symlink("zzevila/stage/lib/out", "up/.."),
            ],
        ),
    );
    f.put_tar(
        "zzevilb_lib_generic.tar.zst",
        &raw_tar(
            Some(&["zzevilb/stage"]),
            &[
                Member::dir("zzevilb/stage/lib"),
                Member::dir("zzevilb/stage/lib/out"),
                Member::file("zzevilb/stage/lib/out/PWNED", b"pwned\n".to_vec()),
            ],
        ),
    );
    f.pack(
        "symlink_escape_combined_last_wins",
        &["--on-conflict", "last-wins"],
    )
    .assert_failed(1, &["lib/out", "symlink"]);
}

/// A's `lib/d/file` creates `lib/d` implicitly (no directory entry); B's
/// symlink `lib/d -> ../share` is then not seen as a conflict. GNU tar
/// fails on the tarball ("./lib/d: Cannot open: File exists", exit 2),
/// Python's tarfile silently keeps the directory: extractors disagree.
#[test]
fn symlink_over_implicit_directory() {
    let f = Fixture::new(false);
    let a = "zzevila_lib_generic.tar.zst";
    let b = "zzevilb_lib_generic.tar.zst";
    f.put_tar(
        a,
        &raw_tar(
            Some(&["zzevila/stage"]),
            &[
                Member::dir("zzevila/stage/lib"),
                Member::dir("zzevila/stage/share"),
                Member::file("zzevila/stage/lib/d/file", b"file\n".to_vec()),
            ],
        ),
    );
    f.put_tar(
        b,
        &raw_tar(
            Some(&["zzevilb/stage"]),
            &[
                Member::dir("zzevilb/stage/lib"),
                Member::symlink("zzevilb/stage/lib/d", "../share"),
            ],
        ),
    );
    f.pack("symlink_over_implicit_directory", &[])
        .assert_failed(1, &[b, "lib/d"]);
}

// --- Manifest ------------------------------------------------------------------

#[test]
fn manifest_missing() {
    let first = at("lib/first.txt");
    let f = Fixture::new(false);
    f.bad(
        None,
        &[
            Member::file(first.clone(), b"no manifest\n".to_vec()),
            Member::file(at("lib/second.txt"), b"x\n".to_vec()),
        ],
    );
    f.pack("manifest_missing", &[]).assert_failed(
        1,
        &[
            BAD,
            &quoted(&first),
            "artifact_manifest.txt",
            "first member",
        ],
    );
}

#[test]
fn manifest_not_first_member() {
    let first = at("lib/first.txt");
    let f = Fixture::new(false);
    f.bad(
        None,
        &[
            Member::file(first.clone(), b"before the manifest\n".to_vec()),
            Member::file(MANIFEST_NAME, format!("{PREFIX}\n").into_bytes()),
        ],
    );
    f.pack("manifest_not_first_member", &[]).assert_failed(
        1,
        &[
            BAD,
            &quoted(&first),
            "artifact_manifest.txt",
            "first member",
        ],
    );
}

/// TheRock writes manifests without a prefix for empty components; such an
/// artifact may hold nothing else: a member after it is outside every prefix.
#[test]
fn member_after_an_empty_manifest() {
    let f = Fixture::new(false);
    f.bad(Some(&[]), &[Member::file(at("lib/x"), b"x".to_vec())]);
    f.pack("member_after_an_empty_manifest", &[])
        .assert_failed(1, &[BAD, &quoted(&at("lib/x")), "not under any prefix"]);
}

#[test]
fn manifest_prefix_with_dotdot() {
    let f = Fixture::new(false);
    f.bad(
        Some(&["../../etc"]),
        &[Member::file("../../etc/passwd", b"x".to_vec())],
    );
    f.pack("manifest_prefix_with_dotdot", &[])
        .assert_failed(1, &[BAD, "artifact_manifest.txt", "../../etc", "'..'"]);
}

#[test]
fn manifest_prefix_absolute() {
    let f = Fixture::new(false);
    f.bad(
        Some(&["/etc"]),
        &[Member::file("/etc/passwd", b"x".to_vec())],
    );
    f.pack("manifest_prefix_absolute", &[])
        .assert_failed(1, &[BAD, "artifact_manifest.txt", "/etc", "absolute"]);
}

/// The manifest claims 8 GiB (data absent): refused by its size, before
/// anything is allocated.
#[test]
fn manifest_huge_size_claim() {
    let mut tar = ustar(MANIFEST_NAME.as_bytes(), b'0', 0o77777777777, b"").to_vec();
    tar.extend(b"zzbad/stage\n");
    let f = Fixture::new(false);
    f.bad_tar(&tar);
    let r = f.pack_measured("manifest_huge_size_claim", &[]);
    r.assert_failed(1, &[BAD, &quoted(MANIFEST_NAME), "1 MiB limit"]);
    r.assert_memory_bounded();
}

/// `artifact_manifest.txt` as a symlink to a system file.
#[test]
fn manifest_is_a_symlink() {
    let f = Fixture::new(false);
    f.bad(
        None,
        &[
            Member::symlink(MANIFEST_NAME, "/etc/passwd"),
            Member::file(at("lib/x"), b"x".to_vec()),
        ],
    );
    f.pack("manifest_is_a_symlink", &[]).assert_failed(
        1,
        &[
            BAD,
            &quoted(MANIFEST_NAME),
            "regular file artifact_manifest.txt",
        ],
    );
}

// --- Links and member types ----------------------------------------------------

#[test]
fn hardlink_to_missing_member() {
    let link = at("lib/link");
    let target = at("lib/missing");
    let mut members = good_members();
    members.push(Member::hardlink(link.clone(), target.clone()));
    rejects_members(
        "hardlink_to_missing_member",
        &members,
        &[&quoted(&link), "hardlink", &target, "not an earlier file"],
    );
}

#[test]
fn hardlink_to_later_member() {
    let link = at("lib/early-link");
    let target = at("lib/late-file");
    let mut members = with_hostile(vec![Member::hardlink(link.clone(), target.clone())]);
    members.push(Member::file(target.clone(), b"late\n".to_vec()));
    rejects_members(
        "hardlink_to_later_member",
        &members,
        &[&quoted(&link), "hardlink", &target, "not an earlier file"],
    );
}

/// The classic: a hardlink to `/etc/shadow`, then a write through it.
#[test]
fn hardlink_absolute_target() {
    let link = at("lib/shadow");
    rejects_members(
        "hardlink_absolute_target",
        &with_hostile(vec![Member::hardlink(link.clone(), "/etc/shadow")]),
        &[&quoted(&link), "hardlink target", "absolute"],
    );
}

#[test]
fn hardlink_dotdot_target() {
    let link = at("lib/shadow");
    rejects_members(
        "hardlink_dotdot_target",
        &with_hostile(vec![Member::hardlink(
            link.clone(),
            at("lib/../../../etc/shadow"),
        )]),
        &[&quoted(&link), "hardlink target", "'..'"],
    );
}

/// A hardlink may only point at an earlier file of its own archive.
#[test]
fn hardlink_to_other_artifact() {
    let f = Fixture::new(false);
    let a = "zzlinka_lib_generic.tar.zst";
    let b = "zzlinkb_lib_generic.tar.zst";
    let file = at("lib/shared.txt");
    let link = at("lib/link.txt");
    f.put_tar(
        a,
        &raw_tar(
            Some(&[PREFIX]),
            &[
                Member::dir(at("lib")),
                Member::file(file.clone(), b"a\n".to_vec()),
            ],
        ),
    );
    f.put_tar(
        b,
        &raw_tar(
            Some(&[PREFIX]),
            &[
                Member::dir(at("lib")),
                Member::hardlink(link.clone(), file.clone()),
            ],
        ),
    );
    f.pack("hardlink_to_other_artifact", &[])
        .assert_failed(1, &[b, &quoted(&link), "not an earlier file"]);
}

fn special(case: &str, typeflag: u8, what: &str) {
    let path = at("lib/special");
    rejects_members(
        case,
        &with_hostile(vec![Member::new(
            path.clone(),
            MemberKind::Special { typeflag },
        )]),
        &[&quoted(&path), "unsupported member type", what],
    );
}

#[test]
fn type_fifo() {
    special("type_fifo", b'6', "fifo");
}

#[test]
fn type_char_device() {
    special("type_char_device", b'3', "character device");
}

#[test]
fn type_block_device() {
    special("type_block_device", b'4', "block device");
}

/// tar has no socket type: an unknown flag stands for sockets and anything
/// else.
#[test]
fn type_unknown_flag() {
    special("type_unknown_flag", b'Z', "unknown member type");
}

#[test]
fn type_gnu_sparse() {
    special("type_gnu_sparse", b'S', "GNU sparse");
}

#[test]
fn type_pax_gnu_sparse_records() {
    let path = at("lib/sparse.bin");
    rejects_members(
        "type_pax_gnu_sparse_records",
        &with_hostile(vec![Member::file(path, vec![0; 16])
            .with_pax("GNU.sparse.major", "1")
            .with_pax("GNU.sparse.minor", "0")]),
        &["GNU sparse files are not supported"],
    );
}

/// A global PAX header would apply to every later member.
#[test]
fn type_global_pax_header() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(extended(b'g', &[("path", b"/etc/passwd")]));
    tar.extend(file_entry(at("lib/x").as_bytes(), b"x\n"));
    tar.extend(end_of_archive());
    rejects_tar(
        "type_global_pax_header",
        &tar,
        &["global PAX headers are not supported"],
    );
}

// --- Headers -------------------------------------------------------------------

/// TARmageddon (CVE-2025-62518): the ustar size says 512, the PAX size
/// 1536. The 1024 bytes between are a complete smuggled member: a reader
/// that takes the ustar size extracts it, one that takes the PAX size
/// skips it. Either way the two disagree, and rockpack must refuse.
#[test]
fn header_pax_size_disagrees_with_ustar_size() {
    let carrier = at("lib/carrier.bin");
    let members = with_hostile(vec![
        Member::file(carrier.clone(), noise(512, 3)).with_pax("size", "1536"),
        Member::file(at("lib/smuggled.so"), noise(512, 4)).without_pax(),
    ]);
    let tar = raw_tar(Some(&[PREFIX]), &members);
    // The archive is as described: ustar size 512, a PAX size of 1536.
    let h = header_offset(&tar, &carrier);
    let size_field = String::from_utf8_lossy(&tar[h + 124..h + 136]).into_owned();
    let size_field = size_field.trim_matches(|c: char| c == '\0' || c == ' ');
    assert_eq!(u64::from_str_radix(size_field, 8), Ok(512));
    assert!(tar[h - 512..h].windows(10).any(|w| w == b"size=1536\n"));
    rejects_tar(
        "header_pax_size_disagrees_with_ustar_size",
        &tar,
        &[
            &quoted(&carrier),
            "PAX size 1536 disagrees with header size 512",
        ],
    );
}

/// A directory whose PAX size claims data: readers that ignore sizes of
/// directories parse the following 1024 bytes as a member.
#[test]
fn header_pax_size_on_directory() {
    let dir = at("lib/d");
    let members = with_hostile(vec![
        Member::dir(dir.clone()).with_pax("size", "1024"),
        Member::file(at("lib/smuggled.so"), noise(512, 5)).without_pax(),
    ]);
    rejects_members(
        "header_pax_size_on_directory",
        &members,
        &[&dir, "directory member with 1024 bytes of data"],
    );
}

/// A symlink whose ustar size field claims 512 bytes, followed by a member
/// header: readers disagree on whether that header is data.
#[test]
fn header_size_on_symlink() {
    let link = at("lib/libfoo.so");
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(ustar(link.as_bytes(), b'2', 512, b"libfoo.so.1"));
    tar.extend(ustar(at("lib/smuggled").as_bytes(), b'0', 0, b""));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_size_on_symlink",
        &tar,
        &[&quoted(&link), "symlink member with 512 bytes of data"],
    );
}

#[test]
fn header_pax_then_gnu_longname() {
    let long = at(&format!("lib/{}", "n".repeat(150)));
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(extended(b'x', &[("mtime", b"1700000000.25")]));
    tar.extend(gnu_long(b'L', long.as_bytes()));
    tar.extend(ustar(&long.as_bytes()[..100], b'0', 0, b""));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_pax_then_gnu_longname",
        &tar,
        &["member", "GNU long-name entry follows a PAX header"],
    );
}

#[test]
fn header_gnu_longname_then_pax() {
    let long = at(&format!("lib/{}", "n".repeat(150)));
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(gnu_long(b'L', long.as_bytes()));
    tar.extend(extended(b'x', &[("path", at("lib/other").as_bytes())]));
    tar.extend(ustar(&long.as_bytes()[..100], b'0', 0, b""));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_gnu_longname_then_pax",
        &tar,
        &["member", "PAX header follows a GNU long-name entry"],
    );
}

#[test]
fn header_two_pax_headers() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(extended(b'x', &[("path", at("lib/a").as_bytes())]));
    tar.extend(extended(b'x', &[("path", b"/etc/passwd")]));
    tar.extend(file_entry(at("lib/x").as_bytes(), b"x\n"));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_two_pax_headers",
        &tar,
        &["member", "two PAX headers for one member"],
    );
}

/// 2 MiB of `comment=`: refused by the extended-header limit.
#[test]
fn header_huge_pax_record() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(extended(b'x', &[("comment", &vec![b'a'; 2 << 20])]));
    tar.extend(file_entry(at("lib/x").as_bytes(), b"x\n"));
    tar.extend(end_of_archive());
    let f = Fixture::new(false);
    f.bad_tar(&tar);
    let r = f.pack_measured("header_huge_pax_record", &[]);
    r.assert_failed(1, &[BAD, "extended header", EXTENDED_LIMIT]);
    r.assert_memory_bounded();
}

/// A PAX header whose size field claims 8 GiB with no data behind it: must
/// be refused by the limit, not by trying to allocate or read it.
#[test]
fn header_huge_pax_size_claim() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(ustar(b"././@PaxHeader", b'x', 0o77777777777, b""));
    let f = Fixture::new(false);
    f.bad_tar(&tar);
    let r = f.pack_measured("header_huge_pax_size_claim", &[]);
    r.assert_failed(1, &[BAD, "extended header", EXTENDED_LIMIT]);
    r.assert_memory_bounded();
}

/// 256 MiB of `comment=`, streamed into the compressor (so this test does
/// not hold it in memory either): buffering the record would show in the
/// peak memory.
#[test]
fn header_huge_pax_record_memory() {
    let value_len: usize = 256 << 20;
    let body_len = pax_record_len("comment", value_len);
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(&manifest_entry(&[PREFIX])).unwrap();
    enc.write_all(&ustar(b"././@PaxHeader", b'x', body_len as u64, b""))
        .unwrap();
    enc.write_all(format!("{body_len} comment=").as_bytes())
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..value_len / chunk.len() {
        enc.write_all(&chunk).unwrap();
    }
    enc.write_all(b"\n").unwrap();
    enc.write_all(&vec![0u8; body_len.div_ceil(512) * 512 - body_len])
        .unwrap();
    enc.write_all(&file_entry(at("lib/x").as_bytes(), b"x\n"))
        .unwrap();
    enc.write_all(&end_of_archive()).unwrap();
    let zst = enc.finish().unwrap();
    assert!(zst.len() < 1 << 20, "compressed to {} bytes", zst.len());
    let f = Fixture::new(false);
    f.put(BAD, &zst);
    let r = f.pack_measured("header_huge_pax_record_memory", &[]);
    r.assert_failed(1, &[BAD, "extended header", EXTENDED_LIMIT]);
    r.assert_memory_bounded();
}

/// A PAX header followed by the end-of-archive marker.
#[test]
fn header_pax_without_member() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(file_entry(at("lib/x").as_bytes(), b"x\n"));
    tar.extend(extended(b'x', &[("path", b"/etc/passwd")]));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_pax_without_member",
        &tar,
        &["extended header is not followed by a member"],
    );
}

/// A PAX size far beyond the data (u64::MAX, ustar field 0): truncation,
/// not an overflow or a crash.
#[test]
fn header_pax_size_u64_max() {
    let path = at("lib/endless.bin");
    rejects_members(
        "header_pax_size_u64_max",
        &with_hostile(vec![
            Member::file(path.clone(), Vec::new()).with_pax("size", u64::MAX.to_string())
        ]),
        &[&quoted(&path), "truncated"],
    );
}

#[test]
fn header_pax_size_not_a_number() {
    rejects_members(
        "header_pax_size_not_a_number",
        &with_hostile(vec![
            Member::file(at("lib/x"), Vec::new()).with_pax("size", "99999999999999999999999")
        ]),
        &["PAX size is not a number"],
    );
}

/// The size field claims more data than the archive has (the stream itself
/// is complete and well-compressed).
#[test]
fn header_size_beyond_end_of_archive() {
    let path = at("lib/short.bin");
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(ustar(path.as_bytes(), b'0', 100_000, b""));
    tar.extend(noise(100, 6));
    rejects_tar(
        "header_size_beyond_end_of_archive",
        &tar,
        &[&quoted(&path), "truncated"],
    );
}

#[test]
fn header_negative_base256_size() {
    let path = at("lib/neg.bin");
    let mut tar = manifest_entry(&[PREFIX]);
    let mut h = ustar(path.as_bytes(), b'0', 0, b"");
    h[124..136].copy_from_slice(&[0xff; 12]);
    set_checksum(&mut h);
    tar.extend(h);
    tar.extend(end_of_archive());
    rejects_tar(
        "header_negative_base256_size",
        &tar,
        &[&quoted(&path), "size field", "negative"],
    );
}

/// One header of a fixture archive with its mode changed after the checksum
/// was computed.
#[test]
fn header_wrong_checksum() {
    let victim = at("lib/big-a.dat");
    let mut tar = raw_tar(Some(&[PREFIX]), &good_members());
    let h = header_offset(&tar, &victim);
    assert_eq!(&tar[h + 100..h + 108], b"0000644\0");
    tar[h + 104] = b'7'; // 0644 -> 4644: set-uid, checksum left stale
    rejects_tar(
        "header_wrong_checksum",
        &tar,
        &[&quoted(&victim), "checksum mismatch"],
    );
}

/// A pre-POSIX (v7) header: no ustar magic.
#[test]
fn header_without_ustar_magic() {
    let path = at("lib/old");
    let mut tar = manifest_entry(&[PREFIX]);
    let mut h = ustar(path.as_bytes(), b'0', 0, b"");
    h[257..265].fill(0);
    set_checksum(&mut h);
    tar.extend(h);
    tar.extend(end_of_archive());
    rejects_tar(
        "header_without_ustar_magic",
        &tar,
        &[&quoted(&path), "not a ustar/pax header"],
    );
}

/// A GNU-format header (magic `ustar  `) with the manifest prefix in the
/// bytes where ustar keeps a name prefix and GNU keeps atime/ctime (caught
/// by fuzz/'s differential against the `tar` crate): GNU tar extracts `x`,
/// Python's tarfile `zzbad/stage/x`. Readers disagree on the path.
#[test]
fn header_gnu_magic_with_prefix_field() {
    let mut tar = manifest_entry(&[PREFIX]);
    let mut h = ustar(b"x", b'0', 0, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    h[345..345 + PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
    set_checksum(&mut h);
    tar.extend(h);
    tar.extend(end_of_archive());
    rejects_tar(
        "header_gnu_magic_with_prefix_field",
        &tar,
        &["\"x\"", "GNU header", "readers disagree on the path"],
    );
}

/// After the end-of-archive marker (and record padding) comes a complete
/// member: `tar --ignore-zeros` would extract it.
#[test]
fn header_garbage_after_end_of_archive() {
    let mut tar = raw_tar(Some(&[PREFIX]), &good_members());
    tar.extend(file_entry(b"/etc/cron.d/evil", b"* * * * * root sh\n"));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_garbage_after_end_of_archive",
        &tar,
        &["data after the end-of-archive marker"],
    );
}

/// One zero block, then a member: some readers stop, others go on.
#[test]
fn header_lone_zero_block_then_member() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(file_entry(at("lib/x").as_bytes(), b"x\n"));
    tar.extend([0u8; 512]);
    tar.extend(file_entry(at("lib/smuggled").as_bytes(), b"smuggled\n"));
    tar.extend(end_of_archive());
    rejects_tar(
        "header_lone_zero_block_then_member",
        &tar,
        &["zero block is followed by data"],
    );
}

/// The tar cut right after a member (no end-of-archive marker), then
/// compressed completely: the zstd stream is intact.
#[test]
fn header_missing_end_of_archive() {
    let tail = at("lib/tail.txt");
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let h = header_offset(&tar, &tail);
    let cut = h + 512 + 512; // header, then 5 bytes of data padded to a block
    assert!(tar[cut..].iter().all(|&b| b == 0));
    rejects_tar(
        "header_missing_end_of_archive",
        &tar[..cut],
        &["end-of-archive marker"],
    );
}

// --- Compression ---------------------------------------------------------------

#[test]
fn compression_zstd_cut_mid_frame() {
    let r = rejects_file(
        "compression_zstd_cut_mid_frame",
        BAD,
        &zstd_cut_in_half(),
        &["zstd"],
    );
    let line = r.error_line();
    assert!(
        line.contains("truncated") || line.contains("corrupt"),
        "{line}"
    );
}

#[test]
fn compression_corrupt_xz_block() {
    rejects_file(
        "compression_corrupt_xz_block",
        BAD_XZ,
        &xz_with_flipped_bytes(),
        &["xz", "corrupt"],
    );
}

/// Bytes after the zstd frame that are not a frame.
#[test]
fn compression_zstd_trailing_junk() {
    let mut zst = compress(&raw_tar(Some(&[PREFIX]), &good_members()), Compression::Zst);
    zst.extend_from_slice(b"this is not a zstd frame, just junk\n");
    rejects_file("compression_zstd_trailing_junk", BAD, &zst, &["zstd"]);
}

/// A second zstd frame holding a second tar (with a hostile member) after
/// the first: the decoded stream goes on after the end-of-archive marker.
#[test]
fn compression_zstd_second_frame_with_second_tar() {
    let mut zst = compress(&raw_tar(Some(&[PREFIX]), &good_members()), Compression::Zst);
    let evil = raw_tar(
        Some(&[PREFIX]),
        &[Member::symlink(at("lib/small.txt"), "/etc/passwd")],
    );
    zst.extend(compress(&evil, Compression::Zst));
    rejects_file(
        "compression_zstd_second_frame_with_second_tar",
        BAD,
        &zst,
        &["data after the end-of-archive marker"],
    );
}

/// A small zstd archive whose one member is 64 MiB of zeros.
fn bomb() -> Vec<u8> {
    let tar = raw_tar(
        Some(&[PREFIX]),
        &[
            Member::dir(at("lib")),
            Member::file(at("lib/zeros.bin"), vec![0u8; 64 << 20]),
        ],
    );
    let zst = compress(&tar, Compression::Zst);
    assert!(
        zst.len() < 64 << 10,
        "bomb compresses to {} bytes",
        zst.len()
    );
    zst
}

#[test]
fn compression_bomb_over_limit() {
    let f = Fixture::new(false);
    f.put(BAD, &bomb());
    let r = f.pack_measured(
        "compression_bomb_over_limit",
        &["--max-unpacked-size", "8388608"],
    );
    r.assert_failed(
        1,
        &[
            BAD,
            &quoted(&at("lib/zeros.bin")),
            "more than 8388608 bytes",
            "--max-unpacked-size",
        ],
    );
    r.assert_memory_bounded();
}

#[test]
fn compression_bomb_control_without_limit() {
    let f = Fixture::new(false);
    f.put(BAD, &bomb());
    let r = f.pack_measured("compression_bomb_control_without_limit", &[]);
    r.assert_ok();
    r.assert_memory_bounded();
}

/// A `.tar.xz` whose block header claims a 4 GiB dictionary: the decoder
/// keeps as much history as the stream decodes to, so a small artifact of
/// zeros could hold gigabytes resident (a 78 KB one of 512 MiB: 528 MiB,
/// measured). Refused by the dictionary limit, as zstd windows over 128 MiB
/// are, before anything is decoded.
#[test]
fn compression_xz_huge_dictionary() {
    let mut tar = manifest_entry(&[PREFIX]);
    tar.extend(ustar(at("lib/zeros.bin").as_bytes(), b'0', 16 << 20, b""));
    tar.resize(tar.len() + (16 << 20), 0);
    tar.extend(end_of_archive());
    let xz = xz_with_dictionary(&tar, 40);
    assert!(xz.len() < 64 << 10, "compressed to {} bytes", xz.len());
    let f = Fixture::new(false);
    f.put(BAD_XZ, &xz);
    let r = f.pack_measured("compression_xz_huge_dictionary", &[]);
    r.assert_failed(1, &[BAD_XZ, "xz", "needs a dictionary over"]);
    r.assert_memory_bounded();
}

// --- Names and sidecars --------------------------------------------------------

/// A newline in a file name must not let it forge extra log lines or CI
/// workflow commands on stderr, even where `-v` names the skipped file.
#[test]
fn name_with_newline() {
    let f = Fixture::new(false);
    let name = "evil\nrockpack: error: forged\n::error::x_lib_generic.tar.zst";
    f.put_tar(name, &raw_tar(Some(&[PREFIX]), &good_members()));
    let r = f.pack("name_with_newline", &["-v"]);
    // Not `assert_ok`: the escaped name itself holds "rockpack: error:".
    assert_eq!(r.status.code(), Some(0), "stderr:\n{}", r.stderr);
    assert!(r.outputs.contains(&TARBALL.to_string()), "{:?}", r.outputs);
    assert!(
        r.stderr.contains("evil\\nrockpack: error: forged"),
        "the skipped file is not named, escaped:\n{}",
        r.stderr
    );
    assert!(
        !r.stderr
            .lines()
            .any(|l| l.starts_with("::") || l.starts_with("rockpack: error")),
        "a forged line reached stderr:\n{}",
        r.stderr
    );
}

#[test]
fn sidecar_empty() {
    bad_sidecar("sidecar_empty", b"", &["sha256sum sidecar is empty"]);
}

#[test]
fn sidecar_whitespace_only() {
    bad_sidecar(
        "sidecar_whitespace_only",
        b"  \n\t\n",
        &["sha256sum sidecar is empty"],
    );
}

#[test]
fn sidecar_not_hex() {
    let digest = "zz".repeat(32);
    bad_sidecar(
        "sidecar_not_hex",
        format!("{digest}  {BAD}\n").as_bytes(),
        &[&digest, "not a hex digest"],
    );
}

#[test]
fn sidecar_short_digest() {
    bad_sidecar(
        "sidecar_short_digest",
        format!("abcdef0123456789  {BAD}\n").as_bytes(),
        &["abcdef0123456789", "not a 64-digit SHA-256 digest"],
    );
}

#[test]
fn sidecar_oversized() {
    bad_sidecar(
        "sidecar_oversized",
        &vec![b'a'; 1 << 20],
        &["larger than 4096 bytes"],
    );
}

// --- Raw tar writer ------------------------------------------------------------
//
// ustar layout: name 0..100, mode 100..108, uid 108..116, gid 116..124,
// size 124..136 (octal), mtime 136..148, checksum 148..156 (the sum of the
// header bytes with the field as 8 spaces, written as 6 octal digits, NUL,
// space), typeflag 156, linkname 157..257, magic 257..263 ("ustar\0"),
// version 263..265 ("00"), uname 265..297, gname 297..329, prefix 345..500.

/// Writes `v` as zero-padded octal filling all but the last byte, then NUL.
fn octal(field: &mut [u8], v: u64) {
    let digits = format!("{v:0w$o}", w = field.len() - 1);
    assert_eq!(digits.len(), field.len() - 1, "{v} does not fit");
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
}

/// A POSIX ustar header block.
fn ustar(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; 512] {
    assert!(name.len() <= 100 && link.len() <= 100);
    let mut b = [0u8; 512];
    b[..name.len()].copy_from_slice(name);
    octal(
        &mut b[100..108],
        if typeflag == b'5' { 0o755 } else { 0o644 },
    );
    octal(&mut b[108..116], 1001);
    octal(&mut b[116..124], 1001);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], BASE_MTIME as u64);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[265..272].copy_from_slice(b"builder");
    b[297..304].copy_from_slice(b"builder");
    set_checksum(&mut b);
    b
}

/// `data` followed by zeros up to the next block boundary.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// A regular file member without PAX records.
fn file_entry(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = ustar(name, b'0', data.len() as u64, b"").to_vec();
    v.extend(padded(data));
    v
}

/// `artifact_manifest.txt` listing `prefixes`.
fn manifest_entry(prefixes: &[&str]) -> Vec<u8> {
    let text: String = prefixes.iter().map(|p| format!("{p}\n")).collect();
    file_entry(MANIFEST_NAME.as_bytes(), text.as_bytes())
}

/// Length of the PAX record for `key` and a value of `value_len` bytes:
/// "<len> <key>=<value>\n", where len counts its own digits.
fn pax_record_len(key: &str, value_len: usize) -> usize {
    let body = key.len() + value_len + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    len
}

/// One PAX record, "<len> <key>=<value>\n".
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let len = pax_record_len(key, value.len());
    let mut v = format!("{len} {key}=").into_bytes();
    v.extend_from_slice(value);
    v.push(b'\n');
    assert_eq!(v.len(), len);
    v
}

/// A PAX extended header (`x` for the next member, `g` global) with records.
fn extended(typeflag: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    let name: &[u8] = if typeflag == b'g' {
        b"pax_global_header"
    } else {
        b"././@PaxHeader"
    };
    let mut v = ustar(name, typeflag, body.len() as u64, b"").to_vec();
    v.extend(padded(&body));
    v
}

/// A GNU long-name (`L`) or long-link (`K`) entry, with GNU tar's magic.
fn gnu_long(typeflag: u8, value: &[u8]) -> Vec<u8> {
    let mut data = value.to_vec();
    data.push(0);
    let mut h = ustar(b"././@LongLink", typeflag, data.len() as u64, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    set_checksum(&mut h);
    let mut v = h.to_vec();
    v.extend(padded(&data));
    v
}

fn end_of_archive() -> Vec<u8> {
    vec![0; 1024]
}
