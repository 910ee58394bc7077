//! What a promote has changed at its destination, so that a failure (or a
//! signal) can put it back as it was: keys it made are deleted, multipart
//! uploads it started are aborted (see `net::aws::abort_started`: one whose
//! id never reached its caller too), objects it replaced are restored from
//! the backups it made of them first. Each change is noted before the
//! request that makes it, and a rollback first waits for requests still
//! under way, so a request its caller gave up on is undone too.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::changes::{Changes, Step};
use super::object_copy::{copy, CopySettings};
use super::object_info::{head, same_object, ObjectInfo};
use crate::net::aws::{abort_started, delete_object};

/// The changes of one promote, in one bucket, and how to take them back.
pub struct Undo {
    client: aws_sdk_s3::Client,
    bucket: String,
    settings: CopySettings,
    changes: Changes,
}

/// The changes are noted through the undo that takes them back.
impl Deref for Undo {
    type Target = Changes;

    fn deref(&self) -> &Changes {
        &self.changes
    }
}

/// How long a rollback waits for requests under way to finish.
const REQUEST_GRACE: Duration = Duration::from_secs(60);

impl Undo {
    /// Nothing changed yet in `bucket`; restores copy with `settings`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, settings: CopySettings) -> Arc<Undo> {
        Arc::new(Undo {
            client,
            bucket: bucket.to_string(),
            settings,
            changes: Changes::default(),
        })
    }

    /// How its copies are made.
    pub fn settings(&self) -> &CopySettings {
        &self.settings
    }

    /// The promote succeeded: deletes the backups. A backup that cannot
    /// be deleted is only logged (the promote itself is done).
    pub async fn commit(&self) {
        let steps = self.changes.take();
        for step in steps {
            if let Step::Replaced { backup, .. } = step {
                let _ = self.delete(&backup.key).await;
            }
        }
    }

    /// Takes every change back, latest first. Returns what could not be
    /// taken back (also logged), for the error.
    pub async fn rollback(&self) -> Vec<String> {
        let mut left = Vec::new();
        // Uploads first (no request is under way once they are known): a
        // key made by completing one is deleted below.
        self.abort_started(&mut left).await;
        let steps = self.changes.take();
        for step in steps.into_iter().rev() {
            let failed = match step {
                Step::Made(key) => self.delete(&key).await.err(),
                Step::Replaced { key, backup } if self.still_holds(&key, &backup).await => {
                    // Never overwritten (the copy onto it failed first).
                    self.delete(&backup.key).await.err()
                }
                Step::Replaced { key, backup } => {
                    // The restore needs no undo of its own but for an upload
                    // it started: the backup stays if it fails, and the error
                    // names it.
                    let scratch =
                        Undo::new(self.client.clone(), &self.bucket, self.settings.clone());
                    match copy(
                        &self.client,
                        &backup,
                        &self.bucket,
                        &key,
                        &self.settings,
                        &scratch,
                    )
                    .await
                    {
                        Ok(_) => self.delete(&backup.key).await.err(),
                        Err(e) => {
                            scratch.abort_started(&mut left).await;
                            Some(format!(
                                "{e}; what {} held is kept at {}",
                                self.url(&key),
                                backup.url()
                            ))
                        }
                    }
                }
            };
            if let Some(f) = failed {
                tracing::error!("taking the run back: {f}");
                left.push(f);
            }
        }
        left
    }

    /// Aborts every upload started and not ended (see [`abort_started`]);
    /// what could not be aborted goes to `left`.
    async fn abort_started(&self, left: &mut Vec<String>) {
        let failed = abort_started(
            &self.client,
            &self.bucket,
            self.changes.inflight(),
            REQUEST_GRACE,
            |_| true,
        )
        .await;
        for e in failed {
            tracing::error!("taking the run back: {e}");
            left.push(e.to_string());
        }
    }

    async fn delete(&self, key: &str) -> std::result::Result<(), String> {
        delete_object(&self.client, &self.bucket, key)
            .await
            .map_err(|e| {
                tracing::warn!("{e}");
                e.to_string()
            })
    }

    /// Whether `key` still holds what `backup` keeps of it.
    async fn still_holds(&self, key: &str, backup: &ObjectInfo) -> bool {
        match head(&self.client, &self.bucket, key, &self.settings.retry).await {
            Ok(Some(now)) => same_object(backup, &now),
            _ => false,
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
