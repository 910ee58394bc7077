//! The assembly against its rules: layouts of own bytes and runs, the
//! held pool, and random layouts checked part by part.

use super::*;
use crate::sink::Origin;

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
fn assemble(case: &Case, runs: &[(Option<u64>, usize)], chunk: usize, piece: u64) -> (usize, u64) {
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
