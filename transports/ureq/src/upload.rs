//! What a big upload adds to a plain run: a progress callback, a checkpoint file written on every
//! change, and cancellation by a flag.

use crate::driver::Hooks;
use crate::Error;
use box_upload_core::{BigUpload, Checkpoint, Event, Progress};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the driver looks at a [`CancelFlag`] while it waits.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// A flag that stops an upload: set it from any thread (or from the progress callback) and the
/// upload stops reading and sending, aborts its session (unless
/// [`UploadOptions::keep_session_on_cancel`]) and fails with
/// [`box_upload_core::Error::Cancelled`]. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag not set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the upload to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether stopping was asked.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The shared boolean behind the flag.
    #[must_use]
    pub fn as_atomic(&self) -> &Arc<AtomicBool> {
        &self.0
    }
}

impl From<Arc<AtomicBool>> for CancelFlag {
    fn from(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }
}

type ProgressFn = Box<dyn FnMut(Progress) + Send>;
type EventFn = Box<dyn FnMut(&Event) + Send>;

/// How [`Client::upload_with`](crate::Client::upload_with) and
/// [`Client::resume_with`](crate::Client::resume_with) report and stop.
#[derive(Default)]
pub struct UploadOptions {
    progress: Option<ProgressFn>,
    events: Option<EventFn>,
    checkpoint_file: Option<PathBuf>,
    keep_checkpoint_on_success: bool,
    cancel: Option<CancelFlag>,
    keep_session_on_cancel: bool,
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
            .finish()
    }
}

impl UploadOptions {
    /// No callback, no checkpoint file, no cancellation.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` on the driving thread whenever more bytes are read or acknowledged.
    #[must_use]
    pub fn on_progress(mut self, f: impl FnMut(Progress) + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Calls `f` on the driving thread with every event of the upload (retries, commit pending,
    /// aborts...), before the progress callback.
    #[must_use]
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.events = Some(Box::new(f));
        self
    }

    /// Keeps the checkpoint in `path` (JSON), rewritten atomically (a temporary file in the same
    /// directory, fsync, rename) whenever it changes, and removed once the file is committed. A
    /// failure to write it stops the upload with [`Error::Checkpoint`].
    #[must_use]
    pub fn checkpoint_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_file = Some(path.into());
        self
    }

    /// Leaves the checkpoint file in place after a successful commit (default: remove it).
    #[must_use]
    pub fn keep_checkpoint_on_success(mut self, keep: bool) -> Self {
        self.keep_checkpoint_on_success = keep;
        self
    }

    pub(crate) fn default_checkpoint_file(&mut self, path: PathBuf) {
        if self.checkpoint_file.is_none() {
            self.checkpoint_file = Some(path);
        }
    }

    /// Stops the upload when `flag` is set.
    #[must_use]
    pub fn cancel_flag(mut self, flag: CancelFlag) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// On cancel, leaves the session open so the checkpoint can resume it (default: abort it).
    #[must_use]
    pub fn keep_session_on_cancel(mut self, keep: bool) -> Self {
        self.keep_session_on_cancel = keep;
        self
    }
}

