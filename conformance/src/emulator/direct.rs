//! The direct upload on the wire: `POST /2.0/files/content` (a new file, 201) and
//! `POST /2.0/files/{id}/content` (a new version, 200), multipart/form-data with the
//! `attributes` part (JSON) before the `file` part, as Box requires.

use bytes::Bytes;
use http::{header, HeaderMap};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::errors::ApiError;
use super::routes::is_rfc3339;
use super::sessions::{CommitAttributes, Target};
use crate::body::hex;
use crate::multipart;

/// The most file bytes a direct upload may carry here: Box's guide puts the limit at 50 MB.
pub(crate) const MAX_DIRECT_CONTENT: usize = 50 * 1024 * 1024;

/// The most a direct upload's body may be: the file and room for its parts' headers.
pub(crate) const MAX_DIRECT_BODY: usize = MAX_DIRECT_CONTENT + 1024 * 1024;

/// What a direct upload asks for, read from its headers and body.
#[derive(Debug)]
pub(crate) struct DirectUpload {
    pub(crate) target: Target,
    pub(crate) content: Bytes,
    pub(crate) attributes: CommitAttributes,
    pub(crate) if_match: Option<String>,
}

/// The multipart body's boundary, from `Content-Type: multipart/form-data; boundary=...`.
fn boundary(headers: &HeaderMap) -> Result<String, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    multipart::boundary(ct)
        .ok_or_else(|| ApiError::bad_request("Content-Type must be multipart/form-data with a boundary"))
}

/// The parts of a multipart body, in order.
fn parts(body: &Bytes, boundary: &str) -> Result<Vec<multipart::Part>, ApiError> {
    multipart::parse(body, boundary).ok_or_else(|| ApiError::bad_request("The multipart body is malformed"))
}

/// Reads a direct upload. `file_id`: the file a new version is for.
pub(crate) fn parse(headers: &HeaderMap, body: &Bytes, file_id: Option<String>) -> Result<DirectUpload, ApiError> {
    let boundary = boundary(headers)?;
    let parts = parts(body, &boundary)?;
    let attributes_at = parts.iter().position(|p| p.name == "attributes");
    let file_at = parts.iter().position(|p| p.name == "file");
    let (attributes_at, file_at) = match (attributes_at, file_at) {
        (Some(a), Some(f)) => (a, f),
        (None, _) => return Err(ApiError::bad_request("The attributes part is missing")),
        (_, None) => return Err(ApiError::bad_request("The file part is missing")),
    };
    if file_at < attributes_at {
        return Err(ApiError::new(
            400,
            "metadata_after_file_contents",
            "Metadata must be sent before the file contents in a multipart upload",
        ));
    }
    let attributes: Value = serde_json::from_slice(&parts[attributes_at].data)
        .map_err(|_| ApiError::bad_request("attributes must be a JSON object"))?;
    let Value::Object(attrs) = &attributes else {
        return Err(ApiError::bad_request("attributes must be a JSON object"));
    };
    let string = |key: &str| -> Result<Option<String>, ApiError> {
        match attrs.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(ApiError::bad_request(format!("attributes.{key} must be a string")).context(json!({ key: other })))
            }
        }
    };
    let date = |key: &str| -> Result<Option<String>, ApiError> {
        match string(key)? {
            Some(s) if !is_rfc3339(&s) => {
                Err(ApiError::bad_request(format!("attributes.{key} must be an RFC 3339 date-time"))
                    .context(json!({ key: s })))
            }
            other => Ok(other),
        }
    };
    let name = string("name")?;
    let target = match file_id {
        Some(file_id) => Target::NewVersion { file_id, name },
        None => {
            let name = name.ok_or_else(|| ApiError::bad_request("attributes.name is required"))?;
            let folder_id = attrs
                .get("parent")
                .and_then(|p| p.get("id"))
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| ApiError::bad_request("attributes.parent.id is required"))?
                .to_owned();
            Target::NewFile { folder_id, name }
        }
    };
    let content = parts[file_at].data.clone();
    if content.len() > MAX_DIRECT_CONTENT {
        return Err(ApiError::new(413, "request_entity_too_large", "Direct uploads hold at most 50 MB"));
    }
    if let Some(md5) = headers.get("content-md5") {
        let given = md5.to_str().unwrap_or_default().trim().to_ascii_lowercase();
        let actual = hex(&Sha1::digest(&content));
        if given != actual {
            return Err(ApiError::new(400, "bad_digest", "The content-md5 header does not match the file")
                .context(json!({"expected_sha1": given, "actual_sha1": actual})));
        }
    }
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let attributes = CommitAttributes {
        content_created_at: date("content_created_at")?,
        content_modified_at: date("content_modified_at")?,
    };
    Ok(DirectUpload { target, content, attributes, if_match })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("x")));
        h
    }

    fn body(first: (&str, &str), second: (&str, &str)) -> Bytes {
        let part = |(name, data): (&str, &str)| {
            let filename = if name == "file" { "; filename=\"a.txt\"" } else { "" };
            format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{data}\r\n")
        };
        Bytes::from(format!("{}{}--B--\r\n", part(first), part(second)))
    }

    #[test]
    fn attributes_then_file() {
        let b = body(("attributes", r#"{"name":"a.txt","parent":{"id":"0"}}"#), ("file", "hello\r\n--not"));
        let up = parse(&headers("multipart/form-data; boundary=B"), &b, None)
            .map_err(|e| e.code)
            .unwrap_or_else(|c| panic!("{c}"));
        assert_eq!(&up.content[..], b"hello\r\n--not");
        assert!(
            matches!(up.target, Target::NewFile { ref folder_id, ref name } if folder_id == "0" && name == "a.txt")
        );
    }

    #[test]
    fn file_before_attributes_is_refused_as_box_does() {
        let b = body(("file", "hello"), ("attributes", r#"{"name":"a.txt","parent":{"id":"0"}}"#));
        let e = parse(&headers("multipart/form-data; boundary=B"), &b, None).err().map(|e| e.code);
        assert_eq!(e, Some("metadata_after_file_contents"));
    }

    #[test]
    fn a_wrong_content_md5_is_refused() {
        let b = body(("attributes", r#"{"name":"a.txt","parent":{"id":"0"}}"#), ("file", "hello"));
        let mut h = headers("multipart/form-data; boundary=B");
        h.insert("content-md5", HeaderValue::from_static("0000000000000000000000000000000000000000"));
        assert_eq!(parse(&h, &b, None).err().map(|e| e.code), Some("bad_digest"));
        h.insert("content-md5", HeaderValue::from_static("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"));
        assert!(parse(&h, &b, None).is_ok());
    }

    #[test]
    fn malformed_bodies_are_400s() {
        for (ct, b) in [
            ("text/plain", "x"),
            ("multipart/form-data; boundary=B", "no boundary here"),
            (
                "multipart/form-data; boundary=B",
                "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            ),
            ("multipart/form-data; boundary=B", "--B--\r\n"),
        ] {
            let e = parse(&headers(ct), &Bytes::from(b), None);
            assert_eq!(e.err().map(|e| e.status.as_u16()), Some(400), "{ct} {b}");
        }
    }
}
