//! How one tarball's bytes become the parts of its multipart upload when
//! some of them are already in another object of the run: runs of bytes
//! another tarball holds become parts the server copies from it
//! (UploadPartCopy), the rest parts to send.
//!
//! A copied run follows every earlier tarball that holds it contiguously
//! (several may: the tarballs of a release share their leading artifacts),
//! and ends only when none of them holds the next chunk right after it:
//! runs are as long as any one source allows.
//!
//! S3's rules shape it: every part but the last is at least 5 MiB, a copy
//! at most 5 GiB, at most 10,000 parts. Decided as the bytes stream past,
//! with no look-ahead:
//! - a run shorter than 5 MiB after a long one is still copied: the long
//!   run's last 5 MiB or so and the short run are copied into a temporary
//!   object (the short run as its last part, which may be short), and the
//!   tarball copies that whole; more short runs extend the chain, each a
//!   temporary object made of the end of the one before (its last 5 MiB
//!   or so; the tarball copies the rest of it as a part) and the run.
//!   Nothing is sent, and each temporary object is at most about 10 MiB,
//!   so what the server copies grows with the number of short runs, not
//!   with its square.
//! - a part being sent that is still under 5 MiB when a copyable run
//!   starts takes the run's first bytes (it has them in hand) until it
//!   reaches 5 MiB; the rest of the run is copied;
//! - a part to send that reached 5 MiB waits behind the run that follows:
//!   should the run end short, it takes the run's bytes in (kept while the
//!   run is that short: at most 5 MiB per tarball, within the sink's
//!   [`HeldPool`]; where the pool has no room, the part is sent at once);
//! - a long run is copied in pieces of about [`COPY_PIECE`] (cut between
//!   chunks, so each piece's CRC is the combination of its chunks'), which
//!   the server copies in parallel.
//!
//! Sent bytes beyond a tarball's own are therefore at most 5 MiB where it
//! starts with short runs no earlier tarball holds together, and 5 MiB at
//! most where short runs follow bytes of its own.

mod held;
mod run;
#[cfg(test)]
mod tests;

pub(super) use held::HeldPool;
use run::{chained, Chain, Open, Run};

use std::sync::Arc;

use bytes::Bytes;

use super::part::{part_size, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::error::{Error, Kind, Result};
use crate::object_crc::ObjectCrc;
use crate::sink::{Chunk, Holders};
use crate::units::MIB;

/// A long copied run is cut into pieces of about this size.
pub const COPY_PIECE: u64 = 1024 * MIB;

/// An object a copy reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Source {
    /// A tarball of the run (its index in the plan), once published.
    Tarball(usize),
    /// One of this tarball's temporary objects, once completed.
    Temp(usize),
}

/// Bytes `start..start + crc.len` of `source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) source: Source,
    pub(super) start: u64,
    pub(super) crc: ObjectCrc,
}

/// A part of the upload, closed and numbered; or a temporary object to
/// make before the parts that copy from it.
#[derive(Debug)]
pub(super) enum Part {
    /// Bytes to send.
    Send {
        number: u64,
        chunks: Vec<Bytes>,
        crc: ObjectCrc,
    },
    /// A range the server copies.
    Copy { number: u64, range: Range },
    /// Temporary object `id`: `first` (at least 5 MiB, copied by the
    /// server) then `last`.
    Temp { id: usize, first: Range, last: Last },
}

/// The last part of a temporary object.
#[derive(Debug)]
pub(super) enum Last {
    /// A range the server copies.
    Copy(Range),
    /// Bytes to send.
    Send(Vec<Bytes>, ObjectCrc),
}

impl Last {
    pub(super) fn crc(&self) -> ObjectCrc {
        match self {
            Last::Copy(r) => r.crc,
            Last::Send(_, crc) => *crc,
        }
    }
}

