//! The decisions that depend on earlier artifacts: which of an entry's
//! tarballs get it (a path an earlier artifact already wrote is skipped as
//! a copy, merged as a directory, or is a conflict), and whether its path
//! runs through an earlier link. They work on entry metadata only and run
//! in plan order, one artifact at a time, whatever thread scans it.

use super::conflict::{ConflictTable, Fingerprint};
use super::scan::{Entries, Head};
use super::tarfmt::Kind;
use super::{ConflictPolicy, Mask, PieceWriter};
use crate::error::{Error, Result};
use crate::plan::Plan;

/// Where an entry goes, as far as its head tells.
#[derive(Clone, Debug)]
pub(crate) enum Decision {
    /// To these tarballs (a file's content is checked when it ends).
    Emit(Mask),
    /// A file some tarball already holds, small enough to compare first:
    /// its tarballs are known once its content is.
    AwaitContent,
}

/// The conflict table and the rules that read it.
pub(crate) struct Decider {
    table: ConflictTable,
    policy: ConflictPolicy,
    compare_buffer: u64,
}

impl Decider {
    pub fn new(plan: &Plan, policy: ConflictPolicy, compare_buffer: u64) -> Self {
        Decider {
            table: ConflictTable::new(plan, policy),
            policy,
            compare_buffer,
        }
    }

    /// See [`super::Repacker::with_compare_buffer`].
    pub fn set_compare_buffer(&mut self, bytes: u64) {
        self.compare_buffer = bytes;
    }

    /// Checks the path's ancestors (and a made directory's own path, one of
    /// its member's ancestors); records the ones no entry described.
    fn ancestors(&mut self, index: usize, name: &str, head: &Head<'_>) -> Result<()> {
        self.table
            .check_ancestors(head.rel, head.made, index, head.tarballs)
            .map_err(|(link, artifact)| {
                Error::artifact(
                    name,
                    Some(head.member),
                    format!(
                        "its path runs through the {link} (from {artifact}); extracting it would write through a link or fail"
                    ),
                )
            })
    }

    /// For an entry of artifact `index` (`name`) whose own rules failed:
    /// the error to report.
    pub fn refused(&mut self, index: usize, name: &str, head: &Head<'_>, error: Error) -> Error {
        match self.ancestors(index, name, head) {
            Err(e) => e,
            Ok(()) => error,
        }
    }

    /// Decides an entry from its head.
    pub fn head(&mut self, index: usize, name: &str, head: &Head<'_>) -> Result<Decision> {
        self.ancestors(index, name, head)?;
        if let Some(fp) = head.fp {
            return Ok(Decision::Emit(self.decide(
                head.rel,
                index,
                fp,
                head.tarballs,
            )?));
        }
        let seen = self.table.seen_in_any(head.rel, head.tarballs);
        if seen && head.size <= self.compare_buffer {
            return Ok(Decision::AwaitContent);
        }
        // Streamed. Normally no tarball holds the path yet; for an
        // oversized shared file, tarballs that hold it get this copy only
        // when later entries win, and are checked for equality afterwards
        // otherwise.
        Ok(Decision::Emit(
            if seen && self.policy == ConflictPolicy::Error {
                let tarballs = head.tarballs;
                Mask::from(
                    tarballs
                        .iter()
                        .copied()
                        .filter(|&t| !self.table.seen_in_any(head.rel, &[t]))
                        .collect::<Vec<_>>(),
                )
            } else {
                head.tarballs.clone()
            },
        ))
    }

    /// A file's content is known (`fp`): for [`Decision::AwaitContent`],
    /// the tarballs that get it; for a streamed one, checks the copies it
    /// skipped and records it (and returns the tarballs it went to).
    pub fn file_end(
        &mut self,
        index: usize,
        rel: &[u8],
        tarballs: &Mask,
        fp: Fingerprint,
        decision: &Decision,
    ) -> Result<Mask> {
        match decision {
            Decision::AwaitContent => self.decide(rel, index, fp, tarballs),
            Decision::Emit(emit) => {
                let skipped: Vec<usize> = tarballs
                    .iter()
                    .copied()
                    .filter(|t| !emit.contains(t))
                    .collect();
                self.table
                    .verify_skipped(rel, index, fp, &skipped)
                    .map_err(Error::Conflict)?;
                // Record the version for the tarballs that got it.
                if !emit.is_empty() {
                    self.table
                        .decide(rel, index, fp, emit)
                        .map_err(Error::Conflict)?;
                }
                Ok(emit.clone())
            }
        }
    }

    fn decide(
        &mut self,
        rel: &[u8],
        index: usize,
        fp: Fingerprint,
        tarballs: &Mask,
    ) -> Result<Mask> {
        let emit = self
            .table
            .decide(rel, index, fp, tarballs)
            .map_err(Error::Conflict)?;
        // Keep the shared mask (and so the current piece) in the common case.
        Ok(if emit.len() == tarballs.len() {
            tarballs.clone()
        } else {
            Mask::from(emit.to_vec())
        })
    }
}

