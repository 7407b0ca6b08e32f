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
    /// A URL given to the builder is not usable.
    #[error("{url:?} is not a usable URL: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The builder was given no token source.
    #[error("no token source: call developer_token, client_credentials or token_source on the builder")]
    NoTokenSource,
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
    #[error("the source has {actual} bytes, the upload declares {declared}")]
    SourceSize {
        /// Bytes the source has.
        actual: u64,
        /// `file_size` of the request.
        declared: u64,
    },
    /// Reading or writing a checkpoint file failed.
    #[error("checkpoint file {path}: {source}")]
    CheckpointIo {
        /// The checkpoint file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A checkpoint file does not hold a checkpoint.
    #[error("checkpoint file {path} is not a valid checkpoint: {source}")]
    CheckpointFormat {
        /// The checkpoint file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The driver lost its worker threads or the machine waits for nothing; a bug, never expected.
    #[error("the driver stopped unexpectedly: {0}")]
    Driver(String),
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
