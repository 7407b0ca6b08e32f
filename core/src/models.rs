//! Box's JSON objects for upload sessions, with Box's own field names.
//!
//! Box's spec marks almost no field as required, so everything the upload does not depend on is an
//! `Option`, unknown fields are ignored, and what the upload does depend on (`part_size`,
//! `total_parts`, the endpoints) is checked explicitly by the code that uses it.

use serde::{Deserialize, Serialize};

/// An upload session, as Box returns it from create and get.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSession {
    /// The session id.
    #[serde(default)]
    pub id: String,
    /// Always `upload_session`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When the session expires (ISO 8601); sessions live 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<String>,
    /// The size every part must have, except the last one which may be shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    /// How many parts the file is split into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_parts: Option<u64>,
    /// How many parts Box has processed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_parts_processed: Option<u64>,
    /// The session's own URLs, preferred over ones built from the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_endpoints: Option<SessionEndpoints>,
}

/// The URLs Box gives for acting on one session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEndpoints {
    /// `PUT` a part here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_part: Option<String>,
    /// `POST` the commit here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `DELETE` here to abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<String>,
    /// `GET` the uploaded parts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_parts: Option<String>,
    /// `GET` the session here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Box's event log endpoint for the session (not used by uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_event: Option<String>,
    /// `POST` a plan here: which parts Box already holds (2026, box-openapi #616).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

/// One uploaded part, as Box echoes it and as the commit lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UploadPart {
    /// Box's id for the part (e.g. `6F2D3486`).
    #[serde(default)]
    pub part_id: String,
    /// Byte offset of the part in the file.
    #[serde(default)]
    pub offset: u64,
    /// Part size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Hex SHA-1 of the part's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
}

/// The answer to an upload-part request: `{"part": {...}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedPart {
    /// The part Box stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<UploadPart>,
}

/// One page of a session's uploaded parts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadParts {
    /// The parts on this page.
    #[serde(default)]
    pub entries: Vec<UploadPart>,
    /// The page size Box used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The offset of this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// How the entries are ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<Order>>,
    /// How many parts the session holds in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
}

/// A sort order in a paged list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The field sorted by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `ASC` or `DESC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// A list of files, as the commit returns it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Files {
    /// The files (one, for a commit).
    #[serde(default)]
    pub entries: Vec<FileFull>,
    /// How many files there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
}

/// A file as Box describes it in full. Only `id` and `type` are promised; fields this crate does not
/// model are kept in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileFull {
    /// The file id.
    #[serde(default)]
    pub id: String,
    /// Always `file`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The entity tag, for `If-Match` on a later version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Box's sequence id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    /// The file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Hex SHA-1 of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// The version just created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_version: Option<FileVersion>,
    /// The folder holding the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<FolderMini>,
    /// Every other field Box sent, untouched.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A file version, in short.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVersion {
    /// Always `file_version`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The version id.
    #[serde(default)]
    pub id: String,
    /// Hex SHA-1 of this version's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
}

/// A folder, in short.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderMini {
    /// Always `folder`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The folder id.
    #[serde(default)]
    pub id: String,
    /// The folder name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Box's sequence id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    /// The folder's entity tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Box's error object (`ClientError`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientError {
    /// Always `error`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The HTTP status Box meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Box's error code, e.g. `item_name_in_use`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Extra detail, shape depends on the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_info: Option<serde_json::Value>,
    /// Where Box documents the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_url: Option<String>,
    /// Box's id for the request, for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The answer to a preflight check that finds no conflict (Box's `UploadUrl`). Its `Debug`
/// hides the upload token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadUrl {
    /// Where a direct upload of the file would go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    /// A token for that upload, when Box gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_token: Option<String>,
}

impl std::fmt::Debug for UploadUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadUrl")
            .field("upload_url", &self.upload_url)
            .field("upload_token", &self.upload_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[cfg(test)]
mod upload_url_tests {
    #[test]
    fn debug_hides_the_upload_token() {
        let url = super::UploadUrl { upload_url: Some("https://u".into()), upload_token: Some("s3cr3t".into()) };
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cr3t") && shown.contains("[redacted]"), "{shown}");
    }
}

/// A file that holds the name an upload wants (Box's `FileConflict`, in the `conflicts` of a
/// 409 `item_name_in_use`): the mini file, its SHA-1 and its current version. Box's answers
/// carry no size here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileConflict {
    /// The file id.
    #[serde(default)]
    pub id: String,
    /// `file` (a folder can hold the name too).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The entity tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Box's sequence id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    /// The name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hex SHA-1 of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// The current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_version: Option<FileVersion>,
}

/// A part as an upload session's plan names it: where it is, how long, and the SHA-512 of its
/// bytes in hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlanPart {
    /// Byte offset of the part in the file.
    #[serde(default)]
    pub offset: u64,
    /// Part size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Hex SHA-512 of the part's bytes.
    #[serde(default)]
    pub sha512: String,
}

/// A part Box already holds, as a plan answers it: the part asked about and Box's id for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlanHit {
    /// Byte offset of the part in the file.
    #[serde(default)]
    pub offset: u64,
    /// Part size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Hex SHA-512 of the part's bytes.
    #[serde(default)]
    pub sha512: String,
    /// Box's id for the part it holds.
    #[serde(default)]
    pub part_id: String,
}

impl PlanHit {
    /// The part asked about, without Box's id.
    #[must_use]
    pub fn part(&self) -> PlanPart {
        PlanPart { offset: self.offset, size: self.size, sha512: self.sha512.clone() }
    }
}

/// The answer to a plan (`POST .../plan`): which parts Box already holds (`hits`) and which it
/// needs (`misses`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSessionPlan {
    /// The session planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_session_id: Option<String>,
    /// Parts Box holds already.
    #[serde(default)]
    pub hits: Vec<PlanHit>,
    /// Parts Box needs.
    #[serde(default)]
    pub misses: Vec<PlanPart>,
}
