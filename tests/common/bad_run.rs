//! The harness of the bad-input tests (tests/errors.rs, tests/hostile.rs):
//! a small valid generated Kpack run with one broken artifact added
//! (`zzbad_lib_generic.*`: a generic `lib` artifact, so it goes into every
//! tarball), `rockpack pack` run on it with a deadline, and the checks of a
//! failed run: the exit code, exactly one `rockpack: error:` line holding
//! every expected phrase, nothing left in DEST, no crash. Also the members
//! and tar header patches the broken artifacts are made of.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use rockpack::fixtures::{
    compress, generate, raw_tar, write_artifact, FixtureSpec, Layout, Member,
};
use rockpack::plan::Compression;
use tempfile::TempDir;

pub const FAMILY: &str = "gfx94X-dcgpu";
pub const TARBALL: &str = "therock-dist-linux-gfx94X-dcgpu-0.0.0.tar.gz";
/// Name of the broken artifact added to a valid run.
pub const BAD: &str = "zzbad_lib_generic.tar.zst";
pub const BAD_XZ: &str = "zzbad_lib_generic.tar.xz";
/// Manifest prefix of the broken artifact.
pub const PREFIX: &str = "zzbad/stage";
/// Nothing may take longer than this.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Peak resident memory allowed for the runs that test memory bounds.
pub const MEMORY_BOUND_KIB: u64 = 128 << 10;

/// One generated run in a temp dir: `src` holds the artifacts, `dest` is
/// where `pack` writes (not created up front).
pub struct Fixture {
    pub tmp: TempDir,
    pub src: PathBuf,
    pub dest: PathBuf,
}

impl Fixture {
    /// A valid Kpack run for gfx94X-dcgpu, with `.sha256sum` sidecars when asked.
    pub fn new(sidecars: bool) -> Fixture {
        Fixture::generated(sidecars, false)
    }

    /// As `new`, a run of TheRock's Windows build (no links: copies).
    pub fn windows(sidecars: bool) -> Fixture {
        Fixture::generated(sidecars, true)
    }

    fn generated(sidecars: bool, windows: bool) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        let spec = FixtureSpec {
            layout: Layout::Kpack,
            families: vec![FAMILY.to_string()],
            seed: 7,
            large_bytes: 64 << 10,
            sidecars,
            windows,
        };
        let made = generate(&spec, &src).expect("generate fixture run");
        assert!(!made.is_empty());
        let dest = tmp.path().join("dest");
        Fixture { tmp, src, dest }
    }

    /// An empty source directory.
    pub fn empty() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        fs::create_dir_all(&src).unwrap();
        let dest = tmp.path().join("dest");
        Fixture { tmp, src, dest }
    }

    /// Writes raw bytes as a file of the source.
    pub fn put(&self, file_name: &str, bytes: &[u8]) {
        fs::write(self.src.join(file_name), bytes).expect("write source file");
    }

    /// Writes uncompressed tar bytes as `file_name`, zstd-compressed.
    pub fn put_tar(&self, file_name: &str, tar: &[u8]) {
        self.put(file_name, &compress(tar, Compression::Zst));
    }

    /// Writes a compressed artifact into the source.
    pub fn artifact(
        &self,
        file_name: &str,
        compression: Compression,
        prefixes: Option<&[&str]>,
        members: &[Member],
    ) {
        write_artifact(&self.src.join(file_name), compression, prefixes, members)
            .expect("write artifact");
    }

    /// `zzbad_lib_generic.tar.zst` holding `tar`.
    pub fn bad_tar(&self, tar: &[u8]) {
        self.put_tar(BAD, tar);
    }

    /// `zzbad_lib_generic.tar.zst` with `members` under a manifest of
    /// `prefixes` (None: no manifest member at all).
    pub fn bad(&self, prefixes: Option<&[&str]>, members: &[Member]) {
        self.bad_tar(&raw_tar(prefixes, members));
    }

    /// `rockpack pack --source SRC --families gfx94X-dcgpu --multiarch never
    /// --dest DEST` plus `extra`, for the case `case`. (The run is
    /// kpack-split, so `auto` would add a multiarch tarball of the same
    /// artifacts; one tarball is all these cases need.)
    pub fn pack(&self, case: &str, extra: &[&str]) -> Outcome {
        run(case, &self.pack_args(extra), self.tmp.path(), &self.dest)
    }

    /// `pack`, with the peak memory of rockpack measured.
    pub fn pack_measured(&self, case: &str, extra: &[&str]) -> Outcome {
        run_measured(case, &self.pack_args(extra), self.tmp.path(), &self.dest)
    }

    /// `rockpack pack --source SRC` plus `args` (no default family or dest).
    pub fn pack_raw(&self, case: &str, args: &[&str]) -> Outcome {
        run(case, &self.raw_args(args), self.tmp.path(), &self.dest)
    }

    fn pack_args(&self, extra: &[&str]) -> Vec<String> {
        let dest = self.dest.display().to_string();
        self.raw_args(
            &[
                &[
                    "--families",
                    FAMILY,
                    "--multiarch",
                    "never",
                    "--dest",
                    &dest,
                ][..],
                extra,
            ]
            .concat(),
        )
    }

    fn raw_args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = vec![
            "pack".into(),
            "--source".into(),
            self.src.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        all
    }
}

