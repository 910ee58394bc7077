//! Writes the committed seed corpus: `fuzz/corpus/artifact/` and
//! `fuzz/corpus/two_artifacts/` (their old contents are replaced).
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds
//!
//! Seeds are the artifacts of a small generated run (`rockpack::fixtures`:
//! symlink chains, hardlinks, long paths, several prefixes; file data cut to
//! a few bytes so seeds stay small) and a hostile archive for each kind of
//! case in tests/hostile.rs, built from the same fixture API, with raw
//! header patches where that cannot express the case. Valid inputs let the
//! fuzzer reach the deep paths; hostile ones sit right at a refusal, one
//! mutation from a bypass.

use std::fs;
use std::path::{Path, PathBuf};

use rockpack::fixtures::{
    compress, generate, raw_tar, xz_with_dictionary, FixtureSpec, Layout, Member, MemberKind,
};
use rockpack::plan::Compression;
use rockpack::repack::tar_reader::TarReader;
use rockpack::repack::tarfmt::{self, Header, Kind, BLOCK, END_OF_ARCHIVE};
use rockpack_fuzz::{artifact_input, two_artifacts_input, Container, Options};

/// Member data in seeds is cut to this many bytes.
const DATA_CAP: usize = 48;
/// Members kept from each generated artifact.
const MEMBER_CAP: usize = 8;

const P: &str = "zzbad/stage";

fn at(rel: &str) -> String {
    format!("{P}/{rel}")
}

/// `raw_tar` without Python's PAX mtime header on all but the last member,
/// and without the record padding after the end-of-archive marker (both
/// only make seeds larger and fuzzing slower).
fn tar(prefixes: Option<&[&str]>, members: &[Member]) -> Vec<u8> {
    let mut members = members.to_vec();
    let n = members.len();
    for m in members.iter_mut().take(n.saturating_sub(1)) {
        m.pax.retain(|(k, _)| k != "mtime");
    }
    trim(raw_tar(prefixes, &members))
}

fn trim(mut t: Vec<u8>) -> Vec<u8> {
    let end = t.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    t.truncate(end.div_ceil(BLOCK) * BLOCK + END_OF_ARCHIVE.len());
    t
}

/// A few plain members (no PAX headers: they would triple the seed size).
fn good() -> Vec<Member> {
    vec![
        Member::dir(at("lib")).without_pax(),
        Member::exe(at("lib/tool"), b"#!/bin/sh\n".to_vec()).without_pax(),
        Member::file(at("lib/tail.txt"), b"tail\n".to_vec()),
    ]
}

fn with(extra: Vec<Member>) -> Vec<u8> {
    let mut m = good();
    for (i, x) in extra.into_iter().enumerate() {
        m.insert(1 + i, x);
    }
    tar(Some(&[P]), &m)
}

/// A header block written by rockpack's own encoder, for patching.
fn header(path: &[u8], kind: Kind, size: u64, link: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let h = Header {
        path,
        kind,
        mode: 0o644,
        size,
        mtime: 1_700_000_000,
        link,
        uid: 1001,
        gid: 1001,
        uname: "builder",
        gname: "builder",
    };
    tarfmt::write_header(&mut out, &h, &[]);
    out
}

fn set_checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    v
}

/// A member header with `typeflag` and `data` (an extended header, a GNU
/// long name), optionally with GNU tar's magic.
fn raw_entry(name: &[u8], typeflag: u8, data: &[u8], gnu: bool) -> Vec<u8> {
    let mut h = header(name, Kind::File, data.len() as u64, b"");
    h[156] = typeflag;
    if gnu {
        h[257..265].copy_from_slice(b"ustar  \0");
    }
    set_checksum(&mut h);
    h.extend(padded(data));
    h
}

fn file_entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header(name.as_bytes(), Kind::File, data.len() as u64, b"");
    h.extend(padded(data));
    h
}

fn manifest() -> Vec<u8> {
    file_entry("artifact_manifest.txt", format!("{P}\n").as_bytes())
}

fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        tarfmt::push_pax_record(&mut body, k, v);
    }
    body
}

fn eoa() -> Vec<u8> {
    END_OF_ARCHIVE.to_vec()
}

