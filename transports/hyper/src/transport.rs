//! Moving one request's bytes: a pooled keep-alive hyper client, bounded answer bodies, timeouts.
//! No Box knowledge, no retries: the core decides what a failure means.

use crate::Error;
use box_upload_core::{Transmit, TransportError, TransportErrorKind};
use box_upload_driver::Settings;
use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// Request bodies are handed to hyper in slices of this size (views of the same `Bytes`, no
/// copy), so the idle timer sees the upload progress.
const BODY_SLICE: usize = 64 * 1024;

/// Timeouts and pool size of the HTTP client.
#[derive(Clone, Debug)]
struct TransportSettings {
    idle_timeout: Duration,
    overall_timeout: Option<Duration>,
    expect_continue: bool,
}

/// The HTTP client shared by every run of a [`Client`](crate::Client).
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, PartBody>,
    settings: TransportSettings,
}

impl Transport {
    pub(crate) fn new(settings: &Settings) -> Result<Self, Error> {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.pool_size())
            .build(https);
        let settings = TransportSettings {
            idle_timeout: settings.idle_timeout,
            overall_timeout: settings.overall_timeout,
            expect_continue: settings.expect_continue,
        };
        Ok(Self { http, settings })
    }

    /// Sends `transmit` and reads its answer (at most `max_response_bytes` of body). Redirects are
    /// answers like any other: they are handed back, never followed.
    pub(crate) async fn send(&self, transmit: Transmit) -> Result<Response<Bytes>, TransportError> {
        let Transmit { kind, mut request, max_response_bytes, .. } = transmit;
        if self.settings.expect_continue {
            box_upload_driver::expect_continue(&mut request);
        }
        let span = tracing::debug_span!(
            "box_request",
            method = %request.method(),
            kind = %kind,
            path = request.uri().path(),
        );
        async move {
            let started = Instant::now();
            let activity = Arc::new(Activity::new(started));
            let request = request.map(|body| PartBody::new(body, Some(Arc::clone(&activity))));
            let exchange = exchange(&self.http, request, max_response_bytes, Arc::clone(&activity));
            let idle = watch_idle(&activity, self.settings.idle_timeout);
            let overall = async {
                match self.settings.overall_timeout {
                    Some(d) => tokio::time::sleep_until(started + d).await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                r = exchange => r,
                e = idle => Err(e),
                () = overall => Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no complete answer within the overall timeout of {:?}", self.settings.overall_timeout.unwrap_or_default()),
                )),
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(response) => tracing::debug!(
                    status = response.status().as_u16(),
                    elapsed_ms,
                    body_bytes = response.body().len(),
                    "answer"
                ),
                Err(e) => tracing::debug!(error_kind = ?e.kind, error = %e.message, elapsed_ms, "transport failure"),
            }
            result
        }
        .instrument(span)
        .await
    }
}

async fn exchange(
    http: &hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, PartBody>,
    request: http::Request<PartBody>,
    max_response_bytes: usize,
    activity: Arc<Activity>,
) -> Result<Response<Bytes>, TransportError> {
    let response = http.request(request).await.map_err(|e| map_client_error(&e))?;
    activity.touch();
    let (parts, body) = response.into_parts();
    let touched = body.map_frame(move |frame| {
        activity.touch();
        frame
    });
    let bytes = match Limited::new(touched, max_response_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                return Err(TransportError::new(
                    TransportErrorKind::BodyTooLarge,
                    format!("the answer's body is over {max_response_bytes} bytes"),
                ));
            }
            return Err(TransportError::new(
                TransportErrorKind::Io,
                format!("reading the answer failed: {}", chain(&*e)),
            ));
        }
    };
    Ok(Response::from_parts(parts, bytes))
}

/// Waits until nothing has moved for `idle`, then says so.
async fn watch_idle(activity: &Activity, idle: Duration) -> TransportError {
    loop {
        let deadline = activity.last() + idle;
        // Check the clock first: a timer may report "pending" for a deadline already passed.
        if Instant::now() >= deadline {
            return TransportError::new(TransportErrorKind::Timeout, format!("nothing moved for {idle:?}"));
        }
        tokio::time::sleep_until(deadline).await;
    }
}

fn map_client_error(e: &hyper_util::client::legacy::Error) -> TransportError {
    let timed_out = source_chain(e)
        .any(|s| s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut));
    let kind = if timed_out {
        TransportErrorKind::Timeout
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Io
    };
    TransportError::new(kind, chain(e))
}

fn source_chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// The error and its causes on one line. hyper's errors hold no headers or bodies, so no token.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    for (i, s) in source_chain(e).enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        out.push_str(&s.to_string());
    }
    out
}

/// When bytes last moved on a request.
#[derive(Debug)]
struct Activity(Mutex<Instant>);

impl Activity {
    fn new(now: Instant) -> Self {
        Self(Mutex::new(now))
    }

    fn touch(&self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A request body: the core's `Bytes` (a part is never copied), handed out in slices that are
/// views of it, with an exact size so hyper sends `Content-Length`.
#[derive(Debug)]
pub(crate) struct PartBody {
    data: Bytes,
    activity: Option<Arc<Activity>>,
}

impl PartBody {
    fn new(data: Bytes, activity: Option<Arc<Activity>>) -> Self {
        Self { data, activity }
    }
}

impl Body for PartBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(a) = &self.activity {
            a.touch();
        }
        let n = self.data.len().min(BODY_SLICE);
        let slice = self.data.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64)
    }
}
