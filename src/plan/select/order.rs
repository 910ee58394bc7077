//! The order of a plan's artifacts, which is the order of every tarball.

use std::collections::BTreeMap;

use super::resolve::Selector;
use crate::plan::set::TarballSet;
use crate::plan::SourceArtifact;

/// The artifacts of `available` some tarball can hold, in plan order, each
/// with its group: generic, then each atom's (`atoms`, in order), of what
/// every tarball keeps; then the same of what some tarball's filters leave
/// out (the test component; fftw3, which TheRock's base tarballs leave
/// out); by stem inside a group. A tarball that keeps less is then few
/// long runs of one that keeps more: TheRock's base tarball is the start of
/// its -tests tarball, and the multiarch tarball the start of its own.
pub(super) fn in_plan_order<'a>(
    available: &'a [SourceArtifact],
    set: &TarballSet,
    atoms: &[Selector],
) -> Vec<(&'a SourceArtifact, (usize, usize))> {
    let left_out = |a: &SourceArtifact| {
        a.name.is_test()
            || set
                .tarballs
                .iter()
                .any(|s| !s.keeps(&a.name.name, &a.name.component))
    };
    let group_of = |a: &SourceArtifact| -> Option<(usize, usize)> {
        let test = left_out(a) as usize;
        if a.name.is_generic() {
            return Some((test, 0));
        }
        atoms
            .iter()
            .position(|s| s.matches_specific(&a.name.target))
            .map(|i| (test, i + 1))
    };
    let mut ordered: Vec<(&SourceArtifact, (usize, usize))> = available
        .iter()
        .filter_map(|a| group_of(a).map(|g| (a, g)))
        .collect();
    ordered.sort_by(|(a, ga), (b, gb)| ga.cmp(gb).then_with(|| a.name.stem().cmp(&b.name.stem())));
    ordered
}

/// `.tar.zst` wins over `.tar.xz` for the same (name, component, target).
pub(super) fn prefer_zst(listed: Vec<SourceArtifact>) -> Vec<SourceArtifact> {
    let mut by_stem: BTreeMap<String, SourceArtifact> = BTreeMap::new();
    for a in listed {
        let stem = a.name.stem();
        match by_stem.get(&stem) {
            Some(prev) if prev.name.compression <= a.name.compression => {}
            _ => {
                by_stem.insert(stem, a);
            }
        }
    }
    by_stem.into_values().collect()
}
