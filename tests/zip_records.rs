//! ZIP archives made of `codec::zip`'s records alone (raw deflate from
//! flate2, CRCs from crc32fast), checked by other readers: Python's
//! `zipfile`, Info-ZIP `unzip`, bsdtar and 7-Zip, each skipped when absent.

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use flate2::{Compress, Compression, FlushCompress};
use rockpack::codec::zip::{
    central_directory, data_descriptor, local_header, CentralEntry, EntryMeta, Method,
    END_OF_DEFLATE,
};
use sha2::{Digest, Sha256};

/// An archive written front to back, as the pipeline would.
#[derive(Default)]
struct Archive {
    bytes: Vec<u8>,
    entries: Vec<CentralEntry>,
}

impl Archive {
    fn add(&mut self, meta: EntryMeta, method: Method, data: &[u8]) {
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(&local_header(&meta, method));
        let stored = match method {
            Method::Stored => data.to_vec(),
            Method::Deflated => deflate_blocks(data, 64 << 10),
        };
        let crc = crc32fast::hash(data);
        self.bytes.extend_from_slice(&stored);
        self.bytes.extend_from_slice(&data_descriptor(
            crc,
            stored.len() as u64,
            data.len() as u64,
        ));
        self.entries.push(CentralEntry {
            meta,
            method,
            crc,
            compressed: stored.len() as u64,
            uncompressed: data.len() as u64,
            offset,
        });
    }

    fn finish(mut self) -> Vec<u8> {
        let cd_offset = self.bytes.len() as u64;
        self.bytes
            .extend_from_slice(&central_directory(&self.entries, cd_offset));
        self.bytes
    }
}

/// Raw deflate, pigz-style: each block compressed on its own and
/// sync-flushed, so blocks concatenate; then the final empty block.
fn deflate_blocks(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(block) {
        let mut c = Compress::new(Compression::new(6), false);
        let mut buf = Vec::with_capacity(chunk.len() + 1024);
        loop {
            let done = c.total_in() as usize;
            c.compress_vec(&chunk[done..], &mut buf, FlushCompress::Sync)
                .unwrap();
            // Flushed when all input is in and output space is left over.
            if c.total_in() as usize == chunk.len() && buf.len() < buf.capacity() {
                break;
            }
            buf.reserve(buf.capacity());
        }
        out.extend_from_slice(&buf);
    }
    out.extend_from_slice(&END_OF_DEFLATE);
    out
}

fn meta(name: &str, mode: u32, mtime: u64) -> EntryMeta {
    EntryMeta {
        name: name.to_string(),
        is_dir: name.ends_with('/'),
        mode,
        mtime,
    }
}

/// Bytes no compressor can shrink.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text-like bytes over several deflate blocks.
fn text(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(format!("{i:08} __hip_device_lib rocblas gfx942\n").as_bytes());
        i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 1_000_003;
    }
    out.truncate(n);
    out
}

/// 2024-05-17 12:34:57 UTC: an odd second, which DOS times cannot hold.
const MAY_2024: u64 = 1_715_949_297;
/// 1979-06-01 00:00:00 UTC, before any DOS date.
const BEFORE_DOS: u64 = 296_784_000;

/// What an archive holds: name, mode, mtime, data (None for directories).
type Expected = Vec<(String, u32, u64, Option<Vec<u8>>)>;

