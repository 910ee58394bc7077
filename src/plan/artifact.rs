//! Artifact file names: `{name}_{component}_{target}.tar.{zst,xz}`.

use std::fmt;

/// Compression of an artifact archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Compression {
    /// `.tar.zst`, preferred when both exist.
    Zst,
    /// `.tar.xz`.
    Xz,
}

impl Compression {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Compression::Zst => "tar.zst",
            Compression::Xz => "tar.xz",
        }
    }
}

/// The components TheRock splits an artifact into.
pub const COMPONENTS: &[&str] = &["lib", "run", "dbg", "dev", "doc", "test"];

/// A parsed artifact file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ArtifactName {
    /// The artifact proper (`rocblas`, `base`); has no underscore.
    pub name: String,
    /// One of [`COMPONENTS`].
    pub component: String,
    /// `generic`, a family (`gfx110X-all`) or a target, possibly with a
    /// feature suffix (`gfx942:xnack+`).
    pub target: String,
    /// Which of the two archive formats this copy is.
    pub compression: Compression,
}

impl ArtifactName {
    /// Parses a file name (no directory part). Returns `Ok(None)` for files
    /// that are not archives at all (sidecars, manifests, indexes), and for
    /// archives whose name does not follow the convention an error saying
    /// how (`logs/**/ccache_logs.tar.zst` is one: a source skips them).
    pub fn parse(file_name: &str) -> Result<Option<ArtifactName>, String> {
        let (stem, compression) = if let Some(s) = file_name.strip_suffix(".tar.zst") {
            (s, Compression::Zst)
        } else if let Some(s) = file_name.strip_suffix(".tar.xz") {
            (s, Compression::Xz)
        } else {
            return Ok(None);
        };
        let bad = |why: &str| {
            Err(format!(
                "not named {{name}}_{{component}}_{{target}} with component one of {} ({why})",
                COMPONENTS.join(", ")
            ))
        };
        if stem.contains('/') || stem.contains('\\') {
            return bad("contains a path separator");
        }
        let parts: Vec<&str> = stem.split('_').collect();
        if parts.len() != 3 {
            return bad(&format!(
                "{} underscore-separated fields, not 3",
                parts.len()
            ));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return bad("empty field");
        }
        if !COMPONENTS.contains(&parts[1]) {
            return bad(&format!("unknown component {:?}", parts[1]));
        }
        let ok_chars = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.+:".contains(c))
        };
        if !parts.iter().all(|p| ok_chars(p)) {
            return bad("unexpected character");
        }
        Ok(Some(ArtifactName {
            name: parts[0].to_string(),
            component: parts[1].to_string(),
            target: parts[2].to_string(),
            compression,
        }))
    }

    /// `{name}_{component}_{target}`, the identity used for `.zst`/`.xz` preference.
    pub fn stem(&self) -> String {
        format!("{}_{}_{}", self.name, self.component, self.target)
    }

    /// `{stem}.tar.zst` or `.tar.xz`: the name the artifact is stored under.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.stem(), self.compression.extension())
    }

    pub(crate) fn is_generic(&self) -> bool {
        self.target == "generic"
    }

    pub(crate) fn is_test(&self) -> bool {
        self.component == "test"
    }

    /// The target's base architecture: the text before any `:feature` suffix.
    pub fn base_arch(&self) -> &str {
        base_arch(&self.target)
    }
}

pub(crate) fn base_arch(target: &str) -> &str {
    target.split(':').next().unwrap_or(target)
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        let a = ArtifactName::parse("rocblas_lib_gfx110X-all.tar.zst")
            .unwrap()
            .unwrap();
        assert_eq!(a.name, "rocblas");
        assert_eq!(a.component, "lib");
        assert_eq!(a.target, "gfx110X-all");
        let b = ArtifactName::parse("hip_run_gfx942:xnack+.tar.xz")
            .unwrap()
            .unwrap();
        assert_eq!(b.base_arch(), "gfx942");
        assert_eq!(b.compression, Compression::Xz);
        assert!(ArtifactName::parse("x.tar.zst.sha256sum")
            .unwrap()
            .is_none());
        assert!(ArtifactName::parse("a_b_lib_generic.tar.zst").is_err());
        assert!(ArtifactName::parse("a_foo_generic.tar.zst").is_err());
        assert!(ArtifactName::parse("a_lib.tar.zst").is_err());
    }
}
