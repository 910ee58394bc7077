//! Requests that make something on a server (an upload, an object) run as
//! tasks of their own: a signal that drops the future awaiting one does not
//! stop the server from finishing it, so whoever cleans up afterwards first
//! waits for those still under way, then removes what they made. A request
//! that starts a multipart upload is noted by its own task: its upload id
//! when the answer carries one, else its key — the server may have started
//! an upload whose answer never came (a stalled or retried request), which
//! only a listing of the key's uploads finds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// Requests under way, counted, and the multipart uploads they started.
#[derive(Clone, Debug)]
pub struct InFlight {
    count: Arc<watch::Sender<usize>>,
    started: Arc<Mutex<Noted>>,
}

/// Uploads started and not yet ended.
#[derive(Debug, Default)]
struct Noted {
    /// Upload id → key.
    ids: HashMap<String, String>,
    /// Key → requests to start one of its uploads that gave no id (yet).
    unsure: HashMap<String, usize>,
}

/// What is left to abort (see [`InFlight::take_started`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Started {
    /// (key, upload id) of uploads whose id came back, sorted.
    pub uploads: Vec<(String, String)>,
    /// Keys for which a request to start an upload failed or was still
    /// unanswered: the server may have started one all the same. Sorted.
    pub unsure: Vec<String>,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            count: Arc::new(watch::channel(0).0),
            started: Arc::default(),
        }
    }
}

impl InFlight {
    /// Runs `request` as a task of its own, counted while it runs; its
    /// output (a panic in it is raised here).
    pub async fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.count.send_modify(|n| *n += 1);
        let count = self.count.clone();
        let task = tokio::spawn(async move {
            let out = request.await;
            count.send_modify(|n| *n -= 1);
            out
        });
        match task.await {
            Ok(out) => out,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Runs `request`, which starts a multipart upload of `key`, as
    /// [`run`](Self::run) does. Its key is noted as it is sent; the upload
    /// id `id` finds in its answer replaces it inside the task, before the
    /// answer reaches the caller. Noted until [`ended`](Self::ended).
    pub async fn start_upload<T, E>(
        &self,
        key: &str,
        request: impl Future<Output = Result<T, E>> + Send + 'static,
        id: fn(&T) -> Option<&str>,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        *self.noted().unsure.entry(key.to_string()).or_default() += 1;
        let started = self.started.clone();
        let key = key.to_string();
        self.run(async move {
            let out = request.await;
            if let Some(id) = out.as_ref().ok().and_then(id) {
                let mut noted = started.lock().expect("started uploads");
                if let Some(n) = noted.unsure.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        noted.unsure.remove(&key);
                    }
                }
                noted.ids.insert(id.to_string(), key);
            }
            out
        })
        .await
    }

    /// A request to start an upload of `key` was refused outright (the
    /// server answered with an error that started nothing): one fewer
    /// try to look for.
    pub fn refused(&self, key: &str) {
        let mut noted = self.noted();
        if let Some(n) = noted.unsure.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                noted.unsure.remove(key);
            }
        }
    }

    /// Upload `upload_id` was completed or aborted: nothing to abort.
    pub fn ended(&self, upload_id: &str) {
        self.noted().ids.remove(upload_id);
    }

    /// Once no request is under way (waiting at most `limit`): the uploads
    /// started and not ended whose key `wanted` picks, taken out — their
    /// aborting is the caller's.
    pub async fn take_started(&self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Started {
        self.settled(limit).await;
        let mut noted = self.noted();
        let ids: Vec<String> = noted
            .ids
            .iter()
            .filter(|(_, key)| wanted(key))
            .map(|(id, _)| id.clone())
            .collect();
        let mut uploads: Vec<(String, String)> = ids
            .into_iter()
            .filter_map(|id| noted.ids.remove(&id).map(|key| (key, id)))
            .collect();
        uploads.sort();
        let mut unsure: Vec<String> = noted.unsure.keys().filter(|k| wanted(k)).cloned().collect();
        for key in &unsure {
            noted.unsure.remove(key);
        }
        unsure.sort();
        Started { uploads, unsure }
    }

    /// Waits until none is under way, at most `limit`.
    pub async fn settled(&self, limit: Duration) {
        let mut rx = self.count.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
    }

    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.started.lock().expect("started uploads")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_caller_does_not_stop_the_request() {
        let in_flight = InFlight::default();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let request = in_flight.run(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // The caller gives up at once.
        let _ = tokio::time::timeout(Duration::from_millis(1), request).await;
        assert!(!done.load(std::sync::atomic::Ordering::SeqCst));
        in_flight.settled(Duration::from_secs(5)).await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn uploads_are_noted_by_id_or_else_by_key() {
        let in_flight = InFlight::default();
        let answer = |id: &'static str, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ()>(id)
        };
        let id = |id: &&'static str| Some(*id);
        // The caller gives up; the answer still comes, and is noted.
        let give_up = in_flight.start_upload("a.tar.gz", answer("1", 50), id);
        let _ = tokio::time::timeout(Duration::from_millis(1), give_up).await;
        let temp = in_flight.start_upload("a.tar.gz.rockpack-tmp-0", answer("2", 0), id);
        assert_eq!(temp.await, Ok("2"));
        let other = in_flight.start_upload("b.tar.gz", answer("3", 0), id);
        assert_eq!(other.await, Ok("3"));
        let ended = in_flight.start_upload("a.tar.gz", answer("4", 0), id);
        assert_eq!(ended.await, Ok("4"));
        in_flight.ended("4");
        // No id: the key is unsure.
        let refused = in_flight.start_upload("c.tar.gz", async { Err::<&str, _>(()) }, id);
        assert_eq!(refused.await, Err(()));
        // An answer that outlasts the wait: unsure too.
        let stalled = in_flight.start_upload("d.tar.gz", answer("5", 60_000), id);
        let _ = tokio::time::timeout(Duration::from_millis(1), stalled).await;
        let a = in_flight
            .take_started(Duration::from_secs(2), |k| k.starts_with("a.tar.gz"))
            .await;
        assert_eq!(
            a,
            Started {
                uploads: vec![
                    ("a.tar.gz".into(), "1".into()),
                    ("a.tar.gz.rockpack-tmp-0".into(), "2".into())
                ],
                unsure: vec![],
            }
        );
        // Taken out: a second look finds only the other keys'.
        let rest = in_flight
            .take_started(Duration::from_millis(10), |_| true)
            .await;
        assert_eq!(
            rest,
            Started {
                uploads: vec![("b.tar.gz".into(), "3".into())],
                unsure: vec!["c.tar.gz".into(), "d.tar.gz".into()],
            }
        );
    }
}
