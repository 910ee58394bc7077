//! An artifact scanned ahead of its turn: its entries' heads and bytes,
//! held until the earlier artifacts are decided, then decided (in turn)
//! and cut (on the scanning thread, after the turn has passed on).

use std::ops::Range;

use super::conflict::Fingerprint;
use super::decide::{Decider, Deciding, OpenFile, Target};
use super::scan::{Entries, Head};
use super::tarfmt::Kind;
use super::{Mask, PieceWriter};
use crate::error::{Error, Result};

struct Recorded {
    member: Range<usize>,
    rel: Range<usize>,
    kind: Kind,
    size: u64,
    tarballs: Mask,
    fp: Option<Fingerprint>,
    /// Its tar bytes: header, data and padding.
    bytes: Range<usize>,
    /// Where its header ends in them.
    header_end: usize,
    /// For a file: its content, once read to the end.
    content: Option<Fingerprint>,
    /// Its own rules failed (the scan stopped there).
    refused: bool,
}

/// Entries recorded in archive order, with their bytes.
#[derive(Default)]
pub(crate) struct Pending {
    entries: Vec<Recorded>,
    bytes: Vec<u8>,
    paths: Vec<u8>,
}

impl Pending {
    /// Memory held: the entries' bytes, paths and records.
    pub fn held(&self) -> usize {
        self.bytes.len() + self.paths.len() + self.entries.len() * std::mem::size_of::<Recorded>()
    }

    fn record(&mut self, head: &Head<'_>, tar_header: &[u8], refused: bool) {
        let mut path = |p: &[u8]| {
            let start = self.paths.len();
            self.paths.extend_from_slice(p);
            start..self.paths.len()
        };
        let member = path(head.member);
        let rel = path(head.rel);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(tar_header);
        self.entries.push(Recorded {
            member,
            rel,
            kind: head.kind,
            size: head.size,
            tarballs: head.tarballs.clone(),
            fp: head.fp,
            bytes: start..self.bytes.len(),
            header_end: self.bytes.len(),
            content: None,
            refused,
        });
    }

    /// Passes every recorded entry to `out` as the scan did: a file read
    /// only in part is left open (the scan goes on into `out`). A refused
    /// entry ends it with `scan_error` (or what `out` makes of it).
    pub fn replay(&self, out: &mut dyn Entries, scan_error: Option<Error>) -> Result<()> {
        let mut scan_error = scan_error;
        for r in &self.entries {
            let head = Head {
                member: &self.paths[r.member.clone()],
                rel: &self.paths[r.rel.clone()],
                kind: r.kind,
                size: r.size,
                tarballs: &r.tarballs,
                fp: r.fp,
            };
            if r.refused {
                let e = scan_error
                    .take()
                    .unwrap_or_else(|| Error::internal("a refused entry without its error"));
                return Err(out.refused(&head, e));
            }
            out.head(&head, &self.bytes[r.bytes.start..r.header_end])?;
            if r.kind == Kind::File {
                out.data(&self.bytes[r.header_end..r.bytes.end])?;
                if let Some(fp) = r.content {
                    out.file_end(fp)?;
                }
            }
        }
        match scan_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Decides every entry (the caller holds the turn): each one's tarballs,
    /// in order, or the first error (`scan_error` comes last).
    pub fn decide(
        &self,
        decider: &mut Decider,
        index: usize,
        name: &str,
        scan_error: Option<Error>,
    ) -> Result<Vec<Mask>> {
        let mut masks = Vec::with_capacity(self.entries.len());
        let mut file = OpenFile::default();
        let mut deciding = Deciding {
            file: &mut file,
            decider,
            index,
            name,
            target: Target::Masks(&mut masks),
        };
        self.replay(&mut deciding, scan_error)?;
        Ok(masks)
    }

    /// Writes the decided entries (`masks` from [`Pending::decide`]) and
    /// empties the record.
    pub fn cut(&mut self, masks: &[Mask], pieces: &mut PieceWriter<'_>) -> Result<()> {
        for (r, mask) in self.entries.iter().zip(masks) {
            pieces.set_mask(mask.clone())?;
            pieces.data(&self.bytes[r.bytes.clone()])?;
        }
        self.clear();
        Ok(())
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
        self.paths.clear();
    }
}

impl Entries for Pending {
    fn head(&mut self, head: &Head<'_>, tar_header: &[u8]) -> Result<()> {
        self.record(head, tar_header, false);
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(bytes);
        if let Some(r) = self.entries.last_mut() {
            r.bytes.end = self.bytes.len();
        }
        Ok(())
    }

    fn file_end(&mut self, fp: Fingerprint) -> Result<()> {
        if let Some(r) = self.entries.last_mut() {
            r.content = Some(fp);
        }
        Ok(())
    }

    fn refused(&mut self, head: &Head<'_>, error: Error) -> Error {
        self.record(head, &[], true);
        error
    }
}
