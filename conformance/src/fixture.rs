//! The fixture format: one JSON file per scenario, holding the ordered HTTP exchanges of a run.
//!
//! ```json
//! {
//!   "format": "box-upload-fixture/1",
//!   "name": "create_session",
//!   "description": "POST /files/upload_sessions for a new file",
//!   "source": "emulator",
//!   "exchanges": [
//!     {
//!       "request": {
//!         "method": "POST",
//!         "uri": "/api/2.0/files/upload_sessions",
//!         "headers": {"authorization": "Bearer REDACTED", "content-type": "application/json"},
//!         "body": {"json": {"folder_id": "0", "file_size": 20000000, "file_name": "a.bin"}}
//!       },
//!       "response": {
//!         "status": 201,
//!         "headers": {"content-type": "application/json"},
//!         "body": {"json": {"id": "F97...", "session_endpoints": {"commit": "{{origin}}/api/2.0/..."}}}
//!       }
//!     }
//!   ]
//! }
//! ```
//!
//! - `uri` is the path and query only, so fixtures do not depend on a host.
//! - Only the headers that matter are kept ([`REQUEST_HEADERS`], [`RESPONSE_HEADERS`]), with lower-case
//!   names. Secrets are replaced by [`REDACTED`] (`Authorization: Bearer REDACTED`, client secrets,
//!   access tokens).
//! - Bodies are [`Body`] values: `"empty"`, `{"json": ...}`, `{"form": {...}}`, `{"text": "..."}` or, for
//!   binary data, `{"binary": {"len": N, "sha1": "<hex>"}}` (the bytes themselves are not stored).
//! - The scheme, host and port of the recorded server are replaced by [`ORIGIN_PLACEHOLDER`]
//!   (`{{origin}}`) in bodies and headers; a replay substitutes its own origin.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::body::hex;

/// The value of [`Fixture::format`] this version writes and reads.
pub const FORMAT: &str = "box-upload-fixture/1";

/// Stands for the recorded server's origin (`scheme://host:port`) in bodies and headers.
pub const ORIGIN_PLACEHOLDER: &str = "{{origin}}";

/// Replaces secrets.
pub const REDACTED: &str = "REDACTED";

/// Request headers kept in fixtures (and compared by the replay server, except `content-length`
/// and `authorization`, of which only the `Bearer` scheme is checked).
pub const REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "digest",
    "content-range",
    "if-match",
    "if-none-match",
    "content-md5",
    "content-length",
];

/// Response headers kept in fixtures.
pub const RESPONSE_HEADERS: &[&str] = &["content-type", "retry-after", "location", "www-authenticate"];

/// Form fields whose values are secrets.
pub const SECRET_FIELDS: &[&str] =
    &["client_secret", "access_token", "refresh_token", "assertion", "code", "subject_token", "actor_token"];

/// JSON keys whose values are secrets (`code` is not one: Box errors use it for the error code).
pub const SECRET_JSON_KEYS: &[&str] = &["client_secret", "access_token", "refresh_token", "assertion"];

/// One recorded scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixture {
    /// Always [`FORMAT`].
    pub format: String,
    /// Short name of the scenario (usually the file name without `.json`).
    pub name: String,
    /// What the scenario does.
    #[serde(default)]
    pub description: String,
    /// What answered: `emulator`, `box`, or a client name such as `official-python`.
    #[serde(default)]
    pub source: String,
    /// The exchanges, in the order the answers were completed.
    pub exchanges: Vec<Exchange>,
}

/// A request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// The request.
    pub request: RecordedRequest,
    /// The answer.
    pub response: RecordedResponse,
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path and query, e.g. `/api/2.0/files/upload_sessions/ID/parts?offset=0&limit=100`.
    pub uri: String,
    /// The headers that matter (lower-case names), secrets redacted.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: Body,
}

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// HTTP status.
    pub status: u16,
    /// The headers that matter (lower-case names).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: Body,
}

/// A request or response body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A JSON body.
    Json(Value),
    /// A form-encoded body (`application/x-www-form-urlencoded`), secrets redacted.
    Form(BTreeMap<String, String>),
    /// A text body that is not JSON.
    Text(String),
    /// A binary body, kept as its length and SHA-1 only.
    Binary {
        /// Length in bytes.
        len: u64,
        /// SHA-1, lower-case hex.
        sha1: String,
    },
    /// A multipart/form-data body (a direct upload), part by part; the boundary is not kept.
    Multipart(Vec<FormPart>),
}

