//! ZIP archives (`--format zip`, issue 29): what they hold against the
//! tar.gz of the same tarball (the oracle reads both), checked by the
//! tools a user has (Info-ZIP `unzip`, `bsdtar`, 7-Zip, where installed),
//! the same bytes from run to run and whatever the thread count; and what
//! Windows cannot hold refused, naming the artifact and the member, with
//! nothing written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bad_run::*;
use common::{files_in, rockpack_ok, s, trees};
use rockpack::fixtures::{self, FixtureSpec, Layout, Member};
use sha2::Digest;

const FAMILIES: &str = "gfx110X-all;gfx1151";

/// A Windows kpack run whose largest files are larger than a ZIP block
/// (1 MiB), so that some entries are cut and compressed in parts.
fn windows_run() -> tempfile::TempDir {
    kpack_run(5, true)
}

/// A kpack run of `FAMILIES` with 8 MiB of large-file content, for
/// Windows or Linux.
fn kpack_run(seed: u64, windows: bool) -> tempfile::TempDir {
    let run = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        layout: Layout::Kpack,
        families: FAMILIES.split(';').map(String::from).collect(),
        seed,
        large_bytes: 8 << 20,
        sidecars: true,
        windows,
    };
    fixtures::generate(&spec, run.path()).expect("generate run");
    run
}

fn pack(run: &Path, dest: &Path, extra: &[&str]) {
    let mut args = vec![
        "pack",
        "--source",
        s(run),
        "--families",
        FAMILIES,
        "--platform",
        "windows",
        "--tests",
        "--dest",
        s(dest),
    ];
    args.extend_from_slice(extra);
    rockpack_ok(&args);
}

/// Every file of `again` is the file of that name in `first`.
fn assert_same_files(again: &Path, first: &Path) {
    for z in files_in(again) {
        assert_eq!(
            std::fs::read(again.join(&z)).unwrap(),
            std::fs::read(first.join(&z)).unwrap(),
            "{z} differs between runs"
        );
    }
}

/// Opens `archive` with Info-ZIP, bsdtar and 7-Zip, those installed.
fn check_with_tools(archive: &Path) {
    check_with("unzip", &["-tq"], archive);
    check_with("bsdtar", &["-tf"], archive);
    if !check_with("7z", &["t"], archive) {
        check_with("7zz", &["t"], archive);
    }
}

