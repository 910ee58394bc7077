//! A promote's journal: before it changes anything at its destination, a
//! promote writes what it may change there — the keys it may create, and
//! the keys it may overwrite with where their old bytes are copied first —
//! as `rockpack-promote.{id}.rockpack-journal`. It deletes the journal
//! when it ends (done, or taken back). A promote that is killed cannot,
//! so its journal stays, and `rockpack abort-uploads` takes the promote
//! back from it ([`Journal::roll_back`]): the destination as it was.

use std::sync::Arc;

use super::object_copy::{copy, head, CopySettings};
use super::undo::Undo;
use crate::error::{Error, Kind, Result};
use crate::net::aws::s3_error;
use crate::net::S3Prefix;

/// How journals are named: `rockpack-promote.{id}` and this.
pub const JOURNAL_SUFFIX: &str = ".rockpack-journal";

/// What one promote may change at its destination.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// Keys it may create (nothing was there).
    pub made: Vec<String>,
    /// Keys it may overwrite, each with the key its old bytes are copied
    /// to before it is.
    pub replaced: Vec<(String, String)>,
}

/// A journal can hold a few thousand keys.
const MAX_JOURNAL: u64 = 16 << 20;

impl Journal {
    /// Whether the promote changes nothing (then it writes no journal).
    pub fn is_empty(&self) -> bool {
        self.made.is_empty() && self.replaced.is_empty()
    }

    /// The key of journal `id` below `to`.
    pub fn key(to: &S3Prefix, id: &str) -> String {
        to.key(&format!("rockpack-promote.{id}{JOURNAL_SUFFIX}"))
    }

    /// Writes it at `bucket/key`.
    pub async fn put(&self, client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<()> {
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("the promote's journal: {e}")))?;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| s3_error("PutObject", &format!("s3://{bucket}/{key}"), &e))?;
        Ok(())
    }

    /// Reads the journal at `bucket/key`.
    pub async fn read(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Journal> {
        let url = format!("s3://{bucket}/{key}");
        let got = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("GetObject", &url, &e))?;
        if got.content_length().unwrap_or(0) as u64 > MAX_JOURNAL {
            return Err(Error::failed(
                Kind::Remote,
                format!("{url}: larger than a promote's journal can be"),
            ));
        }
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|e| Error::failed(Kind::Remote, format!("GetObject {url}: {e}")))?
            .into_bytes();
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::failed(
                Kind::Remote,
                format!("{url}: not a rockpack promote journal: {e}"),
            )
        })
    }

    /// Takes back what the killed promote of this journal did in `bucket`:
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
            let kept = match head(client, bucket, backup).await {
                Ok(kept) => kept,
                Err(e) => {
                    left.push(e.to_string());
                    continue;
                }
            };
            let Some(kept) = kept else { continue };
            let restored = copy(client, &kept, bucket, key, settings, &undo).await;
            match restored {
                Ok(_) => {
                    tracing::info!("restored s3://{bucket}/{key} from {}", kept.url());
                    if let Err(e) = delete(client, bucket, backup).await {
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
            match delete(client, bucket, key).await {
                Ok(()) => tracing::info!("deleted s3://{bucket}/{key}"),
                Err(e) => left.push(e.to_string()),
            }
        }
        // The restores made nothing else to keep.
        undo.commit().await;
        left
    }
}

/// Deletes `bucket/key` (one that is not there counts as deleted).
async fn delete(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<()> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| s3_error("DeleteObject", &format!("s3://{bucket}/{key}"), &e))?;
    Ok(())
}
