//! What tarballs get at their end: directory entries that only some of an
//! artifact's tarballs still needed (see `decide::Cut`), kept by artifact
//! so that they come out in plan order whatever order the artifacts were
//! cut in.

use std::collections::BTreeMap;

use super::tar_reader::TarReader;
use super::tarfmt::END_OF_ARCHIVE;
use super::Mask;
use crate::codec::zip::EntryMeta;
use crate::error::{Error, Result};

/// The entries each tarball gets before its end-of-archive blocks.
#[derive(Debug, Default)]
pub struct AtEnd {
    by_artifact: BTreeMap<usize, Vec<(Mask, Vec<u8>)>>,
}

impl AtEnd {
    /// `bytes` of artifact `artifact` go at the end of `tarballs`, after
    /// those it gave before.
    pub fn add(&mut self, artifact: usize, tarballs: &Mask, bytes: &[u8]) {
        self.by_artifact
            .entry(artifact)
            .or_default()
            .push((tarballs.clone(), bytes.to_vec()));
    }

    /// Each of `tarballs` tarballs' end, in plan order.
    pub fn tails(&self, tarballs: usize) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new(); tarballs];
        for (mask, bytes) in self.by_artifact.values().flatten() {
            for &t in mask.iter() {
                out[t].extend_from_slice(bytes);
            }
        }
        out
    }
}

/// The directory entries of a tail [`AtEnd::tails`] made (tar bytes: the
/// directories a tarball gets at its end) as ZIP entries: a ZIP archive's
/// trailer writes them as entries of its own.
pub fn zip_directories(tail: &[u8]) -> Result<Vec<EntryMeta>> {
    let end = [tail, &END_OF_ARCHIVE[..]].concat();
    let mut reader = TarReader::new(&end[..]);
    let mut dirs = Vec::new();
    while let Some(m) = reader
        .next_member()
        .map_err(|e| Error::internal(format!("a directory at the end: {}", e.message)))?
    {
        let name = String::from_utf8_lossy(&m.path);
        let name = name.trim_start_matches("./");
        if m.typeflag == b'5' && !name.is_empty() && name != "." {
            dirs.push(EntryMeta {
                name: format!("{name}/"),
                is_dir: true,
                mode: m.mode,
                mtime: m.mtime.max(0) as u64,
            });
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_come_in_plan_order() {
        let mut e = AtEnd::default();
        e.add(3, &Mask::from(vec![0]), b"c");
        e.add(1, &Mask::from(vec![0, 1]), b"a");
        e.add(1, &Mask::from(vec![1]), b"b");
        assert_eq!(e.tails(3), [b"ac".to_vec(), b"ab".to_vec(), Vec::new()]);
    }
}