/// Runs `tool args…` if it is installed: whether it ran.
fn check_with(tool: &str, args: &[&str], archive: &Path) -> bool {
    let Ok(out) = Command::new(tool).args(args).arg(archive).output() else {
        eprintln!("{tool} is not installed: not checked with it");
        return false;
    };
    assert!(
        out.status.success(),
        "{tool} {args:?} {}: {}{}",
        archive.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn zip_archives_hold_the_tar_trees_and_open_everywhere() {
    let run = windows_run();
    let dest = tempfile::tempdir().unwrap();
    pack(run.path(), dest.path(), &["--format", "gz,zip"]);
    let names = files_in(dest.path());
    let zips: Vec<&String> = names.iter().filter(|n| n.ends_with(".zip")).collect();
    // Per family, multiarch, each with its -tests archive; a sidecar each.
    assert_eq!(zips.len(), 6, "{names:?}");
    for z in &zips {
        assert!(names.contains(&format!("{z}.sha256sum")), "{z}: no sidecar");
    }
    let work = tempfile::tempdir().unwrap();
    let mut cut = false;
    for z in zips {
        let zip = dest.path().join(z);
        let gz = dest.path().join(z.replace(".zip", ".tar.gz"));
        let (zj, tj) = (work.path().join("z.json"), work.path().join("t.json"));
        trees(&["zip", "--out", s(&zj), s(&zip)]);
        trees(&["tarball", "--no-root", "--out", s(&tj), s(&gz)]);
        trees(&["compare", s(&zj), s(&tj)]);
        check_with_tools(&zip);
        // A file over a block's 1 MiB: compressed in parts, joined.
        let tar = std::fs::File::open(&gz).unwrap();
        let entries = common::tar_listing::tar_entries(flate2::read::GzDecoder::new(tar));
        cut |= entries.iter().any(|e| e.data.len() > 1 << 20);
    }
    assert!(cut, "no file of the run is larger than a ZIP block");

    // The same bytes again, on one thread.
    let again = tempfile::tempdir().unwrap();
    pack(
        run.path(),
        again.path(),
        &["--format", "zip", "--jobs", "1"],
    );
    assert_same_files(again.path(), dest.path());
}

/// `--level zip=N` sets the ZIP level alone; a ZIP archive is no tarball
/// of a set file's `formats` it does not list.
#[test]
fn zip_level_is_its_own() {
    let run = windows_run();
    let (fast, best) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    pack(
        run.path(),
        fast.path(),
        &["--format", "zip", "--level", "zip=1"],
    );
    pack(
        run.path(),
        best.path(),
        &["--format", "zip", "--level", "zip=9"],
    );
    let size = |d: &Path| -> u64 {
        files_in(d)
            .iter()
            .filter(|n| n.ends_with(".zip"))
            .map(|n| std::fs::metadata(d.join(n)).unwrap().len())
            .sum()
    };
    assert!(size(best.path()) < size(fast.path()));
}

/// Packs `f`'s run (one family, no multiarch) as ZIP for Windows.
fn pack_zip(f: &Fixture, case: &str) -> Outcome {
    pack_windows(f, case, &["--format", "zip"])
}

/// Packs `f`'s run (one family, no multiarch) for Windows, with `extra`.
fn pack_windows(f: &Fixture, case: &str, extra: &[&str]) -> Outcome {
    pack_windows_to(f, case, s(&f.dest), extra)
}

/// [`pack_windows`] to `dest`.
fn pack_windows_to(f: &Fixture, case: &str, dest: &str, extra: &[&str]) -> Outcome {
    let args = [
        &[
            "--families",
            FAMILY,
            "--multiarch",
            "never",
            "--platform",
            "windows",
            "--dest",
            dest,
        ][..],
        extra,
    ]
    .concat();
    f.pack_raw(case, &args)
}

/// Names Windows forbids and two names Windows would take for one are
/// refused before anything is written, naming the artifact and the
/// member.
#[test]
fn zip_refuses_what_windows_cannot_hold() {
    for (case, path, needle) in [
        ("a reserved device name", "bin/aux.h", "AUX"),
        ("a colon", "bin/a:b.txt", ":"),
        ("a trailing dot", "share/notes.", "dot"),
        ("a trailing space", "share/notes ", "space"),
    ] {
        let f = Fixture::windows(false);
        f.bad(
            Some(&[PREFIX]),
            &with_hostile(vec![Member::file(at(path), b"x\n".to_vec())]),
        );
        pack_zip(&f, case).assert_failed(
            1,
            &[
                BAD,
                // The artifact's own member, and the path it would have.
                &quoted(&at(path)),
                &format!("./{path}"),
                "Windows cannot hold",
                needle,
            ],
        );
    }

    // Two spellings of one name, in two artifacts.
    let f = Fixture::windows(false);
    f.bad(
        Some(&[PREFIX]),
        &with_hostile(vec![Member::file(at("bin/HIPINFO.EXE"), b"x\n".to_vec())]),
    );
    pack_zip(&f, "two spellings")
        .assert_failed(1, &[BAD, "bin/HIPINFO.EXE", "differ only in case"]);
}

/// `--on-conflict last-wins`: a path two artifacts hold is one entry of
/// the archive's listing, the later artifact's, as extracting the tar.gz
/// leaves it (the earlier entry's bytes stay in the archive, listed
/// nowhere); the archive still opens everywhere.
#[test]
fn last_wins_lists_one_entry_the_later() {
    let f = Fixture::windows(false);
    // The Windows run's hipinfo, again in a later artifact.
    f.bad(
        Some(&[PREFIX]),
        &with_hostile(vec![Member::file(
            at("bin/hipInfo.exe"),
            b"the later one\n".to_vec(),
        )]),
    );
    let out = pack_windows(
        &f,
        "last wins",
        &["--format", "gz,zip", "--on-conflict", "last-wins"],
    );
    assert!(out.status.success(), "{}", out.stderr);
    let zip = f
        .dest
        .join(out.outputs.iter().find(|n| n.ends_with(".zip")).unwrap());
    let gz = PathBuf::from(zip.display().to_string().replace(".zip", ".tar.gz"));
    // Python's zipfile: no name listed twice, every CRC right, the later
    // content; then the names it lists.
    let listing = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             names = z.namelist()\n\
             assert len(names) == len(set(names)), 'a name listed twice'\n\
             assert z.testzip() is None\n\
             assert z.read('bin/hipInfo.exe') == b'the later one\\n', z.read('bin/hipInfo.exe')\n\
             print('\\n'.join(sorted(names)))",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    // The tar.gz lists both (extracting it leaves the later), the same
    // paths otherwise.
    let tar = std::fs::File::open(&gz).unwrap();
    let mut in_tar: Vec<String> =
        common::tar_listing::tar_entries(flate2::read::GzDecoder::new(tar))
            .into_iter()
            .map(|e| e.path.trim_start_matches("./").to_string())
            .filter(|p| !p.is_empty())
            .collect();
    assert_eq!(in_tar.iter().filter(|p| *p == "bin/hipInfo.exe").count(), 2);
    in_tar.sort();
    in_tar.dedup();
    let in_zip: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(in_zip, in_tar);
    check_with_tools(&zip);
}

/// What a Linux run's archives leave out as ZIP: the examples' paths are
/// longer than Windows takes, and HIP's CMake alias is a link to a
/// directory.
const LINUX_SET: &str = r#"
[[tarball]]
name = "linux-{label}"
each-target = ["gfx110X-all"]
exclude-paths = ["share/rocm-core/examples/**", "lib/cmake/hip-alias"]
formats = ["gz", "zip"]
sidecar = "sha256"

[[tarball]]
name = "linux-{label}"
label = "everything"
union = ["gfx110X-all", "gfx1151"]
exclude-paths = ["share/rocm-core/examples/**", "lib/cmake/hip-alias"]
formats = ["gz", "zip"]
"#;

/// A Linux run's links as ZIP entries: each `.so` chain (a library over a
/// ZIP block among them, its data in several blocks) and each hardlink is
/// the file it leads to, its bytes repeated, not compressed again: every
/// archive's tree is its tar.gz's with the links followed (the oracle has
/// the kernel resolve them), its sidecar is its digest, every tool opens
/// it, and one thread writes the same bytes.
#[test]
fn a_linux_run_stores_each_link_as_its_file() {
    let run = kpack_run(11, false);
    let work = tempfile::tempdir().unwrap();
    let set = work.path().join("set.toml");
    std::fs::write(&set, LINUX_SET).unwrap();
    let pack = |dest: &Path, extra: &[&str]| {
        let mut args = vec![
            "pack",
            "--source",
            s(run.path()),
            "--set",
            s(&set),
            "--dest",
            s(dest),
        ];
        args.extend_from_slice(extra);
        rockpack_ok(&args);
    };
    let dest = tempfile::tempdir().unwrap();
    pack(dest.path(), &[]);
    let names = files_in(dest.path());
    let zips: Vec<&String> = names.iter().filter(|n| n.ends_with(".zip")).collect();
    assert_eq!(zips.len(), 3, "{names:?}");
    let (mut links, mut cut) = (0, false);
    for z in zips {
        let zip = dest.path().join(z);
        let gz = dest.path().join(z.replace(".zip", ".tar.gz"));
        let (zj, tj) = (work.path().join("z.json"), work.path().join("t.json"));
        trees(&["zip", "--out", s(&zj), s(&zip)]);
        trees(&[
            "tarball",
            "--no-root",
            "--follow-links",
            "--out",
            s(&tj),
            s(&gz),
        ]);
        trees(&["compare", s(&zj), s(&tj)]);
        check_with_tools(&zip);
        let tar = std::fs::File::open(&gz).unwrap();
        let entries = common::tar_listing::tar_entries(flate2::read::GzDecoder::new(tar));
        links += entries.iter().filter(|e| e.link.is_some()).count();
        // A link to a library larger than a block.
        cut |= entries.iter().any(|e| {
            e.link.as_ref().is_some_and(|t| {
                let dir = e.path.rsplit_once('/').map_or("", |(d, _)| d);
                entries
                    .iter()
                    .any(|f| f.path == format!("{dir}/{t}") && f.data.len() > 1 << 20)
            })
        });
        let sidecar = dest.path().join(format!("{z}.sha256"));
        if sidecar.exists() {
            let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&zip).unwrap()));
            let text = std::fs::read_to_string(&sidecar).unwrap();
            assert!(text.starts_with(&digest), "{z}: {text}");
        }
    }
    assert!(links > 10, "the run holds {links} links");
    assert!(cut, "no link leads to a file larger than a ZIP block");

    let again = tempfile::tempdir().unwrap();
    pack(again.path(), &["--jobs", "1"]);
    assert_same_files(again.path(), dest.path());
}

