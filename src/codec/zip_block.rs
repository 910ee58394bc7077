//! ZIP archives from the blocks the ZIP lane cuts
//! (`crate::repack::zip_lane`): each block's entries compressed on a pool
//! thread, the data descriptor of a file cut into several blocks added in
//! the fan-out (which sees them in order), and each archive's central
//! directory made from the entries it was given, at the offsets it holds
//! them, once its last block is written.
//!
//! An entry's bytes (local header, data, descriptor) do not depend on where
//! it sits, so an entry several archives hold is compressed once and, with
//! an S3 destination, sent once; only the central directory is each
//! archive's own.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use flate2::FlushCompress;

use super::gzip::deflate;
use super::zip::{
    central_directory, data_descriptor, local_header, CentralEntry, EntryMeta, Method,
    END_OF_DEFLATE,
};
use super::zip_links::{resolve, Found, ZipLink};
use super::{Compressed, Tail};
use crate::error::{Error, Kind, Result};
use crate::object_crc::ObjectCrc;
use crate::plan::windows_names::CaseFold;

/// What a ZIP block holds.
#[derive(Clone, Debug)]
pub enum ZipShape {
    /// Whole entries: each one's metadata and its data's range in the
    /// block.
    Entries(Vec<ZipItem>),
    /// The local header of a file whose data follows in blocks of its own.
    Opens(EntryMeta),
    /// Data of the file opened last; `last`: its end.
    Data {
        /// Whether the file's data ends with this block.
        last: bool,
    },
}

/// One item of a block of whole entries.
#[derive(Clone, Debug)]
pub enum ZipItem {
    /// A whole entry.
    Entry {
        /// Its name, type, mode and time.
        meta: EntryMeta,
        /// Its data in the block.
        data: Range<usize>,
    },
    /// A link (no data): stored at the archive's end as the file it leads
    /// to (see [`super::zip_links`]).
    Link(Arc<ZipLink>),
}

/// An entry a block or an archive lists, in order.
#[derive(Clone, Debug)]
pub enum Listed {
    /// An entry with its bytes, at an offset from the block's or the
    /// archive's start.
    Entry(CentralEntry),
    /// A link, whose entry the archive's end makes.
    Link(Arc<ZipLink>),
}

/// What a compressed ZIP block tells the archives that hold it.
#[derive(Clone, Debug)]
pub enum ZipOut {
    /// Whole entries, at offsets from the block's start, and links.
    Entries(Vec<Listed>),
    /// A file opens (its local header is the block).
    Opens(EntryMeta),
    /// Part of an open file's data; `last`: its end (the fan-out makes
    /// that one `Closes`).
    Data {
        /// Whether the file's data ends with this block.
        last: bool,
    },
    /// The open file's last data and its descriptor: what the central
    /// directory says of it.
    Closes {
        /// CRC-32 of its data.
        crc: u32,
        /// Its data as stored.
        compressed: u64,
        /// Its data extracted.
        uncompressed: u64,
    },
}

/// Compresses one ZIP block at `level` (a pool thread runs it).
pub fn compress(
    level: i32,
    shape: &ZipShape,
    data: &[u8],
    dictionary: Option<&[u8]>,
) -> (Bytes, ZipOut) {
    match shape {
        ZipShape::Entries(items) => {
            let mut out = Vec::with_capacity(data.len() / 2 + 64 * items.len());
            let mut entries = Vec::with_capacity(items.len());
            for item in items {
                let (meta, range) = match item {
                    ZipItem::Entry { meta, data } => (meta, data),
                    ZipItem::Link(link) => {
                        entries.push(Listed::Link(link.clone()));
                        continue;
                    }
                };
                let offset = out.len() as u64;
                let bytes = &data[range.clone()];
                let crc = crc32fast::hash(bytes);
                // Stored when Deflate does not make it smaller (and for
                // directories and empty files).
                let deflated = (!meta.is_dir && !bytes.is_empty())
                    .then(|| deflate(level, bytes, None, FlushCompress::Finish))
                    .filter(|d| d.len() < bytes.len());
                let method = if deflated.is_some() {
                    Method::Deflated
                } else {
                    Method::Stored
                };
                let payload: &[u8] = deflated.as_deref().unwrap_or(bytes);
                out.extend_from_slice(&local_header(meta, method));
                out.extend_from_slice(payload);
                out.extend_from_slice(&data_descriptor(
                    crc,
                    payload.len() as u64,
                    bytes.len() as u64,
                ));
                entries.push(Listed::Entry(CentralEntry {
                    meta: meta.clone(),
                    method,
                    crc,
                    compressed: payload.len() as u64,
                    uncompressed: bytes.len() as u64,
                    offset,
                }));
            }
            (Bytes::from(out), ZipOut::Entries(entries))
        }
        ZipShape::Opens(meta) => (
            Bytes::from(local_header(meta, Method::Deflated)),
            ZipOut::Opens(meta.clone()),
        ),
        ZipShape::Data { last } => {
            let mut out = deflate(level, data, dictionary, FlushCompress::Sync).to_vec();
            if *last {
                out.extend_from_slice(&END_OF_DEFLATE);
            }
            (Bytes::from(out), ZipOut::Data { last: *last })
        }
    }
}

