//! `GET /2.0/files/upload_sessions/{id}` (or `session_endpoints.status`).

use super::{build, with_headers, ExtraHeaders, Operation, SessionRef};
use crate::error::Error;
use crate::models::UploadSession;
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response};

/// Gets an upload session.
#[derive(Clone, Debug)]
pub struct GetUploadSession {
    /// The session.
    pub session: SessionRef,
    pub(crate) headers: ExtraHeaders,
}

impl GetUploadSession {
    /// Gets the session with this id.
    pub fn by_id(session_id: impl Into<String>) -> Self {
        Self { session: SessionRef::Id(session_id.into()), headers: ExtraHeaders::default() }
    }

    /// Gets the session at this URL (its `session_endpoints.status`).
    pub fn by_url(url: impl Into<String>) -> Self {
        Self { session: SessionRef::Url(url.into()), headers: ExtraHeaders::default() }
    }
}

with_headers!(GetUploadSession);

impl Operation for GetUploadSession {
    type Output = UploadSession;

    fn kind(&self) -> RequestKind {
        RequestKind::GetSession
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let mut request = build(Method::GET, self.session.url(config, "")?, None, Bytes::new())?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadSession, Error> {
        parse_json(self.kind(), response)
    }
}
