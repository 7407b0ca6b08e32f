//! A single operation run as a [`Machine`]: token, retries and parsing, with no source to read.

use crate::dispatch::{Completion, Dispatcher};
use crate::machine::{Event, Machine, PartData, ReadId, ReadRequest, RequestId, Transmit};
use crate::error::{Error, SourceError, TransportError};
use crate::operations::Operation;
use crate::Client;
use bytes::Bytes;
use http::Response;
use std::collections::VecDeque;
use std::time::Instant;

/// One operation in flight. Made by [`Client::call`].
#[derive(Debug)]
pub struct Call<O: Operation> {
    operation: O,
    dispatch: Dispatcher<()>,
    output: Option<Result<O::Output, Error>>,
    events: VecDeque<Event>,
    done: bool,
}

impl<O: Operation> Call<O> {
    pub(crate) fn new(client: &Client, operation: O) -> Self {
        let mut dispatch = Dispatcher::new(client.config.clone(), client.auth.clone());
        let mut output = None;
        match operation.request(&client.config) {
            Ok(request) => dispatch.submit((), operation.kind(), request, None),
            Err(e) => output = Some(Err(e)),
        }
        let mut call = Self { operation, dispatch, output: None, events: VecDeque::new(), done: false };
        if let Some(out) = output {
            call.finish(out);
        }
        call
    }

    /// The operation.
    pub fn operation(&self) -> &O {
        &self.operation
    }

    fn finish(&mut self, output: Result<O::Output, Error>) {
        if !self.done {
            self.done = true;
            self.dispatch.clear();
            self.output = Some(output);
            self.events.push_back(Event::Finished);
        }
    }

    fn drain(&mut self) {
        self.events.extend(self.dispatch.events.drain(..));
        while let Some(completion) = self.dispatch.poll_completion() {
            let result = match completion {
                Completion::Answered { response, .. } => self.operation.parse(response),
                Completion::Failed { error, .. } => Err(error),
            };
            self.finish(result);
        }
    }
}

impl<O: Operation> Machine for Call<O> {
    type Output = O::Output;

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.done {
            return None;
        }
        let t = self.dispatch.poll_transmit(now);
        self.drain();
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
        self.events.pop_front()
    }

    fn poll_output(&mut self) -> Option<Result<O::Output, Error>> {
        self.output.take()
    }

    fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant) {
        self.dispatch.handle_response(id, response, now);
        self.drain();
    }

    fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        self.dispatch.handle_transport_error(id, error, now);
        self.drain();
    }

    fn handle_read(&mut self, _id: ReadId, _data: Result<PartData, SourceError>, _now: Instant) {}

    fn handle_timeout(&mut self, _now: Instant) {}
}
