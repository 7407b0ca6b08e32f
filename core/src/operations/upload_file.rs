//! `POST /2.0/files/content` (a new file) and `POST /2.0/files/{id}/content` (a new version) on
//! the upload host: the direct upload, one multipart/form-data request.

use super::{build, check_file_name, check_id, header, parse_url, with_headers, ExtraHeaders, Operation};
use crate::digest::Sha1Digest;
use crate::error::{Error, InputError, ProtocolError};
use crate::models::{FileFull, Files};
use crate::response::parse_json;
use crate::upload::UploadTarget;
use crate::{Config, RequestKind};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, IF_MATCH};
use http::{Method, Request, Response};

/// Box's limit for a direct upload: larger files go in an upload session.
pub const MAX_DIRECT_UPLOAD_SIZE: u64 = 50_000_000;

/// A request body that is partly the source's bytes: `head`, then `len` bytes of the source
/// from `offset`, then `tail`. A direct upload's request carries one in its
/// [extensions](http::Request::extensions) (its own body is then empty, and its
/// `Content-Length` is [`total_len`](Self::total_len)): the driver streams the file's bytes
/// from the source, a bounded chunk at a time, so the file is never held in memory whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceBody {
    /// The bytes before the source's (the multipart head: the `attributes` part and the header
    /// of the `file` part).
    pub head: Bytes,
    /// Where the source's bytes start.
    pub offset: u64,
    /// How many of the source's bytes.
    pub len: u64,
    /// The bytes after the source's (the closing boundary).
    pub tail: Bytes,
}

impl SourceBody {
    /// The body's whole length.
    #[must_use]
    pub fn total_len(&self) -> u64 {
        self.head.len() as u64 + self.len + self.tail.len() as u64
    }
}

/// A direct upload: a new file, or a new version of one, in one request.
///
/// The body is multipart/form-data with the `attributes` part before the `file` part (Box
/// refuses the other order with 400 `metadata_after_file_contents`), and `content-md5` carries
/// the file's SHA-1 in hex (Box checks it, and refuses a body that does not match with 400).
/// With [`with_content`](Self::with_content) the file's bytes are in the request; without, the
/// request carries a [`SourceBody`] and the driver streams them from the source.
///
/// ```
/// use box_upload_core::operations::{Operation, UploadFile};
/// use box_upload_core::{Config, SourceBody};
/// let op = UploadFile::new_file("0", "notes.txt", 1000)?
///     .with_sha1(box_upload_core::Sha1Digest::from_hex("85136c79cbf9fe36bb9d05d0639c70c265c18d37")?);
/// let request = op.request(&Config::new())?;
/// assert_eq!(request.uri(), "https://upload.box.com/api/2.0/files/content");
/// assert_eq!(request.headers()["content-md5"], "85136c79cbf9fe36bb9d05d0639c70c265c18d37");
/// let body = request.extensions().get::<SourceBody>().expect("streamed from the source");
/// assert_eq!((body.offset, body.len), (0, 1000));
/// assert_eq!(request.headers()["content-length"], body.total_len().to_string().as_str());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct UploadFile {
    /// A new file (folder and name) or a new version (file id, optional new name).
    pub target: UploadTarget,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's SHA-1, sent as `content-md5` (Box's name for it).
    pub sha1: Option<Sha1Digest>,
    /// `If-Match` (new versions): upload only if the file's etag is this.
    pub if_match: Option<String>,
    /// More attributes (e.g. `content_modified_at`), beside `name` and `parent`.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The file's bytes, when they are in memory; `None`: streamed from the source.
    pub content: Option<Bytes>,
    pub(crate) headers: ExtraHeaders,
}

impl UploadFile {
    /// A new file `file_name` of `size` bytes in `folder_id`.
    pub fn new_file(folder_id: impl Into<String>, file_name: impl Into<String>, size: u64) -> Result<Self, InputError> {
        let target = UploadTarget::NewFile { folder_id: folder_id.into(), file_name: file_name.into() };
        Self::new(target, size)
    }

    /// A new version of `file_id`, of `size` bytes.
    pub fn new_version(file_id: impl Into<String>, size: u64) -> Result<Self, InputError> {
        Self::new(UploadTarget::NewVersion { file_id: file_id.into(), file_name: None }, size)
    }

    /// An upload to `target`. Input is checked here.
    pub fn new(target: UploadTarget, size: u64) -> Result<Self, InputError> {
        check_target(&target)?;
        Ok(Self {
            target,
            size,
            sha1: None,
            if_match: None,
            attributes: serde_json::Map::new(),
            content: None,
            headers: ExtraHeaders::default(),
        })
    }

    /// Sends `sha1` as `content-md5`.
    #[must_use]
    pub fn with_sha1(mut self, sha1: Sha1Digest) -> Self {
        self.sha1 = Some(sha1);
        self
    }

    /// Uploads only if the file's etag is `etag` (new versions).
    #[must_use]
    pub fn with_if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// Adds attributes (e.g. `content_modified_at`); `name` and `parent` come from the target.
    #[must_use]
    pub fn with_attributes(mut self, attributes: serde_json::Map<String, serde_json::Value>) -> Self {
        self.attributes.extend(attributes);
        self
    }

