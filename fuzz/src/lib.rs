//! The fuzz harness: turns fuzzer input into one or two artifacts, repacks
//! them in memory with `rockpack::repack::Repacker` and checks the result.
//!
//! A run may refuse its input, but then with an artifact error (or a
//! conflict) that names the artifact, on one line. When it accepts, every
//! tarball it wrote is read back by rockpack's own strict reader and by the
//! `tar` crate, which must agree, and must hold what README's "What rockpack
//! refuses" promises (see `check`). For one artifact the tar crate also
//! reads the input: what rockpack packed must be what an independent reader
//! sees in the archive.
//!
//! Input layout (see `Options`):
//! - `artifact`: one option byte, then the archive, as raw tar, a zstd or xz
//!   stream handed to the decoder as is, or raw tar the harness compresses
//!   with zstd first.
//! - `two_artifacts`: one option byte, the length of the first archive (u16,
//!   little-endian; clamped to what is left), the first archive, the second.
//!   Both raw tar.

pub mod check;

use std::io::Read;

use rockpack::fixtures::{plan_of, MemoryOut};
use rockpack::plan::Compression;
use rockpack::plan::Format;
use rockpack::repack::flatten::{Metadata, Modes};
use rockpack::repack::{decode, ConflictPolicy, Repacker};
use rockpack::Error;

/// The artifacts' names, as the plan and the error messages know them.
pub const ARTIFACT_A: &str = "zzfuzza_lib_generic.tar.zst";
pub const ARTIFACT_B: &str = "zzfuzzb_lib_generic.tar.zst";

/// The mtime clamp the clamp option applies (the fixtures' base mtime).
pub const CLAMP: i64 = 1_700_000_000;

/// `--max-unpacked-size` for decoded inputs: small, so that a fuzzer-made
/// bomb is refused quickly instead of being held in memory.
pub const MAX_UNPACKED: u64 = 8 << 20;
/// ... and with the small-limit option.
pub const SMALL_MAX_UNPACKED: u64 = 64 << 10;

/// How the artifact bytes reach the repacker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// Uncompressed tar, read directly.
    Tar,
    /// A zstd stream, through rockpack's decoder.
    Zstd,
    /// An xz stream, through rockpack's decoder.
    Xz,
    /// Uncompressed tar that the harness compresses with zstd, then decodes.
    TarViaZstd,
}

/// What the option byte selects.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Bits 0-1 (`artifact` only).
    pub container: Container,
    /// Bit 2: `--mtime CLAMP --keep-modes`.
    pub clamp: bool,
    /// Bit 3: header checksums as they are. Otherwise the harness first
    /// rewrites the checksum of every block with ustar magic, so that
    /// mutated headers get past the checksum test to the code behind it.
    pub raw_checksums: bool,
    /// Bit 4: zstd output (4 MiB blocks, no history) instead of gzip.
    pub zstd_output: bool,
    /// Bit 5: `--on-conflict last-wins`.
    pub last_wins: bool,
    /// Bit 6 (`artifact` only): `--max-unpacked-size` 64 KiB, not 8 MiB.
    pub small_limit: bool,
    /// Bits 6-7 (`two_artifacts` only): which tarballs hold which artifact.
    pub layout: u8,
}

impl Options {
    pub fn from_byte(b: u8) -> Options {
        Options {
            container: match b & 3 {
                0 => Container::Tar,
                1 => Container::Zstd,
                2 => Container::Xz,
                _ => Container::TarViaZstd,
            },
            clamp: b & 4 != 0,
            raw_checksums: b & 8 != 0,
            zstd_output: b & 16 != 0,
            last_wins: b & 32 != 0,
            small_limit: b & 64 != 0,
            layout: b >> 6,
        }
    }

    /// The byte for these options; `small_limit` and `layout` share bits.
    pub fn to_byte(self) -> u8 {
        let container = match self.container {
            Container::Tar => 0,
            Container::Zstd => 1,
            Container::Xz => 2,
            Container::TarViaZstd => 3,
        };
        container
            | (self.clamp as u8) << 2
            | (self.raw_checksums as u8) << 3
            | (self.zstd_output as u8) << 4
            | (self.last_wins as u8) << 5
            | (self.small_limit as u8) << 6
            | (self.layout & 3) << 6
    }

