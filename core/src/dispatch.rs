//! Sending requests on behalf of a machine: the token, `User-Agent`, the trusted-host check, and
//! retries. Machines submit jobs and get back completions; only answers that are final reach them.

use crate::auth::{AccessToken, SharedTokenSource, TokenPoll};
use crate::error::{AuthError, Error, TransportError, TransportErrorKind};
use crate::machine::{Event, RequestId, RequestKind, Transmit};
use crate::response::api_error;
use crate::retry::{retry_after, Jitter};
use crate::Config;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request kept so it can be sent again with a fresh token.
#[derive(Clone, Debug)]
struct Template {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// Kept for every send: a direct upload's [`SourceBody`](crate::SourceBody) rides here.
    extensions: http::Extensions,
}

impl Template {
    fn from_request(request: Request<Bytes>) -> Self {
        let (parts, body) = request.into_parts();
        Self { method: parts.method, uri: parts.uri, headers: parts.headers, body, extensions: parts.extensions }
    }

    fn build(&self) -> Request<Bytes> {
        let mut request = Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        request
    }
}

#[derive(Debug)]
struct Slot<J> {
    job: J,
    kind: RequestKind,
    template: Template,
    sends: u32,
    refreshed: bool,
    not_before: Option<Instant>,
    token_used: Option<AccessToken>,
    /// An earlier send got no answer (a transport failure) or a 5xx: Box may have acted on it.
    maybe_applied: bool,
}

/// A job's final answer, or why there is none.
#[derive(Debug)]
pub(crate) enum Completion<J> {
    /// An answer that is not retried any more (success or final error status).
    /// `maybe_applied`: an earlier send of the same request got no answer or a 5xx, so Box may
    /// have acted on it before this answer (a commit answered 404 may have been applied).
    Answered { job: J, response: Response<Bytes>, maybe_applied: bool },
    /// No answer can be had. `maybe_applied`: a send got no answer after its request may have
    /// reached Box (any transport failure but a refused connection), so Box may have acted on it.
    Failed { job: J, error: Error, maybe_applied: bool },
}

#[derive(Debug)]
pub(crate) struct Dispatcher<J> {
    config: Arc<Config>,
    auth: SharedTokenSource,
    jitter: Jitter,
    next_id: u64,
    queue: Vec<Slot<J>>,
    in_flight: HashMap<RequestId, Slot<J>>,
    token_fetch: Option<RequestId>,
    token_retries: u32,
    token_not_before: Option<Instant>,
    completions: VecDeque<Completion<J>>,
    pub(crate) events: VecDeque<Event>,
}