    /// The file's bytes, in the request itself; the size and SHA-1 become theirs.
    #[must_use]
    pub fn with_content(mut self, content: impl Into<Bytes>) -> Self {
        let content = content.into();
        self.size = content.len() as u64;
        self.sha1 = Some(Sha1Digest::of(&content));
        self.content = Some(content);
        self
    }

    /// The `attributes` part's JSON: `name` and `parent.id` for a new file, `name` when a new
    /// version renames the file, then the extra attributes.
    fn attributes_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        match &self.target {
            UploadTarget::NewFile { folder_id, file_name } => {
                map.insert("name".into(), file_name.clone().into());
                map.insert("parent".into(), serde_json::json!({ "id": folder_id }));
            }
            UploadTarget::NewVersion { file_name: Some(name), .. } => {
                map.insert("name".into(), name.clone().into());
            }
            UploadTarget::NewVersion { file_name: None, .. } => {}
        }
        for (k, v) in &self.attributes {
            if !map.contains_key(k) {
                map.insert(k.clone(), v.clone());
            }
        }
        serde_json::Value::Object(map)
    }

    /// The boundary: from the SHA-1 of the content, so no content can hold it but by a preimage
    /// of its own digest.
    fn boundary(&self) -> String {
        match self.sha1 {
            Some(sha1) => format!("box-upload-{}", sha1.to_hex()),
            None => format!("box-upload-{:016x}-boundary", self.size),
        }
    }

    /// The multipart body around the file's bytes: the head (the `attributes` part, then the
    /// `file` part's header) and the tail (the closing boundary).
    pub fn multipart(&self) -> Result<(Bytes, Bytes), Error> {
        let boundary = self.boundary();
        let attributes =
            serde_json::to_string(&self.attributes_json()).map_err(|_| InputError::BadHeader("attributes".into()))?;
        let name = match &self.target {
            UploadTarget::NewFile { file_name, .. } | UploadTarget::NewVersion { file_name: Some(file_name), .. } => {
                file_name.as_str()
            }
            UploadTarget::NewVersion { file_name: None, .. } => "file",
        };
        // A quoted-string: the name holds no control characters (checked), so only `"` and `\`
        // need escaping.
        let filename = name.replace('\\', "\\\\").replace('"', "\\\"");
        let mut head = BytesMut::with_capacity(attributes.len() + filename.len() + 256);
        head.put_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attributes\"\r\n\r\n").as_bytes(),
        );
        head.put_slice(attributes.as_bytes());
        head.put_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        Ok((head.freeze(), tail))
    }
}

fn check_target(target: &UploadTarget) -> Result<(), InputError> {
    match target {
        UploadTarget::NewFile { folder_id, file_name } => {
            check_id("folder id", folder_id)?;
            check_file_name(file_name)
        }
        UploadTarget::NewVersion { file_id, file_name } => {
            check_id("file id", file_id)?;
            file_name.as_deref().map_or(Ok(()), check_file_name)
        }
    }
}

with_headers!(UploadFile);

impl Operation for UploadFile {
    type Output = FileFull;

    fn kind(&self) -> RequestKind {
        RequestKind::UploadFile
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        check_target(&self.target)?;
        if let Some(content) = &self.content {
            if content.len() as u64 != self.size {
                return Err(InputError::SizeMismatch { declared: self.size, actual: content.len() as u64 }.into());
            }
        }
        let path = match &self.target {
            UploadTarget::NewFile { .. } => "files/content".to_owned(),
            UploadTarget::NewVersion { file_id, .. } => format!("files/{file_id}/content"),
        };
        let uri = parse_url(&config.api_url(&path))?;
        let (head, tail) = self.multipart()?;
        let total = head.len() as u64 + self.size + tail.len() as u64;
        let body = match &self.content {
            // In memory: one body, copied once (the caller chose to hold it).
            Some(content) => {
                let mut body = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
                body.put_slice(&head);
                body.put_slice(content);
                body.put_slice(&tail);
                body.freeze()
            }
            None => Bytes::new(),
        };
        let mut request = build(Method::POST, uri, None, body)?;
        if self.content.is_none() {
            request.extensions_mut().insert(SourceBody { head, offset: 0, len: self.size, tail });
        }
        let headers = request.headers_mut();
        let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={}", self.boundary()))
            .map_err(|_| InputError::BadHeader("content-type".into()))?;
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(total));
        if let Some(sha1) = self.sha1 {
            let value =
                HeaderValue::from_str(&sha1.to_hex()).map_err(|_| InputError::BadHeader("content-md5".into()))?;
            headers.insert(header("content-md5"), value);
        }
        if let Some(etag) = &self.if_match {
            let value = HeaderValue::from_str(etag).map_err(|_| InputError::BadHeader("if-match".into()))?;
            headers.insert(IF_MATCH, value);
        }
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileFull, Error> {
        let files: Files = parse_json(self.kind(), response)?;
        files
            .entries
            .into_iter()
            .next()
            .ok_or_else(|| ProtocolError::MissingField { kind: self.kind(), field: "entries" }.into())
    }
}
