//! The conflict table: which paths each tarball already holds, so that a
//! path two artifacts share is written once per tarball, and a path they
//! disagree about is handled by policy.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use super::tarfmt::Kind;

/// What to do when two artifacts of one tarball hold different content at
/// the same path (identical copies and directories are never conflicts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ConflictPolicy {
    /// Stop the run, naming the path and both artifacts.
    Error,
    /// Write the later entry too; extraction keeps the last one.
    LastWins,
}

/// Identity of an entry's content: kind, mode and a digest of the data or
/// link target. Directories all compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    kind: Kind,
    digest: [u8; 16],
}

impl Fingerprint {
    pub fn dir() -> Self {
        Fingerprint {
            kind: Kind::Dir,
            digest: [0; 16],
        }
    }

    /// A directory no entry describes, only the paths below it.
    fn implied_dir() -> Self {
        Fingerprint {
            kind: Kind::Dir,
            digest: [1; 16],
        }
    }

    pub fn link(kind: Kind, target: &[u8]) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(target);
        Self::from_hasher(kind, 0, h)
    }

    /// For a regular file: `hasher` has seen its content. BLAKE3: content
    /// is hashed at 2.5x the speed of SHA-256 (with SHA-NI), and stays
    /// collision-resistant, so an artifact cannot pass a different file off
    /// as a copy.
    pub fn file(mode: u32, hasher: blake3::Hasher) -> Self {
        Self::from_hasher(Kind::File, mode, hasher)
    }

    fn from_hasher(kind: Kind, mode: u32, mut h: blake3::Hasher) -> Self {
        h.update(&mode.to_le_bytes());
        let mut digest = [0; 16];
        digest.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Fingerprint { kind, digest }
    }
}

#[derive(Clone, Copy)]
struct Version {
    artifact: u32,
    fp: Fingerprint,
}

/// A path's key in the table: the first 128 bits of its SHA-256. Keeping
/// digests instead of paths holds memory to about 60 bytes a path (the
/// table lives for the whole run); a cryptographic digest keeps artifacts
/// from choosing paths that collide.
pub(crate) type PathKey = u128;

/// A set of paths, by key.
pub(crate) type PathSet = HashSet<PathKey, BuildHasherDefault<KeyHasher>>;

pub(crate) fn path_key(path: &[u8]) -> PathKey {
    let digest = Sha256::digest(path);
    u128::from_le_bytes(digest[..16].try_into().expect("16 of 32 bytes"))
}

/// Keys are already uniform: hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

/// Most paths have one version: kept inline.
type Versions = SmallVec<[Version; 1]>;

/// For each path (by key), the versions artifacts wrote and which tarballs
/// hold them: decides per tarball whether an entry is written, skipped as
/// a copy, or a conflict. Lives for the whole run.
pub(crate) struct ConflictTable {
    paths: HashMap<PathKey, Versions, BuildHasherDefault<KeyHasher>>,
    /// membership[tarball][artifact]
    membership: Vec<Vec<bool>>,
    artifact_names: Vec<String>,
    tarball_names: Vec<String>,
    policy: ConflictPolicy,
}

impl ConflictTable {
    pub fn new(plan: &crate::plan::Plan, policy: ConflictPolicy) -> Self {
        let membership = plan
            .tarballs
            .iter()
            .map(|t| {
                let mut m = vec![false; plan.artifacts.len()];
                for &a in &t.artifacts {
                    m[a] = true;
                }
                m
            })
            .collect();
        ConflictTable {
            paths: HashMap::default(),
            membership,
            artifact_names: plan.artifacts.iter().map(|a| a.name.file_name()).collect(),
            tarball_names: plan.tarballs.iter().map(|t| t.file_name.clone()).collect(),
            policy,
        }
    }

    /// Whether any of `tarballs` already holds `path`; only then does a
    /// file's content need hashing before its header is written.
    pub fn seen_in_any(&self, path: &[u8], tarballs: &[usize]) -> bool {
        self.paths
            .get(&path_key(path))
            .is_some_and(|vs| tarballs.iter().any(|&t| self.current(vs, t).is_some()))
    }

