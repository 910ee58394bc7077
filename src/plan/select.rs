//! Selection: which artifacts go into which tarball of a set, and in what
//! order.

use std::collections::BTreeMap;

use super::artifact::base_arch;
use super::families::is_packaged;
use super::listing::{check_listed, describe_targets, device_targets, has_device_code};
use super::set::{Cover, Entry, Origin, TarballSet, TarballSpec};
use super::{FamilyTable, Format, Plan, SourceArtifact, TarballPlan};
use crate::error::{Error, Result};

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

/// What an entry stands for: artifacts whose target is one of `names`, or
/// has the base arch of one of `targets`.
#[derive(Clone, Debug, Default)]
struct Selector {
    names: Vec<String>,
    targets: Vec<String>,
}

impl Selector {
    fn matches_specific(&self, target: &str) -> bool {
        target != "generic"
            && (self.names.iter().any(|n| n == target)
                || self
                    .targets
                    .iter()
                    .any(|t| base_arch(t) == base_arch(target)))
    }

    fn add(&mut self, other: &Selector) {
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
struct Instance<'s> {
    spec: &'s TarballSpec,
    label: String,
    /// Its name without extension: the template filled in.
    name: String,
    selector: Selector,
    /// The entry it was made for (`each`), for messages.
    entry: Option<&'s Entry>,
    members: Vec<usize>,
}

impl<'s> Instance<'s> {
    fn new(
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
struct Resolver<'a> {
    set: &'a TarballSet,
    table: &'a FamilyTable,
    /// Names the table lacks (lenient sets only), in order.
    unknown: Vec<String>,
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

    fn leaf(&mut self, name: &str) -> Result<Selector> {
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
    let present_targets = device_targets(&available);
    let present = || describe_targets(&present_targets);
    let known_families = || {
        let groups: Vec<&str> = table
            .family_names()
            .filter(|f| !table.is_target(f))
            .collect();
        format!("{} (and each target)", groups.join(", "))
    };

    // Each table's tarballs, and the atoms (leaf names in order of first
    // appearance) that order the artifacts.
    let mut r = Resolver {
        set,
        table,
        unknown: Vec::new(),
    };
    let mut atoms: Vec<String> = Vec::new();
    let mut instances: Vec<Instance<'_>> = Vec::new();
    for spec in &set.tarballs {
        for e in spec.cover.entries() {
            r.leaves(&e.name, &mut atoms);
        }
        match &spec.cover {
            Cover::Each(entries) => {
                for e in entries {
                    let selector = r.resolve(&e.name)?;
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
                    selector.add(&r.resolve(&e.name)?);
                }
                instances.push(Instance::new(spec, label.clone(), selector, None, naming));
            }
            Cover::EachTarget(entries) => {
                let mut targets: Vec<String> = Vec::new();
                for e in entries {
                    for t in r.resolve(&e.name)?.targets {
                        if has_device_code(&available, &t) && !targets.contains(&t) {
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
    let atom_selectors: Vec<Selector> = atoms.iter().map(|a| r.leaf(a)).collect::<Result<_>>()?;

    // Global order: generic, then each atom's, of what every tarball
    // keeps; then the same of what some tarball's filters leave out (the
    // test component; fftw3, which TheRock's base tarballs leave out); by
    // stem inside a group. A tarball that keeps less is then few long runs
    // of one that keeps more: TheRock's base tarball is the start of its
    // -tests tarball, and the multiarch tarball the start of its own.
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
        atom_selectors
            .iter()
            .position(|s| s.matches_specific(&a.name.target))
            .map(|i| (test, i + 1))
    };
    let mut ordered: Vec<(&SourceArtifact, (usize, usize))> = available
        .iter()
        .filter_map(|a| group_of(a).map(|g| (a, g)))
        .collect();
    ordered.sort_by(|(a, ga), (b, gb)| ga.cmp(gb).then_with(|| a.name.stem().cmp(&b.name.stem())));

    let mut warnings: Vec<String> = Vec::new();
    let mut warned: Vec<String> = Vec::new();
    let unpackaged_targets = device_targets(&unpackaged);
    for target in &unpackaged_targets {
        let mut asked: Vec<&str> = Vec::new();
        for i in instances
            .iter()
            .filter(|i| i.selector.matches_specific(target))
        {
            if !asked.contains(&i.label.as_str()) {
                asked.push(&i.label);
            }
        }
        let why = format!(
            "{} artifact(s) of target {target} go in no tarball: TheRock's family matrix marks it exclude-from-packaging",
            unpackaged.iter().filter(|a| a.name.target == *target).count()
        );
        if asked.is_empty() {
            tracing::info!("{why}");
        } else {
            warnings.push(format!("{why} (selected by {})", asked.join(", ")));
        }
    }
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
        let specific = available
            .iter()
            .any(|a| inst.selector.matches_specific(&a.name.target));
        // A union of the command line's (multiarch, or families sharing
        // an owner) that selects nothing at all fails as a set's does.
        if set.lenient && (inst.entry.is_some() || !inst.members.is_empty()) {
            // The command line's checks, per label, as before sets existed.
            let Some(e) = inst.entry else { continue };
            let kind = if e.origin == Origin::Flag("--families") {
                "family"
            } else {
                "target"
            };
            let any_generic = available.iter().any(|a| a.name.is_generic());
            if !specific && !any_generic {
                return Err(Error::Selection(format!(
                    "{kind} {:?} selects nothing: no artifact of this run has its targets ({}) and the run has no generic artifacts; targets in this run: {}; known families: {}",
                    inst.label,
                    inst.selector.targets.join(", "),
                    present(),
                    known_families()
                )));
            }
            // The warning above says why a name kept out of packaging
            // selects nothing of its own.
            if warned.contains(&inst.label) || !is_packaged(&inst.label) {
                continue;
            }
            let is_unknown = kind == "family" && r.unknown.contains(&inst.label);
            let warning = match (is_unknown, specific) {
                (true, true) => format!(
                    "family {:?} is not in {}: it selects only artifacts whose target is {:?}, as TheRock does for a name its table lacks; if it is a family, pass --family-table with a therock_amdgpu_targets.cmake that has it",
                    inst.label,
                    table.origin(),
                    inst.label
                ),
                (true, false) => format!(
                    "family {:?} is not in {} and no artifact of this run has target {:?}: its tarball holds generic artifacts only (TheRock builds the same); check the name, or pass --family-table with a therock_amdgpu_targets.cmake that has it; targets in this run: {}; known families: {}",
                    inst.label,
                    table.origin(),
                    inst.label,
                    present(),
                    known_families()
                ),
                (false, false) => format!(
                    "{kind} {:?} (targets {}) matches no device-specific artifact of this run: its tarball holds generic artifacts only, as TheRock builds it; targets in this run: {}",
                    inst.label,
                    inst.selector.targets.join(", "),
                    present()
                ),
                (false, true) => continue,
            };
            warned.push(inst.label.clone());
            warnings.push(warning);
            continue;
        }
        let file = &inst.name;
        if inst.members.is_empty() {
            return Err(Error::Selection(format!(
                "{}: tarball {file} selects no artifact: {}; targets in this run: {}",
                spec.origin,
                if specific || (spec.generic && available.iter().any(|a| a.name.is_generic())) {
                    "its component and artifact filters leave none".to_string()
                } else {
                    format!(
                        "no artifact of this run has the targets of {:?} ({}){}",
                        inst.label,
                        inst.selector.targets.join(", "),
                        if spec.generic {
                            " and the run has no generic artifacts"
                        } else {
                            ", and generic = false leaves out the generic ones"
                        }
                    )
                },
                present()
            )));
        }
        if spec.generic && !specific && !warned.contains(&inst.label) {
            warned.push(inst.label.clone());
            warnings.push(format!(
                "{:?} (targets {}) matches no device-specific artifact of this run: tarball {file} ({}) holds generic artifacts only; targets in this run: {}",
                inst.label,
                inst.selector.targets.join(", "),
                spec.origin,
                present()
            ));
        }
    }

    // The safety net for a stale table: per-target artifacts no family of
    // the table selects would be left out of every family's tarball
    // without a word (how gfx103X-all once lost gfx1031/1033/1034).
    let strangers: Vec<&str> = present_targets
        .iter()
        .copied()
        .filter(|t| !table.knows(t))
        .collect();
    if !strangers.is_empty() {
        warnings.push(format!(
            "this run has artifacts for {} that {} does not know: no family selects them, only a request by that exact name; pass --family-table with the run's therock_amdgpu_targets.cmake",
            strangers.join(", "),
            table.origin()
        ));
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }

    // Tarballs of one label together, labels in order of first appearance,
    // tables in file order within a label.
    let mut labels: Vec<&str> = Vec::new();
    for inst in &instances {
        if !labels.contains(&inst.label.as_str()) {
            labels.push(&inst.label);
        }
    }
    let rank = |l: &str| labels.iter().position(|x| *x == l).unwrap_or(usize::MAX);
    let mut order: Vec<usize> = (0..instances.len()).collect();
    order.sort_by_key(|&i| rank(&instances[i].label));

    // Keep only artifacts some tarball uses, renumbering.
    let mut used = vec![false; ordered.len()];
    for inst in &instances {
        for &i in &inst.members {
            used[i] = true;
        }
    }
    let mut new_index = vec![usize::MAX; ordered.len()];
    let mut artifacts = Vec::new();
    for (i, (a, _)) in ordered.iter().enumerate() {
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
    Ok(Plan {
        artifacts,
        tarballs,
        kpack_split,
        warnings,
    })
}

/// `.tar.zst` wins over `.tar.xz` for the same (name, component, target).
fn prefer_zst(listed: Vec<SourceArtifact>) -> Vec<SourceArtifact> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ArtifactName;

    fn art(file: &str) -> SourceArtifact {
        SourceArtifact {
            name: ArtifactName::parse(file).unwrap().unwrap(),
            key: file.into(),
            size: 10,
            sha256_key: None,
        }
    }

    fn opts(families: &[&str]) -> PlanOptions {
        PlanOptions {
            families: families.iter().map(|s| s.to_string()).collect(),
            targets: vec![],
            per_target: false,
            platform: "linux".into(),
            version: "7.0".into(),
            tests: true,
            multiarch: MultiarchMode::Auto,
            formats: vec![Format::Gzip],
            exclude_artifacts: vec!["fftw3".into()],
            exclude_components: vec!["test".into()],
        }
    }

    fn names(plan: &Plan, t: usize) -> Vec<String> {
        plan.tarballs[t]
            .artifacts
            .iter()
            .map(|&i| plan.artifacts[i].name.stem())
            .collect()
    }

    /// Every tarball a smaller one of its format shares an artifact with
    /// is an origin (staged, and copied from); the last in upload order is
    /// not.
    #[test]
    fn copy_origins_are_the_tarballs_smaller_ones_share_with() {
        let listed = [
            "base_lib_generic.tar.zst",
            "fftw3_lib_generic.tar.zst",
            "core_test_generic.tar.zst",
            "blas_lib_gfx942.tar.zst",
            "blas_lib_gfx1100.tar.zst",
            "blas_test_gfx1101.tar.zst",
        ]
        .map(art)
        .to_vec();
        let table = FamilyTable::builtin();
        let families = ["gfx94X-dcgpu", "gfx110X-all"];
        let plan = build_plan(listed.clone(), &opts(&families), &table, Some(true)).unwrap();
        // By size: multiarch-tests, gfx110X-all-tests, gfx94X-dcgpu-tests,
        // multiarch, then the two base tarballs (equal: plan order).
        assert_eq!(
            plan.copy_origins(),
            [true, true, false, true, true, true],
            "{:?}",
            plan.upload_order()
        );
        // Two formats: nothing copies across them.
        let mut two = opts(&families);
        two.formats = vec![Format::Gzip, Format::Zstd];
        let plan = build_plan(listed, &two, &table, Some(true)).unwrap();
        let origins = plan.copy_origins();
        for f in [Format::Gzip, Format::Zstd] {
            let of: Vec<bool> = (0..plan.tarballs.len())
                .filter(|&t| plan.tarballs[t].format == f)
                .map(|t| origins[t])
                .collect();
            assert_eq!(of.iter().filter(|o| !**o).count(), 1, "{f:?}: {of:?}");
        }
    }

    /// TheRock's shared owners (its `test_shared_owner_preserves_selected_
    /// targets`): `gfx1250` and `gfx1250-strict` go into one `gfx1250`
    /// tarball holding the payloads of the ones selected, whichever order.
    #[test]
    fn shared_owners_make_one_tarball_of_the_selected_targets() {
        let listed = [
            "base_lib_generic.tar.zst",
            "blas_lib_gfx1250.tar.zst",
            "blas_lib_gfx1250-strict.tar.zst",
            "blas_test_gfx1250-strict.tar.zst",
            "blas_lib_gfx1151.tar.zst",
        ]
        .map(art)
        .to_vec();
        let table = FamilyTable::builtin();
        for (selected, want) in [
            (&["gfx1250"][..], &["blas_lib_gfx1250"][..]),
            (&["gfx1250-strict"], &["blas_lib_gfx1250-strict"]),
            (
                &["gfx1250", "gfx1250-strict"],
                &["blas_lib_gfx1250", "blas_lib_gfx1250-strict"],
            ),
            // Artifacts in the order the families name them.
            (
                &["gfx1250-strict", "gfx1250"],
                &["blas_lib_gfx1250-strict", "blas_lib_gfx1250"],
            ),
        ] {
            let mut families = selected.to_vec();
            families.push("gfx1151");
            let plan = build_plan(listed.clone(), &opts(&families), &table, Some(true)).unwrap();
            let files: Vec<&str> = plan.tarballs.iter().map(|t| t.file_name.as_str()).collect();
            assert_eq!(
                files,
                [
                    "therock-dist-linux-gfx1250-7.0.tar.gz",
                    "therock-dist-linux-gfx1250-tests-7.0.tar.gz",
                    "therock-dist-linux-gfx1151-7.0.tar.gz",
                    "therock-dist-linux-gfx1151-tests-7.0.tar.gz",
                    "therock-dist-linux-multiarch-7.0.tar.gz",
                    "therock-dist-linux-multiarch-tests-7.0.tar.gz",
                ],
                "{selected:?}"
            );
            let mut got = names(&plan, 0);
            got.retain(|n| n != "base_lib_generic");
            assert_eq!(got, want, "{selected:?}");
            let tests = names(&plan, 1);
            assert_eq!(
                tests.contains(&"blas_test_gfx1250-strict".to_string()),
                selected.contains(&"gfx1250-strict"),
                "{selected:?}: {tests:?}"
            );
        }
    }

    #[test]
    fn kpack_plan_orders_and_selects() {
        let listed = [
            "base_lib_generic.tar.zst",
            "base_lib_generic.tar.xz",
            "fftw3_lib_generic.tar.zst",
            "core_test_generic.tar.zst",
            "blas_lib_gfx942.tar.zst",
            "blas_lib_gfx1100.tar.zst",
            "blas_test_gfx1101.tar.zst",
            "blas_lib_gfx1201.tar.zst",
        ]
        .map(art)
        .to_vec();
        let table = FamilyTable::builtin();
        let plan = build_plan(
            listed,
            &opts(&["gfx94X-dcgpu", "gfx110X-all"]),
            &table,
            Some(true),
        )
        .unwrap();
        let labels: Vec<_> = plan.tarballs.iter().map(|t| t.file_name.clone()).collect();
        assert_eq!(
            labels,
            [
                "therock-dist-linux-gfx94X-dcgpu-7.0.tar.gz",
                "therock-dist-linux-gfx94X-dcgpu-tests-7.0.tar.gz",
                "therock-dist-linux-gfx110X-all-7.0.tar.gz",
                "therock-dist-linux-gfx110X-all-tests-7.0.tar.gz",
                "therock-dist-linux-multiarch-7.0.tar.gz",
                "therock-dist-linux-multiarch-tests-7.0.tar.gz",
            ]
        );
        assert_eq!(names(&plan, 0), ["base_lib_generic", "blas_lib_gfx942"]);
        // What the base tarballs leave out (fftw3, tests) comes after what
        // every tarball keeps: multiarch is the start of multiarch-tests.
        assert_eq!(
            names(&plan, 5),
            [
                "base_lib_generic",
                "blas_lib_gfx942",
                "blas_lib_gfx1100",
                "core_test_generic",
                "fftw3_lib_generic",
                "blas_test_gfx1101"
            ]
        );
        assert_eq!(names(&plan, 5)[..3], names(&plan, 4)[..]);
        assert_eq!(
            plan.artifacts[0].name.compression,
            crate::plan::Compression::Zst
        );
        assert!(!plan.artifacts.iter().any(|a| a.name.target == "gfx1201"));
    }

    fn labels(plan: &Plan) -> Vec<String> {
        plan.tarballs.iter().map(|t| t.key()).collect()
    }

    #[test]
    fn errors_name_what_is_available() {
        let table = FamilyTable::builtin();
        let e = build_plan(vec![], &opts(&["gfx94X-dcgpu"]), &table, None).unwrap_err();
        assert!(e.to_string().contains("no artifacts"), "{e}");
        // No generic artifacts and none of the family's: a tarball of nothing.
        let listed = ["blas_lib_gfx942.tar.zst"].map(art).to_vec();
        let e = build_plan(listed, &opts(&["gfx110X-all"]), &table, Some(false)).unwrap_err();
        let e = e.to_string();
        for needle in [
            "\"gfx110X-all\" selects nothing",
            "targets in this run: gfx942",
            "known families",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    /// A family without device code in the run gets the generic artifacts,
    /// as TheRock builds it, and a warning saying so.
    #[test]
    fn family_without_device_code_is_generic_only() {
        let listed = ["base_lib_generic.tar.zst", "blas_lib_gfx942.tar.zst"]
            .map(art)
            .to_vec();
        let table = FamilyTable::builtin();
        let plan = build_plan(listed, &opts(&["gfx110X-all"]), &table, Some(false)).unwrap();
        assert_eq!(labels(&plan), ["gfx110X-all", "gfx110X-all-tests"]);
        assert_eq!(names(&plan, 0), ["base_lib_generic"]);
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        let w = &plan.warnings[0];
        for needle in [
            "family \"gfx110X-all\" (targets gfx1100, gfx1101, gfx1102, gfx1103)",
            "matches no device-specific artifact",
            "generic artifacts only",
            "targets in this run: gfx942",
        ] {
            assert!(w.contains(needle), "{needle}: {w}");
        }
    }

    /// A name the table lacks matches artifacts of exactly that target
    /// (feature suffixes included, by base arch), as TheRock's fetch does.
    #[test]
    fn unknown_family_matches_its_own_name() {
        let listed = [
            "base_lib_generic.tar.zst",
            "blas_lib_gfx1099.tar.zst",
            "blas_lib_gfx1099:xnack+.tar.zst",
            "blas_lib_gfx942.tar.zst",
        ]
        .map(art)
        .to_vec();
        let table = FamilyTable::builtin();
        let plan = build_plan(listed.clone(), &opts(&["gfx1099"]), &table, Some(true)).unwrap();
        assert_eq!(
            names(&plan, 0),
            [
                "base_lib_generic",
                "blas_lib_gfx1099",
                "blas_lib_gfx1099:xnack+"
            ]
        );
        let w = plan.warnings.join("\n");
        for needle in [
            "family \"gfx1099\" is not in the built-in family table (TheRock 89553ce3746e)",
            "selects only artifacts whose target is \"gfx1099\"",
            "--family-table",
        ] {
            assert!(w.contains(needle), "{needle}: {w}");
        }
        // The stale-table net names it too: no family of the table has it.
        assert!(
            w.contains("artifacts for gfx1099, gfx1099:xnack+ that"),
            "{w}"
        );

        // Unknown and absent: generic only, and the loudest warning.
        let plan = build_plan(listed, &opts(&["gfx999X"]), &table, Some(true)).unwrap();
        assert_eq!(names(&plan, 0), ["base_lib_generic"]);
        let w = &plan.warnings[0];
        for needle in [
            "family \"gfx999X\" is not in the built-in family table",
            "no artifact of this run has target \"gfx999X\"",
            "generic artifacts only",
            "check the name",
            "--family-table",
            "targets in this run: gfx1099, gfx1099:xnack+, gfx942",
            "known families: dcgpu-all",
        ] {
            assert!(w.contains(needle), "{needle}: {w}");
        }
    }

    /// Per-target artifacts no table entry knows: a warning names them and
    /// --family-table (an old table's gfx103X-all lacked gfx1031).
    #[test]
    fn stale_table_warns_about_unknown_targets() {
        let old = FamilyTable::parse_cmake(
            "therock_add_amdgpu_target(gfx1030 \"RX 6800\" FAMILY gfx103X-all)\n\
             therock_add_amdgpu_target(gfx1032 \"RX 6600\" FAMILY gfx103X-all)\n",
        )
        .unwrap()
        .with_origin("the family table old.cmake");
        let listed = [
            "base_lib_generic.tar.zst",
            "blas_lib_gfx1030.tar.zst",
            "blas_lib_gfx1031.tar.zst",
            "blas_lib_gfx1032:xnack-.tar.zst",
            "blas_lib_gfx1034.tar.zst",
        ]
        .map(art)
        .to_vec();
        let plan = build_plan(listed.clone(), &opts(&["gfx103X-all"]), &old, Some(true)).unwrap();
        assert!(!names(&plan, 0).contains(&"blas_lib_gfx1031".to_string()));
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        let w = &plan.warnings[0];
        for needle in [
            "artifacts for gfx1031, gfx1034 that the family table old.cmake does not know",
            "--family-table",
        ] {
            assert!(w.contains(needle), "{needle}: {w}");
        }
        // The current table knows them all: no warning, all in the tarball.
        let plan = build_plan(
            listed,
            &opts(&["gfx103X-all"]),
            &FamilyTable::builtin(),
            Some(true),
        )
        .unwrap();
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert_eq!(names(&plan, 0).len(), 5);
    }

    /// Targets TheRock's matrix keeps out of packaging go in no tarball,
    /// multiarch and per-target ones included; a run holding them is not a
    /// stale table; asking for them says why they are missing.
    #[test]
    fn targets_excluded_from_packaging_go_in_no_tarball() {
        let listed = [
            "base_lib_generic.tar.zst",
            "blas_lib_gfx942.tar.zst",
            "blas_lib_amdgcnspirv.tar.zst",
            "blas_test_amdgcnspirv.tar.zst",
        ]
        .map(art)
        .to_vec();
        let table = FamilyTable::builtin();
        let mut o = opts(&["gfx94X-dcgpu"]);
        o.per_target = true;
        o.targets = vec!["gfx942".into()];
        let plan = build_plan(listed.clone(), &o, &table, Some(true)).unwrap();
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert!(!plan.tarballs.is_empty());
        assert!(plan
            .artifacts
            .iter()
            .all(|a| !a.name.target.contains("spirv")));
        assert!(plan.tarballs.iter().all(|t| !t.label.contains("spirv")));

        let mut o = opts(&["amdgcnspirv"]);
        o.multiarch = MultiarchMode::Never;
        let plan = build_plan(listed, &o, &table, Some(true)).unwrap();
        assert_eq!(names(&plan, 0), ["base_lib_generic"]);
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        let w = &plan.warnings[0];
        for needle in [
            "2 artifact(s) of target amdgcnspirv go in no tarball",
            "exclude-from-packaging (selected by amdgcnspirv)",
        ] {
            assert!(w.contains(needle), "{needle}: {w}");
        }
    }

    /// `--multiarch auto` builds it for every kpack-split run, one family
    /// included, and for no other.
    #[test]
    fn multiarch_auto_follows_kpack_split() {
        let listed = ["base_lib_generic.tar.zst", "blas_lib_gfx942.tar.zst"]
            .map(art)
            .to_vec();
        let table = FamilyTable::builtin();
        let mut o = opts(&["gfx94X-dcgpu"]);
        o.tests = false;
        let plan = build_plan(listed.clone(), &o, &table, Some(true)).unwrap();
        assert_eq!(labels(&plan), ["gfx94X-dcgpu", "multiarch"]);
        assert_eq!(names(&plan, 1), names(&plan, 0));
        for kpack in [Some(false), None] {
            let plan = build_plan(listed.clone(), &o, &table, kpack).unwrap();
            assert_eq!(labels(&plan), ["gfx94X-dcgpu"], "{kpack:?}");
        }
        o.multiarch = MultiarchMode::Never;
        let plan = build_plan(listed, &o, &table, Some(true)).unwrap();
        assert_eq!(labels(&plan), ["gfx94X-dcgpu"]);
    }
}
