//! The ZIP lane of a segment: follows the tar stream the repacker writes,
//! entry by entry, and cuts it into blocks of ZIP entries for the
//! compression pool.
//!
//! Small entries (header, data and padding within a block) go whole into
//! a block of several entries, each its own Deflate stream, compressed by
//! one pool thread. A larger file is cut: a block that opens it (its local
//! header), then blocks of its data, each compressed on its own thread with
//! the end of the one before as history (as gzip's are), the last marked so
//! that the stream is closed; the fan-out adds its data descriptor, once it
//! knows the compressed size. The tar bytes themselves (headers, padding,
//! the root `./`) go nowhere: a ZIP archive is made of the entries alone.
//!
//! A link goes with the entries, without bytes: the archive's end stores
//! it as the file it leads to ([`crate::codec::zip_links`]). (Paths
//! Windows cannot hold were refused as the artifact was scanned.)

use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;

use super::tar_header::parse_numeric;
use super::tar_reader::{Member, TarReader};
use super::tarfmt::BLOCK;
use crate::codec::zip::EntryMeta;
use crate::codec::zip_block::{ZipItem, ZipShape};
use crate::codec::zip_links::ZipLink;
use crate::codec::Block;
use crate::error::{Error, Result};

/// Where the lane is in the tar stream.
enum State {
    /// Collecting a member's header blocks (extended headers first).
    Header,
    /// Skipping the data of an extended header (`left` bytes, padding
    /// included), kept with the header blocks.
    Extended { left: usize },
    /// A file's data: `left` bytes, then `pad` bytes of padding.
    Data { left: u64, pad: usize },
    /// Padding after a file's data.
    Pad { left: usize },
}

/// A file whose data is cut into blocks of its own.
struct Large {
    /// Data gathered for the next block.
    buf: Vec<u8>,
    /// The end of the block before, as history.
    history: Option<Bytes>,
}

/// The ZIP lane of one segment (see the module's docs).
pub(super) struct ZipLane {
    artifact: String,
    block_size: usize,
    dictionary_size: usize,
    state: State,
    /// Header bytes of the member being read.
    header: Vec<u8>,
    /// The block of whole entries being filled: their data and items.
    data: Vec<u8>,
    items: Vec<ZipItem>,
    /// The whole entry being read, if small: its metadata and where its
    /// data starts in `data`.
    current: Option<(EntryMeta, usize)>,
    large: Option<Large>,
}

impl ZipLane {
    /// A lane for `artifact`'s segment.
    pub(super) fn new(artifact: &str, block_size: usize, dictionary_size: usize) -> ZipLane {
        ZipLane {
            artifact: artifact.to_string(),
            block_size,
            dictionary_size,
            state: State::Header,
            header: Vec::with_capacity(BLOCK),
            data: Vec::new(),
            items: Vec::new(),
            current: None,
            large: None,
        }
    }

    /// Takes the next tar bytes of the lane's current piece; blocks ready
    /// go to `send`.
    pub(super) fn data(
        &mut self,
        mut bytes: &[u8],
        send: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Header => {
                    let want = BLOCK - self.header.len() % BLOCK;
                    let take = want.min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.header.len().is_multiple_of(BLOCK) {
                        self.header_block(send)?;
                    }
                }
                State::Extended { left } => {
                    let take = (*left).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    *left -= take;
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Data { left, pad } => {
                    let take = (*left).min(bytes.len() as u64) as usize;
                    let (now, rest) = bytes.split_at(take);
                    bytes = rest;
                    *left -= take as u64;
                    let (done, pad) = (*left == 0, *pad);
                    self.file_data(now, done, send)?;
                    if done {
                        self.state = State::Pad { left: pad };
                        self.end_entry(send)?;
                    }
                }
                State::Pad { left } => {
                    let take = (*left).min(bytes.len());
                    bytes = &bytes[take..];
                    *left -= take;
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
            }
        }
        if let State::Pad { left: 0 } = self.state {
            self.state = State::Header;
        }
        Ok(())
    }

