//! TheRock's buckets and prefixes for `--run-id` and `--upload`, resolved as
//! TheRock resolves them (`build_tools/_therock_utils/s3_buckets.py`:
//! `get_artifacts_bucket_config`, `get_artifacts_bucket_config_for_workflow_run`
//! and the bucket registry; `workflow_outputs.py`: `_retrieve_bucket_info` and
//! the run prefix).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::location::Location;
use crate::error::{Error, Result};

/// The repository TheRock assumes when nothing names one.
pub const THEROCK_REPO: &str = "ROCm/TheRock";

/// `--release-type`: TheRock's artifact release types
/// (`_ALLOWED_ARTIFACT_RELEASE_TYPES` in `s3_buckets.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseType {
    Ci,
    Dev,
    DevBkc,
    Nightly,
    NightlyBkc,
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
    /// chosen: the BKC types share dev's and nightly's buckets.
    fn artifacts_bucket(self) -> &'static str {
        match self {
            ReleaseType::Ci => "therock-ci-artifacts",
            ReleaseType::Dev | ReleaseType::DevBkc => "therock-dev-artifacts",
            ReleaseType::Nightly | ReleaseType::NightlyBkc => "therock-nightly-artifacts",
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

/// One bucket of TheRock's inventory, as far as run locations need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketConfig {
    /// The S3 bucket name.
    pub name: String,
    /// The prefix every key of the bucket starts with: empty, or ending in '/'.
    pub key_prefix: String,
    /// Whether runs are further namespaced by `{owner}-{repo}/`: set on a
    /// bucket several repositories write to, whose run ids would collide.
    pub namespace_external_repos: bool,
}

impl BucketConfig {
    fn plain(name: impl Into<String>) -> BucketConfig {
        BucketConfig {
            name: name.into(),
            key_prefix: String::new(),
            namespace_external_repos: false,
        }
    }
}

/// `artifacts_buckets` selection slots: the release types, plus `ci-external`
/// for the shared bucket that fork PRs and other repositories' CI use.
const ARTIFACTS_SLOTS: [&str; 7] = [
    "ci",
    "ci-external",
    "dev",
    "dev-bkc",
    "nightly",
    "nightly-bkc",
    "prerelease",
];
const REGISTRY_KEYS: [&str; 5] = [
    "version",
    "buckets",
    "artifacts_buckets",
    "release_buckets",
    "product_release_buckets",
];
const REGISTRY_BUCKET_KEYS: [&str; 9] = [
    "name",
    "region",
    "iam_account",
    "iam_role",
    "key_prefix",
    "cdn_rules",
    "namespace_external_repos",
    "anonymous_s3_read",
    "override",
];
const CDN_RULE_KEYS: [&str; 2] = ["key_prefix", "url_prefix"];
/// Release types a release or product bucket can be selected for (no `ci`).
const PUBLISHED_RELEASE_TYPES: [&str; 5] =
    ["dev", "dev-bkc", "nightly", "nightly-bkc", "prerelease"];

/// TheRock's bucket inventory (`s3_bucket_configs` in `s3_buckets.py`),
/// optionally extended by a registry file (`THEROCK_S3_BUCKETS_FILE` or
/// `--bucket-config-file`) that registers buckets and overrides which
/// bucket a release type selects.
#[derive(Clone, Debug)]
pub struct BucketRegistry {
    buckets: BTreeMap<String, BucketConfig>,
    /// `artifacts_buckets`: bucket name by selection slot.
    artifacts: BTreeMap<String, String>,
}

