//! Bearer-token checks and the OAuth 2.0 Client Credentials Grant (`POST /oauth2/token`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::errors::ApiError;

/// Tokens the emulator accepts.
#[derive(Debug)]
pub(crate) struct Auth {
    static_tokens: Vec<String>,
    client: Option<(String, String)>,
    inner: Mutex<AuthInner>,
}

#[derive(Debug)]
struct AuthInner {
    lifetime: Duration,
    issued: HashMap<String, SystemTime>,
}

/// An OAuth error answer (`{"error": ..., "error_description": ...}`).
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> OAuthError {
    OAuthError { status, body: json!({"error": error, "error_description": description}) }
}

impl Auth {
    pub(crate) fn new(static_tokens: Vec<String>, client: Option<(String, String)>, lifetime: Duration) -> Self {
        Auth { static_tokens, client, inner: Mutex::new(AuthInner { lifetime, issued: HashMap::new() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_lifetime(&self, lifetime: Duration) {
        self.lock().lifetime = lifetime;
    }

    /// Checks `Authorization: Bearer <token>`.
    pub(crate) fn check(&self, headers: &HeaderMap, now: SystemTime) -> Result<(), ApiError> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("The access token is missing"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| ApiError::unauthorized("The Authorization header is not a Bearer token"))?;
        if self.static_tokens.iter().any(|t| t == token) {
            return Ok(());
        }
        match self.lock().issued.get(token) {
            Some(expiry) if *expiry > now => Ok(()),
            Some(_) => Err(ApiError::unauthorized("The access token provided has expired")),
            None => Err(ApiError::unauthorized("The access token provided is invalid")),
        }
    }

    /// Handles a form-encoded token request; `token` is the new token's value.
    pub(crate) fn issue(&self, form: &[(String, String)], now: SystemTime, token: String) -> Result<Value, OAuthError> {
        let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        match get("grant_type") {
            Some("client_credentials") => {}
            Some(_) => {
                return Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Grant type is unsupported"))
            }
            None => {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The \"grant_type\" parameter is missing",
                ))
            }
        }
        let Some((id, secret)) = &self.client else {
            return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "No client credentials are configured"));
        };
        if get("client_id") != Some(id.as_str()) || get("client_secret") != Some(secret.as_str()) {
            return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "The client credentials are invalid"));
        }
        match (get("box_subject_type"), get("box_subject_id")) {
            (Some("enterprise" | "user"), Some(sid)) if !sid.is_empty() => {}
            _ => {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Grant credentials are invalid: box_subject_type must be enterprise or user, with box_subject_id",
                ))
            }
        }
        let mut inner = self.lock();
        let lifetime = inner.lifetime;
        inner.issued.insert(token.clone(), now + lifetime);
        Ok(json!({
            "access_token": token,
            "expires_in": lifetime.as_secs(),
            "token_type": "bearer",
            "restricted_to": [],
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }))
    }
}

/// Parses `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte).
pub(crate) fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+`.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = bytes.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