impl<J: Clone> Dispatcher<J> {
    pub(crate) fn new(config: Arc<Config>, auth: SharedTokenSource) -> Self {
        let jitter = Jitter::new(config.jitter_seed);
        Self {
            config,
            auth,
            jitter,
            next_id: 0,
            queue: Vec::new(),
            in_flight: HashMap::new(),
            token_fetch: None,
            token_retries: 0,
            token_not_before: None,
            completions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub(crate) fn jitter(&mut self) -> &mut Jitter {
        &mut self.jitter
    }

    /// Queues `request` to be sent at `not_before` (or as soon as possible).
    pub(crate) fn submit(&mut self, job: J, kind: RequestKind, request: Request<Bytes>, not_before: Option<Instant>) {
        let slot = Slot {
            job,
            kind,
            template: Template::from_request(request),
            sends: 0,
            refreshed: false,
            not_before,
            token_used: None,
            maybe_applied: false,
        };
        self.queue.push(slot);
    }

    /// Forgets every queued job and every answer still to come.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.in_flight.clear();
        self.completions.clear();
    }

    pub(crate) fn poll_completion(&mut self) -> Option<Completion<J>> {
        self.completions.pop_front()
    }

    fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// The last request id given out (0 before any).
    pub(crate) fn last_id(&self) -> u64 {
        self.next_id
    }

    /// Gives out only ids above `floor` from now on: a machine that takes over from another
    /// must not take a late answer to the other's request for one of its own.
    pub(crate) fn ids_after(&mut self, floor: u64) {
        self.next_id = self.next_id.max(floor);
    }

    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        loop {
            let index = self.queue.iter().position(|s| s.not_before.is_none_or(|t| t <= now))?;
            if self.token_fetch.is_some() || self.token_not_before.is_some_and(|t| t > now) {
                return None;
            }
            let token = match self.auth.poll_token(now) {
                Ok(TokenPoll::Ready(token)) => token,
                Ok(TokenPoll::Fetch(request)) => {
                    let mut request = *request;
                    // The token request carries the client secret: never in cleartext off loopback.
                    if let Err(e) = self.config.check_cleartext(request.uri()) {
                        self.fail_all_queued(&e.into());
                        return None;
                    }
                    self.config.stamp(&mut request);
                    let id = self.next_id();
                    self.token_fetch = Some(id);
                    return Some(Transmit {
                        id,
                        kind: RequestKind::Token,
                        request,
                        max_response_bytes: self.config.max_response_bytes,
                    });
                }
                Err(e) => {
                    self.fail_all_queued(&e.into());
                    return None;
                }
            };
            let mut slot = self.queue.remove(index);
            let mut request = slot.template.build();
            if slot.sends > 0 {
                ask_to_continue(&mut request);
            }
            if let Err(error) = self.config.authorize(&mut request, &token, context_of(slot.kind)) {
                self.completions.push_back(Completion::Failed {
                    job: slot.job,
                    error,
                    maybe_applied: slot.maybe_applied,
                });
                continue;
            }
            slot.sends += 1;
            slot.token_used = Some(token);
            slot.not_before = None;
            let id = self.next_id();
            let kind = slot.kind;
            self.in_flight.insert(id, slot);
            return Some(Transmit { id, kind, request, max_response_bytes: self.config.max_response_bytes });
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let queued = self.queue.iter().filter_map(|s| s.not_before).min();
        match (queued, self.token_not_before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant) {
        if self.token_fetch == Some(id) {
            self.token_fetch = None;
            let status = response.status();
            let delay = self.retry_delay(response.headers(), self.token_retries + 1);
            match self.auth.handle_token_response(response, now) {
                Ok(()) => self.token_retries = 0,
                Err(e) if is_retryable_status(status) && self.token_retries < self.config.retry.max_retries => {
                    self.token_retries += 1;
                    self.token_not_before = Some(now + delay);
                    self.events.push_back(Event::Retrying {
                        kind: RequestKind::Token,
                        attempt: self.token_retries,
                        delay,
                        reason: e.to_string(),
                    });
                }
                Err(e) => self.fail_all_queued(&e.into()),
            }
            return;
        }
        let Some(mut slot) = self.in_flight.remove(&id) else { return };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            let refreshable = !slot.refreshed && slot.token_used.as_ref().is_some_and(|t| self.auth.invalidate(t));
            if refreshable {
                slot.refreshed = true;
                self.queue.push(slot);
            } else {
                let mut e = api_error(response);
                e.kind = Some(slot.kind);
                self.completions.push_back(Completion::Failed {
                    job: slot.job,
                    error: AuthError::Unauthorized(e).into(),
                    maybe_applied: slot.maybe_applied,
                });
            }
            return;
        }
        if is_retryable_status(status) && slot.sends <= self.config.retry.max_retries {
            slot.maybe_applied |= status.is_server_error();
            let delay = self.retry_delay(response.headers(), slot.sends);
            self.events.push_back(Event::Retrying {
                kind: slot.kind,
                attempt: slot.sends,
                delay,
                reason: format!("Box answered {}", status.as_u16()),
            });
            slot.not_before = Some(now + delay);
            self.queue.push(slot);
            return;
        }
        let maybe_applied = slot.maybe_applied;
        self.completions.push_back(Completion::Answered { job: slot.job, response, maybe_applied });
    }

    pub(crate) fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        if self.token_fetch == Some(id) {
            self.token_fetch = None;
            if error.is_retryable() && self.token_retries < self.config.retry.max_retries {
                self.token_retries += 1;
                let delay = self.config.retry.backoff(self.token_retries, &mut self.jitter);
                self.token_not_before = Some(now + delay);
                self.events.push_back(Event::Retrying {
                    kind: RequestKind::Token,
                    attempt: self.token_retries,
                    delay,
                    reason: error.to_string(),
                });
            } else {
                let e = Error::Transport { kind: RequestKind::Token, attempts: self.token_retries + 1, source: error };
                self.fail_all_queued(&e);
            }
            return;
        }
        let Some(mut slot) = self.in_flight.remove(&id) else { return };
        if error.is_retryable() && slot.sends <= self.config.retry.max_retries {
            slot.maybe_applied = true;
            let delay = self.config.retry.backoff(slot.sends, &mut self.jitter);
            self.events.push_back(Event::Retrying {
                kind: slot.kind,
                attempt: slot.sends,
                delay,
                reason: error.to_string(),
            });
            slot.not_before = Some(now + delay);
            self.queue.push(slot);
        } else {
            let maybe_applied = slot.maybe_applied || error.kind != TransportErrorKind::Connect;
            let error = Error::Transport { kind: slot.kind, attempts: slot.sends, source: error };
            self.completions.push_back(Completion::Failed { job: slot.job, error, maybe_applied });
        }
    }

    /// `Retry-After` when Box sent one (bounded), else backoff for retry number `retry`.
    pub(crate) fn retry_delay(&mut self, headers: &HeaderMap, retry: u32) -> Duration {
        match retry_after(headers) {
            Some(d) => d.min(self.config.retry.max_retry_after),
            None => self.config.retry.backoff(retry, &mut self.jitter),
        }
    }

    /// No token can be had: every queued job fails with `error`. Jobs submitted later try again.
    fn fail_all_queued(&mut self, error: &Error) {
        self.token_retries = 0;
        for slot in self.queue.drain(..) {
            self.completions.push_back(Completion::Failed {
                job: slot.job,
                error: error.clone(),
                maybe_applied: slot.maybe_applied,
            });
        }
    }
}

/// Bodies from this size on (the parts) ask for `100 Continue` when they are sent again.
const EXPECT_CONTINUE_FROM: usize = 64 * 1024;

/// A request sent again after a failure asks for `100 Continue` before its body: the server may
/// refuse it now (a part stored by the lost send is answered 416 at once), and that answer is
/// then read instead of a body pushed at a server that closes the connection under it. A first
/// send goes without: it costs a round trip per part and is seldom refused.
fn ask_to_continue(request: &mut Request<Bytes>) {
    if request.body().len() >= EXPECT_CONTINUE_FROM && !request.headers().contains_key(http::header::EXPECT) {
        request.headers_mut().insert(http::header::EXPECT, http::HeaderValue::from_static("100-continue"));
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn context_of(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::UploadPart => "session_endpoints.upload_part",
        RequestKind::CommitSession => "session_endpoints.commit",
        RequestKind::ListParts => "session_endpoints.list_parts",
        RequestKind::AbortSession => "session_endpoints.abort",
        RequestKind::GetSession => "session_endpoints.status",
        RequestKind::PlanSession => "session_endpoints.plan",
        RequestKind::GetFile | RequestKind::PreflightFileUpload => "the API base URL",
        _ => "the upload base URL",
    }
}