/// The file cut into blocks whose data is passing through the fan-out:
/// its CRC and sizes so far. One per run (the ZIP lane's blocks arrive in
/// order).
#[derive(Default)]
pub struct OpenFile {
    crc: Option<crc32fast::Hasher>,
    compressed: u64,
    uncompressed: u64,
}

impl OpenFile {
    /// Follows the ZIP block `c` (in plan order); the last block of a
    /// cut file gets its data descriptor and says what it closes.
    pub fn pass(&mut self, c: &mut Compressed) {
        let last = match &c.zip {
            Some(ZipOut::Opens(_)) => {
                *self = OpenFile::default();
                return;
            }
            Some(ZipOut::Data { last }) => *last,
            _ => return,
        };
        self.crc
            .get_or_insert_with(crc32fast::Hasher::new)
            .combine(&crc32fast::Hasher::new_with_initial_len(c.crc, c.len));
        self.compressed += c.bytes.len() as u64;
        self.uncompressed += c.len;
        if last {
            let crc = self.crc.take().unwrap_or_default().finalize();
            let descriptor = data_descriptor(crc, self.compressed, self.uncompressed);
            c.stored = c.stored.then(ObjectCrc::of(&descriptor));
            c.bytes = Bytes::from([&c.bytes[..], &descriptor[..]].concat());
            c.zip = Some(ZipOut::Closes {
                crc,
                compressed: self.compressed,
                uncompressed: self.uncompressed,
            });
            *self = OpenFile::default();
        }
    }
}

/// One ZIP archive's entries so far, for its central directory.
#[derive(Default)]
pub struct ArchiveEntries {
    entries: Vec<Listed>,
    /// Where each name is in `entries`: a name written again (a later
    /// artifact's file, under `--on-conflict last-wins`) takes the earlier
    /// one's place, as a tar extraction leaves the later; the earlier
    /// entry's bytes stay in the archive, listed nowhere.
    listed: HashMap<String, usize>,
    /// The cut file open, and where its local header starts.
    open: Option<(EntryMeta, u64)>,
    names: CaseFold,
}

impl ArchiveEntries {
    /// Takes the block `c`, which this archive holds from `at` on.
    /// Two names Windows would take for one fail.
    pub fn append(&mut self, c: &Compressed, at: u64) -> Result<()> {
        match &c.zip {
            Some(ZipOut::Entries(entries)) => {
                for e in entries {
                    self.add(match e {
                        Listed::Entry(e) => Listed::Entry(CentralEntry {
                            offset: at + e.offset,
                            ..e.clone()
                        }),
                        Listed::Link(l) => Listed::Link(l.clone()),
                    })?;
                }
            }
            Some(ZipOut::Opens(meta)) => self.open = Some((meta.clone(), at)),
            Some(ZipOut::Closes {
                crc,
                compressed,
                uncompressed,
            }) => {
                let (meta, offset) = self
                    .open
                    .take()
                    .ok_or_else(|| Error::internal("a ZIP file closed that was not open"))?;
                self.add(Listed::Entry(CentralEntry {
                    meta,
                    method: Method::Deflated,
                    crc: *crc,
                    compressed: *compressed,
                    uncompressed: *uncompressed,
                    offset,
                }))?;
            }
            Some(ZipOut::Data { .. }) | None => {}
        }
        Ok(())
    }