/// One part of a [`Body::Multipart`]: its name, its file name, and its bytes classified as a body
/// of their own (the `attributes` of a direct upload as JSON, its `file` as binary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormPart {
    /// `name` of the part's `Content-Disposition`.
    pub name: String,
    /// `filename` of the part's `Content-Disposition`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The part's bytes.
    pub body: Body,
}

/// Errors loading or saving fixtures.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Reading or writing the file failed.
    #[error("fixture I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid fixture.
    #[error("invalid fixture {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Fixture {
    /// An empty fixture.
    pub fn new(name: impl Into<String>, description: impl Into<String>, source: impl Into<String>) -> Self {
        Fixture {
            format: FORMAT.to_string(),
            name: name.into(),
            description: description.into(),
            source: source.into(),
            exchanges: Vec::new(),
        }
    }

    /// Parses a fixture from JSON text.
    pub fn from_json_str(text: &str) -> Result<Fixture, FixtureError> {
        let f: Fixture = serde_json::from_str(text)
            .map_err(|e| FixtureError::Invalid { path: "<string>".into(), message: e.to_string() })?;
        if f.format != FORMAT {
            return Err(FixtureError::Invalid {
                path: "<string>".into(),
                message: format!("format is {:?}, expected {FORMAT:?}", f.format),
            });
        }
        Ok(f)
    }

    /// Pretty JSON text of the fixture (ends with a newline).
    pub fn to_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// Loads a fixture file.
    pub fn load(path: impl AsRef<Path>) -> Result<Fixture, FixtureError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| FixtureError::Io { path: path.display().to_string(), source })?;
        Fixture::from_json_str(&text).map_err(|e| match e {
            FixtureError::Invalid { message, .. } => {
                FixtureError::Invalid { path: path.display().to_string(), message }
            }
            other => other,
        })
    }

    /// Saves the fixture (written to a temporary file, then renamed, so readers never see half a file).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FixtureError> {
        let path = path.as_ref();
        let io = |source| FixtureError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json_string()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Loads every `*.json` fixture in a directory, sorted by file name.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<Fixture>, FixtureError> {
        let dir = dir.as_ref();
        let io = |source| FixtureError::Io { path: dir.display().to_string(), source };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.into_iter().map(Fixture::load).collect()
    }
}

/// The boundary of a multipart body a replay sends.
const MULTIPART_BOUNDARY: &str = "box-upload-fixture-boundary";

impl Body {
    /// Classifies raw bytes: empty, JSON (when it parses), form (by content type), text (UTF-8 with
    /// a text content type) or binary. Secrets in JSON and forms are redacted.
    pub fn from_bytes(content_type: Option<&str>, bytes: &[u8]) -> Body {
        if bytes.is_empty() {
            return Body::Empty;
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        if let Some(boundary) = content_type.and_then(crate::multipart::boundary) {
            if let Some(parts) = crate::multipart::parse(&bytes::Bytes::copy_from_slice(bytes), &boundary) {
                let parts = parts
                    .into_iter()
                    .map(|p| FormPart {
                        body: Body::from_bytes(p.content_type.as_deref(), &p.data),
                        name: p.name,
                        filename: p.filename,
                    })
                    .collect();
                return Body::Multipart(parts);
            }
        }
        if ct.starts_with("application/x-www-form-urlencoded") {
            if let Some(form) = crate::emulator::parse_form_pairs(bytes) {
                let map = form
                    .into_iter()
                    .map(|(k, v)| {
                        let v = if SECRET_FIELDS.contains(&k.as_str()) { REDACTED.to_string() } else { v };
                        (k, v)
                    })
                    .collect();
                return Body::Form(map);
            }
        }
        let textual = ct.is_empty() || ct.contains("json") || ct.starts_with("text/");
        if textual || !ct.contains("octet-stream") {
            if let Ok(mut v) = serde_json::from_slice::<Value>(bytes) {
                if v.is_object() || v.is_array() {
                    redact_json(&mut v);
                    return Body::Json(v);
                }
            }
            if ct.starts_with("text/") {
                if let Ok(s) = std::str::from_utf8(bytes) {
                    return Body::Text(s.to_string());
                }
            }
        }
        Body::Binary { len: bytes.len() as u64, sha1: hex(&Sha1::digest(bytes)) }
    }

    /// The bytes a replay sends for this body, with `{{origin}}` replaced by `origin`. Binary
    /// bodies are not stored, so they are replayed as `len` zero bytes.
    pub fn to_bytes(&self, origin: &str) -> Vec<u8> {
        match self {
            Body::Empty => Vec::new(),
            Body::Json(v) => v.to_string().replace(ORIGIN_PLACEHOLDER, origin).into_bytes(),
            Body::Form(map) => map
                .iter()
                .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
            Body::Text(t) => t.replace(ORIGIN_PLACEHOLDER, origin).into_bytes(),
            Body::Binary { len, .. } => vec![0; usize::try_from(*len).unwrap_or(0)],
            Body::Multipart(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    let filename = p.filename.as_ref().map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
                    out.extend_from_slice(
                        format!(
                            "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"{filename}\r\n\r\n",
                            p.name
                        )
                        .as_bytes(),
                    );
                    out.extend_from_slice(&p.body.to_bytes(origin));
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("--{MULTIPART_BOUNDARY}--\r\n").as_bytes());
                out
            }
        }
    }