    pub fn plain() -> Options {
        Options::from_byte(0)
    }

    fn policy(self) -> ConflictPolicy {
        if self.last_wins {
            ConflictPolicy::LastWins
        } else {
            ConflictPolicy::Error
        }
    }

    fn format(self) -> Format {
        if self.zstd_output {
            Format::Zstd
        } else {
            Format::Gzip
        }
    }

    fn metadata(self) -> Metadata {
        Metadata {
            mtime_clamp: self.clamp.then_some(CLAMP),
            modes: if self.clamp {
                Modes::Keep
            } else {
                Modes::TheRock
            },
        }
    }

    fn max_unpacked(self) -> u64 {
        if self.small_limit {
            SMALL_MAX_UNPACKED
        } else {
            MAX_UNPACKED
        }
    }
}

/// Rewrites the checksum of every 512-byte block that carries ustar magic
/// (unless the options keep checksums as they are).
fn fix_checksums(opts: Options, tar: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if opts.raw_checksums {
        return tar.into();
    }
    let mut out = tar.to_vec();
    for block in out.chunks_exact_mut(512) {
        if &block[257..262] == b"ustar" {
            block[148..156].copy_from_slice(b"        ");
            let sum: u32 = block.iter().map(|&b| b as u32).sum();
            block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
    }
    out.into()
}

/// The `artifact` target's input for `body` (see `Container` for what the
/// body is).
pub fn artifact_input(opts: Options, body: &[u8]) -> Vec<u8> {
    [&[opts.to_byte()][..], body].concat()
}

/// The `two_artifacts` target's input. Panics when `a` is over 64 KiB.
pub fn two_artifacts_input(opts: Options, a: &[u8], b: &[u8]) -> Vec<u8> {
    let len = u16::try_from(a.len()).expect("first archive over 64 KiB");
    [&[opts.to_byte()][..], &len.to_le_bytes(), a, b].concat()
}

/// What a run did with its input (after every check passed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Too short to mean anything.
    Skipped,
    /// With the error message.
    Refused(String),
    Accepted,
}

/// The `artifact` target.
pub fn fuzz_artifact(data: &[u8]) -> Outcome {
    let Some((&opt, body)) = data.split_first() else {
        return Outcome::Skipped;
    };
    let opts = Options::from_byte(opt);
    let fixed;
    let compressed;
    let (input, compression): (&[u8], Option<Compression>) = match opts.container {
        Container::Tar => {
            fixed = fix_checksums(opts, body);
            (&fixed, None)
        }
        Container::Zstd => (body, Some(Compression::Zst)),
        Container::Xz => (body, Some(Compression::Xz)),
        Container::TarViaZstd => {
            let tar = fix_checksums(opts, body);
            compressed = zstd::bulk::compress(&tar, 1).expect("zstd compresses anything");
            (&compressed, Some(Compression::Zst))
        }
    };
    let plan = plan_of(&[ARTIFACT_A], &[&[0]], opts.format());
    // `ahead`: read as the pipeline reads an artifact ahead of its turn
    // that outgrows its share: entries' heads held, decided at the end,
    // then read a second time and cut.
    let run = |input: &[u8], ahead: bool| -> Result<MemoryOut, Error> {
        let mut repacker = Repacker::new(&plan, opts.policy(), opts.metadata())?;
        let mut out = MemoryOut::new(1);
        let max = opts.max_unpacked();
        let reader = std::io::BufReader::new(open_artifact(input, compression, max)?);
        if ahead {
            let again = || -> Box<dyn std::io::BufRead + '_> {
                let input = open_artifact(input, compression, max).expect("it opened before");
                Box::new(std::io::BufReader::new(input))
            };
            repacker.repack_ahead(0, ARTIFACT_A, reader, &again, 0, &mut out)?;
        } else {
            repacker.repack(0, ARTIFACT_A, reader, &mut out)?;
        }
        Ok(out)
    };
    match run(input, false) {
        Err(e) => {
            check::refusal(&e, ARTIFACT_A);
            Outcome::Refused(e.to_string())
        }
        Ok(out) => {
            let tar = out.tar(0);
            let entries = check::tarball(&tar, opts.policy(), opts.metadata());
            // The same input gives the same bytes, however it is read.
            let again = run(input, true).expect("a run reading it twice failed");
            assert!(
                again.tarballs == out.tarballs && again.ends == out.ends,
                "a run reading it twice differs"
            );
            // What rockpack packed is what the tar crate sees in the input.
            let decoded = match compression {
                None => input.to_vec(),
                Some(c) => {
                    let mut v = Vec::new();
                    decode::decoder(c, input, opts.max_unpacked())
                        .and_then(|mut d| d.read_to_end(&mut v))
                        .expect("decoding an accepted input again");
                    v
                }
            };
            check::same_as_input(&decoded, &entries, opts.metadata());
            Outcome::Accepted
        }
    }
}