    /// The version `tarball` holds: the last one written into it, where an
    /// entry that describes the path wins over a directory it only implied.
    fn current<'a>(&self, versions: &'a [Version], tarball: usize) -> Option<&'a Version> {
        let mut held = versions
            .iter()
            .rev()
            .filter(|v| self.membership[tarball][v.artifact as usize]);
        let last = held.clone().next()?;
        Some(
            held.find(|v| v.fp != Fingerprint::implied_dir())
                .unwrap_or(last),
        )
    }

    /// The subset of `tarballs` (those containing `artifact`) that must get
    /// this entry, or a conflict message.
    pub fn decide(
        &mut self,
        path: &[u8],
        artifact: usize,
        fp: Fingerprint,
        tarballs: &[usize],
    ) -> Result<SmallVec<[usize; 16]>, String> {
        let mut emit = SmallVec::new();
        let key = path_key(path);
        if let Some(versions) = self.paths.get(&key) {
            for &t in tarballs {
                match self.current(versions, t) {
                    None => emit.push(t),
                    Some(v) if v.fp == fp => {}
                    // Directories merge; an entry for a directory that was
                    // only implied so far is written, for its mode.
                    Some(v) if v.fp.kind == Kind::Dir && fp.kind == Kind::Dir => {
                        if v.fp == Fingerprint::implied_dir() {
                            emit.push(t);
                        }
                    }
                    // A change of kind is refused under any policy: GNU tar
                    // and Python's tarfile disagree on what extraction gives.
                    Some(v) if v.fp.kind != fp.kind => {
                        return Err(self.describe(path, v, artifact, fp, t));
                    }
                    Some(v) => match self.policy {
                        ConflictPolicy::LastWins => emit.push(t),
                        ConflictPolicy::Error => {
                            return Err(self.describe(path, v, artifact, fp, t));
                        }
                    },
                }
            }
        } else {
            emit.extend_from_slice(tarballs);
        }
        if !emit.is_empty() {
            self.paths.entry(key).or_default().push(Version {
                artifact: artifact as u32,
                fp,
            });
        }
        Ok(emit)
    }

    /// Checks the ancestors of `path` (written by `artifact` into
    /// `tarballs`), and with `and_self` the path itself: none may be a
    /// symlink any of those tarballs holds, at any version — writing below
    /// it would write through the link when the tarball is extracted.
    /// Ancestors no entry described yet are recorded as implied
    /// directories, so a later symlink or file there conflicts. A file there
    /// blocks it too. On refusal, returns what blocks (kind and path) and the
    /// artifact that wrote it.
    pub fn check_ancestors(
        &mut self,
        path: &[u8],
        and_self: bool,
        artifact: usize,
        tarballs: &[usize],
    ) -> Result<(), (String, String)> {
        let ends = path
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .chain(and_self.then_some(path.len()));
        for i in ends {
            let ancestor = &path[..i];
            let key = path_key(ancestor);
            match self.paths.get(&key) {
                Some(versions) => {
                    // A symlink at any version, or a file as the current one.
                    let blocking = versions.iter().find(|v| {
                        v.fp.kind == Kind::Symlink
                            && tarballs
                                .iter()
                                .any(|&t| self.membership[t][v.artifact as usize])
                    });
                    let blocking = blocking.or_else(|| {
                        tarballs
                            .iter()
                            .filter_map(|&t| self.current(versions, t))
                            .find(|v| v.fp.kind != Kind::Dir)
                    });
                    if let Some(v) = blocking {
                        return Err((
                            format!(
                                "{} {:?}",
                                v.fp.kind.describe(),
                                String::from_utf8_lossy(ancestor)
                            ),
                            self.artifact_names[v.artifact as usize].clone(),
                        ));
                    }
                    if i < path.len()
                        && tarballs
                            .iter()
                            .any(|&t| self.current(versions, t).is_none())
                    {
                        self.record_implied(key, artifact);
                    }
                }
                // The path itself is recorded by its own decision.
                None if i == path.len() => {}
                None => self.record_implied(key, artifact),
            }
        }
        Ok(())
    }

    fn record_implied(&mut self, key: PathKey, artifact: usize) {
        self.paths.entry(key).or_default().push(Version {
            artifact: artifact as u32,
            fp: Fingerprint::implied_dir(),
        });
    }

    /// For a file streamed before its fingerprint was known: check it
    /// against what `tarballs` held (they did not get this copy).
    pub fn verify_skipped(
        &self,
        path: &[u8],
        artifact: usize,
        fp: Fingerprint,
        skipped: &[usize],
    ) -> Result<(), String> {
        if let Some(versions) = self.paths.get(&path_key(path)) {
            for &t in skipped {
                if let Some(v) = self.current(versions, t) {
                    if v.fp != fp {
                        return Err(self.describe(path, v, artifact, fp, t));
                    }
                }
            }
        }
        Ok(())
    }

    fn describe(
        &self,
        path: &[u8],
        earlier: &Version,
        artifact: usize,
        fp: Fingerprint,
        tarball: usize,
    ) -> String {
        let what = if earlier.fp.kind != fp.kind {
            format!(
                "as a {} and as a {}",
                earlier.fp.kind.describe(),
                fp.kind.describe()
            )
        } else {
            format!("as {}s with different content or mode", fp.kind.describe())
        };
        format!(
            "conflict in {}: path {:?} is in {} and {} {what}; pass --on-conflict last-wins to keep the later one",
            self.tarball_names[tarball],
            String::from_utf8_lossy(path),
            self.artifact_names[earlier.artifact as usize],
            self.artifact_names[artifact],
        )
    }
}
