//! Request policy: where requests go, who may see the token, how they identify themselves, and how
//! failures are retried.

use crate::error::{InputError, UntrustedHost};
use crate::retry::RetryPolicy;
use http::header::{HeaderValue, AUTHORIZATION, USER_AGENT};
use http::{Request, Uri};

/// Box's upload base URL.
pub const DEFAULT_UPLOAD_BASE: &str = "https://upload.box.com/api";

/// The `User-Agent` this crate sends.
pub const USER_AGENT_VALUE: &str = concat!("box-upload-core/", env!("CARGO_PKG_VERSION"));

/// How the core builds and sends requests.
#[derive(Clone, Debug)]
pub struct Config {
    upload_base: String,
    base_uri: Uri,
    trusted_hosts: Vec<String>,
    trust_box_hosts: bool,
    user_agent: HeaderValue,
    /// Retries, backoff and the commit budget.
    pub retry: RetryPolicy,
    /// The most bytes of an answer body the driver should read (default 4 MiB; list-parts pages
    /// of 1000 parts are about 150 KB).
    pub max_response_bytes: usize,
    /// Seed of the backoff jitter; drivers give a random one, tests a fixed one.
    pub jitter_seed: u64,
}

/// What a transport's client builder collects for the core, turned into a [`Config`] here so
/// that every transport applies the same rules.
///
/// ```
/// use box_upload_core::{ClientSettings, InputError};
/// let settings = ClientSettings { upload_base: Some("http://127.0.0.1:8787/api".into()), ..Default::default() };
/// let config = settings.config(7).unwrap();
/// assert_eq!(config.upload_base(), "http://127.0.0.1:8787/api");
/// let none = ClientSettings { parts_in_flight: Some(0), ..Default::default() };
/// assert!(matches!(none.config(7), Err(InputError::ZeroParallelism)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientSettings {
    /// Sends requests here instead of [`DEFAULT_UPLOAD_BASE`]; its host is trusted with the token.
    pub upload_base: Option<String>,
    /// Further hosts trusted with the token.
    pub trusted_hosts: Vec<String>,
    /// A `User-Agent` instead of [`USER_AGENT_VALUE`].
    pub user_agent: Option<String>,
    /// Retries, backoff and the commit budget (default [`RetryPolicy::default`]).
    pub retry: Option<RetryPolicy>,
    /// The most bytes of an answer body read (default 4 MiB).
    pub max_response_bytes: Option<usize>,
    /// Parts in flight for every big upload, overriding the request's own setting.
    pub parts_in_flight: Option<usize>,
}

impl ClientSettings {
    /// Checks the settings and makes the core's configuration. `jitter_seed` should differ
    /// between clients (see [`random_jitter_seed`]) so that they do not retry in step.
    pub fn config(&self, jitter_seed: u64) -> Result<Config, InputError> {
        if self.parts_in_flight == Some(0) {
            return Err(InputError::ZeroParallelism);
        }
        let mut config = Config::new();
        if let Some(base) = &self.upload_base {
            config = config.with_upload_base(base)?;
        }
        for host in &self.trusted_hosts {
            config = config.with_trusted_host(host.clone());
        }
        if let Some(user_agent) = &self.user_agent {
            config = config.with_user_agent(user_agent)?;
        }
        if let Some(retry) = &self.retry {
            config.retry = retry.clone();
        }
        if let Some(max) = self.max_response_bytes {
            config.max_response_bytes = max;
        }
        config.jitter_seed = jitter_seed;
        Ok(config)
    }
}

/// A seed for the backoff jitter that differs between processes and between calls, from the
/// standard library's randomly keyed hasher (keyed from the operating system's randomness).
#[must_use]
pub fn random_jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            upload_base: DEFAULT_UPLOAD_BASE.to_owned(),
            base_uri: Uri::from_static(DEFAULT_UPLOAD_BASE),
            trusted_hosts: Vec::new(),
            trust_box_hosts: true,
            user_agent: HeaderValue::from_static(USER_AGENT_VALUE),
            retry: RetryPolicy::default(),
            max_response_bytes: 4 << 20,
            jitter_seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl Config {
    /// Box's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends uploads to `base` (e.g. an emulator's `http://127.0.0.1:PORT/api`); its host becomes
    /// trusted.
    pub fn with_upload_base(mut self, base: &str) -> Result<Self, InputError> {
        let trimmed = base.trim_end_matches('/');
        let uri: Uri = trimmed.parse().map_err(|_| InputError::BadUrl(base.to_owned()))?;
        if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) || uri.query().is_some() {
            return Err(InputError::BadUrl(base.to_owned()));
        }
        self.upload_base = trimmed.to_owned();
        self.base_uri = uri;
        Ok(self)
    }

    /// Also trusts `host` (exact name, any port) with the token.
    #[must_use]
    pub fn with_trusted_host(mut self, host: impl Into<String>) -> Self {
        self.trusted_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Whether `https` hosts under `box.com` are trusted (default yes).
    #[must_use]
    pub fn with_box_hosts_trusted(mut self, trusted: bool) -> Self {
        self.trust_box_hosts = trusted;
        self
    }

    /// Sends `user_agent` instead of the crate's own.
    pub fn with_user_agent(mut self, user_agent: &str) -> Result<Self, InputError> {
        self.user_agent = HeaderValue::from_str(user_agent).map_err(|_| InputError::BadHeader("user-agent".into()))?;
        Ok(self)
    }

    /// The upload base URL, without a trailing slash.
    #[must_use]
    pub fn upload_base(&self) -> &str {
        &self.upload_base
    }

    /// `<base>/2.0/<path>`.
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}/2.0/{}", self.upload_base, path)
    }

    /// Whether `uri` may receive the token: the upload base's host (same scheme), `https` hosts
    /// under `box.com` unless turned off, and the allow-listed hosts.
    pub fn check_trusted(&self, uri: &Uri, context: &'static str) -> Result<(), UntrustedHost> {
        let untrusted = || UntrustedHost { host: uri.host().map_or_else(|| uri.to_string(), str::to_owned), context };
        let host = uri.host().ok_or_else(untrusted)?.to_ascii_lowercase();
        let scheme = uri.scheme_str().ok_or_else(untrusted)?;
        if !matches!(scheme, "http" | "https") {
            return Err(untrusted());
        }
        let base_host = self.base_uri.host().map(str::to_ascii_lowercase);
        if base_host.as_deref() == Some(host.as_str())
            && self.base_uri.scheme_str() == Some(scheme)
            && self.base_uri.port_u16() == uri.port_u16()
        {
            return Ok(());
        }
        if self.trust_box_hosts && scheme == "https" && (host == "box.com" || host.ends_with(".box.com")) {
            return Ok(());
        }
        if self.trusted_hosts.contains(&host) {
            return Ok(());
        }
        Err(untrusted())
    }

    /// Adds `User-Agent` and, if the URL is trusted, `Authorization: Bearer` (marked sensitive so
    /// `Debug` of the request hides it).
    pub fn authorize<B>(
        &self,
        request: &mut Request<B>,
        token: &crate::AccessToken,
        context: &'static str,
    ) -> Result<(), crate::Error> {
        self.check_trusted(request.uri(), context)?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
            .map_err(|_| crate::AuthError::Source("the token has characters a header cannot carry".into()))?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        self.stamp(request);
        Ok(())
    }

    /// Adds the `User-Agent` header.
    pub fn stamp<B>(&self, request: &mut Request<B>) {
        request.headers_mut().insert(USER_AGENT, self.user_agent.clone());
    }
}
