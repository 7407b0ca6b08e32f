//! Server replay: a loopback server that answers with a fixture's recorded responses, in order,
//! and checks that each request is the one recorded.
//!
//! A request matches an exchange when the method, the URI (path and query), the compared
//! headers ([`ReplayOptions::compare_headers`]; `Authorization` only needs the recorded scheme)
//! and the body (JSON by value, binary by length and SHA-1, forms field by field, multipart part by
//! part; a multipart `Content-Type` need only agree on its media type, not its boundary) are equal.
//! Consecutive upload-part exchanges (`PUT` with `Content-Range`) may arrive in any order: such
//! requests are matched by `Content-Range` within their run, so parallel clients replay too.
//!
//! A request that matches nothing is recorded as a [`Mismatch`] and answered with status 599
//! and a JSON body explaining the difference. [`ReplayHandle::finish`] reports mismatches and
//! exchanges that were never requested.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use box_upload_conformance::fixture::Fixture;
//! use box_upload_conformance::replay::ReplayServer;
//! let fixture = Fixture::load("conformance/fixtures/emulator/create_session.json")?;
//! let replay = ReplayServer::start(fixture).await?;
//! let upload_base = replay.upload_base_url(); // http://127.0.0.1:PORT/api
//! // ... run the client under test against upload_base ...
//! replay.finish().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::body::{full, read_limited, ResBody};
use crate::fixture::{select_headers, Body, Exchange, Fixture, ORIGIN_PLACEHOLDER, REQUEST_HEADERS};

/// The status answered to a request that does not match the fixture.
pub const MISMATCH_STATUS: u16 = 599;

/// Largest request body the replay server reads (bodies are hashed, not kept).
const MAX_BODY: usize = 512 * 1024 * 1024;

/// How strictly requests are compared.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Request headers compared by value (lower-case). Default: `content-type`, `digest`,
    /// `content-range`, `if-match`, `if-none-match`. `authorization` is always checked for the
    /// recorded scheme only.
    pub compare_headers: Vec<String>,
    /// Whether upload-part requests may come in any order within a run of consecutive parts
    /// (default true).
    pub parallel_parts: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            compare_headers: ["content-type", "digest", "content-range", "if-match", "if-none-match", "content-md5"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            parallel_parts: true,
        }
    }
}

/// A request that did not match the fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Index of the exchange it was compared with (`None` when the fixture was used up).
    pub index: Option<usize>,
    /// `METHOD uri` of the request received.
    pub request: String,
    /// Every difference found.
    pub differences: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => {
                write!(f, "request {} differs from exchange #{i}: {}", self.request, self.differences.join("; "))
            }
            None => write!(f, "unexpected request {} after the last exchange", self.request),
        }
    }
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Binding the listener failed.
    #[error("replay server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Requests did not match the fixture.
    #[error("{} request(s) did not match the fixture; first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Mismatches(Vec<Mismatch>),
    /// Some recorded exchanges were never requested.
    #[error("{count} exchange(s) were never requested; next expected: {next}")]
    Unconsumed {
        /// How many.
        count: usize,
        /// `METHOD uri` of the first one.
        next: String,
    },
}

/// Starts replay servers.
#[derive(Debug)]
pub struct ReplayServer;

impl ReplayServer {
    /// Serves `fixture` on `127.0.0.1:0` with the default options.
    pub async fn start(fixture: Fixture) -> Result<ReplayHandle, ReplayError> {
        Self::start_with(fixture, ReplayOptions::default()).await
    }

    /// Serves `fixture` on `127.0.0.1:0` with `options`.
    pub async fn start_with(fixture: Fixture, options: ReplayOptions) -> Result<ReplayHandle, ReplayError> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            origin: format!("http://{addr}"),
            matcher: Mutex::new(Matcher::new(fixture, options)),
            mismatches: Mutex::new(Vec::new()),
        });
        let served = crate::serve::serve(listener, Arc::clone(&state), |st, req| async move { st.answer(req).await });
        Ok(ReplayHandle { state, addr, served })
    }
}

/// A running replay server.
#[derive(Debug)]
pub struct ReplayHandle {
    state: Arc<State>,
    addr: SocketAddr,
    served: crate::serve::Served,
}

impl ReplayHandle {
    /// `http://127.0.0.1:PORT` (what `{{origin}}` becomes in answers).
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

    /// Mismatches seen so far.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        lock(&self.state.mismatches).clone()
    }

    /// Stops the server; fails if any request mismatched or any exchange was not consumed.
    pub async fn finish(self) -> Result<(), ReplayError> {
        self.served.stop().await;
        let mismatches = lock(&self.state.mismatches).clone();
        if !mismatches.is_empty() {
            return Err(ReplayError::Mismatches(mismatches));
        }
        lock(&self.state.matcher).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct State {
    origin: String,
    matcher: Mutex<Matcher>,
    mismatches: Mutex<Vec<Mismatch>>,
}

/// What was received, in the fixture's terms.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) headers: std::collections::BTreeMap<String, String>,
    pub(crate) body: Body,
}

/// Walks a fixture's exchanges as requests come: the server replay and the core replay share it.
#[derive(Debug)]
pub(crate) struct Matcher {
    pub(crate) fixture: Fixture,
    options: ReplayOptions,
    consumed: Vec<bool>,
}

