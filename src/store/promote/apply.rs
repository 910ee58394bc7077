//! A promote's changes: each tarball copied (a replaced one backed up
//! first, for the undo), its sidecar, then the set record.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use super::look::{existing_bytes, well_formed};
use super::{Action, PromoteOptions, Promotion, TARBALLS_AT_ONCE};
use crate::error::{Error, Kind, Result};
use crate::net::aws::s3_error;
use crate::net::journal::Journal;
use crate::net::object_copy::copy;
use crate::net::object_info::head;
use crate::net::undo::Undo;
use crate::net::S3Prefix;
use crate::sink::{RecordedTarball, SetRecord};
use crate::units::human_bytes;

/// Makes the copies (tarballs at once, each followed by its sidecar).
pub(super) async fn apply(
    client: &aws_sdk_s3::Client,
    tarballs: &mut [Promotion],
    to: &S3Prefix,
    opts: &PromoteOptions,
    undo: &Arc<Undo>,
    id: &str,
) -> Result<()> {
    let bucket = to.bucket.as_str();
    let checked: Vec<Option<&'static str>> = futures_util::stream::iter(tarballs.iter())
        .map(|p| apply_one(client, p, bucket, opts, undo, id))
        .buffered(TARBALLS_AT_ONCE)
        .try_collect()
        .await?;
    for (p, c) in tarballs.iter_mut().zip(checked) {
        p.checked = c;
    }
    put_record(client, tarballs, to, undo).await
}

/// The record of the promoted set; none when a tarball's digest is unknown.
pub(super) fn record_of(tarballs: &[Promotion]) -> Option<SetRecord> {
    let mut recorded = Vec::with_capacity(tarballs.len());
    for p in tarballs {
        recorded.push(RecordedTarball {
            name: p.name.file_name.clone(),
            bytes: p.source.size,
            sha256: p.sha256.clone()?,
            sidecar: p.sidecar.as_ref().map(|s| s.name.clone()),
            checksum: p.source.full_checksum().filter(|c| well_formed(c)).cloned(),
        });
    }
    Some(SetRecord::of(recorded))
}

/// Last, the record of the promoted set at the destination, so that it can
/// be promoted again with the same check (none when a tarball's digest is
/// unknown: no sidecar and no record at the source).
async fn put_record(
    client: &aws_sdk_s3::Client,
    tarballs: &[Promotion],
    to: &S3Prefix,
    undo: &Arc<Undo>,
) -> Result<()> {
    let Some(record) = record_of(tarballs) else {
        tracing::info!(
            "{}: no set record written (a tarball's SHA-256 is not known: no sidecar, no record at the source)",
            to.url()
        );
        return Ok(());
    };
    let key = to.key(&record.file_name());
    let body = serde_json::to_vec_pretty(&record)
        .map_err(|e| Error::internal(format!("the set record: {e}")))?;
    if head(client, &to.bucket, &key, &undo.settings().retry)
        .await?
        .is_none()
    {
        undo.made(&key);
    } else if existing_bytes(client, &to.bucket, &key).await.as_deref() == Some(&body[..]) {
        return Ok(());
    }
    let put = client
        .put_object()
        .bucket(&to.bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into())
        .send();
    undo.request(put)
        .await
        .map_err(|e| s3_error("PutObject", &to.object_url(&key), &e))?;
    Ok(())
}

async fn apply_one(
    client: &aws_sdk_s3::Client,
    p: &Promotion,
    bucket: &str,
    opts: &PromoteOptions,
    undo: &Arc<Undo>,
    id: &str,
) -> Result<Option<&'static str>> {
    let checked = match p.action {
        Action::Present => None,
        Action::Copy | Action::Replace => {
            if p.action == Action::Replace {
                back_up(client, bucket, &p.key, opts, undo, id).await?;
            }
            let (c, _) = copy(client, &p.source, bucket, &p.key, &opts.copy, undo).await?;
            tracing::info!(
                "copied {} to {} ({}, checked: {})",
                p.source.url(),
                p.location,
                human_bytes(p.source.size),
                c.name()
            );
            Some(c.name())
        }
    };
    if let Some(s) = p.sidecar.as_ref().filter(|s| !s.present) {
        if s.exists {
            back_up(client, bucket, &s.key, opts, undo, id).await?;
        }
        undo.made(&s.key);
        let put = client
            .put_object()
            .bucket(bucket)
            .key(&s.key)
            .content_type("text/plain; charset=utf-8")
            .body(s.text.clone().into_bytes().into())
            .send();
        undo.request(put)
            .await
            .map_err(|e| s3_error("PutObject", &format!("s3://{bucket}/{}", s.key), &e))?;
    }
    Ok(checked)
}

/// Copies what `key` holds aside, so that a failed promote can restore it.
async fn back_up(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    opts: &PromoteOptions,
    undo: &Arc<Undo>,
    id: &str,
) -> Result<()> {
    let there = head(client, bucket, key, &opts.copy.retry)
        .await?
        .ok_or_else(|| {
            Error::failed(
                Kind::Remote,
                format!("s3://{bucket}/{key}: gone since the promote looked at it"),
            )
        })?;
    let (_, backup) = copy(
        client,
        &there,
        bucket,
        &Journal::backup_key(key, id),
        &opts.copy,
        undo,
    )
    .await?;
    undo.replacing(key, backup);
    Ok(())
}