/// Standard output cannot give back what it was written: the first link
/// met stops the run, naming its artifact and member, and says where
/// links can go.
#[test]
fn a_link_to_standard_output_is_refused() {
    let f = Fixture::windows(false);
    f.bad(
        Some(&[PREFIX]),
        &with_hostile(vec![Member::symlink(at("lib/alias.txt"), "small.txt")]),
    );
    let zip = ["--format", "zip"];
    pack_windows_to(&f, "to standard output", "-", &zip).assert_failed(
        1,
        &[
            BAD,
            &quoted("./lib/alias.txt"),
            "symlink",
            "not from standard output",
            "into a directory or S3",
        ],
    );
}

/// A link that leads to no file the archive holds is refused, naming the
/// artifact, the member and why; nothing is written. (One that leads out
/// of the tree is refused for every format, as the artifact is read.)
#[test]
fn links_that_lead_to_no_file_are_refused() {
    for (case, link, target, why) in [
        ("to a directory", "lib/alias", ".", "lib is a directory"),
        (
            "to nothing",
            "lib/libgone.so",
            "libgone.so.1",
            "holds nothing at lib/libgone.so.1",
        ),
        ("round a loop", "lib/a", "b", "a loop"),
    ] {
        let f = Fixture::windows(false);
        let mut extra = vec![Member::symlink(at(link), target)];
        if case == "round a loop" {
            extra.push(Member::symlink(at("lib/b"), "a"));
        }
        f.bad(Some(&[PREFIX]), &with_hostile(extra));
        pack_zip(&f, case).assert_failed(1, &[BAD, &quoted(&format!("./{link}")), "symlink", why]);
    }
}
