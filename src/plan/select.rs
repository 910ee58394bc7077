//! Selection: which artifacts go into which tarball, and in what order.

use std::collections::{BTreeMap, BTreeSet};

use super::{artifact::base_arch, tarball_name, FamilyTable, Plan, SourceArtifact, TarballPlan};
use crate::codec::Format;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum MultiarchMode {
    /// Build it when the run is kpack-split and more than one label is requested.
    Auto,
    Always,
    Never,
}

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub families: Vec<String>,
    /// Extra single targets, each its own tarball.
    pub targets: Vec<String>,
    /// One tarball per target of every requested family.
    pub per_target: bool,
    pub platform: String,
    pub version: String,
    pub tests: bool,
    pub multiarch: MultiarchMode,
    pub format: Format,
    /// What base tarballs leave out; `-tests` variants leave out nothing.
    pub exclude_artifacts: Vec<String>,
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

    // Resolve labels: families, then per-target and extra targets.
    let mut labels: Vec<Label> = Vec::new();
    for fam in &opts.families {
        let targets = table.targets_of(fam).ok_or_else(|| {
            Error::Selection(format!(
                "unknown family {fam:?}; known families: {}",
                table.family_names().collect::<Vec<_>>().join(", ")
            ))
        })?;
        labels.push(Label {
            name: fam.clone(),
            targets: targets.to_vec(),
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
    for l in &labels {
        if !available.iter().any(|a| l.matches_specific(&a.name.target)) {
            return Err(Error::Selection(format!(
                "{} {:?} (targets {}) matches no artifact; targets in this run: {}; known families: {}",
                if opts.families.contains(&l.name) { "family" } else { "target" },
                l.name,
                l.targets.join(", "),
                present(),
                table.family_names().collect::<Vec<_>>().join(", ")
            )));
        }
    }

    let multiarch = match opts.multiarch {
        MultiarchMode::Always => true,
        MultiarchMode::Never => false,
        MultiarchMode::Auto => kpack && labels.len() > 1,
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

    #[test]
    fn errors_name_what_is_available() {
        let listed = ["base_lib_generic.tar.zst", "blas_lib_gfx942.tar.zst"]
            .map(art)
            .to_vec();
        let table = FamilyTable::builtin();
        let e =
            build_plan(listed.clone(), &opts(&["gfx110X-all"]), &table, Some(false)).unwrap_err();
        assert!(e.to_string().contains("targets in this run: gfx942"), "{e}");
        let e = build_plan(listed, &opts(&["gfx999X"]), &table, Some(false)).unwrap_err();
        assert!(e.to_string().contains("known families"), "{e}");
        let e = build_plan(vec![], &opts(&["gfx94X-dcgpu"]), &table, None).unwrap_err();
        assert!(e.to_string().contains("no artifacts"), "{e}");
    }
}
