//! The tarballs' `exclude-paths`, compiled once per run: which of an
//! artifact's tarballs leave a path out.

use super::Mask;
use crate::error::{Error, Result};
use crate::plan::exclude::ExcludePaths;
use crate::plan::Plan;

/// Each distinct pattern list compiled once, with the tarballs that use it.
pub(crate) struct Exclusions {
    filters: Vec<(ExcludePaths, Vec<bool>)>,
}

impl Exclusions {
    /// `None` when no tarball of `plan` excludes paths; fails on a pattern
    /// that does not compile.
    pub fn new(plan: &Plan) -> Result<Option<Self>> {
        let mut lists: Vec<(&[String], Vec<bool>)> = Vec::new();
        for (t, tb) in plan.tarballs.iter().enumerate() {
            if tb.exclude_paths.is_empty() {
                continue;
            }
            let i = match lists.iter().position(|(p, _)| *p == &tb.exclude_paths[..]) {
                Some(i) => i,
                None => {
                    lists.push((&tb.exclude_paths, vec![false; plan.tarballs.len()]));
                    lists.len() - 1
                }
            };
            lists[i].1[t] = true;
        }
        if lists.is_empty() {
            return Ok(None);
        }
        let filters = lists
            .into_iter()
            .map(|(patterns, uses)| {
                ExcludePaths::new(patterns)
                    .map(|f| (f, uses))
                    .map_err(Error::Usage)
            })
            .collect::<Result<_>>()?;
        Ok(Some(Exclusions { filters }))
    }

    /// `tarballs` without those that exclude `rel`; `None` when none does
    /// (the common case allocates nothing).
    pub fn apply(&self, rel: &[u8], is_dir: bool, tarballs: &Mask) -> Option<Mask> {
        let mut kept: Option<Vec<usize>> = None;
        for (filter, uses) in &self.filters {
            if !tarballs.iter().any(|&t| uses[t]) || !filter.excludes(rel, is_dir) {
                continue;
            }
            let k = kept.get_or_insert_with(|| tarballs.to_vec());
            k.retain(|&t| !uses[t]);
        }
        kept.map(Mask::from)
    }

    /// A tarball of `tarballs` that excludes the file `rel`, if any.
    pub fn excluding(&self, rel: &[u8], tarballs: &Mask) -> Option<usize> {
        self.filters.iter().find_map(|(filter, uses)| {
            let t = tarballs.iter().copied().find(|&t| uses[t])?;
            filter.excludes(rel, false).then_some(t)
        })
    }
}
