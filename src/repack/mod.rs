//! Decode an artifact, apply the flattening rules and write its entries as
//! tar blocks: the uncompressed side of a segment.

pub mod at_end;
pub mod conflict;
pub(crate) mod decide;
pub mod decode;
mod exclusions;
pub mod flatten;
pub(crate) mod pending;
mod piece;
pub(crate) mod scan;
mod tar_header;
pub mod tar_reader;
pub mod tarfmt;
pub mod window;

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

/// Repacks a run's artifacts one after the other on the calling thread:
/// each is scanned, decided and cut as it is read. (The pipeline does the
/// same with the stages on several threads.)
pub struct Repacker {
    rules: scan::Rules,
    decider: decide::Decider,
    /// Each tarball's format: which lane of the piece writer it reads.
    formats: Vec<Format>,
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
            decider: decide::Decider::new(plan, policy, COMPARE_BUFFER),
            formats: plan.tarballs.iter().map(|t| t.format).collect(),
        })
    }

    /// Sets how large a shared file may be to be compared before it is
    /// written (larger ones are compared after streaming).
    pub fn with_compare_buffer(mut self, bytes: u64) -> Self {
        self.decider.set_compare_buffer(bytes);
        self
    }

    /// Reads one decoded artifact and writes its entries to `out`.
    pub fn repack<R: BufRead>(
        &mut self,
        index: usize,
        name: &str,
        input: R,
        out: &mut dyn BlockOut,
    ) -> Result<ArtifactStats> {
        let mut pieces = PieceWriter::new(out, &self.formats);
        let mut scanner = scan::Scanner::start(&self.rules, index, name, input)?;
        let mut file = decide::OpenFile::default();
        let mut deciding = decide::Deciding {
            file: &mut file,
            decider: &mut self.decider,
            index,
            name,
            target: decide::Target::Pieces(&mut pieces),
        };
        while scanner.next(&mut deciding)? {}
        pieces.finish()?;
        Ok(scanner.stats())
    }
}

/// Convenience for masks built from plain vectors.
impl From<Vec<usize>> for Mask {
    fn from(v: Vec<usize>) -> Self {
        Mask(Arc::from(v))
    }
}
