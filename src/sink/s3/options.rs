//! The sink's options: checked against S3's limits once, before anything
//! is uploaded, and turned into the values every request carries.

use aws_sdk_s3::types::{ServerSideEncryption, StorageClass};

use super::part::{MAX_PART_SIZE, MIN_PART_SIZE};
use crate::error::{Error, Result};
use crate::net::keys::tagging_query;
use crate::net::RetryPolicy;

/// The S3 sink's options, as given on the command line; checked by
/// [`super::S3Sink::new`].
#[derive(Clone, Debug, Default)]
pub struct S3SinkOptions {
    /// Fixed part size; otherwise chosen from the tarball's size bound.
    pub part_size: Option<u64>,
    /// Bytes of parts uploading at once, over all tarballs (0: the
    /// default); a part larger than this uploads alone.
    pub upload_bytes: u64,
    /// S3 storage class (`STANDARD_IA`, `INTELLIGENT_TIERING`, ..., in any
    /// case); S3's default, `STANDARD`, otherwise.
    pub storage_class: Option<String>,
    /// `key=value` object tags.
    pub tags: Vec<(String, String)>,
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub sse: Option<String>,
    /// The KMS key for `aws:kms` encryption; S3's default key otherwise.
    pub sse_kms_key_id: Option<String>,
    /// Never copy ranges of published tarballs inside S3
    /// (`--no-server-copy`): send every byte of every tarball.
    pub no_server_copy: bool,
    /// Long copied runs are cut into parts of about this size (0: the
    /// default, [`super::COPY_PIECE`]).
    pub copy_part_size: u64,
    /// Bytes of short copied runs the tarballs may hold beside a part that
    /// waits for them, over all tarballs (0: none, waiting parts are sent
    /// at once; `None`: [`DEFAULT_HELD_RUNS`]).
    pub held_runs: Option<u64>,
    /// How hard every request tries (parts, copies, starts, completions,
    /// sidecars, the copy probe).
    pub retry: RetryPolicy,
}

/// Used when `upload_bytes` is 0: eight of the smallest parts.
pub const DEFAULT_UPLOAD_BYTES: u64 = 8 * MIN_PART_SIZE;

/// Used when `held_runs` is not given: four short runs of 5 MiB.
pub const DEFAULT_HELD_RUNS: u64 = 4 * MIN_PART_SIZE;

/// Options checked and turned into request values.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) part_size: Option<u64>,
    pub(super) storage_class: Option<StorageClass>,
    pub(super) tagging: Option<String>,
    pub(super) sse: Option<ServerSideEncryption>,
    pub(super) sse_kms_key_id: Option<String>,
    pub(super) upload_bytes: u64,
    pub(super) server_copy: bool,
    pub(super) copy_piece: u64,
    pub(super) held_runs: u64,
    pub(super) retry: RetryPolicy,
}

impl Settings {
    pub(super) fn new(opts: S3SinkOptions) -> Result<Settings> {
        if let Some(p) = opts.part_size {
            check_part_size(p)?;
        }
        let storage_class = opts
            .storage_class
            .map(|s| {
                let upper = s.trim().to_ascii_uppercase();
                StorageClass::try_parse(&upper).map_err(|_| {
                    Error::Usage(format!(
                        "--storage-class {s:?}: expected one of {}",
                        StorageClass::values().join(", ")
                    ))
                })
            })
            .transpose()?;
        let sse = opts
            .sse
            .map(|s| match s.trim().to_ascii_lowercase().as_str() {
                "aes256" => Ok(ServerSideEncryption::Aes256),
                "aws:kms" => Ok(ServerSideEncryption::AwsKms),
                "aws:kms:dsse" => Ok(ServerSideEncryption::AwsKmsDsse),
                _ => Err(Error::Usage(format!(
                    "--sse {s:?}: expected AES256, aws:kms or aws:kms:dsse"
                ))),
            })
            .transpose()?;
        let sse_kms_key_id = opts.sse_kms_key_id.filter(|k| !k.is_empty());
        if sse_kms_key_id.is_some()
            && !matches!(
                sse,
                Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
            )
        {
            return Err(Error::Usage(
                "--sse-kms-key-id needs --sse aws:kms (or aws:kms:dsse)".into(),
            ));
        }
        let tagging = tagging(&opts.tags)?;
        let upload_bytes = match opts.upload_bytes {
            0 => DEFAULT_UPLOAD_BYTES,
            n => n,
        };
        Ok(Settings {
            part_size: opts.part_size,
            storage_class,
            tagging,
            sse,
            sse_kms_key_id,
            upload_bytes,
            held_runs: opts.held_runs.unwrap_or(DEFAULT_HELD_RUNS),
            retry: opts.retry,
            server_copy: !opts.no_server_copy,
            copy_piece: match opts.copy_part_size {
                0 => super::COPY_PIECE,
                n => {
                    check_part_size(n).map_err(|_| {
                        Error::Usage(format!(
                            "--copy-part-size {n}: S3 parts are {MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB) bytes"
                        ))
                    })?;
                    n
                }
            },
        })
    }
}

