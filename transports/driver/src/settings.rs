//! One client builder for every transport: the core's settings, the token source and the
//! transport's timeouts, set the same way whichever transport builds the client.

use crate::network::{NoProxy, Proxy, ProxyRules, ProxySetting};
use crate::Error;
use box_upload_core::Secret;
use box_upload_core::{
    random_jitter_seed, ClientCredentials, ClientSettings, DeveloperToken, RetryPolicy, SharedTokenSource, TokenSource,
    DEFAULT_PARTS_IN_FLIGHT,
};
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

/// Default connect timeout (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle timeout: the longest a request may go without a byte moving either way.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default minimum transfer rate, in bytes per second: a request must be over within the idle
/// timeout plus its body at this rate (see [`Settings::request_deadline`]).
pub const DEFAULT_MIN_TRANSFER_RATE: u64 = 16 * 1024;

/// A transport that can build a client from [`Settings`]: what makes
/// [`ClientBuilder::build`] give that transport's client.
pub trait Wire {
    /// The client it builds.
    type Client;

    /// Builds the client.
    fn build(settings: Settings) -> Result<Self::Client, Error>;
}

/// What a client is built from. Transports read it in [`Wire::build`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The core's settings (upload and API bases, trusted hosts, retries, bounds, parts in
    /// flight).
    pub core: ClientSettings,
    /// The token source (required).
    pub token: Option<SharedTokenSource>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long a request may go without a byte moving; also how long an unused pooled
    /// connection is kept.
    pub idle_timeout: Duration,
    /// The longest one request may take in all.
    pub overall_timeout: Option<Duration>,
    /// The slowest a request may move its body, in bytes per second (`None`: no such bound).
    pub min_transfer_rate: Option<u64>,
    /// Whether every body of [`EXPECT_CONTINUE_FROM`] bytes or more carries
    /// `Expect: 100-continue` (default no: only parts sent again after a failure do, as the core
    /// asks).
    pub expect_continue: bool,
    /// Which proxy requests go through (default: curl's environment variables).
    pub proxy: ProxySetting,
    /// Whether loopback hosts go through the proxy too (default no).
    pub proxy_loopback: bool,
    /// PEM files of further certificate authorities to trust, beside the platform's and
    /// Mozilla's roots.
    pub ca_files: Vec<PathBuf>,
    /// Files of at least this many bytes go in an upload session, smaller ones in one direct
    /// upload (default [`DEFAULT_CHUNKED_FROM`](box_upload_core::DEFAULT_CHUNKED_FROM); from
    /// 20,000,000 to 50,000,001: Box takes sessions from 20 MB and direct uploads up to 50 MB).
    pub chunked_from: u64,
}

/// Bodies from this size on (the parts) are sent with `Expect: 100-continue` when
/// [`ClientBuilder::expect_continue`] is on; the core uses the same size for the parts it sends
/// again, which ask for `100 Continue` whatever the setting.
pub const EXPECT_CONTINUE_FROM: usize = 64 * 1024;

/// How long a body sent with `Expect: 100-continue` waits for `100 Continue` before it is sent
/// anyway (a server or proxy that ignores `Expect` never answers it). Both transports wait this
/// long, and neither sends the body once a final answer has come instead.
pub const EXPECT_CONTINUE_WAIT: Duration = Duration::from_secs(1);

