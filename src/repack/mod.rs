//! Decode an artifact, apply the flattening rules and write its entries as
//! tar blocks: the uncompressed side of a segment.

pub(crate) mod artifact;
pub mod at_end;
pub mod conflict;
mod decide;
pub mod decode;
mod exclusions;
pub mod flatten;
mod pending;
mod piece;
mod scan;
mod tar_header;
pub mod tar_reader;
pub mod tarfmt;
pub mod window;
mod zip_lane;

use std::cell::RefCell;
use std::io::{BufRead, Read};
use std::sync::Arc;

pub use at_end::AtEnd;
pub use conflict::ConflictPolicy;
pub use piece::{BlockOut, Mask, PieceWriter};

use crate::error::{Error, Result};
use crate::plan::Format;
use crate::units::exact_bytes;
use flatten::{kind_of, Manifest, MANIFEST_NAME, MAX_MANIFEST};
use tar_reader::TarReader;
use tarfmt::Kind;

/// Files that share a path with an earlier artifact are buffered up to this
/// size (by default) so their content can be compared before their header
/// is written.
pub const COMPARE_BUFFER: u64 = 32 << 20;

/// Reads an artifact's first member, which must be the regular file
/// `artifact_manifest.txt` of at most [`MAX_MANIFEST`] bytes, and parses
/// it. The one reader of artifact manifests: repacking and the run's kpack
/// detection (which peeks into `base_lib_generic`) refuse the same inputs.
pub fn read_manifest<R: Read>(tar: &mut TarReader<R>, artifact: &str) -> Result<Manifest> {
    let m = tar
        .next_member()
        .map_err(|e| e.into_error(artifact))?
        .ok_or_else(|| {
            Error::artifact(
                artifact,
                None,
                "empty archive: artifact_manifest.txt missing",
            )
        })?;
    if m.path != MANIFEST_NAME || kind_of(&m) != Ok(Kind::File) {
        return Err(Error::artifact(
            artifact,
            Some(&m.path),
            "the first member must be the regular file artifact_manifest.txt",
        ));
    }
    let text = read_small_member(tar, artifact, &m, MAX_MANIFEST)?;
    Manifest::parse(&text).map_err(|e| Error::artifact(artifact, Some(MANIFEST_NAME), e))
}

/// The data of `m`, the member just read, whole; one of more than `limit`
/// bytes is refused (a small file a crafted archive could make huge).
pub fn read_small_member<R: Read>(
    tar: &mut TarReader<R>,
    artifact: &str,
    m: &tar_reader::Member,
    limit: u64,
) -> Result<Vec<u8>> {
    if m.size > limit {
        let file = m.path.rsplit(|&b| b == b'/').next().unwrap_or(&m.path);
        return Err(Error::artifact(
            artifact,
            Some(&m.path),
            format!(
                "{} is {} bytes, over the {} limit",
                String::from_utf8_lossy(file),
                m.size,
                exact_bytes(limit)
            ),
        ));
    }
    let mut data = vec![0u8; m.size as usize];
    read_data(tar, artifact, &mut data)?;
    Ok(data)
}

/// Fills `dst` from the current member's data.
fn read_data<R: Read>(tar: &mut TarReader<R>, artifact: &str, mut dst: &mut [u8]) -> Result<()> {
    while !dst.is_empty() {
        let n = tar.read_data(dst).map_err(|e| e.into_error(artifact))?;
        dst = &mut dst[n..];
    }
    Ok(())
}

/// Repacks a run's artifacts one after the other on the calling thread,
/// through the same [`artifact::repack`] the pipeline runs on several.
pub struct Repacker {
    rules: scan::Rules,
    /// The conflict table; `None` once an artifact failed (the run is over).
    decider: Option<decide::Decider>,
    /// Each tarball's format: which lane of the piece writer it reads.
    formats: Vec<Format>,
    pending: pending::Pending,
}

/// What repacking one artifact did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArtifactStats {
    /// Members after `artifact_manifest.txt`, prefix directories (not
    /// stored) included.
    pub members: u64,
    /// Bytes of regular-file data read, copies no tarball needed included.
    pub data_bytes: u64,
}

impl Repacker {
    /// State for a run of `plan`: artifact indices given to
    /// [`Repacker::repack`] are indices into `plan.artifacts`. `metadata`
    /// says how entries' mtimes and modes are written. Fails on an
    /// `exclude-paths` pattern that does not compile.
    pub fn new(
        plan: &crate::plan::Plan,
        policy: ConflictPolicy,
        metadata: flatten::Metadata,
    ) -> Result<Self> {
        Ok(Repacker {
            rules: scan::Rules::new(plan, metadata)?,
            decider: Some(decide::Decider::new(plan, policy, COMPARE_BUFFER)),
            formats: plan.tarballs.iter().map(|t| t.format).collect(),
            pending: pending::Pending::default(),
        })
    }

