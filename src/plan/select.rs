//! Selection: which artifacts go into which tarball, and in what order.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    artifact::base_arch, tarball_name, FamilyTable, Format, Plan, SourceArtifact, TarballPlan,
};
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

/// What to select: the command line's selection flags (or a tarball set's
/// preset), as [`build_plan`] takes them.
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
    /// Compression of the output tarballs.
    pub format: Format,
    /// Artifact names (`fftw3`) base tarballs leave out; `-tests` variants
    /// leave out nothing.
    pub exclude_artifacts: Vec<String>,
    /// Components (`test`) base tarballs leave out, likewise.
    pub exclude_components: Vec<String>,
}

/// A label and the targets it stands for.
struct Label {
    name: String,
    targets: Vec<String>,
}

impl Label {
    fn matches(&self, target: &str) -> bool {
        target == "generic"
            || target == self.name
            || self
                .targets
                .iter()
                .any(|t| base_arch(t) == base_arch(target))
    }

    /// Matches through its own device code, not just generic artifacts.
    fn matches_specific(&self, target: &str) -> bool {
        target != "generic" && self.matches(target)
    }
}

/// Builds the plan from what the source lists. `kpack_split` is the run
/// manifest's `KPACK_SPLIT_ARTIFACTS` flag, when known.
pub fn build_plan(
    listed: Vec<SourceArtifact>,
    opts: &PlanOptions,
    table: &FamilyTable,
    kpack_split: Option<bool>,
) -> Result<Plan> {
    if listed.is_empty() {
        return Err(Error::Selection(
            "the source holds no artifacts (*.tar.zst or *.tar.xz)".into(),
        ));
    }
    let available = prefer_zst(listed);
    let present_targets: BTreeSet<&str> = available
        .iter()
        .map(|a| a.name.target.as_str())
        .filter(|t| *t != "generic")
        .collect();
    let present = || {
        if present_targets.is_empty() {
            return "none (generic only)".to_string();
        }
        present_targets
            .iter()
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };

    if opts.families.is_empty() && opts.targets.is_empty() {
        return Err(Error::Usage(format!(
            "no families requested: pass --families 'a;b' (targets in this run: {})",
            present()
        )));
    }
    let kpack = kpack_split.unwrap_or(false);
    if (opts.per_target || !opts.targets.is_empty()) && !kpack {
        return Err(Error::Selection(format!(
            "per-target tarballs need a kpack-split run, and this run's therock_manifest.json {}",
            if kpack_split.is_none() {
                "was not found"
            } else {
                "says KPACK_SPLIT_ARTIFACTS is false"
            }
        )));
    }

    let mut warnings: Vec<String> = Vec::new();
    let known_families = || {
        let groups: Vec<&str> = table
            .family_names()
            .filter(|f| !table.is_target(f))
            .collect();
        format!("{} (and each target)", groups.join(", "))
    };

    // Resolve labels: families, then per-target and extra targets. A name
    // the table does not know stands for itself, as in TheRock's fetch
    // (`expand_families(strict=False)` skips it, and the name itself is
    // still matched against artifact targets).
    let mut labels: Vec<Label> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for fam in &opts.families {
        let targets = match table.targets_of(fam) {
            Some(targets) => targets.to_vec(),
            None => {
                unknown.push(fam);
                vec![fam.clone()]
            }
        };
        labels.push(Label {
            name: fam.clone(),
            targets,
        });
    }
    let mut single: Vec<String> = Vec::new();
    if opts.per_target {
        for l in &labels {
            for t in &l.targets {
                let built = available
                    .iter()
                    .any(|a| base_arch(&a.name.target) == base_arch(t));
                if built && !single.contains(t) {
                    single.push(t.clone());
                }
            }
        }
    }
    for t in &opts.targets {
        if !single.contains(t) {
            single.push(t.clone());
        }
    }
    for t in single {
        if !labels.iter().any(|l| l.name == t) {
            labels.push(Label {
                targets: vec![t.clone()],
                name: t,
            });
        }
    }
    // A label without device code of its own still gets a tarball of the
    // generic artifacts, as TheRock builds it; only a tarball of nothing
    // at all is an error.
    for l in &labels {
        let kind = if opts.families.contains(&l.name) {
            "family"
        } else {
            "target"
        };
        if !available.iter().any(|a| l.matches(&a.name.target)) {
            return Err(Error::Selection(format!(
                "{kind} {:?} selects nothing: no artifact of this run has its targets ({}) and the run has no generic artifacts; targets in this run: {}; known families: {}",
                l.name,
                l.targets.join(", "),
                present(),
                known_families()
            )));
        }
        let specific = available.iter().any(|a| l.matches_specific(&a.name.target));
        let is_unknown = unknown.contains(&l.name.as_str());
        let warning = match (is_unknown, specific) {
            (true, true) => format!(
                "family {:?} is not in {}: it selects only artifacts whose target is {:?}, as TheRock does for a name its table lacks; if it is a family, pass --family-table with a therock_amdgpu_targets.cmake that has it",
                l.name,
                table.origin(),
                l.name
            ),
            (true, false) => format!(
                "family {:?} is not in {} and no artifact of this run has target {:?}: its tarball holds generic artifacts only (TheRock builds the same); check the name, or pass --family-table with a therock_amdgpu_targets.cmake that has it; targets in this run: {}; known families: {}",
                l.name,
                table.origin(),
                l.name,
                present(),
                known_families()
            ),
            (false, false) => format!(
                "{kind} {:?} (targets {}) matches no device-specific artifact of this run: its tarball holds generic artifacts only, as TheRock builds it; targets in this run: {}",
                l.name,
                l.targets.join(", "),
                present()
            ),
            (false, true) => continue,
        };
        warnings.push(warning);
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

    let multiarch = match opts.multiarch {
        MultiarchMode::Always => true,
        MultiarchMode::Never => false,
        MultiarchMode::Auto => kpack,
    };

    // Global order: generic non-test, each label's non-test, generic test,
    // each label's test; by stem inside a group.
    let group_of = |a: &SourceArtifact| -> Option<(usize, usize)> {
        let test = a.name.is_test() as usize;
        if a.name.is_generic() {
            return Some((test, 0));
        }
        labels
            .iter()
            .position(|l| l.matches_specific(&a.name.target))
            .map(|i| (test, i + 1))
    };
    let base_excluded = |a: &SourceArtifact| {
        opts.exclude_artifacts.contains(&a.name.name)
            || opts.exclude_components.contains(&a.name.component)
    };

    // Candidate tarballs as (label, tests, predicate over artifacts).
    let mut specs: Vec<(String, bool, Vec<&Label>)> = Vec::new();
    for l in &labels {
        specs.push((l.name.clone(), false, vec![l]));
        if opts.tests {
            specs.push((l.name.clone(), true, vec![l]));
        }
    }
    if multiarch {
        let all: Vec<&Label> = labels.iter().collect();
        specs.push(("multiarch".into(), false, all.clone()));
        if opts.tests {
            specs.push(("multiarch".into(), true, all));
        }
    }

    let mut ordered: Vec<(&SourceArtifact, (usize, usize))> = available
        .iter()
        .filter_map(|a| group_of(a).map(|g| (a, g)))
        .collect();
    ordered.sort_by(|(a, ga), (b, gb)| ga.cmp(gb).then_with(|| a.name.stem().cmp(&b.name.stem())));

    let mut used = vec![false; ordered.len()];
    let mut tarballs = Vec::new();
    for (label, tests, ls) in &specs {
        let members: Vec<usize> = ordered
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| ls.iter().any(|l| l.matches(&a.name.target)))
            .filter(|(_, (a, _))| *tests || !base_excluded(a))
            .map(|(i, _)| i)
            .collect();
        for &i in &members {
            used[i] = true;
        }
        tarballs.push((label.clone(), *tests, members));
    }

    // Keep only artifacts some tarball uses, renumbering.
    let mut new_index = vec![usize::MAX; ordered.len()];
    let mut artifacts = Vec::new();
    for (i, (a, _)) in ordered.iter().enumerate() {
        if used[i] {
            new_index[i] = artifacts.len();
            artifacts.push((*a).clone());
        }
    }
    let tarballs = tarballs
        .into_iter()
        .map(|(label, tests, members)| {
            let artifacts_idx: Vec<usize> = members.iter().map(|&i| new_index[i]).collect();
            let input_bytes = artifacts_idx.iter().map(|&i| artifacts[i].size).sum();
            TarballPlan {
                file_name: tarball_name(&opts.platform, &label, tests, &opts.version, opts.format),
                label,
                tests,
                artifacts: artifacts_idx,
                input_bytes,
            }
        })
        .collect();
    Ok(Plan {
        artifacts,
        tarballs,
        format: opts.format,
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
            format: Format::Gzip,
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
        assert_eq!(
            names(&plan, 5),
            [
                "base_lib_generic",
                "fftw3_lib_generic",
                "blas_lib_gfx942",
                "blas_lib_gfx1100",
                "core_test_generic",
                "blas_test_gfx1101"
            ]
        );
        assert_eq!(
            plan.artifacts[0].name.compression,
            crate::plan::Compression::Zst
        );
        assert!(!plan.artifacts.iter().any(|a| a.name.target == "gfx1201"));
    }

    fn labels(plan: &Plan) -> Vec<String> {
        plan.tarballs
            .iter()
            .map(|t| format!("{}{}", t.label, if t.tests { "-tests" } else { "" }))
            .collect()
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
