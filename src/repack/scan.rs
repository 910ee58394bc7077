//! Reads one artifact's members and turns each into its flattened tar
//! entry, applying every rule that needs nothing but the artifact itself
//! (manifest prefixes, member kinds, link targets, path exclusions, paths
//! Windows cannot hold when a ZIP archive gets them). Which
//! of the artifact's tarballs get an entry depends on earlier artifacts and
//! is decided elsewhere ([`super::decide`]), so artifacts can be scanned
//! side by side, each on its own thread.

use std::io::BufRead;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::conflict::{path_key, Fingerprint, KeyHasher, PathKey, PathSet};
use super::exclusions::Exclusions;
use super::flatten::{check_relative, check_symlink_target, kind_of, Manifest, Metadata};
use super::tar_reader::{self, TarReader};
use super::tarfmt::{self, Kind};
use super::{read_manifest, ArtifactStats, Mask};
use crate::error::{Error, Kind as ErrorKind, Result};
use crate::plan::{windows_names, Format, Plan};

/// What every artifact of a run is scanned against; shared by all threads.
pub(crate) struct Rules {
    /// For each artifact, the tarballs that contain it.
    containing: Vec<Mask>,
    /// The tarballs' `exclude-paths`, when any has some.
    exclusions: Option<Exclusions>,
    /// Tarball file names, for messages.
    tarball_names: Vec<String>,
    /// Which tarballs are ZIP archives: their paths must be ones Windows
    /// can hold.
    zip: Vec<bool>,
    metadata: Metadata,
}

impl Rules {
    pub fn new(plan: &Plan, metadata: Metadata) -> Result<Self> {
        Ok(Rules {
            containing: plan.containing().into_iter().map(Mask::from).collect(),
            exclusions: Exclusions::new(plan)?,
            tarball_names: plan.tarballs.iter().map(|t| t.file_name.clone()).collect(),
            zip: plan
                .tarballs
                .iter()
                .map(|t| t.format == Format::Zip)
                .collect(),
            metadata,
        })
    }
}

/// One entry as the decisions need it: what it is and where it may go.
pub(crate) struct Head<'a> {
    /// The member's path in the archive, for messages.
    pub member: &'a [u8],
    /// Its flattened path, without `./`.
    pub rel: &'a [u8],
    pub kind: Kind,
    /// Data bytes (regular files).
    pub size: u64,
    /// The tarballs that contain the artifact and keep this path.
    pub tarballs: &'a Mask,
    /// The identity of a directory or link, known from its header; a
    /// file's comes with [`Entries::file_end`].
    pub fp: Option<Fingerprint>,
    /// A directory made for `member`, below it, that the archive does not
    /// describe (yet).
    pub made: bool,
}

/// Where a scanned artifact's entries go, in archive order: each entry's
/// head and tar header, then for a regular file its data and padding (in
/// pieces) and its fingerprint.
pub(crate) trait Entries {
    fn head(&mut self, head: &Head<'_>, tar_header: &[u8]) -> Result<()>;
    fn data(&mut self, bytes: &[u8]) -> Result<()>;
    fn file_end(&mut self, fp: Fingerprint) -> Result<()>;
    /// The entry breaks a rule of its own (a link target): `error`, unless
    /// an earlier artifact makes its path an error first (the decisions
    /// check a path's ancestors before anything else).
    fn refused(&mut self, head: &Head<'_>, error: Error) -> Error;
}

/// A member's output path and link target: buffers reused from member to
/// member.
#[derive(Default)]
struct Names {
    path: Vec<u8>,
    link: Vec<u8>,
}

impl Names {
    /// Sets `path` to `rel` as the output writes it: `./` in front, and a
    /// trailing `/` for a directory (as the tar header writes it: saves it
    /// a copy).
    fn output_path(&mut self, rel: &[u8], dir: bool) {
        self.path.clear();
        self.path.extend_from_slice(b"./");
        self.path.extend_from_slice(rel);
        if dir && !self.path.ends_with(b"/") {
            self.path.push(b'/');
        }
    }
}

/// Reads one artifact member by member.
pub(crate) struct Scanner<'a, R> {
    rules: &'a Rules,
    index: usize,
    name: &'a str,
    tar: TarReader<R>,
    manifest: Manifest,
    /// Flattened paths (keys) of regular files seen so far: hardlink targets.
    files: PathSet,
    /// The directories written so far (described, or made for a member
    /// below them), by key, with the tarballs they went to.
    dirs: HashMap<PathKey, Mask, BuildHasherDefault<KeyHasher>>,
    /// The last member's parent directory and tarballs, known written: most
    /// members share them, and skip the look-ups.
    parent: (Vec<u8>, Option<Mask>),
    stats: ArtifactStats,
    // Reused for every member: nothing is allocated per entry.
    member: tar_reader::Member,
    names: Names,
    header: Vec<u8>,
}

impl<'a, R: BufRead> Scanner<'a, R> {
    /// Reads the artifact's manifest (its first member).
    pub fn start(rules: &'a Rules, index: usize, name: &'a str, input: R) -> Result<Self> {
        let mut tar = TarReader::new(input);
        let manifest = read_manifest(&mut tar, name)?;
        if manifest.is_empty() {
            tracing::debug!(
                artifact = name,
                "artifact_manifest.txt lists no prefix: the artifact contributes nothing"
            );
        }
        Ok(Scanner {
            rules,
            index,
            name,
            tar,
            manifest,
            files: PathSet::default(),
            dirs: HashMap::default(),
            parent: (Vec::new(), None),
            stats: ArtifactStats::default(),
            member: tar_reader::Member::default(),
            names: Names::default(),
            header: Vec::with_capacity(2048),
        })
    }

