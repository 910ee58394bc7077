//! What a selection says before it is packed: errors for a tarball that
//! selects nothing, warnings for one that holds generic artifacts only, for
//! a name the family table lacks, for artifacts kept out of packaging and
//! for targets the table does not know.

use super::resolve::Instance;
use crate::error::{Error, Result};
use crate::plan::families::is_packaged;
use crate::plan::listing::{describe_targets, device_targets};
use crate::plan::set::{Origin, TarballSet};
use crate::plan::{FamilyTable, SourceArtifact};

/// One warning per target of `unpackaged` (artifacts TheRock's matrix keeps
/// out of packaging) that a tarball of `instances` asked for; logged at
/// info level when none did.
pub(super) fn unpackaged(unpackaged: &[SourceArtifact], instances: &[Instance<'_>]) -> Vec<String> {
    let mut warnings = Vec::new();
    for target in &device_targets(unpackaged) {
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
    warnings
}

/// Checks each tarball's members (already chosen): a tarball of a set that
/// selects nothing is an error; the command line's names keep their own
/// checks, per label, as before sets existed. `unknown` are the names the
/// table lacks. Adds warnings to `warnings`.
pub(super) fn selection(
    instances: &[Instance<'_>],
    available: &[SourceArtifact],
    set: &TarballSet,
    table: &FamilyTable,
    unknown: &[String],
    warnings: &mut Vec<String>,
) -> Result<()> {
    let present_targets = device_targets(available);
    let present = || describe_targets(&present_targets);
    let known_families = || {
        let groups: Vec<&str> = table
            .family_names()
            .filter(|f| !table.is_target(f))
            .collect();
        format!("{} (and each target)", groups.join(", "))
    };
    let mut warned: Vec<String> = Vec::new();
    for inst in instances {
        let spec = inst.spec;
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
            // The warning of `unpackaged` says why a name kept out of
            // packaging selects nothing of its own.
            if warned.contains(&inst.label) || !is_packaged(&inst.label) {
                continue;
            }
            let is_unknown = kind == "family" && unknown.contains(&inst.label);
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
    Ok(())
}

/// The safety net for a stale table: per-target artifacts of `available`
/// no family of the table selects would be left out of every family's
/// tarball without a word (how gfx103X-all once lost gfx1031/1033/1034).
pub(super) fn strangers(available: &[SourceArtifact], table: &FamilyTable) -> Option<String> {
    let strangers: Vec<&str> = device_targets(available)
        .iter()
        .copied()
        .filter(|t| !table.knows(t))
        .collect();
    (!strangers.is_empty()).then(|| {
        format!(
            "this run has artifacts for {} that {} does not know: no family selects them, only a request by that exact name; pass --family-table with the run's therock_amdgpu_targets.cmake",
            strangers.join(", "),
            table.origin()
        )
    })
}
