//! A run's journal: before a pack's final burst, or before a promote
//! changes anything at its destination, the run writes what it may change
//! there — the keys it may create, and the keys it may overwrite with
//! where their old bytes are copied first — as
//! `rockpack-{pack|promote}.{id}.rockpack-journal`. It deletes the journal
//! when it ends (done, or taken back). A run that is killed cannot, so its
//! journal stays, and `rockpack abort-uploads` (or the next run: the same
//! pack, or any promote to that prefix) takes the run back from it
//! ([`Journal::take_back`]): the prefix as it was.

use std::sync::Arc;

use super::leftovers::BACKUP_MARKER;
use super::object_copy::{copy, CopySettings};
use super::object_info::{head, same_object};
use super::undo::Undo;
use crate::error::{Error, Kind, Result};
use crate::net::aws::{delete_object, request_error};
use crate::net::{with_retries, RequestError, RetryPolicy, S3Prefix};

/// How journals are named: `rockpack-{run}.{id}` and this.
pub const JOURNAL_SUFFIX: &str = ".rockpack-journal";

/// What one run may change below its prefix.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// Keys it may create (nothing was there).
    pub made: Vec<String>,
    /// Keys it may overwrite, each with the key its old bytes are copied
    /// to before it is.
    pub replaced: Vec<(String, String)>,
}

/// Which kind of run wrote a journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// `rockpack pack`: its id is the set's (see `SetRecord`).
    Pack,
    /// `rockpack promote`: a random id.
    Promote,
}

impl Run {
    /// `rockpack-{run}.`: where its journals' names start.
    pub fn prefix(self) -> &'static str {
        match self {
            Run::Pack => "rockpack-pack.",
            Run::Promote => "rockpack-promote.",
        }
    }
}

/// A journal can hold a few thousand keys.
const MAX_JOURNAL: u64 = 16 << 20;

impl Journal {
    /// Whether the run changes nothing (then it writes no journal).
    pub fn is_empty(&self) -> bool {
        self.made.is_empty() && self.replaced.is_empty()
    }

    /// The key of `run`'s journal `id` below `at`.
    pub fn key(at: &S3Prefix, run: Run, id: &str) -> String {
        at.key(&format!("{}{id}{JOURNAL_SUFFIX}", run.prefix()))
    }

    /// Where the run with journal `id` keeps what `key` held.
    pub fn backup_key(key: &str, id: &str) -> String {
        format!("{key}{BACKUP_MARKER}{id}")
    }

    /// Writes it at `bucket/key`, retried under `policy`.
    pub async fn put(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        policy: &RetryPolicy,
    ) -> Result<()> {
        let body = bytes::Bytes::from(
            serde_json::to_vec_pretty(self)
                .map_err(|e| Error::internal(format!("the run's journal: {e}")))?,
        );
        let what = format!("PutObject s3://{bucket}/{key}");
        with_retries(policy, &what, || {
            let put = client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(body.clone().into())
                .send();
            async move { put.await.map(|_| ()).map_err(|e| request_error(&e)) }
        })
        .await
        .map_err(|e| e.into_error(&what))
    }

    /// Takes back the killed run of this journal, read from `bucket/key`
    /// (see [`Journal::roll_back`]), then deletes the journal. Fails,
    /// keeping the journal, if something could not be taken back.
    pub async fn take_back(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        settings: &CopySettings,
    ) -> Result<()> {
        let left = self.roll_back(client, bucket, settings).await;
        if !left.is_empty() {
            return Err(Error::failed(
                Kind::Remote,
                format!(
                    "taking back the killed run of s3://{bucket}/{key} failed: {}",
                    left.join("; ")
                ),
            ));
        }
        delete_object(client, bucket, key).await
    }

    /// Reads the journal at `bucket/key`, retried under `policy`.
    pub async fn read(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        policy: &RetryPolicy,
    ) -> Result<Journal> {
        let url = format!("s3://{bucket}/{key}");
        let what = format!("GetObject {url}");
        let bytes = with_retries(policy, &what, || async {
            let got = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| request_error(&e))?;
            if got.content_length().unwrap_or(0) as u64 > MAX_JOURNAL {
                return Err(RequestError::Fatal(
                    "larger than a run's journal can be".into(),
                ));
            }
            let body = got.body.collect().await;
            body.map(|b| b.into_bytes())
                .map_err(|e| RequestError::Retry(e.to_string()))
        })
        .await
        .map_err(|e| e.into_error(&what))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::failed(Kind::Remote, format!("{url}: not a rockpack journal: {e}")))
    }

    /// Takes back what the killed run of this journal did in `bucket`:
    /// an overwritten key gets its old bytes back from their copy (which
    /// is then deleted; a key whose copy is not there was not overwritten
    /// yet), a created key is deleted. Returns what could not be taken
    /// back; the journal is for the caller to delete once that is empty.
    pub async fn roll_back(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        settings: &CopySettings,
    ) -> Vec<String> {
        let mut left = Vec::new();
        let undo: Arc<Undo> = Undo::new(client.clone(), bucket, settings.clone());
        for (key, backup) in &self.replaced {
            let kept = match head(client, bucket, backup, &settings.retry).await {
                Ok(kept) => kept,
                Err(e) => {
                    left.push(e.to_string());
                    continue;
                }
            };
            let Some(kept) = kept else { continue };
            // Never overwritten (the run died first): only the backup goes.
            let now = head(client, bucket, key, &settings.retry).await;
            if matches!(&now, Ok(Some(now)) if same_object(&kept, now)) {
                if let Err(e) = delete_object(client, bucket, backup).await {
                    left.push(e.to_string());
                }
                continue;
            }
            let restored = copy(client, &kept, bucket, key, settings, &undo).await;
            match restored {
                Ok(_) => {
                    tracing::info!("restored s3://{bucket}/{key} from {}", kept.url());
                    if let Err(e) = delete_object(client, bucket, backup).await {
                        left.push(e.to_string());
                    }
                }
                Err(e) => left.push(format!(
                    "{e}; what s3://{bucket}/{key} held is kept at {}",
                    kept.url()
                )),
            }
        }
        for key in &self.made {
            match delete_object(client, bucket, key).await {
                Ok(()) => tracing::info!("deleted s3://{bucket}/{key}"),
                Err(e) => left.push(e.to_string()),
            }
        }
        // The restores made nothing else to keep.
        undo.commit().await;
        left
    }
}
