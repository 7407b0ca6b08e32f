//! A recording proxy: forwards every request to an upstream (the emulator, or Box itself over
//! HTTPS) and writes the exchanges as fixtures, with secrets and hosts redacted.
//!
//! - The upstream's origin in answers (e.g. `session_endpoints`, `Location`) is rewritten to the
//!   recorder's own origin, so clients keep talking through the recorder; in fixtures both are
//!   written as [`ORIGIN_PLACEHOLDER`].
//! - `Authorization` is written as `Bearer REDACTED`; client secrets and tokens in forms and JSON
//!   ([`crate::fixture::SECRET_FIELDS`]) and every string in [`RecorderConfig::redact`] become
//!   `REDACTED`.
//! - With [`Output::Dir`], a client switches scenarios with
//!   `POST /__recorder/scenario?name=NAME&description=TEXT` (answered 204, never forwarded):
//!   each scenario is saved as `DIR/NAME.json`. Fixtures are saved after every exchange.
//! - Request and response bodies are buffered (up to 1 GiB each): the recorder is for small
//!   scenarios, not for benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::body::{empty, full, read_limited, ResBody};
use crate::fixture::{
    select_headers, Body, Exchange, Fixture, FixtureError, RecordedRequest, RecordedResponse, ORIGIN_PLACEHOLDER,
    REDACTED, REQUEST_HEADERS, RESPONSE_HEADERS,
};

const MAX_BODY: usize = 1 << 30;
const CONTROL_PATH: &str = "/__recorder/scenario";

/// Where fixtures go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Everything in one fixture file.
    File(PathBuf),
    /// One file per scenario, `DIR/<name>.json`.
    Dir(PathBuf),
}

/// Recorder settings.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The upstream origin, e.g. `http://127.0.0.1:8080` or `https://upload.box.com`.
    pub upstream: String,
    /// Where to listen (keep it on loopback).
    pub listen: SocketAddr,
    /// Where fixtures go.
    pub output: Output,
    /// Name of the first scenario.
    pub scenario: String,
    /// The fixtures' `source`.
    pub source: String,
    /// Extra strings to redact wherever they appear (tokens, secrets).
    pub redact: Vec<String>,
}

/// Recorder errors.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Binding the listener failed.
    #[error("recorder I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The upstream is not an absolute http(s) URL.
    #[error("invalid upstream URL {0:?}: expected http(s)://host[:port]")]
    BadUpstream(String),
    /// Saving a fixture failed.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Starts recorders.
#[derive(Debug)]
pub struct Recorder;

impl Recorder {
    /// Starts a recorder on the current tokio runtime.
    pub async fn start(config: RecorderConfig) -> Result<RecorderHandle, RecorderError> {
        let upstream: Uri = config.upstream.parse().map_err(|_| RecorderError::BadUpstream(config.upstream.clone()))?;
        let (Some(scheme), Some(authority)) = (upstream.scheme_str(), upstream.authority()) else {
            return Err(RecorderError::BadUpstream(config.upstream.clone()));
        };
        if scheme != "http" && scheme != "https" {
            return Err(RecorderError::BadUpstream(config.upstream.clone()));
        }
        let upstream_origin = format!("{scheme}://{authority}");
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client: HttpsClient = Client::builder(TokioExecutor::new()).build(connector);
        let state = Arc::new(State {
            origin: format!("http://{addr}"),
            upstream_origin,
            host: authority.to_string(),
            client,
            output: config.output,
            source: config.source.clone(),
            redact: Mutex::new(config.redact.into_iter().filter(|s| !s.is_empty()).collect()),
            current: Mutex::new(Fixture::new(config.scenario, "", config.source)),
            saved: Mutex::new(Vec::new()),
        });
        let served = crate::serve::serve(listener, Arc::clone(&state), |st, req| async move { st.handle(req).await });
        Ok(RecorderHandle { state, addr, served })
    }
}

/// A running recorder.
#[derive(Debug)]
pub struct RecorderHandle {
    state: Arc<State>,
    addr: SocketAddr,
    served: crate::serve::Served,
}

impl RecorderHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.state.origin.clone()
    }

    /// `http://127.0.0.1:PORT/api`.
    pub fn upload_base_url(&self) -> String {
        format!("{}/api", self.state.origin)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Saves the current scenario and starts a new one.
    pub fn start_scenario(&self, name: &str, description: &str) -> Result<(), RecorderError> {
        self.state.switch(name, description)
    }

    /// The scenario being recorded.
    pub fn current(&self) -> Fixture {
        lock(&self.state.current).clone()
    }

    /// Stops the recorder, saves the current scenario, and returns every file written.
    pub async fn finish(self) -> Result<Vec<PathBuf>, RecorderError> {
        self.served.stop().await;
        self.state.save_current()?;
        Ok(lock(&self.state.saved).clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct State {
    origin: String,
    upstream_origin: String,
    host: String,
    client: HttpsClient,
    output: Output,
    source: String,
    redact: Mutex<Vec<String>>,
    current: Mutex<Fixture>,
    saved: Mutex<Vec<PathBuf>>,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
}

fn query_param(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == key).then(|| crate::emulator::percent_decode_str(v)).flatten()
    })
}

impl State {
    fn path_for(&self, name: &str) -> Option<PathBuf> {
        match &self.output {
            Output::File(p) => Some(p.clone()),
            Output::Dir(d) => Some(d.join(format!("{name}.json"))),
        }
    }

