//! An artifact scanned ahead of its turn: its entries' heads and bytes,
//! held until the earlier artifacts are decided, then decided (in turn)
//! and cut (on the scanning thread, after the turn has passed on).
//!
//! An artifact too large to hold keeps only its entries' heads
//! ([`Pending::drop_bytes`]): it is decided from them all the same, and
//! its bytes are cut on a second read ([`Pending::second_pass`]), which
//! must give the same entries.

use std::ops::Range;

use super::conflict::Fingerprint;
use super::decide::{Cut, Decider, Deciding, OpenFile, Target};
use super::scan::{Entries, Head};
use super::tarfmt::Kind;
use super::{Mask, PieceWriter};
use crate::error::{Error, Result};

struct Recorded {
    member: Range<usize>,
    rel: Range<usize>,
    kind: Kind,
    /// A directory made for a member below it.
    made: bool,
    size: u64,
    tarballs: Mask,
    fp: Option<Fingerprint>,
    /// Its tar bytes: header, data and padding (empty once dropped).
    bytes: Range<usize>,
    /// A digest of its tar header, to know it again on a second read
    /// (taken once its bytes are dropped).
    header: [u8; 16],
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
    /// Heads only: the bytes are read again once the entries are decided.
    heads_only: bool,
}

fn header_digest(tar_header: &[u8]) -> [u8; 16] {
    let mut d = [0; 16];
    d.copy_from_slice(&blake3::hash(tar_header).as_bytes()[..16]);
    d
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
        if !self.heads_only {
            self.bytes.extend_from_slice(tar_header);
        }
        self.entries.push(Recorded {
            member,
            rel,
            kind: head.kind,
            made: head.made,
            size: head.size,
            tarballs: head.tarballs.clone(),
            fp: head.fp,
            bytes: start..self.bytes.len(),
            header: if self.heads_only {
                header_digest(tar_header)
            } else {
                [0; 16]
            },
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
                made: r.made,
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
    ) -> Result<Vec<Cut>> {
        let mut cuts = Vec::with_capacity(self.entries.len());
        let mut file = OpenFile::default();
        let mut deciding = Deciding {
            file: &mut file,
            decider,
            index,
            name,
            target: Target::Cuts(&mut cuts),
        };
        self.replay(&mut deciding, scan_error)?;
        Ok(cuts)
    }

    /// Writes the decided entries (`cuts` from [`Pending::decide`]) and
    /// empties the record.
    pub fn cut(&mut self, cuts: &[Cut], pieces: &mut PieceWriter<'_>) -> Result<()> {
        for (r, cut) in self.entries.iter().zip(cuts) {
            cut.write(pieces, &self.bytes[r.bytes.clone()])?;
        }
        self.clear();
        Ok(())
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
        self.paths.clear();
        self.heads_only = false;
    }

    /// Whether only heads are kept (the bytes need a second read).
    pub fn heads_only(&self) -> bool {
        self.heads_only
    }

    /// Lets go of the bytes held so far and of every later entry's: only
    /// heads are kept from now on.
    pub fn drop_bytes(&mut self) {
        self.heads_only = true;
        for r in &mut self.entries {
            r.header = header_digest(&self.bytes[r.bytes.start..r.header_end]);
            r.bytes = 0..0;
            r.header_end = 0;
        }
        self.bytes = Vec::new();
    }

    /// Cuts the decided entries (`cuts` from [`Pending::decide`]) from a
    /// second read of the artifact, which `scan` drives into the
    /// [`Entries`] it is given; then empties the record. An entry that is
    /// not the one recorded (the stored artifact changed between the two
    /// reads) is an error naming it.
    pub fn second_pass(
        &mut self,
        cuts: &[Cut],
        name: &str,
        pieces: &mut PieceWriter<'_>,
        scan: impl FnOnce(&mut dyn Entries) -> Result<()>,
    ) -> Result<()> {
        let mut again = Again {
            pending: self,
            cuts,
            name,
            pieces,
            next: 0,
        };
        scan(&mut again)?;
        if again.next != self.entries.len() {
            return Err(Error::artifact(
                name,
                None,
                format!(
                    "its second read ended after {} of the {} entries of its first: the stored artifact changed while it was packed",
                    again.next,
                    self.entries.len()
                ),
            ));
        }
        self.clear();
        Ok(())
    }
}

/// The second read of an artifact kept as heads only: each entry is
/// checked against its record and written with its decided tarballs.
struct Again<'a, 'p, 'o> {
    pending: &'a Pending,
    cuts: &'a [Cut],
    name: &'a str,
    pieces: &'p mut PieceWriter<'o>,
    /// The entry expected next.
    next: usize,
}

impl Again<'_, '_, '_> {
    fn changed(&self, member: &[u8], what: &str) -> Error {
        Error::artifact(
            self.name,
            Some(member),
            format!("its {what} differs between the two reads of the artifact: the stored artifact changed while it was packed"),
        )
    }

    fn current(&self) -> Option<&Recorded> {
        self.next
            .checked_sub(1)
            .and_then(|i| self.pending.entries.get(i))
    }
}

impl Entries for Again<'_, '_, '_> {
    fn head(&mut self, head: &Head<'_>, tar_header: &[u8]) -> Result<()> {
        let p = self.pending;
        let Some(r) = p.entries.get(self.next) else {
            return Err(self.changed(head.member, "entry count"));
        };
        if &p.paths[r.rel.clone()] != head.rel
            || r.kind != head.kind
            || r.size != head.size
            || r.fp != head.fp
            || r.refused
        {
            return Err(self.changed(head.member, "entry"));
        }
        if r.header != header_digest(tar_header) {
            return Err(self.changed(head.member, "tar header"));
        }
        let cut = self.cuts.get(self.next);
        self.next += 1;
        let cut = cut.ok_or_else(|| Error::internal("an entry without its decision"))?;
        cut.write(self.pieces, tar_header)
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        self.pieces.data(bytes)
    }

    fn file_end(&mut self, fp: Fingerprint) -> Result<()> {
        match self.current() {
            Some(r) if r.content == Some(fp) => Ok(()),
            Some(r) => {
                let member = self.pending.paths[r.member.clone()].to_vec();
                Err(self.changed(&member, "content"))
            }
            None => Err(Error::internal("file data without its head")),
        }
    }

    fn refused(&mut self, head: &Head<'_>, error: Error) -> Error {
        // The first read refused nothing (its refusal would have failed
        // the decisions): the artifact changed.
        let _ = error;
        self.changed(head.member, "entry")
    }
}

impl Entries for Pending {
    fn head(&mut self, head: &Head<'_>, tar_header: &[u8]) -> Result<()> {
        self.record(head, tar_header, false);
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        if self.heads_only {
            return Ok(());
        }
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
