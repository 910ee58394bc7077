//! What a promote has changed at its destination, so that a failure (or a
//! signal) can put it back as it was: keys it made are deleted, multipart
//! uploads it opened are aborted (found by listing where a signal cut the
//! request that started one short), objects it replaced are restored from the
//! backups it made of them first. Each change is noted before the request
//! that makes it, and a rollback first waits for requests still under way,
//! so a request its caller gave up on is undone too.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::object_copy::{copy, CopySettings, ObjectInfo};
use crate::net::aws::{abort_upload, s3_error};
use crate::net::in_flight::InFlight;

/// One change to take back.
#[derive(Debug)]
enum Step {
    /// A key that may now exist.
    Made(String),
    /// A multipart upload of this key may have been started: its
    /// CreateMultipartUpload was sent (a signal may drop the request after
    /// the server started the upload, before its id came back).
    Opening(String),
    /// An open multipart upload.
    Opened { key: String, upload_id: String },
    /// `key` held what `backup` (a copy made first) holds.
    Replaced { key: String, backup: ObjectInfo },
}

/// The changes of one promote, in one bucket.
pub struct Undo {
    client: aws_sdk_s3::Client,
    bucket: String,
    settings: CopySettings,
    steps: Mutex<Vec<Step>>,
    /// Requests that make objects, under way (see [`Undo::request`]).
    inflight: InFlight,
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
            steps: Mutex::new(Vec::new()),
            inflight: InFlight::default(),
        })
    }

    /// Runs a request that makes an object so that a rollback waits for
    /// it (see [`InFlight`]).
    pub async fn request<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.inflight.run(request).await
    }

    fn push(&self, step: Step) {
        self.steps.lock().expect("undo steps").push(step);
    }

    /// `key` may exist from now on.
    pub fn made(&self, key: &str) {
        self.push(Step::Made(key.to_string()));
    }

    /// A multipart upload of `key` is about to be started.
    pub fn opening(&self, key: &str) {
        self.push(Step::Opening(key.to_string()));
    }

    /// A multipart upload of `key` is open.
    pub fn opened(&self, key: &str, upload_id: &str) {
        self.push(Step::Opened {
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        });
    }

    /// The upload was completed: nothing to abort.
    pub fn completed(&self, upload_id: &str) {
        self.steps
            .lock()
            .expect("undo steps")
            .retain(|s| !matches!(s, Step::Opened { upload_id: u, .. } if u == upload_id));
    }

    /// `key` is about to be overwritten; `backup` holds what it held.
    pub fn replacing(&self, key: &str, backup: ObjectInfo) {
        self.push(Step::Replaced {
            key: key.to_string(),
            backup,
        });
    }

    /// The promote succeeded: deletes the backups. A backup that cannot
    /// be deleted is only logged (the promote itself is done).
    pub async fn commit(&self) {
        let steps = std::mem::take(&mut *self.steps.lock().expect("undo steps"));
        for step in steps {
            if let Step::Replaced { backup, .. } = step {
                let _ = self.delete(&backup.key).await;
            }
        }
    }

    /// Takes every change back, latest first. Returns what could not be
    /// taken back (also logged), for the error.
    pub async fn rollback(&self) -> Vec<String> {
        self.inflight.settled(REQUEST_GRACE).await;
        let steps = std::mem::take(&mut *self.steps.lock().expect("undo steps"));
        let mut left = Vec::new();
        for step in steps.into_iter().rev() {
            let failed = match step {
                Step::Made(key) => self.delete(&key).await.err(),
                Step::Opening(key) => self.abort_all(&key).await.err(),
                Step::Opened { key, upload_id } => self.abort(&key, &upload_id).await.err(),
                Step::Replaced { key, backup } => {
                    // The restore needs no undo of its own: the backup stays
                    // if it fails, and the error names it.
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
                        Err(e) => Some(format!(
                            "{e}; what {} held is kept at {}",
                            self.url(&key),
                            backup.url()
                        )),
                    }
                }
            };
            if let Some(f) = failed {
                tracing::error!("taking the promote back: {f}");
                left.push(f);
            }
        }
        left
    }

    async fn abort(&self, key: &str, upload_id: &str) -> std::result::Result<(), String> {
        abort_upload(&self.client, &self.bucket, key, upload_id)
            .await
            .map_err(|e| e.to_string())
    }

    /// Aborts every incomplete upload of `key` (one whose id never came
    /// back included). A server that cannot list them is only logged: the
    /// uploads whose ids came back are aborted by id.
    async fn abort_all(&self, key: &str) -> std::result::Result<(), String> {
        let listed = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await;
        let page = match listed {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!("{}", s3_error("ListMultipartUploads", &self.url(key), &e));
                return Ok(());
            }
        };
        for u in page.uploads() {
            if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                if k == key {
                    self.abort(k, id).await?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> std::result::Result<(), String> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = s3_error("DeleteObject", &self.url(key), &e).to_string();
                tracing::warn!("{text}");
                Err(text)
            }
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
