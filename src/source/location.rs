//! Where a run lives: `--source` parsing, and TheRock's bucket layout for
//! `--run-id` (as its `_retrieve_bucket_info` resolves it).

use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    /// Bucket and key prefix (no leading or trailing slash; may be empty).
    S3 {
        bucket: String,
        prefix: String,
    },
    /// A URL whose path ends with '/'.
    Http(url::Url),
}

impl Location {
    pub fn parse(s: &str) -> Result<Location> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Usage(format!("{s:?}: no bucket name")));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let mut url = url::Url::parse(s).map_err(|e| Error::Usage(format!("{s:?}: {e}")))?;
            if !url.path().ends_with('/') {
                let p = format!("{}/", url.path());
                url.set_path(&p);
            }
            return Ok(Location::Http(url));
        }
        Ok(Location::Dir(PathBuf::from(s)))
    }

    /// `s3://bucket/prefix/`, `https://…/` or the directory.
    pub fn describe(&self) -> String {
        match self {
            Location::Dir(p) => p.display().to_string(),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/"),
            Location::Http(u) => u.to_string(),
        }
    }

    /// The location `sub` below this one (for `{prefix}/tarballs/`).
    pub fn join(&self, sub: &str) -> Location {
        match self {
            Location::Dir(p) => Location::Dir(p.join(sub)),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: [prefix.as_str(), sub]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/"),
            },
            Location::Http(u) => Location::Http(u.join(&format!("{sub}/")).expect("relative URL")),
        }
    }
}

/// Everything but RFC 3986 unreserved characters is escaped in a key
/// (Python's `urllib.parse.quote`, as TheRock quotes URLs: `+` is `%2B`).
const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes an object key for a URL path, keeping '/'.
pub fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, KEY_ESCAPES).to_string()
}

/// Decodes a percent-encoded URL path (invalid escapes are kept as is).
pub fn decode_key(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// `--release-type`: which family of TheRock buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReleaseType {
    Ci,
    Dev,
    Nightly,
    Prerelease,
}

/// A TheRock workflow run.
#[derive(Clone, Debug)]
pub struct RunRef {
    pub run_id: String,
    /// `owner/repo`; ROCm/TheRock when absent.
    pub github_repo: Option<String>,
    pub release_type: ReleaseType,
    pub platform: String,
}

impl RunRef {
    /// The run's artifact location: bucket `therock-ci-artifacts` for
    /// ROCm/TheRock, `therock-ci-artifacts-external` with an
    /// `{owner}-{repo}/` prefix for other repositories, and
    /// `therock-{type}-artifacts` for the other release types.
    pub fn location(&self) -> Result<Location> {
        if self.run_id.is_empty() || !self.run_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::Usage(format!(
                "--run-id {:?}: expected a number",
                self.run_id
            )));
        }
        let repo = self.github_repo.as_deref().unwrap_or("ROCm/TheRock");
        let (owner, name) = repo
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| {
                Error::Usage(format!("--run-github-repo {repo:?}: expected owner/repo"))
            })?;
        let external = !(owner == "ROCm" && name == "TheRock");
        let external_prefix = if external {
            format!("{owner}-{name}/")
        } else {
            String::new()
        };
        let bucket = match self.release_type {
            ReleaseType::Ci if external => "therock-ci-artifacts-external".to_string(),
            ReleaseType::Ci => "therock-ci-artifacts".to_string(),
            ReleaseType::Dev => "therock-dev-artifacts".to_string(),
            ReleaseType::Nightly => "therock-nightly-artifacts".to_string(),
            ReleaseType::Prerelease => "therock-prerelease-artifacts".to_string(),
        };
        Ok(Location::S3 {
            bucket,
            prefix: format!("{external_prefix}{}-{}", self.run_id, self.platform),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(repo: Option<&str>, t: ReleaseType) -> String {
        RunRef {
            run_id: "123".into(),
            github_repo: repo.map(String::from),
            release_type: t,
            platform: "linux".into(),
        }
        .location()
        .unwrap()
        .describe()
    }

    #[test]
    fn therock_buckets() {
        assert_eq!(
            run(None, ReleaseType::Ci),
            "s3://therock-ci-artifacts/123-linux/"
        );
        assert_eq!(
            run(Some("ROCm/TheRock"), ReleaseType::Ci),
            "s3://therock-ci-artifacts/123-linux/"
        );
        assert_eq!(
            run(Some("me/TheRock"), ReleaseType::Ci),
            "s3://therock-ci-artifacts-external/me-TheRock/123-linux/"
        );
        assert_eq!(
            run(None, ReleaseType::Nightly),
            "s3://therock-nightly-artifacts/123-linux/"
        );
    }

    #[test]
    fn parses_sources() {
        assert_eq!(
            Location::parse("s3://b/p/q/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            Location::parse("https://h/x").unwrap().describe(),
            "https://h/x/"
        );
        assert_eq!(
            Location::parse("dir/sub").unwrap(),
            Location::Dir("dir/sub".into())
        );
        assert_eq!(
            Location::parse("s3://b/p")
                .unwrap()
                .join("tarballs")
                .describe(),
            "s3://b/p/tarballs/"
        );
    }
}
