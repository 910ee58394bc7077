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
//! with no look-ahead and no read-back:
//! - a part being sent that is still under 5 MiB when a copyable run
//!   starts takes the run's first bytes (it has them in hand) until it
//!   reaches 5 MiB; the rest of the run is copied;
//! - a copyable run that ends under 5 MiB is sent instead: its bytes are
//!   kept while it is that short (at most 5 MiB per tarball), and a part
//!   to send just before it stays open until then, to take it in;
//! - a long run is copied in pieces of about [`COPY_PIECE`] (cut between
//!   chunks, so each piece's CRC is the combination of its chunks'), which
//!   the server copies in parallel.
//!
//! Sent bytes beyond the tarball's own are therefore at most 5 MiB per
//! change between sending and copying, and none where a copyable run is
//! long and starts on a part boundary.

use bytes::Bytes;

use super::part::{part_size, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::error::{Error, Kind, Result};
use crate::object_crc::ObjectCrc;
use crate::sink::{Chunk, Holders, Origin};
use crate::units::MIB;

/// A long copied run is cut into pieces of about this size.
pub const COPY_PIECE: u64 = 1024 * MIB;

/// A part of the upload, closed and numbered.
#[derive(Debug)]
pub(super) enum Part {
    /// Bytes to send.
    Send {
        number: u64,
        chunks: Vec<Bytes>,
        crc: ObjectCrc,
    },
    /// `crc.len` bytes of tarball `source` from `start`, copied by the server.
    Copy {
        number: u64,
        source: usize,
        start: u64,
        crc: ObjectCrc,
    },
}

#[cfg(test)]
impl Part {
    pub(super) fn number(&self) -> u64 {
        match self {
            Part::Send { number, .. } | Part::Copy { number, .. } => *number,
        }
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
        /// Where the run starts in each tarball that holds all of it so
        /// far, best ranked first.
        sources: Vec<Origin>,
        /// The whole run so far.
        len: u64,
        /// Its pieces' CRCs; the last one is being filled.
        pieces: Vec<ObjectCrc>,
        /// The run's bytes while it is shorter than 5 MiB (then emptied).
        held: Vec<Bytes>,
        /// A part to send that waits for the run to reach 5 MiB (then it
        /// is sent as it is) or to end short (then it takes the run in).
        before: Option<(Vec<Bytes>, ObjectCrc)>,
    },
}

impl Open {
    /// A copied run starting at the chunk `held` describes.
    fn copy(held: &Holders, before: Option<(Vec<Bytes>, ObjectCrc)>) -> Open {
        Open::Copy {
            sources: held.iter().copied().collect(),
            len: 0,
            pieces: vec![ObjectCrc::default()],
            held: Vec::new(),
            before,
        }
    }
}

/// One tarball's parts, cut as its bytes arrive.
pub(super) struct Assembly {
    base_part: u64,
    copy_piece: u64,
    /// Whether runs with an origin may be copied (else everything is sent).
    copies: bool,
    next: u64,
    open: Open,
    /// Bytes in parts to send, and in parts to copy.
    pub(super) sent: u64,
    pub(super) copied: u64,
}

impl Assembly {
    /// Parts to send are `base_part` bytes (growing past 8,000 parts, see
    /// [`part_size`]); long copies are cut in pieces of about `copy_piece`.
    pub(super) fn new(base_part: u64, copy_piece: u64, copies: bool) -> Assembly {
        Assembly {
            base_part,
            copy_piece: copy_piece.clamp(2 * MIN_PART_SIZE, MAX_PART_SIZE - MIN_PART_SIZE),
            copies,
            next: 1,
            open: Open::Nothing,
            sent: 0,
            copied: 0,
        }
    }

    /// Takes the tarball's next bytes; parts they close go to `out`.
    pub(super) fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Part>) -> Result<()> {
        if !self.copies {
            chunk.held = Holders::default();
        }
        while !chunk.bytes.is_empty() {
            let copyable = !chunk.held.is_empty();
            match &mut self.open {
                Open::Nothing if copyable => self.open = Open::copy(&chunk.held, None),
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
                    self.open = Open::copy(&chunk.held, Some(before));
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
                Open::Copy {
                    sources,
                    len,
                    pieces,
                    held,
                    before,
                } => {
                    let at = *len;
                    let continuing = sources
                        .iter()
                        .any(|s| chunk.held.at(s.tarball, s.offset + at));
                    if continuing {
                        sources.retain(|s| chunk.held.at(s.tarball, s.offset + at));
                        let piece = pieces.last_mut().expect("a piece");
                        if piece.len >= self.copy_piece {
                            pieces.push(chunk.crc);
                        } else {
                            piece.append(chunk.crc);
                        }
                        *len += chunk.bytes.len() as u64;
                        if *len < MIN_PART_SIZE {
                            held.push(chunk.bytes);
                            return Ok(());
                        }
                        // Long enough to be copied: what waited is sent.
                        held.clear();
                        if let Some((chunks, crc)) = before.take() {
                            self.send(chunks, crc, out)?;
                        }
                        return Ok(());
                    }
                    if *len >= MIN_PART_SIZE {
                        self.close(out)?;
                        continue;
                    }
                    // Too short to be a part of its own: its bytes are sent,
                    // with the part that waited for it if there is one.
                    let run = pieces.iter().fold(ObjectCrc::default(), |c, p| c.then(*p));
                    let (mut chunks, mut crc) = before.take().unwrap_or_default();
                    chunks.append(held);
                    crc.append(run);
                    self.open = Open::Send { chunks, crc };
                }
            }
        }
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

    /// Closes the open part (several, for a long copied run; the part to
    /// send waiting behind a run first).
    fn close(&mut self, out: &mut Vec<Part>) -> Result<()> {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Nothing => {}
            Open::Send { chunks, crc } => self.send(chunks, crc, out)?,
            Open::Copy {
                sources,
                len,
                mut pieces,
                before,
                ..
            } => {
                if let Some((chunks, crc)) = before {
                    self.send(chunks, crc, out)?;
                }
                let Origin {
                    tarball: source,
                    offset: mut start,
                } = sources[0];
                // A short last piece joins the one before (still < 5 GiB).
                if pieces.len() > 1 && pieces.last().expect("a piece").len < MIN_PART_SIZE {
                    let last = pieces.pop().expect("a piece");
                    pieces.last_mut().expect("a piece").append(last);
                }
                self.copied += len;
                for crc in pieces {
                    let number = self.number()?;
                    out.push(Part::Copy {
                        number,
                        source,
                        start,
                        crc,
                    });
                    start += crc.len;
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, chunks: Vec<Bytes>, crc: ObjectCrc, out: &mut Vec<Part>) -> Result<()> {
        let number = self.number()?;
        self.sent += crc.len;
        out.push(Part::Send { number, chunks, crc });
        Ok(())
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
        let mut a = Assembly::new(MIN_PART_SIZE, piece, true);
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
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p.number(), i as u64 + 1, "numbered in order");
            let (data, crc) = match p {
                Part::Send { chunks, crc, .. } => {
                    let mut d = Vec::new();
                    for c in chunks {
                        d.extend_from_slice(c);
                    }
                    sent += d.len() as u64;
                    (d, *crc)
                }
                Part::Copy {
                    source, start, crc, ..
                } => {
                    assert_eq!(*source, 0);
                    let s = *start as usize;
                    (case.source[s..s + crc.len as usize].to_vec(), *crc)
                }
            };
            assert_eq!(ObjectCrc::of(&data), crc, "part {}", i + 1);
            let last = i + 1 == parts.len();
            assert!(
                last || data.len() as u64 >= MIN_PART_SIZE,
                "part {} has {} bytes",
                i + 1,
                data.len()
            );
            assert!(data.len() as u64 <= MAX_PART_SIZE);
            got.extend_from_slice(&data);
        }
        assert!(got == want, "the parts make the tarball");
        assert_eq!(sent, a.sent);
        assert_eq!(a.sent + a.copied, want.len() as u64);
        (parts.len(), sent)
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
        assert_eq!((parts, sent), (2, 40));
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
        assert_eq!(parts, 3);
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
    fn a_short_run_after_bytes_to_send_joins_them() {
        let c = case();
        let runs = [(None, 5 * M), (Some(20 * M as u64), 2 * M), (Some(40 * M as u64), 8 * M)];
        let (parts, sent) = assemble(&c, &runs, 1 << 20, COPY_PIECE);
        assert_eq!((parts, sent), (2, 7 * MIB));
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
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, true);
        let mut parts = Vec::new();
        // Both hold the first 4 MiB at 10; only tarball 2 goes on with
        // the next 4 MiB (tarball 0 has it elsewhere); then own bytes.
        a.push(chunk(10, held(&[(0, 0), (2, 0)])), &mut parts).unwrap();
        a.push(chunk(4 * M, held(&[(0, 10), (2, 10)])), &mut parts).unwrap();
        a.push(chunk(4 * M, held(&[(0, 99 * MIB), (2, 10 + 4 * MIB)])), &mut parts).unwrap();
        a.push(chunk(100, Holders::default()), &mut parts).unwrap();
        a.finish(&mut parts).unwrap();
        assert!(
            matches!(parts[0], Part::Copy { number: 1, source: 2, start: 0, crc } if crc.len == 10 + 8 * MIB),
            "{parts:?}"
        );
        assert_eq!((a.sent, a.copied), (100, 10 + 8 * MIB));
    }

    #[test]
    fn without_copies_every_byte_is_sent() {
        let c = case();
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, false);
        let mut parts = Vec::new();
        for ch in chunks_of(&c.source[..12 * M], 1 << 20, Some(0)) {
            a.push(ch, &mut parts).unwrap();
        }
        a.finish(&mut parts).unwrap();
        assert!(parts.iter().all(|p| matches!(p, Part::Send { .. })));
        assert_eq!((a.sent, a.copied), (12 * MIB, 0));
    }

    #[test]
    fn an_empty_tarball_has_one_part() {
        let mut a = Assembly::new(MIN_PART_SIZE, COPY_PIECE, true);
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
            let (_, sent) = assemble(&c, &runs, chunk, piece);
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
