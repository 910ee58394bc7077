//! Segment compressors and tarball framing.
//!
//! A tarball is `header + blocks… + trailer`. Blocks are compressed
//! independently on a pool of threads; a block may use the tail of the
//! previous block of the same piece as its dictionary (gzip), so the output
//! is a single standard gzip member, or a sequence of zstd frames.

mod gzip;
pub mod pool;
pub mod zip;
pub mod zip_block;
pub mod zip_links;
mod zstd;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::object_crc::ObjectCrc;
use crate::plan::Format;
use zip::EntryMeta;
use zip_block::ArchiveEntries;
pub use zip_block::{OpenFile, ZipItem, ZipOut, ZipShape};

/// Compression settings, shared by every worker.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    /// gzip or zstd.
    pub format: Format,
    /// Compression level: gzip 0-9, zstd 1-22 (checked by [`Codec::new`]).
    pub level: i32,
}

/// The run's codecs, one per format it writes.
#[derive(Clone, Debug)]
pub struct Codecs(Vec<Codec>);

impl Codecs {
    /// A codec for each of `formats`, at the level `levels` gives it.
    pub fn new(formats: &[Format], levels: &Levels) -> Result<Self> {
        let mut out: Vec<Codec> = Vec::new();
        for &f in formats {
            if !out.iter().any(|c| c.format == f) {
                out.push(Codec::new(f, levels.of(f))?);
            }
        }
        for (f, _) in &levels.per_format {
            if !formats.contains(f) {
                return Err(Error::Usage(format!(
                    "--level {}=…: this run writes no .{} tarball",
                    f.name(),
                    f.extension()
                )));
            }
        }
        Ok(Codecs(out))
    }

    /// The codec of `format`; the run's plan asked for it.
    pub fn get(&self, format: Format) -> Codec {
        *self
            .0
            .iter()
            .find(|c| c.format == format)
            .expect("a codec for every format of the plan")
    }

    /// Every codec.
    pub fn all(&self) -> &[Codec] {
        &self.0
    }
}

/// `--level`: one level for every format (`9`), or one per format
/// (`gz=9,zst=19`); a format without one takes its default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Levels {
    all: Option<i32>,
    per_format: Vec<(Format, i32)>,
}

impl Levels {
    /// Parses `--level`'s value.
    pub fn parse(s: &str) -> std::result::Result<Levels, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Levels::default());
        }
        if let Ok(n) = s.parse::<i32>() {
            return Ok(Levels {
                all: Some(n),
                per_format: Vec::new(),
            });
        }
        let mut per_format = Vec::new();
        for item in s.split(',') {
            let (f, n) = item.split_once('=').ok_or_else(|| {
                format!("{s:?}: expected a level (9) or FORMAT=LEVEL pairs (gz=9,zst=19)")
            })?;
            let format =
                Format::parse(f).ok_or_else(|| format!("{f:?}: not a format (gz, zst, zip)"))?;
            let n = n
                .trim()
                .parse()
                .map_err(|_| format!("{n:?}: not a level"))?;
            per_format.push((format, n));
        }
        Ok(Levels {
            all: None,
            per_format,
        })
    }

    /// The same, with `n` for `format`.
    pub fn with(&self, format: Format, n: i32) -> Levels {
        let mut out = self.clone();
        out.per_format.push((format, n));
        out
    }

    /// The level given for `format`, if any.
    pub fn of(&self, format: Format) -> Option<i32> {
        self.per_format
            .iter()
            .rev()
            .find(|(f, _)| *f == format)
            .map(|&(_, n)| n)
            .or(self.all)
    }
}

/// Uncompressed input of one block.
pub struct Block {
    /// The bytes to compress: at most the format's block size.
    pub data: Bytes,
    /// History: the end of the previous block of the same piece.
    pub dictionary: Option<Bytes>,
    /// ZIP only: the entries the block holds (`data` is their data).
    pub zip: Option<ZipShape>,
}

/// A compressed block with what the gzip trailer needs.
#[derive(Clone, Debug)]
pub struct Compressed {
    /// The compressed bytes, as they go into the tarball.
    pub bytes: Bytes,
    /// Their CRCs, for object checksums (computed here, on the pool).
    pub stored: ObjectCrc,
    /// CRC32 of the uncompressed block.
    pub(crate) crc: u32,
    /// Length of the uncompressed block.
    pub(crate) len: u64,
    /// ZIP only: what the block tells the archives that hold it.
    pub zip: Option<ZipOut>,
}

