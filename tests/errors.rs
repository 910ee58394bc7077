//! Every error case, run through the real `rockpack` binary: the exit code,
//! the one `rockpack: error:` line (naming the artifact and member where
//! there is one), and that nothing final-named or partial is left in DEST.
//!
//! Inputs are a small generated Kpack run (`rockpack::fixtures::generate`)
//! with one broken artifact added (`zzbad_lib_generic.*`: a generic `lib`
//! artifact, so it goes into every tarball).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rockpack::fixtures::{
    compress, generate, raw_tar, write_artifact, FixtureSpec, Layout, Member, MemberKind,
};
use rockpack::plan::Compression;
use tempfile::TempDir;

const FAMILY: &str = "gfx94X-dcgpu";
const TARBALL: &str = "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz";
/// Name of the broken artifact added to a valid run.
const BAD: &str = "zzbad_lib_generic.tar.zst";
const BAD_XZ: &str = "zzbad_lib_generic.tar.xz";
/// Manifest prefix of the broken artifact.
const PREFIX: &str = "zzbad/stage";

/// One generated run in a temp dir: `src` holds the artifacts, `dest` is
/// where `pack` writes (not created up front).
struct Fixture {
    tmp: TempDir,
    src: PathBuf,
    dest: PathBuf,
}

impl Fixture {
    /// A valid Kpack run for gfx94X-dcgpu.
    fn new(sidecars: bool) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        let spec = FixtureSpec {
            layout: Layout::Kpack,
            families: vec![FAMILY.to_string()],
            seed: 7,
            large_bytes: 64 << 10,
            sidecars,
        };
        let made = generate(&spec, &src).expect("generate fixture run");
        assert!(!made.is_empty());
        let dest = tmp.path().join("dest");
        Fixture { tmp, src, dest }
    }

    /// An empty source directory.
    fn empty() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        fs::create_dir_all(&src).unwrap();
        let dest = tmp.path().join("dest");
        Fixture { tmp, src, dest }
    }

    /// Writes raw bytes as a file of the source.
    fn put(&self, file_name: &str, bytes: &[u8]) {
        fs::write(self.src.join(file_name), bytes).expect("write source file");
    }

    /// Writes a compressed artifact into the source.
    fn artifact(
        &self,
        file_name: &str,
        compression: Compression,
        prefixes: Option<&[&str]>,
        members: &[Member],
    ) {
        write_artifact(&self.src.join(file_name), compression, prefixes, members)
            .expect("write artifact");
    }

    /// Adds `zzbad_lib_generic.tar.zst` with `members` under a manifest of
    /// `prefixes` (None: no manifest member at all).
    fn bad(&self, prefixes: Option<&[&str]>, members: &[Member]) {
        self.artifact(BAD, Compression::Zst, prefixes, members);
    }

    /// `rockpack pack --source SRC --families gfx94X-dcgpu --dest DEST` plus `extra`.
    fn pack(&self, extra: &[&str]) -> Outcome {
        let mut args: Vec<String> = vec![
            "pack".into(),
            "--source".into(),
            self.src.display().to_string(),
            "--families".into(),
            FAMILY.into(),
            "--dest".into(),
            self.dest.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        run(&args, self.tmp.path(), &self.dest)
    }

    /// `pack` with explicit arguments (no default family or dest).
    fn pack_raw(&self, args: &[&str]) -> Outcome {
        let mut all: Vec<String> = vec![
            "pack".into(),
            "--source".into(),
            self.src.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        run(&all, self.tmp.path(), &self.dest)
    }
}

/// What one run of the binary did.
struct Outcome {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    /// Every file under DEST (relative paths), sorted; empty when DEST is absent.
    outputs: Vec<String>,
}

fn run(args: &[String], cwd: &Path, dest: &Path) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_rockpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("ROCKPACK_LOG")
        .output()
        .expect("run rockpack");
    Outcome {
        code: out.status.code().expect("rockpack exited by a signal"),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: list_files(dest),
    }
}

fn list_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

impl Outcome {
    /// The single `rockpack: error:` line.
    fn error_line(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("rockpack: error:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one 'rockpack: error:' line; stderr:\n{}",
            self.stderr
        );
        lines[0]
    }

