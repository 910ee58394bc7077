//! TheRock's buckets and prefixes for `--run-id` and `--upload`, resolved as
//! TheRock resolves them (`build_tools/_therock_utils/s3_buckets.py`:
//! `get_artifacts_bucket_config`, `get_artifacts_bucket_config_for_workflow_run`
//! and the bucket registry; `workflow_outputs.py`: `_retrieve_bucket_info` and
//! the run prefix).

use std::path::{Path, PathBuf};

use super::location::Location;
use crate::error::{Error, Result};
use crate::net::S3Prefix;
pub use registry::{BucketConfig, BucketRegistry};

mod registry;

/// The repository TheRock assumes when nothing names one.
pub const THEROCK_REPO: &str = "ROCm/TheRock";

/// `--release-type`: TheRock's artifact release types
/// (`_ALLOWED_ARTIFACT_RELEASE_TYPES` in `s3_buckets.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseType {
    /// Continuous integration runs (`therock-ci-artifacts`, or the shared
    /// external bucket for other repositories and fork PRs).
    Ci,
    /// Development releases.
    Dev,
    /// Development releases of a best-known configuration (the BKC bucket).
    DevBkc,
    /// Nightly releases.
    Nightly,
    /// Nightly releases of a best-known configuration (the BKC bucket).
    NightlyBkc,
    /// Release candidates.
    Prerelease,
}

impl ReleaseType {
    /// Every release type, in TheRock's order.
    pub const ALL: [ReleaseType; 6] = [
        ReleaseType::Ci,
        ReleaseType::Dev,
        ReleaseType::DevBkc,
        ReleaseType::Nightly,
        ReleaseType::NightlyBkc,
        ReleaseType::Prerelease,
    ];

    /// The name TheRock (and `--release-type`) spells it with.
    pub fn name(self) -> &'static str {
        match self {
            ReleaseType::Ci => "ci",
            ReleaseType::Dev => "dev",
            ReleaseType::DevBkc => "dev-bkc",
            ReleaseType::Nightly => "nightly",
            ReleaseType::NightlyBkc => "nightly-bkc",
            ReleaseType::Prerelease => "prerelease",
        }
    }

    /// The type named `s`, exactly as TheRock spells it.
    pub fn parse(s: &str) -> Option<ReleaseType> {
        ReleaseType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The in-tree artifacts bucket when the shared external bucket is not
    /// chosen: both BKC types share one bucket of their own (TheRock's
    /// PR #7646, since 2026-08-25; before it they used dev's and nightly's).
    fn artifacts_bucket(self) -> &'static str {
        match self {
            ReleaseType::Ci => "therock-ci-artifacts",
            ReleaseType::Dev => "therock-dev-artifacts",
            ReleaseType::DevBkc | ReleaseType::NightlyBkc => "therock-bkc-artifacts",
            ReleaseType::Nightly => "therock-nightly-artifacts",
            ReleaseType::Prerelease => "therock-prerelease-artifacts",
        }
    }
}

/// The environment TheRock's bucket resolution reads, captured once so that
/// the resolution itself is a pure function of it. Empty values count as
/// unset (TheRock treats an empty `GITHUB_EVENT_PATH` or registry path so).
#[derive(Clone, Debug, Default)]
pub struct CiEnv {
    /// `$GITHUB_REPOSITORY`: the repository of the workflow run doing the packing.
    pub github_repository: Option<String>,
    /// `$GITHUB_RUN_ID`: that run.
    pub github_run_id: Option<String>,
    /// `$RELEASE_TYPE`.
    pub release_type: Option<String>,
    /// `$GITHUB_EVENT_NAME`.
    pub event_name: Option<String>,
    /// `$GITHUB_EVENT_PATH`: the event payload, read for fork detection.
    pub event_path: Option<PathBuf>,
    /// `$THEROCK_S3_BUCKETS_FILE`: a bucket registry file.
    pub buckets_file: Option<PathBuf>,
}

