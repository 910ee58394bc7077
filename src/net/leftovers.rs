//! What a run leaves in S3 before its set is published, found again: its
//! multipart uploads, and its objects named `NAME.rockpack-…` (temporary
//! objects `NAME.rockpack-tmp-N`, staging objects `NAME.rockpack-stage`,
//! backups `NAME.rockpack-backup-…` of what a run replaces). A run that is killed
//! cannot remove them; the next run of the same pack sweeps those of its
//! own tarballs ([`sweep`]), and `rockpack abort-uploads` those of a whole
//! prefix (listing them with [`temporaries`] and the uploads).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use aws_sdk_s3::error::ProvideErrorMetadata;
use futures_util::{StreamExt, TryStreamExt};

use crate::error::Result;
use crate::net::aws::{abort_upload, delete_object, request_error, status};
use crate::net::{with_retries, RetryPolicy, S3Prefix};

/// What every name of a run's temporary objects holds.
pub const MARKER: &str = ".rockpack-";

/// What backups are named: `NAME.rockpack-backup-{id}` holds what `NAME`
/// held before the run with journal `id` replaced it. Kept until that
/// journal is taken back or deleted: never swept as a mere temporary.
pub const BACKUP_MARKER: &str = ".rockpack-backup-";

/// Deletes at once.
const AT_ONCE: usize = 8;

/// An object a run made for itself only.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Temporary {
    /// Its key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// When it was last written, in seconds since the Unix epoch.
    pub modified: Option<i64>,
}

/// Whether `key` names a run's temporary object.
pub fn is_temporary(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.contains(MARKER))
}

/// Every temporary object whose key starts with `list_prefix` (each page
/// asked for with `policy`'s retries).
pub async fn temporaries(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    list_prefix: &str,
    policy: &RetryPolicy,
) -> Result<Vec<Temporary>> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let what = format!("ListObjectsV2 s3://{bucket}/{list_prefix}");
        let page = with_retries(policy, &what, || async {
            client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(list_prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| request_error(&e))
        })
        .await
        .map_err(|e| e.into_error(&what))?;
        found.extend(page.contents().iter().filter_map(|o| {
            let key = o.key()?;
            is_temporary(key).then(|| Temporary {
                key: key.to_string(),
                bytes: o.size().unwrap_or(0).max(0) as u64,
                modified: o.last_modified().map(|t| t.secs()),
            })
        }));
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(found),
        }
    }
}

/// Deletes `keys` below `at`, logging what could not be deleted.
pub async fn delete(client: &aws_sdk_s3::Client, at: &S3Prefix, keys: &[String]) {
    futures_util::stream::iter(keys)
        .for_each_concurrent(AT_ONCE, |key| async move {
            match delete_object(client, &at.bucket, key).await {
                Ok(()) => tracing::debug!(%key, "deleted"),
                Err(e) => tracing::warn!(
                    "{e}; the next run of the same pack, or `rockpack abort-uploads {}`, removes it",
                    at.url()
                ),
            }
        })
        .await;
}

/// Before a run uploads the tarball at `final_key`: removes what an
/// earlier run of it that was killed left — its uploads of that key and
/// of its temporaries, and its temporary objects but backups (those go
/// with their journal) — all from before
/// `since` (the run's start). Housekeeping, never the run's failure: a
/// server that cannot list uploads is not asked again, and any other
/// error (a role that may not list) stops the sweeping, with one warning.
pub async fn sweep(
    client: &aws_sdk_s3::Client,
    at: &S3Prefix,
    final_key: &str,
    since: SystemTime,
    policy: &RetryPolicy,
    state: &Sweeping,
) {
    if !state.on.load(Ordering::Relaxed) {
        return;
    }
    let since = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let swept = async {
        if state.lists_uploads.load(Ordering::Relaxed) {
            sweep_uploads(client, at, final_key, since, policy, &state.lists_uploads).await?;
        }
        sweep_temporaries(client, at, final_key, since, policy).await
    };
    if let Err(e) = swept.await {
        if state.on.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "{e}; what earlier runs left is not swept (`rockpack abort-uploads {}` removes it)",
                at.url()
            );
        }
    }
}

/// Whether [`sweep`] still runs, and still lists uploads.
#[derive(Debug)]
pub struct Sweeping {
    on: AtomicBool,
    lists_uploads: AtomicBool,
}

impl Default for Sweeping {
    fn default() -> Self {
        Sweeping {
            on: AtomicBool::new(true),
            lists_uploads: AtomicBool::new(true),
        }
    }
}

/// [`sweep`]'s temporary objects of `final_key` from before `since`.
async fn sweep_temporaries(
    client: &aws_sdk_s3::Client,
    at: &S3Prefix,
    final_key: &str,
    since: i64,
    policy: &RetryPolicy,
) -> Result<()> {
    let ours = format!("{final_key}{MARKER}");
    let stale: Vec<String> = temporaries(client, &at.bucket, &ours, policy)
        .await?
        .into_iter()
        .filter(|t| t.modified.is_some_and(|m| m < since))
        .filter(|t| !t.key.contains(BACKUP_MARKER))
        .map(|t| t.key)
        .collect();
    if !stale.is_empty() {
        tracing::info!(
            "deleting {} temporary object(s) an earlier run of {} left",
            stale.len(),
            at.object_url(final_key)
        );
        delete(client, at, &stale).await;
    }
    Ok(())
}

/// [`sweep`]'s uploads: those of `final_key` and its temporaries started
/// before `since` (Unix seconds).
async fn sweep_uploads(
    client: &aws_sdk_s3::Client,
    at: &S3Prefix,
    final_key: &str,
    since: i64,
    policy: &RetryPolicy,
    lists_uploads: &AtomicBool,
) -> Result<()> {
    let ours = format!("{final_key}{MARKER}");
    let what = format!("ListMultipartUploads {}", at.object_url(final_key));
    let listed = with_retries(policy, &what, || async {
        let got = client
            .list_multipart_uploads()
            .bucket(&at.bucket)
            .prefix(final_key)
            .send()
            .await;
        match got {
            Ok(page) => Ok(Some(page)),
            // A server that cannot list uploads: nothing to sweep here.
            Err(e) if e.code() == Some("NotImplemented") || status(&e) == Some(501) => Ok(None),
            Err(e) => Err(request_error(&e)),
        }
    })
    .await;
    let page = match listed.map_err(|e| e.into_error(&what))? {
        Some(page) => page,
        None => {
            if lists_uploads.swap(false, Ordering::Relaxed) {
                tracing::warn!(
                    "{what}: the server does not list multipart uploads; uploads an earlier run left are not looked for"
                );
            }
            return Ok(());
        }
    };
    let stale: Vec<(String, String)> = page
        .uploads()
        .iter()
        .filter(|u| {
            u.key()
                .is_some_and(|k| k == final_key || k.starts_with(&ours))
        })
        .filter(|u| u.initiated().is_some_and(|t| t.secs() < since))
        .filter_map(|u| Some((u.key()?.to_string(), u.upload_id()?.to_string())))
        .collect();
    for (key, id) in stale {
        tracing::info!(%key, upload = %id, "aborting an upload an earlier run left");
        abort_upload(client, &at.bucket, &key, &id).await?;
    }
    Ok(())
}

/// Deletes the temporary objects `found`; fails if one cannot be deleted.
pub async fn delete_all(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    found: &[Temporary],
) -> Result<()> {
    futures_util::stream::iter(found)
        .map(|t| delete_object(client, bucket, &t.key))
        .buffer_unordered(AT_ONCE)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}
