//! The blocking driver: the calling thread runs the machine; worker threads send requests over one
//! shared agent, and one more thread reads and hashes the source, one read at a time and in order
//! (so each read carries the whole-file hash on; see `Machine::part_builder`).
//!
//! Each turn the loop drains events, checks for the output, hands every read and request the
//! machine offers to the workers, then blocks on the completion channel until an answer, a read,
//! or the machine's next deadline. The machine bounds parts in flight, so the workers never hold
//! more than that many parts (plus the one being read).

use crate::source::Source;
use crate::transport::{self, Agent};
use crate::Error;
use box_upload_core::{
    Event, Machine, PartBuffers, PartBuilder, PartData, ReadId, ReadRequest, RequestId, SourceError, Transmit,
};
use box_upload_core::{TransportError, TransportErrorKind};
use bytes::Bytes;
use http::Response;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the caller adds to a run: seeing events, and stopping it.
pub(crate) trait Hooks<M> {
    /// An event the machine emitted.
    fn on_event(&mut self, machine: &mut M, event: Event);
    /// Called once per turn after the events, before the output is looked at (save state).
    fn flush(&mut self, machine: &mut M);
    /// Called once per turn while there is no output: may cancel the machine.
    fn control(&mut self, machine: &mut M);
    /// The longest the loop may block without calling [`control`](Self::control).
    fn tick(&self) -> Option<Duration>;
}

/// No hooks: a plain run.
pub(crate) struct NoHooks;

impl<M> Hooks<M> for NoHooks {
    fn on_event(&mut self, _machine: &mut M, _event: Event) {}
    fn flush(&mut self, _machine: &mut M) {}
    fn control(&mut self, _machine: &mut M) {}
    fn tick(&self) -> Option<Duration> {
        None
    }
}

enum Done {
    Answer(RequestId, Result<Response<Bytes>, TransportError>),
    Read(ReadId, Result<PartData, SourceError>),
}

/// Runs `machine` to its output with `http_workers` request threads and, when a source is given,
/// a reader thread. Returns once every worker has stopped, so nothing is left on the wire.
pub(crate) fn run<M: Machine>(
    agent: &Agent,
    http_workers: usize,
    machine: &mut M,
    source: Option<&mut Source>,
    hooks: &mut dyn Hooks<M>,
) -> Result<M::Output, Error> {
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let (job_tx, job_rx) = mpsc::channel::<Transmit>();
    let (read_tx, read_rx) = mpsc::channel::<(ReadRequest, PartBuilder)>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let has_source = source.is_some();
    // Workers log into the caller's subscriber, under the caller's span.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let parent = tracing::Span::current();
    thread::scope(|scope| {
        for i in 0..http_workers.max(1) {
            let (jobs, done) = (Arc::clone(&job_rx), done_tx.clone());
            let (dispatch, parent) = (dispatch.clone(), parent.clone());
            thread::Builder::new()
                .name(format!("box-upload-http-{i}"))
                .spawn_scoped(scope, move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let _in = parent.enter();
                        http_worker(agent, &jobs, &done);
                    });
                })
                .map_err(|e| Error::Internal(format!("cannot start a worker thread: {e}")))?;
        }
        if let Some(source) = source {
            let done = done_tx.clone();
            thread::Builder::new()
                .name("box-upload-read".into())
                .spawn_scoped(scope, move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let _in = parent.enter();
                        // Part buffers are reused: parts in flight, the one being read, one spare.
                        read_worker(source, &PartBuffers::new(http_workers + 2), read_rx, &done);
                    });
                })
                .map_err(|e| Error::Internal(format!("cannot start the reader thread: {e}")))?;
        } else {
            drop(read_rx);
        }
        drop(done_tx);
        let result = turn_loop(machine, &job_tx, has_source.then_some(&read_tx), &done_rx, hooks);
        // Closing the job channels lets the workers finish what they hold and stop; the scope
        // waits for them.
        drop(job_tx);
        drop(read_tx);
        result
    })
}