impl BucketRegistry {
    /// The in-tree inventory alone. Every name is listed, not just the
    /// artifacts buckets: a registry file may select any registered bucket,
    /// and must say `"override": true` to replace one of these.
    pub fn in_tree() -> BucketRegistry {
        let mut list = vec![
            BucketConfig::plain("therock-ci-artifacts"),
            BucketConfig {
                namespace_external_repos: true,
                ..BucketConfig::plain("therock-ci-artifacts-external")
            },
        ];
        for kind in ["dev", "nightly", "prerelease", "release"] {
            for what in ["artifacts", "packages", "python", "tarball"] {
                list.push(BucketConfig::plain(format!("therock-{kind}-{what}")));
            }
        }
        // The repo.amd.com product buckets store under "v5/".
        for stream in ["bkc", "dev", "nightly", "rc"] {
            for product in ["core", "jax", "pytorch"] {
                list.push(BucketConfig {
                    key_prefix: "v5/".into(),
                    ..BucketConfig::plain(format!("therock-repo-amd-{stream}-{product}"))
                });
            }
        }
        BucketRegistry {
            buckets: list.into_iter().map(|b| (b.name.clone(), b)).collect(),
            artifacts: BTreeMap::new(),
        }
    }

    /// `--bucket-config-file` when given (it wins over the environment, as
    /// TheRock's flag does), else `$THEROCK_S3_BUCKETS_FILE`, else the
    /// in-tree inventory.
    pub fn load(flag: Option<&Path>, env: &CiEnv) -> Result<BucketRegistry> {
        let path = match (flag, env.buckets_file.as_deref()) {
            (Some(f), Some(e)) => {
                if f != e {
                    tracing::info!(
                        "bucket registry: using --bucket-config-file {}, ignoring THEROCK_S3_BUCKETS_FILE={}",
                        f.display(),
                        e.display()
                    );
                }
                f
            }
            (Some(f), None) => f,
            (None, Some(e)) => e,
            (None, None) => return Ok(BucketRegistry::in_tree()),
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading bucket registry {}", path.display()), e))?;
        BucketRegistry::from_json(&text, &path.display().to_string())
    }

    /// A registry file's text merged over the in-tree inventory, with
    /// TheRock's rules: unknown keys are errors, version 1 only, a bucket
    /// named in-tree needs `"override": true` (and then replaces it whole),
    /// and a selection must name a registered bucket. `origin` names the
    /// file in every message.
    pub fn from_json(text: &str, origin: &str) -> Result<BucketRegistry> {
        use serde_json::Value;
        let bad = |m: String| Error::Usage(format!("bucket registry {origin}: {m}"));
        let data: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let top = data
            .as_object()
            .ok_or_else(|| bad("the top level must be a JSON object".into()))?;
        reject_unknown(top, &REGISTRY_KEYS, "top-level").map_err(bad)?;
        let version_ok = top
            .get("version")
            .and_then(Value::as_f64)
            .is_some_and(|v| v == 1.0);
        if !version_ok {
            return Err(bad(format!(
                "unsupported 'version' {}; supported: [1]",
                top.get("version").unwrap_or(&Value::Null)
            )));
        }

        let mut registry = BucketRegistry::in_tree();
        let mut seen = std::collections::BTreeSet::new();
        let entries = match top.get("buckets") {
            None => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(bad("'buckets' must be a list".into())),
        };
        for entry in entries {
            let (config, replace) = parse_bucket(entry).map_err(bad)?;
            if !seen.insert(config.name.clone()) {
                return Err(bad(format!(
                    "bucket {:?} is defined more than once",
                    config.name
                )));
            }
            if registry.buckets.contains_key(&config.name) {
                if !replace {
                    return Err(bad(format!(
                        "bucket {:?} already exists in TheRock's inventory; set \"override\": true on this entry to replace it",
                        config.name
                    )));
                }
                tracing::warn!(
                    "bucket registry {origin} replaces TheRock's built-in config for bucket {:?}",
                    config.name
                );
            }
            registry.buckets.insert(config.name.clone(), config);
        }

        let known = |name: &str| registry.buckets.contains_key(name);
        let artifacts = match top.get("artifacts_buckets") {
            Some(raw) => {
                selection_map(raw, &ARTIFACTS_SLOTS, &known, "artifacts_buckets").map_err(bad)?
            }
            None => BTreeMap::new(),
        };
        // The release and product selections choose buckets rockpack never
        // writes to, but they are checked all the same: a file TheRock
        // rejects must not be accepted here.
        for (key, inner_slots) in [
            ("release_buckets", &["tarball", "python", "packages"][..]),
            ("product_release_buckets", &["core", "pytorch", "jax"][..]),
        ] {
            let Some(raw) = top.get(key) else { continue };
            let outer = raw
                .as_object()
                .ok_or_else(|| bad(format!("'{key}' must be an object")))?;
            reject_unknown(outer, &PUBLISHED_RELEASE_TYPES, key).map_err(bad)?;
            for (release_type, inner) in outer {
                selection_map(
                    inner,
                    inner_slots,
                    &known,
                    &format!("{key}[{release_type:?}]"),
                )
                .map_err(bad)?;
            }
        }
        registry.artifacts = artifacts;
        tracing::info!(
            "bucket registry: loaded {} bucket(s) from {origin}",
            seen.len()
        );
        Ok(registry)
    }

    /// A registered bucket by name.
    pub fn get(&self, name: &str) -> Option<&BucketConfig> {
        self.buckets.get(name)
    }

    /// The artifacts bucket of a run (`get_artifacts_bucket_config`): for
    /// `ci`, the shared external bucket when the run is a fork PR or belongs
    /// to any repository but ROCm/TheRock; otherwise the release type's own
    /// bucket. A registry's `artifacts_buckets` slot overrides the choice.
    pub fn artifacts_bucket(
        &self,
        release_type: ReleaseType,
        repository: &str,
        is_pr_from_fork: bool,
    ) -> Result<&BucketConfig> {
        let (slot, default) =
            if release_type == ReleaseType::Ci && (is_pr_from_fork || repository != THEROCK_REPO) {
                ("ci-external", "therock-ci-artifacts-external")
            } else {
                (release_type.name(), release_type.artifacts_bucket())
            };
        let name = self.artifacts.get(slot).map_or(default, String::as_str);
        self.get(name).ok_or_else(|| {
            Error::Usage(format!(
                "unknown S3 bucket {name:?}; register it in a bucket registry file (THEROCK_S3_BUCKETS_FILE or --bucket-config-file)"
            ))
        })
    }
}

/// Errors for keys outside `allowed`: a typo would otherwise silently mean
/// "not set".
fn reject_unknown(
    obj: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
    what: &str,
) -> std::result::Result<(), String> {
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut allowed = allowed.to_vec();
    allowed.sort_unstable();
    Err(format!(
        "unknown {what} key(s): {}; allowed: {}",
        unknown.join(", "),
        allowed.join(", ")
    ))
}

/// One `buckets` entry: its config and whether it asks to override.
fn parse_bucket(entry: &serde_json::Value) -> std::result::Result<(BucketConfig, bool), String> {
    use serde_json::Value;
    let obj = entry
        .as_object()
        .ok_or("each entry in 'buckets' must be an object")?;
    let name = match obj.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        _ => return Err("each entry in 'buckets' needs a non-empty string 'name'".into()),
    };
    reject_unknown(obj, &REGISTRY_BUCKET_KEYS, &format!("bucket {name:?}"))?;
    let key_prefix = match obj.get("key_prefix") {
        None => String::new(),
        Some(Value::String(p)) => {
            normalized_prefix(p).map_err(|m| format!("bucket {name:?} 'key_prefix': {m}"))?
        }
        Some(_) => return Err(format!("bucket {name:?} 'key_prefix' must be a string")),
    };
    let flag = |key: &str, default: bool| match obj.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("bucket {name:?} '{key}' must be a boolean")),
    };
    let namespace_external_repos = flag("namespace_external_repos", false)?;
    flag("anonymous_s3_read", true)?;
    if let Some(rules) = obj.get("cdn_rules") {
        let rules = rules
            .as_array()
            .ok_or_else(|| format!("bucket {name:?} 'cdn_rules' must be a list"))?;
        for (i, rule) in rules.iter().enumerate() {
            let where_ = format!("bucket {name:?} cdn_rules[{i}]");
            let rule = rule
                .as_object()
                .ok_or_else(|| format!("{where_} must be an object"))?;
            reject_unknown(rule, &CDN_RULE_KEYS, &where_)?;
            let field = |k: &str| match rule.get(k) {
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(format!("{where_} {k:?} must be a string")),
                None => Err(format!("{where_} is missing {k:?}")),
            };
            normalized_prefix(field("key_prefix")?).map_err(|m| format!("{where_}: {m}"))?;
            if !field("url_prefix")?.starts_with("https://") {
                return Err(format!("{where_}: url_prefix must start with 'https://'"));
            }
        }
    }
    let replace = obj.get("override").is_some_and(truthy);
    Ok((
        BucketConfig {
            name,
            key_prefix,
            namespace_external_repos,
        },
        replace,
    ))
}