impl CiEnv {
    /// This process's environment.
    pub fn from_process() -> CiEnv {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let text = |k: &str| var(k).map(|v| v.to_string_lossy().into_owned());
        CiEnv {
            github_repository: text("GITHUB_REPOSITORY"),
            github_run_id: text("GITHUB_RUN_ID"),
            release_type: text("RELEASE_TYPE"),
            event_name: text("GITHUB_EVENT_NAME"),
            event_path: var("GITHUB_EVENT_PATH").map(PathBuf::from),
            buckets_file: var("THEROCK_S3_BUCKETS_FILE").map(PathBuf::from),
        }
    }

    /// Whether the current run is a pull request from a fork, as TheRock's
    /// `is_current_run_pr_from_fork` decides without the GitHub API: only a
    /// `pull_request` event counts, by its payload's
    /// `pull_request.head.repo.fork`. A payload that is named but cannot be
    /// read is an error, as it is for TheRock.
    pub fn is_pr_from_fork(&self) -> Result<bool> {
        if self.event_name.as_deref() != Some("pull_request") {
            return Ok(false);
        }
        let Some(path) = &self.event_path else {
            return Ok(false);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading GITHUB_EVENT_PATH {}", path.display()), e))?;
        let event: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "GITHUB_EVENT_PATH {}: invalid JSON: {e}",
                path.display()
            ))
        })?;
        if !event.is_object() {
            return Err(Error::Usage(format!(
                "GITHUB_EVENT_PATH {}: expected a JSON object",
                path.display()
            )));
        }
        Ok(event
            .pointer("/pull_request/head/repo/fork")
            .is_some_and(truthy))
    }
}

/// Python's truth value of a JSON value (TheRock takes `bool(...)` of the
/// `fork` field).
fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A TheRock workflow run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRef {
    /// A number.
    pub run_id: String,
    /// `owner/repo` the run belongs to.
    pub github_repo: String,
    /// `linux` or `windows`: the run root is `{run_id}-{platform}`.
    pub platform: String,
}

impl RunRef {
    /// A run, checked: a numeric id, a repository of the form owner/repo.
    /// `id_from` and `repo_from` name where each came from, for messages.
    pub fn new(
        run_id: &str,
        id_from: &str,
        github_repo: &str,
        repo_from: &str,
        platform: &str,
    ) -> Result<RunRef> {
        if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::Usage(format!(
                "{id_from} {run_id:?}: expected a number"
            )));
        }
        let well_formed = github_repo
            .split_once('/')
            .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'));
        if !well_formed {
            return Err(Error::Usage(format!(
                "{repo_from} {github_repo:?}: expected owner/repo"
            )));
        }
        Ok(RunRef {
            run_id: run_id.to_string(),
            github_repo: github_repo.to_string(),
            platform: platform.to_string(),
        })
    }

    /// The `--run-id` run, of `--run-github-repo` (empty counts as unset),
    /// else `$GITHUB_REPOSITORY`, else ROCm/TheRock, as TheRock's
    /// `_retrieve_bucket_info` defaults it.
    pub fn source(
        run_id: &str,
        run_github_repo: Option<&str>,
        platform: &str,
        env: &CiEnv,
    ) -> Result<RunRef> {
        let (repo, from) = match run_github_repo.filter(|r| !r.is_empty()) {
            Some(r) => (r, "--run-github-repo"),
            None => env.packing_repo(),
        };
        RunRef::new(run_id, "--run-id", repo, from, platform)
    }

    /// The run `--upload` writes to: the workflow run doing the packing, as
    /// `upload_tarballs.py --run-id ${{ github.run_id }}` uploads — of
    /// `--upload-run-id`, else `$GITHUB_RUN_ID`, in `$GITHUB_REPOSITORY`
    /// (else ROCm/TheRock). Outside a workflow (neither set) it is the
    /// `--run-id` run itself, in that run's repository.
    pub fn upload(
        upload_run_id: Option<&str>,
        source: Option<&RunRef>,
        platform: &str,
        env: &CiEnv,
    ) -> Result<RunRef> {
        let (id, id_from) = match (upload_run_id, env.github_run_id.as_deref()) {
            (Some(id), _) => (id, "--upload-run-id"),
            (None, Some(id)) => (id, "GITHUB_RUN_ID"),
            (None, None) => {
                return source.cloned().ok_or_else(|| {
                    Error::Usage(
                        "--upload needs a run to upload to: --upload-run-id, $GITHUB_RUN_ID or --run-id"
                            .into(),
                    )
                })
            }
        };
        let (repo, repo_from) = env.packing_repo();
        RunRef::new(id, id_from, repo, repo_from, platform)
    }
}