/// One tarball's parts, cut as its bytes arrive.
pub(super) struct Assembly {
    base_part: u64,
    copy_piece: u64,
    /// Whether runs with an origin may be copied (else everything is sent).
    copies: bool,
    /// Where the bytes of a run held beside a waiting part are counted.
    held: Arc<HeldPool>,
    next: u64,
    temps: usize,
    /// Temporary objects made otherwise, before this assembly's.
    temps_before: usize,
    open: Open,
    /// Bytes taken, and those in parts to send.
    pushed: u64,
    pub(super) sent: u64,
    /// Runs of bytes earlier tarballs hold contiguously (each copied, or
    /// sent when short): the ranges of other objects the tarball is made of.
    pub(super) runs: u64,
}

impl Assembly {
    /// Parts to send are `base_part` bytes (growing past 8,000 parts, see
    /// [`part_size`]); long copies are cut in pieces of about `copy_piece`.
    pub(super) fn new(
        base_part: u64,
        copy_piece: u64,
        copies: bool,
        held: Arc<HeldPool>,
    ) -> Assembly {
        Assembly {
            base_part,
            copy_piece: copy_piece.clamp(2 * MIN_PART_SIZE, MAX_PART_SIZE - MIN_PART_SIZE),
            copies,
            held,
            next: 1,
            temps: 0,
            temps_before: 0,
            open: Open::Nothing,
            pushed: 0,
            sent: 0,
            runs: 0,
        }
    }

    /// A new assembly with this one's part sizes, for the rest of an
    /// object whose first `parts` parts and `temps` temporary objects are
    /// made otherwise (numbers and keys follow theirs); `copies` as for
    /// [`Assembly::new`].
    pub(super) fn after(&self, parts: u64, temps: usize, copies: bool) -> Assembly {
        let mut rest = Assembly::new(self.base_part, self.copy_piece, copies, self.held.clone());
        rest.next = parts + 1;
        rest.temps = temps;
        rest.temps_before = temps;
        rest
    }