fn turn_loop<M: Machine>(
    machine: &mut M,
    jobs: &Sender<Transmit>,
    reads: Option<&Sender<(ReadRequest, PartBuilder)>>,
    done: &Receiver<Done>,
    hooks: &mut dyn Hooks<M>,
) -> Result<M::Output, Error> {
    let mut outstanding = 0usize;
    let mut idle_turns = 0u32;
    let mut queued: VecDeque<ReadRequest> = VecDeque::new();
    let mut read_out = false;
    loop {
        while let Some(event) = machine.poll_event() {
            hooks.on_event(machine, event);
        }
        hooks.flush(machine);
        if let Some(output) = machine.poll_output() {
            return output.map_err(Error::from);
        }
        hooks.control(machine);

        let mut sent = false;
        while let Some(read) = machine.poll_read() {
            queued.push_back(read);
        }
        // One read at a time: the builder for the next is taken once the previous is back.
        while !read_out {
            let Some(read) = queued.pop_front() else { break };
            sent = true;
            match reads {
                Some(tx) if tx.send((read, machine.part_builder(&read, Vec::new()))).is_ok() => {
                    outstanding += 1;
                    read_out = true;
                }
                Some(_) => return Err(Error::Internal("the reader thread stopped".into())),
                None => machine.handle_read(
                    read.id,
                    Err(SourceError::Io("this run has no source to read".into())),
                    Instant::now(),
                ),
            }
        }
        let now = Instant::now();
        while let Some(transmit) = machine.poll_transmit(now) {
            sent = true;
            jobs.send(transmit).map_err(|_| Error::Internal("the request threads stopped".into()))?;
            outstanding += 1;
        }
        if sent {
            // Sending may have finished the machine (e.g. refused input): look again first.
            continue;
        }

        let now = Instant::now();
        let deadline = machine.poll_timeout();
        if deadline.is_some_and(|d| d <= now) {
            machine.handle_timeout(now);
            continue;
        }
        let wait = match (deadline.map(|d| d - now), hooks.tick()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if outstanding == 0 && deadline.is_none() {
            // Nothing in flight and nothing to wait for: nudge the machine once, then give up.
            idle_turns += 1;
            if idle_turns > 2 {
                return Err(Error::Internal("the machine waits for nothing and has no output".into()));
            }
            machine.handle_timeout(now);
            if let Some(tick) = hooks.tick() {
                thread::sleep(tick);
            }
            continue;
        }
        idle_turns = 0;
        let message = match wait {
            Some(wait) => match done.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Internal("the workers stopped".into())),
            },
            None => Some(done.recv().map_err(|_| Error::Internal("the workers stopped".into()))?),
        };
        let now = Instant::now();
        match message {
            Some(Done::Answer(id, Ok(response))) => {
                outstanding -= 1;
                machine.handle_response(id, response, now);
            }
            Some(Done::Answer(id, Err(error))) => {
                outstanding -= 1;
                machine.handle_transport_error(id, error, now);
            }
            Some(Done::Read(id, data)) => {
                outstanding -= 1;
                read_out = false;
                machine.handle_read(id, data, now);
            }
            None => machine.handle_timeout(now),
        }
    }
}

fn http_worker(agent: &Agent, jobs: &Mutex<Receiver<Transmit>>, done: &Sender<Done>) {
    loop {
        let job = {
            let guard = jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.recv()
        };
        let Ok(transmit) = job else { return };
        let id = transmit.id;
        let result =
            catch_unwind(AssertUnwindSafe(|| transport::send(&agent.agent, transmit, agent.expect_continue_from)))
                .unwrap_or_else(|_| Err(TransportError::new(TransportErrorKind::Other, "the HTTP client panicked")));
        if done.send(Done::Answer(id, result)).is_err() {
            return;
        }
    }
}

fn read_worker(
    source: &mut Source,
    pool: &PartBuffers,
    reads: Receiver<(ReadRequest, PartBuilder)>,
    done: &Sender<Done>,
) {
    while let Ok((read, part)) = reads.recv() {
        let result = catch_unwind(AssertUnwindSafe(|| source.read_part(read.offset, read.len, part, pool)))
            .unwrap_or_else(|_| Err(SourceError::Io("reading the source panicked".into())));
        if done.send(Done::Read(read.id, result)).is_err() {
            return;
        }
    }
}
