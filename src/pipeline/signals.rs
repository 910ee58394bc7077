//! Ctrl-C and SIGTERM: a run listens for them from before it creates its
//! first output, so that a signal aborts every tarball instead of leaving
//! one half-uploaded. Kept apart from the run itself, which only selects on
//! [`Shutdown::recv`].

use crate::error::{Error, Kind};

/// The error a run stopped by `signal` ends with.
pub(super) fn interrupted(signal: &str) -> Error {
    Error::failed(
        Kind::Interrupted,
        format!("interrupted by {signal}; every output was aborted"),
    )
}

/// Ctrl-C and SIGTERM, listened for from the moment of `install` (tokio's
/// `ctrl_c()` would only listen once first polled).
pub(super) struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    pub(super) fn install() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .ok()
                .zip(signal(SignalKind::terminate()).ok());
            Shutdown { signals }
        }
        #[cfg(not(unix))]
        Shutdown {}
    }

    /// Resolves on the next signal, naming it.
    pub(super) async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            match self.signals.as_mut() {
                Some((int, term)) => tokio::select! {
                    _ = int.recv() => "Ctrl-C",
                    _ = term.recv() => "SIGTERM",
                },
                None => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
