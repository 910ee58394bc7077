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
