//! Cuts a segment's tar bytes into blocks for the compression pool.
//!
//! A *piece* is a run of entries that go to the same set of tarballs (the
//! mask). Blocks inside a piece may use the previous block as history; a
//! new piece starts without history, because the tarballs that get it do not
//! all have the same bytes in front of it.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;

use super::tarfmt::{self, Header};
use crate::codec::Block;
use crate::error::Result;
use crate::plan::Format;

/// The tarballs (indices into the plan) that a block goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask(pub Arc<[usize]>);

impl Deref for Mask {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

/// Where finished blocks go (the compression pool, in order).
pub trait BlockOut {
    /// Takes the next block of the segment and the tarballs it goes to;
    /// blocks arrive in tar order.
    fn send(&mut self, block: Block, mask: Mask) -> Result<()>;
}

/// Cuts one segment's tar bytes into blocks of the format's block size,
/// starting a new piece (no history) whenever the mask changes, and passes
/// them to a [`BlockOut`].
pub struct PieceWriter<'a> {
    out: &'a mut dyn BlockOut,
    buf: Vec<u8>,
    mask: Mask,
    history: Option<Bytes>,
    block_size: usize,
    dictionary_size: usize,
    header_buf: Vec<u8>,
}

impl<'a> PieceWriter<'a> {
    /// A writer for one segment, with blocks sized and dictionaries kept
    /// for `format`; no tarball gets anything until [`PieceWriter::set_mask`].
    pub fn new(out: &'a mut dyn BlockOut, format: Format) -> Self {
        PieceWriter {
            out,
            buf: Vec::with_capacity(format.block_size()),
            mask: Mask(Arc::from(Vec::new())),
            history: None,
            block_size: format.block_size(),
            dictionary_size: format.dictionary_size(),
            header_buf: Vec::with_capacity(2048),
        }
    }

    /// Entries written from now on go to `mask`.
    pub fn set_mask(&mut self, mask: Mask) -> Result<()> {
        if mask != self.mask {
            self.end_piece()?;
            self.mask = mask;
        }
        Ok(())
    }

    pub(crate) fn header(&mut self, h: &Header<'_>) -> Result<()> {
        let mut hb = std::mem::take(&mut self.header_buf);
        hb.clear();
        tarfmt::write_header(&mut hb, h, &[]);
        let r = self.data(&hb);
        self.header_buf = hb;
        r
    }

    /// Appends tar bytes for the current mask (dropped when it is empty).
    pub fn data(&mut self, mut data: &[u8]) -> Result<()> {
        if self.mask.is_empty() {
            return Ok(());
        }
        while !data.is_empty() {
            let take = (self.block_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.block_size {
                self.emit()?;
            }
        }
        Ok(())
    }

    /// Zero padding after `size` bytes of member data.
    pub fn pad(&mut self, size: u64) -> Result<()> {
        const ZEROS: [u8; tarfmt::BLOCK] = [0; tarfmt::BLOCK];
        self.data(&ZEROS[..tarfmt::padding(size)])
    }

    fn emit(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.block_size),
        ));
        let dictionary = self.history.take();
        if self.dictionary_size > 0 {
            let keep = data.len().min(self.dictionary_size);
            self.history = Some(data.slice(data.len() - keep..));
        }
        self.out.send(Block { data, dictionary }, self.mask.clone())
    }

    fn end_piece(&mut self) -> Result<()> {
        self.emit()?;
        self.history = None;
        Ok(())
    }

    /// Ends the segment.
    pub fn finish(mut self) -> Result<()> {
        self.end_piece()
    }
}
