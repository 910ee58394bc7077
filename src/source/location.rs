//! Where a run lives: `--source` parsing. Where `--run-id` and `--upload`
//! point is `buckets`' job; how keys are quoted in URLs is `net::keys`'.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::net::S3Prefix;

/// A run's artifacts, or a destination for tarballs: a directory, an S3
/// prefix or an HTTP(S) prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Dir(PathBuf),
    /// A bucket and a key prefix.
    S3(S3Prefix),
    /// A URL whose path ends with '/'.
    Http(url::Url),
}

impl Location {
    /// `s3://bucket/prefix`, `http(s)://…` (a trailing `/` is added), or
    /// else a directory path.
    pub fn parse(s: &str) -> Result<Location> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Usage(format!("{s:?}: no bucket name")));
            }
            return Ok(Location::S3(S3Prefix::new(bucket, prefix)));
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
            Location::S3(p) => p.url(),
            Location::Http(u) => u.to_string(),
        }
    }

    /// The location `sub` below this one (for `{prefix}/tarballs/`).
    pub fn join(&self, sub: &str) -> Location {
        match self {
            Location::Dir(p) => Location::Dir(p.join(sub)),
            Location::S3(p) => Location::S3(p.join(sub)),
            Location::Http(u) => Location::Http(u.join(&format!("{sub}/")).expect("relative URL")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            Location::parse("s3://b/p/q/").unwrap(),
            Location::S3(S3Prefix::new("b", "p/q"))
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
