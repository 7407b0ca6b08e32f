//! Box's chunked-upload operations, one module each, the direct upload ([`UploadFile`]), and the
//! two API-host operations an upload needs before it starts and to confirm a commit whose answer
//! was lost ([`GetFile`], [`PreflightFileUpload`]). An
//! operation builds an `http::Request` (without `Authorization`, which
//! [`Config::authorize`](crate::Config::authorize) adds) and parses the answer into its typed
//! result or an [`Error`].

mod abort_session;
mod commit_session;
mod create_session;
mod create_session_for_file;
mod get_file;
mod get_session;
mod list_parts;
mod plan_session;
mod preflight_file_upload;
mod upload_file;
mod upload_part;

pub use abort_session::DeleteUploadSession;
pub(crate) use commit_session::parse_commit;
pub use commit_session::{CommitResponse, CommitUploadSession};
pub use create_session::CreateUploadSession;
pub use create_session_for_file::CreateUploadSessionForFile;
pub use get_file::GetFile;
pub use get_session::GetUploadSession;
pub use list_parts::{ListUploadSessionParts, MAX_LIST_LIMIT, MAX_LIST_OFFSET};
pub use plan_session::{PlanUploadSession, MAX_PLAN_PARTS};
pub(crate) use preflight_file_upload::conflicts as conflicts_of;
pub use preflight_file_upload::{PreflightCheck, PreflightFileUpload};
pub use upload_file::{SourceBody, UploadFile, MAX_DIRECT_UPLOAD_SIZE};
pub use upload_part::UploadFilePart;

use crate::error::{Error, InputError};
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, Uri};

/// One request to Box and the parsing of its answer.
pub trait Operation {
    /// What a successful answer parses into.
    type Output;

    /// Which request this is.
    fn kind(&self) -> RequestKind;

    /// The request, without `Authorization` and `User-Agent`.
    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error>;

    /// The typed result of an answer, or the error it carries.
    fn parse(&self, response: Response<Bytes>) -> Result<Self::Output, Error>;
}

/// Which session an operation acts on: by id (URL built from the upload base) or by one of the
/// session's own `session_endpoints` URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionRef {
    /// The session id.
    Id(String),
    /// A URL from `session_endpoints`.
    Url(String),
}

impl SessionRef {
    /// The URL for this session, with `suffix` (e.g. `/parts`) added to the id form.
    pub(crate) fn url(&self, config: &Config, suffix: &str) -> Result<Uri, Error> {
        let url = match self {
            SessionRef::Id(id) => {
                check_id("session id", id)?;
                config.api_url(&format!("files/upload_sessions/{id}{suffix}"))
            }
            SessionRef::Url(url) => url.clone(),
        };
        parse_url(&url)
    }
}

/// Extra headers every operation accepts.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExtraHeaders(pub(crate) HeaderMap);

impl ExtraHeaders {
    pub(crate) fn apply(&self, request: &mut Request<Bytes>) {
        for (name, value) in &self.0 {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
}

macro_rules! with_headers {
    ($t:ty) => {
        impl $t {
            /// Adds a header to the request (e.g. `X-Box-UA`, a tracing id).
            #[must_use]
            pub fn with_header(mut self, name: http::header::HeaderName, value: http::header::HeaderValue) -> Self {
                self.headers.0.append(name, value);
                self
            }
        }
    };
}
pub(crate) use with_headers;

pub(crate) fn parse_url(url: &str) -> Result<Uri, Error> {
    let uri: Uri = url.parse().map_err(|_| InputError::BadUrl(url.to_owned()))?;
    if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(InputError::BadUrl(url.to_owned()).into());
    }
    Ok(uri)
}

/// Box ids are short runs of letters, digits, `-` and `_`.
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<(), InputError> {
    let ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InputError::BadId { what, value: id.chars().take(140).collect() })
    }
}

/// Box refuses empty names, names over 255 characters, `/` and `\`, non-printable characters,
/// trailing spaces, and `.` and `..`.
pub fn check_file_name(name: &str) -> Result<(), InputError> {
    let bad = |reason| Err(InputError::BadName { name: name.chars().take(300).collect(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.chars().count() > 255 {
        return bad("it is longer than 255 characters");
    }
    if name.contains(['/', '\\']) {
        return bad("it contains a slash or backslash");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if name.ends_with(' ') {
        return bad("it ends with a space");
    }
    if name == "." || name == ".." {
        return bad("it is . or ..");
    }
    Ok(())
}

pub(crate) fn json_request(method: Method, uri: Uri, body: &serde_json::Value) -> Result<Request<Bytes>, Error> {
    let body = serde_json::to_vec(body).map_err(|_| InputError::BadHeader("body".into()))?;
    build(method, uri, Some("application/json"), Bytes::from(body))
}

pub(crate) fn build(
    method: Method,
    uri: Uri,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Result<Request<Bytes>, Error> {
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    if let Some(ct) = content_type {
        request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(request)
}

pub(crate) fn header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}
