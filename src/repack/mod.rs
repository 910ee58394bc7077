//! Decode an artifact, apply the flattening rules and write its entries as
//! tar blocks: the uncompressed side of a segment.

pub mod conflict;
pub mod decode;
pub mod flatten;
mod piece;
mod tar_header;
pub mod tar_reader;
pub mod tarfmt;

use std::io::{BufRead, Read};
use std::sync::Arc;

pub use conflict::ConflictPolicy;
pub use piece::{BlockOut, Mask, PieceWriter};

use crate::error::{Error, Result};
use crate::plan::exclude::ExcludePaths;
use crate::plan::Format;
use crate::units::exact_bytes;
use conflict::{path_key, ConflictTable, Fingerprint, PathSet};
use flatten::{
    check_relative, check_symlink_target, kind_of, output_mode, Manifest, MANIFEST_NAME,
    MAX_MANIFEST,
};
use tar_reader::{TarError, TarReader};
use tarfmt::{Header, Kind};

/// Files that share a path with an earlier artifact are buffered up to this
/// size (by default) so their content can be compared before their header
/// is written.
pub const COMPARE_BUFFER: u64 = 32 << 20;

/// Reads an artifact's first member, which must be the regular file
/// `artifact_manifest.txt` of at most [`MAX_MANIFEST`] bytes, and parses
/// it. The one reader of artifact manifests: repacking and the run's kpack
/// detection (which peeks into `base_lib_generic`) refuse the same inputs.
pub fn read_manifest<R: Read>(tar: &mut TarReader<R>, artifact: &str) -> Result<Manifest> {
    let m = tar
        .next_member()
        .map_err(|e| e.into_error(artifact))?
        .ok_or_else(|| {
            Error::artifact(
                artifact,
                None,
                "empty archive: artifact_manifest.txt missing",
            )
        })?;
    if m.path != MANIFEST_NAME || kind_of(&m) != Ok(Kind::File) {
        return Err(Error::artifact(
            artifact,
            Some(&m.path),
            "the first member must be the regular file artifact_manifest.txt",
        ));
    }
    let text = read_small_member(tar, artifact, &m, MAX_MANIFEST)?;
    Manifest::parse(&text).map_err(|e| Error::artifact(artifact, Some(MANIFEST_NAME), e))
}

/// The data of `m`, the member just read, whole; one of more than `limit`
/// bytes is refused (a small file a crafted archive could make huge).
pub fn read_small_member<R: Read>(
    tar: &mut TarReader<R>,
    artifact: &str,
    m: &tar_reader::Member,
    limit: u64,
) -> Result<Vec<u8>> {
    if m.size > limit {
        let file = m.path.rsplit(|&b| b == b'/').next().unwrap_or(&m.path);
        return Err(Error::artifact(
            artifact,
            Some(&m.path),
            format!(
                "{} is {} bytes, over the {} limit",
                String::from_utf8_lossy(file),
                m.size,
                exact_bytes(limit)
            ),
        ));
    }
    let mut data = vec![0u8; m.size as usize];
    read_data(tar, artifact, &mut data)?;
    Ok(data)
}

/// Fills `dst` from the current member's data.
fn read_data<R: Read>(tar: &mut TarReader<R>, artifact: &str, mut dst: &mut [u8]) -> Result<()> {
    while !dst.is_empty() {
        let n = tar.read_data(dst).map_err(|e| e.into_error(artifact))?;
        dst = &mut dst[n..];
    }
    Ok(())
}

/// State that lives across the artifacts of one run.
pub struct Repacker {
    pub(crate) conflicts: ConflictTable,
    /// For each artifact, the tarballs that contain it.
    containing: Vec<Mask>,
    /// Each tarball's format: which lane of the piece writer it reads.
    formats: Vec<Format>,
    /// The tarballs' `exclude-paths`, when any has some.
    exclusions: Option<Exclusions>,
    mtime_clamp: Option<i64>,
    policy: ConflictPolicy,
    compare_buffer: u64,
}

/// What repacking one artifact did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArtifactStats {
    /// Members after `artifact_manifest.txt`, prefix directories (not
    /// stored) included.
    pub members: u64,
    /// Bytes of regular-file data read, copies no tarball needed included.
    pub data_bytes: u64,
}

