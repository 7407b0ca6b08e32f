//! Box-shaped error answers (`ClientError`).

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{full, ResBody};

/// The `help_url` Box puts in every error.
const HELP_URL: &str = "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/";

/// An API error, turned into Box's JSON `ClientError` by [`ApiError::into_response`].
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) context_info: Option<Value>,
    pub(crate) headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            context_info: None,
            headers: Vec::new(),
        }
    }

    /// Adds `context_info`.
    pub(crate) fn context(mut self, info: Value) -> Self {
        self.context_info = Some(info);
        self
    }

    /// Adds a response header.
    pub(crate) fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// 400 `bad_request`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 401 `unauthorized`, with a `WWW-Authenticate` header.
    pub(crate) fn unauthorized(detail: &str) -> Self {
        let www = format!("Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"{detail}\"");
        Self::new(401, "unauthorized", "Unauthorized").header(header::WWW_AUTHENTICATE, &www)
    }

    /// 416 `requested_range_not_satisfiable`.
    pub(crate) fn bad_range(message: impl Into<String>) -> Self {
        Self::new(416, "requested_range_not_satisfiable", message)
    }

    /// The JSON body of this error.
    pub(crate) fn to_json(&self, request_id: &str) -> Value {
        json!({
            "type": "error",
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "context_info": self.context_info.clone().unwrap_or_else(|| json!({})),
            "help_url": HELP_URL,
            "request_id": request_id,
        })
    }

    /// The HTTP response for this error.
    pub(crate) fn into_response(self, request_id: &str) -> Response<ResBody> {
        let body = self.to_json(request_id).to_string();
        let mut res = Response::new(full(body));
        *res.status_mut() = self.status;
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        res
    }
}
