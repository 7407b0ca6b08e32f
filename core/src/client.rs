//! The entry point: policy and token source, shared by every machine it starts.

use crate::auth::{SharedTokenSource, TokenSource};
use crate::call::Call;
use crate::error::InputError;
use crate::operations::Operation;
use crate::upload::{BigUpload, Checkpoint, ResumeOptions, UploadRequest};
use crate::Config;
use std::sync::Arc;

/// The request policy and the token source. Cheap to clone; clones share the token cache.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) config: Arc<Config>,
    pub(crate) auth: SharedTokenSource,
}

impl Client {
    /// A client with `config` and a token `source`.
    pub fn new(config: Config, source: impl TokenSource + 'static) -> Self {
        Self { config: Arc::new(config), auth: SharedTokenSource::new(source) }
    }

    /// A client sharing an existing token source.
    pub fn with_shared_source(config: Config, source: SharedTokenSource) -> Self {
        Self { config: Arc::new(config), auth: source }
    }

    /// The policy in use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The token source.
    #[must_use]
    pub fn token_source(&self) -> &SharedTokenSource {
        &self.auth
    }

    /// Runs one operation. Input errors come out of the machine's `poll_output` at once.
    pub fn call<O: Operation>(&self, operation: O) -> Call<O> {
        Call::new(self, operation)
    }

    /// The whole big upload: session, parts, commit. Input is checked before any request.
    pub fn big_upload(&self, request: UploadRequest) -> Result<BigUpload, InputError> {
        BigUpload::start(self, request)
    }

    /// Continues an upload from a checkpoint.
    pub fn resume(&self, checkpoint: Checkpoint, options: ResumeOptions) -> Result<BigUpload, InputError> {
        BigUpload::resume(self, checkpoint, options)
    }
}
