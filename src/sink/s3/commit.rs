//! The final burst as a commit that can be taken back. Before the burst,
//! the sink writes the set's journal (`rockpack-pack.{set}.rockpack-journal`:
//! every key the burst creates where nothing was, and every key it
//! overwrites with where its old bytes are kept), then copies each key it
//! overwrites to `NAME.rockpack-backup-{set}` (server-side). A failed burst
//! is taken back from the journal at once; a killed one by
//! `rockpack abort-uploads`, or by the next run of the same pack before it
//! looks at anything. Once the set's record is written, the journal goes,
//! then the backups.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use super::Shared;
use crate::error::{Error, Result};
use crate::net::aws::delete_object;
use crate::net::journal::{Journal, Run};
use crate::net::leftovers::{self, BACKUP_MARKER};
use crate::net::object_copy::{copy, CopySettings};
use crate::net::object_info::head;
use crate::net::undo::Undo;
use crate::sink::record_name;

/// What the final burst changes, as the writers find it once prepared.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Keys where nothing was.
    made: Vec<String>,
    /// Keys that hold other bytes.
    held: Vec<String>,
}

impl Changes {
    /// The burst writes `key`, which holds an object if `held`.
    pub(super) fn note(&mut self, key: &str, held: bool) {
        let to = if held { &mut self.held } else { &mut self.made };
        to.push(key.to_string());
    }
}

/// The journal written for this run, and the copies made of what it
/// replaces (their uploads aborted, and the copies deleted, if the run
/// fails before they are complete).
pub(super) struct Written {
    key: String,
    journal: Journal,
    backups: Arc<Undo>,
}

/// Backups made at once.
const BACKUPS_AT_ONCE: usize = 8;

impl Shared {
    fn set(&self) -> Result<&str> {
        self.set_id
            .get()
            .map(String::as_str)
            .ok_or_else(|| Error::internal("the S3 sink was not told its set"))
    }

    fn copy_settings(&self) -> CopySettings {
        CopySettings {
            retry: self.settings.retry.clone(),
            ..CopySettings::default()
        }
    }

    /// Before anything else: the bucket is there, and a run of the same
    /// set killed during its burst is taken back (the prefix as it was
    /// before that run), so that what this run finds there is a whole set.
    /// Backups of this set no journal names (a run killed just after its
    /// journal was deleted) are deleted.
    pub(super) async fn begin(&self, id: &str) -> Result<()> {
        let _ = self.set_id.set(id.to_string());
        self.bucket_found
            .get_or_try_init(|| self.find_bucket())
            .await?;
        let key = Journal::key(&self.at, Run::Pack, id);
        let (client, bucket, retry) = (&self.client, &self.at.bucket, &self.settings.retry);
        if head(client, bucket, &key, retry).await?.is_some() {
            tracing::warn!(
                "{}: a run of this pack was killed while publishing; taking it back first",
                self.at.object_url(&key)
            );
            let journal = Journal::read(client, bucket, &key, retry).await?;
            // Its uploads first: a completion the killed run had sent must
            // not land after the key is restored.
            let keys = journal
                .made
                .iter()
                .chain(journal.replaced.iter().map(|(k, _)| k));
            for k in keys {
                leftovers::sweep(client, &self.at, k, self.since, retry, &self.sweeping).await;
            }
            journal
                .take_back(client, bucket, &key, &self.copy_settings())
                .await?;
            return Ok(());
        }
        let ours = format!("{BACKUP_MARKER}{id}");
        let since = self
            .since
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match leftovers::temporaries(client, bucket, &self.at.below(), retry).await {
            Ok(found) => {
                let stale: Vec<String> = found
                    .into_iter()
                    .filter(|t| t.key.ends_with(&ours) && t.modified.is_some_and(|m| m < since))
                    .map(|t| t.key)
                    .collect();
                leftovers::delete(client, &self.at, &stale).await;
            }
            Err(e) => tracing::warn!("{e}; backups an earlier run left are not looked for"),
        }
        Ok(())
    }

    /// Writes the set's journal, then copies aside every key the burst
    /// overwrites. The journal is noted before it is written: a failure
    /// from here on is taken back by [`Shared::take_back`].
    pub(super) async fn protect(&self) -> Result<()> {
        let id = self.set()?.to_string();
        let mut changes = std::mem::take(&mut *self.changes.lock().expect("changes"));
        let record = self.at.key(&record_name(&id));
        let held = self.existing(&record).await?.is_some();
        changes.note(&record, held);
        let journal = Journal {
            made: changes.made,
            replaced: changes
                .held
                .into_iter()
                .map(|k| {
                    let backup = Journal::backup_key(&k, &id);
                    (k, backup)
                })
                .collect(),
        };
        let key = Journal::key(&self.at, Run::Pack, &id);
        let settings = self.copy_settings();
        let backups = Undo::new(self.client.clone(), &self.at.bucket, settings.clone());
        *self.journal.lock().expect("journal") = Some(Written {
            key: key.clone(),
            journal: journal.clone(),
            backups: backups.clone(),
        });
        let (client, bucket) = (&self.client, self.at.bucket.as_str());
        journal.put(client, bucket, &key, &settings.retry).await?;
        let (settings, backups) = (&settings, &backups);
        futures_util::stream::iter(journal.replaced.clone())
            .map(|(key, backup)| {
                async move {
                    // Gone since the run looked: nothing to keep.
                    let Some(there) = head(client, bucket, &key, &settings.retry).await? else {
                        return Ok(());
                    };
                    copy(client, &there, bucket, &backup, settings, backups).await?;
                    self.stats.add_backed_up(there.size);
                    Ok::<(), Error>(())
                }
            })
            .buffer_unordered(BACKUPS_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// The set's record is written: the run's journal is deleted (past
    /// this, nothing is taken back), then its backups.
    pub(super) async fn forget(&self) {
        let Some(w) = self.journal.lock().expect("journal").take() else {
            return;
        };
        if let Err(e) = delete_object(&self.client, &self.at.bucket, &w.key).await {
            tracing::error!(
                "{e}; delete it by hand: `rockpack abort-uploads {}` would take the set back",
                self.at.url()
            );
            return;
        }
        let backups: Vec<String> = w.journal.replaced.into_iter().map(|(_, b)| b).collect();
        leftovers::delete(&self.client, &self.at, &backups).await;
    }

    /// The run failed after its journal was written: every key it changed
    /// gets back what it held (see [`Journal::take_back`]). Returns whether
    /// the prefix is as it was; if not, says what is left to do.
    pub(super) async fn take_back(&self) -> Option<bool> {
        let w = self.journal.lock().expect("journal").take()?;
        let (client, bucket) = (&self.client, &self.at.bucket);
        let taken = w
            .journal
            .take_back(client, bucket, &w.key, &self.copy_settings())
            .await;
        match taken {
            Ok(()) => {
                // A copy still under way when the run stopped.
                let left = w.backups.rollback().await;
                Some(left.is_empty())
            }
            Err(e) => {
                tracing::error!(
                    "{e}; `rockpack abort-uploads {}` tries again from the run's journal",
                    self.at.url()
                );
                Some(false)
            }
        }
    }
}
