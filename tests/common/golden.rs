//! The bytes rockpack built one artifact at a time, without tarball sets:
//! SHA-256 of every tarball built on the conformance layouts
//! (tests/data/preset_digests.txt; the file says which build made them),
//! and the cases (layouts and flags) they were built with. Tests rebuild
//! them in other ways (a set file, several artifacts at once) and want
//! these bytes.

use std::collections::BTreeMap;
use std::path::Path;

use super::{files_in, generate};
use rockpack::fixtures::Layout;

/// `name  sha256` of every tarball in `dir`.
pub fn digests(dir: &Path) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    files_in(dir)
        .into_iter()
        .filter(|f| f.ends_with(".tar.gz") || f.ends_with(".tar.zst"))
        .map(|f| {
            let data = std::fs::read(dir.join(&f)).unwrap();
            (f, hex::encode(Sha256::digest(&data)))
        })
        .collect()
}

/// The golden digests, by case.
pub fn golden() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = include_str!("../data/preset_digests.txt");
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (sha, path) = line.split_once("  ").unwrap();
        let (case, file) = path.split_once('/').unwrap();
        out.entry(case.into())
            .or_default()
            .insert(file.into(), sha.into());
    }
    out
}

/// The conformance layouts and flags the golden digests were made with:
/// (case, layout, selection flags, packing flags).
pub const CASES: &[(&str, Layout, &[&str], &[&str])] = &[
    (
        "plain-tests",
        Layout::Plain,
        &["--families", "gfx94X-dcgpu;gfx110X-all", "--tests"],
        &[],
    ),
    (
        "kpack-tests",
        Layout::Kpack,
        &["--families", "gfx94X-dcgpu;gfx110X-all", "--tests"],
        &["--version", "7.1.0"],
    ),
    (
        "kpack-zst",
        Layout::Kpack,
        &["--families", "gfx94X-dcgpu;gfx110X-all", "--tests"],
        &["--format", "zst"],
    ),
    (
        "kpack-per-target",
        Layout::Kpack,
        &[
            "--families",
            "gfx110X-all",
            "--per-target",
            "--targets",
            "gfx942",
            "--multiarch",
            "never",
        ],
        &[],
    ),
    (
        "kpack-lastwins-l9",
        Layout::Kpack,
        &["--families", "gfx94X-dcgpu;gfx110X-all", "--tests"],
        &["--on-conflict", "last-wins", "--level", "9"],
    ),
];

/// The two conformance layouts the cases read, generated once.
pub struct Sources {
    plain: tempfile::TempDir,
    kpack: tempfile::TempDir,
}

impl Sources {
    pub fn generate() -> Sources {
        let families = ["gfx94X-dcgpu", "gfx110X-all"];
        let plain = tempfile::tempdir().unwrap();
        let kpack = tempfile::tempdir().unwrap();
        generate(Layout::Plain, &families, plain.path());
        generate(Layout::Kpack, &families, kpack.path());
        Sources { plain, kpack }
    }

    /// The run of `layout`.
    pub fn of(&self, layout: Layout) -> &Path {
        match layout {
            Layout::Plain => self.plain.path(),
            Layout::Kpack => self.kpack.path(),
        }
    }
}
