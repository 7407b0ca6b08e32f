//! `OPTIONS /2.0/files/content` on the API host: the preflight check of a new file.

use super::{check_file_name, check_id, json_request, parse_url, with_headers, ExtraHeaders, Operation};
use crate::error::{Error, InputError};
use crate::models::{FileConflict, UploadUrl};
use crate::response::{api_error, parse_json};
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

/// Asks Box whether a new file of this name and size would be accepted in a folder, without
/// sending it. A name in use is an answer here, not an error: it says which file holds it.
///
/// ```
/// use box_upload_core::operations::{Operation, PreflightCheck, PreflightFileUpload};
/// use box_upload_core::{bytes::Bytes, http, Config};
/// let op = PreflightFileUpload::new("0", "report.bin", 25_000_000)?;
/// let request = op.request(&Config::new())?;
/// assert_eq!((request.method().as_str(), request.uri().to_string().as_str()),
///            ("OPTIONS", "https://api.box.com/2.0/files/content"));
/// // Box gives the conflicts as one object or as an array: both read alike.
/// let taken = br#"{"type":"error","status":409,"code":"item_name_in_use",
///     "context_info":{"conflicts":{"type":"file","id":"12345","sha1":"85136c79cbf9fe36bb9d05d0639c70c265c18d37"}}}"#;
/// let answer = http::Response::builder().status(409).body(Bytes::from_static(taken))?;
/// match op.parse(answer)? {
///     PreflightCheck::NameInUse { conflicts } => assert_eq!(conflicts[0].id, "12345"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PreflightFileUpload {
    /// The folder the file would go into (`0` is the root).
    pub folder_id: String,
    /// The file's name.
    pub file_name: String,
    /// The file's size in bytes.
    pub size: u64,
    pub(crate) headers: ExtraHeaders,
}

/// What a preflight check answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreflightCheck {
    /// 200: Box would accept the file.
    Accepted(UploadUrl),
    /// 409 `item_name_in_use`: these items hold the name (`context_info.conflicts`, whether
    /// Box sent one object or an array; entries that are not objects are left out).
    NameInUse {
        /// The items holding the name, in Box's order.
        conflicts: Vec<FileConflict>,
    },
}

impl PreflightFileUpload {
    /// The check of `file_name` of `size` bytes in `folder_id`. Input is checked here.
    pub fn new(folder_id: impl Into<String>, file_name: impl Into<String>, size: u64) -> Result<Self, InputError> {
        let (folder_id, file_name) = (folder_id.into(), file_name.into());
        check_id("folder id", &folder_id)?;
        check_file_name(&file_name)?;
        Ok(Self { folder_id, file_name, size, headers: ExtraHeaders::default() })
    }
}

with_headers!(PreflightFileUpload);

impl Operation for PreflightFileUpload {
    type Output = PreflightCheck;

    fn kind(&self) -> RequestKind {
        RequestKind::PreflightFileUpload
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let uri = parse_url(&config.api_host_url("files/content"))?;
        let body = serde_json::json!({
            "name": self.file_name,
            "size": self.size,
            "parent": { "id": self.folder_id },
        });
        let mut request = json_request(Method::OPTIONS, uri, &body)?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<PreflightCheck, Error> {
        let status = response.status();
        if status == StatusCode::CONFLICT {
            let mut error = api_error(response);
            if error.code() == Some("item_name_in_use") {
                let conflicts = conflicts(error.error.context_info.as_ref());
                return Ok(PreflightCheck::NameInUse { conflicts });
            }
            error.kind = Some(self.kind());
            return Err(Error::Api(error));
        }
        if status.is_success() && response.body().iter().all(u8::is_ascii_whitespace) {
            return Ok(PreflightCheck::Accepted(UploadUrl::default()));
        }
        parse_json(self.kind(), response).map(PreflightCheck::Accepted)
    }
}

/// `context_info.conflicts` as a list: one object or an array of them (Box sends both).
pub(crate) fn conflicts(context_info: Option<&serde_json::Value>) -> Vec<FileConflict> {
    let read = |v: &serde_json::Value| serde_json::from_value::<FileConflict>(v.clone()).ok();
    match context_info.and_then(|c| c.get("conflicts")) {
        Some(serde_json::Value::Array(items)) => items.iter().filter(|v| v.is_object()).filter_map(read).collect(),
        Some(item @ serde_json::Value::Object(_)) => read(item).into_iter().collect(),
        _ => Vec::new(),
    }
}
