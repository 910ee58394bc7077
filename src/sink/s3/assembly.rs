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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::part::{part_size, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::error::{Error, Kind, Result};
use crate::object_crc::ObjectCrc;
use crate::sink::{Chunk, Holders, Origin};
use crate::units::MIB;

/// A long copied run is cut into pieces of about this size.
pub const COPY_PIECE: u64 = 1024 * MIB;

/// The bytes of short runs the sink's tarballs hold beside a part that
/// waits for them: a share of `--memory`. Taken without waiting (a
/// tarball that finds no room sends its waiting part at once: a few more
/// bytes sent rather than held), given back when the run ends or grows
/// long enough to be copied.
#[derive(Debug)]
pub(super) struct HeldPool {
    limit: u64,
    used: AtomicU64,
}

impl HeldPool {
    pub(super) fn new(limit: u64) -> Arc<HeldPool> {
        Arc::new(HeldPool {
            limit,
            used: AtomicU64::new(0),
        })
    }

    fn take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    fn give(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// A holding of nothing yet, to take bytes into.
    fn hold(self: &Arc<Self>) -> Held {
        Held {
            pool: self.clone(),
            n: 0,
        }
    }
}

/// Bytes taken from a [`HeldPool`], given back when the holding is
/// released or dropped (the run ended, grew long, or its tarball was
/// aborted): one place gives them back, whichever way the run goes.
#[derive(Debug)]
struct Held {
    pool: Arc<HeldPool>,
    n: u64,
}

impl Held {
    /// Takes `n` more bytes, if the pool has room.
    fn take(&mut self, n: u64) -> bool {
        let taken = self.pool.take(n);
        if taken {
            self.n += n;
        }
        taken
    }

    /// Gives back everything held so far.
    fn release(&mut self) {
        self.pool.give(std::mem::take(&mut self.n));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

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

/// A range at least 5 MiB long that is not a part yet, with its chunks'
/// CRCs, so it can be cut between them.
#[derive(Clone, Debug)]
struct Chain {
    range: Range,
    chunks: Vec<ObjectCrc>,
}

impl Chain {
    /// Splits off what comes before its shortest end of whole chunks of at
    /// least 5 MiB, when that is at least 5 MiB too (to be copied as a
    /// part): what a temporary object then copies stays short.
    fn cut(self) -> (Option<Range>, Chain) {
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
struct Run {
    /// Where the run starts in each tarball that holds all of it so far,
    /// best ranked first.
    sources: Vec<Origin>,
    len: u64,
    /// Each chunk's CRCs, to cut the run where it closes.
    chunks: Vec<ObjectCrc>,
    /// The run's bytes while it is shorter than 5 MiB (then emptied).
    held: Vec<Bytes>,
}

impl Run {
    /// A run of the bytes `held` says earlier tarballs hold; `runs`
    /// counts it.
    fn new(held: &Holders, runs: &mut u64) -> Run {
        *runs += 1;
        Run {
            sources: held.iter().copied().collect(),
            len: 0,
            chunks: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Takes `chunk` if one of the sources holds it right after the run.
    fn extend(&mut self, chunk: &Chunk) -> bool {
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

    fn crc(&self) -> ObjectCrc {
        self.chunks.iter().copied().sum()
    }

    /// Bytes `from..` of the run (`from` on a chunk boundary), as a range
    /// of its best-ranked source.
    fn range(&self, first_chunk: usize, from: u64) -> Range {
        let s = self.sources[0];
        Range {
            source: Source::Tarball(s.tarball),
            start: s.offset + from,
            crc: self.chunks[first_chunk..].iter().copied().sum(),
        }
    }

    /// Its first `n` chunks as pieces of about `piece` bytes (at least
    /// 5 MiB each, but for a run shorter than that), cut between chunks.
    fn pieces(&self, n: usize, piece: u64) -> Vec<Range> {
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
    fn end_cut(&self) -> (usize, u64) {
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
enum Open {
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
fn chained(chain: Chain, next: Option<&Holders>, pool: &Arc<HeldPool>, runs: &mut u64) -> Open {
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
            open: Open::Nothing,
            pushed: 0,
            sent: 0,
            runs: 0,
        }
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
        self.temps as u64
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

#[cfg(test)]
mod tests {
    use super::*;

    impl Part {
        fn number(&self) -> u64 {
            match self {
                Part::Send { number, .. } | Part::Copy { number, .. } => *number,
                Part::Temp { .. } => 0,
            }
        }
    }

    /// Tarball 0 is a stream of own bytes; tarball 1 is made of runs of it
    /// and of bytes of its own, described as (own?, length).
    struct Case {
        source: Vec<u8>,
    }

    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        fastrand::Rng::with_seed(seed).fill(&mut out);
        out
    }

    /// Chunks of `run` (at most `chunk` bytes each), from `origin` if given.
    fn chunks_of(data: &[u8], chunk: usize, origin: Option<u64>) -> Vec<Chunk> {
        data.chunks(chunk)
            .enumerate()
            .map(|(i, c)| Chunk {
                bytes: Bytes::copy_from_slice(c),
                crc: ObjectCrc::of(c),
                held: match origin {
                    Some(o) => {
                        let at = Origin {
                            tarball: 0,
                            offset: o + (i * chunk) as u64,
                        };
                        Holders::new(vec![at].into(), 1)
                    }
                    None => Holders::default(),
                },
            })
            .collect()
    }

    /// Assembles `runs` — (Some(offset in the source), len) or (None, len)
    /// for own bytes — and checks every rule; returns (parts, sent bytes).
    fn assemble(
        case: &Case,
        runs: &[(Option<u64>, usize)],
        chunk: usize,
        piece: u64,
    ) -> (usize, u64) {
        assemble_held(case, runs, chunk, piece, u64::MAX)
    }

    /// `assemble` with a pool of `held` bytes for short runs.
    fn assemble_held(
        case: &Case,
        runs: &[(Option<u64>, usize)],
        chunk: usize,
        piece: u64,
        held: u64,
    ) -> (usize, u64) {
        let (parts, sent, _) = assemble_counted(case, runs, chunk, piece, held);
        (parts, sent)
    }

    /// `assemble_held`, also returning the bytes of temporary objects.
    fn assemble_counted(
        case: &Case,
        runs: &[(Option<u64>, usize)],
        chunk: usize,
        piece: u64,
        held: u64,
    ) -> (usize, u64, u64) {
        let pool = HeldPool::new(held);
        let mut a = Assembly::new(MIN_PART_SIZE, piece, true, pool.clone());
        let mut want = Vec::new();
        let mut parts = Vec::new();
        for (i, &(origin, len)) in runs.iter().enumerate() {
            let data = match origin {
                Some(o) => case.source[o as usize..o as usize + len].to_vec(),
                None => bytes(100 + i as u64, len),
            };
            for c in chunks_of(&data, chunk, origin) {
                a.push(c, &mut parts).unwrap();
            }
            want.extend_from_slice(&data);
        }
        a.finish(&mut parts).unwrap();
        let mut got = Vec::new();
        let mut sent = 0;
        let mut temp_bytes = 0;
        let mut temps: std::collections::HashMap<usize, Vec<u8>> = Default::default();
        let resolve = |temps: &std::collections::HashMap<usize, Vec<u8>>, r: &Range| {
            let (s, n) = (r.start as usize, r.crc.len as usize);
            let data = match r.source {
                Source::Tarball(0) => case.source[s..s + n].to_vec(),
                Source::Temp(id) => temps[&id][s..s + n].to_vec(),
                other => panic!("a copy from {other:?}"),
            };
            assert_eq!(ObjectCrc::of(&data), r.crc, "{r:?}");
            data
        };
        let mut number = 0;
        for p in parts.iter() {
            let data = match p {
                Part::Send { chunks, crc, .. } => {
                    let mut d = Vec::new();
                    for c in chunks {
                        d.extend_from_slice(c);
                    }
                    sent += d.len() as u64;
                    assert_eq!(ObjectCrc::of(&d), *crc);
                    d
                }
                Part::Copy { range, .. } => resolve(&temps, range),
                Part::Temp { id, first, last } => {
                    assert!(first.crc.len >= MIN_PART_SIZE, "temp {id}: {first:?}");
                    let mut d = resolve(&temps, first);
                    match last {
                        Last::Copy(r) => d.extend_from_slice(&resolve(&temps, r)),
                        Last::Send(chunks, crc) => {
                            let at = d.len();
                            for c in chunks {
                                d.extend_from_slice(c);
                            }
                            sent += (d.len() - at) as u64;
                            assert_eq!(ObjectCrc::of(&d[at..]), *crc);
                        }
                    }
                    assert!(d.len() as u64 <= MAX_PART_SIZE);
                    temp_bytes += d.len() as u64;
                    temps.insert(*id, d);
                    continue;
                }
            };
            number += 1;
            assert_eq!(p.number(), number, "numbered in order");
            let last = p.number() == a.next - 1;
            assert!(
                last || data.len() as u64 >= MIN_PART_SIZE,
                "part {number} has {} bytes",
                data.len()
            );
            assert!(data.len() as u64 <= MAX_PART_SIZE);
            got.extend_from_slice(&data);
        }
        let parts = number as usize;
        assert!(got == want, "the parts make the tarball");
        assert_eq!(pool.used(), 0, "held bytes given back");
        assert_eq!(sent, a.sent);
        assert_eq!(a.sent + a.copied(), want.len() as u64);
        (parts, sent, temp_bytes)
    }

    const M: usize = MIB as usize;

    fn case() -> Case {
        Case {
            source: bytes(1, 64 * M),
        }
    }

    #[test]
    fn a_copy_of_one_long_run_sends_only_its_trailer() {
        let c = case();
        // Header + run at the source's start, then a trailer of its own.
        let (parts, sent) = assemble(&c, &[(Some(0), 30 * M), (None, 40)], 1 << 20, COPY_PIECE);
        // The run's last 5 MiB are a part of their own (they could have
        // started a chain had a run followed).
        assert_eq!((parts, sent), (3, 40));
    }

    #[test]
    fn a_short_own_head_is_topped_up_to_5_mib() {
        let c = case();
        let (parts, sent) = assemble(
            &c,
            &[(None, 10), (Some(100), 20 * M), (None, 64)],
            300_000,
            COPY_PIECE,
        );
        assert_eq!(parts, 4);
        assert_eq!(sent, 5 * MIB + 64);
    }

    #[test]
    fn a_short_copyable_run_is_sent() {
        let c = case();
        let runs = [
            (Some(0), 8 * M),
            (Some(20 * M as u64), 2 * M),
            (None, 6 * M),
            (Some(40 * M as u64), 7 * M),
        ];
        // The 2 MiB run is sent, with the 6 MiB of own bytes after it: a
        // 5 MiB part, then 3 MiB topped up with 2 MiB of the last run.
        let (_, sent) = assemble(&c, &runs, 1 << 20, COPY_PIECE);
        assert_eq!(sent, 10 * MIB);
    }

    #[test]
    fn short_runs_after_a_long_one_are_copied_through_temporary_objects() {
        let c = case();
        let runs = [
            (Some(0), 12 * M),
            (Some(30 * M as u64), M),
            (Some(20 * M as u64), 2 * M),
            (Some(40 * M as u64), 9 * M),
            (Some(60 * M as u64), 3 * M),
            (None, 40),
        ];
        let (parts, sent) = assemble(&c, &runs, 1 << 20, COPY_PIECE);
        // Only the trailer is sent: 12 MiB as 7 + (5 + 1 + 2 through two
        // temporary objects), 9 + 3 the same way, then the trailer.
        assert_eq!((parts, sent), (4, 40));
    }

    /// Many short runs in a row: each temporary object holds the end of
    /// the one before (5 to 10 MiB) and the run, so the server copies a
    /// bounded amount per short run, not the whole chain again each time.
    #[test]
    fn a_long_stretch_of_short_runs_copies_linearly() {
        let c = case();
        let mut runs = vec![(Some(0), 12 * M)];
        for i in 0..40u64 {
            // 1 MiB runs, each from elsewhere in the source.
            runs.push((Some(16 * MIB + (i % 7) * 6 * MIB + i * 1000), M));
        }
        runs.push((None, 40));
        let (_, sent, temps) = assemble_counted(&c, &runs, 256 << 10, COPY_PIECE, u64::MAX);
        assert_eq!(sent, 40);
        // Each of the 40 objects: at most 10 MiB of the one before (and a
        // chunk), and its 1 MiB run. Chained whole, they took 1,020 MiB.
        assert!(temps <= 40 * (10 * MIB + (256 << 10) + MIB), "{temps}");
        assert!(temps >= 40 * (5 * MIB + MIB), "{temps}");
    }

    #[test]
    fn a_short_run_after_bytes_to_send_joins_them() {
        let c = case();
        let runs = [
            (None, 5 * M),
            (Some(20 * M as u64), 2 * M),
            (Some(40 * M as u64), 8 * M),
        ];
        let (parts, sent) = assemble(&c, &runs, 1 << 20, COPY_PIECE);
        assert_eq!((parts, sent), (2, 7 * MIB));
    }

    #[test]
    fn a_waiting_part_is_sent_at_once_when_the_pool_has_no_room() {
        let c = case();
        let runs = [
            (None, 5 * M),
            (Some(20 * M as u64), 2 * M),
            (Some(40 * M as u64), 8 * M),
        ];
        // The own 5 MiB go at once; the short run starts the next part,
        // topped up to 5 MiB from the last run; the rest is copied.
        let (parts, sent) = assemble_held(&c, &runs, 1 << 20, COPY_PIECE, 0);
        assert_eq!((parts, sent), (3, 10 * MIB));
        // Room for one chunk of the run: the same as none.
        let (parts, sent) = assemble_held(&c, &runs, 1 << 20, COPY_PIECE, MIB);
        assert_eq!((parts, sent), (3, 10 * MIB));
        // Room for the run: it waits and takes the run in.
        let (parts, sent) = assemble_held(&c, &runs, 1 << 20, COPY_PIECE, 2 * MIB);
        assert_eq!((parts, sent), (2, 7 * MIB));
    }

    #[test]
    fn an_aborted_assembly_gives_its_held_bytes_back() {
        let c = case();
        let pool = HeldPool::new(u64::MAX);
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, true, pool.clone());
        let mut parts = Vec::new();
        for ch in chunks_of(&bytes(3, 5 * M), 1 << 20, None) {
            a.push(ch, &mut parts).unwrap();
        }
        for ch in chunks_of(&c.source[..2 * M], 1 << 20, Some(0)) {
            a.push(ch, &mut parts).unwrap();
        }
        assert_eq!(pool.used(), 2 * MIB);
        drop(a);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn long_runs_are_copied_in_pieces() {
        let c = case();
        let (parts, sent) = assemble(&c, &[(Some(0), 63 * M)], 1 << 20, 10 * MIB);
        assert_eq!(sent, 0);
        assert_eq!(parts, 6);
        // A run that ends 1 MiB past a piece: the short end joins the piece.
        let (parts, _) = assemble(&c, &[(Some(0), 21 * M)], 1 << 20, 10 * MIB);
        assert_eq!(parts, 2);
    }

    #[test]
    fn a_run_follows_whichever_source_holds_all_of_it() {
        let held = |at: &[(usize, u64)]| {
            let all: Vec<Origin> = at
                .iter()
                .map(|&(tarball, offset)| Origin { tarball, offset })
                .collect();
            let n = all.len();
            Holders::new(all.into(), n)
        };
        let chunk = |n: usize, h: Holders| Chunk {
            bytes: Bytes::from(vec![7u8; n]),
            crc: ObjectCrc::of(&vec![7u8; n]),
            held: h,
        };
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, true, HeldPool::new(u64::MAX));
        let mut parts = Vec::new();
        // Both hold the first 4 MiB at 10; only tarball 2 goes on with
        // the next 4 MiB (tarball 0 has it elsewhere); then own bytes.
        a.push(chunk(10, held(&[(0, 0), (2, 0)])), &mut parts)
            .unwrap();
        a.push(chunk(4 * M, held(&[(0, 10), (2, 10)])), &mut parts)
            .unwrap();
        a.push(
            chunk(4 * M, held(&[(0, 99 * MIB), (2, 10 + 4 * MIB)])),
            &mut parts,
        )
        .unwrap();
        a.push(chunk(100, Holders::default()), &mut parts).unwrap();
        a.finish(&mut parts).unwrap();
        let whole = Range {
            source: Source::Tarball(2),
            start: 0,
            crc: ObjectCrc::of(&vec![7u8; 10 + 8 * M]),
        };
        assert!(
            matches!(parts[0], Part::Copy { number: 1, range } if range == whole),
            "{parts:?}"
        );
        assert_eq!((a.sent, a.copied()), (100, 10 + 8 * MIB));
    }

    #[test]
    fn without_copies_every_byte_is_sent() {
        let c = case();
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, false, HeldPool::new(u64::MAX));
        let mut parts = Vec::new();
        for ch in chunks_of(&c.source[..12 * M], 1 << 20, Some(0)) {
            a.push(ch, &mut parts).unwrap();
        }
        a.finish(&mut parts).unwrap();
        assert!(parts.iter().all(|p| matches!(p, Part::Send { .. })));
        assert_eq!((a.sent, a.copied()), (12 * MIB, 0));
    }

    #[test]
    fn an_empty_tarball_has_one_part() {
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, true, HeldPool::new(u64::MAX));
        let mut parts = Vec::new();
        a.finish(&mut parts).unwrap();
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn random_layouts_keep_every_rule() {
        let c = case();
        let mut rng = fastrand::Rng::with_seed(9);
        for round in 0..80 {
            let mut runs = Vec::new();
            for _ in 0..rng.usize(1..8) {
                let len = if rng.bool() {
                    rng.usize(1..200_000)
                } else {
                    rng.usize(1..9 * M)
                };
                if rng.u8(..4) == 0 {
                    runs.push((None, len));
                } else {
                    let start = rng.usize(..c.source.len() - len) as u64;
                    runs.push((Some(start), len));
                }
            }
            let chunk = [4096, 100_000, 1 << 20][round % 3];
            let piece = [10 * MIB, COPY_PIECE][round % 2];
            // Room for all short runs, for none, or for some.
            let held = [u64::MAX, 0, 3 * MIB][round % 3];
            let (_, sent) = assemble_held(&c, &runs, chunk, piece, held);
            // Sent: own bytes, plus at most 5 MiB per copyable run.
            let own: usize = runs.iter().filter(|r| r.0.is_none()).map(|r| r.1).sum();
            let copyable = runs.iter().filter(|r| r.0.is_some()).count() as u64;
            assert!(
                sent <= own as u64 + copyable * MIN_PART_SIZE,
                "{runs:?}: {sent}"
            );
        }
    }
}
