//! One run of a core machine, everything but the wire: the order of polls the core documents,
//! reads handed to the reading thread one at a time, events to the caller's callbacks,
//! checkpoints, cancellation, and the end of the run. A transport's loop is then a few lines:
//! send what [`Step::Send`] says, write what [`Step::Save`] says, wait as [`Step::Wait`] says
//! and hand every [`Completion`] back.

use crate::body::SourceReader;
use crate::checkpoint::{CheckpointLock, CheckpointWrite};
use crate::options::{UploadOptions, Watch};
use crate::reader::ReadingThread;
use crate::source::{BodySource, CommitCheck, OpenSource};
use crate::Error;
use box_upload_core::{
    Event, Machine, PartData, ReadId, ReadRequest, RequestId, RequestKind, SourceBody, SourceError, Transmit,
    TransportError,
};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Something finished that the run waits for. Answers come from the transport; reads and wake-ups
/// come through the [`Notify`] callback the run was made with.
#[derive(Debug)]
pub enum Completion {
    /// The answer to a request (body already bounded), or the transport's failure.
    Answer(RequestId, Result<http::Response<Bytes>, TransportError>),
    /// A read's bytes, or why they could not be read.
    Read(ReadId, Result<PartData, SourceError>),
    /// Nothing finished, but the run should look again (its cancel token fired).
    Wake,
}

/// How the reading thread and the cancel token reach the transport's loop: a callback that
/// queues a [`Completion`] where the loop waits (a channel's sender, typically).
pub type Notify = Arc<dyn Fn(Completion) + Send + Sync>;

/// What the transport does next.
#[derive(Debug)]
#[must_use]
// A step lives for one turn of the loop and is moved out at once: boxing would only add an
// allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Step<T> {
    /// Send this request; hand its answer back as [`Completion::Answer`].
    Send(Transmit),
    /// Write this checkpoint where blocking is allowed, then call [`Run::saved`].
    Save(CheckpointWrite),
    /// Wait for the next completion, or until the instant (then poll again).
    Wait(Option<Instant>),
    /// The run is over.
    Done(Result<T, Error>),
}

/// One run of `machine`, driven by a transport.
pub struct Run<'m, M: Machine> {
    machine: &'m mut M,
    options: UploadOptions,
    reader: Option<ReadingThread>,
    queued: VecDeque<ReadRequest>,
    read_out: bool,
    requests_out: usize,
    checkpoint_due: bool,
    saving: bool,
    failure: Option<Error>,
    cancelled: bool,
    /// Set when the run must end at once, with this error.
    abandoned: Option<Error>,
    idle_turns: u32,
    lock: Option<CheckpointLock>,
    commit_check: Option<CommitCheck>,
    /// What a direct upload's body is streamed from.
    body_source: Option<Arc<BodySource>>,
    /// When the whole run must be over ([`UploadOptions::deadline`]).
    deadline: Option<Instant>,
    _watch: Option<Watch>,
}

impl<'m, M: Machine> Run<'m, M> {
    /// A run of `machine`, reading from `source` when given (on a reading thread of its own),
    /// steered by `options`. With a checkpoint file, the run holds its lock (see
    /// [`Error::CheckpointInUse`]) until it ends. `notify` must queue what it is given where the transport's loop
    /// waits.
    pub fn new(
        machine: &'m mut M,
        source: Option<OpenSource>,
        options: UploadOptions,
        notify: Notify,
    ) -> Result<Self, Error> {
        // Before anything is read or sent: a second run of the same checkpoint is refused.
        let lock = options.checkpoint_file.as_deref().map(CheckpointLock::acquire).transpose()?;
        let commit_check = source.as_ref().and_then(OpenSource::commit_check);
        let body_source = source.as_ref().and_then(OpenSource::body_source).map(Arc::new);
        let options_deadline = options.deadline.map(|d| Instant::now() + d);
        let reader = source.map(|s| ReadingThread::spawn(s, Arc::clone(&notify))).transpose()?;
        let watch = options.cancel.as_ref().map(|token| {
            let notify = Arc::clone(&notify);
            token.watch(Arc::new(move || notify(Completion::Wake)))
        });
        Ok(Self {
            machine,
            options,
            reader,
            queued: VecDeque::new(),
            read_out: false,
            requests_out: 0,
            checkpoint_due: false,
            saving: false,
            failure: None,
            cancelled: false,
            abandoned: None,
            idle_turns: 0,
            lock,
            commit_check,
            body_source,
            deadline: options_deadline,
            _watch: watch,
        })
    }