    fn save_current(&self) -> Result<(), RecorderError> {
        let fixture = lock(&self.current).clone();
        if fixture.exchanges.is_empty() {
            return Ok(());
        }
        if let Some(path) = self.path_for(&fixture.name) {
            fixture.save(&path)?;
            let mut saved = lock(&self.saved);
            if !saved.contains(&path) {
                saved.push(path);
            }
        }
        Ok(())
    }

    fn switch(&self, name: &str, description: &str) -> Result<(), RecorderError> {
        self.save_current()?;
        let mut current = lock(&self.current);
        if let Output::File(_) = self.output {
            // One file: keep accumulating, only the description of the whole run changes.
            if current.description.is_empty() {
                current.description = description.to_string();
            }
            return Ok(());
        }
        *current = Fixture::new(name, description, self.source.clone());
        Ok(())
    }

    fn redact_text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in lock(&self.redact).iter() {
            out = out.replace(secret.as_str(), REDACTED);
        }
        out
    }

    fn clean_body(&self, mut body: Body) -> Body {
        body.replace_text(&self.upstream_origin, ORIGIN_PLACEHOLDER);
        body.replace_text(&self.origin, ORIGIN_PLACEHOLDER);
        let secrets = lock(&self.redact).clone();
        for s in &secrets {
            body.replace_text(s, REDACTED);
        }
        body
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<ResBody> {
        if req.uri().path() == CONTROL_PATH {
            let name = query_param(req.uri(), "name").unwrap_or_else(|| "scenario".into());
            let description = query_param(req.uri(), "description").unwrap_or_default();
            let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
            let mut res = Response::new(empty());
            *res.status_mut() = match self.switch(&safe, &description) {
                Ok(()) => StatusCode::NO_CONTENT,
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return res;
        }
        let (parts, body) = req.into_parts();
        let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let bytes = match read_limited(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                let mut res = Response::new(full("request body unreadable or too large for the recorder"));
                *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                return res;
            }
        };
        let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut req_headers = select_headers(&parts.headers, REQUEST_HEADERS);
        for v in req_headers.values_mut() {
            *v = self.redact_text(v);
        }
        let recorded_request = RecordedRequest {
            method: parts.method.as_str().to_string(),
            uri: self.redact_text(&path_and_query),
            headers: req_headers,
            body: self.clean_body(Body::from_bytes(ct.as_deref(), &bytes)),
        };

        // Forward.
        let mut headers = parts.headers.clone();
        strip_hop_by_hop(&mut headers);
        let mut builder =
            Request::builder().method(parts.method.clone()).uri(format!("{}{path_and_query}", self.upstream_origin));
        if let Some(h) = builder.headers_mut() {
            *h = headers;
            if let Ok(v) = HeaderValue::from_str(&self.host) {
                h.insert(header::HOST, v);
            }
        }
        let upstream_req = match builder.body(Full::new(bytes)) {
            Ok(r) => r,
            Err(e) => return self.fail(recorded_request, format!("cannot build the upstream request: {e}")),
        };
        let res = match self.client.request(upstream_req).await {
            Ok(r) => r,
            Err(e) => return self.fail(recorded_request, format!("upstream request failed: {e}")),
        };
        let (rparts, rbody) = res.into_parts();
        let rbytes = match rbody.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => return self.fail(recorded_request, format!("upstream body failed: {e}")),
        };
        let rct = rparts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut resp_body = Body::from_bytes(rct.as_deref(), &rbytes);
        if recorded_request.uri.starts_with("/oauth2/token") {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&rbytes) {
                if let Some(t) = v.get("access_token").and_then(|t| t.as_str()) {
                    lock(&self.redact).push(t.to_string());
                }
            }
        }
        // What the client gets: the upstream origin swapped for ours in textual bodies.
        let client_bytes = match std::str::from_utf8(&rbytes) {
            Ok(text) if !matches!(resp_body, Body::Binary { .. }) && text.contains(&self.upstream_origin) => {
                Bytes::from(text.replace(&self.upstream_origin, &self.origin))
            }
            _ => rbytes.clone(),
        };
        resp_body = self.clean_body(resp_body);
        let mut resp_headers = select_headers(&rparts.headers, RESPONSE_HEADERS);
        for v in resp_headers.values_mut() {
            *v = self
                .redact_text(v)
                .replace(&self.upstream_origin, ORIGIN_PLACEHOLDER)
                .replace(&self.origin, ORIGIN_PLACEHOLDER);
        }
        self.record(Exchange {
            request: recorded_request,
            response: RecordedResponse { status: rparts.status.as_u16(), headers: resp_headers, body: resp_body },
        });
        let mut out_headers = rparts.headers.clone();
        strip_hop_by_hop(&mut out_headers);
        if let Some(loc) = out_headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
            if let Ok(v) = HeaderValue::from_str(&loc.replace(&self.upstream_origin, &self.origin)) {
                out_headers.insert(header::LOCATION, v);
            }
        }
        let mut out = Response::new(full(client_bytes));
        *out.status_mut() = rparts.status;
        *out.headers_mut() = out_headers;
        out
    }

    fn fail(&self, request: RecordedRequest, message: String) -> Response<ResBody> {
        self.record(Exchange {
            request,
            response: RecordedResponse {
                status: 502,
                headers: [("content-type".to_string(), "text/plain".to_string())].into(),
                body: Body::Text(message.clone()),
            },
        });
        let mut res = Response::new(full(message));
        *res.status_mut() = StatusCode::BAD_GATEWAY;
        res
    }

    fn record(&self, ex: Exchange) {
        lock(&self.current).exchanges.push(ex);
        // Saved after every exchange so a killed recorder still leaves a valid file.
        let _ = self.save_current();
    }
}