fn sample() -> (Vec<u8>, Expected) {
    let mut a = Archive::default();
    let mut want: Expected = Vec::new();
    let mut add = |name: &str, mode: u32, mtime: u64, method: Method, data: Option<Vec<u8>>| {
        a.add(
            meta(name, mode, mtime),
            method,
            data.as_deref().unwrap_or(&[]),
        );
        want.push((name.to_string(), mode, mtime, data));
    };
    add("bin/", 0o755, MAY_2024, Method::Stored, None);
    add(
        "bin/hipcc.bat",
        0o755,
        MAY_2024,
        Method::Deflated,
        Some(b"@echo off\r\nperl \"%~dp0hipcc\" %*\r\n".to_vec()),
    );
    add("lib/", 0o755, BEFORE_DOS, Method::Stored, None);
    add(
        "lib/librocblas.so.4",
        0o644,
        MAY_2024,
        Method::Deflated,
        Some(text(300_000)),
    );
    add(
        "lib/blob.bin",
        0o644,
        BEFORE_DOS,
        Method::Stored,
        Some(noise(100_000)),
    );
    add(
        "lib/empty",
        0o644,
        MAY_2024,
        Method::Deflated,
        Some(Vec::new()),
    );
    add(
        "lib/.keep",
        0o644,
        MAY_2024,
        Method::Stored,
        Some(Vec::new()),
    );
    add("share/", 0o755, MAY_2024, Method::Stored, None);
    add("share/doc/", 0o755, MAY_2024, Method::Stored, None);
    add(
        "share/doc/naïve.txt",
        0o644,
        MAY_2024,
        Method::Deflated,
        Some("naïve café\n".repeat(100).into_bytes()),
    );
    (a.finish(), want)
}

/// Runs `cmd`, or None (said on stderr) when it is not installed.
fn run(cmd: &mut Command) -> Option<Output> {
    match cmd.stdin(Stdio::null()).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!("skipped: {:?} is not installed", cmd.get_program());
            None
        }
        Err(e) => panic!("{:?}: {e}", cmd.get_program()),
    }
}