    /// A header block is complete: an extended header's data follows, or
    /// the member is known.
    fn header_block(&mut self, send: &mut dyn FnMut(Block) -> Result<()>) -> Result<()> {
        let block = &self.header[self.header.len() - BLOCK..];
        if block.iter().all(|&b| b == 0) {
            return Err(Error::internal(format!(
                "{}: a zero block inside the repacked stream",
                self.artifact
            )));
        }
        let typeflag = block[156];
        if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            let size = parse_numeric(&block[124..136]).map_err(Error::internal)? as usize;
            self.state = State::Extended {
                left: size.div_ceil(BLOCK) * BLOCK,
            };
            if size == 0 {
                self.state = State::Header;
            }
            return Ok(());
        }
        let header = std::mem::take(&mut self.header);
        let mut reader = TarReader::new(Cursor::new(&header[..]));
        let member = reader
            .next_member()
            .map_err(|e| e.into_error(&self.artifact))?
            .ok_or_else(|| Error::internal("a repacked header without a member"))?;
        let path = String::from_utf8_lossy(&member.path).into_owned();
        let name = path.trim_start_matches("./").to_string();
        let (is_dir, size) = match member.typeflag {
            b'5' => (true, 0),
            b'0' | 0 => (false, member.size),
            b'1' | b'2' => return self.link(&member, name),
            _ => {
                return Err(Error::internal(format!(
                    "{name}: a {} in the repacked stream",
                    member.type_name()
                )))
            }
        };
        self.state = State::Data {
            left: size,
            pad: crate::repack::tarfmt::padding(size),
        };
        if name.is_empty() || name == "." {
            // The root entry: a ZIP archive has no wrapping directory.
            if size > 0 {
                return Err(Error::internal("a root entry with data"));
            }
            self.state = State::Header;
            return Ok(());
        }
        let meta = EntryMeta {
            name: if is_dir { format!("{name}/") } else { name },
            is_dir,
            mode: member.mode,
            mtime: member.mtime.max(0) as u64,
        };
        // Whole when its data fits a block with the entries before it, or
        // alone in a block; larger files are cut.
        if (size as usize) > self.block_size {
            self.flush(send)?;
            send(block_of(ZipShape::Opens(meta), Bytes::new(), None))?;
            self.large = Some(Large {
                buf: Vec::with_capacity(self.block_size),
                history: None,
            });
        } else {
            if self.data.len() + size as usize > self.block_size {
                self.flush(send)?;
            }
            self.current = Some((meta, self.data.len()));
        }
        if size == 0 {
            self.state = State::Header;
            self.end_entry(send)?;
        }
        Ok(())
    }

    /// A link: listed with the entries, stored at the archive's end as
    /// the file it leads to (`crate::codec::zip_links`).
    fn link(&mut self, member: &Member, name: String) -> Result<()> {
        let link = ZipLink {
            name,
            target: String::from_utf8_lossy(&member.link).into_owned(),
            hard: member.typeflag == b'1',
            artifact: self.artifact.clone(),
            member: String::from_utf8_lossy(&member.path).into_owned(),
        };
        self.state = State::Header;
        self.items.push(ZipItem::Link(Arc::new(link)));
        Ok(())
    }

    /// Data of the current file.
    fn file_data(
        &mut self,
        bytes: &[u8],
        last: bool,
        send: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<()> {
        let Some(large) = &mut self.large else {
            self.data.extend_from_slice(bytes);
            return Ok(());
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (self.block_size - large.buf.len()).min(rest.len());
            large.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let full = large.buf.len() == self.block_size;
            // The last block is sent by `end_entry`, marked as the last.
            if full && !(last && rest.is_empty()) {
                let data = Bytes::from(std::mem::replace(
                    &mut large.buf,
                    Vec::with_capacity(self.block_size),
                ));
                let history = large.history.take();
                let keep = data.len().min(self.dictionary_size);
                large.history = Some(data.slice(data.len() - keep..));
                send(block_of(ZipShape::Data { last: false }, data, history))?;
            }
        }
        Ok(())
    }

    /// The current entry's data ended.
    fn end_entry(&mut self, send: &mut dyn FnMut(Block) -> Result<()>) -> Result<()> {
        if let Some(large) = self.large.take() {
            let data = Bytes::from(large.buf);
            return send(block_of(ZipShape::Data { last: true }, data, large.history));
        }
        if let Some((meta, start)) = self.current.take() {
            self.items.push(ZipItem::Entry {
                meta,
                data: start..self.data.len(),
            });
        }
        Ok(())
    }

    /// Sends the block of whole entries being filled (the piece ends, or
    /// the next entry does not fit).
    pub(super) fn flush(&mut self, send: &mut dyn FnMut(Block) -> Result<()>) -> Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        if self.current.is_some() {
            return Err(Error::internal("a ZIP block cut inside an entry"));
        }
        let data = Bytes::from(std::mem::take(&mut self.data));
        let items = std::mem::take(&mut self.items);
        send(block_of(ZipShape::Entries(items), data, None))
    }
}

fn block_of(shape: ZipShape, data: Bytes, dictionary: Option<Bytes>) -> Block {
    Block {
        data,
        dictionary,
        zip: Some(shape),
    }
}
