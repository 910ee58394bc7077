//! The error type: every message says what happened and where, and its
//! category decides the exit code.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The request selects nothing, or something the run does not have (exit 3).
    #[error("{0}")]
    Selection(String),
    /// An artifact is malformed, hostile or fails verification (exit 1).
    #[error("{0}")]
    Artifact(ArtifactError),
    /// Two artifacts disagree about a path (exit 1).
    #[error("{0}")]
    Conflict(String),
    /// Reading the source or writing the sink failed (exit 1).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else that stops a run (exit 1).
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Selection(_) => 3,
            _ => 1,
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<&'static str> {
        let text = self.to_string();
        let has = |s: &str| text.contains(s);
        Some(match self {
            Error::Artifact(_) if has("sha256 mismatch") => {
                "the archive or its .sha256sum sidecar is corrupt or was replaced; re-publish it (--verify off skips the check)"
            }
            Error::Artifact(_) if has("changed while it was being read") => {
                "the artifact was rewritten during the run; rerun once the build's uploads are complete"
            }
            Error::Artifact(_) if has("giving up after") => {
                "the download kept failing; check the network, endpoint and credentials (--retries and --stall-timeout set how patient rockpack is)"
            }
            Error::Artifact(_) if has("--max-unpacked-size") => {
                "if the artifact is genuine, raise --max-unpacked-size"
            }
            Error::Artifact(_) => {
                "rockpack refuses archives it cannot pack safely; fix the build job that produced this artifact"
            }
            Error::Io { .. } if has("writing") || has("creating") || has("renaming") => {
                "check that the destination exists, is writable and has space"
            }
            _ => return None,
        })
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// A problem inside one artifact, optionally at one member.
#[derive(Debug)]
pub struct ArtifactError {
    pub artifact: String,
    pub member: Option<String>,
    pub message: String,
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "artifact {}", self.artifact)?;
        if let Some(m) = &self.member {
            write!(f, ", member {m:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Error {
    pub fn artifact(artifact: &str, member: Option<&[u8]>, message: impl Into<String>) -> Self {
        Error::Artifact(ArtifactError {
            artifact: artifact.to_string(),
            member: member.map(|m| String::from_utf8_lossy(m).into_owned()),
            message: message.into(),
        })
    }
}
