//! What each name of a set stands for: the set's groups expanded, the
//! family table's targets, and the tarballs (instances) its tables make.

use super::Naming;
use crate::error::{Error, Result};
use crate::plan::artifact::base_arch;
use crate::plan::listing::has_device_code;
use crate::plan::set::{Cover, Entry, TarballSet, TarballSpec};
use crate::plan::{FamilyTable, SourceArtifact};

/// What an entry stands for: artifacts whose target is one of `names`, or
/// has the base arch of one of `targets`.
#[derive(Clone, Debug, Default)]
pub(super) struct Selector {
    pub(super) names: Vec<String>,
    pub(super) targets: Vec<String>,
}

impl Selector {
    pub(super) fn matches_specific(&self, target: &str) -> bool {
        target != "generic"
            && (self.names.iter().any(|n| n == target)
                || self
                    .targets
                    .iter()
                    .any(|t| base_arch(t) == base_arch(target)))
    }

    pub(super) fn add(&mut self, other: &Selector) {
        for n in &other.names {
            if !self.names.contains(n) {
                self.names.push(n.clone());
            }
        }
        for t in &other.targets {
            if !self.targets.contains(t) {
                self.targets.push(t.clone());
            }
        }
    }
}

/// One tarball of the set before its formats: a table and a label.
pub(super) struct Instance<'s> {
    pub(super) spec: &'s TarballSpec,
    pub(super) label: String,
    /// Its name without extension: the template filled in.
    pub(super) name: String,
    pub(super) selector: Selector,
    /// The entry it was made for (`each`), for messages.
    pub(super) entry: Option<&'s Entry>,
    pub(super) members: Vec<usize>,
}

impl<'s> Instance<'s> {
    pub(super) fn new(
        spec: &'s TarballSpec,
        label: String,
        selector: Selector,
        entry: Option<&'s Entry>,
        naming: Naming<'_>,
    ) -> Self {
        Instance {
            name: spec.render_name(&label, naming.version, naming.platform),
            spec,
            label,
            selector,
            entry,
            members: Vec::new(),
        }
    }
}

/// Resolves names against the set's groups and the family table.
pub(super) struct Resolver<'a> {
    pub(super) set: &'a TarballSet,
    pub(super) table: &'a FamilyTable,
    /// Names the table lacks (lenient sets only), in order.
    pub(super) unknown: Vec<String>,
}

impl Resolver<'_> {
    /// The leaf names (families and targets) of `name`, groups expanded.
    fn leaves(&self, name: &str, out: &mut Vec<String>) {
        match self.set.group(name) {
            Some(g) => {
                for m in &g.members {
                    self.leaves(&m.name, out);
                }
            }
            None => {
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_string());
                }
            }
        }
    }

    pub(super) fn leaf(&mut self, name: &str) -> Result<Selector> {
        let targets = match self.table.targets_of(name) {
            Some(t) => t.to_vec(),
            None if self.table.knows(name) => vec![name.to_string()],
            None if self.set.lenient => {
                if !self.unknown.iter().any(|u| u == name) {
                    self.unknown.push(name.to_string());
                }
                vec![name.to_string()]
            }
            None => {
                return Err(Error::internal(format!(
                    "{name:?} was accepted by the set file but is unknown"
                )))
            }
        };
        Ok(Selector {
            names: vec![name.to_string()],
            targets,
        })
    }

    fn resolve(&mut self, name: &str) -> Result<Selector> {
        let mut leaves = Vec::new();
        self.leaves(name, &mut leaves);
        let mut s = Selector::default();
        for l in leaves {
            s.add(&self.leaf(&l)?);
        }
        Ok(s)
    }
}

impl<'a> Resolver<'a> {
    /// A resolver of `set`'s names against `table`.
    pub(super) fn new(set: &'a TarballSet, table: &'a FamilyTable) -> Self {
        Resolver {
            set,
            table,
            unknown: Vec::new(),
        }
    }

    /// Each table's tarballs (before their formats) and the atoms (leaf
    /// names in order of first appearance) that order the artifacts;
    /// `available` tells which targets have device code (`each-target`).
    pub(super) fn instances(
        &mut self,
        available: &[SourceArtifact],
        naming: Naming<'_>,
    ) -> Result<(Vec<Instance<'a>>, Vec<String>)> {
        let set = self.set;
        let mut atoms: Vec<String> = Vec::new();
        let mut instances: Vec<Instance<'a>> = Vec::new();
        for spec in &set.tarballs {
            for e in spec.cover.entries() {
                self.leaves(&e.name, &mut atoms);
            }
            match &spec.cover {
                Cover::Each(entries) => {
                    for e in entries {
                        let selector = self.resolve(&e.name)?;
                        instances.push(Instance::new(
                            spec,
                            e.name.clone(),
                            selector,
                            Some(e),
                            naming,
                        ));
                    }
                }
                Cover::Union { label, entries } => {
                    let mut selector = Selector::default();
                    for e in entries {
                        selector.add(&self.resolve(&e.name)?);
                    }
                    instances.push(Instance::new(spec, label.clone(), selector, None, naming));
                }
                Cover::EachTarget(entries) => {
                    let mut targets: Vec<String> = Vec::new();
                    for e in entries {
                        for t in self.resolve(&e.name)?.targets {
                            if has_device_code(available, &t) && !targets.contains(&t) {
                                targets.push(t);
                            }
                        }
                    }
                    for t in targets {
                        if !atoms.contains(&t) {
                            atoms.push(t.clone());
                        }
                        let selector = Selector {
                            names: vec![t.clone()],
                            targets: vec![t.clone()],
                        };
                        instances.push(Instance::new(spec, t, selector, None, naming));
                    }
                }
            }
        }
        Ok((instances, atoms))
    }
}
