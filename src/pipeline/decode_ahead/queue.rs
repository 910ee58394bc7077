//! The queue between a decode thread and its scanning thread: a few fixed
//! buffers of decoded bytes go one way and come back empty (`Stream`, the
//! decode thread's end); the scanning thread reads one artifact's bytes
//! from it with no copy (`ArtifactBytes`).

use std::io::{self, BufRead, Read};

use crossbeam_channel::{Receiver, Sender};

use super::{Decoded, Msg, CHUNK, CHUNKS};
use crate::repack::artifact::ArtifactInput;

pub(super) enum State {
    Reading,
    Ended { complete: bool },
    Failed,
}

/// One artifact's decoded bytes, read with no copy through [`BufRead`].
pub struct ArtifactBytes<'a> {
    pub(super) decoded: &'a mut Decoded,
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) len: usize,
    pub(super) state: State,
}

impl ArtifactInput for ArtifactBytes<'_> {
    /// Whether the artifact was read to its end and nothing followed its
    /// compressed stream; false until its end was reached.
    fn complete(&self) -> bool {
        matches!(self.state, State::Ended { complete: true })
    }
}

impl ArtifactBytes<'_> {
    fn recycle(&mut self) {
        if !self.buf.is_empty() {
            // The stage is gone only when the run is over.
            let _ = self.decoded.free.send(std::mem::take(&mut self.buf));
        }
        self.pos = 0;
        self.len = 0;
    }
}

impl Drop for ArtifactBytes<'_> {
    fn drop(&mut self) {
        self.recycle();
    }
}

impl BufRead for ArtifactBytes<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            match self.state {
                State::Reading => {}
                State::Ended { .. } => return Ok(&[]),
                State::Failed => return Err(io::Error::other("decoding failed earlier")),
            }
            self.recycle();
            match self.decoded.rx.recv() {
                Ok(Msg::Data(buf, n)) => (self.buf, self.len) = (buf, n),
                Ok(Msg::End { complete }) => self.state = State::Ended { complete },
                Ok(Msg::ReadError(e)) => {
                    self.state = State::Failed;
                    return Err(e);
                }
                Ok(_) | Err(_) => {
                    self.state = State::Failed;
                    return Err(io::Error::other("the decode thread stopped"));
                }
            }
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

impl Read for ArtifactBytes<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The stage's end of the queue: buffers come back through `free`, and at
/// most `CHUNKS` are ever made.
pub(super) struct Stream {
    pub(super) tx: Sender<Msg>,
    pub(super) free: Receiver<Vec<u8>>,
    pub(super) spare: Vec<Vec<u8>>,
    pub(super) made: usize,
}

impl Stream {
    /// False once the scanning thread is gone.
    pub(super) fn send(&self, m: Msg) -> bool {
        self.tx.send(m).is_ok()
    }

    pub(super) fn buffer(&mut self) -> Option<Vec<u8>> {
        if let Some(b) = self.spare.pop() {
            return Some(b);
        }
        if let Ok(b) = self.free.try_recv() {
            return Some(b);
        }
        if self.made < CHUNKS {
            self.made += 1;
            return Some(vec![0; CHUNK]);
        }
        self.free.recv().ok()
    }
}
