//! The driver loop: one short loop around a [`Machine`], in the order the core documents.
//! Requests run as tasks on the pooled client, reads (with both SHA-1 passes over each part) on a
//! blocking thread one at a time, and the loop waits for whichever finishes first or for the
//! machine's deadline.

use crate::source::{OpenSource, ReadDone};
use crate::transport::Transport;
use crate::Error;
use box_upload_core::{
    BigUpload, Checkpoint, Event, Machine, PartData, Progress, ReadId, ReadRequest, RequestId, SourceError, Transmit,
    TransportError, TransportErrorKind,
};
use bytes::Bytes;
use http::Response;
use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the loop can ask of a machine beyond [`Machine`].
pub(crate) trait Driven: Machine {
    /// The checkpoint to save, if the machine has one.
    fn checkpoint(&self) -> Option<Checkpoint> {
        None
    }

    /// Stops the machine; `false` when it cannot wind down itself (the run then ends at once).
    fn cancel(&mut self, keep_session: bool) -> bool {
        let _ = keep_session;
        false
    }
}

impl Driven for BigUpload {
    fn checkpoint(&self) -> Option<Checkpoint> {
        BigUpload::checkpoint(self)
    }

    fn cancel(&mut self, keep_session: bool) -> bool {
        BigUpload::cancel(self, keep_session);
        true
    }
}

/// Any machine, driven with no extras.
pub(crate) struct Plain<'a, M>(pub(crate) &'a mut M);

impl<M: Machine> Machine for Plain<'_, M> {
    type Output = M::Output;

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.0.poll_transmit(now)
    }
    fn poll_read(&mut self) -> Option<ReadRequest> {
        self.0.poll_read()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.0.poll_event()
    }
    fn poll_output(&mut self) -> Option<Result<M::Output, box_upload_core::Error>> {
        self.0.poll_output()
    }
    fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant) {
        self.0.handle_response(id, response, now);
    }
    fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        self.0.handle_transport_error(id, error, now);
    }
    fn handle_read(&mut self, id: ReadId, data: Result<PartData, SourceError>, now: Instant) {
        self.0.handle_read(id, data, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }

    fn part_builder(&mut self, read: &ReadRequest, buf: Vec<u8>) -> box_upload_core::PartBuilder {
        self.0.part_builder(read, buf)
    }
}

impl<M: Machine> Driven for Plain<'_, M> {}

/// The caller's side of a run.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    pub(crate) checkpoint_path: Option<PathBuf>,
    pub(crate) remove_checkpoint_on_success: bool,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) keep_session_on_cancel: bool,
}

enum Done {
    Answer(RequestId, Result<Response<Bytes>, TransportError>),
    Read(ReadDone),
}

#[derive(Clone, Copy)]
enum Pending {
    Request(RequestId),
    Read(ReadId),
}

