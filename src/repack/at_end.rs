//! What tarballs get at their end: directory entries that only some of an
//! artifact's tarballs still needed (see `decide::Cut`), kept by artifact
//! so that they come out in plan order whatever order the artifacts were
//! cut in.

use std::collections::BTreeMap;

use super::Mask;

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