    /// The next thing to do at `now`. Call again after acting on it.
    pub fn poll(&mut self, now: Instant) -> Step<M::Output> {
        loop {
            if let Some(e) = self.abandoned.take() {
                return Step::Done(Err(e));
            }
            // 1. Events, the checkpoint, then the output.
            while let Some(event) = self.machine.poll_event() {
                self.observe(&event);
            }
            if self.checkpoint_due && !self.saving && self.failure.is_none() {
                self.checkpoint_due = false;
                // Only with a file to write: a checkpoint lists every part held, so making one
                // after each acknowledgement would cost the run time quadratic in its parts.
                if let Some(path) = &self.options.checkpoint_file {
                    if let Some(checkpoint) = self.machine.checkpoint() {
                        self.saving = true;
                        return Step::Save(CheckpointWrite { path: path.clone(), checkpoint });
                    }
                }
            }
            if let Some(output) = self.machine.poll_output() {
                return Step::Done(self.finish(output));
            }

            // 2. A cancel, seen between steps.
            if !self.cancelled && self.options.cancel.as_ref().is_some_and(crate::CancelToken::is_cancelled) {
                self.cancelled = true;
                let keep = self.options.keep_session_on_cancel;
                tracing::info!(keep_session = keep, "cancelled");
                if !self.machine.cancel(keep) {
                    return Step::Done(Err(box_upload_core::Error::Cancelled.into()));
                }
                continue;
            }
            if !self.cancelled && self.deadline.is_some_and(|at| at <= now) {
                let deadline = self.options.deadline.unwrap_or_default();
                tracing::warn!(?deadline, "the upload's deadline passed; stopping it");
                self.stop(Error::DeadlineExceeded { deadline }, self.options.keep_session_on_cancel);
                continue;
            }

            // 3. Reads, one at a time and in order: the builder for each is taken once the
            //    previous read is back, so it carries the whole-file hash on.
            while let Some(read) = self.machine.poll_read() {
                self.queued.push_back(read);
            }
            if !self.read_out {
                if let Some(read) = self.queued.pop_front() {
                    match &self.reader {
                        Some(reader) => {
                            let part = self.machine.part_builder(&read, Vec::new());
                            if !reader.send(read, part) {
                                return Step::Done(Err(Error::Internal("the reading thread stopped".into())));
                            }
                            self.read_out = true;
                        }
                        None => {
                            let e = SourceError::Io("this run has no source to read".into());
                            self.machine.handle_read(read.id, Err(e), now);
                        }
                    }
                    continue;
                }
            }

            // 4. Requests.
            if let Some(mut transmit) = self.machine.poll_transmit(now) {
                let streamed = transmit.request.extensions().get::<SourceBody>().cloned();
                if transmit.kind == RequestKind::CommitSession || streamed.is_some() {
                    // Every read is done by now, the last check of the file with it: a change
                    // since (the last parts were still on the wire) must not be committed.
                    if let Some(Err(e)) = self.commit_check.as_ref().map(CommitCheck::check) {
                        tracing::warn!(error = %e, "the source changed before the commit; stopping the upload");
                        self.stop(box_upload_core::Error::from(e).into(), false);
                        continue;
                    }
                }
                if let Some(body) = streamed {
                    // The file's bytes go from the source to the wire, a chunk at a time.
                    let Some(source) = &self.body_source else {
                        let e = Error::Internal("a direct upload needs a file or bytes as its source".into());
                        self.stop(e, false);
                        continue;
                    };
                    transmit.request.extensions_mut().insert(SourceReader::new(Arc::clone(source), body));
                }
                self.requests_out += 1;
                return Step::Send(transmit);
            }

            // 5. The deadline, or wait.
            let deadline = self.machine.poll_timeout();
            if deadline.is_some_and(|at| at <= now) {
                self.machine.handle_timeout(now);
                continue;
            }
            if self.requests_out == 0 && !self.read_out && !self.saving && deadline.is_none() {
                // Nothing out and nothing to wait for: nudge the machine, then give up.
                self.idle_turns += 1;
                if self.idle_turns > 2 {
                    return Step::Done(Err(Error::Internal(
                        "the machine has nothing in flight and no deadline, but no output".into(),
                    )));
                }
                self.machine.handle_timeout(now);
                continue;
            }
            self.idle_turns = 0;
            // Wake for the run's own deadline too, until it has fired.
            let own = self.deadline.filter(|_| !self.cancelled);
            return Step::Wait(match (deadline, own) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            });
        }
    }

    /// Hands back what finished.
    pub fn complete(&mut self, completion: Completion, now: Instant) {
        match completion {
            Completion::Answer(id, result) => {
                self.requests_out = self.requests_out.saturating_sub(1);
                match result {
                    Ok(response) => self.machine.handle_response(id, response, now),
                    Err(error) => self.machine.handle_transport_error(id, error, now),
                }
            }
            Completion::Read(id, data) => {
                self.read_out = false;
                self.machine.handle_read(id, data, now);
            }
            Completion::Wake => {}
        }
    }

    /// The result of a [`Step::Save`]. A checkpoint that cannot be written stops the upload.
    pub fn saved(&mut self, result: Result<(), Error>) {
        self.saving = false;
        if let Err(e) = result {
            tracing::warn!(error = %e, "saving the checkpoint failed; stopping the upload");
            self.stop(e, self.options.keep_session_on_cancel);
        }
    }

    /// Stops the machine (its session aborted unless `keep_session`, or the request keeps it on
    /// failure); the run then ends with `error`.
    fn stop(&mut self, error: Error, keep_session: bool) {
        self.cancelled = true;
        if self.machine.cancel(keep_session) {
            self.failure = Some(error);
        } else {
            self.abandoned = Some(error);
        }
    }

    /// The run's result: a checkpoint failure outranks what the machine said after it.
    fn finish(&mut self, output: Result<M::Output, box_upload_core::Error>) -> Result<M::Output, Error> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let output = output.map_err(Error::from)?;
        if !self.options.keep_checkpoint_on_success {
            if let Some(path) = &self.options.checkpoint_file {
                // A committed session cannot be resumed: the checkpoint is of no more use.
                let _ = std::fs::remove_file(path);
                if let Some(lock) = self.lock.take() {
                    lock.remove();
                }
            }
        }
        Ok(output)
    }

    fn observe(&mut self, event: &Event) {
        if let Some(callback) = &self.options.events {
            callback(event);
        }
        match event {
            Event::Progress(progress) => {
                if let Some(callback) = &self.options.progress {
                    callback(*progress);
                }
            }
            Event::CheckpointUpdated => self.checkpoint_due = true,
            Event::SessionCreated { session_id } => {
                tracing::info!(session_id = %session_id, "upload session created");
                self.checkpoint_due = true;
            }
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
    }
}