    /// Exit code `code`, one error line containing every needle, and no
    /// output (final-named or partial) in DEST.
    fn assert_failed(&self, code: i32, needles: &[&str]) {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code}); stderr:\n{}",
            self.code, self.stderr
        );
        let line = self.error_line();
        eprintln!("{line}");
        for n in needles {
            assert!(
                line.contains(n),
                "error line lacks {n:?}:\n{line}\nfull stderr:\n{}",
                self.stderr
            );
        }
        let leftovers: Vec<&String> = self
            .outputs
            .iter()
            .filter(|f| {
                f.ends_with(".tar.gz")
                    || f.ends_with(".tar.zst")
                    || f.ends_with(".sha256sum")
                    || f.ends_with(".partial")
            })
            .collect();
        assert!(
            leftovers.is_empty(),
            "a failed run left outputs in DEST: {leftovers:?}"
        );
        assert!(
            self.outputs.is_empty(),
            "DEST should be absent or empty after a failed run: {:?}",
            self.outputs
        );
    }

    fn assert_ok(&self) {
        assert_eq!(self.code, 0, "expected success; stderr:\n{}", self.stderr);
        assert!(
            !self.stderr.contains("rockpack: error:"),
            "stderr:\n{}",
            self.stderr
        );
        assert_eq!(
            self.outputs,
            vec![TARBALL.to_string(), format!("{TARBALL}.sha256sum")],
            "stderr:\n{}",
            self.stderr
        );
    }
}

/// `format!("{:?}")` of a member path, as the error message quotes it.
fn quoted(path: &str) -> String {
    format!("{path:?}")
}

/// Deterministic, moderately compressible text (so compressed streams have
/// some length to cut or corrupt).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "kernel", "wave", "lds", "vgpr", "sgpr", "hsaco", "tensile", "blas", "gemm", "fp16",
        "bf16", "xnack", "sramecc", "queue", "doorbell", "fence", "barrier", "atomic",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.extend_from_slice(format!("{:x}", x >> 40).as_bytes());
        out.push(if x % 11 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Members of a well-formed artifact under `PREFIX`, with enough data that
/// most of the compressed stream is file content.
fn good_members() -> Vec<Member> {
    vec![
        Member::dir(format!("{PREFIX}/lib")),
        Member::file(format!("{PREFIX}/lib/small.txt"), b"small\n".to_vec()),
        Member::file(format!("{PREFIX}/lib/big-a.dat"), noise(200_000, 1)),
        Member::file(format!("{PREFIX}/lib/big-b.dat"), noise(200_000, 2)),
        Member::file(format!("{PREFIX}/lib/tail.txt"), b"tail\n".to_vec()),
    ]
}

/// Rewrites a ustar header's type flag and checksum (bytes 148..156: the
/// sum of all header bytes with the field counted as spaces, as six octal
/// digits, NUL, space).
fn retype(block: &mut [u8], typeflag: u8) {
    assert_eq!(block.len(), 512);
    block[156] = typeflag;
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Offset of the ustar header (not a PAX `x` header) whose name field is `name`.
fn header_offset(tar: &[u8], name: &str) -> usize {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let block = &tar[at..at + 512];
        let end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
        if &block[..end] == name.as_bytes() && block[156] != b'x' {
            return at;
        }
        at += 512;
    }
    panic!("no ustar header named {name}");
}

// --- Positive control ----------------------------------------------------

#[test]
fn control_unmodified_run_packs() {
    let f = Fixture::new(true);
    let r = f.pack(&[]);
    r.assert_ok();
    let sidecar = fs::read_to_string(f.dest.join(format!("{TARBALL}.sha256sum"))).unwrap();
    assert!(sidecar.contains(TARBALL), "sidecar: {sidecar}");
    assert!(fs::metadata(f.dest.join(TARBALL)).unwrap().len() > 0);
}

// --- Selection errors (exit 3) -------------------------------------------

#[test]
fn family_matching_no_artifact() {
    let f = Fixture::new(false);
    let r = f.pack_raw(&[
        "--families",
        "gfx120X-all",
        "--dest",
        &f.dest.display().to_string(),
    ]);
    r.assert_failed(
        3,
        &[
            "gfx120X-all",
            "matches no artifact",
            "targets in this run",
            "gfx942",
            "known families",
        ],
    );
}

#[test]
fn unknown_family() {
    let f = Fixture::new(false);
    let r = f.pack_raw(&[
        "--families",
        "gfx999X",
        "--dest",
        &f.dest.display().to_string(),
    ]);
    r.assert_failed(3, &["unknown family", "gfx999X", "known families"]);
}

#[test]
fn no_artifacts() {
    let f = Fixture::empty();
    let r = f.pack(&[]);
    r.assert_failed(3, &["no artifacts"]);
}

#[test]
fn malformed_name_extra_underscore() {
    let f = Fixture::new(false);
    let name = "foo_bar_lib_generic.tar.zst";
    f.artifact(
        name,
        Compression::Zst,
        Some(&[PREFIX]),
        &[Member::file(format!("{PREFIX}/x"), b"x".to_vec())],
    );
    let r = f.pack(&[]);
    r.assert_failed(3, &[name, "malformed name"]);
}

#[test]
fn malformed_name_unknown_component() {
    let f = Fixture::new(false);
    let name = "foo_blob_generic.tar.zst";
    f.artifact(
        name,
        Compression::Zst,
        Some(&[PREFIX]),
        &[Member::file(format!("{PREFIX}/x"), b"x".to_vec())],
    );
    let r = f.pack(&[]);
    r.assert_failed(3, &[name, "malformed name", "blob"]);
}

// --- Hostile or malformed archives (exit 1) -------------------------------

#[test]
fn manifest_missing() {
    let f = Fixture::new(false);
    let first = format!("{PREFIX}/lib/first.txt");
    f.bad(
        None,
        &[Member::file(first.clone(), b"no manifest\n".to_vec())],
    );
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted(&first), "artifact_manifest.txt"]);
}