    /// Sets how large a shared file may be to be compared before it is
    /// written (larger ones are compared after streaming).
    pub fn with_compare_buffer(mut self, bytes: u64) -> Self {
        if let Some(d) = self.decider.as_mut() {
            d.set_compare_buffer(bytes);
        }
        self
    }

    /// Reads one decoded artifact and writes its entries to `out`, decided
    /// as they are read (the artifact holds the turn).
    pub fn repack<R: BufRead>(
        &mut self,
        index: usize,
        name: &str,
        input: R,
        out: &mut dyn BlockOut,
    ) -> Result<ArtifactStats> {
        let ahead = artifact::Ahead {
            allowed: false,
            limit: 0,
        };
        self.run(index, name, input, None, ahead, out)
    }

    /// Reads one decoded artifact as one read ahead of its turn is read:
    /// held up to `limit` bytes and decided in one go at its end, or, past
    /// the limit, kept as its entries' heads and read a second time from
    /// `again` to be cut (as the pipeline does with several artifacts at
    /// once). The output is the same as [`Repacker::repack`]'s.
    pub fn repack_ahead<R: BufRead>(
        &mut self,
        index: usize,
        name: &str,
        input: R,
        again: &Again<'_>,
        limit: u64,
        out: &mut dyn BlockOut,
    ) -> Result<ArtifactStats> {
        let ahead = artifact::Ahead {
            allowed: true,
            limit,
        };
        self.run(index, name, input, Some(again), ahead, out)
    }

    fn run<R: BufRead>(
        &mut self,
        index: usize,
        name: &str,
        input: R,
        again: Option<&Again<'_>>,
        ahead: artifact::Ahead,
        out: &mut dyn BlockOut,
    ) -> Result<ArtifactStats> {
        let decider = self
            .decider
            .take()
            .ok_or_else(|| Error::internal("an earlier artifact failed"))?;
        let turns = OneThread {
            decider: RefCell::new(Some(decider)),
            error: RefCell::new(None),
            again,
            ahead: ahead.allowed,
        };
        let mut pieces = PieceWriter::new(out, &self.formats, name);
        let done = artifact::repack(
            &self.rules,
            &turns,
            index,
            name,
            Ok(Whole(input)),
            &mut pieces,
            &mut self.pending,
            ahead,
        );
        self.decider = turns.decider.into_inner();
        if let Some(e) = turns.error.into_inner() {
            return Err(e);
        }
        let stats = done?;
        pieces.finish()?;
        Ok(stats)
    }
}

/// Opens an artifact's decoded bytes again, for its second read.
pub type Again<'a> = dyn Fn() -> Box<dyn BufRead + 'a> + 'a;

/// Plan order on one thread: every artifact's turn comes when it asks
/// (or, for one read ahead, only at its end).
struct OneThread<'r, 'a> {
    decider: RefCell<Option<decide::Decider>>,
    error: RefCell<Option<Error>>,
    again: Option<&'r Again<'a>>,
    /// Read ahead of its turn: the turn is not there while it is read.
    ahead: bool,
}

impl artifact::Turns for OneThread<'_, '_> {
    fn cancelled(&self, _: usize) -> bool {
        false
    }

    fn is_turn(&self, _: usize) -> bool {
        !self.ahead
    }

    fn wait_turn(&self, _: usize) -> Option<decide::Decider> {
        self.decider.borrow_mut().take()
    }

    fn pass_turn(&self, _: usize, decider: decide::Decider) {
        *self.decider.borrow_mut() = Some(decider);
    }

    fn failed_ahead(&self, _: usize) {}

    fn fail(&self, _: usize, error: Error) {
        self.error.borrow_mut().get_or_insert(error);
    }

    fn live(&self, _: Option<usize>) {}

    fn cpu_ns(&self) -> u64 {
        0
    }

    fn serial(&self, _: u64) {}

    fn reopen(&self, _: usize) -> Result<Box<dyn BufRead + '_>> {
        match self.again {
            Some(again) => Ok(again()),
            None => Err(Error::internal("no second read")),
        }
    }

    fn read_twice(&self) {}
}

/// Bytes read whole from memory or a decoder: nothing can follow them.
struct Whole<R>(R);

impl<R: Read> Read for Whole<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: BufRead> BufRead for Whole<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.0.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.0.consume(n);
    }
}

impl<R: BufRead> artifact::ArtifactInput for Whole<R> {
    fn complete(&self) -> bool {
        true
    }
}

/// Convenience for masks built from plain vectors.
impl From<Vec<usize>> for Mask {
    fn from(v: Vec<usize>) -> Self {
        Mask(Arc::from(v))
    }
}