/// `--part-size`: within S3's limits.
pub fn check_part_size(p: u64) -> Result<()> {
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p) {
        return Err(Error::Usage(format!(
            "--part-size {p}: S3 parts are {MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB) bytes"
        )));
    }
    Ok(())
}

/// Checks object tags against S3's limits and encodes them as the
/// `x-amz-tagging` query string (`k=v&k2=v2`, percent-encoded).
pub(crate) fn tagging(tags: &[(String, String)]) -> Result<Option<String>> {
    if tags.is_empty() {
        return Ok(None);
    }
    if tags.len() > 10 {
        return Err(Error::Usage(format!(
            "--tag: S3 allows at most 10 tags on an object, got {}",
            tags.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        let bad = |why: &str| Error::Usage(format!("--tag {k}={v}: {why}"));
        if k.is_empty() || k.chars().count() > 128 {
            return Err(bad("a tag key is 1 to 128 characters"));
        }
        if v.chars().count() > 256 {
            return Err(bad("a tag value is at most 256 characters"));
        }
        if k.starts_with("aws:") {
            return Err(bad("keys starting with aws: are reserved"));
        }
        if !seen.insert(k.as_str()) {
            return Err(bad("the key is given twice"));
        }
    }
    Ok(tagging_query(
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> S3SinkOptions {
        S3SinkOptions::default()
    }

    #[test]
    fn options_are_checked() {
        let usage = |o: S3SinkOptions| match Settings::new(o) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert!(usage(S3SinkOptions {
            part_size: Some(MIN_PART_SIZE - 1),
            ..opts()
        })
        .contains("--part-size"));
        assert!(usage(S3SinkOptions {
            part_size: Some(MAX_PART_SIZE + 1),
            ..opts()
        })
        .contains("--part-size"));
        assert!(usage(S3SinkOptions {
            storage_class: Some("COLD".into()),
            ..opts()
        })
        .contains("STANDARD_IA"));
        assert!(usage(S3SinkOptions {
            sse: Some("rot13".into()),
            ..opts()
        })
        .contains("AES256"));
        assert!(usage(S3SinkOptions {
            sse: Some("AES256".into()),
            sse_kms_key_id: Some("k".into()),
            ..opts()
        })
        .contains("aws:kms"));
        let s = Settings::new(S3SinkOptions {
            part_size: Some(MIN_PART_SIZE),
            storage_class: Some("standard_ia".into()),
            sse: Some("aws:kms".into()),
            sse_kms_key_id: Some("alias/k".into()),
            tags: vec![("team".into(), "rocm core".into())],
            ..opts()
        })
        .unwrap();
        assert_eq!(s.storage_class, Some(StorageClass::StandardIa));
        assert_eq!(s.sse, Some(ServerSideEncryption::AwsKms));
        assert_eq!(s.tagging.as_deref(), Some("team=rocm%20core"));
        assert_eq!(s.upload_bytes, DEFAULT_UPLOAD_BYTES);
        assert_eq!(
            Settings::new(S3SinkOptions {
                sse: Some("AES256".into()),
                ..opts()
            })
            .unwrap()
            .sse,
            Some(ServerSideEncryption::Aes256)
        );
    }

    #[test]
    fn tags_are_encoded_and_checked() {
        let t = |pairs: &[(&str, &str)]| {
            tagging(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(t(&[]).unwrap(), None);
        assert_eq!(
            t(&[("a", "1"), ("b&c", "x=y/z é")]).unwrap().as_deref(),
            Some("a=1&b%26c=x%3Dy%2Fz%20%C3%A9")
        );
        assert_eq!(t(&[("k", "")]).unwrap().as_deref(), Some("k="));
        assert!(matches!(t(&[("", "v")]), Err(Error::Usage(_))));
        assert!(matches!(t(&[("k", "1"), ("k", "2")]), Err(Error::Usage(_))));
        assert!(matches!(t(&[("aws:x", "1")]), Err(Error::Usage(_))));
        let many: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(matches!(tagging(&many), Err(Error::Usage(_))));
    }
}
