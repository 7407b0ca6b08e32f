//! The one error type of every transport: the core's error, plus what only a driver can hit.

use std::path::PathBuf;

/// Everything an operation or an upload run by a transport can fail with. Both transports
/// return this type, so a caller handles failures the same way whichever it uses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core's error: input refused, Box's answer, auth, retries run out, the source changed,
    /// a cancel. Transport failures (connect, timeouts, broken connections) reach the caller
    /// here, as [`box_upload_core::Error::Transport`], once the core has stopped retrying them.
    #[error(transparent)]
    Core(#[from] box_upload_core::Error),
    /// The client is not configured well enough to build (no token source, a bad URL, ...).
    #[error("client configuration: {0}")]
    Config(String),
    /// The transport's TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The source could not be opened or inspected.
    #[error("cannot open source {path:?}: {source}")]
    SourceOpen {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file could not be read or written.
    #[error("checkpoint file {path:?}: {source}")]
    Checkpoint {
        /// The checkpoint path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another run (in this process or another) holds the checkpoint: two runs of one checkpoint
    /// would both send parts. Nothing was sent.
    #[error("checkpoint file {path:?} is in use by another upload (its lock {lock:?} is held); nothing was sent")]
    CheckpointInUse {
        /// The checkpoint path.
        path: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
    },
    /// The checkpoint file is not a checkpoint.
    #[error("checkpoint file {path:?} is not valid: {detail}")]
    CheckpointFormat {
        /// The checkpoint path.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The run was not over within its [`UploadOptions::deadline`](crate::UploadOptions::deadline);
    /// it was stopped (the session aborted unless it was to be kept on cancel).
    #[error("the upload did not finish within its deadline of {deadline:?}; it was stopped")]
    DeadlineExceeded {
        /// The deadline set.
        deadline: std::time::Duration,
    },
    /// A worker of the driver failed (panicked), or the machine stopped without a result: a bug.
    #[error("internal driver error: {0}")]
    Internal(String),
}

impl Error {
    /// The core's error, if this is one.
    #[must_use]
    pub fn core(&self) -> Option<&box_upload_core::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }

    /// Box's error code (e.g. `item_name_in_use`), when Box gave one.
    #[must_use]
    pub fn box_code(&self) -> Option<&str> {
        self.core().and_then(box_upload_core::Error::box_code)
    }

    /// Whether the run ended because it was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Core(box_upload_core::Error::Cancelled))
    }
}

impl From<box_upload_core::InputError> for Error {
    fn from(e: box_upload_core::InputError) -> Self {
        Error::Core(e.into())
    }
}

impl From<box_upload_core::SourceError> for Error {
    fn from(e: box_upload_core::SourceError) -> Self {
        Error::Core(e.into())
    }
}