/// Runs `machine` to its output. Dropping the future aborts every request and read task.
pub(crate) async fn drive<M: Driven>(
    transport: &Transport,
    machine: &mut M,
    mut source: Option<OpenSource>,
    hooks: &Hooks,
) -> Result<M::Output, Error> {
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut pending: HashMap<tokio::task::Id, Pending> = HashMap::new();
    let mut reads: VecDeque<ReadRequest> = VecDeque::new();
    let mut cancelled = false;
    let mut read_out = false;
    let mut deferred: Option<Error> = None;
    let mut idle_passes = 0u32;
    let cancel = hooks.cancel.clone();
    loop {
        // 1. Events, then the output.
        let mut checkpoint_due = false;
        while let Some(event) = machine.poll_event() {
            checkpoint_due |= observe(&event, hooks);
        }
        if checkpoint_due && deferred.is_none() {
            if let (Some(path), Some(checkpoint)) = (&hooks.checkpoint_path, machine.checkpoint()) {
                if let Err(e) = save_checkpoint(path, &checkpoint).await {
                    tracing::warn!(error = %e, "saving the checkpoint failed; stopping the upload");
                    deferred = Some(e);
                    if !machine.cancel(false) {
                        return Err(deferred.unwrap_or_else(|| Error::Internal("checkpoint".into())));
                    }
                }
            }
        }
        if let Some(output) = machine.poll_output() {
            if let Some(e) = deferred {
                return Err(e);
            }
            if output.is_ok() && hooks.remove_checkpoint_on_success {
                if let Some(path) = &hooks.checkpoint_path {
                    let path = path.clone();
                    // A committed session cannot be resumed: the checkpoint is of no more use.
                    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
                }
            }
            return output.map_err(Error::from);
        }

        // 2. Reads, one at a time and in order, whatever the source: the builder for each is taken
        //    once the previous read is back, so it carries the whole-file hash on and both SHA-1
        //    passes run on each chunk while it is in cache. One reading thread keeps up with the
        //    network; parts in flight still overlap on the wire.
        while let Some(read) = machine.poll_read() {
            reads.push_back(read);
        }
        while let Some(&read) = reads.front() {
            match source.as_mut() {
                None => {
                    reads.pop_front();
                    let e = SourceError::Io("this run has no source to read".into());
                    machine.handle_read(read.id, Err(e), Instant::now());
                }
                Some(_) if read_out => break,
                Some(s) => {
                    reads.pop_front();
                    read_out = true;
                    let part = machine.part_builder(&read, Vec::new());
                    let task = s.read(read, part);
                    let handle = tasks.spawn(async move { Done::Read(task.await) });
                    pending.insert(handle.id(), Pending::Read(read.id));
                }
            }
        }

        // 3. Requests.
        let now = Instant::now();
        while let Some(transmit) = machine.poll_transmit(now) {
            let id = transmit.id;
            let transport = transport.clone();
            let handle = tasks.spawn(async move { Done::Answer(id, transport.send(transmit).await) });
            pending.insert(handle.id(), Pending::Request(id));
        }

        // 4. Wait for an answer, a read, the deadline or a cancel.
        let deadline = machine.poll_timeout();
        let now = Instant::now();
        if let Some(at) = deadline {
            // The clock first: a timer may say "pending" for a deadline already passed.
            if at <= now {
                machine.handle_timeout(now);
                continue;
            }
        }
        if tasks.is_empty() && deadline.is_none() {
            // Sending may have finished the machine; one more pass sees its output.
            idle_passes += 1;
            if idle_passes > 2 {
                return Err(Error::Internal("the machine has nothing in flight and no deadline, but no output".into()));
            }
            continue;
        }
        idle_passes = 0;
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let cancelled_now = async {
            match &cancel {
                Some(token) if !cancelled => token.cancelled().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancelled_now => {
                cancelled = true;
                tracing::info!(keep_session = hooks.keep_session_on_cancel, "cancelled");
                if !machine.cancel(hooks.keep_session_on_cancel) {
                    return Err(box_upload_core::Error::Cancelled.into());
                }
                // The machine wants nothing that is in flight now.
                tasks.abort_all();
            }
            Some(joined) = tasks.join_next_with_id() => {
                let now = Instant::now();
                match joined {
                    Ok((task, Done::Answer(id, result))) => {
                        pending.remove(&task);
                        match result {
                            Ok(response) => machine.handle_response(id, response, now),
                            Err(error) => machine.handle_transport_error(id, error, now),
                        }
                    }
                    Ok((task, Done::Read(done))) => {
                        pending.remove(&task);
                        read_out = false;
                        if let (Some((reader, position)), Some(s)) = (done.reader, source.as_mut()) {
                            s.give_back(reader, position);
                        }
                        machine.handle_read(done.id, done.data, now);
                    }
                    Err(e) => {
                        let what = pending.remove(&e.id());
                        if matches!(what, Some(Pending::Read(_))) {
                            read_out = false;
                        }
                        if e.is_cancelled() {
                            continue;
                        }
                        match what {
                            Some(Pending::Request(id)) => machine.handle_transport_error(
                                id,
                                TransportError::new(TransportErrorKind::Other, format!("the request task failed: {e}")),
                                now,
                            ),
                            Some(Pending::Read(id)) => {
                                // A stream lost in a failed task cannot be read any further.
                                if source.as_ref().is_some_and(OpenSource::busy) {
                                    source = None;
                                }
                                machine.handle_read(id, Err(SourceError::Io(format!("the read task failed: {e}"))), now);
                            }
                            None => return Err(Error::Internal(format!("an unknown task failed: {e}"))),
                        }
                    }
                }
            }
            () = sleep => machine.handle_timeout(Instant::now()),
        }
    }
}

/// Acts on one event; `true` when the checkpoint should be saved.
fn observe(event: &Event, hooks: &Hooks) -> bool {
    match event {
        Event::Progress(progress) => {
            if let Some(callback) = &hooks.progress {
                callback(*progress);
            }
        }
        Event::CheckpointUpdated => return true,
        Event::SessionCreated { session_id } => tracing::info!(session_id = %session_id, "upload session created"),
        Event::Retrying { kind, attempt, delay, reason } => {
            tracing::info!(kind = %kind, attempt, delay_ms = delay.as_millis() as u64, reason = %reason, "retrying");
        }
        Event::CommitPending { attempts, delay } => {
            tracing::debug!(attempts, delay_ms = delay.as_millis() as u64, "commit not ready (202)");
        }
        Event::PartAdopted { offset } => tracing::info!(offset, "adopted a stored part whose answer was lost"),
        Event::Aborted { confirmed } => tracing::info!(confirmed, "upload session aborted"),
        Event::Finished => tracing::debug!("finished"),
        _ => {}
    }
    false
}

async fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(checkpoint)
        .map_err(|e| Error::Checkpoint { path: path.to_owned(), source: std::io::Error::other(e) })?;
    let target = path.to_owned();
    tokio::task::spawn_blocking(move || write_atomic(&target, &bytes))
        .await
        .map_err(|e| Error::Internal(format!("the checkpoint task failed: {e}")))?
        .map_err(|source| Error::Checkpoint { path: path.to_owned(), source })
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`, so a
/// crash leaves either the old checkpoint or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the checkpoint path has no file name"))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        // The rename itself is durable only once the directory is synced.
        let _ = d.sync_all();
    }
    Ok(())
}