    /// What was read so far.
    pub fn stats(&self) -> ArtifactStats {
        self.stats
    }

    fn err(&self, member: Option<&[u8]>, msg: impl Into<String>) -> Error {
        Error::artifact(self.name, member, msg)
    }

    /// Reads the next member into `out`; false after the last one.
    pub fn next(&mut self, out: &mut dyn Entries) -> Result<bool> {
        let mut m = std::mem::take(&mut self.member);
        let more = self
            .tar
            .next_member_into(&mut m)
            .map_err(|e| e.into_error(self.name));
        let r = match more {
            Ok(true) => {
                self.stats.members += 1;
                self.entry(&m, out).map(|()| true)
            }
            other => other,
        };
        self.member = m;
        r
    }

    fn entry(&mut self, m: &tar_reader::Member, out: &mut dyn Entries) -> Result<()> {
        let path = m.path.as_slice();
        let kind = kind_of(m).map_err(|e| self.err(Some(path), e))?;
        check_relative(path).map_err(|e| self.err(Some(path), e))?;
        let rel = match self
            .manifest
            .strip(path)
            .map_err(|e| self.err(Some(path), e))?
        {
            Some(rel) => rel,
            None if kind == Kind::Dir => return Ok(()),
            None => return Err(self.err(Some(path), "a manifest prefix must be a directory")),
        };
        let mut names = std::mem::take(&mut self.names);
        let r = self.flattened(m, rel, kind, &mut names, out);
        self.names = names;
        r
    }

    fn flattened(
        &mut self,
        m: &tar_reader::Member,
        rel: &[u8],
        kind: Kind,
        names: &mut Names,
        out: &mut dyn Entries,
    ) -> Result<()> {
        let path = m.path.as_slice();
        let kept = self.kept(rel, kind == Kind::Dir);
        let tarballs = kept.as_ref().unwrap_or(&self.rules.containing[self.index]);
        self.made_dirs(m, rel, tarballs, names, out)?;
        if kind == Kind::Dir {
            self.written_dir(rel, tarballs);
        }
        let head = |fp| Head {
            member: path,
            rel,
            kind,
            size: m.size,
            tarballs,
            fp,
            made: false,
        };
        let fp = match self
            .windows_rules(m, rel, kind, tarballs)
            .and_then(|()| self.link_rules(m, rel, kind, tarballs, &mut names.link))
        {
            Ok(fp) => fp,
            Err(e) => return Err(out.refused(&head(None), e)),
        };
        names.output_path(rel, kind == Kind::Dir);
        let link: &[u8] = match kind {
            Kind::Symlink => &m.link,
            Kind::Hardlink => &names.link,
            _ => b"",
        };
        let header = self
            .rules
            .metadata
            .header(&names.path, kind, m.mode, m.size, m.mtime, link);
        self.header.clear();
        tarfmt::write_header(&mut self.header, &header, &[]);
        out.head(&head(fp), &self.header)?;
        if kind == Kind::File {
            let fp = self.file_data(header.mode, m.size, out)?;
            out.file_end(fp)?;
        }
        Ok(())
    }

    /// The tarballs that keep `rel` when its exclusions leave out some of
    /// the artifact's (`None`: all of them).
    fn kept(&self, rel: &[u8], dir: bool) -> Option<Mask> {
        self.kept_of(rel, dir, &self.rules.containing[self.index])
    }

    /// `tarballs` less those whose exclusions leave out `rel`.
    fn kept_of(&self, rel: &[u8], dir: bool, tarballs: &Mask) -> Option<Mask> {
        self.rules
            .exclusions
            .as_ref()
            .and_then(|ex| ex.apply(rel, dir, tarballs))
    }

    /// Notes that directory `dir` went to `tarballs`; returns whether
    /// that adds any.
    fn written_dir(&mut self, dir: &[u8], tarballs: &Mask) -> bool {
        match self.dirs.entry(path_key(dir)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(tarballs.clone());
                true
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let had = o.get();
                if *had == *tarballs || tarballs.iter().all(|t| had.contains(t)) {
                    return false;
                }
                let mut all: Vec<usize> = had.iter().chain(tarballs.iter()).copied().collect();
                all.sort_unstable();
                all.dedup();
                o.insert(Mask::from(all));
                true
            }
        }
    }