    /// Takes the tarball's next bytes; parts they close go to `out`.
    pub(super) fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Part>) -> Result<()> {
        if !self.copies {
            chunk.held = Holders::default();
        }
        self.pushed += chunk.bytes.len() as u64;
        while !chunk.bytes.is_empty() {
            let copyable = !chunk.held.is_empty();
            match &mut self.open {
                Open::Nothing if copyable => {
                    self.open = Open::Copy {
                        run: Run::new(&chunk.held, &mut self.runs),
                        chain: None,
                        before: None,
                        pooled: self.held.hold(),
                    }
                }
                Open::Nothing => {
                    self.open = Open::Send {
                        chunks: Vec::new(),
                        crc: ObjectCrc::default(),
                    }
                }
                // A part to send that may close: it waits behind the run
                // that starts, which it takes in should the run end short.
                Open::Send { chunks, crc } if copyable && crc.len >= MIN_PART_SIZE => {
                    let before = (std::mem::take(chunks), *crc);
                    self.open = Open::Copy {
                        run: Run::new(&chunk.held, &mut self.runs),
                        chain: None,
                        before: Some(before),
                        pooled: self.held.hold(),
                    };
                }
                Open::Send { chunks, crc } => {
                    // A copyable run only tops the part up to 5 MiB.
                    let full = if copyable {
                        MIN_PART_SIZE
                    } else {
                        part_size(self.base_part, self.next)
                    };
                    if crc.len >= full {
                        self.close(out)?;
                        continue;
                    }
                    let room = full - crc.len;
                    if (chunk.bytes.len() as u64) <= room {
                        crc.append(chunk.crc);
                        chunks.push(chunk.bytes);
                        return Ok(());
                    }
                    // Full: it closes when the next bytes come (they may be
                    // a run it should wait behind).
                    let head = split(&mut chunk, room);
                    crc.append(head.crc);
                    chunks.push(head.bytes);
                }
                Open::Chain { chain, chunks, crc } if !copyable => {
                    if crc.len + (chunk.bytes.len() as u64) < MIN_PART_SIZE {
                        crc.append(chunk.crc);
                        chunks.push(chunk.bytes);
                        return Ok(());
                    }
                    // Enough to send as a part of its own.
                    let (chain, chunks, crc) = (chain.range, std::mem::take(chunks), *crc);
                    self.copy(chain, out)?;
                    self.open = Open::Send { chunks, crc };
                }
                Open::Chain { chain, chunks, crc } => {
                    let (first, chunks, crc) = (chain.clone(), std::mem::take(chunks), *crc);
                    let joined = self.temp(first, Last::Send(chunks, crc), vec![crc], out)?;
                    self.open = Open::Copy {
                        run: Run::new(&chunk.held, &mut self.runs),
                        chain: Some(joined),
                        before: None,
                        pooled: self.held.hold(),
                    };
                }
                Open::Copy {
                    run,
                    before,
                    pooled,
                    ..
                } => {
                    if run.extend(&chunk) {
                        let n = chunk.bytes.len() as u64;
                        // Long enough to be copied, or no room to hold the
                        // run beside it: what waited is sent.
                        let send =
                            before.is_some() && (run.len >= MIN_PART_SIZE || !pooled.take(n));
                        if send || run.len >= MIN_PART_SIZE {
                            pooled.release();
                        }
                        if send {
                            let (chunks, crc) = before.take().expect("a waiting part");
                            self.send(chunks, crc, out)?;
                        }
                        return Ok(());
                    }
                    let next = chunk.held.clone();
                    self.run_ends(copyable.then_some(&next), out)?;
                }
            }
        }
        Ok(())
    }

    /// The open run ends before a chunk that others hold as `next` (a run
    /// from elsewhere), or that is the tarball's own (`None`). Leaves the
    /// next run open (with a chain where the run can start one), or a part
    /// to send, or nothing open.
    fn run_ends(&mut self, next: Option<&Holders>, out: &mut Vec<Part>) -> Result<()> {
        let Open::Copy {
            run,
            chain,
            before,
            pooled,
        } = std::mem::replace(&mut self.open, Open::Nothing)
        else {
            unreachable!("a run is open")
        };
        drop(pooled);
        if run.len >= MIN_PART_SIZE {
            if let Some(c) = chain {
                self.copy(c.range, out)?;
            }
            // Its end may start a chain for what follows.
            let (first, at) = run.end_cut();
            for range in run.pieces(first, self.copy_piece) {
                self.copy(range, out)?;
            }
            let tail = Chain {
                range: run.range(first, at),
                chunks: run.chunks[first..].to_vec(),
            };
            self.open = chained(tail, next, &self.held, &mut self.runs);
            return Ok(());
        }
        // A short run.
        if let Some(c) = chain.filter(|c| c.range.crc.len + run.len <= MAX_PART_SIZE) {
            let last = Last::Copy(run.range(0, 0));
            let joined = self.temp(c, last, run.chunks.clone(), out)?;
            self.open = chained(joined, next, &self.held, &mut self.runs);
            return Ok(());
        }
        // Its bytes are sent, with the part that waited for it if any.
        let (mut chunks, mut crc) = before.unwrap_or_default();
        crc.append(run.crc());
        let mut held = run.held;
        chunks.append(&mut held);
        self.open = Open::Send { chunks, crc };
        Ok(())
    }

    /// The last part (S3 takes any size for it; an empty tarball still
    /// needs one part).
    pub(super) fn finish(&mut self, out: &mut Vec<Part>) -> Result<()> {
        if matches!(self.open, Open::Nothing) && self.next == 1 {
            self.open = Open::Send {
                chunks: Vec::new(),
                crc: ObjectCrc::default(),
            };
        }
        self.close(out)
    }

    /// Closes the open part: what waited for it first, then the run (as
    /// pieces; a short run as the last part).
    fn close(&mut self, out: &mut Vec<Part>) -> Result<()> {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Nothing => {}
            Open::Send { chunks, crc } => self.send(chunks, crc, out)?,
            Open::Chain { chain, chunks, crc } => {
                self.copy(chain.range, out)?;
                if crc.len > 0 {
                    self.send(chunks, crc, out)?;
                }
            }
            Open::Copy {
                run,
                chain,
                before,
                pooled,
            } => {
                drop(pooled);
                if let Some((chunks, crc)) = before {
                    self.send(chunks, crc, out)?;
                }
                if let Some(c) = chain {
                    self.copy(c.range, out)?;
                }
                if run.len > 0 {
                    self.copy_run(&run, out)?;
                }
            }
        }
        Ok(())
    }

    /// Temporary object `first ‖ last` (`last_chunks`: its CRCs, where it
    /// may be cut), as a range that starts a chain. A long `first` is cut
    /// first: its head becomes a part, only its end goes into the object.
    fn temp(
        &mut self,
        first: Chain,
        last: Last,
        last_chunks: Vec<ObjectCrc>,
        out: &mut Vec<Part>,
    ) -> Result<Chain> {
        let (head, first) = first.cut();
        if let Some(head) = head {
            self.copy(head, out)?;
        }
        let id = self.temps;
        self.temps += 1;
        let crc = first.range.crc.then(last.crc());
        if let Last::Send(_, c) = &last {
            self.sent += c.len;
        }
        out.push(Part::Temp {
            id,
            first: first.range,
            last,
        });
        let mut chunks = first.chunks;
        chunks.extend(last_chunks);
        Ok(Chain {
            range: Range {
                source: Source::Temp(id),
                start: 0,
                crc,
            },
            chunks,
        })
    }

    fn copy_run(&mut self, run: &Run, out: &mut Vec<Part>) -> Result<()> {
        for range in run.pieces(run.chunks.len(), self.copy_piece) {
            self.copy(range, out)?;
        }
        Ok(())
    }

    fn copy(&mut self, range: Range, out: &mut Vec<Part>) -> Result<()> {
        let number = self.number()?;
        out.push(Part::Copy { number, range });
        Ok(())
    }

    fn send(&mut self, chunks: Vec<Bytes>, crc: ObjectCrc, out: &mut Vec<Part>) -> Result<()> {
        let number = self.number()?;
        self.sent += crc.len;
        out.push(Part::Send {
            number,
            chunks,
            crc,
        });
        Ok(())
    }

    /// Bytes the server copies (the tarball's bytes not sent).
    pub(super) fn copied(&self) -> u64 {
        self.pushed - self.sent
    }

    /// Temporary objects made so far.
    pub(super) fn temporaries(&self) -> u64 {
        (self.temps - self.temps_before) as u64
    }

    fn number(&mut self) -> Result<u64> {
        let n = self.next;
        if n > MAX_PARTS {
            return Err(Error::failed(
                Kind::TooLarge,
                format!("the tarball needs more than {MAX_PARTS} parts"),
            ));
        }
        self.next += 1;
        Ok(n)
    }
}

/// Splits the first `n` bytes off `chunk` (zero copy), with their CRCs.
fn split(chunk: &mut Chunk, n: u64) -> Chunk {
    let n = usize::try_from(n)
        .unwrap_or(usize::MAX)
        .min(chunk.bytes.len());
    if n == chunk.bytes.len() {
        let all = chunk.clone();
        chunk.bytes = Bytes::new();
        chunk.crc = ObjectCrc::default();
        return all;
    }
    let head = chunk.bytes.split_to(n);
    let head_crc = ObjectCrc::of(&head);
    chunk.crc = ObjectCrc::of(&chunk.bytes);
    let held = chunk.held.clone();
    chunk.held = held.skip(n as u64);
    Chunk {
        bytes: head,
        crc: head_crc,
        held,
    }
}