fn ok_output(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Python's zipfile's view of an archive: per entry name, mode, DOS time,
/// and SHA-256 of the data it reads; `testzip()` must find nothing.
const PYTHON_LIST: &str = r#"
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    print(json.dumps([
        [i.filename, i.external_attr >> 16, list(i.date_time), i.is_dir(),
         hashlib.sha256(z.read(i)).hexdigest(), i.file_size]
        for i in z.infolist()
    ]))
"#;

/// `(year, month, day, hour, minute, second)` of `mtime` as the DOS time
/// holds it: clamped to 1980 and rounded down to even seconds.
fn dos_date_time(mtime: u64) -> [u64; 6] {
    match mtime {
        MAY_2024 => [2024, 5, 17, 12, 34, 56],
        BEFORE_DOS => [1980, 1, 1, 0, 0, 0],
        _ => unreachable!("{mtime}"),
    }
}

fn write_archive(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

#[test]
fn python_zipfile_reads_names_modes_times_and_data() {
    let (bytes, want) = sample();
    let tmp = tempfile::tempdir().unwrap();
    let path = write_archive(tmp.path(), "sample.zip", &bytes);
    let Some(out) = run(Command::new("python3")
        .arg("-c")
        .arg(PYTHON_LIST)
        .arg(&path))
    else {
        return;
    };
    let got: Vec<serde_json::Value> =
        serde_json::from_str(&ok_output("python3 zipfile", &out)).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, (name, mode, mtime, data)) in got.iter().zip(&want) {
        assert_eq!(g[0], *name);
        let kind = if data.is_some() { 0o100000 } else { 0o040000 };
        assert_eq!(g[1], kind | mode, "{name}: mode");
        assert_eq!(g[2], serde_json::json!(dos_date_time(*mtime)), "{name}");
        assert_eq!(g[3], data.is_none(), "{name}: is_dir");
        let data = data.as_deref().unwrap_or(&[]);
        assert_eq!(g[4], hex::encode(Sha256::digest(data)), "{name}: data");
        assert_eq!(g[5], data.len(), "{name}: size");
    }
}

#[test]
fn unzip_tests_and_extracts_with_exact_times() {
    let (bytes, want) = sample();
    let tmp = tempfile::tempdir().unwrap();
    let path = write_archive(tmp.path(), "sample.zip", &bytes);
    let Some(out) = run(Command::new("unzip").arg("-t").arg(&path)) else {
        return;
    };
    let listing = ok_output("unzip -t", &out);
    assert!(listing.contains("No errors detected"), "{listing}");
    let dest = tmp.path().join("x");
    let out = run(Command::new("unzip")
        .arg("-q")
        .arg(&path)
        .arg("-d")
        .arg(&dest))
    .unwrap();
    ok_output("unzip", &out);
    use std::os::unix::fs::PermissionsExt;
    for (name, mode, mtime, data) in &want {
        let p = dest.join(name);
        let md = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(md.is_dir(), data.is_none(), "{name}");
        assert_eq!(md.permissions().mode() & 0o7777, *mode, "{name}: mode");
        if let Some(data) = data {
            assert_eq!(&std::fs::read(&p).unwrap(), data, "{name}: data");
        }
        // The extended timestamp keeps the exact time, odd second and
        // 1979 included (unzip sets directories' times too).
        let t = md
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(t, *mtime, "{name}: mtime");
    }
}

#[test]
fn bsdtar_lists_and_streams() {
    let (bytes, want) = sample();
    let tmp = tempfile::tempdir().unwrap();
    let path = write_archive(tmp.path(), "sample.zip", &bytes);
    let Some(out) = run(Command::new("bsdtar").arg("-tvf").arg(&path)) else {
        return;
    };
    let listing = ok_output("bsdtar -tvf", &out);
    for (name, ..) in &want {
        assert!(
            listing
                .lines()
                .any(|l| l.ends_with(&format!(" {}", name.trim_end_matches('/')))
                    || l.ends_with(&format!(" {name}"))),
            "{name} not in\n{listing}"
        );
    }
    // From a pipe, bsdtar reads local headers and descriptors alone.
    let dest = tmp.path().join("x");
    std::fs::create_dir(&dest).unwrap();
    let out = Command::new("bsdtar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(&dest)
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    ok_output("bsdtar -xf - (streaming)", &out);
    for (name, _, _, data) in &want {
        if let Some(data) = data {
            let got = std::fs::read(dest.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&got, data, "{name}: data");
        }
    }
}

/// 7-Zip: `7z` (p7zip) or `7zz` (7-Zip's own build).
fn seven_zip(args: &[&std::ffi::OsStr]) -> Option<Output> {
    for program in ["7z", "7zz"] {
        match Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => return Some(out),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => panic!("{program}: {e}"),
        }
    }
    eprintln!("skipped: neither 7z nor 7zz is installed");
    None
}

fn seven_zip_tests(path: &Path) {
    if let Some(out) = seven_zip(&["t".as_ref(), path.as_os_str()]) {
        let text = ok_output("7z t", &out);
        assert!(text.contains("Everything is Ok"), "{text}");
        assert!(!text.contains("Warning"), "{text}");
    }
}

#[test]
fn seven_zip_tests_the_sample() {
    let (bytes, _) = sample();
    let tmp = tempfile::tempdir().unwrap();
    seven_zip_tests(&write_archive(tmp.path(), "sample.zip", &bytes));
}

/// More entries than the classic end record counts: ZIP64 end records.
#[test]
fn zip64_end_records_for_many_entries() {
    const N: usize = 70_000;
    let mut a = Archive::default();
    a.add(meta("many/", 0o755, MAY_2024), Method::Stored, &[]);
    for i in 1..N {
        a.add(
            meta(&format!("many/{i:05}"), 0o644, MAY_2024),
            Method::Stored,
            &[],
        );
    }
    let bytes = a.finish();
    // The classic record says "see ZIP64" for the count.
    let end = bytes.len() - 22;
    assert_eq!(&bytes[end..end + 4], b"PK\x05\x06");
    assert_eq!(&bytes[end + 8..end + 12], &[0xff; 4]);
    assert_eq!(&bytes[end - 20..end - 16], b"PK\x06\x07");

    let tmp = tempfile::tempdir().unwrap();
    let path = write_archive(tmp.path(), "many.zip", &bytes);
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = z.namelist()
    assert z.testzip() is None
    print(len(names), names[0], names[-1])
"#;
    if let Some(out) = run(Command::new("python3").arg("-c").arg(script).arg(&path)) {
        let text = ok_output("python3 zipfile", &out);
        assert_eq!(text.trim(), format!("{N} many/ many/{:05}", N - 1));
    }
    if let Some(out) = run(Command::new("unzip").arg("-tq").arg(&path)) {
        let text = ok_output("unzip -tq", &out);
        assert!(text.contains("No errors detected"), "{text}");
    }
    if let Some(out) = run(Command::new("bsdtar").arg("-tf").arg(&path)) {
        assert_eq!(ok_output("bsdtar -tf", &out).lines().count(), N);
    }
    seven_zip_tests(&path);
}