impl Repacker {
    /// State for a run of `plan`: artifact indices given to
    /// [`Repacker::repack`] are indices into `plan.artifacts`. `mtime_clamp`
    /// (seconds since the epoch) caps every entry's mtime. Fails on an
    /// `exclude-paths` pattern that does not compile.
    pub fn new(
        plan: &crate::plan::Plan,
        policy: ConflictPolicy,
        mtime_clamp: Option<i64>,
    ) -> Result<Self> {
        Ok(Repacker {
            conflicts: ConflictTable::new(plan, policy),
            containing: plan.containing().into_iter().map(Mask::from).collect(),
            formats: plan.tarballs.iter().map(|t| t.format).collect(),
            exclusions: Exclusions::new(plan)?,
            mtime_clamp,
            policy,
            compare_buffer: COMPARE_BUFFER,
        })
    }

    /// Sets how large a shared file may be to be compared before it is
    /// written (larger ones are compared after streaming).
    pub fn with_compare_buffer(mut self, bytes: u64) -> Self {
        self.compare_buffer = bytes;
        self
    }

    /// Reads one decoded artifact and writes its entries to `out`.
    pub fn repack<R: BufRead>(
        &mut self,
        index: usize,
        name: &str,
        input: R,
        out: &mut dyn BlockOut,
    ) -> Result<ArtifactStats> {
        let mut pieces = PieceWriter::new(out, &self.formats);
        let mut run = ArtifactRun {
            rp: self,
            index,
            name,
            tar: TarReader::new(input),
            files: PathSet::default(),
            stats: ArtifactStats::default(),
        };
        run.all(&mut pieces)?;
        pieces.finish()?;
        Ok(run.stats)
    }
}

struct ArtifactRun<'a, R> {
    rp: &'a mut Repacker,
    index: usize,
    name: &'a str,
    tar: TarReader<R>,
    /// Flattened paths (keys) of regular files seen so far: hardlink targets.
    files: PathSet,
    stats: ArtifactStats,
}

