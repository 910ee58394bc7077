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

use std::sync::Arc;
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};

use super::names::{Renames, TarballName, SIDECAR_SUFFIXES};
use crate::error::{Error, Kind, Result};
use crate::net::aws::s3_error;
use crate::net::journal::{Journal, Run, JOURNAL_SUFFIX};
use crate::net::leftovers::BACKUP_MARKER;
use crate::net::leftovers::{delete, temporaries};
use crate::net::object_copy::{copy, CopySettings};
use crate::net::object_info::{head, ObjectInfo};
use crate::net::undo::Undo;
use crate::net::{RetryPolicy, S3Prefix};
use crate::signals::{interrupted, Shutdown};
use crate::sink::{sidecar_text, RecordedTarball, SetRecord, StoredChecksum, RECORD_PREFIX};
use crate::source::fetch::Ranges;
use crate::source::s3::S3Source;
use crate::source::verify::{parse_sidecar, MAX_SIDECAR};
use crate::source::Source;
use crate::units::human_bytes;

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
async fn look(
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
fn well_formed(c: &StoredChecksum) -> bool {
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
async fn existing_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(got.body.collect().await.ok()?.into_bytes().to_vec())
}

/// Makes the copies (tarballs at once, each followed by its sidecar).
async fn apply(
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
fn record_of(tarballs: &[Promotion]) -> Option<SetRecord> {
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

impl PromoteSummary {
    /// One line per tarball, and a total.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let verb = |a: Action| match (self.dry_run, a) {
            (true, Action::Copy) => "would copy",
            (true, Action::Replace) => "would replace",
            (false, Action::Copy) => "copied",
            (false, Action::Replace) => "replaced",
            (_, Action::Present) => "already there",
        };
        for p in &self.tarballs {
            let how = match p.parts {
                None => "CopyObject".to_string(),
                Some(n) => format!("{n} part copies"),
            };
            let checked = p
                .checked
                .map(|c| format!(", checked: {c}"))
                .unwrap_or_default();
            let sidecar = match &p.sidecar {
                Some(s) if !s.present => format!(" + {}", s.name),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{}: {} -> {}{sidecar} ({}, {how}{checked})",
                verb(p.action),
                p.source.url(),
                p.location,
                human_bytes(p.source.size),
            );
        }
        let copied: u64 = self
            .tarballs
            .iter()
            .filter(|p| p.action != Action::Present)
            .map(|p| p.source.size)
            .sum();
        let _ = writeln!(
            s,
            "{} {} tarball(s), {} inside S3, from {} to {} in {:.1}s",
            if self.dry_run {
                "would promote"
            } else {
                "promoted"
            },
            self.tarballs.len(),
            human_bytes(copied),
            self.source,
            self.dest,
            self.seconds
        );
        s
    }

    /// `--summary FILE`: every tarball with its source, key, URL, size,
    /// checksum and how its copy was checked.
    pub fn json(&self, url: impl Fn(&str) -> Option<String>) -> serde_json::Value {
        let tarballs: Vec<serde_json::Value> = self
            .tarballs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "file_name": p.name.file_name,
                    "label": p.name.label,
                    "bundle": p.name.bundle,
                    "variant": p.name.variant,
                    "format": p.name.format.name(),
                    "source": p.source.url(),
                    "location": p.location,
                    "key": p.key,
                    "url": url(&p.location),
                    "bytes": p.source.size,
                    "checksum": p.source.checksum.as_ref().map(checksum_json),
                    "action": p.action,
                    "parts": p.parts,
                    "checked": p.checked,
                    "sidecar": p.sidecar.as_ref().map(|s| &s.name),
                })
            })
            .collect();
        serde_json::json!({
            "source": self.source,
            "dest": self.dest,
            "dry_run": self.dry_run,
            "seconds": self.seconds,
            "tarballs": tarballs,
        })
    }
}

fn checksum_json(c: &StoredChecksum) -> serde_json::Value {
    serde_json::to_value(c).expect("checksum serialises")
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