/// What one run of the binary did.
pub struct Outcome {
    pub case: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Every file under DEST (relative paths), sorted; empty when DEST is absent.
    pub outputs: Vec<String>,
    pub elapsed: Duration,
    /// Peak resident set of the child, where the platform reports it.
    pub max_rss_kib: Option<u64>,
}

/// Runs the binary (see `super::output_within`) until `DEADLINE`; on
/// timeout it is killed and the test fails.
fn run(case: &str, args: &[String], cwd: &Path, dest: &Path) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rockpack"));
    cmd.args(args);
    run_program(case, cmd, cwd, dest, DEADLINE)
}

/// As `run`, with the child's peak resident set measured. The binary is
/// started by a small Python launcher (python3 is already a test
/// dependency) that reads its `ru_maxrss` from `wait4`: measured from this
/// process, the value would include the RSS of the test process that
/// spawned it, which Linux carries over across `exec`.
fn run_measured(case: &str, args: &[String], cwd: &Path, dest: &Path) -> Outcome {
    const LAUNCHER: &str = r#"
import os, signal, sys, time
report, seconds, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
deadline = time.monotonic() + seconds
pid = os.posix_spawn(argv[0], argv, os.environ)
while True:
    got, status, usage = os.wait4(pid, os.WNOHANG)
    if got:
        break
    if time.monotonic() > deadline:
        os.kill(pid, signal.SIGKILL)
        got, status, usage = os.wait4(pid, 0)
        with open(report, "w") as f:
            f.write("timeout\n")
        sys.exit(125)
    time.sleep(0.005)
with open(report, "w") as f:
    f.write(f"{usage.ru_maxrss} {status}\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"#;
    let report = cwd.join(format!("rusage-{}", std::process::id()));
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        LAUNCHER,
        &report.display().to_string(),
        &DEADLINE.as_secs().to_string(),
        env!("CARGO_BIN_EXE_rockpack"),
    ])
    .args(args);
    // The launcher enforces DEADLINE itself; this one is a backstop.
    let mut out = run_program(case, cmd, cwd, dest, DEADLINE + Duration::from_secs(10));
    let text = fs::read_to_string(&report).unwrap_or_default();
    assert_ne!(
        text.trim(),
        "timeout",
        "case {case}: rockpack did not finish within {DEADLINE:?} (killed); stderr so far:\n{}",
        out.stderr
    );
    let mut words = text.split_whitespace();
    let rss: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "case {case}: launcher report {text:?}; stderr:\n{}",
                out.stderr
            )
        });
    let raw: i32 = words
        .next()
        .and_then(|w| w.parse().ok())
        .expect("wait status");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        out.status = ExitStatus::from_raw(raw);
    }
    #[cfg(not(unix))]
    let _ = raw;
    out.max_rss_kib = Some(rss);
    let _ = fs::remove_file(&report);
    out
}

