//! How a run is watched and steered: progress, events, the checkpoint file, cancellation.

use box_upload_core::{Event, OnConflict, Progress};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;
type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;
type Waker = Arc<dyn Fn() + Send + Sync>;

/// Options of one big upload (or any run). The same in every transport.
///
/// Callbacks run on the driver's loop, between steps: keep them quick (they may cancel the
/// token). Cloning shares the callbacks and the token.
#[derive(Clone, Default)]
#[must_use]
pub struct UploadOptions {
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) events: Option<EventFn>,
    pub(crate) checkpoint_file: Option<PathBuf>,
    pub(crate) keep_checkpoint_on_success: bool,
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) keep_session_on_cancel: bool,
    pub(crate) deadline: Option<std::time::Duration>,
    pub(crate) on_conflict: OnConflict,
    pub(crate) no_timestamps: bool,
}

impl UploadOptions {
    /// No callback, no checkpoint file, no cancellation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `callback` whenever more bytes are read or acknowledged.
    pub fn on_progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// Calls `callback` with every event of the run (session created, retries, commit pending,
    /// parts adopted, aborts...), before the progress callback.
    pub fn on_event(mut self, callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.events = Some(Arc::new(callback));
        self
    }

    /// Keeps the checkpoint in `path` (JSON), replaced atomically whenever it changes (see
    /// [`save_checkpoint`](crate::save_checkpoint)) and removed after a successful commit unless
    /// [`keep_checkpoint_on_success`](Self::keep_checkpoint_on_success). A checkpoint that
    /// cannot be written stops the upload with [`Error::Checkpoint`](crate::Error::Checkpoint);
    /// the session is then aborted, unless [`keep_session_on_cancel`](Self::keep_session_on_cancel)
    /// (the last checkpoint written can still resume it).
    pub fn checkpoint_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_file = Some(path.into());
        self
    }

    /// Leaves the checkpoint file in place after a successful commit (default: remove it).
    pub fn keep_checkpoint_on_success(mut self, keep: bool) -> Self {
        self.keep_checkpoint_on_success = keep;
        self
    }

    /// Stops the run when `token` is cancelled; it then ends with
    /// [`box_upload_core::Error::Cancelled`].
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// On cancel, leaves the session open so the checkpoint can resume it (default: abort it).
    pub fn keep_session_on_cancel(mut self, keep: bool) -> Self {
        self.keep_session_on_cancel = keep;
        self
    }

    /// Ends the run with [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded) if it is
    /// not over within `deadline` of its start (default: no deadline; each request has its own,
    /// see [`Settings::request_deadline`](crate::Settings::request_deadline)). The session is then
    /// aborted, unless [`keep_session_on_cancel`](Self::keep_session_on_cancel).
    pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// What an upload does when its name is already in use in the folder (default
    /// [`OnConflict::Fail`]): see [`OnConflict`].
    pub fn on_conflict(mut self, policy: OnConflict) -> Self {
        self.on_conflict = policy;
        self
    }

    /// Whether the file's own times go to Box as `content_modified_at` (and, for a new file
    /// where the platform knows it, `content_created_at`): default `true`. Attributes the
    /// request sets itself are kept either way.
    pub fn timestamps(mut self, send: bool) -> Self {
        self.no_timestamps = !send;
        self
    }

    /// The checkpoint file, if one is kept.
    #[must_use]
    pub fn checkpoint_path(&self) -> Option<&std::path::Path> {
        self.checkpoint_file.as_deref()
    }

    pub(crate) fn default_checkpoint_file(&mut self, path: PathBuf) {
        if self.checkpoint_file.is_none() {
            self.checkpoint_file = Some(path);
        }
    }
}

impl fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadOptions")
            .field("progress", &self.progress.is_some())
            .field("events", &self.events.is_some())
            .field("checkpoint_file", &self.checkpoint_file)
            .field("keep_checkpoint_on_success", &self.keep_checkpoint_on_success)
            .field("cancel", &self.cancel)
            .field("keep_session_on_cancel", &self.keep_session_on_cancel)
            .field("deadline", &self.deadline)
            .field("on_conflict", &self.on_conflict)
            .field("timestamps", &!self.no_timestamps)
            .finish()
    }
}

/// Stops a run: cancel it from any thread (or from a callback) and the run stops reading and
/// sending, aborts its session (unless [`UploadOptions::keep_session_on_cancel`]) and fails with
/// [`box_upload_core::Error::Cancelled`]. A waiting driver is woken at once. Clones share the
/// token; once cancelled it stays cancelled.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<TokenState>);

#[derive(Default)]
struct TokenState {
    cancelled: AtomicBool,
    next: AtomicU64,
    wakers: Mutex<Vec<(u64, Waker)>>,
}

impl CancelToken {
    /// A token not cancelled.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every run watching the token to stop.
    pub fn cancel(&self) {
        if self.0.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let wakers: Vec<Waker> = self.lock().iter().map(|(_, w)| Arc::clone(w)).collect();
        for wake in wakers {
            wake();
        }
    }

    /// Whether stopping was asked.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Waker)>> {
        self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `wake` when the token is cancelled (at once if it already is), until the returned
    /// guard is dropped.
    pub(crate) fn watch(&self, wake: Waker) -> Watch {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, Arc::clone(&wake)));
        if self.is_cancelled() {
            wake();
        }
        Watch { token: self.clone(), id }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

/// Stops waking a run once it is over.
pub(crate) struct Watch {
    token: CancelToken,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.token.lock().retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_token_wakes_its_watchers_once_and_forgets_dropped_ones() {
        let token = CancelToken::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        let watch = token.watch(Arc::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        let other = token.clone();
        assert!(!other.is_cancelled());
        token.cancel();
        token.cancel();
        assert!(other.is_cancelled());
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        drop(watch);
        assert!(token.lock().is_empty());
        // A watch taken after the cancel wakes at once.
        let w = Arc::clone(&woken);
        let _late = token.watch(Arc::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(woken.load(Ordering::SeqCst), 2);
    }
}