#[test]
fn manifest_empty() {
    let f = Fixture::new(false);
    f.bad(
        Some(&[]),
        &[Member::file(format!("{PREFIX}/lib/x"), b"x".to_vec())],
    );
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, "artifact_manifest.txt", "lists no path prefixes"]);
}

#[test]
fn member_outside_prefixes() {
    let f = Fixture::new(false);
    let stray = "elsewhere/stage/lib/stray.txt";
    let mut members = good_members();
    members.insert(1, Member::file(stray, b"stray\n".to_vec()));
    f.bad(Some(&[PREFIX]), &members);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted(stray), "not under any prefix"]);
}

#[test]
fn dotdot_path() {
    let f = Fixture::new(false);
    let evil = format!("{PREFIX}/lib/../../etc/x");
    let mut members = good_members();
    members.insert(1, Member::file(evil.clone(), b"evil\n".to_vec()));
    f.bad(Some(&[PREFIX]), &members);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted(&evil), "'..'"]);
}

#[test]
fn absolute_path() {
    let f = Fixture::new(false);
    let mut members = good_members();
    members.insert(
        1,
        Member::file("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n".to_vec()),
    );
    f.bad(Some(&[PREFIX]), &members);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted("/etc/passwd"), "absolute"]);
}

#[test]
fn fifo_member() {
    let f = Fixture::new(false);
    let fifo = format!("{PREFIX}/lib/pipe");
    let mut members = good_members();
    members.insert(
        2,
        Member::new(fifo.clone(), MemberKind::Special { typeflag: b'6' }),
    );
    f.bad(Some(&[PREFIX]), &members);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted(&fifo), "unsupported member type", "fifo"]);
}

/// Built by hand: a regular file's header patched to typeflag '3' with the
/// checksum recomputed in this file (not through `MemberKind::Special`).
#[test]
fn char_device_member() {
    let f = Fixture::new(false);
    let dev = format!("{PREFIX}/lib/tty0");
    let mut members = good_members();
    members.insert(2, Member::file(dev.clone(), Vec::new()).without_pax());
    let mut tar = raw_tar(Some(&[PREFIX]), &members);
    let at = header_offset(&tar, &dev);
    retype(&mut tar[at..at + 512], b'3');
    f.put(BAD, &compress(&tar, Compression::Zst));
    let r = f.pack(&[]);
    r.assert_failed(
        1,
        &[
            BAD,
            &quoted(&dev),
            "unsupported member type",
            "character device",
        ],
    );
}

#[test]
fn hardlink_to_missing_target() {
    let f = Fixture::new(false);
    let link = format!("{PREFIX}/lib/link");
    let target = format!("{PREFIX}/lib/missing");
    let mut members = good_members();
    members.push(Member::hardlink(link.clone(), target.clone()));
    f.bad(Some(&[PREFIX]), &members);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted(&link), "hardlink", &target]);
}

