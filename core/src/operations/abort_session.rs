//! `DELETE /2.0/files/upload_sessions/{id}` (or `session_endpoints.abort`).

use super::{build, with_headers, ExtraHeaders, Operation, SessionRef};
use crate::error::Error;
use crate::response::error_for;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response};

/// Aborts (deletes) an upload session and the parts it holds.
#[derive(Clone, Debug)]
pub struct DeleteUploadSession {
    /// The session.
    pub session: SessionRef,
    pub(crate) headers: ExtraHeaders,
}

impl DeleteUploadSession {
    /// Aborts the session with this id.
    pub fn by_id(session_id: impl Into<String>) -> Self {
        Self { session: SessionRef::Id(session_id.into()), headers: ExtraHeaders::default() }
    }

    /// Aborts the session at this URL (its `session_endpoints.abort`).
    pub fn by_url(url: impl Into<String>) -> Self {
        Self { session: SessionRef::Url(url.into()), headers: ExtraHeaders::default() }
    }
}

with_headers!(DeleteUploadSession);

impl Operation for DeleteUploadSession {
    type Output = ();

    fn kind(&self) -> RequestKind {
        RequestKind::AbortSession
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let mut request = build(Method::DELETE, self.session.url(config, "")?, None, Bytes::new())?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<(), Error> {
        if response.status().is_success() {
            Ok(())
        } else {
            Err(error_for(self.kind(), response))
        }
    }
}
