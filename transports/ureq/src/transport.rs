//! One request over ureq: send the core's `http::Request<Bytes>`, hand back every header and at
//! most `max_response_bytes` of the body, and name failures with the core's kinds.

use box_upload_core::{RequestKind, Transmit, TransportError, TransportErrorKind};
use box_upload_driver::{Error, Settings};
use bytes::Bytes;
use http::{Method, Request, Response};
use std::io;
use std::time::Instant;

/// The ureq agent every worker shares (its pool keeps connections alive between requests), and
/// how requests are sent with it.
#[derive(Clone)]
pub(crate) struct Agent {
    pub(crate) agent: ureq::Agent,
    pub(crate) expect_continue: bool,
}

impl Agent {
    /// The agent the settings describe: no redirects followed, every status an answer, no proxy
    /// from the environment (the same in every transport), bounded timeouts.
    pub(crate) fn new(settings: &Settings) -> Result<Self, Error> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept(ureq::config::AutoHeaderValue::None)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_per_read(Some(settings.idle_timeout))
            .timeout_per_write(Some(settings.idle_timeout))
            .timeout_per_call(settings.overall_timeout)
            .max_idle_connections(settings.pool_size())
            .max_idle_connections_per_host(settings.pool_size())
            .build()
            .new_agent();
        Ok(Self { agent, expect_continue: settings.expect_continue })
    }
}

/// Sends `transmit` and reads its answer; logs the method, kind, path, status and time taken
/// (never headers or bodies).
pub(crate) fn send(agent: &Agent, transmit: Transmit) -> Result<Response<Bytes>, TransportError> {
    let Transmit { id, kind, mut request, max_response_bytes } = transmit;
    if agent.expect_continue {
        // A server that refuses the request (401, 429, 5xx) answers before the body is sent,
        // instead of closing the connection under it, and the answer reaches the core.
        box_upload_driver::expect_continue(&mut request);
    }
    let span = tracing::debug_span!(
        "box_request",
        id = id.0,
        kind = %kind,
        method = %request.method(),
        path = request.uri().path(),
    );
    let _enter = span.enter();
    let started = Instant::now();
    let result = exchange(&agent.agent, kind, request, max_response_bytes);
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
) -> Result<Response<Bytes>, TransportError> {
    let (parts, body) = request.into_parts();
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