/// A key prefix as TheRock stores it: no leading '/', a trailing '/' added
/// so that it never joins two path components.
fn normalized_prefix(p: &str) -> std::result::Result<String, String> {
    if p.starts_with('/') {
        return Err(format!(
            "must not start with '/' (S3 keys have no leading slash), got {p:?}"
        ));
    }
    Ok(if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    })
}

/// A selection override: slot → name of a registered bucket.
fn selection_map(
    raw: &serde_json::Value,
    slots: &[&str],
    known: &dyn Fn(&str) -> bool,
    what: &str,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("'{what}' must be an object"))?;
    reject_unknown(obj, slots, what)?;
    obj.iter()
        .map(|(slot, v)| {
            let name = v
                .as_str()
                .ok_or_else(|| format!("{what}[{slot:?}] must be a bucket name string"))?;
            if !known(name) {
                return Err(format!(
                    "{what}[{slot:?}] names unregistered bucket {name:?}; add it to 'buckets' in the same file"
                ));
            }
            Ok((slot.clone(), name.to_string()))
        })
        .collect()
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
        Ok(Location::S3 {
            bucket: bucket.name.clone(),
            prefix: format!(
                "{}{external}{}-{}",
                bucket.key_prefix, run.run_id, run.platform
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(release_type: ReleaseType, fork: bool) -> Buckets {
        Buckets {
            release_type,
            is_pr_from_fork: fork,
            registry: BucketRegistry::in_tree(),
        }
    }

    fn root(b: &Buckets, repo: &str) -> String {
        let run = RunRef::new("123", "--run-id", repo, "--run-github-repo", "linux").unwrap();
        b.run_root(&run).unwrap().describe()
    }

    /// Every release type × repository × fork state, against TheRock's
    /// `get_artifacts_bucket_config` and `WorkflowOutputRoot.prefix`: only
    /// `ci` tells repositories and forks apart, and only the shared external
    /// bucket carries `{owner}-{repo}/` (of the repository the run belongs
    /// to, which for a fork PR is the base repository).
    #[test]
    fn bucket_and_prefix_for_every_release_type_repository_and_fork() {
        use ReleaseType::*;
        let mut rows: Vec<(ReleaseType, &str, bool, String)> = vec![];
        let ci = "s3://therock-ci-artifacts/123-linux/";
        let ext = |ns: &str| format!("s3://therock-ci-artifacts-external/{ns}/123-linux/");
        rows.push((Ci, "ROCm/TheRock", false, ci.to_string()));
        rows.push((Ci, "ROCm/TheRock", true, ext("ROCm-TheRock")));
        for repo in ["ROCm/rocm-libraries", "me/TheRock"] {
            for fork in [false, true] {
                rows.push((Ci, repo, fork, ext(&repo.replace('/', "-"))));
            }
        }
        for (t, bucket) in [
            (Dev, "therock-dev-artifacts"),
            (DevBkc, "therock-dev-artifacts"),
            (Nightly, "therock-nightly-artifacts"),
            (NightlyBkc, "therock-nightly-artifacts"),
            (Prerelease, "therock-prerelease-artifacts"),
        ] {
            for repo in ["ROCm/TheRock", "ROCm/rockrel", "me/TheRock"] {
                for fork in [false, true] {
                    rows.push((t, repo, fork, format!("s3://{bucket}/123-linux/")));
                }
            }
        }
        assert_eq!(rows.len(), 6 + 5 * 6);
        for (t, repo, fork, want) in rows {
            assert_eq!(
                root(&buckets(t, fork), repo),
                want,
                "{t:?} {repo} fork={fork}"
            );
        }
        let win = RunRef::new("9", "--run-id", "ROCm/TheRock", "-", "windows").unwrap();
        assert_eq!(
            buckets(Ci, false).run_root(&win).unwrap().describe(),
            "s3://therock-ci-artifacts/9-windows/"
        );
    }

    #[test]
    fn release_type_names_match_therock() {
        let names: Vec<&str> = ReleaseType::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "ci",
                "dev",
                "dev-bkc",
                "nightly",
                "nightly-bkc",
                "prerelease"
            ]
        );
        for t in ReleaseType::ALL {
            assert_eq!(ReleaseType::parse(t.name()), Some(t));
        }
        assert_eq!(ReleaseType::parse("release"), None);
        assert_eq!(ReleaseType::parse("Dev"), None);
    }

    fn env() -> CiEnv {
        CiEnv::default()
    }

    fn event(dir: &Path, json: &str) -> PathBuf {
        let p = dir.join("event.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    /// `--release-type`, else `$RELEASE_TYPE`, else `ci`; a `$RELEASE_TYPE`
    /// TheRock rejects is a usage error.
    #[test]
    fn release_type_defaults() {
        let resolve = |flag, env: &CiEnv| Buckets::resolve(flag, None, env).map(|b| b.release_type);
        assert_eq!(resolve(None, &env()).unwrap(), ReleaseType::Ci);
        let from_env = CiEnv {
            release_type: Some("nightly-bkc".into()),
            ..env()
        };
        assert_eq!(resolve(None, &from_env).unwrap(), ReleaseType::NightlyBkc);
        assert_eq!(
            resolve(Some(ReleaseType::Dev), &from_env).unwrap(),
            ReleaseType::Dev
        );
        let bogus = CiEnv {
            release_type: Some("release".into()),
            ..env()
        };
        let err = resolve(None, &bogus).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("RELEASE_TYPE=\"release\""),
            "{err}"
        );
        // The flag wins, so a bad environment does not matter then.
        assert_eq!(
            resolve(Some(ReleaseType::Ci), &bogus).unwrap(),
            ReleaseType::Ci
        );
    }

    /// Only a `pull_request` event with `pull_request.head.repo.fork` set is
    /// a fork PR; a payload that is named but unreadable is an error.
    #[test]
    fn fork_detection_from_the_event_payload() {
        let dir = tempfile::tempdir().unwrap();
        let fork = event(
            dir.path(),
            r#"{"pull_request":{"head":{"repo":{"fork":true}}}}"#,
        );
        let with = |name: Option<&str>, path: Option<&Path>| CiEnv {
            event_name: name.map(String::from),
            event_path: path.map(PathBuf::from),
            ..env()
        };
        assert!(with(Some("pull_request"), Some(&fork))
            .is_pr_from_fork()
            .unwrap());
        for other in ["push", "pull_request_target", "workflow_dispatch"] {
            assert!(!with(Some(other), Some(&fork)).is_pr_from_fork().unwrap());
        }
        assert!(!with(None, Some(&fork)).is_pr_from_fork().unwrap());
        assert!(!with(Some("pull_request"), None).is_pr_from_fork().unwrap());
        let dir2 = tempfile::tempdir().unwrap();
        for (json, want) in [
            (
                r#"{"pull_request":{"head":{"repo":{"fork":false}}}}"#,
                false,
            ),
            (r#"{"pull_request":{"head":{"repo":{}}}}"#, false),
            (r#"{}"#, false),
        ] {
            let p = event(dir2.path(), json);
            assert_eq!(
                with(Some("pull_request"), Some(&p))
                    .is_pr_from_fork()
                    .unwrap(),
                want,
                "{json}"
            );
        }
        let missing = dir.path().join("nope.json");
        assert!(with(Some("pull_request"), Some(&missing))
            .is_pr_from_fork()
            .is_err());
        let bad = event(dir2.path(), "{not json");
        assert!(with(Some("pull_request"), Some(&bad))
            .is_pr_from_fork()
            .is_err());

        // And it reaches the bucket: a fork PR on ROCm/TheRock reads the
        // external bucket.
        let e = with(Some("pull_request"), Some(&fork));
        let b = Buckets::resolve(None, None, &e).unwrap();
        assert_eq!(
            root(&b, "ROCm/TheRock"),
            "s3://therock-ci-artifacts-external/ROCm-TheRock/123-linux/"
        );
    }

    /// `--run-github-repo`, else `$GITHUB_REPOSITORY`, else ROCm/TheRock.
    #[test]
    fn source_run_repository_defaults() {
        let repo = |flag: Option<&str>, env: &CiEnv| {
            RunRef::source("1", flag, "linux", env).map(|r| r.github_repo)
        };
        assert_eq!(repo(None, &env()).unwrap(), "ROCm/TheRock");
        assert_eq!(repo(Some(""), &env()).unwrap(), "ROCm/TheRock");
        let gh = CiEnv {
            github_repository: Some("ROCm/rocm-libraries".into()),
            ..env()
        };
        assert_eq!(repo(None, &gh).unwrap(), "ROCm/rocm-libraries");
        assert_eq!(repo(Some("me/TheRock"), &gh).unwrap(), "me/TheRock");
        for bad in ["TheRock", "a/b/c", "/x", "x/"] {
            let err = repo(Some(bad), &env()).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let bad_env = CiEnv {
            github_repository: Some("nope".into()),
            ..env()
        };
        assert!(repo(None, &bad_env)
            .unwrap_err()
            .to_string()
            .contains("GITHUB_REPOSITORY"));
        assert!(RunRef::source("12a", None, "linux", &env()).is_err());
    }

    /// `--upload` goes to the packing run's `tarballs/`: `--upload-run-id`,
    /// else `$GITHUB_RUN_ID` (in `$GITHUB_REPOSITORY`), else the `--run-id`
    /// run itself.
    #[test]
    fn upload_key_with_and_without_github_run_id() {
        let source = RunRef::source("123", Some("ROCm/rocm-libraries"), "linux", &env()).unwrap();
        let ci = buckets(ReleaseType::Ci, false);
        let dev = buckets(ReleaseType::Dev, false);
        let upload = |flag: Option<&str>, env: &CiEnv, b: &Buckets| {
            let run = RunRef::upload(flag, Some(&source), "linux", env).unwrap();
            b.run_root(&run).unwrap().join("tarballs").describe()
        };
        // No GITHUB_RUN_ID: the source run's own folder, in its repository's bucket.
        assert_eq!(
            upload(None, &env(), &ci),
            "s3://therock-ci-artifacts-external/ROCm-rocm-libraries/123-linux/tarballs/"
        );
        assert_eq!(
            upload(None, &env(), &dev),
            "s3://therock-dev-artifacts/123-linux/tarballs/"
        );
        // In a workflow: the packing run, of GITHUB_REPOSITORY (else ROCm/TheRock).
        let gh = CiEnv {
            github_run_id: Some("456".into()),
            ..env()
        };
        assert_eq!(
            upload(None, &gh, &ci),
            "s3://therock-ci-artifacts/456-linux/tarballs/"
        );
        let gh_ext = CiEnv {
            github_run_id: Some("456".into()),
            github_repository: Some("me/TheRock".into()),
            ..env()
        };
        assert_eq!(
            upload(None, &gh_ext, &ci),
            "s3://therock-ci-artifacts-external/me-TheRock/456-linux/tarballs/"
        );
        assert_eq!(
            upload(None, &gh_ext, &dev),
            "s3://therock-dev-artifacts/456-linux/tarballs/"
        );
        assert_eq!(
            upload(None, &gh, &buckets(ReleaseType::Ci, true)),
            "s3://therock-ci-artifacts-external/ROCm-TheRock/456-linux/tarballs/"
        );
        // --upload-run-id wins over GITHUB_RUN_ID.
        assert_eq!(
            upload(Some("789"), &gh, &ci),
            "s3://therock-ci-artifacts/789-linux/tarballs/"
        );
        // Nothing to upload to; a malformed id.
        assert_eq!(
            RunRef::upload(None, None, "linux", &env())
                .unwrap_err()
                .exit_code(),
            2
        );
        let odd = CiEnv {
            github_run_id: Some("x1".into()),
            ..env()
        };
        let err = RunRef::upload(None, Some(&source), "linux", &odd).unwrap_err();
        assert!(err.to_string().contains("GITHUB_RUN_ID"), "{err}");
        // Without a --run-id, GITHUB_RUN_ID alone names the run.
        assert_eq!(
            RunRef::upload(None, None, "windows", &gh).unwrap(),
            RunRef::new("456", "-", "ROCm/TheRock", "-", "windows").unwrap()
        );
    }

    fn registry(json: &str) -> Result<BucketRegistry> {
        BucketRegistry::from_json(json, "test.json")
    }

    fn with_registry(json: &str, t: ReleaseType, fork: bool) -> Buckets {
        Buckets {
            release_type: t,
            is_pr_from_fork: fork,
            registry: registry(json).unwrap(),
        }
    }

    /// A downstream registry file: its buckets' key prefixes reach the run
    /// root, and its `artifacts_buckets` slots redirect one release type at
    /// a time (`ci` and `ci-external`, `dev` and `dev-bkc` are separate).
    #[test]
    fn registry_file_selects_buckets_and_key_prefixes() {
        let json = r#"{
          "version": 1,
          "buckets": [
            {"name": "npi-artifacts", "key_prefix": "v3/artifacts", "iam_role": "npi",
             "cdn_rules": [{"key_prefix": "v3/artifacts/", "url_prefix": "https://cdn.example.com/a/"}]},
            {"name": "npi-shared", "namespace_external_repos": true, "anonymous_s3_read": false}
          ],
          "artifacts_buckets": {"ci": "npi-artifacts", "ci-external": "npi-shared",
                                "dev-bkc": "npi-artifacts"},
          "release_buckets": {"nightly": {"python": "therock-nightly-python"}}
        }"#;
        use ReleaseType::*;
        for (t, repo, fork, want) in [
            (
                Ci,
                "ROCm/TheRock",
                false,
                "s3://npi-artifacts/v3/artifacts/123-linux/",
            ),
            (
                Ci,
                "ROCm/TheRock",
                true,
                "s3://npi-shared/ROCm-TheRock/123-linux/",
            ),
            (Ci, "AMD/npi", false, "s3://npi-shared/AMD-npi/123-linux/"),
            (
                DevBkc,
                "AMD/npi",
                false,
                "s3://npi-artifacts/v3/artifacts/123-linux/",
            ),
            (
                Dev,
                "AMD/npi",
                false,
                "s3://therock-dev-artifacts/123-linux/",
            ),
            (
                NightlyBkc,
                "AMD/npi",
                true,
                "s3://therock-nightly-artifacts/123-linux/",
            ),
        ] {
            assert_eq!(
                root(&with_registry(json, t, fork), repo),
                want,
                "{t:?} {repo} fork={fork}"
            );
        }
        // Overriding only `ci` leaves fork PRs in TheRock's external bucket.
        let only_ci =
            r#"{"version": 1, "buckets": [{"name": "npi"}], "artifacts_buckets": {"ci": "npi"}}"#;
        assert_eq!(
            root(&with_registry(only_ci, Ci, true), "ROCm/TheRock"),
            "s3://therock-ci-artifacts-external/ROCm-TheRock/123-linux/"
        );
        // An in-tree bucket replaced whole with "override": true.
        let replaced = r#"{"version": 1, "buckets": [
            {"name": "therock-ci-artifacts", "key_prefix": "v9/", "override": true}]}"#;
        assert_eq!(
            root(&with_registry(replaced, Ci, false), "ROCm/TheRock"),
            "s3://therock-ci-artifacts/v9/123-linux/"
        );
        // The in-tree product buckets are registered (under "v5/").
        let product =
            r#"{"version": 1, "artifacts_buckets": {"nightly": "therock-repo-amd-nightly-core"}}"#;
        assert_eq!(
            root(&with_registry(product, Nightly, false), "ROCm/TheRock"),
            "s3://therock-repo-amd-nightly-core/v5/123-linux/"
        );
    }

    /// Files TheRock rejects are rejected, naming the file.
    #[test]
    fn registry_file_errors() {
        for (json, says) in [
            ("[1]", "top level"),
            ("{not json", "invalid JSON"),
            (r#"{"buckets": []}"#, "version"),
            (r#"{"version": 2}"#, "version"),
            (r#"{"version": 1, "bucket": []}"#, "unknown top-level key"),
            (r#"{"version": 1, "buckets": {}}"#, "must be a list"),
            (
                r#"{"version": 1, "buckets": [{"name": ""}]}"#,
                "non-empty string 'name'",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x", "cdn_rule": []}]}"#,
                "unknown bucket",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x", "key_prefix": "/v3/"}]}"#,
                "leading slash",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x", "key_prefix": 3}]}"#,
                "must be a string",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x", "namespace_external_repos": "yes"}]}"#,
                "boolean",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x"}, {"name": "x"}]}"#,
                "more than once",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "therock-ci-artifacts"}]}"#,
                "\"override\": true",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x", "cdn_rules": [{"key_prefix": ""}]}]}"#,
                "missing \"url_prefix\"",
            ),
            (
                r#"{"version": 1, "buckets": [{"name": "x", "cdn_rules": [{"key_prefix": "", "url_prefix": "http://a/"}]}]}"#,
                "https://",
            ),
            (
                r#"{"version": 1, "artifacts_buckets": {"ci": "nowhere"}}"#,
                "unregistered bucket",
            ),
            (
                r#"{"version": 1, "artifacts_buckets": {"release": "therock-ci-artifacts"}}"#,
                "unknown artifacts_buckets key",
            ),
            (
                r#"{"version": 1, "artifacts_buckets": {"ci": 1}}"#,
                "bucket name string",
            ),
            (
                r#"{"version": 1, "release_buckets": {"ci": {}}}"#,
                "unknown release_buckets key",
            ),
            (
                r#"{"version": 1, "release_buckets": {"dev": {"wheels": "therock-dev-python"}}}"#,
                "unknown release_buckets",
            ),
            (
                r#"{"version": 1, "product_release_buckets": {"dev": {"core": "nope"}}}"#,
                "unregistered",
            ),
        ] {
            let err = registry(json).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.exit_code(), 2, "{json}: {text}");
            assert!(text.contains("test.json"), "{json}: {text}");
            assert!(text.contains(says), "{json}: {text}");
        }
    }

    /// `--bucket-config-file` wins over `$THEROCK_S3_BUCKETS_FILE`; a file
    /// that is named but missing is an error.
    #[test]
    fn registry_file_from_flag_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bucket: &str| {
            let p = dir.path().join(name);
            let json = format!(
                r#"{{"version": 1, "buckets": [{{"name": "{bucket}"}}], "artifacts_buckets": {{"ci": "{bucket}"}}}}"#
            );
            std::fs::write(&p, json).unwrap();
            p
        };
        let (a, b) = (write("a.json", "from-env"), write("b.json", "from-flag"));
        let e = CiEnv {
            buckets_file: Some(a),
            ..env()
        };
        let bucket = |flag: Option<&Path>| {
            let b = Buckets::resolve(None, flag, &e).unwrap();
            root(&b, "ROCm/TheRock")
        };
        assert_eq!(bucket(None), "s3://from-env/123-linux/");
        assert_eq!(bucket(Some(&b)), "s3://from-flag/123-linux/");
        let missing = dir.path().join("missing.json");
        assert!(Buckets::resolve(None, Some(&missing), &e).is_err());
        assert_eq!(
            root(
                &Buckets::resolve(None, None, &env()).unwrap(),
                "ROCm/TheRock"
            ),
            "s3://therock-ci-artifacts/123-linux/"
        );
    }
}
