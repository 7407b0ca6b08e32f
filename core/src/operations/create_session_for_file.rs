//! `POST /2.0/files/{file_id}/upload_sessions`: a session for a new version of a file.

use super::{check_file_name, check_id, json_request, with_headers, ExtraHeaders, Operation};
use crate::error::{Error, InputError};
use crate::models::UploadSession;
use crate::planner::MIN_FILE_SIZE;
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response};

/// Creates an upload session for a new version of an existing file.
#[derive(Clone, Debug)]
pub struct CreateUploadSessionForFile {
    /// The file to add a version to.
    pub file_id: String,
    /// The new version's size in bytes (at least 20,000,000).
    pub file_size: u64,
    /// A new name for the file, if it should change.
    pub file_name: Option<String>,
    pub(crate) headers: ExtraHeaders,
}

impl CreateUploadSessionForFile {
    /// A session for a new version of `file_id` of `file_size` bytes.
    pub fn new(file_id: impl Into<String>, file_size: u64) -> Result<Self, InputError> {
        let file_id = file_id.into();
        check_id("file id", &file_id)?;
        if file_size < MIN_FILE_SIZE {
            return Err(InputError::FileTooSmall { size: file_size });
        }
        Ok(Self { file_id, file_size, file_name: None, headers: ExtraHeaders::default() })
    }

    /// Renames the file with the new version.
    pub fn with_file_name(mut self, name: impl Into<String>) -> Result<Self, InputError> {
        let name = name.into();
        check_file_name(&name)?;
        self.file_name = Some(name);
        Ok(self)
    }
}

with_headers!(CreateUploadSessionForFile);

impl Operation for CreateUploadSessionForFile {
    type Output = UploadSession;

    fn kind(&self) -> RequestKind {
        RequestKind::CreateSessionForFile
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let uri = super::parse_url(&config.api_url(&format!("files/{}/upload_sessions", self.file_id)))?;
        let mut body = serde_json::json!({ "file_size": self.file_size });
        if let Some(name) = &self.file_name {
            body["file_name"] = serde_json::Value::String(name.clone());
        }
        let mut request = json_request(Method::POST, uri, &body)?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadSession, Error> {
        parse_json(self.kind(), response)
    }
}
