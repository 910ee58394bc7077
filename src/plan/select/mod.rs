//! Selection: which artifacts go into which tarball of a set, and in what
//! order. `resolve` says what each name stands for and which tarballs the
//! set's tables make, `order` puts the artifacts in plan order, `checks`
//! says what is wrong or worth a warning; `plan_set` runs them and
//! numbers the result.

mod checks;
mod order;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::families::is_packaged;
use super::listing::check_listed;
use super::set::{Origin, TarballSet};
use super::{FamilyTable, Format, Plan, SourceArtifact, TarballPlan};
use crate::error::{Error, Result};
use order::{in_plan_order, prefer_zst};
use resolve::{Instance, Resolver, Selector};

/// Whether to build the `multiarch` tarball (the union over all requested
/// families).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum MultiarchMode {
    /// Build it when the run is kpack-split, even for a single family: TheRock
    /// does, and its upload step expects one.
    Auto,
    /// Build it whatever the run's manifest says.
    Always,
    /// Never build it.
    Never,
}

/// What to select: the command line's selection flags, which mean a
/// tarball set ([`super::preset`]), and the names' fields.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Family names, each its own tarball; a name the family table lacks
    /// stands for itself.
    pub families: Vec<String>,
    /// Extra single targets, each its own tarball.
    pub targets: Vec<String>,
    /// One tarball per target of every requested family.
    pub per_target: bool,
    /// `{platform}` of the tarball names (`linux`, `windows`).
    pub platform: String,
    /// `{version}` of the tarball names.
    pub version: String,
    /// Also build each tarball's `-tests` variant.
    pub tests: bool,
    /// Whether the `multiarch` tarball is built.
    pub multiarch: MultiarchMode,
    /// Formats of every tarball a set does not give its own.
    pub formats: Vec<Format>,
    /// Artifact names (`fftw3`) base tarballs leave out; `-tests` variants
    /// leave out nothing.
    pub exclude_artifacts: Vec<String>,
    /// Components (`test`) base tarballs leave out, likewise.
    pub exclude_components: Vec<String>,
}

impl PlanOptions {
    /// The name fields and default formats these options give a set.
    pub fn naming(&self) -> Naming<'_> {
        Naming {
            platform: &self.platform,
            version: &self.version,
            formats: &self.formats,
        }
    }
}

/// The run's values of a set's name fields, and its default formats.
#[derive(Clone, Copy, Debug)]
pub struct Naming<'a> {
    /// `{platform}`.
    pub platform: &'a str,
    /// `{version}`.
    pub version: &'a str,
    /// Formats of a tarball whose table gives none.
    pub formats: &'a [Format],
}

/// Builds the plan the command line's flags mean (see [`super::preset`]).
pub fn build_plan(
    listed: Vec<SourceArtifact>,
    opts: &PlanOptions,
    table: &FamilyTable,
    kpack_split: Option<bool>,
) -> Result<Plan> {
    let set = super::preset(opts, &listed, table, kpack_split)?;
    plan_set(listed, &set, opts.naming(), table, kpack_split)
}

/// Builds the plan of `set` from what the source lists. `kpack_split` is
/// the run manifest's `KPACK_SPLIT_ARTIFACTS` flag, when known.
pub fn plan_set(
    listed: Vec<SourceArtifact>,
    set: &TarballSet,
    naming: Naming<'_>,
    table: &FamilyTable,
    kpack_split: Option<bool>,
) -> Result<Plan> {
    check_listed(&listed)?;
    // What TheRock's matrix keeps out of packaging goes in no tarball (and
    // is no stranger to the table either).
    let (available, unpackaged): (Vec<_>, Vec<_>) = prefer_zst(listed)
        .into_iter()
        .partition(|a| a.name.is_generic() || is_packaged(&a.name.target));
    let mut r = Resolver::new(set, table);
    let (mut instances, atoms) = r.instances(&available, naming)?;
    let atoms: Vec<Selector> = atoms.iter().map(|a| r.leaf(a)).collect::<Result<_>>()?;
    let ordered = in_plan_order(&available, set, &atoms);
    for inst in &mut instances {
        let spec = inst.spec;
        inst.members = ordered
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| {
                (spec.generic && a.name.is_generic())
                    || inst.selector.matches_specific(&a.name.target)
            })
            .filter(|(_, (a, _))| spec.keeps(&a.name.name, &a.name.component))
            .map(|(i, _)| i)
            .collect();
    }
    let mut warnings = checks::unpackaged(&unpackaged, &instances);
    checks::selection(
        &instances,
        &available,
        set,
        table,
        &r.unknown,
        &mut warnings,
    )?;
    warnings.extend(checks::strangers(&available, table));
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let ordered: Vec<&SourceArtifact> = ordered.into_iter().map(|(a, _)| a).collect();
    let (artifacts, tarballs) = number(&instances, &ordered, naming)?;
    Ok(Plan {
        artifacts,
        tarballs,
        kpack_split,
        warnings,
    })
}

/// The plan's artifacts (those of `ordered` some tarball uses) and its
/// tarballs, one per instance and format: tarballs of one label together,
/// labels in order of first appearance, tables in file order within a
/// label. Two tarballs of one name are an error.
fn number(
    instances: &[Instance<'_>],
    ordered: &[&SourceArtifact],
    naming: Naming<'_>,
) -> Result<(Vec<SourceArtifact>, Vec<TarballPlan>)> {
    let mut labels: Vec<&str> = Vec::new();
    for inst in instances {
        if !labels.contains(&inst.label.as_str()) {
            labels.push(&inst.label);
        }
    }
    let rank = |l: &str| labels.iter().position(|x| *x == l).unwrap_or(usize::MAX);
    let mut order: Vec<usize> = (0..instances.len()).collect();
    order.sort_by_key(|&i| rank(&instances[i].label));

    // Keep only artifacts some tarball uses, renumbering.
    let mut used = vec![false; ordered.len()];
    for inst in instances {
        for &i in &inst.members {
            used[i] = true;
        }
    }
    let mut new_index = vec![usize::MAX; ordered.len()];
    let mut artifacts = Vec::new();
    for (i, a) in ordered.iter().enumerate() {
        if used[i] {
            new_index[i] = artifacts.len();
            artifacts.push((*a).clone());
        }
    }

    let mut tarballs: Vec<TarballPlan> = Vec::new();
    let mut defined: BTreeMap<String, &Origin> = BTreeMap::new();
    for i in order {
        let inst = &instances[i];
        let spec = inst.spec;
        let members: Vec<usize> = inst.members.iter().map(|&i| new_index[i]).collect();
        let input_bytes = members.iter().map(|&i| artifacts[i].size).sum();
        for &format in spec.formats.as_deref().unwrap_or(naming.formats) {
            let file_name = format!("{}.{}", inst.name, format.extension());
            if let Some(first) = defined.insert(file_name.clone(), &spec.origin) {
                return Err(Error::Usage(format!(
                    "{}: tarball name {file_name} is also the name of a tarball of {first}{}",
                    spec.origin,
                    if spec.name.contains("{label}") {
                        ""
                    } else {
                        " (a name without {label} gives every entry the same name)"
                    }
                )));
            }
            tarballs.push(TarballPlan {
                label: inst.label.clone(),
                variant: spec.variant.clone(),
                sidecar: spec.sidecar.file_name(&file_name),
                file_name,
                format,
                exclude_paths: spec.exclude_paths.clone(),
                defined_at: spec.origin.to_string(),
                artifacts: members.clone(),
                input_bytes,
            });
        }
    }
    Ok((artifacts, tarballs))
}
