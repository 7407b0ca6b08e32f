//! The blocking loop around a shared [`Run`]: the calling thread steps the run; worker threads
//! send requests over the shared agent, started as they are needed (at most `workers`); reads
//! come from the shared reading thread; the loop blocks on one completion channel until an
//! answer, a read, a cancel or the machine's next deadline.

use crate::transport::{self, Agent};
use crate::{Client, Error};
use box_upload_core::{Machine, Transmit, TransportError, TransportErrorKind, DEFAULT_PARTS_IN_FLIGHT};
use box_upload_driver::{Completion, Notify, OpenSource, Run, Step, UploadOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Runs `machine` to its output. When it returns, workers still sending a request the machine no
/// longer needs (after a cancel or a failure) finish it and stop on their own.
pub(crate) fn drive<M: Machine>(
    client: &Client,
    machine: &mut M,
    source: Option<OpenSource>,
    options: UploadOptions,
) -> Result<M::Output, Error> {
    let (tx, rx) = mpsc::channel::<Completion>();
    let done = tx.clone();
    let notify: Notify = Arc::new(move |c| {
        let _ = done.send(c);
    });
    let mut run = Run::new(machine, source, options, Arc::clone(&notify))?;
    // A worker per part in flight, one for the session's other requests, one spare.
    let workers = client.parts_in_flight.unwrap_or(DEFAULT_PARTS_IN_FLIGHT).saturating_add(2);
    let mut pool = Workers::new(client.wire.clone(), workers, notify);
    loop {
        match run.poll(Instant::now()) {
            Step::Send(transmit) => pool.send(transmit)?,
            Step::Save(write) => run.saved(write.write()),
            Step::Wait(deadline) => {
                let completion = match deadline {
                    Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(c) => Some(c),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return Err(stopped()),
                    },
                    None => Some(rx.recv().map_err(|_| stopped())?),
                };
                if let Some(completion) = completion {
                    if matches!(completion, Completion::Answer(..)) {
                        pool.busy = pool.busy.saturating_sub(1);
                    }
                    run.complete(completion, Instant::now());
                }
            }
            Step::Done(result) => {
                drop(tx);
                return result;
            }
        }
    }
}

fn stopped() -> Error {
    Error::Internal("the workers stopped".into())
}

/// Request threads, started on demand.
struct Workers {
    agent: Agent,
    max: usize,
    started: usize,
    busy: usize,
    jobs: Sender<Transmit>,
    queue: Arc<Mutex<Receiver<Transmit>>>,
    notify: Notify,
}

impl Workers {
    fn new(agent: Agent, max: usize, notify: Notify) -> Self {
        let (jobs, queue) = mpsc::channel();
        Self { agent, max, started: 0, busy: 0, jobs, queue: Arc::new(Mutex::new(queue)), notify }
    }

    fn send(&mut self, transmit: Transmit) -> Result<(), Error> {
        if self.busy >= self.started && self.started < self.max {
            self.start()?;
        }
        self.busy += 1;
        self.jobs.send(transmit).map_err(|_| stopped())
    }

    fn start(&mut self) -> Result<(), Error> {
        let (agent, queue, notify) = (self.agent.clone(), Arc::clone(&self.queue), Arc::clone(&self.notify));
        // Workers log into the caller's subscriber, under the caller's span.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let parent = tracing::Span::current();
        std::thread::Builder::new()
            .name(format!("box-upload-http-{}", self.started))
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _in = parent.enter();
                    loop {
                        let job = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        let Ok(transmit) = job else { return };
                        let id = transmit.id;
                        let answer = catch_unwind(AssertUnwindSafe(|| transport::send(&agent, transmit)))
                            .unwrap_or_else(|_| {
                                Err(TransportError::new(TransportErrorKind::Other, "the HTTP client panicked"))
                            });
                        notify(Completion::Answer(id, answer));
                    }
                });
            })
            .map_err(|e| Error::Internal(format!("cannot start a worker thread: {e}")))?;
        self.started += 1;
        Ok(())
    }
}