/// Hostile single archives (uncompressed), by case name.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let special = |t: u8| {
        with(vec![Member::new(
            at("lib/special"),
            MemberKind::Special { typeflag: t },
        )])
    };
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "path_dotdot",
            with(vec![Member::file(at("lib/../../../x"), b"x".to_vec())]),
        ),
        (
            "path_absolute",
            with(vec![Member::file("/etc/passwd", b"x".to_vec())]),
        ),
        (
            "path_nul_in_pax_path",
            with(vec![Member::file(at("lib/ok"), b"x".to_vec())
                .with_pax("path", format!("{P}/lib/ok\0/../../etc/passwd"))]),
        ),
        (
            "path_newline",
            with(vec![Member::file(at("lib/a"), b"x".to_vec())
                .with_pax("path", at("lib/a\n30 path=../../../../etc/x"))]),
        ),
        (
            "path_outside_prefixes",
            with(vec![Member::file("elsewhere/x", b"x".to_vec())]),
        ),
        (
            "path_sibling_of_prefix",
            with(vec![Member::file("zzbad/stagex/x", b"x".to_vec())]),
        ),
        (
            "path_pax_traversal",
            with(vec![Member::file(at("lib/benign"), b"x".to_vec())
                .with_pax("path", at("../../../etc/cron.d/evil"))]),
        ),
        (
            "path_dot_component",
            with(vec![Member::file(format!("./{P}/lib/x"), b"x".to_vec())]),
        ),
        (
            "path_prefix_is_symlink",
            tar(
                Some(&[P]),
                &[
                    Member::symlink(P, "/"),
                    Member::file(at("lib/x"), b"x".to_vec()),
                ],
            ),
        ),
        (
            "symlink_absolute",
            with(vec![Member::symlink(at("lib/passwd"), "/etc/passwd")]),
        ),
        (
            "symlink_climbs_out",
            with(vec![Member::symlink(at("lib/x"), "../../etc")]),
        ),
        (
            "symlink_pax_linkpath",
            with(vec![Member::symlink(at("lib/libfoo.so"), "libfoo.so.1")
                .with_pax("linkpath", "/etc/shadow")]),
        ),
        (
            "symlink_through_symlink",
            with(vec![
                Member::dir(at("bin")),
                Member::symlink(at("lib/evil"), "../bin"),
                Member::file(at("lib/evil/payload"), b"payload".to_vec()),
            ]),
        ),
        (
            "symlink_escape_chain",
            with(vec![
                Member::symlink(at("lib/up"), ".."),
                Member::symlink(at("lib/out"), "up/.."),
            ]),
        ),
        (
            "symlink_chain_inside",
            with(vec![
                Member::file(at("lib/libfoo.so.1.2"), b"\x7fELF".to_vec()),
                Member::symlink(at("lib/libfoo.so.1"), "libfoo.so.1.2"),
                Member::symlink(at("lib/libfoo.so"), "libfoo.so.1"),
                Member::dir(at("share")),
                Member::dir(at("share/x")),
                Member::dir(at("lib/cmake")),
                Member::symlink(at("lib/cmake/x"), "../../share/x"),
            ]),
        ),
        (
            "symlink_empty_target",
            with(vec![Member::symlink(at("lib/empty"), "")]),
        ),
        (
            "manifest_missing",
            tar(None, &[Member::file(at("lib/first.txt"), b"x".to_vec())]),
        ),
        (
            "manifest_empty",
            tar(Some(&[]), &[Member::file(at("lib/x"), b"x".to_vec())]),
        ),
        (
            "manifest_two_prefixes",
            tar(
                Some(&[P, "zzbad/other", "zzbad/stage/lib"]),
                &[
                    Member::dir(at("lib")),
                    Member::file(at("lib/x"), b"x".to_vec()),
                    Member::dir("zzbad/other/share"),
                    Member::file("zzbad/other/share/y", b"y".to_vec()),
                ],
            ),
        ),
        (
            "manifest_is_symlink",
            tar(
                None,
                &[
                    Member::symlink("artifact_manifest.txt", "/etc/passwd"),
                    Member::file(at("lib/x"), b"x".to_vec()),
                ],
            ),
        ),
        (
            "hardlink_ok",
            with(vec![
                Member::file(at("lib/a"), b"a".to_vec()),
                Member::hardlink(at("lib/b"), at("lib/a")),
                Member::hardlink(at("lib/c"), at("lib/b")),
            ]),
        ),
        (
            "hardlink_missing",
            with(vec![Member::hardlink(at("lib/l"), at("lib/missing"))]),
        ),
        (
            "hardlink_absolute",
            with(vec![Member::hardlink(at("lib/l"), "/etc/shadow")]),
        ),
        (
            "hardlink_dotdot",
            with(vec![Member::hardlink(at("lib/l"), at("lib/../../x"))]),
        ),
        ("type_fifo", special(b'6')),
        ("type_char_device", special(b'3')),
        ("type_block_device", special(b'4')),
        ("type_gnu_sparse", special(b'S')),
        ("type_contiguous", special(b'7')),
        (
            "type_pax_sparse",
            with(vec![
                Member::file(at("lib/sparse"), vec![0; 16]).with_pax("GNU.sparse.major", "1")
            ]),
        ),
        (
            "header_pax_size_disagrees",
            with(vec![
                Member::file(at("lib/carrier"), vec![b'c'; 512]).with_pax("size", "1536"),
                Member::file(at("lib/smuggled"), vec![b's'; 512]).without_pax(),
            ]),
        ),
        (
            "header_pax_size_on_dir",
            with(vec![Member::dir(at("lib/d")).with_pax("size", "1024")]),
        ),
        (
            "header_pax_size_u64_max",
            with(vec![
                Member::file(at("lib/e"), Vec::new()).with_pax("size", u64::MAX.to_string())
            ]),
        ),
        (
            "setid_modes",
            with(vec![
                Member::new(
                    at("lib/suid"),
                    MemberKind::File {
                        data: b"#!".to_vec(),
                        mode: 0o4755,
                    },
                ),
                Member::new(
                    at("lib/all"),
                    MemberKind::File {
                        data: b"#!".to_vec(),
                        mode: 0o7777,
                    },
                ),
            ]),
        ),
        (
            "long_names",
            with(vec![
                Member::file(at(&format!("lib/{}", "n".repeat(120))), b"n".to_vec()),
                Member::file(at(&("d/".repeat(70) + "f")), b"d".to_vec()),
                Member::symlink(
                    at(&format!("lib/{}", "l".repeat(130))),
                    "t/".repeat(60) + "x",
                ),
            ]),
        ),
        (
            "mtimes",
            trim(raw_tar(
                Some(&[P]),
                &[
                    Member::file(at("old"), b"o".to_vec()).with_mtime(5, 500_000),
                    Member::file(at("new"), b"n".to_vec()).with_mtime(1_800_000_000, 0),
                    Member::file(at("neg"), b"m".to_vec()).with_pax("mtime", "-7.5"),
                ],
            )),
        ),
        (
            "duplicates_in_one_archive",
            with(vec![
                Member::file(at("lib/dup"), b"same".to_vec()),
                Member::file(at("lib/dup"), b"same".to_vec()),
                Member::file(at("lib/dup2"), b"one".to_vec()),
                Member::file(at("lib/dup2"), b"two".to_vec()),
            ]),
        ),
        (
            "file_then_dir_below",
            with(vec![
                Member::file(at("lib/f"), b"f".to_vec()),
                Member::file(at("lib/f/x"), b"x".to_vec()),
            ]),
        ),
    ];
    // Raw headers the fixture API cannot write.
    let mut t = manifest();
    t.extend(raw_entry(
        b"././@LongLink",
        b'L',
        format!("{P}/lib/../../etc/passwd\0").as_bytes(),
        true,
    ));
    t.extend(file_entry(&at("lib/benign"), b"x"));
    t.extend(eoa());
    v.push(("gnu_longname_traversal", t));

    let long = at(&format!("lib/{}", "g".repeat(110)));
    let mut t = manifest();
    t.extend(raw_entry(
        b"././@LongLink",
        b'L',
        format!("{long}\0").as_bytes(),
        true,
    ));
    t.extend(file_entry(&long[..100], b"long"));
    t.extend(raw_entry(b"././@LongLink", b'K', b"libfoo.so.1\0", true));
    let mut h = header(at("lib/libfoo.so").as_bytes(), Kind::Symlink, 0, b"x");
    h[257..265].copy_from_slice(b"ustar  \0");
    set_checksum(&mut h);
    t.extend(h);
    t.extend(eoa());
    v.push(("gnu_longname_and_longlink_ok", t));

    let mut t = manifest();
    t.extend(raw_entry(
        b"pax_global_header",
        b'g',
        &pax(&[("path", b"/etc/passwd")]),
        false,
    ));
    t.extend(file_entry(&at("lib/x"), b"x"));
    t.extend(eoa());
    v.push(("global_pax_header", t));

    let mut t = manifest();
    t.extend(raw_entry(
        b"././@PaxHeader",
        b'x',
        &pax(&[("mtime", b"1.5")]),
        false,
    ));
    t.extend(raw_entry(
        b"././@LongLink",
        b'L',
        format!("{}\0", at("lib/n")).as_bytes(),
        true,
    ));
    t.extend(file_entry(&at("lib/n"), b""));
    t.extend(eoa());
    v.push(("pax_then_gnu_longname", t));

    let mut t = manifest();
    t.extend(raw_entry(
        b"././@PaxHeader",
        b'x',
        &pax(&[("path", at("lib/a").as_bytes())]),
        false,
    ));
    t.extend(raw_entry(
        b"././@PaxHeader",
        b'x',
        &pax(&[("path", b"/etc/passwd")]),
        false,
    ));
    t.extend(file_entry(&at("lib/x"), b"x"));
    t.extend(eoa());
    v.push(("two_pax_headers", t));

    let mut t = manifest();
    t.extend(file_entry(&at("lib/x"), b"x"));
    t.extend(raw_entry(
        b"././@PaxHeader",
        b'x',
        &pax(&[("path", b"/etc/passwd")]),
        false,
    ));
    t.extend(eoa());
    v.push(("pax_without_member", t));

    let mut t = manifest();
    let mut h = header(
        at("lib/libfoo.so").as_bytes(),
        Kind::Symlink,
        0,
        b"libfoo.so.1",
    );
    h[124..136].copy_from_slice(b"00000001000\0");
    set_checksum(&mut h);
    t.extend(h);
    t.extend(file_entry(&at("lib/smuggled"), b""));
    t.extend(eoa());
    v.push(("size_on_symlink", t));

    let mut t = manifest();
    let mut h = header(at("lib/neg").as_bytes(), Kind::File, 0, b"");
    h[124..136].copy_from_slice(&[0xff; 12]);
    set_checksum(&mut h);
    t.extend(h);
    t.extend(eoa());
    v.push(("negative_base256_size", t));

    let mut t = manifest();
    let mut h = header(at("lib/b256").as_bytes(), Kind::File, 0, b"");
    h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    set_checksum(&mut h);
    t.extend(h);
    t.extend(padded(b"abc"));
    t.extend(eoa());
    v.push(("base256_size_ok", t));

    let mut t = tar(Some(&[P]), &good());
    let h = t.len() - 2 * BLOCK - 2 * BLOCK; // the last member's header
    t[h + 104] = b'7';
    v.push(("wrong_checksum", t));

    let mut t = manifest();
    let mut h = header(at("lib/old").as_bytes(), Kind::File, 0, b"");
    h[257..265].fill(0);
    set_checksum(&mut h);
    t.extend(h);
    t.extend(eoa());
    v.push(("no_ustar_magic", t));

    let mut t = manifest();
    let mut h = header(b"x", Kind::File, 0, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    h[345..357].copy_from_slice(b"14557003200\0"); // GNU atime, not a prefix
    set_checksum(&mut h);
    t.extend(h);
    t.extend(eoa());
    v.push(("gnu_header_with_atime", t));

    let mut t = manifest();
    let mut h = header(b"x", Kind::File, 0, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    h[345..345 + P.len()].copy_from_slice(P.as_bytes()); // a prefix to Python, times to GNU tar
    set_checksum(&mut h);
    t.extend(h);
    t.extend(eoa());
    v.push(("gnu_header_with_prefix", t));

    let mut t = tar(Some(&[P]), &good());
    t.extend(file_entry("/etc/cron.d/evil", b"* * * * * root sh\n"));
    t.extend(eoa());
    v.push(("data_after_end_of_archive", t));

    let mut t = manifest();
    t.extend(file_entry(&at("lib/x"), b"x"));
    t.extend([0u8; BLOCK]);
    t.extend(file_entry(&at("lib/smuggled"), b"s"));
    t.extend(eoa());
    v.push(("lone_zero_block_then_member", t));

    let mut t = tar(Some(&[P]), &good());
    t.truncate(t.len() - 2 * BLOCK);
    v.push(("missing_end_of_archive", t));
    v
}

/// Pairs of archives for the two-artifact target, by case name.
fn pairs() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let a = "zzfuzza/stage";
    let b = "zzfuzzb/stage";
    let ta = |m: &[Member]| tar(Some(&[a]), m);
    let tb = |m: &[Member]| tar(Some(&[b]), m);
    let pa = |r: &str| format!("{a}/{r}");
    let pb = |r: &str| format!("{b}/{r}");
    vec![
        (
            "symlink_across_artifacts",
            ta(&[
                Member::dir(pa("lib")),
                Member::symlink(pa("lib/evil"), "../share"),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::file(pb("lib/evil/payload"), b"p".to_vec()),
            ]),
        ),
        (
            "symlink_replaced_by_directory",
            ta(&[
                Member::dir(pa("lib")),
                Member::dir(pa("share")),
                Member::symlink(pa("lib/evil"), "../share"),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::dir(pb("lib/evil")),
                Member::file(pb("lib/evil/payload"), b"p".to_vec()),
            ]),
        ),
        (
            "symlink_escape_combined",
            ta(&[
                Member::dir(pa("lib")),
                Member::symlink(pa("lib/up"), ".."),
                Member::symlink(pa("lib/out"), "up/.."),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::dir(pb("lib/out")),
                Member::file(pb("lib/out/PWNED"), b"p".to_vec()),
            ]),
        ),
        (
            "symlink_over_implicit_directory",
            ta(&[
                Member::dir(pa("lib")),
                Member::file(pa("lib/d/file"), b"f".to_vec()),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::symlink(pb("lib/d"), "../share"),
            ]),
        ),
        (
            "hardlink_to_other_artifact",
            ta(&[
                Member::dir(pa("lib")),
                Member::file(pa("lib/shared"), b"a".to_vec()),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::hardlink(pb("lib/link"), pa("lib/shared")),
            ]),
        ),
        (
            "identical_and_different_files",
            ta(&[
                Member::dir(pa("lib")),
                Member::file(pa("lib/same"), b"same".to_vec()),
                Member::file(pa("lib/diff"), b"one".to_vec()),
                Member::symlink(pa("lib/ln"), "same"),
                Member::file(pa("lib/real"), b"r".to_vec()),
                Member::hardlink(pa("lib/hl"), pa("lib/real")),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::file(pb("lib/same"), b"same".to_vec()),
                Member::file(pb("lib/diff"), b"two".to_vec()),
                Member::symlink(pb("lib/ln"), "diff"),
                Member::file(pb("lib/real"), b"r".to_vec()),
                Member::hardlink(pb("lib/hl"), pb("lib/real")),
            ]),
        ),
        (
            "directories_merge",
            ta(&[
                Member::dir(pa("lib")),
                Member::dir(pa("lib/sub")),
                Member::file(pa("lib/sub/a"), b"a".to_vec()),
            ]),
            tb(&[
                Member::new(pb("lib"), MemberKind::Dir),
                Member::new(
                    pb("lib/sub/deep/b"),
                    MemberKind::File {
                        data: b"b".to_vec(),
                        mode: 0o600,
                    },
                ),
                Member::dir(pb("lib/sub/deep")),
            ]),
        ),
        (
            "file_over_directory",
            ta(&[
                Member::dir(pa("lib")),
                Member::dir(pa("lib/x")),
                Member::file(pa("lib/x/y"), b"y".to_vec()),
            ]),
            tb(&[
                Member::dir(pb("lib")),
                Member::file(pb("lib/x"), b"x".to_vec()),
            ]),
        ),
    ]
}