impl Codec {
    /// Checks `level` against the format's range; `None` takes the
    /// format's default level.
    pub fn new(format: Format, level: Option<i32>) -> Result<Self> {
        let level = level.unwrap_or(format.default_level());
        let ok = match format {
            Format::Gzip | Format::Zip => (0..=9).contains(&level),
            Format::Zstd => (1..=22).contains(&level),
        };
        if !ok {
            return Err(Error::Usage(format!(
                "--level {level} is out of range for {} (gz, zip: 0-9; zst: 1-22)",
                format.extension()
            )));
        }
        Ok(Codec { format, level })
    }

    /// Bytes that open every tarball.
    pub fn header(&self) -> Bytes {
        match self.format {
            Format::Gzip => gzip::header(),
            Format::Zstd | Format::Zip => Bytes::new(),
        }
    }

    /// Compresses one block; runs on a pool thread.
    pub fn compress(&self, block: &Block) -> Compressed {
        let (bytes, zip) = match (self.format, &block.zip) {
            (Format::Gzip, _) => (
                gzip::compress_block(self.level, &block.data, block.dictionary.as_deref()),
                None,
            ),
            (Format::Zstd, _) => (zstd::compress_frame(self.level, &block.data), None),
            (Format::Zip, Some(shape)) => {
                let (bytes, out) = zip_block::compress(
                    self.level,
                    shape,
                    &block.data,
                    block.dictionary.as_deref(),
                );
                (bytes, Some(out))
            }
            // Bytes that are no entry of a ZIP archive (the tar root).
            (Format::Zip, None) => (Bytes::new(), None),
        };
        Compressed {
            stored: ObjectCrc::of(&bytes),
            bytes,
            crc: crc32fast::hash(&block.data),
            len: block.data.len() as u64,
            zip,
        }
    }

    /// Bytes that close a tarball, which holds `at` bytes before them.
    /// For a tar: `tail` (the uncompressed bytes that end its content: the
    /// directory entries it gets at its end and the end-of-archive blocks,
    /// which the caller knows and the codec need not), compressed, and for
    /// gzip the CRC32 and length of everything. For ZIP: `dirs` (the same
    /// directories) as entries, then the central directory.
    pub fn trailer(
        &self,
        content: &mut TarballContent,
        tail: &[u8],
        dirs: Vec<EntryMeta>,
        at: u64,
    ) -> Result<Vec<Tail>> {
        Ok(match self.format {
            Format::Gzip => {
                let mut crc = content.crc.clone();
                crc.update(tail);
                let len = content.len + tail.len() as u64;
                vec![Tail::Bytes(gzip::trailer(
                    self.level,
                    tail,
                    crc.finalize(),
                    len,
                ))]
            }
            Format::Zstd => vec![Tail::Bytes(zstd::compress_frame(self.level, tail))],
            Format::Zip => content.zip.trailer(dirs, at)?,
        })
    }
}

/// Part of what closes a tarball.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Bytes of its own.
    Bytes(Bytes),
    /// `len` bytes the tarball already holds from `offset` on, once more
    /// (a link in a ZIP archive, stored as the file it leads to).
    Again {
        /// Where they start in the tarball.
        offset: u64,
        /// How many.
        len: u64,
    },
}

/// What a tarball's trailer needs of its content: the running CRC32 and
/// length of its uncompressed content (gzip), or the entries it holds
/// (ZIP).
#[derive(Default)]
pub struct TarballContent {
    crc: crc32fast::Hasher,
    pub(crate) len: u64,
    zip: ArchiveEntries,
}

