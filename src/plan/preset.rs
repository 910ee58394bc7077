//! The command line's selection flags as a tarball set: `--families`,
//! `--targets`, `--per-target`, `--tests`, `--multiarch` and the base
//! tarballs' exclusions mean exactly this set (`plan --print-set` prints it).

use super::listing::{check_listed, describe_targets, device_targets, has_device_code};
use super::set::{Cover, Entry, Origin, Sidecar, TarballSet, TarballSpec};
use super::{MultiarchMode, PlanOptions, SourceArtifact};
use crate::error::{Error, Result};
use crate::plan::{owners, FamilyTable};

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
    let covers = covers(&entries);
    let mut tarballs: Vec<TarballSpec> = covers
        .iter()
        .map(|c| spec(BASE_NAME, None, c.clone(), true))
        .collect();
    if opts.tests {
        tarballs.extend(
            covers
                .iter()
                .map(|c| spec(TESTS_NAME, Some("tests"), c.clone(), false)),
        );
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

/// The tarballs of `entries`, in order: a family that owns its tarball is
/// an entry of an `each`, families that share one (see [`owners`]: with
/// `gfx1250-strict`, `gfx1250`'s) a union labelled by their owner, as
/// TheRock's step groups them. Per-target entries are never grouped.
fn covers(entries: &[Entry]) -> Vec<Cover> {
    let families = entries
        .iter()
        .filter(|e| e.origin == Origin::Flag("--families"))
        .map(|e| e.name.as_str());
    let mut out: Vec<Cover> = Vec::new();
    let each = |e: &Entry, out: &mut Vec<Cover>| match out.last_mut() {
        Some(Cover::Each(run)) => run.push(e.clone()),
        _ => out.push(Cover::Each(vec![e.clone()])),
    };
    for (owner, members) in owners::group(families) {
        let of = |name: &str| entries.iter().find(|e| e.name == name).expect("an entry");
        if members == [owner] {
            each(of(owner), &mut out);
        } else {
            out.push(Cover::Union {
                label: owner.to_string(),
                entries: members.iter().map(|m| of(m).clone()).collect(),
            });
        }
    }
    for e in entries
        .iter()
        .filter(|e| e.origin != Origin::Flag("--families"))
    {
        each(e, &mut out);
    }
    out
}
