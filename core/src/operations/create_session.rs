//! `POST /2.0/files/upload_sessions`: a session for a new file.

use super::{check_file_name, check_id, json_request, with_headers, ExtraHeaders, Operation};
use crate::error::{Error, InputError};
use crate::models::UploadSession;
use crate::planner::MIN_FILE_SIZE;
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response};

/// Creates an upload session for a new file in a folder.
#[derive(Clone, Debug)]
pub struct CreateUploadSession {
    /// The folder to put the file in (`0` is the root).
    pub folder_id: String,
    /// The file's size in bytes (at least 20,000,000).
    pub file_size: u64,
    /// The file's name.
    pub file_name: String,
    pub(crate) headers: ExtraHeaders,
}

impl CreateUploadSession {
    /// A session for `file_name` of `file_size` bytes in `folder_id`. Input is checked here,
    /// before any request.
    pub fn new(folder_id: impl Into<String>, file_name: impl Into<String>, file_size: u64) -> Result<Self, InputError> {
        let (folder_id, file_name) = (folder_id.into(), file_name.into());
        check_id("folder id", &folder_id)?;
        check_file_name(&file_name)?;
        if file_size < MIN_FILE_SIZE {
            return Err(InputError::FileTooSmall { size: file_size });
        }
        Ok(Self { folder_id, file_size, file_name, headers: ExtraHeaders::default() })
    }
}

with_headers!(CreateUploadSession);

impl Operation for CreateUploadSession {
    type Output = UploadSession;

    fn kind(&self) -> RequestKind {
        RequestKind::CreateSession
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let uri = super::parse_url(&config.api_url("files/upload_sessions"))?;
        let body = serde_json::json!({
            "folder_id": self.folder_id,
            "file_size": self.file_size,
            "file_name": self.file_name,
        });
        let mut request = json_request(Method::POST, uri, &body)?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadSession, Error> {
        parse_json(self.kind(), response)
    }
}