/// Where a decided entry goes.
#[derive(Clone, Debug)]
pub(crate) enum Cut {
    /// In place, to these tarballs.
    Here(Mask),
    /// A directory entry these tarballs get at their end, before the
    /// end-of-archive blocks, because the others of its artifact already
    /// hold it (see [`Cut::of`]).
    AtEnd(Mask),
}

impl Cut {
    /// An entry of `head` decided to go to `mask`. A directory that only
    /// some of its tarballs still need goes at their end: in place it
    /// would make the artifact's bytes differ between its tarballs, so
    /// that one could no longer be copied from another in one run (with
    /// TheRock's families, each family's directories were first written in
    /// multiarch by another family). Extraction makes a directory for the
    /// entries below it anyway; the entry at the end sets its mode and
    /// mtime, as a directory listed after its contents does.
    fn of(head: &Head<'_>, mask: Mask) -> Cut {
        if head.kind == Kind::Dir && !mask.is_empty() && mask.len() < head.tarballs.len() {
            Cut::AtEnd(mask)
        } else {
            Cut::Here(mask)
        }
    }

    /// Writes `bytes` (the entry's header, or its data) as this cut says.
    pub fn write(&self, pieces: &mut PieceWriter<'_>, bytes: &[u8]) -> Result<()> {
        match self {
            Cut::Here(mask) => {
                pieces.set_mask(mask.clone())?;
                pieces.data(bytes)
            }
            Cut::AtEnd(mask) => {
                pieces.set_mask(Mask::none())?;
                pieces.at_end(mask, bytes)
            }
        }
    }
}

/// Where decided entries go: written to the pieces at once, or only their
/// cuts noted (to be cut later, on another thread, from held bytes).
pub(crate) enum Target<'a, 'o> {
    Pieces(&'a mut PieceWriter<'o>),
    Cuts(&'a mut Vec<Cut>),
}

impl Target<'_, '_> {
    fn entry(&mut self, cut: Cut, bytes: &[u8]) -> Result<()> {
        match self {
            Target::Pieces(p) => cut.write(p, bytes),
            Target::Cuts(c) => {
                c.push(cut);
                Ok(())
            }
        }
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Target::Pieces(p) => p.data(bytes),
            Target::Cuts(_) => Ok(()),
        }
    }
}

/// The file being decided: its path, tarballs and decision, and its header
/// and data while the decision waits for its content (up to the compare
/// buffer). Kept between entries, and across a change of thread mode.
#[derive(Default)]
pub(crate) struct OpenFile {
    rel: Vec<u8>,
    tarballs: Option<Mask>,
    decision: Option<Decision>,
    held: Vec<u8>,
}

/// Decides each entry as it comes and passes it on to its [`Target`]: the
/// artifact whose turn it is.
pub(crate) struct Deciding<'a, 'o> {
    pub file: &'a mut OpenFile,
    pub decider: &'a mut Decider,
    pub index: usize,
    pub name: &'a str,
    pub target: Target<'a, 'o>,
}

impl Entries for Deciding<'_, '_> {
    fn head(&mut self, head: &Head<'_>, tar_header: &[u8]) -> Result<()> {
        let decision = self.decider.head(self.index, self.name, head)?;
        let f = &mut *self.file;
        match &decision {
            Decision::Emit(mask) => self.target.entry(Cut::of(head, mask.clone()), tar_header)?,
            Decision::AwaitContent => {
                f.held.clear();
                f.held.extend_from_slice(tar_header);
            }
        }
        if head.fp.is_none() {
            f.rel.clear();
            f.rel.extend_from_slice(head.rel);
            f.tarballs = Some(head.tarballs.clone());
            f.decision = Some(decision);
        }
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        if let Target::Cuts(_) = self.target {
            return Ok(());
        }
        match self.file.decision {
            Some(Decision::AwaitContent) => {
                self.file.held.extend_from_slice(bytes);
                Ok(())
            }
            _ => self.target.data(bytes),
        }
    }

    fn file_end(&mut self, fp: Fingerprint) -> Result<()> {
        let f = &mut *self.file;
        let (Some(tarballs), Some(decision)) = (f.tarballs.take(), f.decision.take()) else {
            return Err(Error::internal("file data without its head"));
        };
        let mask = self
            .decider
            .file_end(self.index, &f.rel, &tarballs, fp, &decision)?;
        if let Decision::AwaitContent = decision {
            self.target.entry(Cut::Here(mask), &f.held)?;
            f.held.clear();
        }
        Ok(())
    }

    fn refused(&mut self, head: &Head<'_>, error: Error) -> Error {
        self.decider.refused(self.index, self.name, head, error)
    }
}
