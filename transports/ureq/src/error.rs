//! The errors of the blocking transport: the core's, plus what only a driver can hit.

use std::io;
use std::path::PathBuf;

/// Everything a blocking call or upload can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core refused the input, Box answered an error, retries ran out, the source changed,
    /// the upload was cancelled, and so on.
    #[error(transparent)]
    Core(#[from] box_upload_core::Error),
    /// The client cannot be built as configured (no token source, a bad upload base URL, ...).
    #[error("client configuration: {0}")]
    Config(String),
    /// The source could not be opened or examined.
    #[error("cannot open the source {path}: {source}")]
    SourceOpen {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The source's length is not the size the upload declares.
    #[error("the source has {actual} bytes but the request declares {declared}")]
    SizeMismatch {
        /// `file_size` of the request.
        declared: u64,
        /// Bytes the source has.
        actual: u64,
    },
    /// Reading or writing a checkpoint file failed.
    #[error("checkpoint file {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A checkpoint file does not hold a checkpoint.
    #[error("checkpoint file {path} is not a valid checkpoint: {detail}")]
    CheckpointFormat {
        /// The checkpoint file.
        path: PathBuf,
        /// What the JSON parser said.
        detail: String,
    },
    /// The driver lost its worker threads or the machine waits for nothing; a bug, never expected.
    #[error("internal driver error: {0}")]
    Internal(String),
}

impl Error {
    /// The core's error, when it is one.
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

    /// Whether the upload ended because it was cancelled.
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