/// The generated run's artifacts, as (file name, raw tar shrunk to at most
/// `MEMBER_CAP` members of at most `DATA_CAP` bytes).
fn generated(dir: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let spec = FixtureSpec {
        layout: Layout::Kpack,
        families: vec!["gfx94X-dcgpu".into()],
        seed: 7,
        large_bytes: 4096,
        sidecars: false,
        windows: false,
    };
    let made = generate(&spec, dir).expect("generate fixtures");
    let mut out = Vec::new();
    for a in made {
        let compressed = fs::read(&a.path).unwrap();
        let compression = if a.file_name.ends_with(".tar.xz") {
            Compression::Xz
        } else {
            Compression::Zst
        };
        let decoder =
            rockpack::repack::decode::decoder(compression, &compressed[..], u64::MAX).unwrap();
        let mut r = TarReader::new(decoder);
        let mut prefixes = Vec::new();
        let mut members = Vec::new();
        while let Some(m) = r.next_member().unwrap() {
            let mut data = vec![0u8; m.size as usize];
            let mut got = 0;
            while got < data.len() {
                got += r.read_data(&mut data[got..]).unwrap();
            }
            let path = String::from_utf8(m.path.clone()).unwrap();
            let link = String::from_utf8(m.link.clone()).unwrap();
            if path == "artifact_manifest.txt" {
                prefixes = String::from_utf8(data)
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect();
                continue;
            }
            if members.len() >= MEMBER_CAP {
                continue;
            }
            data.truncate(DATA_CAP);
            let kind = match m.typeflag {
                b'5' => MemberKind::Dir,
                b'2' => MemberKind::Symlink { target: link },
                b'1' => MemberKind::Hardlink { target: link },
                _ => MemberKind::File { data, mode: m.mode },
            };
            members.push(Member::new(path, kind).with_mtime(m.mtime, 250_000));
        }
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let shrunk = tar(Some(&prefixes), &members);
        let recompressed = compress(&shrunk, compression);
        out.push((a.file_name, shrunk, recompressed));
    }
    out
}

