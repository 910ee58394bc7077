//! `rockpack abort-uploads`: a run killed with SIGKILL (or a runner that
//! vanished) cannot abort its multipart uploads, and S3 keeps their parts,
//! and bills them, until someone does. This lists the incomplete uploads
//! under a prefix and aborts them (those older than a given age, so that a
//! run still going is left alone).

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTimeFormat;
use futures_util::{StreamExt, TryStreamExt};

use crate::error::{Error, Kind, Result};
use crate::net::aws::{abort_upload, s3_error};
use crate::net::S3Prefix;

/// Aborts at once.
const ABORTS_AT_ONCE: usize = 8;

/// An incomplete multipart upload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PendingUpload {
    /// The key it would complete to.
    pub key: String,
    /// Its id.
    pub upload_id: String,
    /// When it started, in seconds since the Unix epoch, if the server says.
    pub initiated: Option<i64>,
    /// The same, as RFC 3339 text (`2026-12-01T22:27:05Z`).
    pub started: Option<String>,
}

/// Lists the incomplete uploads below `prefix` started more than
/// `older_than` ago (all, when `None`), and aborts them unless `dry_run`.
/// Returns them; an upload that is gone by the time it is aborted (a run
/// completed or aborted it) counts as aborted.
pub async fn abort_uploads(
    client: &aws_sdk_s3::Client,
    prefix: &S3Prefix,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<Vec<PendingUpload>> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let cutoff = older_than.map(|d| now - d.as_secs() as i64);
    let uploads: Vec<PendingUpload> = list(client, prefix)
        .await?
        .into_iter()
        .filter(|u| match (cutoff, u.initiated) {
            (None, _) => true,
            (Some(c), Some(t)) => t <= c,
            // No start time: its age is unknown, so it is left alone.
            (Some(_), None) => false,
        })
        .collect();
    if dry_run {
        return Ok(uploads);
    }
    futures_util::stream::iter(uploads.iter())
        .map(|u| abort_upload(client, &prefix.bucket, &u.key, &u.upload_id))
        .buffer_unordered(ABORTS_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(uploads)
}

/// Every incomplete upload below `prefix`, page by page.
async fn list(client: &aws_sdk_s3::Client, prefix: &S3Prefix) -> Result<Vec<PendingUpload>> {
    let below = prefix.below();
    let mut found = Vec::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(&prefix.bucket)
            .prefix(&below)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await
            .map_err(|e| s3_error("ListMultipartUploads", &prefix.url(), &e))?;
        found.extend(page.uploads().iter().filter_map(|u| {
            Some(PendingUpload {
                key: u.key()?.to_string(),
                upload_id: u.upload_id()?.to_string(),
                initiated: u.initiated().map(|t| t.secs()),
                started: u
                    .initiated()
                    .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok()),
            })
        }));
        if page.is_truncated() != Some(true) {
            return Ok(found);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() && id_marker.is_none() {
            return Err(Error::failed(
                Kind::Remote,
                format!(
                    "ListMultipartUploads {}: a truncated page without a next marker",
                    prefix.url()
                ),
            ));
        }
    }
}