impl TarballContent {
    /// Adds a block, in tarball order, which the tarball holds from `at`
    /// on. A ZIP archive refuses two names Windows would take for one.
    pub fn append(&mut self, block: &Compressed, at: u64) -> Result<()> {
        self.crc.combine(&crc32fast::Hasher::new_with_initial_len(
            block.crc, block.len,
        ));
        self.len += block.len;
        self.zip.append(block, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn assemble(codec: Codec, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = codec.header().to_vec();
        let mut content = TarballContent::default();
        for piece in pieces {
            let mut prev: Option<Bytes> = None;
            for chunk in piece.chunks(100_000) {
                let block = Block {
                    data: Bytes::copy_from_slice(chunk),
                    dictionary: prev.clone(),
                    zip: None,
                };
                let c = codec.compress(&block);
                content.append(&c, out.len() as u64).unwrap();
                out.extend_from_slice(&c.bytes);
                let keep = chunk.len().min(32 << 10);
                prev = Some(Bytes::copy_from_slice(&chunk[chunk.len() - keep..]));
            }
        }
        // The tar end-of-archive blocks, as the pipeline passes them.
        let at = out.len() as u64;
        for part in codec
            .trailer(&mut content, &[0; 1024], Vec::new(), at)
            .unwrap()
        {
            let Tail::Bytes(b) = part else {
                panic!("a tar trailer repeats nothing")
            };
            out.extend_from_slice(&b);
        }
        out
    }

    fn sample(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| ((i * 7 + i / 300) as u8) ^ seed).collect()
    }

    #[test]
    fn gzip_blocks_form_one_member() {
        let a = sample(250_000, 1);
        let b = sample(10, 2);
        let out = assemble(Codec::new(Format::Gzip, None).unwrap(), &[&a, &b]);
        let mut d = flate2::read::GzDecoder::new(&out[..]);
        let mut got = Vec::new();
        d.read_to_end(&mut got).unwrap();
        let mut want = a.clone();
        want.extend_from_slice(&b);
        want.extend_from_slice(&[0; 1024]);
        assert_eq!(got, want);
        // One member: nothing after the gzip trailer.
        assert!(d.into_inner().is_empty());
    }

    #[test]
    fn zstd_frames_concatenate() {
        let a = sample(300_000, 3);
        let out = assemble(Codec::new(Format::Zstd, Some(3)).unwrap(), &[&a]);
        let got = ::zstd::stream::decode_all(&out[..]).unwrap();
        assert_eq!(&got[..a.len()], &a[..]);
        assert_eq!(got.len(), a.len() + 1024);
    }

    #[test]
    fn levels_for_every_format_or_each() {
        let both = [Format::Gzip, Format::Zstd];
        let one = Codecs::new(&both, &Levels::parse("9").unwrap()).unwrap();
        assert_eq!(one.get(Format::Gzip).level, 9);
        assert_eq!(one.get(Format::Zstd).level, 9);
        let each = Codecs::new(&both, &Levels::parse("gz=1, zst=19").unwrap()).unwrap();
        assert_eq!(each.get(Format::Gzip).level, 1);
        assert_eq!(each.get(Format::Zstd).level, 19);
        let default = Codecs::new(&both, &Levels::parse("").unwrap()).unwrap();
        assert_eq!(default.get(Format::Zstd).level, 3);
        // Out of range for one format, or a format the run does not write.
        let e = Codecs::new(&both, &Levels::parse("15").unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("--level 15 is out of range for tar.gz"),
            "{e}"
        );
        let e = Codecs::new(&[Format::Gzip], &Levels::parse("zst=19").unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("this run writes no .tar.zst tarball"),
            "{e}"
        );
        for bad in ["gz", "bz2=3", "gz=x"] {
            assert!(Levels::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_tarball_is_valid() {
        let out = assemble(Codec::new(Format::Gzip, None).unwrap(), &[]);
        let mut got = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, vec![0; 1024]);
    }
}

#[cfg(test)]
mod determinism {
    use super::*;

    /// Output must depend on the input alone, not on what a thread
    /// compressed before (a reused deflate state once broke this).
    #[test]
    fn blocks_compress_identically_every_time() {
        let data: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 % 7 + (i % 251) as u8 / 60)
            .collect();
        let data = Bytes::from(data);
        for level in [1, 6] {
            let codec = Codec::new(Format::Gzip, Some(level)).unwrap();
            let first = codec.compress(&Block {
                data: data.clone(),
                dictionary: Some(data.slice(..32 << 10)),
                zip: None,
            });
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let data = data.clone();
                    std::thread::spawn(move || {
                        (0..20)
                            .map(|i| {
                                // Interleave other inputs so any leftover state would show.
                                let other = data.slice((t * 1000 + i * 77)..);
                                codec.compress(&Block {
                                    data: other,
                                    dictionary: None,
                                    zip: None,
                                });
                                codec
                                    .compress(&Block {
                                        data: data.clone(),
                                        dictionary: Some(data.slice(..32 << 10)),
                                        zip: None,
                                    })
                                    .bytes
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for out in h.join().unwrap() {
                    assert!(
                        out == first.bytes,
                        "level {level}: output differs between runs"
                    );
                }
            }
        }
    }
}
