//! `GET /2.0/files/upload_sessions/{id}/parts` (or `session_endpoints.list_parts`), one page.

use super::{build, with_headers, ExtraHeaders, Operation, SessionRef};
use crate::error::{Error, InputError};
use crate::models::UploadParts;
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response, Uri};

/// Box's largest page of parts.
pub const MAX_LIST_LIMIT: u64 = 1000;

/// The largest `offset` Box's list-parts accepts (its spec caps it at 10,000): a listing reaches
/// at most `MAX_LIST_OFFSET + limit` parts.
pub const MAX_LIST_OFFSET: u64 = 10_000;

/// Lists one page of the parts a session holds.
#[derive(Clone, Debug)]
pub struct ListUploadSessionParts {
    /// The session.
    pub session: SessionRef,
    /// Where the page starts (Box's default is 0).
    pub offset: Option<u64>,
    /// How many parts per page, at most 1000.
    pub limit: Option<u64>,
    pub(crate) headers: ExtraHeaders,
}

impl ListUploadSessionParts {
    /// Lists the parts of the session with this id.
    pub fn by_id(session_id: impl Into<String>) -> Self {
        Self { session: SessionRef::Id(session_id.into()), offset: None, limit: None, headers: ExtraHeaders::default() }
    }

    /// Lists the parts at this URL (the session's `session_endpoints.list_parts`).
    pub fn by_url(url: impl Into<String>) -> Self {
        Self { session: SessionRef::Url(url.into()), offset: None, limit: None, headers: ExtraHeaders::default() }
    }

    /// Starts the page at `offset`.
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets both paging values at once, each only when given.
    pub fn with_page(mut self, offset: Option<u64>, limit: Option<u64>) -> Result<Self, InputError> {
        if let Some(offset) = offset {
            self = self.with_offset(offset);
        }
        match limit {
            Some(limit) => self.with_limit(limit),
            None => Ok(self),
        }
    }

    /// Asks for at most `limit` parts (at most 1000).
    pub fn with_limit(mut self, limit: u64) -> Result<Self, InputError> {
        if limit > MAX_LIST_LIMIT {
            return Err(InputError::LimitTooLarge(limit));
        }
        self.limit = Some(limit);
        Ok(self)
    }
}

with_headers!(ListUploadSessionParts);

impl Operation for ListUploadSessionParts {
    type Output = UploadParts;

    fn kind(&self) -> RequestKind {
        RequestKind::ListParts
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let base = self.session.url(config, "/parts")?;
        let mut query = Vec::new();
        if let Some(offset) = self.offset {
            query.push(format!("offset={offset}"));
        }
        if let Some(limit) = self.limit {
            query.push(format!("limit={limit}"));
        }
        let uri = if query.is_empty() {
            base
        } else {
            let sep = if base.query().is_some() { '&' } else { '?' };
            let full = format!("{base}{sep}{}", query.join("&"));
            full.parse::<Uri>().map_err(|_| InputError::BadUrl(full))?
        };
        let mut request = build(Method::GET, uri, None, Bytes::new())?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadParts, Error> {
        parse_json(self.kind(), response)
    }
}