impl<R: BufRead> ArtifactRun<'_, R> {
    fn err(&self, member: Option<&[u8]>, msg: impl Into<String>) -> Error {
        Error::artifact(self.name, member, msg)
    }

    fn tar_err(&self, e: TarError) -> Error {
        e.into_error(self.name)
    }

    fn all(&mut self, out: &mut PieceWriter<'_>) -> Result<()> {
        let manifest = self.manifest()?;
        if manifest.is_empty() {
            tracing::debug!(
                artifact = self.name,
                "artifact_manifest.txt lists no prefix: the artifact contributes nothing"
            );
        }
        // Reused for every member: nothing is allocated per entry.
        let mut m = tar_reader::Member::default();
        let mut names = Names::default();
        while self
            .tar
            .next_member_into(&mut m)
            .map_err(|e| self.tar_err(e))?
        {
            self.stats.members += 1;
            self.member(&manifest, &m, &mut names, out)?;
        }
        Ok(())
    }

    fn manifest(&mut self) -> Result<Manifest> {
        read_manifest(&mut self.tar, self.name)
    }

    fn read_exact(&mut self, dst: &mut [u8]) -> Result<()> {
        read_data(&mut self.tar, self.name, dst)
    }

    fn member(
        &mut self,
        manifest: &Manifest,
        m: &tar_reader::Member,
        names: &mut Names,
        out: &mut PieceWriter<'_>,
    ) -> Result<()> {
        let path = m.path.as_slice();
        let kind = kind_of(m).map_err(|e| self.err(Some(path), e))?;
        check_relative(path).map_err(|e| self.err(Some(path), e))?;
        let rel = match manifest.strip(path).map_err(|e| self.err(Some(path), e))? {
            Some(rel) => rel,
            None if kind == Kind::Dir => return Ok(()),
            None => return Err(self.err(Some(path), "a manifest prefix must be a directory")),
        };
        names.path.clear();
        names.path.extend_from_slice(b"./");
        names.path.extend_from_slice(rel);
        if kind == Kind::Dir && !names.path.ends_with(b"/") {
            // As the tar header writes it (saves it a copy).
            names.path.push(b'/');
        }
        let mtime = match self.rp.mtime_clamp {
            Some(c) => m.mtime.min(c),
            None => m.mtime,
        };
        let mut header = Header {
            path: &names.path,
            kind,
            mode: output_mode(m.mode),
            size: m.size,
            mtime,
            link: b"",
            uid: 0,
            gid: 0,
            uname: "root",
            gname: "root",
        };
        let mut tarballs = self.rp.containing[self.index].clone();
        if let Some(ex) = &self.rp.exclusions {
            if let Some(kept) = ex.apply(rel, kind == Kind::Dir, &tarballs) {
                tarballs = kept;
            }
        }
        if let Err((link, artifact)) = self
            .rp
            .conflicts
            .check_ancestors(rel, self.index, &tarballs)
        {
            return Err(self.err(
                Some(path),
                format!(
                    "its path runs through the {link} (from {artifact}); extracting it would write through a link or fail"
                ),
            ));
        }
        let fp = match kind {
            Kind::Dir => Fingerprint::dir(),
            Kind::Symlink => {
                check_symlink_target(rel, &m.link).map_err(|e| self.err(Some(path), e))?;
                header.link = &m.link;
                Fingerprint::link(kind, &m.link)
            }
            Kind::Hardlink => {
                let target = self.hardlink_target(manifest, path, &m.link)?;
                if let Some(ex) = &self.rp.exclusions {
                    if let Some(t) = ex.excluding(target, &tarballs) {
                        return Err(self.err(
                            Some(path),
                            format!(
                                "hardlink ./{} -> ./{}: exclude-paths of {} leaves out the target and not the link",
                                String::from_utf8_lossy(rel),
                                String::from_utf8_lossy(target),
                                self.rp.conflicts.tarball_name(t)
                            ),
                        ));
                    }
                }
                names.link.clear();
                names.link.extend_from_slice(b"./");
                names.link.extend_from_slice(target);
                header.link = &names.link;
                self.files.insert(path_key(rel));
                Fingerprint::link(kind, target)
            }
            Kind::File => {
                self.files.insert(path_key(rel));
                return self.file(rel, &header, &tarballs, out);
            }
        };
        let emit = self.decide(rel, fp, &tarballs)?;
        out.set_mask(emit)?;
        out.header(&header)?;
        Ok(())
    }

    fn decide(&mut self, rel: &[u8], fp: Fingerprint, tarballs: &Mask) -> Result<Mask> {
        let emit = self
            .rp
            .conflicts
            .decide(rel, self.index, fp, tarballs)
            .map_err(Error::Conflict)?;
        // Keep the shared mask (and so the current piece) in the common case.
        Ok(if emit.len() == tarballs.len() {
            tarballs.clone()
        } else {
            Mask(Arc::from(&emit[..]))
        })
    }

    fn hardlink_target<'l>(
        &self,
        manifest: &Manifest,
        path: &[u8],
        link: &'l [u8],
    ) -> Result<&'l [u8]> {
        check_relative(link).map_err(|e| self.err(Some(path), format!("hardlink target: {e}")))?;
        let target = manifest
            .strip(link)
            .map_err(|e| {
                self.err(
                    Some(path),
                    format!("hardlink target {:?}: {e}", String::from_utf8_lossy(link)),
                )
            })?
            .ok_or_else(|| self.err(Some(path), "hardlink to a prefix directory"))?;
        if !self.files.contains(&path_key(target)) {
            return Err(self.err(
                Some(path),
                format!(
                    "hardlink to {:?}, which is not an earlier file of this archive",
                    String::from_utf8_lossy(link)
                ),
            ));
        }
        Ok(target)
    }

    fn file(
        &mut self,
        rel: &[u8],
        header: &Header<'_>,
        tarballs: &Mask,
        out: &mut PieceWriter<'_>,
    ) -> Result<()> {
        let size = header.size;
        self.stats.data_bytes += size;
        let mut hasher = blake3::Hasher::new();
        let seen = self.rp.conflicts.seen_in_any(rel, tarballs);
        if seen && size <= self.rp.compare_buffer {
            // Compare before writing: only tarballs without an identical copy get it.
            let mut data = vec![0u8; size as usize];
            self.read_exact(&mut data)?;
            hasher.update(&data);
            let emit = self.decide(rel, Fingerprint::file(header.mode, hasher), tarballs)?;
            out.set_mask(emit)?;
            out.header(header)?;
            out.data(&data)?;
            return out.pad(size);
        }
        // Stream. Normally no tarball holds the path yet; for an oversized
        // shared file, tarballs that hold it get this copy only when later
        // entries win, and are checked for equality afterwards otherwise.
        let emit = if seen && self.rp.policy == ConflictPolicy::Error {
            let unseen: Vec<usize> = tarballs
                .iter()
                .copied()
                .filter(|&t| !self.rp.conflicts.seen_in_any(rel, &[t]))
                .collect();
            Mask::from(unseen)
        } else {
            tarballs.clone()
        };
        out.set_mask(emit.clone())?;
        out.header(header)?;
        let mut left = size;
        while left > 0 {
            // Straight from the decoded chunk into the block: one copy.
            let data = match self.tar.data_buf() {
                Ok(data) => data,
                Err(e) => return Err(e.into_error(self.name)),
            };
            hasher.update(data);
            out.data(data)?;
            let n = data.len();
            self.tar.consume_data(n);
            left -= n as u64;
        }
        out.pad(size)?;
        let fp = Fingerprint::file(header.mode, hasher);
        let skipped: Vec<usize> = tarballs
            .iter()
            .copied()
            .filter(|t| !emit.contains(t))
            .collect();
        self.rp
            .conflicts
            .verify_skipped(rel, self.index, fp, &skipped)
            .map_err(Error::Conflict)?;
        // Record the version for the tarballs that got it.
        if !emit.is_empty() {
            self.rp
                .conflicts
                .decide(rel, self.index, fp, &emit)
                .map_err(Error::Conflict)?;
        }
        Ok(())
    }
}