#[test]
fn hardlink_to_later_member() {
    let f = Fixture::new(false);
    let link = format!("{PREFIX}/lib/early-link");
    let target = format!("{PREFIX}/lib/late-file");
    let mut members = good_members();
    members.insert(1, Member::hardlink(link.clone(), target.clone()));
    members.push(Member::file(target.clone(), b"late\n".to_vec()));
    f.bad(Some(&[PREFIX]), &members);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, &quoted(&link), "hardlink", &target]);
}

#[test]
fn truncated_zstd() {
    let f = Fixture::new(false);
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let zst = compress(&tar, Compression::Zst);
    assert!(zst.len() > 4096, "compressed size {}", zst.len());
    f.put(BAD, &zst[..zst.len() / 2]);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, "zstd"]);
    let line = r.error_line();
    assert!(
        line.contains("truncated") || line.contains("corrupt"),
        "{line}"
    );
}

/// Decoded bytes that end inside a member's PAX extended header: the
/// stream is `compress(tar[..k])` with the frame's trailing 4-byte content
/// checksum cut off, so the decoder yields exactly `tar[..k]` and then
/// reports truncation.
fn truncated_inside_pax(compression: Compression, cut_tail: usize) -> Vec<u8> {
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let ustar = header_offset(&tar, &format!("{PREFIX}/lib/big-b.dat"));
    // PAX header block, one block of records (the mtime), then the ustar header.
    let pax = ustar - 1024;
    assert_eq!(tar[pax + 156], b'x', "no PAX header in front of big-b.dat");
    let k = pax + 512 + 10;
    let full = compress(&tar[..k], compression);
    full[..full.len() - cut_tail].to_vec()
}

#[test]
fn truncated_zstd_inside_pax_header() {
    let f = Fixture::new(false);
    f.put(BAD, &truncated_inside_pax(Compression::Zst, 4));
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, "zstd", "truncated"]);
}

#[test]
fn truncated_xz_inside_pax_header() {
    let f = Fixture::new(false);
    // Cut the 12-byte stream footer and the index in front of it.
    f.put(BAD_XZ, &truncated_inside_pax(Compression::Xz, 24));
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD_XZ, "xz", "truncated"]);
}

#[test]
fn corrupt_xz() {
    let f = Fixture::new(false);
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let mut xz = compress(&tar, Compression::Xz);
    assert!(xz.len() > 4096, "compressed size {}", xz.len());
    let mid = xz.len() / 2;
    for b in &mut xz[mid..mid + 16] {
        *b ^= 0xA5;
    }
    f.put(BAD_XZ, &xz);
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD_XZ, "xz"]);
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
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, "sha256 mismatch", &wrong]);
    // The same input passes without verification: the check is real.
    let r = f.pack(&["--verify", "off"]);
    r.assert_ok();
}

#[test]
fn sidecar_empty() {
    let f = Fixture::new(true);
    f.bad(Some(&[PREFIX]), &good_members());
    f.put(&format!("{BAD}.sha256sum"), b"");
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, "sha256sum"]);
}

#[test]
fn sidecar_not_hex() {
    let f = Fixture::new(true);
    f.bad(Some(&[PREFIX]), &good_members());
    f.put(
        &format!("{BAD}.sha256sum"),
        format!("not-a-digest  {BAD}\n").as_bytes(),
    );
    let r = f.pack(&[]);
    r.assert_failed(1, &[BAD, "sha256sum", "not-a-digest"]);
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
                Member::dir(format!("{PREFIX}/share")),
                Member::dir(format!("{PREFIX}/share/clash")),
                Member::file(format!("{PREFIX}/{path}"), content.to_vec()),
            ],
        );
    }
    let r = f.pack(&[]);
    r.assert_failed(1, &["conflict", a, b, path]);
    let r = f.pack(&["--on-conflict", "last-wins"]);
    r.assert_ok();
}

// --- Usage errors (exit 2) -------------------------------------------------

#[test]
fn dest_stdout_with_several_tarballs() {
    let f = Fixture::new(false);
    // Base and -tests variant: two tarballs.
    let r = f.pack_raw(&["--families", FAMILY, "--tests", "--dest", "-"]);
    r.assert_failed(2, &["--dest -", TARBALL]);
    assert!(r.stdout.is_empty(), "{} bytes on stdout", r.stdout.len());
    assert!(
        !f.tmp.path().join("-").exists(),
        "'-' was treated as a directory"
    );
}
