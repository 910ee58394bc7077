//! `rockpack promote`: copies a run's tarballs and their sidecars from one
//! S3 prefix to another entirely inside S3 (no byte is downloaded or sent),
//! optionally renaming their version, as TheRock's release steps do by
//! copying (`publish_rocm_to_release_buckets.py`) or by downloading,
//! renaming and uploading again (`promote_packages.py`).
//!
//! All or nothing: everything is looked at first (each source's size,
//! ETag and checksum; each sidecar; what the destination already holds),
//! and a conflict stops the promote before anything is changed. Then the
//! copies run; a failure or a signal takes every change back ([`Undo`]):
//! the destination is left as it was. A tarball already at the destination
//! with the same bytes is left alone, so a promote can be run again.
//!
//! `look` is the plan (what each tarball is and what happens to it),
//! `apply` carries it out, `summary` reports it; this file runs them in
//! that order under a journal.

mod apply;
mod look;
mod summary;

use std::time::Instant;

use super::names::{Renames, TarballName};
use crate::error::{Error, Result};
use crate::net::journal::{Journal, Run, JOURNAL_SUFFIX};
use crate::net::leftovers::BACKUP_MARKER;
use crate::net::leftovers::{delete, temporaries};
use crate::net::object_copy::CopySettings;
use crate::net::object_info::{head, ObjectInfo};
use crate::net::undo::Undo;
use crate::net::{RetryPolicy, S3Prefix};
use crate::signals::{interrupted, Shutdown};
use apply::{apply, record_of};
use look::look;

/// Tarballs copied at once.
const TARBALLS_AT_ONCE: usize = 4;

/// What `promote` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct PromoteOptions {
    /// `--rename OLD=NEW` pairs applied to every name.
    pub renames: Renames,
    /// `--only`: labels, keys or names; empty for every tarball.
    pub only: Vec<String>,
    /// Overwrite a destination tarball that holds other bytes (it is
    /// restored if the promote fails).
    pub replace: bool,
    /// Look, decide and report; change nothing.
    pub dry_run: bool,
    /// Promote tarballs that no set record at the source names (written by
    /// another tool); without it such a tarball, or one unlike its record,
    /// stops the promote before any change.
    pub unrecorded: bool,
    /// When to copy in parts, and how large.
    pub copy: CopySettings,
}

/// What happens to one tarball.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Copied to a key where nothing was.
    Copy,
    /// Copied over other bytes (`--replace`).
    Replace,
    /// Already there, byte for byte: left alone.
    Present,
}

/// One tarball's promotion.
#[derive(Clone, Debug)]
pub struct Promotion {
    /// Its new name, with the label and variant that name carries.
    pub name: TarballName,
    /// The source object.
    pub source: ObjectInfo,
    /// Its destination key.
    pub key: String,
    /// `s3://bucket/key`.
    pub location: String,
    /// What happens to it.
    pub action: Action,
    /// Parts of a multipart copy (`None`: one CopyObject).
    pub parts: Option<u64>,
    /// Its sidecar at the destination, if the source has one.
    pub sidecar: Option<SidecarCopy>,
    /// How the copy was checked: `CRC64NVME` (or the source's other
    /// full-object algorithm), or `size`; `None` until it is copied.
    pub checked: Option<&'static str>,
    /// Its SHA-256 (hex), from its sidecar or its set record.
    pub sha256: Option<String>,
}

/// A sidecar rewritten for its tarball's new name.
#[derive(Clone, Debug)]
pub struct SidecarCopy {
    /// Its new name.
    pub name: String,
    key: String,
    text: String,
    /// Whether the destination holds something at its key now.
    exists: bool,
    /// Whether the destination's sidecar already says the same.
    pub present: bool,
}

/// What a promote did (or, with `dry_run`, would do).
#[derive(Clone, Debug)]
pub struct PromoteSummary {
    /// `s3://…/` of the source prefix.
    pub source: String,
    /// `s3://…/` of the destination prefix.
    pub dest: String,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Every tarball, in name order.
    pub tarballs: Vec<Promotion>,
    /// Wall time.
    pub seconds: f64,
}