fn run_program(
    case: &str,
    mut cmd: Command,
    cwd: &Path,
    dest: &Path,
    deadline: Duration,
) -> Outcome {
    cmd.current_dir(cwd)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("ROCKPACK_LOG");
    let started = Instant::now();
    let out = super::output_within(&mut cmd, deadline).unwrap_or_else(|stderr| {
        panic!(
            "case {case}: rockpack did not finish within {deadline:?} (killed); stderr so far:\n{stderr}"
        )
    });
    Outcome {
        case: case.to_string(),
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: list_files(dest),
        elapsed: started.elapsed(),
        max_rss_kib: None,
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
    /// Fails unless the child exited normally (no signal, no panic).
    pub fn assert_no_crash(&self) {
        assert!(
            self.status.code().is_some(),
            "case {}: rockpack was killed ({:?}); stderr:\n{}",
            self.case,
            self.status,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "case {}: rockpack panicked (exit {:?}); stderr:\n{}",
            self.case,
            self.status.code(),
            self.stderr
        );
    }

    /// The single `rockpack: error:` line.
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("rockpack: error:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "case {}: expected exactly one 'rockpack: error:' line (exit {:?}); stderr:\n{}",
            self.case,
            self.status.code(),
            self.stderr
        );
        lines[0]
    }

    /// Exit code `code`, one error line containing every needle, and no
    /// output (final-named or partial) in DEST.
    pub fn assert_failed(&self, code: i32, needles: &[&str]) {
        self.assert_no_crash();
        assert_eq!(
            self.status.code(),
            Some(code),
            "case {}: exit code {:?} (expected {code}); outputs {:?}; stderr:\n{}",
            self.case,
            self.status.code(),
            self.outputs,
            self.stderr
        );
        let line = self.error_line();
        eprintln!(
            "case {} ({:.2?}{}): {line}",
            self.case,
            self.elapsed,
            self.rss_note()
        );
        for n in needles {
            assert!(
                line.contains(n),
                "case {}: error line lacks {n:?}:\n{line}\nfull stderr:\n{}",
                self.case,
                self.stderr
            );
        }
        assert!(
            self.outputs.is_empty(),
            "case {}: a failed run left files in DEST (it should be absent or empty): {:?}",
            self.case,
            self.outputs
        );
    }

    /// Exit 0, no error line, and exactly the gfx94X-dcgpu tarball and its
    /// sidecar in DEST.
    pub fn assert_ok(&self) {
        self.assert_no_crash();
        assert_eq!(
            self.status.code(),
            Some(0),
            "case {}: expected success; stderr:\n{}",
            self.case,
            self.stderr
        );
        assert!(
            !self.stderr.contains("rockpack: error:"),
            "case {}: stderr:\n{}",
            self.case,
            self.stderr
        );
        assert_eq!(
            self.outputs,
            vec![TARBALL.to_string(), format!("{TARBALL}.sha256sum")],
            "case {}: stderr:\n{}",
            self.case,
            self.stderr
        );
        eprintln!(
            "case {} ({:.2?}{}): ok",
            self.case,
            self.elapsed,
            self.rss_note()
        );
    }

    fn rss_note(&self) -> String {
        match self.max_rss_kib {
            Some(kib) => format!(", peak RSS {kib} KiB"),
            None => String::new(),
        }
    }

    /// Peak resident memory stayed under `MEMORY_BOUND_KIB`.
    pub fn assert_memory_bounded(&self) {
        let kib = self.max_rss_kib.expect("run with pack_measured");
        assert!(
            kib < MEMORY_BOUND_KIB,
            "case {}: peak RSS {kib} KiB exceeds {MEMORY_BOUND_KIB} KiB",
            self.case
        );
    }
}

// --- Broken artifacts -----------------------------------------------------------

/// `format!("{:?}")` of a member path, as the error message quotes it.
pub fn quoted(path: &str) -> String {
    format!("{path:?}")
}

/// Deterministic, moderately compressible text (so compressed streams have
/// some length to cut or corrupt).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
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
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// `PREFIX/rel`.
pub fn at(rel: &str) -> String {
    format!("{PREFIX}/{rel}")
}