    fn add(&mut self, e: Listed) -> Result<()> {
        let name = match &e {
            Listed::Entry(e) => &e.meta.name,
            Listed::Link(l) => &l.name,
        };
        if let Some(clash) = self.names.add(name) {
            return Err(Error::failed(
                Kind::Conflict,
                format!(
                    "{} and {name} differ only in case: Windows would take them for one ({clash})",
                    clash.earlier_path
                ),
            ));
        }
        match self.listed.get(name) {
            Some(&i) => self.entries[i] = e,
            None => {
                self.listed.insert(name.clone(), self.entries.len());
                self.entries.push(e);
            }
        }
        Ok(())
    }

    /// What the archive holds at `path` (no trailing `/`).
    fn find(&self, path: &str) -> Option<Found<'_>> {
        let i = self
            .listed
            .get(path)
            .or_else(|| self.listed.get(&format!("{path}/")))?;
        Some(match &self.entries[*i] {
            Listed::Entry(e) if e.meta.is_dir => Found::Dir,
            Listed::Entry(e) => Found::File(e),
            Listed::Link(l) => Found::Link(l),
        })
    }

    /// The archive's last bytes, from `at` on: `dirs` (directory entries
    /// some archives need at their end) as entries, each link as the file
    /// it leads to (a local header of its own, then that file's data
    /// again, as the archive holds it), then the central directory.
    pub fn trailer(&mut self, dirs: Vec<EntryMeta>, at: u64) -> Result<Vec<Tail>> {
        let mut tail = Vec::new();
        let mut out = Vec::new();
        // Bytes of `tail` before `out`.
        let mut before = 0;
        for meta in dirs {
            let offset = at + out.len() as u64;
            out.extend_from_slice(&local_header(&meta, Method::Stored));
            out.extend_from_slice(&data_descriptor(0, 0, 0));
            self.add(Listed::Entry(CentralEntry {
                meta,
                method: Method::Stored,
                crc: 0,
                compressed: 0,
                uncompressed: 0,
                offset,
            }))?;
        }
        for i in 0..self.entries.len() {
            let Listed::Link(link) = &self.entries[i] else {
                continue;
            };
            let target = resolve(link, &|p| self.find(p))
                .map_err(|why| {
                    link.refused(&format!(
                        "{why}; a ZIP archive holds files and directories, and stores a link as the file it leads to"
                    ))
                })?
                .clone();
            let meta = EntryMeta {
                name: link.name.clone(),
                ..target.meta.clone()
            };
            let offset = at + before + out.len() as u64;
            out.extend_from_slice(&local_header(&meta, target.method));
            if target.compressed > 0 {
                let data = target.offset + local_header(&target.meta, target.method).len() as u64;
                before += out.len() as u64 + target.compressed;
                tail.push(Tail::Bytes(Bytes::from(std::mem::take(&mut out))));
                tail.push(Tail::Again {
                    offset: data,
                    len: target.compressed,
                });
            }
            out.extend_from_slice(&data_descriptor(
                target.crc,
                target.compressed,
                target.uncompressed,
            ));
            self.entries[i] = Listed::Entry(CentralEntry {
                meta,
                offset,
                ..target
            });
        }
        let cd_offset = at + before + out.len() as u64;
        let entries: Vec<CentralEntry> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Listed::Entry(e) => Some(e.clone()),
                Listed::Link(_) => None,
            })
            .collect();
        out.extend_from_slice(&central_directory(&entries, cd_offset));
        tail.push(Tail::Bytes(Bytes::from(out)));
        Ok(tail)
    }
}

/// A link the block `c` lists, if any.
pub fn link_in(c: &Compressed) -> Option<&ZipLink> {
    let Some(ZipOut::Entries(entries)) = &c.zip else {
        return None;
    };
    entries.iter().find_map(|e| match e {
        Listed::Link(l) => Some(&**l),
        Listed::Entry(_) => None,
    })
}

/// The error for a link in an archive whose destination cannot read its
/// own bytes back (at `location`): refused as soon as it is met.
pub fn cannot_repeat(link: &ZipLink, location: &str) -> Error {
    let place = match location {
        "-" => "standard output",
        _ => location,
    };
    link.refused(&format!(
        "a ZIP archive stores a link as the file it leads to, repeating bytes it holds, which rockpack reads back from a directory or from an S3 store that copies (UploadPartCopy), not from {place}; pack this run's ZIP archives into a directory or S3, or leave the member out with the set's exclude-paths"
    ))
}
