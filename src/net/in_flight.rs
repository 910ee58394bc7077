//! Requests that make something on a server (an upload, an object) run as
//! tasks of their own: a signal that drops the future awaiting one does not
//! stop the server from finishing it, so whoever cleans up afterwards first
//! waits for those still under way, then removes what they made.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Requests under way, counted.
#[derive(Clone, Debug)]
pub struct InFlight(Arc<watch::Sender<usize>>);

impl Default for InFlight {
    fn default() -> Self {
        InFlight(Arc::new(watch::channel(0).0))
    }
}

impl InFlight {
    /// Runs `request` as a task of its own, counted while it runs; its
    /// output (a panic in it is raised here).
    pub async fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.0.send_modify(|n| *n += 1);
        let count = self.0.clone();
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

    /// Waits until none is under way, at most `limit`.
    pub async fn settled(&self, limit: Duration) {
        let mut rx = self.0.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
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
}