/// Members of a well-formed artifact under `PREFIX`, with enough data that
/// most of the compressed stream is file content.
pub fn good_members() -> Vec<Member> {
    vec![
        Member::dir(at("lib")),
        Member::file(at("lib/small.txt"), b"small\n".to_vec()),
        Member::file(at("lib/big-a.dat"), noise(200_000, 1)),
        Member::file(at("lib/big-b.dat"), noise(200_000, 2)),
        Member::file(at("lib/tail.txt"), b"tail\n".to_vec()),
    ]
}

/// `good_members` with `extra` inserted after the `lib` directory.
pub fn with_hostile(extra: Vec<Member>) -> Vec<Member> {
    let mut members = good_members();
    for (i, m) in extra.into_iter().enumerate() {
        members.insert(1 + i, m);
    }
    members
}

/// Packs a run whose `zzbad_lib_generic.tar.zst` holds `members` under
/// `PREFIX` and expects exit 1 with `needles` (the artifact name is always
/// one).
pub fn rejects_members(case: &str, members: &[Member], needles: &[&str]) {
    rejects_tar(case, &raw_tar(Some(&[PREFIX]), members), needles);
}

/// As `rejects_members`, for raw uncompressed tar bytes.
pub fn rejects_tar(case: &str, tar: &[u8], needles: &[&str]) {
    rejects_file(case, BAD, &compress(tar, Compression::Zst), needles);
}

/// Packs a run with `bytes` added as the artifact `file_name` and expects
/// exit 1 with `needles` (the file name is always one).
pub fn rejects_file(case: &str, file_name: &str, bytes: &[u8], needles: &[&str]) -> Outcome {
    let f = Fixture::new(false);
    f.put(file_name, bytes);
    let r = f.pack(case, &[]);
    r.assert_failed(1, &[&[file_name], needles].concat());
    r
}

/// A run with sidecars whose `zzbad_lib_generic.tar.zst` is good but has
/// `sidecar` as its `.sha256sum`; expects exit 1 with `needles` (the
/// artifact name is always one).
pub fn bad_sidecar(case: &str, sidecar: &[u8], needles: &[&str]) {
    let f = Fixture::new(true);
    f.bad(Some(&[PREFIX]), &good_members());
    f.put(&format!("{BAD}.sha256sum"), sidecar);
    f.pack(case, &[])
        .assert_failed(1, &[&[BAD], needles].concat());
}

/// The tar of `good_members` under `PREFIX`, zstd-compressed and cut in
/// half.
pub fn zstd_cut_in_half() -> Vec<u8> {
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let zst = compress(&tar, Compression::Zst);
    assert!(zst.len() > 4096, "compressed size {}", zst.len());
    zst[..zst.len() / 2].to_vec()
}

/// The tar of `good_members` under `PREFIX`, xz-compressed, with 16 bytes
/// in the middle flipped.
pub fn xz_with_flipped_bytes() -> Vec<u8> {
    let tar = raw_tar(Some(&[PREFIX]), &good_members());
    let mut xz = compress(&tar, Compression::Xz);
    assert!(xz.len() > 4096, "compressed size {}", xz.len());
    let mid = xz.len() / 2;
    for b in &mut xz[mid..mid + 16] {
        *b ^= 0xA5;
    }
    xz
}

// --- Tar header patches -----------------------------------------------------------

/// Rewrites a ustar header's checksum (bytes 148..156: the sum of all
/// header bytes with the field counted as spaces, as six octal digits, NUL,
/// space).
pub fn set_checksum(block: &mut [u8]) {
    assert_eq!(block.len(), 512);
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Rewrites a ustar header's type flag and checksum.
pub fn retype(block: &mut [u8], typeflag: u8) {
    assert_eq!(block.len(), 512);
    block[156] = typeflag;
    set_checksum(block);
}

/// Offset of the ustar header (not a PAX `x` header) whose name field is `name`.
pub fn header_offset(tar: &[u8], name: &str) -> usize {
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
