//! `GET /2.0/files/{id}` on the API host.

use super::{build, check_id, parse_url, with_headers, ExtraHeaders, Operation};
use crate::error::{Error, InputError};
use crate::models::FileFull;
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response};

/// Gets a file's information from the API host ([`Config::api_base`]).
///
/// Without `fields` Box answers the file's standard fields; with them, the mini file (`id`,
/// `type`, `etag`, `sequence_id`, `name`, `sha1`, `file_version`) and the fields named.
///
/// ```
/// use box_upload_core::{operations::{GetFile, Operation}, Config};
/// let op = GetFile::new("12345")?.with_fields(["sha1", "size"])?;
/// let request = op.request(&Config::new())?;
/// assert_eq!(request.uri(), "https://api.box.com/2.0/files/12345?fields=sha1,size");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GetFile {
    /// The file.
    pub file_id: String,
    /// Box's `fields` (none: the standard fields).
    pub fields: Vec<String>,
    pub(crate) headers: ExtraHeaders,
}

impl GetFile {
    /// Gets the file with this id.
    pub fn new(file_id: impl Into<String>) -> Result<Self, InputError> {
        let file_id = file_id.into();
        check_id("file id", &file_id)?;
        Ok(Self { file_id, fields: Vec::new(), headers: ExtraHeaders::default() })
    }

    /// Asks for these fields (Box's `fields=a,b`) instead of the standard ones.
    pub fn with_fields<I, S>(mut self, fields: I) -> Result<Self, InputError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for field in fields {
            let field = field.into();
            let ok = !field.is_empty()
                && field.len() <= 128
                && field.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(InputError::BadField(field.chars().take(140).collect()));
            }
            self.fields.push(field);
        }
        Ok(self)
    }
}

with_headers!(GetFile);

impl Operation for GetFile {
    type Output = FileFull;

    fn kind(&self) -> RequestKind {
        RequestKind::GetFile
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        check_id("file id", &self.file_id)?;
        let mut url = config.api_host_url(&format!("files/{}", self.file_id));
        if !self.fields.is_empty() {
            url = format!("{url}?fields={}", self.fields.join(","));
        }
        let mut request = build(Method::GET, parse_url(&url)?, None, Bytes::new())?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileFull, Error> {
        parse_json(self.kind(), response)
    }
}
