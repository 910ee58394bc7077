//! What to build: artifact names, the family table, selection, output
//! naming and the order in which artifacts are processed.

pub mod artifact;
pub mod exclude;
pub mod families;
mod format;
mod listing;
pub mod name_part;
pub mod owners;
mod preset;
mod select;
pub mod set;
pub mod windows_names;

pub use artifact::{ArtifactName, Compression};
pub use families::FamilyTable;
pub use format::Format;
pub use preset::preset;
pub use select::{build_plan, plan_set, MultiarchMode, Naming, PlanOptions};
pub use set::TarballSet;

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

/// One output tarball (one format of one tarball of the set).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TarballPlan {
    /// `{label}` of its name: a family, target, group or union label
    /// (`multiarch`).
    pub label: String,
    /// Its table's `variant` (`tests` for the command line's `-tests`
    /// tarballs), if any.
    pub variant: Option<String>,
    /// The tarball's name in the sink.
    pub file_name: String,
    /// Its compression.
    pub format: Format,
    /// The name of its checksum file, if it has one.
    pub sidecar: Option<String>,
    /// gitignore-style patterns of flattened paths it leaves out.
    pub exclude_paths: Vec<String>,
    /// Where the set defines it: `FILE:LINE`, or the flag.
    pub defined_at: String,
    /// Indices into `Plan::artifacts`, ascending (= plan order).
    pub artifacts: Vec<usize>,
    /// Sum of the compressed sizes of its artifacts.
    pub input_bytes: u64,
}

/// `{label}` or `{label}-{variant}`: how CI outputs key a tarball and
/// `--only` names it.
pub fn tarball_key(label: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{label}-{v}"),
        None => label.to_string(),
    }
}

impl TarballPlan {
    /// `{label}` or `{label}-{variant}`: how CI outputs key it and
    /// `--only` names it.
    pub fn key(&self) -> String {
        tarball_key(&self.label, self.variant.as_deref())
    }

    /// Whether `--only name` selects it.
    pub fn named_by(&self, name: &str) -> bool {
        name == self.label
            || name == self.key()
            || name == self.file_name
            || self
                .file_name
                .strip_suffix(self.format.extension())
                .and_then(|n| n.strip_suffix('.'))
                == Some(name)
    }

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
    /// The output tarballs: those of one label together (labels in order
    /// of first appearance in the set, `multiarch` last on the command
    /// line), in table order within a label, formats in listed order.
    pub tarballs: Vec<TarballPlan>,
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

    /// Each tarball's rank in the order an uploading sink publishes them:
    /// the largest (by input) first, ties in plan order. Bytes several
    /// tarballs hold are sent with the best-ranked of them, and the others
    /// copy them from it, so the largest tarball is sent whole and the
    /// others are runs of it (the plan's artifact order makes those runs
    /// long).
    pub fn upload_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.tarballs.len()).collect();
        order.sort_by_key(|&t| (std::cmp::Reverse(self.tarballs[t].input_bytes), t));
        let mut rank = vec![0; order.len()];
        for (r, t) in order.into_iter().enumerate() {
            rank[t] = r;
        }
        rank
    }

    /// Which tarballs later-ranked tarballs may copy their shared bytes
    /// from: every one that holds an artifact a later-ranked tarball of
    /// its format holds too. An uploading sink keeps these under a staging
    /// name until the set is published, and copies them to their final
    /// names inside the store: a server-side copy of each, so that a
    /// tarball's shared bytes can follow whichever earlier tarball holds
    /// them in one long run (sending less than copying from the largest
    /// alone, whose runs a smaller tarball's artifacts cut short).
    pub fn copy_origins(&self) -> Vec<bool> {
        let rank = self.upload_order();
        (0..self.tarballs.len())
            .map(|t| {
                let this = &self.tarballs[t];
                self.tarballs.iter().enumerate().any(|(u, later)| {
                    rank[u] > rank[t]
                        && later.format == this.format
                        && later
                            .artifacts
                            .iter()
                            .any(|a| this.artifacts.binary_search(a).is_ok())
                })
            })
            .collect()
    }

    /// The formats the run writes, each once, in order of first use.
    pub fn formats(&self) -> Vec<Format> {
        let mut out: Vec<Format> = Vec::new();
        for t in &self.tarballs {
            if !out.contains(&t.format) {
                out.push(t.format);
            }
        }
        out
    }
}

impl Plan {
    /// Keeps only the tarballs `--only` names: a label (`gfx94X-dcgpu`,
    /// `multiarch`, a target, a union's label) selects every tarball of that
    /// label; `{label}-{variant}` (`gfx94X-dcgpu-tests`) the tarballs of
    /// that variant; a file name, with or without its extension, that one
    /// tarball. Artifacts no kept tarball needs are dropped, so a CI matrix
    /// job reads only its own.
    pub fn only(self, labels: &[String]) -> crate::error::Result<Plan> {
        if labels.is_empty() {
            return Ok(self);
        }
        for l in labels {
            if !self.tarballs.iter().any(|t| t.named_by(l)) {
                let mut known: Vec<String> = Vec::new();
                for t in &self.tarballs {
                    let key = t.key();
                    if !known.contains(&key) {
                        known.push(key);
                    }
                }
                return Err(crate::error::Error::Usage(format!(
                    "--only {l:?} names no tarball of this plan; it has: {}",
                    known.join(", ")
                )));
            }
        }
        let kept: Vec<TarballPlan> = self
            .tarballs
            .into_iter()
            .filter(|t| labels.iter().any(|l| t.named_by(l)))
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
