//! `POST /2.0/files/upload_sessions/{id}/commit` (or `session_endpoints.commit`).

use super::{header, json_request, with_headers, ExtraHeaders, Operation, SessionRef};
use crate::digest::Sha1Digest;
use crate::error::{Error, InputError};
use crate::models::{Files, UploadPart};
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::header::{HeaderValue, IF_MATCH, IF_NONE_MATCH};
use http::{Method, Request, Response, StatusCode};
use std::time::Duration;

/// Commits a session: the parts, in offset order, and the whole file's SHA-1.
#[derive(Clone, Debug)]
pub struct CommitUploadSession {
    /// The session.
    pub session: SessionRef,
    /// Every part, in offset order.
    pub parts: Vec<UploadPart>,
    /// SHA-1 of the whole file.
    pub digest: Sha1Digest,
    /// Commit only if the file's etag is this (new versions).
    pub if_match: Option<String>,
    /// Commit only if the file's etag is not this.
    pub if_none_match: Option<String>,
    /// File attributes sent with the parts (e.g. `{"content_modified_at": "2017-04-08T00:58:08Z"}`).
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) headers: ExtraHeaders,
}

/// What a commit answered.
#[derive(Clone, Debug, PartialEq)]
pub enum CommitResponse {
    /// 201: the file or version exists.
    Committed(Files),
    /// 202: Box has not processed every part yet; commit again after `retry_after` (Box's
    /// `Retry-After`, when it sent one).
    NotReady {
        /// How long Box asked to wait.
        retry_after: Option<Duration>,
    },
}

impl CommitUploadSession {
    /// Commits the session with this id.
    pub fn by_id(session_id: impl Into<String>, parts: Vec<UploadPart>, digest: Sha1Digest) -> Self {
        Self::new(SessionRef::Id(session_id.into()), parts, digest)
    }

    /// Commits at the session's `session_endpoints.commit` URL.
    pub fn by_url(url: impl Into<String>, parts: Vec<UploadPart>, digest: Sha1Digest) -> Self {
        Self::new(SessionRef::Url(url.into()), parts, digest)
    }

    /// Commits `session`; the parts are put in offset order.
    pub fn new(session: SessionRef, mut parts: Vec<UploadPart>, digest: Sha1Digest) -> Self {
        parts.sort_by_key(|p| p.offset);
        Self {
            session,
            parts,
            digest,
            if_match: None,
            if_none_match: None,
            attributes: None,
            headers: ExtraHeaders::default(),
        }
    }

    /// Sends `If-Match: etag`.
    #[must_use]
    pub fn with_if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// Sets `If-Match` and `If-None-Match` at once, each only when given.
    #[must_use]
    pub fn with_conditions(mut self, if_match: Option<String>, if_none_match: Option<String>) -> Self {
        self.if_match = if_match.or(self.if_match);
        self.if_none_match = if_none_match.or(self.if_none_match);
        self
    }

    /// Sends file attributes with the commit, as Box's `attributes` object.
    #[must_use]
    pub fn with_attributes(mut self, attributes: serde_json::Map<String, serde_json::Value>) -> Self {
        self.attributes = Some(attributes);
        self
    }

    /// Sends `If-None-Match: etag`.
    #[must_use]
    pub fn with_if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.if_none_match = Some(etag.into());
        self
    }
}

with_headers!(CommitUploadSession);

impl Operation for CommitUploadSession {
    type Output = CommitResponse;

    fn kind(&self) -> RequestKind {
        RequestKind::CommitSession
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let uri = self.session.url(config, "/commit")?;
        let mut body = serde_json::json!({ "parts": self.parts });
        if let Some(attributes) = &self.attributes {
            body["attributes"] = serde_json::Value::Object(attributes.clone());
        }
        let mut request = json_request(Method::POST, uri, &body)?;
        let headers = request.headers_mut();
        let digest =
            HeaderValue::from_str(&self.digest.header_value()).map_err(|_| InputError::BadHeader("digest".into()))?;
        headers.insert(header("digest"), digest);
        for (name, value) in [(IF_MATCH, &self.if_match), (IF_NONE_MATCH, &self.if_none_match)] {
            if let Some(v) = value {
                let v = HeaderValue::from_str(v).map_err(|_| InputError::BadHeader(name.to_string()))?;
                headers.insert(name, v);
            }
        }
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<CommitResponse, Error> {
        parse_commit(response)
    }
}

/// A commit's answer: 202 is [`CommitResponse::NotReady`] (with Box's `Retry-After`), a 2xx the
/// committed files, anything else Box's error. The one parser of commit answers, whichever
/// machine sent the commit.
pub(crate) fn parse_commit(response: Response<Bytes>) -> Result<CommitResponse, Error> {
    if response.status() == StatusCode::ACCEPTED {
        return Ok(CommitResponse::NotReady { retry_after: crate::retry::retry_after(response.headers()) });
    }
    parse_json(RequestKind::CommitSession, response).map(CommitResponse::Committed)
}
