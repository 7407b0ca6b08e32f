//! One request over ureq: send the core's `http::Request<Bytes>`, hand back every header and at
//! most `max_response_bytes` of the body, and name failures with the core's kinds.

use box_upload_core::{RequestKind, Transmit, TransportError, TransportErrorKind};
use box_upload_driver::{Error, Proxy, ProxyRules, Settings, SourceReader};
use bytes::Bytes;
use http::{Method, Request, Response};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The ureq agents every worker shares (their pools keep connections alive between requests):
/// one direct, one per proxy the driver's rules name, and how requests are sent with them.
#[derive(Clone)]
pub(crate) struct Agent {
    pub(crate) agent: ureq::Agent,
    pub(crate) expect_continue: bool,
    /// Which proxy each URL goes through (the driver decides; ureq's own rules are not used).
    pub(crate) proxies: Arc<ProxyRules>,
    /// An agent per proxy, tunnelling with `CONNECT`.
    pub(crate) proxied: Arc<Vec<(Proxy, ureq::Agent)>>,
    /// The client's settings, for each request's deadline (none for an agent of the caller's).
    pub(crate) settings: Option<Arc<Settings>>,
}

impl Agent {
    /// The agents the settings describe: no redirects followed, every status an answer, TLS
    /// trusting the driver's roots, bounded timeouts, and a proxy only where the driver's rules
    /// say (never ureq's reading of the environment).
    pub(crate) fn new(settings: &Settings) -> Result<Self, Error> {
        let roots: Vec<Certificate<'static>> =
            settings.root_certificates()?.iter().map(|der| Certificate::from_der(der).to_owned()).collect();
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(box_upload_driver::tls_provider())
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let proxies = settings.proxy_rules()?;
        let mut proxied = Vec::new();
        for proxy in proxies.proxies() {
            let mut builder = ureq::Proxy::builder(ureq::ProxyProtocol::Http).host(proxy.host()).port(proxy.port());
            if let Some(user) = proxy.username() {
                builder = builder.username(user.expose());
            }
            if let Some(password) = proxy.password() {
                builder = builder.password(password.expose());
            }
            let ureq_proxy = builder.build().map_err(|_| Error::Config(format!("ureq refused the proxy {proxy}")))?;
            proxied.push((proxy.clone(), agent(settings, &tls, Some(ureq_proxy))));
        }
        Ok(Self {
            agent: agent(settings, &tls, None),
            expect_continue: settings.expect_continue,
            proxies: Arc::new(proxies),
            proxied: Arc::new(proxied),
            settings: Some(Arc::new(settings.clone())),
        })
    }

    /// The agent for `uri`, and the proxy it goes through.
    fn route(&self, uri: &http::Uri) -> (&ureq::Agent, Option<&Proxy>) {
        match self.proxies.proxy_for(uri) {
            Some(proxy) => match self.proxied.iter().find(|(p, _)| p == proxy) {
                Some((p, agent)) => (agent, Some(p)),
                None => (&self.agent, None),
            },
            None => (&self.agent, None),
        }
    }
}

fn agent(settings: &Settings, tls: &TlsConfig, proxy: Option<ureq::Proxy>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(proxy)
        .tls_config(tls.clone())
        .user_agent(ureq::config::AutoHeaderValue::None)
        .accept(ureq::config::AutoHeaderValue::None)
        .timeout_connect(Some(settings.connect_timeout))
        .timeout_await_100(Some(box_upload_driver::EXPECT_CONTINUE_WAIT))
        .timeout_per_read(Some(settings.idle_timeout))
        .timeout_per_write(Some(settings.idle_timeout))
        .timeout_per_call(settings.overall_timeout)
        .max_idle_connections(settings.pool_size())
        .max_idle_connections_per_host(settings.pool_size())
        .build()
        .new_agent()
}

