//! The part being filled: a copied run being followed, a chain of ranges
//! that a temporary object may continue, or bytes to send.

use std::sync::Arc;

use bytes::Bytes;

use super::held::{Held, HeldPool};
use super::{Range, Source};
use crate::object_crc::ObjectCrc;
use crate::sink::s3::part::MIN_PART_SIZE;
use crate::sink::{Chunk, Holders, Origin};

/// A range at least 5 MiB long that is not a part yet, with its chunks'
/// CRCs, so it can be cut between them.
#[derive(Clone, Debug)]
pub(super) struct Chain {
    pub(super) range: Range,
    pub(super) chunks: Vec<ObjectCrc>,
}

impl Chain {
    /// Splits off what comes before its shortest end of whole chunks of at
    /// least 5 MiB, when that is at least 5 MiB too (to be copied as a
    /// part): what a temporary object then copies stays short.
    pub(super) fn cut(self) -> (Option<Range>, Chain) {
        let mut tail = ObjectCrc::default();
        for (i, c) in self.chunks.iter().enumerate().rev() {
            tail = c.then(tail);
            if tail.len >= MIN_PART_SIZE {
                let head: ObjectCrc = self.chunks[..i].iter().copied().sum();
                if head.len < MIN_PART_SIZE {
                    break;
                }
                let r = self.range;
                let prefix = Range { crc: head, ..r };
                let rest = Chain {
                    range: Range {
                        source: r.source,
                        start: r.start + head.len,
                        crc: tail,
                    },
                    chunks: self.chunks[i..].to_vec(),
                };
                return (Some(prefix), rest);
            }
        }
        (None, self)
    }
}

/// A copied run being followed.
pub(super) struct Run {
    /// Where the run starts in each tarball that holds all of it so far,
    /// best ranked first.
    pub(super) sources: Vec<Origin>,
    pub(super) len: u64,
    /// Each chunk's CRCs, to cut the run where it closes.
    pub(super) chunks: Vec<ObjectCrc>,
    /// The run's bytes while it is shorter than 5 MiB (then emptied).
    pub(super) held: Vec<Bytes>,
}

impl Run {
    /// A run of the bytes `held` says earlier tarballs hold; `runs`
    /// counts it.
    pub(super) fn new(held: &Holders, runs: &mut u64) -> Run {
        *runs += 1;
        Run {
            sources: held.iter().copied().collect(),
            len: 0,
            chunks: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Takes `chunk` if one of the sources holds it right after the run.
    pub(super) fn extend(&mut self, chunk: &Chunk) -> bool {
        let at = self.len;
        let follows = |s: &Origin| chunk.held.at(s.tarball, s.offset + at);
        if !self.sources.iter().any(follows) {
            return false;
        }
        self.sources.retain(follows);
        self.chunks.push(chunk.crc);
        self.len += chunk.bytes.len() as u64;
        if self.len < MIN_PART_SIZE {
            self.held.push(chunk.bytes.clone());
        } else {
            self.held.clear();
        }
        true
    }

    pub(super) fn crc(&self) -> ObjectCrc {
        self.chunks.iter().copied().sum()
    }

    /// Bytes `from..` of the run (`from` on a chunk boundary), as a range
    /// of its best-ranked source.
    pub(super) fn range(&self, first_chunk: usize, from: u64) -> Range {
        let s = self.sources[0];
        Range {
            source: Source::Tarball(s.tarball),
            start: s.offset + from,
            crc: self.chunks[first_chunk..].iter().copied().sum(),
        }
    }

    /// Its first `n` chunks as pieces of about `piece` bytes (at least
    /// 5 MiB each, but for a run shorter than that), cut between chunks.
    pub(super) fn pieces(&self, n: usize, piece: u64) -> Vec<Range> {
        let s = self.sources[0];
        let mut out: Vec<Range> = Vec::new();
        let mut start = s.offset;
        for c in &self.chunks[..n] {
            match out.last_mut() {
                Some(last) if last.crc.len < piece => last.crc.append(*c),
                _ => out.push(Range {
                    source: Source::Tarball(s.tarball),
                    start,
                    crc: *c,
                }),
            }
            start += c.len;
        }
        // A short last piece joins the one before (still under 5 GiB).
        if out.len() > 1 && out.last().expect("a piece").crc.len < MIN_PART_SIZE {
            let last = out.pop().expect("a piece");
            out.last_mut().expect("a piece").crc.append(last.crc);
        }
        out
    }

    /// Where to cut the run so that its end is the shortest run of whole
    /// chunks of at least 5 MiB: (first chunk of the end, its offset);
    /// the start when the rest would be shorter than 5 MiB.
    pub(super) fn end_cut(&self) -> (usize, u64) {
        let mut tail = 0;
        for (i, c) in self.chunks.iter().enumerate().rev() {
            tail += c.len;
            if tail >= MIN_PART_SIZE {
                let at = self.len - tail;
                return if at >= MIN_PART_SIZE { (i, at) } else { (0, 0) };
            }
        }
        (0, 0)
    }
}

/// The part being filled.
pub(super) enum Open {
    Nothing,
    Send {
        chunks: Vec<Bytes>,
        crc: ObjectCrc,
    },
    Copy {
        run: Run,
        /// A range at least 5 MiB long that ends right before the run,
        /// not yet a part: the run, should it end short, is copied after
        /// it into a temporary object.
        chain: Option<Chain>,
        /// A part to send that waits for the run to reach 5 MiB (then it
        /// is sent as it is) or to end short (then it takes the run in).
        before: Option<(Vec<Bytes>, ObjectCrc)>,
        /// Bytes of the run held from the pool (while `before` waits).
        pooled: Held,
    },
    /// A range at least 5 MiB long, then bytes of the tarball's own (fewer
    /// than 5 MiB): should a run follow, both go into a temporary object
    /// that starts its chain.
    Chain {
        chain: Chain,
        chunks: Vec<Bytes>,
        crc: ObjectCrc,
    },
}

/// After a chain's range: the next run, or the tarball's own bytes.
pub(super) fn chained(
    chain: Chain,
    next: Option<&Holders>,
    pool: &Arc<HeldPool>,
    runs: &mut u64,
) -> Open {
    match next {
        Some(next) => Open::Copy {
            run: Run::new(next, runs),
            chain: Some(chain),
            before: None,
            pooled: pool.hold(),
        },
        None => Open::Chain {
            chain,
            chunks: Vec::new(),
            crc: ObjectCrc::default(),
        },
    }
}
