//! What to build: artifact names, the family table, selection, output
//! naming and the order in which artifacts are processed.

pub mod artifact;
pub mod families;
mod format;
mod select;

pub use artifact::{ArtifactName, Compression};
pub use families::FamilyTable;
pub use format::Format;
pub use select::{build_plan, MultiarchMode, PlanOptions};

/// An artifact as a source lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceArtifact {
    /// What its file name says it is.
    pub name: ArtifactName,
    /// Where the source finds it (a path below the source root, or a key).
    pub key: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// The key of its `.sha256sum` sidecar, when the source has one.
    pub sha256_key: Option<String>,
}

/// One output tarball.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TarballPlan {
    /// Family, target or `multiarch`.
    pub label: String,
    /// The `-tests` variant, which leaves nothing out; the base tarball
    /// leaves out what [`PlanOptions`] excludes.
    pub tests: bool,
    /// The tarball's name in the sink (see [`tarball_name`]).
    pub file_name: String,
    /// Indices into `Plan::artifacts`, ascending (= plan order).
    pub artifacts: Vec<usize>,
    /// Sum of the compressed sizes of its artifacts.
    pub input_bytes: u64,
}

impl TarballPlan {
    /// An upper bound of the tarball's size, for sizing S3 parts: stored
    /// artifacts rarely expand more than 5x when decoded, and compression
    /// only shrinks that; the S3 sink grows its parts should a run ever
    /// exceed it.
    pub fn size_bound(&self) -> u64 {
        self.input_bytes.saturating_mul(8) + (1 << 20)
    }
}

/// The whole run: artifacts in processing order and the tarballs made of them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// Every artifact some tarball needs, in processing order (generic before
    /// device-specific, test components last, by name within a group);
    /// tarballs refer to them by index.
    pub artifacts: Vec<SourceArtifact>,
    /// The output tarballs: each label's base tarball and then its `-tests`
    /// variant, labels in request order, `multiarch` last.
    pub tarballs: Vec<TarballPlan>,
    /// Compression of every tarball of the run.
    pub format: Format,
    /// Whether the run is kpack-split, when known.
    pub kpack_split: Option<bool>,
    /// What the user should know about the selection (a name the family
    /// table lacks, a tarball of generic artifacts only, a stale table);
    /// logged when the plan is built, and repeated in the step summary.
    pub warnings: Vec<String>,
}

impl Plan {
    /// For each artifact, the tarballs (indices) that contain it.
    pub fn containing(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.artifacts.len()];
        for (t, tb) in self.tarballs.iter().enumerate() {
            for &a in &tb.artifacts {
                out[a].push(t);
            }
        }
        out
    }
}

/// `therock-dist-{platform}-{label}[-tests]-{version}.tar.{gz,zst}`.
pub fn tarball_name(
    platform: &str,
    label: &str,
    tests: bool,
    version: &str,
    format: Format,
) -> String {
    let tests = if tests { "-tests" } else { "" };
    format!(
        "therock-dist-{platform}-{label}{tests}-{version}.{}",
        format.extension()
    )
}

impl Plan {
    /// Keeps only the tarballs `--only` names: a label (`gfx94X-dcgpu`,
    /// `multiarch`, a target) selects its base tarball and its `-tests`
    /// variant; `{label}-tests` selects the variant alone. Artifacts no
    /// kept tarball needs are dropped, so a CI matrix job reads only its own.
    pub fn only(self, labels: &[String]) -> crate::error::Result<Plan> {
        if labels.is_empty() {
            return Ok(self);
        }
        let name_of = |t: &TarballPlan| {
            if t.tests {
                format!("{}-tests", t.label)
            } else {
                t.label.clone()
            }
        };
        for l in labels {
            if !self
                .tarballs
                .iter()
                .any(|t| &t.label == l || &name_of(t) == l)
            {
                let known: Vec<String> = self.tarballs.iter().map(name_of).collect();
                return Err(crate::error::Error::Usage(format!(
                    "--only {l:?} names no tarball of this plan; it has: {}",
                    known.join(", ")
                )));
            }
        }
        let kept: Vec<TarballPlan> = self
            .tarballs
            .into_iter()
            .filter(|t| labels.iter().any(|l| &t.label == l || &name_of(t) == l))
            .collect();
        let mut used = vec![false; self.artifacts.len()];
        for t in &kept {
            for &a in &t.artifacts {
                used[a] = true;
            }
        }
        let mut new_index = vec![usize::MAX; self.artifacts.len()];
        let mut artifacts = Vec::new();
        for (i, a) in self.artifacts.into_iter().enumerate() {
            if used[i] {
                new_index[i] = artifacts.len();
                artifacts.push(a);
            }
        }
        let tarballs = kept
            .into_iter()
            .map(|mut t| {
                t.artifacts = t.artifacts.iter().map(|&a| new_index[a]).collect();
                t
            })
            .collect();
        Ok(Plan {
            artifacts,
            tarballs,
            ..self
        })
    }
}