/// Sends `transmit` and reads its answer; logs the method, kind, path, status and time taken
/// (never headers or bodies).
pub(crate) fn send(agent: &Agent, transmit: Transmit) -> Result<Response<Bytes>, TransportError> {
    let Transmit { id, kind, mut request, max_response_bytes } = transmit;
    if agent.expect_continue {
        // A server that refuses the request (401, 429, 5xx) answers before the body is sent,
        // instead of closing the connection under it, and the answer reaches the core. (The
        // core asks for it on the parts it sends again, whatever this setting.)
        box_upload_driver::expect_continue(&mut request);
    }
    let (via, proxy) = agent.route(request.uri());
    let span = tracing::debug_span!(
        "box_request",
        id = id.0,
        kind = %kind,
        method = %request.method(),
        path = request.uri().path(),
        proxy = proxy.map(tracing::field::display),
    );
    let _enter = span.enter();
    let started = Instant::now();
    let host = request.uri().host().unwrap_or_default().to_owned();
    let body_len = match request.extensions().get::<SourceReader>() {
        Some(streamed) => usize::try_from(streamed.len()).unwrap_or(usize::MAX),
        None => request.body().len(),
    };
    let deadline = agent.settings.as_ref().and_then(|s| s.request_deadline(body_len));
    let result =
        exchange(via, kind, request, max_response_bytes, deadline).map_err(|e| name(e, &host, proxy, deadline));
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

/// ureq's error, before it is named with the host and proxy it concerns.
struct Failure(ureq::Error);

/// `error` as the core's transport error: a refused certificate names the host, a proxy that
/// failed names the proxy (never its credentials).
fn name(Failure(error): Failure, host: &str, proxy: Option<&Proxy>, deadline: Option<Duration>) -> TransportError {
    if let (ureq::Error::Timeout(ureq::Timeout::Global), Some(d)) = (&error, deadline) {
        return box_upload_driver::deadline_passed(d);
    }
    let tls = match &error {
        ureq::Error::Rustls(tls) => Some(tls),
        ureq::Error::Io(io) => box_upload_driver::find_cause::<rustls::Error>(io),
        _ => None,
    };
    if let Some(tls @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)) = tls {
        return box_upload_driver::certificate_refused(host, &tls.to_string());
    }
    match (&error, proxy) {
        (ureq::Error::ConnectProxyFailed(why), Some(p)) => box_upload_driver::proxy_failed(p, why),
        (_, Some(p)) => {
            let e = map_error(error);
            if e.kind == TransportErrorKind::Connect {
                box_upload_driver::proxy_failed(p, &e.message)
            } else {
                e
            }
        }
        (_, None) => map_error(error),
    }
}

fn exchange(
    agent: &ureq::Agent,
    _kind: RequestKind,
    request: Request<Bytes>,
    max_response_bytes: usize,
    deadline: Option<Duration>,
) -> Result<Response<Bytes>, Failure> {
    let (parts, body) = request.into_parts();
    let takes_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    let streamed = parts.extensions.get::<SourceReader>().cloned();
    // The request's deadline covers the whole exchange, the answer's body included.
    let response = if let Some(streamed) = streamed {
        // A direct upload: the file's bytes read from the source as ureq writes them, a chunk at
        // a time (the core set `Content-Length`).
        let body = ureq::SendBody::from_owned_reader(streamed.reader());
        agent.run(with_deadline(agent, Request::from_parts(parts, body), deadline))
    } else if body.is_empty() && !takes_body {
        agent.run(with_deadline(agent, Request::from_parts(parts, ()), deadline))
    } else {
        // A borrowed slice: the part's bytes are written from the core's buffer, not copied.
        agent.run(with_deadline(agent, Request::from_parts(parts, &body[..]), deadline))
    }
    .map_err(Failure)?;
    let (head, mut body) = response.into_parts();
    let limit = u64::try_from(max_response_bytes).unwrap_or(u64::MAX);
    let bytes = body.with_config().limit(limit).read_to_vec().map_err(Failure)?;
    Ok(Response::from_parts(head, Bytes::from(bytes)))
}

/// `request` bounded by `deadline` (without one, the agent's own timeouts alone).
fn with_deadline<S: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: Request<S>,
    deadline: Option<Duration>,
) -> Request<S> {
    match deadline {
        Some(d) => agent.configure_request(request).timeout_global(Some(d)).build(),
        None => request,
    }
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
        ureq::Error::ConnectProxyFailed(_) => K::Connect,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => K::Connect,
        _ => K::Other,
    };
    TransportError::new(kind, error.to_string())
}
