//! An S3 prefix: each tarball is one multipart upload at `{prefix}/{name}`.
//!
//! Each byte is sent once: a chunk an earlier-published tarball of the run
//! holds (its [`crate::sink::Origin`]) is not sent again but copied by the
//! server from that tarball once it is published (UploadPartCopy of a byte
//! range); [`assembly`] cuts each tarball into parts to send and parts to
//! copy within S3's part rules. A server that does not copy (asked once,
//! before the first upload; or `--no-server-copy`) gets every byte sent.
//!
//! Parts to send are lists of the same `Bytes` the pipeline hands every
//! tarball (a chunk that straddles a part boundary is split with a
//! zero-copy slice). They upload in the background, retried with backoff;
//! how many are in flight is bounded per tarball and over the whole sink,
//! so `write` waits only when that limit is reached and memory stays
//! bounded. Objects carry a full-object CRC64NVME checksum (composite
//! CRC32C where the server refuses it): combined from the CRCs each block
//! got on its compression thread, checked against what the server reports.
//!
//! `finish` uploads the last part and waits for all of them; `prepare`
//! waits for the tarballs it copies from and copies its ranges (an origin
//! is completed under its staging name and copied to an upload at its
//! final key); `publish` completes the upload at the final key, then puts
//! the `.sha256sum` sidecar next to it. `abort` stops the part uploads,
//! aborts the multipart uploads and deletes the keys it made where nothing
//! was; what the final burst replaced is put back from the set's journal
//! (`abort_rest`).
//!
//! The folder follows those jobs: [`options`] checks the options and turns
//! them into request values, [`writer`] is one tarball's upload (its state
//! machine), [`assembly`] cuts it into parts, [`part`] sizes the parts and
//! uploads one, [`copy`] copies one, [`commit`] keeps what the final
//! burst replaces (the set's journal and backups) and takes it back,
//! [`shared`] is what every writer shares and the requests they share.

mod assembly;
mod commit;
mod copy;
mod options;
mod part;
mod shared;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{watch, OnceCell, Semaphore};

