//! The plan of a promote: the tarballs at the source, their records and
//! sidecars, what the destination holds, and what happens to each.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use super::{Action, PromoteOptions, Promotion, SidecarCopy};
use crate::error::{Error, Kind, Result};
use crate::net::aws::s3_error;
use crate::net::object_info::{head, ObjectInfo};
use crate::net::{RetryPolicy, S3Prefix};
use crate::sink::{sidecar_text, StoredChecksum, RECORD_PREFIX};
use crate::source::fetch::Ranges;
use crate::source::s3::S3Source;
use crate::source::verify::{parse_sidecar, MAX_SIDECAR};
use crate::source::Source;
use crate::store::names::{TarballName, SIDECAR_SUFFIXES};

/// The names directly below `prefix`, sorted.
async fn list(client: &aws_sdk_s3::Client, prefix: &S3Prefix) -> Result<Vec<String>> {
    let below = prefix.below();
    let mut pages = client
        .list_objects_v2()
        .bucket(&prefix.bucket)
        .prefix(&below)
        .delimiter("/")
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| s3_error("ListObjectsV2", &prefix.url(), &e))?;
        names.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key()?.strip_prefix(below.as_str()))
                .map(str::to_string),
        );
    }
    names.sort();
    Ok(names)
}

/// Finds the tarballs to promote and decides what happens to each;
/// changes nothing.
pub(super) async fn look(
    client: &aws_sdk_s3::Client,
    from: &S3Prefix,
    to: &S3Prefix,
    opts: &PromoteOptions,
) -> Result<Vec<Promotion>> {
    let names = list(client, from).await?;
    let all: Vec<TarballName> = names.iter().filter_map(|n| TarballName::parse(n)).collect();
    if all.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no tarball (*.tar.gz, *.tar.zst) there to promote",
            from.url()
        )));
    }
    for o in &opts.only {
        if !all.iter().any(|t| t.named_by(o)) {
            let mut keys: Vec<String> = all.iter().map(TarballName::key).collect();
            keys.dedup();
            return Err(Error::Usage(format!(
                "--only {o:?} names no tarball at {}; there are: {}",
                from.url(),
                keys.join(", ")
            )));
        }
    }
    let picked: Vec<TarballName> = all
        .into_iter()
        .filter(|t| opts.only.is_empty() || opts.only.iter().any(|o| t.named_by(o)))
        .collect();
    let picked_names: Vec<&str> = picked.iter().map(|t| t.file_name.as_str()).collect();
    let unused = opts.renames.unused(&picked_names);
    if !unused.is_empty() {
        let what: Vec<String> = unused
            .iter()
            .map(|u| match u.starts_with("--") {
                true => format!("{u} (no version of the --src-version-type to promote)"),
                false => format!("--rename {u} (no '-'-separated part is {u})"),
            })
            .collect();
        return Err(Error::Usage(format!(
            "{}: changes no tarball name to promote; they are: {}",
            what.join(", "),
            picked_names.join(", ")
        )));
    }
    let mut new_names: Vec<String> = picked
        .iter()
        .map(|t| opts.renames.apply(&t.file_name))
        .collect();
    new_names.sort();
    if let Some(w) = new_names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Usage(format!(
            "--rename gives two tarballs one name: {}",
            w[0]
        )));
    }
    // Sidecars are read as sources read them: retried, and small.
    let reader = |p: &S3Prefix| {
        S3Source::new(
            client.clone(),
            p.clone(),
            RetryPolicy::default(),
            Ranges::default(),
        )
    };
    let readers = (reader(from)?, reader(to)?);
    let records = if opts.unrecorded {
        None
    } else {
        Some(read_records(&readers.0, from, &names).await?)
    };
    let looked: Vec<Promotion> = futures_util::stream::iter(picked)
        .map(|t| {
            look_one(
                client,
                from,
                to,
                opts,
                &names,
                &readers,
                records.as_deref(),
                t,
            )
        })
        .buffered(8)
        .try_collect()
        .await?;
    let conflicts: Vec<String> = looked
        .iter()
        .filter(|p| p.action == Action::Replace && !opts.replace)
        .map(|p| format!("{} (from {})", p.location, p.source.url()))
        .collect();
    if !conflicts.is_empty() {
        return Err(Error::failed(
            Kind::Conflict,
            format!(
                "the destination already holds other bytes under these names: {}; nothing was changed (--replace overwrites them, and restores them if the promote fails)",
                conflicts.join(", ")
            ),
        ));
    }
    Ok(looked)
}

/// A tarball as a set record names it (see [`crate::sink::SetRecord`]).
#[derive(Clone, Debug, serde::Deserialize)]
struct Recorded {
    name: String,
    bytes: u64,
    sha256: String,
    #[serde(default)]
    checksum: Option<RecordedChecksum>,
}