/// Reads a checkpoint saved by [`UploadOptions::checkpoint_file`].
pub fn load_checkpoint(path: impl AsRef<Path>) -> Result<Checkpoint, Error> {
    let path = path.as_ref();
    let text = fs::read(path).map_err(|source| Error::Checkpoint { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::CheckpointFormat { path: path.to_path_buf(), detail: e.to_string() })
}

/// Writes `checkpoint` to `path` atomically: a temporary file beside it, fsync, rename, and an
/// fsync of the directory where the platform allows it.
pub fn save_checkpoint(path: impl AsRef<Path>, checkpoint: &Checkpoint) -> Result<(), Error> {
    let path = path.as_ref();
    write_atomically(path, checkpoint).map_err(|source| Error::Checkpoint { path: path.to_path_buf(), source })
}

fn write_atomically(path: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(checkpoint).map_err(io::Error::other)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return written;
    }
    #[cfg(unix)]
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The hooks of a big upload.
pub(crate) struct UploadHooks {
    options: UploadOptions,
    checkpoint_dirty: bool,
    cancelled: bool,
    /// A checkpoint write that failed; the upload was cancelled because of it.
    pub(crate) checkpoint_error: Option<Error>,
}

impl UploadHooks {
    pub(crate) fn new(options: UploadOptions) -> Self {
        Self { options, checkpoint_dirty: false, cancelled: false, checkpoint_error: None }
    }

    /// After a successful commit the checkpoint is of no use: remove it.
    pub(crate) fn finished_ok(&self) {
        if let (Some(path), false) = (&self.options.checkpoint_file, self.options.keep_checkpoint_on_success) {
            let _ = fs::remove_file(path);
        }
    }
}

impl Hooks<BigUpload> for UploadHooks {
    fn on_event(&mut self, _machine: &mut BigUpload, event: Event) {
        if let Some(f) = &mut self.options.events {
            f(&event);
        }
        match event {
            Event::Progress(p) => {
                if let Some(f) = &mut self.options.progress {
                    f(p);
                }
            }
            Event::CheckpointUpdated | Event::SessionCreated { .. } => self.checkpoint_dirty = true,
            _ => {}
        }
    }

    fn flush(&mut self, machine: &mut BigUpload) {
        if std::mem::take(&mut self.checkpoint_dirty) && self.checkpoint_error.is_none() {
            if let (Some(path), Some(checkpoint)) = (&self.options.checkpoint_file, machine.checkpoint()) {
                if let Err(e) = save_checkpoint(path, &checkpoint) {
                    tracing::warn!(error = %e, "checkpoint write failed; stopping the upload");
                    self.checkpoint_error = Some(e);
                    self.cancelled = true;
                    machine.cancel(self.options.keep_session_on_cancel);
                }
            }
        }
    }

    fn control(&mut self, machine: &mut BigUpload) {
        if !self.cancelled && self.options.cancel.as_ref().is_some_and(CancelFlag::is_cancelled) {
            self.cancelled = true;
            tracing::debug!(keep_session = self.options.keep_session_on_cancel, "upload cancelled");
            machine.cancel(self.options.keep_session_on_cancel);
        }
    }

    fn tick(&self) -> Option<Duration> {
        (self.options.cancel.is_some() && !self.cancelled).then_some(CANCEL_POLL)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use box_upload_core::models::{UploadPart, UploadSession};
    use box_upload_core::{UploadTarget, CHECKPOINT_VERSION};

    fn checkpoint(parts: usize) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            session: UploadSession { id: "ABC".into(), part_size: Some(8), ..Default::default() },
            target: UploadTarget::NewFile { folder_id: "0".into(), file_name: "a.bin".into() },
            file_size: 20_000_000,
            part_size: 8,
            source_fingerprint: Some("file:/x:size=1:mtime=2".into()),
            if_match: None,
            if_none_match: None,
            commit_attributes: None,
            parts: (0..parts)
                .map(|i| UploadPart { part_id: format!("P{i}"), offset: i as u64 * 8, size: 8, sha1: None })
                .collect(),
        }
    }

    #[test]
    fn checkpoints_are_replaced_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.json");
        save_checkpoint(&path, &checkpoint(1)).unwrap();
        save_checkpoint(&path, &checkpoint(3)).unwrap();
        assert_eq!(load_checkpoint(&path).unwrap(), checkpoint(3));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("upload.json")], "no temporary file left");
    }

    #[test]
    fn a_bad_checkpoint_file_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load_checkpoint(&path), Err(Error::CheckpointFormat { .. })));
        assert!(matches!(load_checkpoint(dir.path().join("missing.json")), Err(Error::Checkpoint { .. })));
        assert!(matches!(
            save_checkpoint(dir.path().join("no/such/dir/x.json"), &checkpoint(0)),
            Err(Error::Checkpoint { .. })
        ));
    }

    #[test]
    fn the_cancel_flag_is_shared_by_clones() {
        let flag = CancelFlag::new();
        let other = flag.clone();
        assert!(!other.is_cancelled());
        flag.cancel();
        assert!(other.is_cancelled());
        let atomic = Arc::new(AtomicBool::new(true));
        assert!(CancelFlag::from(atomic).is_cancelled());
    }
}
