//! `rockpack abort-uploads`: a run killed with SIGKILL (or a runner that
//! vanished) cannot abort its multipart uploads nor delete its temporary
//! objects (`NAME.rockpack-tmp-N`, `NAME.rockpack-stage`), and S3 keeps
//! them, and bills them, until someone does. This lists both under a
//! prefix and removes them (those older than a given age, so that a run
//! still going is left alone). Nothing a reader sees is touched: a pack
//! gives its tarballs their final names only once the whole set is ready.
//! A killed run's journal (`rockpack-pack.{id}.rockpack-journal`: a pack
//! killed during its final burst; `rockpack-promote.{id}…`: a promote)
//! takes that run back: what it overwrote gets its old bytes back from
//! their backups, what it created goes. Backups no journal names
//! (`NAME.rockpack-backup-…`) are listed and kept.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTimeFormat;
use futures_util::{StreamExt, TryStreamExt};

use crate::error::{Error, Kind, Result};
use crate::net::aws::{abort_upload, s3_error};
use crate::net::journal::{Journal, JOURNAL_SUFFIX};
use crate::net::leftovers::{delete_all, temporaries, Temporary, BACKUP_MARKER};
use crate::net::object_copy::CopySettings;
use crate::net::{RetryPolicy, S3Prefix};

/// What a clean-up found below a prefix, and removed unless it was a dry run.
#[derive(Clone, Debug, Default)]
pub struct Cleanup {
    /// Incomplete uploads old enough to remove.
    pub uploads: Vec<PendingUpload>,
    /// Temporary objects old enough to remove.
    pub temporaries: Vec<Temporary>,
    /// Journals of killed runs, old enough to take them back.
    pub journals: Vec<Temporary>,
    /// Backups that no journal names, kept.
    pub backups: Vec<Temporary>,
    /// Uploads and temporaries younger than `--older-than`, left alone.
    pub too_young: usize,
}

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

/// At most this many passes of [`abort_uploads`].
const PASSES: usize = 4;

/// The pause before a pass looks again.
const SETTLE: Duration = Duration::from_secs(2);

/// Lists the incomplete uploads and the temporary objects below `prefix`
/// started (or written) more than `older_than` ago (all, when `None`), and
/// removes them unless `dry_run`. An upload that is gone by the time it is
/// aborted (a run completed or aborted it) counts as aborted.
///
/// A run killed a moment ago may still have requests under way at the
/// server, which finishes them all the same: a CompleteMultipartUpload
/// makes its object after it was looked for, a CreateMultipartUpload its
/// upload. So each pass aborts the uploads before it lists the objects
/// (an upload completed meanwhile is then an object the listing finds),
/// and a pass that removed something is followed, after a pause, by
/// another, until one finds nothing new (at most [`PASSES`]).
pub async fn abort_uploads(
    client: &aws_sdk_s3::Client,
    prefix: &S3Prefix,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<Cleanup> {
    let mut cleanup = pass(client, prefix, older_than, dry_run).await?;
    let mut passes = 1;
    let mut last_removed = cleanup.removes_any();
    while !dry_run && last_removed {
        if passes == PASSES {
            tracing::warn!(
                "{}: each of {PASSES} passes found more to remove; is a run below it still going?",
                prefix.url()
            );
            break;
        }
        tokio::time::sleep(SETTLE).await;
        let more = pass(client, prefix, older_than, dry_run).await?;
        passes += 1;
        last_removed = more.removes_any();
        cleanup.add(more);
    }
    Ok(cleanup)
}

impl Cleanup {
    /// Whether it has anything to remove or take back.
    fn removes_any(&self) -> bool {
        !(self.uploads.is_empty() && self.temporaries.is_empty() && self.journals.is_empty())
    }

    /// Adds what a later pass removed; what it left is the later pass's.
    fn add(&mut self, later: Cleanup) {
        self.uploads.extend(later.uploads);
        self.temporaries.extend(later.temporaries);
        self.journals.extend(later.journals);
        self.backups = later.backups;
        self.too_young = later.too_young;
    }
}

/// One pass of [`abort_uploads`]: the uploads first, then the objects.
async fn pass(
    client: &aws_sdk_s3::Client,
    prefix: &S3Prefix,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<Cleanup> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let cutoff = older_than.map(|d| now - d.as_secs() as i64);
    // No time given: its age is unknown, so it is left alone.
    let old_enough = |t: Option<i64>| match (cutoff, t) {
        (None, _) => true,
        (Some(c), Some(t)) => t <= c,
        (Some(_), None) => false,
    };
    let mut cleanup = Cleanup::default();
    for u in list(client, prefix).await? {
        if old_enough(u.initiated) {
            cleanup.uploads.push(u);
        } else {
            cleanup.too_young += 1;
        }
    }
    if !dry_run {
        futures_util::stream::iter(cleanup.uploads.iter())
            .map(|u| abort_upload(client, &prefix.bucket, &u.key, &u.upload_id))
            .buffer_unordered(ABORTS_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
    }
    let policy = RetryPolicy::default();
    let found = temporaries(client, &prefix.bucket, &prefix.below(), &policy).await?;
    let mut named: Vec<String> = Vec::new();
    let mut journals: Vec<Journal> = Vec::new();
    for t in &found {
        if !t.key.ends_with(JOURNAL_SUFFIX) {
            continue;
        }
        if old_enough(t.modified) {
            let journal = Journal::read(client, &prefix.bucket, &t.key, &policy).await?;
            named.extend(journal.replaced.iter().map(|(_, backup)| backup.clone()));
            journals.push(journal);
            cleanup.journals.push(t.clone());
        } else {
            cleanup.too_young += 1;
        }
    }
    for t in found {
        if t.key.ends_with(JOURNAL_SUFFIX) || named.contains(&t.key) {
            continue;
        }
        if t.key.contains(BACKUP_MARKER) {
            cleanup.backups.push(t);
        } else if old_enough(t.modified) {
            cleanup.temporaries.push(t);
        } else {
            cleanup.too_young += 1;
        }
    }
    if dry_run {
        return Ok(cleanup);
    }
    for (journal, t) in journals.iter().zip(&cleanup.journals) {
        journal
            .take_back(client, &prefix.bucket, &t.key, &CopySettings::default())
            .await?;
    }
    delete_all(client, &prefix.bucket, &cleanup.temporaries).await?;
    Ok(cleanup)
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
