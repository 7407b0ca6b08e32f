//! Moving one request's bytes: a pooled keep-alive hyper client, bounded answer bodies, timeouts.
//! No Box knowledge, no retries: the core decides what a failure means.

use crate::Error;
use box_upload_core::{Transmit, TransportError, TransportErrorKind};
use box_upload_driver::{ProxyRules, Settings, SourceReader};
use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::Instrument;

/// Request bodies are handed to hyper in slices of this size (views of the same `Bytes`, no
/// copy), so the idle timer sees the upload progress.
const BODY_SLICE: usize = 64 * 1024;

/// The HTTP client shared by every run of a [`Client`](crate::Client).
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: HttpClient,
    /// The timeouts and `Expect` setting (the client's settings, kept whole: the driver computes
    /// each request's deadline from them).
    settings: Arc<Settings>,
    proxies: Arc<ProxyRules>,
}

type HttpClient = hyper_util::client::legacy::Client<HttpsConnector<Connector>, PartBody>;

impl Transport {
    pub(crate) fn new(settings: &Settings) -> Result<Self, Error> {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        let proxies = Arc::new(settings.proxy_rules()?);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(Connector { http: connector, proxies: Arc::clone(&proxies) });
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.pool_size())
            .build(https);
        Ok(Self { http, settings: Arc::new(settings.clone()), proxies })
    }

    /// Sends `transmit` and reads its answer (at most `max_response_bytes` of body). Redirects are
    /// answers like any other: they are handed back, never followed.
    pub(crate) async fn send(&self, transmit: Transmit) -> Result<Response<Bytes>, TransportError> {
        let Transmit { kind, mut request, max_response_bytes, .. } = transmit;
        if self.settings.expect_continue {
            box_upload_driver::expect_continue(&mut request);
        }
        let gate = ContinueGate::for_request(&mut request);
        let span = tracing::debug_span!(
            "box_request",
            method = %request.method(),
            kind = %kind,
            path = request.uri().path(),
            proxy = self.proxies.proxy_for(request.uri()).map(tracing::field::display),
        );
        async move {
            let started = Instant::now();
            let streamed = request.extensions().get::<SourceReader>().cloned();
            let body_len = match &streamed {
                Some(s) => usize::try_from(s.len()).unwrap_or(usize::MAX),
                None => request.body().len(),
            };
            let deadline = self.settings.request_deadline(body_len);
            let activity = Arc::new(Activity::new(started));
            let waits = gate.clone();
            let request = request.map(|body| {
                let mut body = PartBody::new(body, Some(Arc::clone(&activity)), waits);
                if let Some(streamed) = streamed {
                    body.stream = Some(Streamed::start(&streamed));
                }
                body
            });
            let exchange = exchange(&self.http, request, max_response_bytes, Arc::clone(&activity));
            // Whatever the outcome, a body still waiting for `100 Continue` is never sent now.
            let _abandon = gate.map(Abandon);
            let idle = watch_idle(&activity, self.settings.idle_timeout);
            let overall = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(started + d).await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                r = exchange => r,
                e = idle => Err(e),
                () = overall => Err(box_upload_driver::deadline_passed(deadline.unwrap_or_default())),
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
    http: &HttpClient,
    request: http::Request<PartBody>,
    max_response_bytes: usize,
    activity: Arc<Activity>,
) -> Result<Response<Bytes>, TransportError> {
    let host = request.uri().host().unwrap_or_default().to_owned();
    let response = http.request(request).await.map_err(|e| map_client_error(&e, &host))?;
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

fn map_client_error(e: &hyper_util::client::legacy::Error, host: &str) -> TransportError {
    if let Some(refused) = certificate_problem(e) {
        return box_upload_driver::certificate_refused(host, &refused.to_string());
    }
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

/// The rustls error behind a refused server certificate, wherever in the chain it sits.
fn certificate_problem<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let tls = box_upload_driver::find_cause::<rustls::Error>(e)?;
    matches!(tls, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented).then_some(tls)
}

/// TLS trusting the driver's roots (the platform's, Mozilla's, the caller's CA files).
fn tls_config(settings: &Settings) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(settings.root_certificates()?);
    tracing::debug!(added, ignored, "TLS roots");
    Ok(rustls::ClientConfig::builder_with_provider(box_upload_driver::tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Connects to a request's host directly or, when the driver's rules name a proxy for it,
/// through that proxy with `CONNECT` (TLS then runs inside the tunnel, end to end).
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    http: HttpConnector,
    proxies: Arc<ProxyRules>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<http::Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let Some(proxy) = self.proxies.proxy_for(&dst).cloned() else {
            let connecting = self.http.call(dst);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        let mut tunnel = Tunnel::new(proxy.uri(), self.http.clone());
        if let Some(auth) = proxy.authorization() {
            tunnel = tunnel.with_auth(auth);
        }
        // CONNECT names the port: the tunnel would take 443 for a URL without one.
        let target = with_port(&dst);
        Box::pin(async move {
            let tunnelled = tower_service::Service::call(&mut tunnel, target).await;
            tunnelled
                .map_err(|e| -> BoxError { Box::new(ProxyError { proxy: proxy.to_string(), source: Box::new(e) }) })
        })
    }
}

/// A tunnel through a proxy that failed; says which proxy (never its credentials).
#[derive(Debug, thiserror::Error)]
#[error("through proxy {proxy}")]
struct ProxyError {
    proxy: String,
    source: BoxError,
}

/// `uri` with its port spelled out (80 for http, 443 for https).
fn with_port(uri: &http::Uri) -> http::Uri {
    if uri.port_u16().is_some() {
        return uri.clone();
    }
    let scheme = uri.scheme_str().unwrap_or("https");
    let port = if scheme.eq_ignore_ascii_case("http") { 80 } else { 443 };
    format!("{scheme}://{}:{port}", uri.host().unwrap_or_default()).parse().unwrap_or_else(|_| uri.clone())
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

/// `Expect: 100-continue` honoured: the body waits for `100 Continue` (hyper reports it through
/// `on_informational`) or [`EXPECT_CONTINUE_WAIT`](box_upload_driver::EXPECT_CONTINUE_WAIT), as
/// ureq's does. A server that refuses a part early (a 416 for a stored part, a 401, a 429) then
/// gets its answer read instead of a body it closes the connection on, which would leave the
/// client only a broken pipe.
#[derive(Debug, Default)]
struct ContinueGate {
    /// 0 waiting, 1 open (send the body), 2 abandoned (a final answer came first).
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

const WAITING: u8 = 0;
const OPEN: u8 = 1;
const ABANDONED: u8 = 2;

impl ContinueGate {
    /// A gate for `request` when it asks for `100 Continue`, told of it by hyper.
    fn for_request(request: &mut http::Request<Bytes>) -> Option<Arc<Self>> {
        let expects = request.headers().get(http::header::EXPECT).is_some_and(|v| v == "100-continue");
        if !expects {
            return None;
        }
        let gate = Arc::new(Self::default());
        let told = Arc::clone(&gate);
        hyper::ext::on_informational(request, move |res| {
            if res.status() == http::StatusCode::CONTINUE {
                told.settle(OPEN);
            }
        });
        Some(gate)
    }

    /// Moves a waiting gate to `to` and wakes the body.
    fn settle(&self, to: u8) {
        if self.state.compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            if let Some(w) = self.waker.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                w.wake();
            }
        }
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }
}

/// Abandons the gate when the exchange is over (answered, failed or timed out).
struct Abandon(Arc<ContinueGate>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.settle(ABANDONED);
    }
}

/// A body whose request got its final answer before `100 Continue`: not sent, so hyper closes
/// the connection instead of pushing the part at a server that does not want it.
#[derive(Debug, thiserror::Error)]
#[error("the body was not sent: the server answered before 100 Continue")]
pub(crate) struct NotSent;

/// The wait of a body for `100 Continue`: the gate and the timer, started when hyper first asks
/// for the body (the headers are out then).
#[derive(Debug)]
struct ContinueWait {
    gate: Arc<ContinueGate>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A request body: the core's `Bytes` (a part is never copied), handed out in slices that are
/// views of it, with an exact size so hyper sends `Content-Length`.
#[derive(Debug)]
pub(crate) struct PartBody {
    data: Bytes,
    activity: Option<Arc<Activity>>,
    wait: Option<ContinueWait>,
    /// A direct upload's body, read from the source on a blocking thread.
    stream: Option<Streamed>,
}

/// A body read from the source a chunk at a time on the blocking pool, at most a few chunks
/// ahead of the wire.
#[derive(Debug)]
struct Streamed {
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    left: u64,
}

impl Streamed {
    fn start(source: &SourceReader) -> Self {
        let (tx, chunks) = tokio::sync::mpsc::channel(4);
        let mut reader = source.reader();
        tokio::task::spawn_blocking(move || loop {
            let next = match reader.next_chunk() {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => return,
                Err(e) => Err(e.to_string()),
            };
            let failed = next.is_err();
            // A closed channel: the request is over (answered, failed or dropped).
            if tx.blocking_send(next).is_err() || failed {
                return;
            }
        });
        Self { chunks, left: source.len() }
    }
}

/// The source could not be read while its bytes were being sent.
#[derive(Debug, thiserror::Error)]
#[error("reading the source for the request body failed: {0}")]
pub(crate) struct SourceFailed(String);

impl PartBody {
    fn new(data: Bytes, activity: Option<Arc<Activity>>, gate: Option<Arc<ContinueGate>>) -> Self {
        Self { data, activity, wait: gate.map(|gate| ContinueWait { gate, timer: None }), stream: None }
    }

    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Some(stream) = self.stream.as_mut() else { return Poll::Ready(None) };
        if stream.left == 0 {
            return Poll::Ready(None);
        }
        match stream.chunks.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                stream.left = stream.left.saturating_sub(chunk.len() as u64);
                if let Some(a) = &self.activity {
                    a.touch();
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Source(SourceFailed(e))))),
            Poll::Ready(None) => {
                Poll::Ready(Some(Err(BodyError::Source(SourceFailed("the source ended early".into())))))
            }
        }
    }

    /// Ready when the body may be sent; an error when it must not be.
    fn poll_continue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), NotSent>> {
        let Some(wait) = self.wait.as_mut() else { return Poll::Ready(Ok(())) };
        *wait.gate.waker.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cx.waker().clone());
        let timer =
            wait.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(box_upload_driver::EXPECT_CONTINUE_WAIT)));
        match wait.gate.state() {
            ABANDONED => return Poll::Ready(Err(NotSent)),
            OPEN => {}
            _ => {
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
        self.wait = None;
        Poll::Ready(Ok(()))
    }
}

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The server answered before `100 Continue`.
    #[error(transparent)]
    NotSent(#[from] NotSent),
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceFailed),
}

impl Body for PartBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.data.is_empty() && self.stream.as_ref().is_none_or(|s| s.left == 0) {
            return Poll::Ready(None);
        }
        match self.poll_continue(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Ok(())) => {}
        }
        if self.data.is_empty() {
            return self.poll_stream(cx);
        }
        if let Some(a) = &self.activity {
            a.touch();
        }
        let n = self.data.len().min(BODY_SLICE);
        let slice = self.data.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty() && self.stream.as_ref().is_none_or(|s| s.left == 0)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64 + self.stream.as_ref().map_or(0, |s| s.left))
    }
}