fn write_dir(dir: &Path, seeds: &[(String, Vec<u8>)]) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let tmp = std::env::temp_dir().join(format!("rockpack-seeds-{}", std::process::id()));
    let gen = generated(&tmp);
    let _ = fs::remove_dir_all(&tmp);

    let plain = Options::plain();
    let opt = |container, clamp, last_wins| Options {
        container,
        clamp,
        last_wins,
        ..plain
    };
    let mut one: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (name, raw, compressed)) in gen.iter().enumerate() {
        let stem = name.replace(".tar.", "-");
        one.push((
            format!("gen-{stem}"),
            artifact_input(opt(Container::Tar, i % 3 == 0, i % 4 == 1), raw),
        ));
        if i % 4 == 0 {
            let container = if name.ends_with(".tar.xz") {
                Container::Xz
            } else {
                Container::Zstd
            };
            one.push((
                format!("gen-{stem}-compressed"),
                artifact_input(opt(container, false, false), compressed),
            ));
        }
    }
    for (case, raw) in hostile() {
        // A checksum case keeps its checksums; the harness fixes all others.
        let o = Options {
            raw_checksums: case.contains("checksum"),
            ..plain
        };
        one.push((format!("hostile-{case}"), artifact_input(o, &raw)));
    }
    let good_tar = tar(Some(&[P]), &good());
    one.push((
        "via-zstd".into(),
        artifact_input(opt(Container::TarViaZstd, false, false), &good_tar),
    ));
    let mut zst = compress(&good_tar, Compression::Zst);
    zst.extend_from_slice(b"trailing junk");
    one.push((
        "zstd-trailing-junk".into(),
        artifact_input(opt(Container::Zstd, false, false), &zst),
    ));
    one.push((
        "xz-huge-dictionary".into(),
        artifact_input(
            opt(Container::Xz, false, false),
            &xz_with_dictionary(&good_tar, 40),
        ),
    ));
    let small = Options {
        small_limit: true,
        ..opt(Container::Zstd, false, false)
    };
    let bomb = tar(
        Some(&[P]),
        &[
            Member::file(at("zeros"), vec![0u8; 80 << 10]),
            Member::file(at("z"), b"z".to_vec()),
        ],
    );
    one.push((
        "bomb-over-small-limit".into(),
        artifact_input(small, &compress(&bomb, Compression::Zst)),
    ));
    write_dir(&root.join("artifact"), &one);

    let mut two: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (case, a, b)) in pairs().into_iter().enumerate() {
        for last_wins in [false, true] {
            let o = Options {
                last_wins,
                layout: (i % 4) as u8,
                ..plain
            };
            let suffix = if last_wins { "-last-wins" } else { "" };
            two.push((format!("{case}{suffix}"), two_artifacts_input(o, &a, &b)));
        }
    }
    // Generated artifacts that share directories, in plan order.
    let raws: Vec<&Vec<u8>> = gen.iter().map(|(_, raw, _)| raw).collect();
    for (i, w) in raws.windows(2).enumerate().filter(|(i, _)| i % 4 == 0) {
        let o = Options {
            layout: (i % 4) as u8,
            ..plain
        };
        two.push((format!("gen-pair-{i}"), two_artifacts_input(o, w[0], w[1])));
    }
    write_dir(&root.join("two_artifacts"), &two);

    for (dir, seeds) in [("artifact", &one), ("two_artifacts", &two)] {
        let bytes: usize = seeds.iter().map(|(_, s)| s.len()).sum();
        println!("corpus/{dir}: {} seeds, {bytes} bytes", seeds.len());
    }
}
