//! The error type: every message says what happened and where, and its
//! [`Kind`] decides the exit code and the hint that follows the message.
//! Hints match on the kind, never on wording, so rewording a message
//! cannot lose its advice.

use std::fmt;

/// `Result` with rockpack's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as far as the exit code and the user's next step depend
/// on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The command line asks for something impossible (exit 2).
    Usage,
    /// The request selects nothing the run has (exit 3).
    Selection,
    /// An archive is malformed or hostile: rockpack cannot pack it safely.
    Malformed,
    /// An artifact decompresses to more than `--max-unpacked-size`.
    TooLarge,
    /// An artifact's bytes do not match its `.sha256sum` digest.
    DigestMismatch,
    /// An object changed while it was being read.
    ObjectChanged,
    /// A download or upload kept failing until rockpack gave up.
    GaveUp,
    /// A remote server refused a request for good (an HTTP status or S3
    /// error that retrying will not change).
    Remote,
    /// Two artifacts of one tarball hold different content at one path.
    Conflict,
    /// Reading a local file or directory failed.
    Read,
    /// Writing the destination failed.
    Write,
    /// Ctrl-C or SIGTERM stopped the run.
    Interrupted,
    /// One of rockpack's own threads stopped unexpectedly.
    Internal,
}

impl Kind {
    /// What the user can do about an error of this kind, when there is
    /// something useful to say.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            Kind::DigestMismatch => {
                "the archive or its .sha256sum sidecar is corrupt or was replaced; re-publish it (--verify off skips the check)"
            }
            Kind::ObjectChanged => {
                "the artifact was rewritten during the run; rerun once the build's uploads are complete"
            }
            Kind::GaveUp => {
                "the transfer kept failing; check the network, endpoint and credentials (--retries, --retry-for and --stall-timeout set how patient rockpack is)"
            }
            Kind::TooLarge => "if the artifact is genuine, raise --max-unpacked-size",
            Kind::Malformed => {
                "rockpack refuses archives it cannot pack safely; fix the build job that produced this artifact"
            }
            Kind::Write => "check that the destination exists, is writable and has space",
            Kind::Remote => {
                "the server refused the request; check the bucket or URL, the endpoint (--endpoint-url) and what the credentials may do"
            }
            _ => return None,
        })
    }
}

/// An error that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The request selects nothing, or something the run does not have (exit 3).
    #[error("{0}")]
    Selection(String),
    /// A problem inside one artifact: malformed, hostile, too large, or its
    /// bytes failed verification or could not be fetched (exit 1).
    #[error("{0}")]
    Artifact(ArtifactError),
    /// Two artifacts disagree about a path (exit 1).
    #[error("{0}")]
    Conflict(String),
    /// Reading the source or writing the sink failed (exit 1).
    #[error("{context}: {source}")]
    Io {
        /// [`Kind::Read`] or [`Kind::Write`].
        kind: Kind,
        /// What was being done, and to what.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else that stops a run: a remote request refused, a
    /// transfer given up, a signal, a thread that failed (exit 1).
    #[error("{message}")]
    Failed {
        /// What kind of failure.
        kind: Kind,
        /// The message, as the user sees it.
        message: String,
    },
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Usage(_) => Kind::Usage,
            Error::Selection(_) => Kind::Selection,
            Error::Artifact(a) => a.kind,
            Error::Conflict(_) => Kind::Conflict,
            Error::Io { kind, .. } | Error::Failed { kind, .. } => *kind,
        }
    }

    /// The process exit code: 2 for usage, 3 for selection, else 1.
    pub fn exit_code(&self) -> i32 {
        match self.kind() {
            Kind::Usage => 2,
            Kind::Selection => 3,
            _ => 1,
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<&'static str> {
        self.kind().hint()
    }

    /// A failed read of a local file or directory.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            kind: Kind::Read,
            context: context.into(),
            source,
        }
    }

    /// A failed write to the destination.
    pub fn write(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            kind: Kind::Write,
            context: context.into(),
            source,
        }
    }

    /// Any other failure of `kind`.
    pub fn failed(kind: Kind, message: impl Into<String>) -> Self {
        Error::Failed {
            kind,
            message: message.into(),
        }
    }

    /// One of rockpack's own threads stopped unexpectedly.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::failed(Kind::Internal, message)
    }

    /// A malformed or hostile artifact, optionally at one member.
    pub fn artifact(artifact: &str, member: Option<&[u8]>, message: impl Into<String>) -> Self {
        Error::artifact_kind(Kind::Malformed, artifact, member, message)
    }

    /// A problem of `kind` with one artifact, optionally at one member.
    pub fn artifact_kind(
        kind: Kind,
        artifact: &str,
        member: Option<&[u8]>,
        message: impl Into<String>,
    ) -> Self {
        Error::Artifact(ArtifactError {
            kind,
            artifact: artifact.to_string(),
            member: member.map(|m| String::from_utf8_lossy(m).into_owned()),
            message: message.into(),
        })
    }
}

/// A problem inside one artifact, optionally at one member.
#[derive(Debug)]
pub struct ArtifactError {
    /// What kind of problem ([`Kind::Malformed`] unless the bytes failed
    /// on their way: a digest mismatch, a changed object, a download given
    /// up, or too large).
    pub kind: Kind,
    /// The artifact's file name.
    pub artifact: String,
    /// The member's path inside the archive, when there is one.
    pub member: Option<String>,
    /// What is wrong.
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

/// An I/O error raised below the decoder (a download that gave up, a digest
/// mismatch, an object that changed, a stream over its size limit), with its
/// kind: decoders and the tar reader pass it through unchanged, so it is
/// neither mistaken for a corrupt archive nor loses its kind on the way.
#[derive(Debug)]
pub struct SourceFailure {
    /// What kind of failure.
    pub kind: Kind,
    /// The message, as the user sees it.
    pub message: String,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceFailure {}

impl SourceFailure {
    /// An `io::Error` carrying a failure of `kind`.
    pub fn io(kind: Kind, message: impl Into<String>) -> std::io::Error {
        std::io::Error::other(SourceFailure {
            kind,
            message: message.into(),
        })
    }

    /// The kind of the source failure inside `e`, if it is one.
    pub fn kind_of(e: &std::io::Error) -> Option<Kind> {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<SourceFailure>())
            .map(|f| f.kind)
    }

    /// Whether `e` is a source failure.
    pub fn is(e: &std::io::Error) -> bool {
        SourceFailure::kind_of(e).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hints follow the kind, whatever the message says.
    #[test]
    fn hints_follow_the_kind() {
        let e = Error::artifact_kind(Kind::DigestMismatch, "a.tar.zst", None, "reworded");
        assert!(e.hint().unwrap().contains(".sha256sum"));
        assert_eq!(e.exit_code(), 1);
        let e = Error::artifact("a.tar.zst", Some(b"x"), "sha256 mismatch in a name");
        assert!(e.hint().unwrap().contains("refuses archives"));
        let io = SourceFailure::io(Kind::GaveUp, "giving up after 6 tries");
        assert_eq!(SourceFailure::kind_of(&io), Some(Kind::GaveUp));
        assert!(!SourceFailure::is(&std::io::Error::other("plain")));
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Selection("x".into()).exit_code(), 3);
        let w = Error::write("writing out", std::io::Error::other("disk full"));
        assert!(w.hint().unwrap().contains("writable"));
        assert!(Error::io("reading x", std::io::Error::other("gone"))
            .hint()
            .is_none());
    }
}