impl Default for Settings {
    fn default() -> Self {
        Self {
            core: ClientSettings::default(),
            token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            overall_timeout: None,
            min_transfer_rate: Some(DEFAULT_MIN_TRANSFER_RATE),
            expect_continue: false,
            proxy: ProxySetting::default(),
            proxy_loopback: false,
            ca_files: Vec::new(),
            chunked_from: box_upload_core::DEFAULT_CHUNKED_FROM,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("core", &self.core)
            .field("token", &self.token.as_ref().map(|_| "REDACTED"))
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("overall_timeout", &self.overall_timeout)
            .field("min_transfer_rate", &self.min_transfer_rate)
            .field("expect_continue", &self.expect_continue)
            .field("proxy", &self.proxy)
            .field("proxy_loopback", &self.proxy_loopback)
            .field("ca_files", &self.ca_files)
            .field("chunked_from", &self.chunked_from)
            .finish()
    }
}

impl Settings {
    /// The core client these settings describe; fails without a token source or with a bad
    /// setting (URL, zero parts in flight, ...).
    pub fn core_client(&self) -> Result<box_upload_core::Client, Error> {
        let token = self.token.clone().ok_or_else(|| {
            Error::Config("no token source: call developer_token, client_credentials or token_source".into())
        })?;
        let (low, high) = (box_upload_core::MIN_FILE_SIZE, box_upload_core::MAX_DIRECT_UPLOAD_SIZE + 1);
        if !(low..=high).contains(&self.chunked_from) {
            return Err(Error::Config(format!(
                "chunked_from must be from {low} (Box's smallest upload session) to {high} (Box's largest direct upload is {} bytes); got {}",
                high - 1,
                self.chunked_from
            )));
        }
        let config = self.core.config(random_jitter_seed())?;
        Ok(box_upload_core::Client::with_shared_source(config, token))
    }

    /// Which proxy each URL goes through, decided here for every transport: the environment
    /// (read now, with curl's rules), none, or the one set; loopback hosts direct unless
    /// [`proxy_loopback`](Self::proxy_loopback). Fails on a proxy URL that is not `http://`.
    pub fn proxy_rules(&self) -> Result<ProxyRules, Error> {
        let env = |name: &str| std::env::var(name).ok();
        let rules = match &self.proxy {
            ProxySetting::Environment => ProxyRules::from_env(env)?,
            ProxySetting::Direct => ProxyRules::direct(),
            ProxySetting::Url(url) => {
                let no_proxy = ["no_proxy", "NO_PROXY"].iter().find_map(|n| env(n).filter(|v| !v.trim().is_empty()));
                ProxyRules::all_through(Proxy::parse(url.expose())?, NoProxy::parse(&no_proxy.unwrap_or_default()))
            }
        };
        Ok(rules.with_loopback_proxied(self.proxy_loopback))
    }

    /// The deadline of one request whose body is `body_len` bytes, which both wires enforce: the
    /// idle timeout plus the body at the minimum transfer rate, cut to the overall timeout when
    /// one is set. A server that trickles its answer (a byte now and then, never idle long enough
    /// for the idle timeout) or takes a part at a crawl is cut off there, and the core retries.
    ///
    /// ```
    /// use box_upload_driver::Settings;
    /// use std::time::Duration;
    /// let settings = Settings::default(); // 120 s idle, 16 KiB/s
    /// assert_eq!(settings.request_deadline(0), Some(Duration::from_secs(120)));
    /// assert_eq!(settings.request_deadline(8 << 20), Some(Duration::from_secs(120 + 512)));
    /// ```
    #[must_use]
    pub fn request_deadline(&self, body_len: usize) -> Option<Duration> {
        let by_rate = self
            .min_transfer_rate
            .filter(|&rate| rate > 0)
            .map(|rate| self.idle_timeout.saturating_add(Duration::from_secs_f64(body_len as f64 / rate as f64)));
        match (by_rate, self.overall_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The TLS roots both wires build their root store from: the platform's, Mozilla's and
    /// [`ca_files`](Self::ca_files) (see [`root_certificates`](crate::root_certificates)).
    pub fn root_certificates(&self) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, Error> {
        crate::root_certificates(&self.ca_files)
    }

    /// Parts in flight of every upload, when the client sets it.
    #[must_use]
    pub fn parts_in_flight(&self) -> Option<usize> {
        self.core.parts_in_flight
    }

    /// How many idle connections a pool should keep: enough for the parts in flight and a few
    /// more requests.
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.core.parts_in_flight.unwrap_or(DEFAULT_PARTS_IN_FLIGHT).max(8) + 2
    }
}

/// Configures a client of transport `W` (see each transport's `Client::builder`). A token
/// source is required; everything else has a default.
#[must_use]
pub struct ClientBuilder<W> {
    settings: Settings,
    wire: PhantomData<fn() -> W>,
}

impl<W> Default for ClientBuilder<W> {
    fn default() -> Self {
        Self { settings: Settings::default(), wire: PhantomData }
    }
}

impl<W> fmt::Debug for ClientBuilder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder").field("settings", &self.settings).finish()
    }
}

