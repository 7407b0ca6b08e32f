//! The request log: one [`RequestRecord`] per request, handed to the observer installed with
//! [`crate::EmulatorBuilder::on_request`] once the request is over, however it ended. A test or
//! a soak run sees from it which parts were sent how often, and which answers never left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, Request};

use super::faults::Op;
use super::routes::parse_content_range;

/// How a request ended, as the emulator saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// An answer with this status was handed to the connection (whether the client read it is
    /// not known here).
    Answered(u16),
    /// A fault withheld the answer: the request was handled (a part stored, a commit applied,
    /// or refused), then the connection was closed instead of answering
    /// ([`FaultAction::DropAnswer`](crate::FaultAction::DropAnswer),
    /// [`FaultAction::CommitAnswerLost`](crate::FaultAction::CommitAnswerLost)).
    Withheld,
    /// The connection closed before an answer: the body was cut (by the client going away, or
    /// by [`FaultAction::CutBody`](crate::FaultAction::CutBody)), or the connection ended while
    /// the request was being handled. Nothing was stored by it.
    Closed,
}

/// One request, once it is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Its kind.
    pub op: Op,
    /// The HTTP method.
    pub method: String,
    /// The path (without the query), e.g. `/api/2.0/files/upload_sessions/ID`.
    pub path: String,
    /// `Content-Range` of a part upload, as `(first, last, total)`, when it parses.
    pub content_range: Option<(u64, u64, u64)>,
    /// How it ended.
    pub outcome: RequestOutcome,
    /// From the request's arrival to its end.
    pub elapsed: Duration,
}

/// The observer: a shared callback.
#[derive(Clone)]
pub(crate) struct Observer(pub(crate) Arc<dyn Fn(&RequestRecord) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer(fn(&RequestRecord))")
    }
}

/// A request being handled. Dropped, it reports itself: with the outcome set by [`end`], or as
/// [`RequestOutcome::Closed`] when the handling was dropped before (the connection went away).
///
/// [`end`]: Self::end
pub(crate) struct Pending {
    observer: Observer,
    record: RequestRecord,
    started: Instant,
}

impl Pending {
    /// Starts the record of `req`, of kind `op`.
    pub(crate) fn start<B>(observer: &Observer, op: Op, req: &Request<B>) -> Self {
        let content_range =
            req.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(parse_content_range);
        let record = RequestRecord {
            op,
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            content_range,
            outcome: RequestOutcome::Closed,
            elapsed: Duration::ZERO,
        };
        Pending { observer: observer.clone(), record, started: Instant::now() }
    }

    /// Sets how the request ended (reported when `self` is dropped).
    pub(crate) fn end(&mut self, outcome: RequestOutcome) {
        self.record.outcome = outcome;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.record.elapsed = self.started.elapsed();
        (self.observer.0)(&self.record);
    }
}
