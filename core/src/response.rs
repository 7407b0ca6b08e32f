//! Turning Box's answers into typed results: one helper for every non-2xx answer, one for JSON.

use crate::error::{ApiError, Error, ProtocolError};
use crate::models::ClientError;
use crate::RequestKind;
use bytes::Bytes;
use http::Response;
use serde::de::DeserializeOwned;

/// Parses JSON from a body; serde_json enforces its own recursion limit.
pub(crate) fn read_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Box's error for a non-2xx answer. A body that is not Box's error object still gives an error
/// with the status and the start of the body as its message.
#[must_use]
pub fn api_error(response: Response<Bytes>) -> ApiError {
    let status = response.status().as_u16();
    let body = response.body();
    let error = match read_json::<ClientError>(body) {
        Ok(e) => e,
        Err(_) => ClientError {
            status: Some(status),
            message: (!body.is_empty()).then(|| {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                text.trim().to_owned()
            }),
            request_id: response.headers().get("box-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
            ..ClientError::default()
        },
    };
    ApiError { status, kind: None, error: Box::new(error) }
}

/// The typed body of a 2xx answer, or Box's error for any other.
pub(crate) fn parse_json<T: DeserializeOwned>(kind: RequestKind, response: Response<Bytes>) -> Result<T, Error> {
    let status = response.status();
    if !status.is_success() {
        return Err(error_for(kind, response));
    }
    read_json(response.body())
        .map_err(|e| ProtocolError::BadJson { kind, status: status.as_u16(), detail: e.to_string() }.into())
}

/// Box's error for a non-2xx answer to `kind`.
pub(crate) fn error_for(kind: RequestKind, response: Response<Bytes>) -> Error {
    let status = response.status();
    if status.is_redirection() || status.is_informational() {
        return ProtocolError::UnexpectedStatus { kind, status: status.as_u16() }.into();
    }
    let mut e = api_error(response);
    e.kind = Some(kind);
    Error::Api(e)
}

// Answers are parsed in one way only: `Operation::parse` of the operation that sent the request
// (the commit's 201/202 logic is `operations::commit_session::parse_commit`, which the big upload
// and `CommitAndWait` share). There are no `TryFrom<http::Response>` impls.