impl<W: Wire> ClientBuilder<W> {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends requests to `url` instead of `https://upload.box.com/api` (e.g. an emulator's
    /// `http://127.0.0.1:PORT/api`). Its host is trusted with the token.
    pub fn upload_base(mut self, url: impl Into<String>) -> Self {
        self.settings.core.upload_base = Some(url.into());
        self
    }

    /// Sends API-host requests (get a file, the preflight check: how a commit whose answer was
    /// lost is confirmed) to `url` instead of `https://api.box.com`. Its host is trusted with the
    /// token. Unset, it follows [`upload_base`](Self::upload_base): an upload base that is not a
    /// Box host gives its own origin (`http://127.0.0.1:PORT` for an emulator's
    /// `http://127.0.0.1:PORT/api`), so no request goes to Box's real hosts.
    pub fn api_base(mut self, url: impl Into<String>) -> Self {
        self.settings.core.api_base = Some(url.into());
        self
    }

    /// Authenticates with a fixed (developer) token.
    pub fn developer_token(self, token: impl Into<String>) -> Self {
        self.token_source(DeveloperToken::new(token))
    }

    /// Authenticates with Box's Client Credentials Grant; tokens are fetched and refreshed as
    /// needed (the token request goes through the same transport).
    pub fn client_credentials(self, credentials: ClientCredentials) -> Self {
        self.token_source(credentials)
    }

    /// Authenticates with any token source.
    pub fn token_source(self, source: impl TokenSource + 'static) -> Self {
        self.shared_token_source(SharedTokenSource::new(source))
    }

    /// Shares a token source (and its cached token) with other clients.
    pub fn shared_token_source(mut self, source: SharedTokenSource) -> Self {
        self.settings.token = Some(source);
        self
    }

    /// Parts read and on the wire at once for every big upload of this client, overriding the
    /// request's own setting. Memory for parts is at most `(n + 2) × part_size` (n parts on the
    /// wire, the next one read ahead, one more while the transport lets go of a sent one), and
    /// `part_size` is at most
    /// [`max_part_size`](Self::max_part_size).
    pub fn parts_in_flight(mut self, n: usize) -> Self {
        self.settings.core.parts_in_flight = Some(n);
        self
    }

    /// How long to wait for a connection (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long a request may go without a byte moving, sent or received, before it fails with
    /// a timeout (default 120 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// The longest one request may take in all, body included (default: no fixed limit; the
    /// idle timeout catches stalls and [`min_transfer_rate`](Self::min_transfer_rate) a
    /// trickle). Parts are large: leave room for the slowest link.
    pub fn overall_timeout(mut self, timeout: Duration) -> Self {
        self.settings.overall_timeout = Some(timeout);
        self
    }

    /// The slowest a request may move its body, in bytes per second (default 16 KiB/s; 0 turns
    /// it off): each request must be over within the idle timeout plus its body at this rate
    /// ([`Settings::request_deadline`]), so a server cannot hold a request open by trickling.
    pub fn min_transfer_rate(mut self, bytes_per_second: u64) -> Self {
        self.settings.min_transfer_rate = (bytes_per_second > 0).then_some(bytes_per_second);
        self
    }

    /// Also trusts `host` with the token (e.g. a proxy or emulator named in `session_endpoints`).
    pub fn trusted_host(mut self, host: impl Into<String>) -> Self {
        self.settings.core.trusted_hosts.push(host.into());
        self
    }

    /// Retries, backoff and the commit budget (the core applies them).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.core.retry = Some(policy);
        self
    }

