//! Access tokens and where they come from, all sans-IO.
//!
//! A [`TokenSource`] either has a token ready or hands back the request that fetches one; the
//! machine that needs the token sends it and returns the answer. The token itself is an
//! [`AccessToken`], which never shows its value in `Debug` or `Display`.

use crate::error::AuthError;
use crate::response::read_json;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, Request, Response, Uri};
use serde::Deserialize;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Box's default token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://api.box.com/oauth2/token";

/// A bearer token. Its value is only reachable through [`AccessToken::secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token value, for the `Authorization` header and nothing else.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Any secret text (a token, a client secret, a proxy password): its value is only reachable
/// through [`Secret::expose`]; `Debug` and `Display` show `<redacted>`.
///
/// ```
/// use box_upload_core::Secret;
/// let secret: Secret = "hunter2".parse().unwrap();
/// assert_eq!(format!("{secret:?} {secret}"), "Secret(<redacted>) <redacted>");
/// assert_eq!(secret.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for where it is used and nowhere else (never a log or an error).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a token source has for the caller.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenPoll {
    /// A token to use now.
    Ready(AccessToken),
    /// Send this request and hand its answer to [`TokenSource::handle_token_response`].
    Fetch(Box<Request<Bytes>>),
}

/// Anything that can give an access token without doing I/O itself.
pub trait TokenSource: Send {
    /// A token valid at `now`, or the request that fetches one.
    fn poll_token(&mut self, now: Instant) -> Result<TokenPoll, AuthError>;

    /// The answer to the request [`poll_token`](Self::poll_token) asked for.
    fn handle_token_response(&mut self, response: Response<Bytes>, now: Instant) -> Result<(), AuthError> {
        let _ = (response, now);
        Err(AuthError::UnexpectedTokenResponse)
    }

    /// Box refused `token` with a 401. Returns whether a fresh token can be had; the caller then
    /// retries once.
    fn invalidate(&mut self, token: &AccessToken) -> bool {
        let _ = token;
        false
    }
}

/// A fixed token, such as a developer token. A 401 with it is final.
#[derive(Clone, Debug)]
pub struct DeveloperToken(AccessToken);

impl DeveloperToken {
    /// A source that always gives `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(AccessToken::new(token))
    }
}

impl TokenSource for DeveloperToken {
    fn poll_token(&mut self, _now: Instant) -> Result<TokenPoll, AuthError> {
        Ok(TokenPoll::Ready(self.0.clone()))
    }
}

/// Who a Client Credentials Grant token acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoxSubject {
    /// The application's service account in an enterprise (`box_subject_type=enterprise`).
    Enterprise(String),
    /// A managed or app user (`box_subject_type=user`).
    User(String),
}

/// Box's Client Credentials Grant: `POST` the client id and secret to the token URL, cache the
/// token until shortly before `expires_in`, fetch a new one when it runs out or Box answers 401.
pub struct ClientCredentials {
    client_id: String,
    client_secret: String,
    subject: BoxSubject,
    token_url: Uri,
    refresh_margin: Duration,
    cached: Option<(AccessToken, Instant)>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("subject", &self.subject)
            .field("token_url", &self.token_url)
            .field("has_token", &self.cached.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl ClientCredentials {
    /// A grant for `subject`, using Box's default token URL.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>, subject: BoxSubject) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            subject,
            token_url: Uri::from_static(DEFAULT_TOKEN_URL),
            refresh_margin: Duration::from_secs(60),
            cached: None,
        }
    }

    /// Sends the token request to `url` instead (an emulator, a proxy).
    pub fn with_token_url(mut self, url: &str) -> Result<Self, AuthError> {
        let uri: Uri = url.parse().map_err(|_| AuthError::BadTokenUrl(url.to_owned()))?;
        if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(AuthError::BadTokenUrl(url.to_owned()));
        }
        self.token_url = uri;
        Ok(self)
    }

    /// Fetches a new token this long before the old one expires (default 60 s).
    #[must_use]
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The token URL in use.
    #[must_use]
    pub fn token_url(&self) -> &Uri {
        &self.token_url
    }

    /// The token request, as sent. Its body holds the client secret: do not log it.
    pub fn token_request(&self) -> Result<Request<Bytes>, AuthError> {
        let (subject_type, subject_id) = match &self.subject {
            BoxSubject::Enterprise(id) => ("enterprise", id),
            BoxSubject::User(id) => ("user", id),
        };
        let body = form_encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("box_subject_type", subject_type),
            ("box_subject_id", subject_id),
        ]);
        Request::builder()
            .method(Method::POST)
            .uri(self.token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Bytes::from(body))
            .map_err(|_| AuthError::BadTokenUrl(self.token_url.to_string()))
    }
}

impl TokenSource for ClientCredentials {
    fn poll_token(&mut self, now: Instant) -> Result<TokenPoll, AuthError> {
        if let Some((token, valid_until)) = &self.cached {
            if now < *valid_until {
                return Ok(TokenPoll::Ready(token.clone()));
            }
        }
        self.cached = None;
        Ok(TokenPoll::Fetch(Box::new(self.token_request()?)))
    }

    fn handle_token_response(&mut self, response: Response<Bytes>, now: Instant) -> Result<(), AuthError> {
        let status = response.status();
        if !status.is_success() {
            let err = crate::response::api_error(response);
            return Err(AuthError::Refused(Box::new(err)));
        }
        let answer: TokenAnswer = read_json(response.body()).map_err(|e| AuthError::BadTokenResponse(e.to_string()))?;
        if answer.access_token.is_empty() {
            return Err(AuthError::BadTokenResponse("empty access_token".into()));
        }
        // Box's tokens live about an hour; assume that when it does not say.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600).min(365 * 24 * 3600));
        let usable = lifetime.saturating_sub(self.refresh_margin.min(lifetime / 2));
        self.cached = Some((AccessToken::new(answer.access_token), now + usable));
        Ok(())
    }

    fn invalidate(&mut self, token: &AccessToken) -> bool {
        if self.cached.as_ref().is_some_and(|(t, _)| t == token) {
            self.cached = None;
        }
        true
    }
}

/// A token source shared by every machine a client starts, so one fetched token serves them all.
#[derive(Clone)]
pub struct SharedTokenSource(Arc<Mutex<dyn TokenSource>>);

impl SharedTokenSource {
    /// Shares `source`.
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Self(Arc::new(Mutex::new(source)))
    }

    fn with<R>(&self, f: impl FnOnce(&mut dyn TokenSource) -> R) -> R {
        // A panic in another holder leaves plain data behind; keep using it.
        let mut guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut *guard)
    }

    /// See [`TokenSource::poll_token`].
    pub fn poll_token(&self, now: Instant) -> Result<TokenPoll, AuthError> {
        self.with(|s| s.poll_token(now))
    }

    /// See [`TokenSource::handle_token_response`].
    pub fn handle_token_response(&self, response: Response<Bytes>, now: Instant) -> Result<(), AuthError> {
        self.with(|s| s.handle_token_response(response, now))
    }

    /// See [`TokenSource::invalidate`].
    pub fn invalidate(&self, token: &AccessToken) -> bool {
        self.with(|s| s.invalidate(token))
    }
}

impl fmt::Debug for SharedTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedTokenSource(..)")
    }
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

pub(crate) fn percent_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
}