/// `input`'s decoded bytes (as they are when `compression` is `None`).
fn open_artifact(
    input: &[u8],
    compression: Option<Compression>,
    max_unpacked: u64,
) -> Result<Box<dyn Read + Send + '_>, Error> {
    Ok(match compression {
        None => Box::new(input),
        Some(c) => decode::decoder(c, input, max_unpacked)
            .map_err(|e| Error::artifact(ARTIFACT_A, None, e.to_string()))?,
    })
}

/// The `two_artifacts` target.
pub fn fuzz_two_artifacts(data: &[u8]) -> Outcome {
    if data.len() < 3 {
        return Outcome::Skipped;
    }
    let opts = Options::from_byte(data[0]);
    let rest = &data[3..];
    let split = (u16::from_le_bytes([data[1], data[2]]) as usize).min(rest.len());
    let (a, b) = rest.split_at(split);
    let (a, b) = (fix_checksums(opts, a), fix_checksums(opts, b));
    let tarballs: &[&[usize]] = match opts.layout {
        0 => &[&[0, 1]],
        1 => &[&[0, 1], &[0]],
        2 => &[&[0, 1], &[1]],
        _ => &[&[0], &[1], &[0, 1]],
    };
    let plan = plan_of(&[ARTIFACT_A, ARTIFACT_B], tarballs, opts.format());
    // `ahead`: each artifact read as the pipeline reads one ahead of its
    // turn: the first outgrows its share (heads held, a second read), the
    // second is held whole and decided at its end.
    let run = |ahead: bool| -> Result<MemoryOut, (Error, &'static str)> {
        let mut repacker =
            Repacker::new(&plan, opts.policy(), opts.metadata()).map_err(|e| (e, ARTIFACT_A))?;
        let mut out = MemoryOut::new(tarballs.len());
        for (i, (name, tar)) in [(ARTIFACT_A, &*a), (ARTIFACT_B, &*b)]
            .into_iter()
            .enumerate()
        {
            let done = if ahead {
                let again = || -> Box<dyn std::io::BufRead + '_> { Box::new(tar) };
                let limit = if i == 0 { 0 } else { u64::MAX };
                repacker.repack_ahead(i, name, tar, &again, limit, &mut out)
            } else {
                repacker.repack(i, name, tar, &mut out)
            };
            done.map_err(|e| (e, name))?;
        }
        Ok(out)
    };
    match run(false) {
        Err((e, name)) => {
            check::refusal(&e, name);
            Outcome::Refused(e.to_string())
        }
        Ok(out) => {
            for t in 0..tarballs.len() {
                check::tarball(&out.tar(t), opts.policy(), opts.metadata());
            }
            let again = run(true)
                .map_err(|(e, _)| e)
                .expect("a run reading ahead of the turn failed");
            assert!(
                again.tarballs == out.tarballs && again.ends == out.ends,
                "a run reading ahead of the turn differs"
            );
            Outcome::Accepted
        }
    }
}
