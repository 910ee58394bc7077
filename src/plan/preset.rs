//! The command line's selection flags as a tarball set: `--families`,
//! `--targets`, `--per-target`, `--tests`, `--multiarch` and the base
//! tarballs' exclusions mean exactly this set (`plan --print-set` prints it).

use super::select::{check_listed, describe_targets, device_targets, has_device_code};
use super::set::{Cover, Entry, Origin, Sidecar, TarballSet, TarballSpec};
use super::{MultiarchMode, PlanOptions, SourceArtifact};
use crate::error::{Error, Result};
use crate::plan::FamilyTable;

/// TheRock's names: `therock-dist-{platform}-{label}[-tests]-{version}`.
pub const BASE_NAME: &str = "therock-dist-{platform}-{label}-{version}";
/// The `-tests` variant's.
pub const TESTS_NAME: &str = "therock-dist-{platform}-{label}-tests-{version}";

/// The set the flags in `opts` mean for a run that lists `listed` (whose
/// targets `--per-target` expands to) and whose manifest says
/// `kpack_split`.
pub fn preset(
    opts: &PlanOptions,
    listed: &[SourceArtifact],
    table: &FamilyTable,
    kpack_split: Option<bool>,
) -> Result<TarballSet> {
    check_listed(listed)?;
    if opts.families.is_empty() && opts.targets.is_empty() {
        return Err(Error::Usage(format!(
            "no families requested: pass --families 'a;b' (targets in this run: {})",
            describe_targets(&device_targets(listed))
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

    let entry = |name: &str, flag: &'static str| Entry {
        name: name.to_string(),
        origin: Origin::Flag(flag),
    };
    let mut entries: Vec<Entry> = opts
        .families
        .iter()
        .map(|f| entry(f, "--families"))
        .collect();
    // --per-target: every target of the families that the run has device
    // code for; then --targets; a name already a label is not repeated.
    let mut singles: Vec<Entry> = Vec::new();
    if opts.per_target {
        for fam in &opts.families {
            let targets = table
                .targets_of(fam)
                .map(<[String]>::to_vec)
                .unwrap_or_else(|| vec![fam.clone()]);
            for t in targets {
                if has_device_code(listed, &t) && !singles.iter().any(|e| e.name == t) {
                    singles.push(entry(&t, "--per-target"));
                }
            }
        }
    }
    for t in &opts.targets {
        if !singles.iter().any(|e| &e.name == t) {
            singles.push(entry(t, "--targets"));
        }
    }
    for s in singles {
        if !entries.iter().any(|e| e.name == s.name) {
            entries.push(s);
        }
    }

    let spec = |name: &str, variant: Option<&str>, cover: Cover, base: bool| TarballSpec {
        origin: Origin::Flag("--families"),
        name: name.to_string(),
        variant: variant.map(String::from),
        cover,
        generic: true,
        components: None,
        exclude_components: if base {
            opts.exclude_components.clone()
        } else {
            Vec::new()
        },
        artifacts: None,
        exclude_artifacts: if base {
            opts.exclude_artifacts.clone()
        } else {
            Vec::new()
        },
        exclude_paths: Vec::new(),
        formats: None,
        sidecar: Sidecar::Sha256sum,
    };
    let mut tarballs = vec![spec(BASE_NAME, None, Cover::Each(entries.clone()), true)];
    if opts.tests {
        tarballs.push(spec(
            TESTS_NAME,
            Some("tests"),
            Cover::Each(entries.clone()),
            false,
        ));
    }
    let multiarch = match opts.multiarch {
        MultiarchMode::Always => true,
        MultiarchMode::Never => false,
        MultiarchMode::Auto => kpack,
    };
    if multiarch {
        let union = || Cover::Union {
            label: "multiarch".into(),
            entries: entries.clone(),
        };
        tarballs.push(spec(BASE_NAME, None, union(), true));
        if opts.tests {
            tarballs.push(spec(TESTS_NAME, Some("tests"), union(), false));
        }
    }
    Ok(TarballSet {
        groups: Vec::new(),
        tarballs,
        lenient: true,
    })
}
