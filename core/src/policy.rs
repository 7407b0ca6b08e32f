//! Request policy: where requests go, who may see the token, how they identify themselves, and how
//! failures are retried.

use crate::error::{InputError, UntrustedHost};
use crate::retry::RetryPolicy;
use http::header::{HeaderValue, AUTHORIZATION, USER_AGENT};
use http::{Request, Uri};

/// Box's upload base URL.
pub const DEFAULT_UPLOAD_BASE: &str = "https://upload.box.com/api";

/// Box's API base URL (files, folders, the preflight check), without the `/2.0`.
pub const DEFAULT_API_BASE: &str = "https://api.box.com";

/// The largest `part_size` a big upload accepts unless told otherwise (512 MiB): a big upload
/// holds up to parts in flight + 1 parts in memory, so a session whose `part_size` is larger is
/// aborted before anything is read (see [`Config::max_part_size`]).
pub const DEFAULT_MAX_PART_SIZE: u64 = 512 << 20;

/// The `User-Agent` this crate sends.
pub const USER_AGENT_VALUE: &str = concat!("box-upload-core/", env!("CARGO_PKG_VERSION"));

/// How the core builds and sends requests.
#[derive(Clone, Debug)]
pub struct Config {
    upload_base: String,
    base_uri: Uri,
    api_base: String,
    api_uri: Uri,
    /// Whether the API base was set, rather than derived from the upload base.
    api_base_set: bool,
    trusted_hosts: Vec<String>,
    trust_box_hosts: bool,
    allow_insecure_http: bool,
    user_agent: HeaderValue,
    /// Retries, backoff and the commit budget.
    pub retry: RetryPolicy,
    /// The most bytes of an answer body the driver should read (default 4 MiB; list-parts pages
    /// of 1000 parts are about 150 KB).
    pub max_response_bytes: usize,
    /// The largest `part_size` a big upload accepts (default [`DEFAULT_MAX_PART_SIZE`]). Memory
    /// holds up to parts in flight + 1 parts, so a session with larger parts (Box's choice, or a
    /// hostile server's, up to the whole file) is refused with
    /// [`ProtocolError::PartSizeTooLarge`](crate::ProtocolError::PartSizeTooLarge) and aborted
    /// before a byte is read; on resume, a checkpoint with larger parts is refused the same way.
    pub max_part_size: u64,
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
    /// Sends API-host requests (get a file, the preflight check) here instead of
    /// [`DEFAULT_API_BASE`]; its host is trusted with the token. Unset, it follows the upload
    /// base (see [`Config::with_upload_base`]).
    pub api_base: Option<String>,
    /// Further hosts trusted with the token.
    pub trusted_hosts: Vec<String>,
    /// Allows plain `http://` to hosts that are not loopback (see
    /// [`Config::with_insecure_http_allowed`]); off by default.
    pub allow_insecure_http: bool,
    /// A `User-Agent` instead of [`USER_AGENT_VALUE`].
    pub user_agent: Option<String>,
    /// Retries, backoff and the commit budget (default [`RetryPolicy::default`]).
    pub retry: Option<RetryPolicy>,
    /// The most bytes of an answer body read (default 4 MiB).
    pub max_response_bytes: Option<usize>,
    /// The largest `part_size` a big upload accepts (default [`DEFAULT_MAX_PART_SIZE`]).
    pub max_part_size: Option<u64>,
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
        // First: the bases below are checked against it.
        let mut config = Config::new().with_insecure_http_allowed(self.allow_insecure_http);
        if let Some(base) = &self.upload_base {
            config = config.with_upload_base(base)?;
        }
        if let Some(base) = &self.api_base {
            config = config.with_api_base(base)?;
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
        if let Some(max) = self.max_part_size {
            config.max_part_size = max;
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
            api_base: DEFAULT_API_BASE.to_owned(),
            api_uri: Uri::from_static(DEFAULT_API_BASE),
            api_base_set: false,
            trusted_hosts: Vec::new(),
            trust_box_hosts: true,
            allow_insecure_http: false,
            user_agent: HeaderValue::from_static(USER_AGENT_VALUE),
            retry: RetryPolicy::default(),
            max_response_bytes: 4 << 20,
            max_part_size: DEFAULT_MAX_PART_SIZE,
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
    ///
    /// Unless an API base is set ([`with_api_base`](Self::with_api_base), before or after), the
    /// API base follows: an `https` upload base on a Box host (`box.com` or under it) keeps
    /// [`DEFAULT_API_BASE`]; any other upload base gives its own origin (scheme, host and port:
    /// `http://127.0.0.1:PORT` for the emulator's `http://127.0.0.1:PORT/api`), so a client
    /// pointed at an emulator or a test server never sends a request to Box's real hosts.
    ///
    /// ```
    /// use box_upload_core::Config;
    /// let emulator = Config::new().with_upload_base("http://127.0.0.1:8787/api").unwrap();
    /// assert_eq!(emulator.api_base(), "http://127.0.0.1:8787");
    /// let boxed = Config::new().with_upload_base("https://upload.box.com/api").unwrap();
    /// assert_eq!(boxed.api_base(), "https://api.box.com");
    /// ```
    pub fn with_upload_base(mut self, base: &str) -> Result<Self, InputError> {
        let (trimmed, uri) = parse_base(base)?;
        self.check_cleartext(&uri)?;
        if !self.api_base_set {
            let host = uri.host().unwrap_or_default().to_ascii_lowercase();
            let boxed = uri.scheme_str() == Some("https") && (host == "box.com" || host.ends_with(".box.com"));
            let api = if boxed { DEFAULT_API_BASE.to_owned() } else { origin(&uri) };
            self.api_uri = api.parse().map_err(|_| InputError::BadUrl(base.to_owned()))?;
            self.api_base = api;
        }
        self.upload_base = trimmed;
        self.base_uri = uri;
        Ok(self)
    }

    /// Sends API-host requests ([`GetFile`](crate::operations::GetFile),
    /// [`PreflightFileUpload`](crate::operations::PreflightFileUpload)) to `base` (without the
    /// `/2.0`, e.g. `https://api.box.com`); its host becomes trusted, like the upload base's.
    pub fn with_api_base(mut self, base: &str) -> Result<Self, InputError> {
        let (trimmed, uri) = parse_base(base)?;
        self.check_cleartext(&uri)?;
        self.api_base = trimmed;
        self.api_uri = uri;
        self.api_base_set = true;
        Ok(self)
    }

    /// Also trusts `host` (exact name, any port) with the token.
    #[must_use]
    pub fn with_trusted_host(mut self, host: impl Into<String>) -> Self {
        self.trusted_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Whether plain `http://` may go to hosts that are not loopback (default no). Off, an
    /// `http://` upload or API base, token URL, `session_endpoints` URL or trusted host is
    /// refused unless its host is loopback (`localhost`, `127.0.0.0/8`, `::1`), so the token and
    /// the client secret never cross a network in cleartext. Set it before the bases
    /// ([`ClientSettings::config`] does).
    ///
    /// ```
    /// use box_upload_core::{Config, InputError};
    /// assert!(Config::new().with_upload_base("http://127.0.0.1:8787/api").is_ok());
    /// let refused = Config::new().with_upload_base("http://box.example/api");
    /// assert!(matches!(refused, Err(InputError::InsecureHttp(_))));
    /// let allowed = Config::new().with_insecure_http_allowed(true).with_upload_base("http://box.example/api");
    /// assert!(allowed.is_ok());
    /// ```
    #[must_use]
    pub fn with_insecure_http_allowed(mut self, allowed: bool) -> Self {
        self.allow_insecure_http = allowed;
        self
    }

    /// Refuses `uri` if it is plain `http://` to a host that is not loopback, unless
    /// [`with_insecure_http_allowed`](Self::with_insecure_http_allowed).
    pub fn check_cleartext(&self, uri: &Uri) -> Result<(), InputError> {
        let cleartext = uri.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("http"));
        if cleartext && !self.allow_insecure_http && !uri.host().is_some_and(is_loopback_host) {
            return Err(InputError::InsecureHttp(uri.to_string()));
        }
        Ok(())
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

    /// The API base URL (files, folders, the preflight check), without a trailing slash.
    #[must_use]
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// `<base>/2.0/<path>`.
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}/2.0/{}", self.upload_base, path)
    }

    /// `<API base>/2.0/<path>`.
    pub(crate) fn api_host_url(&self, path: &str) -> String {
        format!("{}/2.0/{}", self.api_base, path)
    }

    /// Whether `uri` may receive the token: the upload base's and the API base's hosts (same
    /// scheme and port), `https` hosts under `box.com` on port 443 unless turned off, and the
    /// allow-listed hosts; never plain `http://` to a host that is not loopback unless
    /// [`with_insecure_http_allowed`](Self::with_insecure_http_allowed).
    pub fn check_trusted(&self, uri: &Uri, context: &'static str) -> Result<(), UntrustedHost> {
        let untrusted = || UntrustedHost { host: uri.host().map_or_else(|| uri.to_string(), str::to_owned), context };
        let host = uri.host().ok_or_else(untrusted)?.to_ascii_lowercase();
        let scheme = uri.scheme_str().ok_or_else(untrusted)?;
        if !matches!(scheme, "http" | "https") || self.check_cleartext(uri).is_err() {
            return Err(untrusted());
        }
        let same_origin = |base: &Uri| {
            base.host().map(str::to_ascii_lowercase).as_deref() == Some(host.as_str())
                && base.scheme_str() == Some(scheme)
                && base.port_u16() == uri.port_u16()
        };
        if same_origin(&self.base_uri) || same_origin(&self.api_uri) {
            return Ok(());
        }
        // Box's own hosts on Box's terms: https on port 443.
        let box_port = uri.port_u16().is_none_or(|p| p == 443);
        if self.trust_box_hosts && scheme == "https" && box_port && (host == "box.com" || host.ends_with(".box.com")) {
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

/// Whether `host` (a URL's host: a name, an IPv4 address, or an IPv6 address with or without
/// brackets) is this machine's loopback: `localhost` and names under it, `127.0.0.0/8`, `::1`.
///
/// ```
/// use box_upload_core::is_loopback_host;
/// assert!(is_loopback_host("localhost") && is_loopback_host("127.3.2.1") && is_loopback_host("[::1]"));
/// assert!(!is_loopback_host("upload.box.com") && !is_loopback_host("10.0.0.1") && !is_loopback_host("localhost.example"));
/// ```
#[must_use]
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
    bare.parse::<core::net::IpAddr>().is_ok_and(|ip| match ip {
        core::net::IpAddr::V4(v4) => v4.is_loopback(),
        core::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    })
}

/// A base URL without its trailing slashes, checked: absolute `http(s)`, with a host, no query.
fn parse_base(base: &str) -> Result<(String, Uri), InputError> {
    let trimmed = base.trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|_| InputError::BadUrl(base.to_owned()))?;
    if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) || uri.query().is_some() {
        return Err(InputError::BadUrl(base.to_owned()));
    }
    Ok((trimmed.to_owned(), uri))
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    match uri.authority() {
        // The authority without any user info (`user@`), which a base URL should not carry.
        Some(a) => {
            let hostport = a.as_str().rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{hostport}")
        }
        None => format!("{scheme}://{}", uri.host().unwrap_or_default()),
    }
}