    /// Replaces `from` with `to` in every string of the body (used to put [`ORIGIN_PLACEHOLDER`] in).
    pub fn replace_text(&mut self, from: &str, to: &str) {
        if from.is_empty() {
            return;
        }
        match self {
            Body::Json(v) => replace_in_json(v, from, to),
            Body::Text(t) => *t = t.replace(from, to),
            Body::Multipart(parts) => parts.iter_mut().for_each(|p| p.body.replace_text(from, to)),
            Body::Form(map) => {
                for v in map.values_mut() {
                    *v = v.replace(from, to);
                }
            }
            Body::Empty | Body::Binary { .. } => {}
        }
    }

    /// Whether `actual` (a body seen now, classified the same way) matches this recorded body.
    /// Redacted form fields only need to be present.
    pub fn matches(&self, actual: &Body) -> bool {
        match (self, actual) {
            (Body::Form(want), Body::Form(got)) => {
                want.len() == got.len() && want.iter().all(|(k, v)| got.get(k).is_some_and(|g| v == REDACTED || g == v))
            }
            // Part by part, names and bodies (a boundary or file name of one's own is no difference).
            (Body::Multipart(want), Body::Multipart(got)) => {
                want.len() == got.len()
                    && want.iter().zip(got).all(|(w, g)| w.name == g.name && w.body.matches(&g.body))
            }
            _ => self == actual,
        }
    }
}

fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn replace_in_json(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_in_json(x, from, to)),
        Value::Object(o) => o.values_mut().for_each(|x| replace_in_json(x, from, to)),
        _ => {}
    }
}

/// Replaces the values of [`SECRET_JSON_KEYS`] keys in JSON objects by [`REDACTED`].
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(redact_json),
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if SECRET_JSON_KEYS.contains(&k.as_str()) && x.is_string() {
                    *x = Value::String(REDACTED.to_string());
                } else {
                    redact_json(x);
                }
            }
        }
        _ => {}
    }
}

/// Keeps the headers named in `keep` (lower-case), redacting `Authorization` to `Bearer REDACTED`.
pub fn select_headers(headers: &http::HeaderMap, keep: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in keep {
        if let Some(v) = headers.get(*name) {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            let v = if *name == "authorization" {
                match v.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} {REDACTED}"),
                    None => REDACTED.to_string(),
                }
            } else {
                v
            };
            out.insert((*name).to_string(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_classified_and_redacted() {
        assert_eq!(Body::from_bytes(None, b""), Body::Empty);
        let j = Body::from_bytes(Some("application/json"), br#"{"access_token":"abc","expires_in":3}"#);
        assert_eq!(j, Body::Json(serde_json::json!({"access_token": REDACTED, "expires_in": 3})));
        let f = Body::from_bytes(
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials&client_secret=s%2B",
        );
        let Body::Form(map) = &f else { panic!("{f:?}") };
        assert_eq!(map["client_secret"], REDACTED);
        assert_eq!(map["grant_type"], "client_credentials");
        let b = Body::from_bytes(Some("application/octet-stream"), b"{}");
        assert_eq!(b, Body::Binary { len: 2, sha1: "bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f".into() });
        let live = Body::from_bytes(
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials&client_secret=zz",
        );
        assert!(f.matches(&live));
    }

    #[test]
    fn round_trips_through_json() {
        let mut f = Fixture::new("n", "d", "emulator");
        f.exchanges.push(Exchange {
            request: RecordedRequest {
                method: "PUT".into(),
                uri: "/x".into(),
                headers: BTreeMap::from([("digest".to_string(), "sha=AAAA".to_string())]),
                body: Body::Binary { len: 1, sha1: "00".into() },
            },
            response: RecordedResponse { status: 200, headers: BTreeMap::new(), body: Body::Empty },
        });
        assert_eq!(Fixture::from_json_str(&f.to_json_string()).ok(), Some(f));
        assert!(Fixture::from_json_str(r#"{"format":"other","name":"x","exchanges":[]}"#).is_err());
    }
}
