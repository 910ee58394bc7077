//! Bucket and prefix resolution against TheRock's rules, as tables.

use std::path::{Path, PathBuf};

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
        (DevBkc, "therock-bkc-artifacts"),
        (Nightly, "therock-nightly-artifacts"),
        (NightlyBkc, "therock-bkc-artifacts"),
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
            "s3://therock-bkc-artifacts/123-linux/",
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