/// Promotes the tarballs at `from` to `to` (see the module's docs).
pub async fn promote(
    client: &aws_sdk_s3::Client,
    from: &S3Prefix,
    to: &S3Prefix,
    opts: &PromoteOptions,
) -> Result<PromoteSummary> {
    let started = Instant::now();
    opts.copy.check()?;
    // What a killed promote left at the destination is taken back first,
    // before anything there is looked at.
    if !opts.dry_run {
        roll_back_killed(client, to, &opts.copy).await?;
    }
    let mut tarballs = look(client, from, to, opts).await?;
    if !opts.dry_run {
        // Listened for from before the first change.
        let mut shutdown = Shutdown::install();
        let id = format!("{:016x}", fastrand::u64(..));
        let journal = journal_of(client, &tarballs, to, &id, &opts.copy.retry).await?;
        let journal_key = Journal::key(to, Run::Promote, &id);
        if !journal.is_empty() {
            journal
                .put(client, &to.bucket, &journal_key, &opts.copy.retry)
                .await?;
        }
        let undo = Undo::new(client.clone(), &to.bucket, opts.copy.clone());
        let run = apply(client, &mut tarballs, to, opts, &undo, &id);
        let result = tokio::select! {
            r = run => r,
            signal = shutdown.recv() => Err(interrupted(signal)),
        };
        match result {
            Ok(()) => {
                // The journal first: past this, nothing is taken back.
                if !journal.is_empty() {
                    forget_journal(client, &to.bucket, &journal_key).await;
                }
                undo.commit().await;
                sweep_backups(client, to, &tarballs).await;
            }
            Err(e) => {
                let left = undo.rollback().await;
                if left.is_empty() {
                    if !journal.is_empty() {
                        forget_journal(client, &to.bucket, &journal_key).await;
                    }
                    return Err(e);
                }
                return Err(Error::failed(
                    e.kind(),
                    format!(
                        "{e}; taking the promote back failed too: {}; `rockpack abort-uploads {}` tries again from its journal",
                        left.join("; "),
                        to.url()
                    ),
                ));
            }
        }
    }
    Ok(PromoteSummary {
        source: from.url(),
        dest: to.url(),
        dry_run: opts.dry_run,
        tarballs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What this promote may change at `to`, for its journal: the keys it
/// creates, and those it overwrites with where their old bytes go first.
async fn journal_of(
    client: &aws_sdk_s3::Client,
    tarballs: &[Promotion],
    to: &S3Prefix,
    id: &str,
    policy: &RetryPolicy,
) -> Result<Journal> {
    let mut j = Journal::default();
    for p in tarballs {
        match p.action {
            Action::Present => {}
            Action::Copy => j.made.push(p.key.clone()),
            Action::Replace => j
                .replaced
                .push((p.key.clone(), Journal::backup_key(&p.key, id))),
        }
        match &p.sidecar {
            Some(s) if !s.present && s.exists => j
                .replaced
                .push((s.key.clone(), Journal::backup_key(&s.key, id))),
            Some(s) if !s.present => j.made.push(s.key.clone()),
            _ => {}
        }
    }
    if let Some(record) = record_of(tarballs) {
        let key = to.key(&record.file_name());
        if head(client, &to.bucket, &key, policy).await?.is_none() {
            j.made.push(key);
        }
    }
    Ok(j)
}

/// Deletes a promote's journal once it has ended (a journal left behind
/// would have a later clean-up take a finished promote back: logged).
async fn forget_journal(client: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    if let Err(e) = crate::net::aws::delete_object(client, bucket, key).await {
        tracing::error!(
            "{e}; delete it by hand: `rockpack abort-uploads` would take the promote back"
        );
    }
}

/// Takes back every promote to `to` that was killed (its journal is still
/// there), before another promote changes anything. (A pack's journal is
/// left to that pack's next run, or `abort-uploads`: it may be running.)
pub async fn roll_back_killed(
    client: &aws_sdk_s3::Client,
    to: &S3Prefix,
    settings: &CopySettings,
) -> Result<usize> {
    let promotes = to.key(Run::Promote.prefix());
    let journals: Vec<String> = temporaries(client, &to.bucket, &promotes, &settings.retry)
        .await?
        .into_iter()
        .map(|t| t.key)
        .filter(|k| k.ends_with(JOURNAL_SUFFIX))
        .collect();
    for key in &journals {
        tracing::warn!(
            "s3://{}/{key}: a promote was killed here; taking it back",
            to.bucket
        );
        Journal::read(client, &to.bucket, key, &settings.retry)
            .await?
            .take_back(client, &to.bucket, key, settings)
            .await?;
    }
    Ok(journals.len())
}

/// After a promote that succeeded: backups an earlier promote of the same
/// tarballs left (it was killed before it could take them back or delete
/// them) hold bytes this promote has now replaced for good.
async fn sweep_backups(client: &aws_sdk_s3::Client, to: &S3Prefix, tarballs: &[Promotion]) {
    for p in tarballs {
        let backups = format!("{}{BACKUP_MARKER}", p.key);
        match temporaries(client, &to.bucket, &backups, &RetryPolicy::default()).await {
            Ok(found) if !found.is_empty() => {
                let keys: Vec<String> = found.into_iter().map(|t| t.key).collect();
                tracing::info!(
                    "deleting {} backup(s) an earlier promote left of {}",
                    keys.len(),
                    p.location
                );
                delete(client, to, &keys).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}; backups an earlier promote left are not looked for"),
        }
    }
}
