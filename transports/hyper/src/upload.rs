//! How a big upload is watched and steered: progress, checkpoint file, cancellation.

use crate::driver::Hooks;
use box_upload_core::Progress;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Options of one big upload run. Dropping the upload's future also stops it (every request and
/// read in flight is aborted), but leaves the session open on Box: cancel with a token to have
/// it aborted, or kept on purpose for a resume.
#[derive(Clone, Default)]
#[must_use]
pub struct UploadOptions {
    progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    pub(crate) checkpoint_path: Option<PathBuf>,
    keep_checkpoint: bool,
    cancel: Option<CancellationToken>,
    keep_session_on_cancel: bool,
}

impl UploadOptions {
    /// No progress callback, no checkpoint file, no cancel token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `callback` on the driver loop whenever parts are read or acknowledged; keep it
    /// quick (it may cancel the token or signal elsewhere).
    pub fn on_progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// Saves the checkpoint (JSON) to `path` whenever it changes: written to a temporary file in
    /// the same directory, synced, and renamed over `path`. Removed after a successful commit
    /// unless [`keep_checkpoint_on_success`](Self::keep_checkpoint_on_success).
    pub fn checkpoint_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_path = Some(path.into());
        self
    }

    /// Leaves the checkpoint file in place after a successful commit.
    pub fn keep_checkpoint_on_success(mut self, keep: bool) -> Self {
        self.keep_checkpoint = keep;
        self
    }

    /// Stops the upload when `token` is cancelled; the run then ends with
    /// [`box_upload_core::Error::Cancelled`].
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// On cancel, leaves the session open so the checkpoint can resume it (default: abort it).
    pub fn keep_session_on_cancel(mut self, keep: bool) -> Self {
        self.keep_session_on_cancel = keep;
        self
    }

    pub(crate) fn hooks(&self) -> Hooks {
        Hooks {
            progress: self.progress.clone(),
            checkpoint_path: self.checkpoint_path.clone(),
            remove_checkpoint_on_success: !self.keep_checkpoint,
            cancel: self.cancel.clone(),
            keep_session_on_cancel: self.keep_session_on_cancel,
        }
    }
}

impl fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadOptions")
            .field("progress", &self.progress.is_some())
            .field("checkpoint_path", &self.checkpoint_path)
            .field("keep_checkpoint", &self.keep_checkpoint)
            .field("cancel", &self.cancel.is_some())
            .field("keep_session_on_cancel", &self.keep_session_on_cancel)
            .finish()
    }
}
