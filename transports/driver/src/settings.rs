//! One client builder for every transport: the core's settings, the token source and the
//! transport's timeouts, set the same way whichever transport builds the client.

use crate::Error;
use box_upload_core::{
    random_jitter_seed, ClientCredentials, ClientSettings, DeveloperToken, RetryPolicy, SharedTokenSource, TokenSource,
    DEFAULT_PARTS_IN_FLIGHT,
};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Default connect timeout (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle timeout: the longest a request may go without a byte moving either way.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// Whether bodies of [`EXPECT_CONTINUE_FROM`] bytes or more carry `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Bodies from this size on (the parts) are sent with `Expect: 100-continue` when
/// [`ClientBuilder::expect_continue`] is on.
pub const EXPECT_CONTINUE_FROM: usize = 64 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Self {
            core: ClientSettings::default(),
            token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            overall_timeout: None,
            expect_continue: true,
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
            .field("expect_continue", &self.expect_continue)
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
        let config = self.core.config(random_jitter_seed())?;
        Ok(box_upload_core::Client::with_shared_source(config, token))
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
    /// request's own setting. Memory is bounded by about `(n + 1) × part_size`.
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

    /// The longest one request may take in all, body included (default: no limit; the idle
    /// timeout catches stalls). Parts are large: leave room for the slowest link.
    pub fn overall_timeout(mut self, timeout: Duration) -> Self {
        self.settings.overall_timeout = Some(timeout);
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

    /// Sends this `User-Agent` instead of the crate's.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.settings.core.user_agent = Some(user_agent.into());
        self
    }

    /// Whether bodies of 64 KiB or more (the parts) carry `Expect: 100-continue` (default yes):
    /// a server that refuses a part (401, 429, 5xx) can then answer before the part is sent.
    pub fn expect_continue(mut self, enabled: bool) -> Self {
        self.settings.expect_continue = enabled;
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
