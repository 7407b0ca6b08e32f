//! One request over ureq: send the core's `http::Request<Bytes>`, hand back every header and at
//! most `max_response_bytes` of the body, and name failures with the core's kinds.

use box_upload_core::{RequestKind, Transmit, TransportError, TransportErrorKind};
use bytes::Bytes;
use http::{Method, Request, Response};
use std::io;
use std::time::{Duration, Instant};

/// Timeouts and pool settings of the shared agent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AgentSettings {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) overall_timeout: Option<Duration>,
    pub(crate) max_idle_connections: usize,
    /// Ask for `100-continue` before sending bodies of at least this many bytes.
    pub(crate) expect_continue_from: Option<usize>,
}

/// The ureq agent every worker shares (its pool keeps connections alive between requests), and
/// how requests are sent with it.
#[derive(Clone)]
pub(crate) struct Agent {
    pub(crate) agent: ureq::Agent,
    pub(crate) expect_continue_from: Option<usize>,
}

/// The one agent every worker shares.
pub(crate) fn agent(settings: AgentSettings) -> Agent {
    Agent { agent: ureq_agent(settings), expect_continue_from: settings.expect_continue_from }
}

fn ureq_agent(settings: AgentSettings) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(ureq::config::AutoHeaderValue::None)
        .accept(ureq::config::AutoHeaderValue::None)
        .timeout_connect(settings.connect_timeout)
        .timeout_per_read(settings.idle_timeout)
        .timeout_per_write(settings.idle_timeout)
        .timeout_per_call(settings.overall_timeout)
        .max_idle_connections(settings.max_idle_connections)
        .max_idle_connections_per_host(settings.max_idle_connections)
        .build()
        .new_agent()
}

/// Sends `transmit` and reads its answer; logs the method, kind, path, status and time taken
/// (never headers or bodies).
pub(crate) fn send(
    agent: &ureq::Agent,
    transmit: Transmit,
    expect_continue_from: Option<usize>,
) -> Result<Response<Bytes>, TransportError> {
    let Transmit { id, kind, request, max_response_bytes } = transmit;
    let span = tracing::debug_span!(
        "box_request",
        id = id.0,
        kind = %kind,
        method = %request.method(),
        path = request.uri().path(),
    );
    let _enter = span.enter();
    let started = Instant::now();
    let result = exchange(agent, kind, request, max_response_bytes, expect_continue_from);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(response) => tracing::debug!(
            status = response.status().as_u16(),
            body_bytes = response.body().len(),
            elapsed_ms,
            "answered"
        ),
        Err(e) => tracing::debug!(error_kind = ?e.kind, error = %e.message, elapsed_ms, "transport failure"),
    }
    result
}

fn exchange(
    agent: &ureq::Agent,
    _kind: RequestKind,
    request: Request<Bytes>,
    max_response_bytes: usize,
    expect_continue_from: Option<usize>,
) -> Result<Response<Bytes>, TransportError> {
    let (mut parts, body) = request.into_parts();
    if expect_continue_from.is_some_and(|min| body.len() >= min) && !parts.headers.contains_key(http::header::EXPECT) {
        // A server that refuses the request (401, 429, 5xx) answers before the body is sent,
        // instead of closing the connection under it, and the answer reaches the core.
        parts.headers.insert(http::header::EXPECT, http::HeaderValue::from_static("100-continue"));
    }
    let takes_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    let response = if body.is_empty() && !takes_body {
        agent.run(Request::from_parts(parts, ()))
    } else {
        // A borrowed slice: the part's bytes are written from the core's buffer, not copied.
        agent.run(Request::from_parts(parts, &body[..]))
    }
    .map_err(map_error)?;
    let (head, mut body) = response.into_parts();
    let limit = u64::try_from(max_response_bytes).unwrap_or(u64::MAX);
    let bytes = body.with_config().limit(limit).read_to_vec().map_err(map_error)?;
    Ok(Response::from_parts(head, Bytes::from(bytes)))
}

/// ureq's error as the core's transport error kinds.
pub(crate) fn map_error(error: ureq::Error) -> TransportError {
    use TransportErrorKind as K;
    let kind = match &error {
        ureq::Error::Timeout(_) => K::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => K::Connect,
        ureq::Error::BodyExceedsLimit(_) => K::BodyTooLarge,
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => K::Redirect,
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable | io::ErrorKind::NotFound => K::Connect,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => K::Timeout,
            _ => K::Io,
        },
        ureq::Error::Protocol(_) | ureq::Error::BodyStalled => K::Io,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => K::Connect,
        _ => K::Other,
    };
    TransportError::new(kind, error.to_string())
}
