//! TheRock's bucket inventory and its registry file: which buckets exist,
//! which one each release type selects, and how a downstream
//! `THEROCK_S3_BUCKETS_FILE` (or `--bucket-config-file`) extends and
//! overrides them (`s3_buckets.py`'s registry, with its schema, merge rules
//! and errors).

use std::collections::BTreeMap;
use std::path::Path;

use super::{truthy, CiEnv, ReleaseType, THEROCK_REPO};
use crate::error::{Error, Result};

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
            BucketConfig::plain("therock-bkc-artifacts"),
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