/// A recorded checksum.
#[derive(Clone, Debug, serde::Deserialize)]
struct RecordedChecksum {
    algorithm: String,
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// A set record as read back: its tarballs.
#[derive(Debug, serde::Deserialize)]
struct RecordFile {
    tarballs: Vec<Recorded>,
}

/// Every tarball the set records at `from` name (`listed`: the names
/// there).
async fn read_records(
    reader: &Arc<dyn Source>,
    from: &S3Prefix,
    listed: &[String],
) -> Result<Vec<Recorded>> {
    let mut all = Vec::new();
    for name in listed
        .iter()
        .filter(|n| n.starts_with(RECORD_PREFIX) && n.ends_with(".json"))
    {
        let url = from.object_url(&from.key(name));
        let text = reader.read_small(name, MAX_RECORD).await?.ok_or_else(|| {
            Error::failed(Kind::Remote, format!("{url}: gone since it was listed"))
        })?;
        let file: RecordFile = serde_json::from_slice(&text).map_err(|e| {
            Error::failed(
                Kind::Remote,
                format!("{url}: not a rockpack set record: {e}"),
            )
        })?;
        all.extend(file.tarballs);
    }
    Ok(all)
}

/// A set record is small: a line per tarball.
const MAX_RECORD: u64 = 1 << 20;

/// Checks `source` (tarball `name`, its sidecar's `digest`) against the
/// set records at its prefix: one must name it, with its size, digest and
/// checksum. Otherwise the set there is incomplete (a pack that failed or
/// is still publishing), a mix, or another tool's.
fn check_recorded(
    records: &[Recorded],
    name: &str,
    source: &ObjectInfo,
    digest: Option<&str>,
) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::failed(
            Kind::Conflict,
            format!(
                "{}: {why}; nothing was changed (--unrecorded promotes tarballs no rockpack set record vouches for)",
                source.url()
            ),
        ))
    };
    let Some(r) = records.iter().rev().find(|r| r.name == name) else {
        return refuse(format!(
            "no set record ({RECORD_PREFIX}*.json) names it: the set there is incomplete (a pack that failed, was killed or is still publishing) or was written by another tool"
        ));
    };
    if r.bytes != source.size {
        return refuse(format!(
            "its set record says {} bytes, the object has {}: the set there is a mix of two runs",
            r.bytes, source.size
        ));
    }
    if let Some(d) = digest.filter(|d| *d != r.sha256) {
        return refuse(format!(
            "its sidecar says SHA-256 {d}, its set record {}: the set there is a mix of two runs",
            r.sha256
        ));
    }
    // A checksum of the wrong length for its algorithm (moto reports
    // 4-byte CRC64NVME values for objects assembled from copied parts) is
    // not the store's word on the bytes: not compared.
    let theirs = source.full_checksum().filter(|t| well_formed(t));
    if let (Some(c), Some(t)) = (&r.checksum, theirs) {
        if c.kind == t.kind && c.algorithm == t.algorithm && c.value != t.value {
            return refuse(format!(
                "the store's {} is {}, its set record's {}: the set there is a mix of two runs",
                c.algorithm, t.value, c.value
            ));
        }
    }
    Ok(())
}

/// Whether a stored checksum's value has the length its algorithm gives.
pub(super) fn well_formed(c: &StoredChecksum) -> bool {
    use base64::Engine;
    let want = match c.algorithm {
        "CRC64NVME" => 8,
        "CRC32" | "CRC32C" => 4,
        "SHA1" => 20,
        "SHA256" => 32,
        _ => return false,
    };
    base64::engine::general_purpose::STANDARD
        .decode(&c.value)
        .is_ok_and(|b| b.len() == want)
}

