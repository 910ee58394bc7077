//! What a run lists, as selection and its messages see it: its device
//! targets and whether it has code for one.

use std::collections::BTreeSet;

use super::artifact::base_arch;
use super::SourceArtifact;
use crate::error::{Error, Result};

/// The error for a source without artifacts.
pub(crate) fn check_listed(listed: &[SourceArtifact]) -> Result<()> {
    if listed.is_empty() {
        return Err(Error::Selection(
            "the source holds no artifacts (*.tar.zst or *.tar.xz)".into(),
        ));
    }
    Ok(())
}

/// The run's device targets (every target but `generic`), sorted, once each.
pub(crate) fn device_targets(artifacts: &[SourceArtifact]) -> BTreeSet<&str> {
    artifacts
        .iter()
        .map(|a| a.name.target.as_str())
        .filter(|t| *t != "generic")
        .collect()
}

/// [`device_targets`] as messages list them.
pub(crate) fn describe_targets(targets: &BTreeSet<&str>) -> String {
    if targets.is_empty() {
        return "none (generic only)".to_string();
    }
    targets.iter().copied().collect::<Vec<_>>().join(", ")
}

/// Whether the run has device code for `target`: an artifact of its base arch.
pub(crate) fn has_device_code(artifacts: &[SourceArtifact], target: &str) -> bool {
    artifacts
        .iter()
        .any(|a| !a.name.is_generic() && base_arch(&a.name.target) == base_arch(target))
}