fn is_part_upload(method: &str, headers: &std::collections::BTreeMap<String, String>) -> bool {
    method == "PUT" && headers.contains_key("content-range")
}

impl State {
    async fn answer(&self, req: Request<Incoming>) -> Response<ResBody> {
        let (parts, body) = req.into_parts();
        let uri = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let headers = select_headers(&parts.headers, REQUEST_HEADERS);
        let bytes = match read_limited(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => Bytes::new(),
        };
        let ct = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let mut body = Body::from_bytes(ct, &bytes);
        body.replace_text(&self.origin, ORIGIN_PLACEHOLDER);
        let seen = Seen { method: parts.method.as_str().to_string(), uri, headers, body };
        let picked = {
            let mut matcher = lock(&self.matcher);
            matcher.pick(&seen).map(|i| matcher.fixture.exchanges[i].clone())
        };
        match picked {
            Ok(exchange) => self.respond(&exchange),
            Err(m) => {
                let msg = m.to_string();
                lock(&self.mismatches).push(m);
                let mut res = Response::new(full(
                    json!({"type": "error", "status": MISMATCH_STATUS, "code": "replay_mismatch", "message": msg})
                        .to_string(),
                ));
                *res.status_mut() = StatusCode::from_u16(MISMATCH_STATUS).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                res.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
        }
    }

    fn respond(&self, ex: &Exchange) -> Response<ResBody> {
        let r = &ex.response;
        let mut res = Response::new(full(r.body.to_bytes(&self.origin)));
        *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (k, v) in &r.headers {
            let v = v.replace(ORIGIN_PLACEHOLDER, &self.origin);
            if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(k.as_str()), HeaderValue::from_str(&v)) {
                res.headers_mut().insert(name, value);
            }
        }
        res
    }
}

impl Matcher {
    pub(crate) fn new(fixture: Fixture, options: ReplayOptions) -> Self {
        let consumed = vec![false; fixture.exchanges.len()];
        Matcher { fixture, options, consumed }
    }

    /// `Ok` when every exchange was consumed.
    pub(crate) fn finish(&self) -> Result<(), ReplayError> {
        let left: Vec<usize> = self.consumed.iter().enumerate().filter(|(_, c)| !**c).map(|(i, _)| i).collect();
        if let Some(first) = left.first() {
            let r = &self.fixture.exchanges[*first].request;
            return Err(ReplayError::Unconsumed { count: left.len(), next: format!("{} {}", r.method, r.uri) });
        }
        Ok(())
    }

    /// Finds the exchange this request stands for and marks it consumed.
    pub(crate) fn pick(&mut self, seen: &Seen) -> Result<usize, Mismatch> {
        let consumed = &mut self.consumed;
        let exchanges = &self.fixture.exchanges;
        let request = format!("{} {}", seen.method, seen.uri);
        let Some(next) = consumed.iter().position(|c| !c) else {
            return Err(Mismatch {
                index: None,
                request,
                differences: vec!["the fixture has no exchange left".into()],
            });
        };
        let mut candidate = next;
        if self.options.parallel_parts && is_part_upload(&seen.method, &seen.headers) {
            let range = seen.headers.get("content-range");
            let run = (next..exchanges.len())
                .take_while(|&j| is_part_upload(&exchanges[j].request.method, &exchanges[j].request.headers));
            for j in run {
                if !consumed[j] && exchanges[j].request.headers.get("content-range") == range {
                    candidate = j;
                    break;
                }
            }
        }
        let differences = differences(&self.options, &exchanges[candidate], seen);
        if differences.is_empty() {
            consumed[candidate] = true;
            Ok(candidate)
        } else {
            Err(Mismatch { index: Some(candidate), request, differences })
        }
    }
}

fn differences(options: &ReplayOptions, ex: &Exchange, seen: &Seen) -> Vec<String> {
    let want = &ex.request;
    let mut d = Vec::new();
    if want.method != seen.method {
        d.push(format!("method: expected {}, got {}", want.method, seen.method));
    }
    if want.uri != seen.uri {
        d.push(format!("uri: expected {}, got {}", want.uri, seen.uri));
    }
    for name in &options.compare_headers {
        let (w, g) = (want.headers.get(name), seen.headers.get(name));
        // Each client picks its own multipart boundary: the media type is what must agree.
        let multipart =
            |v: Option<&String>| v.is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        if name == "content-type" && multipart(w) && multipart(g) {
            continue;
        }
        if w != g {
            d.push(format!("header {name}: expected {w:?}, got {g:?}"));
        }
    }
    let scheme = |h: Option<&String>| h.map(|v| v.split(' ').next().unwrap_or("").to_ascii_lowercase());
    let (w, g) = (scheme(want.headers.get("authorization")), scheme(seen.headers.get("authorization")));
    if w != g {
        d.push(format!("authorization scheme: expected {w:?}, got {g:?}"));
    }
    if !want.body.matches(&seen.body) {
        let show = |b: &Body| {
            let s = serde_json::to_string(b).unwrap_or_default();
            if s.len() > 300 {
                format!("{}...", &s[..300])
            } else {
                s
            }
        };
        d.push(format!("body: expected {}, got {}", show(&want.body), show(&seen.body)));
    }
    d
}