/// A member's output path and link target: buffers reused from member to
/// member.
#[derive(Default)]
struct Names {
    path: Vec<u8>,
    link: Vec<u8>,
}

/// Convenience for masks built from plain vectors.
impl From<Vec<usize>> for Mask {
    fn from(v: Vec<usize>) -> Self {
        Mask(Arc::from(v))
    }
}

/// The tarballs' `exclude-paths`: each distinct pattern list compiled once,
/// with the tarballs that use it.
struct Exclusions {
    filters: Vec<(ExcludePaths, Vec<bool>)>,
}

impl Exclusions {
    fn new(plan: &crate::plan::Plan) -> Result<Option<Self>> {
        let mut lists: Vec<(&[String], Vec<bool>)> = Vec::new();
        for (t, tb) in plan.tarballs.iter().enumerate() {
            if tb.exclude_paths.is_empty() {
                continue;
            }
            let i = match lists.iter().position(|(p, _)| *p == &tb.exclude_paths[..]) {
                Some(i) => i,
                None => {
                    lists.push((&tb.exclude_paths, vec![false; plan.tarballs.len()]));
                    lists.len() - 1
                }
            };
            lists[i].1[t] = true;
        }
        if lists.is_empty() {
            return Ok(None);
        }
        let filters = lists
            .into_iter()
            .map(|(patterns, uses)| {
                ExcludePaths::new(patterns)
                    .map(|f| (f, uses))
                    .map_err(Error::Usage)
            })
            .collect::<Result<_>>()?;
        Ok(Some(Exclusions { filters }))
    }

    /// `tarballs` without those that exclude `rel`; `None` when none does
    /// (the common case allocates nothing).
    fn apply(&self, rel: &[u8], is_dir: bool, tarballs: &Mask) -> Option<Mask> {
        let mut kept: Option<Vec<usize>> = None;
        for (filter, uses) in &self.filters {
            if !tarballs.iter().any(|&t| uses[t]) || !filter.excludes(rel, is_dir) {
                continue;
            }
            let k = kept.get_or_insert_with(|| tarballs.to_vec());
            k.retain(|&t| !uses[t]);
        }
        kept.map(Mask::from)
    }

    /// A tarball of `tarballs` that excludes the file `rel`, if any.
    fn excluding(&self, rel: &[u8], tarballs: &Mask) -> Option<usize> {
        self.filters.iter().find_map(|(filter, uses)| {
            let t = tarballs.iter().copied().find(|&t| uses[t])?;
            filter.excludes(rel, false).then_some(t)
        })
    }
}
