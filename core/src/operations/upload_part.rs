//! `PUT /2.0/files/upload_sessions/{id}` (or `session_endpoints.upload_part`): one part.

use super::{build, header, with_headers, ExtraHeaders, Operation, SessionRef};
use crate::content_range::ContentRange;
use crate::error::{Error, InputError};
use crate::models::UploadedPart;
use crate::response::parse_json;
use crate::{Config, PartData, RequestKind};
use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, Request, Response};

/// Uploads one part: its bytes, their `Digest`, and their `Content-Range`.
#[derive(Clone, Debug)]
pub struct UploadFilePart {
    /// The session.
    pub session: SessionRef,
    /// The part's range in the file.
    pub range: ContentRange,
    /// The part's bytes and their SHA-1.
    pub data: PartData,
    pub(crate) headers: ExtraHeaders,
}

impl UploadFilePart {
    /// Uploads `data` at `offset` of a file of `file_size` bytes to the session with this id.
    pub fn by_id(
        session_id: impl Into<String>,
        offset: u64,
        file_size: u64,
        data: PartData,
    ) -> Result<Self, InputError> {
        Self::new(SessionRef::Id(session_id.into()), offset, file_size, data)
    }

    /// Uploads to the session's `session_endpoints.upload_part` URL.
    pub fn by_url(url: impl Into<String>, offset: u64, file_size: u64, data: PartData) -> Result<Self, InputError> {
        Self::new(SessionRef::Url(url.into()), offset, file_size, data)
    }

    /// Uploads `data` at `offset` to `session`.
    pub fn new(session: SessionRef, offset: u64, file_size: u64, data: PartData) -> Result<Self, InputError> {
        let range = ContentRange::new(offset, data.len() as u64, file_size)
            .map_err(|e| InputError::BadHeader(format!("content-range: {e}")))?;
        Ok(Self { session, range, data, headers: ExtraHeaders::default() })
    }
}

with_headers!(UploadFilePart);

impl Operation for UploadFilePart {
    type Output = UploadedPart;

    fn kind(&self) -> RequestKind {
        RequestKind::UploadPart
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let uri = self.session.url(config, "")?;
        let mut request = build(Method::PUT, uri, Some("application/octet-stream"), self.data.bytes().clone())?;
        let headers = request.headers_mut();
        let digest = HeaderValue::from_str(&self.data.sha1().header_value())
            .map_err(|_| InputError::BadHeader("digest".into()))?;
        headers.insert(header("digest"), digest);
        let range = HeaderValue::from_str(&self.range.to_string())
            .map_err(|_| InputError::BadHeader("content-range".into()))?;
        headers.insert(http::header::CONTENT_RANGE, range);
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadedPart, Error> {
        parse_json(self.kind(), response)
    }
}
