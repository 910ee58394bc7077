//! What a run has changed in one bucket, noted before each request that
//! makes the change: keys that may now exist, multipart uploads under way
//! or started, objects about to be replaced (with the backup that holds
//! what they held). The copies note theirs here; `undo` takes them back.

use std::future::Future;
use std::sync::Mutex;

use super::in_flight::InFlight;
use super::object_info::ObjectInfo;

/// One change to take back.
#[derive(Debug)]
pub(super) enum Step {
    /// A key that may now exist.
    Made(String),
    /// `key` held what `backup` (a copy made first) holds.
    Replaced {
        key: String,
        backup: Box<ObjectInfo>,
    },
}

/// The changes noted so far.
#[derive(Default)]
pub struct Changes {
    steps: Mutex<Vec<Step>>,
    /// Requests that make objects, under way (see [`Changes::request`]),
    /// and the uploads started.
    inflight: InFlight,
}

impl Changes {
    /// Runs a request that makes an object so that a rollback waits for
    /// it (see [`InFlight`]).
    pub async fn request<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.inflight.run(request).await
    }

    fn push(&self, step: Step) {
        self.steps.lock().expect("changes").push(step);
    }

    /// `key` may exist from now on.
    pub fn made(&self, key: &str) {
        self.push(Step::Made(key.to_string()));
    }

    /// Runs a request that starts a multipart upload of `key`; the upload
    /// is aborted by a rollback until [`ended`](Self::ended).
    pub async fn start_upload<T: Send + 'static, E: Send + 'static>(
        &self,
        key: &str,
        request: impl Future<Output = Result<T, E>> + Send + 'static,
        id: fn(&T) -> Option<&str>,
    ) -> Result<T, E> {
        self.inflight.start_upload(key, request, id).await
    }

    /// Upload `upload_id` was completed: nothing to abort.
    pub fn ended(&self, upload_id: &str) {
        self.inflight.ended(upload_id);
    }

    /// `key` is about to be overwritten; `backup` holds what it held.
    pub fn replacing(&self, key: &str, backup: ObjectInfo) {
        self.push(Step::Replaced {
            key: key.to_string(),
            backup: Box::new(backup),
        });
    }

    /// The changes noted, oldest first; none are left.
    pub(super) fn take(&self) -> Vec<Step> {
        std::mem::take(&mut *self.steps.lock().expect("changes"))
    }

    /// The requests and uploads under way or started.
    pub(super) fn inflight(&self) -> &InFlight {
        &self.inflight
    }
}