    /// Writes a directory entry, just before `m` (which goes to
    /// `tarballs`), for each parent of `rel` (outermost first) that this
    /// artifact has not written to those tarballs: TheRock's flatten
    /// creates them on disk, so its tarball holds them. A made directory
    /// goes where the member goes and an entry of the archive's own for it
    /// would go; it is the same as such an entry, so one the archive has
    /// later is a copy.
    fn made_dirs(
        &mut self,
        m: &tar_reader::Member,
        rel: &[u8],
        tarballs: &Mask,
        names: &mut Names,
        out: &mut dyn Entries,
    ) -> Result<()> {
        let Some(end) = rel.iter().rposition(|&b| b == b'/') else {
            return Ok(());
        };
        if tarballs.is_empty()
            || (rel[..end] == self.parent.0[..] && self.parent.1.as_ref() == Some(tarballs))
        {
            return Ok(());
        }
        let meta = self.rules.metadata;
        for (i, &b) in rel.iter().enumerate().take(end + 1) {
            if b != b'/' {
                continue;
            }
            let dir = &rel[..i];
            let kept = self.kept_of(dir, true, tarballs);
            let to = kept.as_ref().unwrap_or(tarballs);
            if to.is_empty() || !self.written_dir(dir, to) {
                continue;
            }
            names.output_path(dir, true);
            self.header.clear();
            let header = meta.made_dir(&names.path, m.mtime);
            tarfmt::write_header(&mut self.header, &header, &[]);
            let head = Head {
                member: &m.path,
                rel: dir,
                kind: Kind::Dir,
                size: 0,
                tarballs: to,
                fp: Some(Fingerprint::dir()),
                made: true,
            };
            out.head(&head, &self.header)?;
        }
        self.parent.0.clear();
        self.parent.0.extend_from_slice(&rel[..end]);
        self.parent.1 = Some(tarballs.clone());
        Ok(())
    }

    /// A path going into a ZIP archive must be one Windows can hold (the
    /// directories made for it are its folders, checked with it).
    fn windows_rules(
        &self,
        m: &tar_reader::Member,
        rel: &[u8],
        kind: Kind,
        tarballs: &Mask,
    ) -> Result<()> {
        if !tarballs.iter().any(|&t| self.rules.zip[t]) {
            return Ok(());
        }
        let mut path = String::from_utf8_lossy(rel).into_owned();
        if kind == Kind::Dir {
            path.push('/');
        }
        match windows_names::refusal(&path) {
            None => Ok(()),
            Some(why) => Err(Error::artifact_kind(
                ErrorKind::Conflict,
                self.name,
                Some(&m.path),
                format!("Windows cannot hold ./{path} in a ZIP archive: {why}"),
            )),
        }
    }

    /// The identity of a directory or link (`None` for a file), after the
    /// checks of its target; records files as hardlink targets.
    fn link_rules(
        &mut self,
        m: &tar_reader::Member,
        rel: &[u8],
        kind: Kind,
        tarballs: &Mask,
        link: &mut Vec<u8>,
    ) -> Result<Option<Fingerprint>> {
        let path = m.path.as_slice();
        Ok(match kind {
            Kind::Dir => Some(Fingerprint::dir()),
            Kind::Symlink => {
                check_symlink_target(rel, &m.link).map_err(|e| self.err(Some(path), e))?;
                Some(Fingerprint::link(kind, &m.link))
            }
            Kind::Hardlink => {
                let target = self.hardlink_target(path, &m.link)?;
                if let Some(ex) = &self.rules.exclusions {
                    if let Some(t) = ex.excluding(target, tarballs) {
                        return Err(self.err(
                            Some(path),
                            format!(
                                "hardlink ./{} -> ./{}: exclude-paths of {} leaves out the target and not the link",
                                String::from_utf8_lossy(rel),
                                String::from_utf8_lossy(target),
                                self.rules.tarball_names[t]
                            ),
                        ));
                    }
                }
                link.clear();
                link.extend_from_slice(b"./");
                link.extend_from_slice(target);
                self.files.insert(path_key(rel));
                Some(Fingerprint::link(kind, target))
            }
            Kind::File => {
                self.files.insert(path_key(rel));
                None
            }
        })
    }

    /// Passes a file's data and padding on, straight from the decoded
    /// chunk, and returns its fingerprint.
    fn file_data(&mut self, mode: u32, size: u64, out: &mut dyn Entries) -> Result<Fingerprint> {
        self.stats.data_bytes += size;
        let mut hasher = blake3::Hasher::new();
        let mut left = size;
        while left > 0 {
            let data = self.tar.data_buf().map_err(|e| e.into_error(self.name))?;
            hasher.update(data);
            out.data(data)?;
            let n = data.len();
            self.tar.consume_data(n);
            left -= n as u64;
        }
        const ZEROS: [u8; tarfmt::BLOCK] = [0; tarfmt::BLOCK];
        out.data(&ZEROS[..tarfmt::padding(size)])?;
        Ok(Fingerprint::file(mode, hasher))
    }

    fn hardlink_target<'l>(&self, path: &[u8], link: &'l [u8]) -> Result<&'l [u8]> {
        check_relative(link).map_err(|e| self.err(Some(path), format!("hardlink target: {e}")))?;
        let target = self
            .manifest
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
}