/// One tarball: its source, its sidecar, and what the destination holds;
/// `sidecars` reads sidecars at the source and at the destination;
/// `records`, unless `--unrecorded`, what the source's set records say.
#[allow(clippy::too_many_arguments)]
async fn look_one(
    client: &aws_sdk_s3::Client,
    from: &S3Prefix,
    to: &S3Prefix,
    opts: &PromoteOptions,
    listed: &[String],
    sidecars: &(Arc<dyn Source>, Arc<dyn Source>),
    records: Option<&[Recorded]>,
    old: TarballName,
) -> Result<Promotion> {
    let new_name = opts.renames.apply(&old.file_name);
    let source_key = from.key(&old.file_name);
    let source = head(client, &from.bucket, &source_key, &opts.copy.retry)
        .await?
        .ok_or_else(|| {
            Error::failed(
                Kind::Remote,
                format!(
                    "s3://{}/{source_key}: gone since it was listed",
                    from.bucket
                ),
            )
        })?;
    let key = to.key(&new_name);
    if from.bucket == to.bucket && source_key == key {
        return Err(Error::Usage(format!(
            "{}: promoting it would copy it onto itself (the destination is the source and no --rename changes its name)",
            source.url()
        )));
    }
    let location = to.object_url(&key);
    // The source's sidecar, rewritten for the new name.
    let sidecar_name = SIDECAR_SUFFIXES
        .iter()
        .map(|s| format!("{}{s}", old.file_name))
        .find(|n| listed.contains(n));
    let (sidecar, source_digest) = match sidecar_name {
        None => (None, None),
        Some(old_sidecar) => {
            let url = from.object_url(&from.key(&old_sidecar));
            let text = sidecars.0.read_small(&old_sidecar, MAX_SIDECAR).await?;
            let text = text.ok_or_else(|| {
                Error::failed(Kind::Remote, format!("{url}: gone since it was listed"))
            })?;
            let digest = sidecar_digest(&text, &old.file_name)
                .map_err(|e| Error::failed(Kind::Remote, format!("{url}: {e}")))?;
            let name = opts.renames.apply(&old_sidecar);
            let there = sidecars.1.read_small(&name, MAX_SIDECAR).await?;
            let new_text = sidecar_text(&digest, &new_name);
            let copy = SidecarCopy {
                key: to.key(&name),
                name,
                exists: there.is_some(),
                present: there.as_deref() == Some(new_text.as_bytes()),
                text: new_text,
            };
            (Some(copy), Some(digest))
        }
    };
    if let Some(records) = records {
        check_recorded(records, &old.file_name, &source, source_digest.as_deref())?;
    }
    let sha256 = source_digest.clone().or_else(|| {
        records?
            .iter()
            .rev()
            .find(|r| r.name == old.file_name)
            .map(|r| r.sha256.clone())
    });
    let action = match head(client, &to.bucket, &key, &opts.copy.retry).await? {
        None => Action::Copy,
        Some(there) if same_bytes(&source, &there, source_digest.as_deref(), &sidecar) => {
            Action::Present
        }
        Some(_) => Action::Replace,
    };
    let name = TarballName {
        file_name: new_name,
        ..old
    };
    Ok(Promotion {
        parts: opts.copy.parts(source.size).map(|(_, n)| n),
        name,
        source,
        key,
        location,
        action,
        sidecar,
        checked: None,
        sha256,
    })
}

/// Whether `there` holds the bytes of `source`: the same size, and the
/// same full-object checksum, or (where the store keeps none) the same
/// digest in both sidecars.
fn same_bytes(
    source: &ObjectInfo,
    there: &ObjectInfo,
    digest: Option<&str>,
    sidecar: &Option<SidecarCopy>,
) -> bool {
    if source.size != there.size {
        return false;
    }
    match source.comparable_checksums(there) {
        Some((a, b)) => a.value == b.value,
        // The destination's sidecar says the same digest for the same name.
        None => digest.is_some() && sidecar.as_ref().is_some_and(|s| s.present),
    }
}

/// The hex SHA-256 a sidecar gives for `file_name` (`<hex>  <name>` or
/// `<hex> *<name>`, or the digest alone): the digest as sources read it,
/// and the name beside it, if any, must be the tarball's.
fn sidecar_digest(text: &[u8], file_name: &str) -> std::result::Result<String, String> {
    let digest = parse_sidecar(text)?;
    let line = std::str::from_utf8(text)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    let named = line
        .split_once(char::is_whitespace)
        .map_or("", |(_, rest)| rest.trim().trim_start_matches('*'));
    if !named.is_empty() && named != file_name {
        return Err(format!(
            "the sidecar names {named:?}, not the tarball beside it ({file_name:?})"
        ));
    }
    Ok(hex::encode(digest))
}

/// The bytes of the small object `bucket/key`, if they can be read.
pub(super) async fn existing_bytes(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Option<Vec<u8>> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(got.body.collect().await.ok()?.into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_give_their_digest_for_their_tarball() {
        let hex = "ab".repeat(32);
        assert_eq!(
            sidecar_digest(format!("{hex}  x.tar.gz\n").as_bytes(), "x.tar.gz"),
            Ok(hex.clone())
        );
        assert_eq!(
            sidecar_digest(format!("{hex} *x.tar.gz").as_bytes(), "x.tar.gz"),
            Ok(hex.clone())
        );
        assert_eq!(
            sidecar_digest(format!("{hex}\n").as_bytes(), "x.tar.gz"),
            Ok(hex.clone())
        );
        assert_eq!(
            sidecar_digest(
                format!("{}  x.tar.gz", hex.to_uppercase()).as_bytes(),
                "x.tar.gz"
            ),
            Ok(hex.clone())
        );
        assert!(
            sidecar_digest(format!("{hex}  y.tar.gz").as_bytes(), "x.tar.gz")
                .unwrap_err()
                .contains("\"y.tar.gz\"")
        );
        assert!(sidecar_digest(b"abc  x.tar.gz", "x.tar.gz").is_err());
        assert!(sidecar_digest(b"", "x.tar.gz").is_err());
    }
}
