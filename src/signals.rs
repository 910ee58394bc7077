//! Ctrl-C and SIGTERM: a run (and a promote) listens for them from before
//! it creates its first output, so that a signal aborts every output
//! instead of leaving one half-made. Kept apart from the jobs themselves,
//! which only select on [`Shutdown::recv`].

use crate::error::{Error, Kind};

/// The error a run stopped by `signal` ends with.
pub fn interrupted(signal: &str) -> Error {
    Error::failed(
        Kind::Interrupted,
        format!("interrupted by {signal}; every output was aborted"),
    )
}

/// Ctrl-C and SIGTERM, listened for from the moment of `install` (tokio's
/// `ctrl_c()` would only listen once first polled).
pub struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    /// Starts listening.
    pub fn install() -> Shutdown {
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
    pub async fn recv(&mut self) -> &'static str {
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