    /// The most bytes of an answer body read (default: the core's, 4 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.settings.core.max_response_bytes = Some(bytes);
        self
    }

    /// The largest `part_size` a big upload accepts (default
    /// [`DEFAULT_MAX_PART_SIZE`](box_upload_core::DEFAULT_MAX_PART_SIZE), 512 MiB). Box chooses
    /// the part size; a session with larger parts (a server may answer up to the whole file) is
    /// refused with
    /// [`ProtocolError::PartSizeTooLarge`](box_upload_core::ProtocolError::PartSizeTooLarge)
    /// and aborted before anything is read, and so is the resume of a checkpoint with larger
    /// parts. With it, memory for parts stays under `(parts in flight + 2) × max_part_size`.
    pub fn max_part_size(mut self, bytes: u64) -> Self {
        self.settings.core.max_part_size = Some(bytes);
        self
    }

    /// Files of at least `bytes` go in an upload session, smaller ones in one direct upload
    /// (default [`DEFAULT_CHUNKED_FROM`](box_upload_core::DEFAULT_CHUNKED_FROM)). Box takes
    /// sessions from 20,000,000 bytes and direct uploads up to 50 MB, so `bytes` must be from
    /// 20,000,000 to 50,000,001; `build` refuses others with [`Error::Config`].
    pub fn chunked_from(mut self, bytes: u64) -> Self {
        self.settings.chunked_from = bytes;
        self
    }

    /// Sends this `User-Agent` instead of the crate's.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.settings.core.user_agent = Some(user_agent.into());
        self
    }

    /// Whether every body of 64 KiB or more (the parts) carries `Expect: 100-continue`, so a
    /// server that refuses a part (401, 429, 5xx) answers before the part is sent (default no).
    /// Without it only a part sent again after a failure asks first (the core adds the header):
    /// that is where a refusal is likely (a part stored by a send whose answer was lost is
    /// answered 416), while asking on every part costs a round trip each, about 5 % of a
    /// shaped 1 Gbit/s link with 50 ms per request at 4 parts in flight (README). Both
    /// transports wait [`EXPECT_CONTINUE_WAIT`] for `100 Continue`, then send the body.
    pub fn expect_continue(mut self, enabled: bool) -> Self {
        self.settings.expect_continue = enabled;
        self
    }

    /// Sends every request through the HTTP proxy at `url` (`http://[user:password@]host[:port]`,
    /// reached with `CONNECT`; its credentials go to the proxy alone and are never logged),
    /// except hosts in `no_proxy` / `NO_PROXY` and loopback hosts (see
    /// [`proxy_loopback`](Self::proxy_loopback)). The URL is checked when the client is built.
    /// Default: curl's environment variables ([`ProxySetting::Environment`]).
    pub fn proxy(self, url: impl Into<String>) -> Self {
        self.proxy_setting(ProxySetting::Url(Secret::new(url.into())))
    }

    /// Which proxy to use: the environment's (the default), none ([`ProxySetting::Direct`],
    /// whatever the environment says), or one URL.
    pub fn proxy_setting(mut self, setting: ProxySetting) -> Self {
        self.settings.proxy = setting;
        self
    }

    /// Whether loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) go through the proxy too
    /// (default no: a local emulator or test server is reached directly).
    pub fn proxy_loopback(mut self, proxied: bool) -> Self {
        self.settings.proxy_loopback = proxied;
        self
    }

    /// Also trusts the certificate authorities in the PEM file at `path` (e.g. a company's TLS
    /// inspection CA, or the emulator's `--tls` CA), in both transports, beside the platform's
    /// and Mozilla's roots. Read when the client is built.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.ca_files.push(path.into());
        self
    }

    /// Allows plain `http://` to hosts that are not loopback (default no): the token would cross
    /// the network in cleartext. Loopback (an emulator) never needs it.
    pub fn allow_insecure_http(mut self, allowed: bool) -> Self {
        self.settings.core.allow_insecure_http = allowed;
        self
    }

    /// The settings so far.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Builds the client. Fails without a token source, with a bad URL, with zero parts in
    /// flight, or if the transport cannot be set up (TLS).
    pub fn build(self) -> Result<W::Client, Error> {
        W::build(self.settings)
    }
}