impl CiEnv {
    /// The repository of the run doing the packing, and where that came from.
    fn packing_repo(&self) -> (&str, &'static str) {
        match self.github_repository.as_deref() {
            Some(r) => (r, "GITHUB_REPOSITORY"),
            None => (THEROCK_REPO, "the default repository"),
        }
    }
}

/// How this process resolves TheRock run locations — release type, the
/// current event's fork state and the bucket inventory — shared by
/// `--run-id` and `--upload` as one TheRock job shares them
/// (`WorkflowOutputRoot.from_workflow_run` without a GitHub API lookup).
#[derive(Clone, Debug)]
pub struct Buckets {
    /// Which artifacts bucket family.
    pub release_type: ReleaseType,
    /// Whether the current event is a pull request from a fork.
    pub is_pr_from_fork: bool,
    /// The bucket inventory, with any registry file merged in.
    pub registry: BucketRegistry,
}

impl Buckets {
    /// `--release-type`, else `$RELEASE_TYPE` (which must name a type TheRock
    /// knows), else `ci`; fork state from the event payload; the registry
    /// from `--bucket-config-file` or `$THEROCK_S3_BUCKETS_FILE`.
    pub fn resolve(
        release_type: Option<ReleaseType>,
        bucket_config_file: Option<&Path>,
        env: &CiEnv,
    ) -> Result<Buckets> {
        let release_type = match (release_type, env.release_type.as_deref()) {
            (Some(t), _) => t,
            (None, Some(s)) => ReleaseType::parse(s).ok_or_else(|| {
                let names: Vec<&str> = ReleaseType::ALL.iter().map(|t| t.name()).collect();
                Error::Usage(format!(
                    "RELEASE_TYPE={s:?}: expected one of {}",
                    names.join(", ")
                ))
            })?,
            (None, None) => ReleaseType::Ci,
        };
        Ok(Buckets {
            release_type,
            is_pr_from_fork: env.is_pr_from_fork()?,
            registry: BucketRegistry::load(bucket_config_file, env)?,
        })
    }

    /// A run's root, as `WorkflowOutputRoot.prefix` lays it out:
    /// `s3://{bucket}/{key_prefix}[{owner}-{repo}/]{run_id}-{platform}`,
    /// the `{owner}-{repo}/` part only in a bucket that namespaces
    /// repositories (in-tree: `therock-ci-artifacts-external`).
    pub fn run_root(&self, run: &RunRef) -> Result<Location> {
        let bucket = self.registry.artifacts_bucket(
            self.release_type,
            &run.github_repo,
            self.is_pr_from_fork,
        )?;
        let external = if bucket.namespace_external_repos {
            run.github_repo.replacen('/', "-", 1) + "/"
        } else {
            String::new()
        };
        Ok(Location::S3(S3Prefix::new(
            bucket.name.clone(),
            &format!(
                "{}{external}{}-{}",
                bucket.key_prefix, run.run_id, run.platform
            ),
        )))
    }
}

#[cfg(test)]
mod tests;