use super::{SetRecord, Sink, TarballWriter, UploadStats};
use crate::error::{Error, Result};
use crate::net::in_flight::InFlight;
use crate::net::leftovers;
use crate::net::S3Prefix;
use crate::plan::TarballPlan;
pub use assembly::COPY_PIECE;
use options::Settings;
pub use options::{check_part_size, S3SinkOptions, DEFAULT_UPLOAD_BYTES};
use part::Checksums;
pub use part::{base_part_size, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use shared::{Existing, Publication, Published, Shared, Stats, STAGE_SUFFIX};
use writer::{Before, S3Writer};

/// Tarballs as multipart uploads below an S3 prefix.
pub struct S3Sink {
    shared: Arc<Shared>,
}

impl S3Sink {
    /// Checks the options; the sink is returned boxed, as `main` uses it.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        client: aws_sdk_s3::Client,
        at: S3Prefix,
        opts: S3SinkOptions,
    ) -> Result<Box<dyn crate::sink::Sink>> {
        if at.bucket.is_empty() {
            return Err(Error::Usage("the S3 destination names no bucket".into()));
        }
        let settings = Settings::new(opts)?;
        let upload_kib = kib(settings.upload_bytes) as usize;
        Ok(Box::new(S3Sink {
            shared: Arc::new(Shared {
                client,
                at,
                upload_kib: Arc::new(Semaphore::new(upload_kib)),
                copies: AtomicBool::new(settings.server_copy),
                probed: OnceCell::new(),
                bucket_found: OnceCell::new(),
                held: assembly::HeldPool::new(settings.held_runs),
                in_flight: InFlight::default(),
                full_object: AtomicBool::new(true),
                publications: Mutex::new(HashMap::new()),
                leftovers: Mutex::new(Vec::new()),
                set_id: std::sync::OnceLock::new(),
                changes: Mutex::new(commit::Changes::default()),
                journal: Mutex::new(None),
                undeleted: AtomicU64::new(0),
                sweeping: leftovers::Sweeping::default(),
                since: std::time::SystemTime::now(),
                stats: Stats::default(),
                settings,
            }),
        }))
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn describe(&self) -> String {
        self.shared.at.url()
    }

    async fn begin(&self, set_id: &str) -> Result<()> {
        self.shared.begin(set_id).await
    }

    async fn protect(&self) -> Result<()> {
        self.shared.protect().await
    }

    async fn create(
        &self,
        index: usize,
        tarball: &TarballPlan,
        origin: bool,
    ) -> Result<Box<dyn TarballWriter>> {
        let file_name = tarball.file_name.as_str();
        let shared = self.shared.clone();
        let final_key = shared.at.key(file_name);
        let url = shared.at.object_url(&final_key);
        shared
            .bucket_found
            .get_or_try_init(|| shared.find_bucket())
            .await?;
        if shared.copies() {
            shared.probed.get_or_init(|| shared.probe(&final_key)).await;
        }
        // An origin uploads to a staging key until the set is published
        // (where the server copies: otherwise nothing copies from it); so
        // does a ZIP archive, which may find links only at its end and
        // then reads its bytes back from there (`S3Writer::seal`).
        let staged = origin || tarball.format == crate::plan::Format::Zip;
        let key = if staged && shared.copies() {
            format!("{final_key}{STAGE_SUFFIX}")
        } else {
            final_key.clone()
        };
        leftovers::sweep(
            &shared.client,
            &shared.at,
            &final_key,
            shared.since,
            &shared.settings.retry,
            &shared.sweeping,
        )
        .await;
        let before = Before {
            tarball: shared.existing(&final_key).await?,
            sidecar: match &tarball.sidecar {
                Some(name) => shared.existing(&shared.at.key(name)).await?.is_some(),
                None => false,
            },
        };
        let base_part = shared
            .settings
            .part_size
            .unwrap_or_else(|| base_part_size(tarball.size_bound()));
        let upload_url = shared.at.object_url(&key);
        let content_type = tarball.format.content_type();
        let (upload_id, checksums) = shared.start_upload(&key, &upload_url, content_type).await?;
        tracing::debug!(url = %upload_url, %upload_id, base_part, ?checksums, origin, "multipart upload started");
        let (tx, rx) = watch::channel(Publication::Pending);
        shared
            .publications
            .lock()
            .expect("publications")
            .insert(index, rx);
        Ok(Box::new(S3Writer::new(
            shared,
            file_name.to_string(),
            tarball.sidecar.clone(),
            (key, final_key),
            before,
            content_type,
            url,
            upload_id,
            base_part,
            checksums,
            (index, tx),
        )))
    }

    /// Puts the set's record beside it, then deletes the run's journal,
    /// backups, staging and temporary objects (one that cannot be deleted
    /// is left to the next run of the same pack, or `rockpack
    /// abort-uploads`).
    async fn seal(&self, record: &SetRecord) -> Result<()> {
        let s = &self.shared;
        let key = s.at.key(&record.file_name());
        let body = Bytes::from(
            serde_json::to_vec_pretty(record)
                .map_err(|e| Error::internal(format!("the set record: {e}")))?,
        );
        let checksums = if s.full_object.load(Ordering::Relaxed) {
            Checksums::FullObject
        } else {
            Checksums::Composite
        };
        s.put_small(&key, body, "application/json", checksums)
            .await?;
        s.forget().await;
        // An upload a start whose answer was lost may have begun beside the
        // one the retry got (see `InFlight`): every other upload is ended.
        s.abort_started(|_| true).await;
        let leftovers = std::mem::take(&mut *s.leftovers.lock().expect("leftovers"));
        leftovers::delete(&s.client, &s.at, &leftovers).await;
        Ok(())
    }

    fn upload_stats(&self) -> Option<UploadStats> {
        let s = &self.shared.stats;
        Some(UploadStats {
            server_copy: self.shared.copies(),
            sent_bytes: s.sent.load(Ordering::Relaxed),
            copied_bytes: s.copied.load(Ordering::Relaxed),
            read_back_bytes: s.read_back.load(Ordering::Relaxed),
            temporary_bytes: s.temp.load(Ordering::Relaxed),
            staged_bytes: s.staged.load(Ordering::Relaxed),
            backed_up_bytes: s.backed_up.load(Ordering::Relaxed),
            sent_parts: s.sent_parts.load(Ordering::Relaxed),
            copied_parts: s.copied_parts.load(Ordering::Relaxed),
            staged_parts: s.staged_parts.load(Ordering::Relaxed),
            temporary_objects: s.temporaries.load(Ordering::Relaxed),
        })
    }

    /// An upload whose tarball never got a writer (its `create` was cut
    /// short): every writer has taken its own. Then what the final burst
    /// changed is taken back from the set's journal, and the sink says
    /// what the failed run leaves under the prefix.
    async fn abort_rest(&self) {
        let s = &self.shared;
        s.abort_started(|_| true).await;
        let taken_back = s.take_back().await;
        let undeleted = s.undeleted.load(Ordering::Relaxed);
        if taken_back == Some(false) {
            tracing::warn!(
                "{}: the run stopped while publishing and not all of it could be taken back (see above)",
                s.at.url()
            );
        } else if undeleted > 0 {
            tracing::warn!(
                "{}: {undeleted} object(s) of the run could not be deleted (see above); `rockpack abort-uploads {}` removes them",
                s.at.url(),
                s.at.url()
            );
        } else {
            tracing::warn!(
                "{}: every object there is as it was before the run",
                s.at.url()
            );
        }
    }
}

/// Upload allowance is counted in KiB (semaphore permits are u32).
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(crate::units::KIB).clamp(1, u32::MAX as u64) as u32
}
