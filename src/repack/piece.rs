//! Cuts a segment's tar bytes into blocks for the compression pool.
//!
//! A *piece* is a run of entries that go to the same set of tarballs (the
//! mask) of one format. Blocks inside a piece may use the previous block as history; a
//! new piece starts without history, because the tarballs that get it do not
//! all have the same bytes in front of it.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;

use super::zip_lane::ZipLane;
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

impl Mask {
    /// No tarball: what an entry every tarball already holds goes to.
    pub fn none() -> Mask {
        Mask(Arc::from(Vec::new()))
    }
}

/// Where finished blocks go (the compression pool, in order).
pub trait BlockOut {
    /// Takes the next block of the segment in `format` and the tarballs
    /// (all of that format) it goes to; each format's blocks arrive in tar
    /// order.
    fn send(&mut self, block: Block, format: Format, mask: Mask) -> Result<()>;

    /// Takes tar bytes (a directory entry) that `tarballs` get at their
    /// end, before the end-of-archive blocks, in the order given.
    fn at_end(&mut self, tarballs: &Mask, bytes: &[u8]) -> Result<()>;
}

/// One format's blocks of a segment: the tarballs of that format, the
/// block being filled and the history of the piece.
struct Lane {
    format: Format,
    /// in_lane[tarball]: whether the tarball has this format.
    in_lane: Vec<bool>,
    /// Every tarball of the plan is in this lane: masks pass unchanged.
    all: bool,
    mask: Mask,
    /// The bytes going past go to none of this lane's tarballs: they are
    /// left out, and the piece goes on after them.
    skipping: bool,
    buf: Vec<u8>,
    history: Option<Bytes>,
    /// A ZIP lane follows the entries instead of cutting bytes.
    zip: Option<ZipLane>,
}

impl Lane {
    fn project(&self, mask: &Mask) -> Mask {
        if self.all {
            return mask.clone();
        }
        Mask::from(
            mask.iter()
                .copied()
                .filter(|&t| self.in_lane[t])
                .collect::<Vec<_>>(),
        )
    }
}

/// Cuts one segment's tar bytes into blocks of each format's block size,
/// one lane per format, starting a new piece (no history) in a lane
/// whenever the tarballs of that format the bytes go to change, and passes
/// them to a [`BlockOut`]. A lane sees exactly what a run of its format
/// alone would: each format's output does not depend on the others.
pub struct PieceWriter<'a> {
    out: &'a mut dyn BlockOut,
    lanes: Vec<Lane>,
    mask: Mask,
}

impl<'a> PieceWriter<'a> {
    /// A writer for `artifact`'s segment; `formats[t]` is tarball t's
    /// format. No tarball gets anything until [`PieceWriter::set_mask`].
    pub fn new(out: &'a mut dyn BlockOut, formats: &[Format], artifact: &str) -> Self {
        let mut lanes: Vec<Lane> = Vec::new();
        for &f in formats {
            if lanes.iter().any(|l| l.format == f) {
                continue;
            }
            let in_lane: Vec<bool> = formats.iter().map(|&g| g == f).collect();
            lanes.push(Lane {
                format: f,
                all: in_lane.iter().all(|&x| x),
                in_lane,
                mask: Mask::none(),
                skipping: false,
                buf: Vec::with_capacity(f.block_size()),
                history: None,
                zip: (f == Format::Zip)
                    .then(|| ZipLane::new(artifact, f.block_size(), f.dictionary_size())),
            });
        }
        PieceWriter {
            out,
            lanes,
            mask: Mask::none(),
        }
    }

    /// Entries written from now on go to `mask`.
    pub fn set_mask(&mut self, mask: Mask) -> Result<()> {
        if mask == self.mask {
            return Ok(());
        }
        for i in 0..self.lanes.len() {
            let projected = self.lanes[i].project(&mask);
            // Bytes no tarball of the lane gets (a copy every one holds)
            // do not end its piece: the tarballs of the piece go on
            // without them.
            self.lanes[i].skipping = projected.is_empty();
            if !projected.is_empty() && projected != self.lanes[i].mask {
                self.end_piece(i)?;
                self.lanes[i].mask = projected;
            }
        }
        self.mask = mask;
        Ok(())
    }

    /// Passes on `bytes` that `tarballs` get at their end.
    pub fn at_end(&mut self, tarballs: &Mask, bytes: &[u8]) -> Result<()> {
        self.out.at_end(tarballs, bytes)
    }

    /// Appends tar bytes for the current mask (dropped when it is empty).
    pub fn data(&mut self, data: &[u8]) -> Result<()> {
        for i in 0..self.lanes.len() {
            if self.lanes[i].skipping || self.lanes[i].mask.is_empty() {
                continue;
            }
            let lane = &mut self.lanes[i];
            if let Some(zip) = &mut lane.zip {
                let (format, mask, out) = (lane.format, &lane.mask, &mut *self.out);
                zip.data(data, &mut |b| out.send(b, format, mask.clone()))?;
                continue;
            }
            let mut rest = data;
            while !rest.is_empty() {
                let lane = &mut self.lanes[i];
                let block_size = lane.format.block_size();
                let take = (block_size - lane.buf.len()).min(rest.len());
                lane.buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if lane.buf.len() == block_size {
                    self.emit(i)?;
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, i: usize) -> Result<()> {
        let lane = &mut self.lanes[i];
        if lane.buf.is_empty() {
            return Ok(());
        }
        let block_size = lane.format.block_size();
        let data = Bytes::from(std::mem::replace(
            &mut lane.buf,
            Vec::with_capacity(block_size),
        ));
        let dictionary = lane.history.take();
        let dictionary_size = lane.format.dictionary_size();
        if dictionary_size > 0 {
            let keep = data.len().min(dictionary_size);
            lane.history = Some(data.slice(data.len() - keep..));
        }
        let (format, mask) = (lane.format, lane.mask.clone());
        let block = Block {
            data,
            dictionary,
            zip: None,
        };
        self.out.send(block, format, mask)
    }

    fn end_piece(&mut self, i: usize) -> Result<()> {
        let lane = &mut self.lanes[i];
        if let Some(zip) = &mut lane.zip {
            let (format, mask, out) = (lane.format, &lane.mask, &mut *self.out);
            return zip.flush(&mut |b| out.send(b, format, mask.clone()));
        }
        self.emit(i)?;
        self.lanes[i].history = None;
        Ok(())
    }

    /// Ends the segment.
    pub fn finish(mut self) -> Result<()> {
        for i in 0..self.lanes.len() {
            self.end_piece(i)?;
        }
        Ok(())
    }
}
