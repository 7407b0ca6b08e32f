//! Requests sent one after another as a [`Machine`], with no source to read: a single operation
//! ([`Call`]) and the machines made of several ([`ListAllParts`](crate::ListAllParts),
//! [`CommitAndWait`](crate::CommitAndWait)). They share one engine, [`Steps`] run by [`Run`]:
//! the token, retries and events come from the [`Dispatcher`], once for all of them.

use crate::dispatch::{Completion, Dispatcher};
use crate::error::{Error, SourceError, TransportError};
use crate::machine::{Event, Machine, PartData, ReadId, ReadRequest, RequestId, RequestKind, Transmit};
use crate::operations::Operation;
use crate::{Client, Config};
use bytes::Bytes;
use http::{Request, Response};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

/// What a machine of one request at a time decides: its first request, and after each final
/// answer either the next request (submitted through the [`StepCx`]) or the result.
pub(crate) trait Steps {
    /// What a successful run gives.
    type Output;

    /// The first request, or why none can be made.
    fn first(&mut self, config: &Config) -> Result<(RequestKind, Request<Bytes>), Error>;

    /// A request went out at `now` (the first one starts the clock of any budget).
    fn sent(&mut self, now: Instant) {
        let _ = now;
    }

    /// The final answer to the request sent last (429, 5xx and 401 are handled before). `None`
    /// means the next request was submitted through `cx`.
    fn answered(&mut self, response: Response<Bytes>, cx: &mut StepCx<'_>) -> Option<Result<Self::Output, Error>>;

    /// The request sent last got no final answer (retries ran out, no token, an untrusted host).
    /// By default the run ends with `error`; `None` means the next request was submitted.
    fn failed(&mut self, error: Error, cx: &mut StepCx<'_>) -> Option<Result<Self::Output, Error>> {
        let _ = cx;
        Some(Err(error))
    }
}

/// What [`Steps::answered`] may use: the dispatcher to submit the next request, the events, the
/// time of the answer.
pub(crate) struct StepCx<'a> {
    /// Submit the next request here.
    pub(crate) dispatch: &'a mut Dispatcher<()>,
    /// Events for the driver.
    pub(crate) events: &'a mut VecDeque<Event>,
    /// When the answer came.
    pub(crate) now: Instant,
    /// An earlier send of the request answered got no answer or a 5xx: Box may have acted on
    /// it before this answer.
    pub(crate) maybe_applied: bool,
}

impl StepCx<'_> {
    /// Submits the next request, to be sent at `not_before` (or as soon as possible).
    pub(crate) fn submit(&mut self, kind: RequestKind, request: Request<Bytes>, not_before: Option<Instant>) {
        self.dispatch.submit((), kind, request, not_before);
    }
}

/// The engine of [`Steps`]: started lazily (at the first poll), so a machine's builder methods
/// can still change what it sends until then.
pub(crate) struct Run<S: Steps> {
    steps: S,
    dispatch: Dispatcher<()>,
    started: bool,
    output: Option<Result<S::Output, Error>>,
    events: VecDeque<Event>,
    done: bool,
}

impl<S: Steps + fmt::Debug> fmt::Debug for Run<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The output is not printed: it need not be `Debug`.
        f.debug_struct("Run")
            .field("steps", &self.steps)
            .field("dispatch", &self.dispatch)
            .field("started", &self.started)
            .field("output_ready", &self.output.is_some())
            .field("events", &self.events)
            .field("done", &self.done)
            .finish()
    }
}

impl<S: Steps> Run<S> {
    pub(crate) fn new(client: &Client, steps: S) -> Self {
        Self {
            steps,
            dispatch: Dispatcher::new(client.config.clone(), client.auth.clone()),
            started: false,
            output: None,
            events: VecDeque::new(),
            done: false,
        }
    }

    pub(crate) fn steps(&self) -> &S {
        &self.steps
    }

    /// The steps, for settings that only matter after the first request.
    pub(crate) fn steps_mut(&mut self) -> &mut S {
        &mut self.steps
    }

    /// The steps, to change before the first request is made; `None` once it is.
    pub(crate) fn steps_before_start(&mut self) -> Option<&mut S> {
        (!self.started).then_some(&mut self.steps)
    }

    /// Submits the first request (once); an input error ends the run at once.
    pub(crate) fn start(&mut self) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let config = self.dispatch.config().clone();
        match self.steps.first(&config) {
            Ok((kind, request)) => self.dispatch.submit((), kind, request, None),
            Err(e) => self.finish(Err(e)),
        }
    }

    fn finish(&mut self, output: Result<S::Output, Error>) {
        if !self.done {
            self.done = true;
            self.dispatch.clear();
            self.output = Some(output);
            self.events.push_back(Event::Finished);
        }
    }

    fn drain(&mut self, now: Instant) {
        self.events.extend(self.dispatch.events.drain(..));
        while let Some(completion) = self.dispatch.poll_completion() {
            let result = match completion {
                Completion::Answered { response, maybe_applied, .. } => {
                    let mut cx = StepCx { dispatch: &mut self.dispatch, events: &mut self.events, now, maybe_applied };
                    self.steps.answered(response, &mut cx)
                }
                Completion::Failed { error, .. } => {
                    let mut cx =
                        StepCx { dispatch: &mut self.dispatch, events: &mut self.events, now, maybe_applied: false };
                    self.steps.failed(error, &mut cx)
                }
            };
            if let Some(result) = result {
                self.finish(result);
            }
            self.events.extend(self.dispatch.events.drain(..));
        }
    }
}

impl<S: Steps> Machine for Run<S> {
    type Output = S::Output;

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.start();
        if self.done {
            return None;
        }
        let t = self.dispatch.poll_transmit(now);
        if t.as_ref().is_some_and(|t| t.kind != RequestKind::Token) {
            self.steps.sent(now);
        }
        self.drain(now);
        t
    }

    fn poll_read(&mut self) -> Option<ReadRequest> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            None
        } else {
            self.dispatch.poll_timeout()
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.start();
        self.events.pop_front()
    }

    fn poll_output(&mut self) -> Option<Result<S::Output, Error>> {
        self.start();
        self.output.take()
    }

    fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant) {
        self.dispatch.handle_response(id, response, now);
        self.drain(now);
    }

    fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        self.dispatch.handle_transport_error(id, error, now);
        self.drain(now);
    }

    fn handle_read(&mut self, _id: ReadId, _data: Result<PartData, SourceError>, _now: Instant) {}

    fn handle_timeout(&mut self, _now: Instant) {}
}

/// Implements [`Machine`] for a public machine by handing every call to its `run` field.
macro_rules! machine_via_run {
    ([$($generics:tt)*] $t:ty, $output:ty) => {
        impl<$($generics)*> $crate::machine::Machine for $t {
            type Output = $output;

            fn poll_transmit(&mut self, now: std::time::Instant) -> Option<$crate::machine::Transmit> {
                self.run.poll_transmit(now)
            }

            fn poll_read(&mut self) -> Option<$crate::machine::ReadRequest> {
                self.run.poll_read()
            }

            fn poll_timeout(&self) -> Option<std::time::Instant> {
                self.run.poll_timeout()
            }

            fn poll_event(&mut self) -> Option<$crate::machine::Event> {
                self.run.poll_event()
            }

            fn poll_output(&mut self) -> Option<Result<$output, $crate::error::Error>> {
                self.run.poll_output()
            }

            fn handle_response(
                &mut self,
                id: $crate::machine::RequestId,
                response: http::Response<bytes::Bytes>,
                now: std::time::Instant,
            ) {
                self.run.handle_response(id, response, now);
            }

            fn handle_transport_error(
                &mut self,
                id: $crate::machine::RequestId,
                error: $crate::error::TransportError,
                now: std::time::Instant,
            ) {
                self.run.handle_transport_error(id, error, now);
            }

            fn handle_read(
                &mut self,
                id: $crate::machine::ReadId,
                data: Result<$crate::machine::PartData, $crate::error::SourceError>,
                now: std::time::Instant,
            ) {
                self.run.handle_read(id, data, now);
            }

            fn handle_timeout(&mut self, now: std::time::Instant) {
                self.run.handle_timeout(now);
            }
        }
    };
}
pub(crate) use machine_via_run;

/// One operation: its request, then its answer parsed.
#[derive(Debug)]
struct Single<O>(O);

impl<O: Operation> Steps for Single<O> {
    type Output = O::Output;

    fn first(&mut self, config: &Config) -> Result<(RequestKind, Request<Bytes>), Error> {
        Ok((self.0.kind(), self.0.request(config)?))
    }

    fn answered(&mut self, response: Response<Bytes>, _cx: &mut StepCx<'_>) -> Option<Result<O::Output, Error>> {
        Some(self.0.parse(response))
    }
}

/// One operation in flight. Made by [`Client::call`].
#[derive(Debug)]
pub struct Call<O: Operation> {
    run: Run<Single<O>>,
}

impl<O: Operation> Call<O> {
    pub(crate) fn new(client: &Client, operation: O) -> Self {
        let mut run = Run::new(client, Single(operation));
        run.start();
        Self { run }
    }

    /// The operation.
    pub fn operation(&self) -> &O {
        &self.run.steps().0
    }
}

machine_via_run!([O: Operation] Call<O>, O::Output);
