//! What a big upload keeps so that another process can finish it.

use crate::models::{UploadPart, UploadSession};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checkpoint format's version; a checkpoint of another version is refused.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Where the committed file goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadTarget {
    /// A new file in a folder.
    NewFile {
        /// The folder id (`0` is the root).
        folder_id: String,
        /// The file name.
        file_name: String,
    },
    /// A new version of an existing file.
    NewVersion {
        /// The file id.
        file_id: String,
        /// A new name, if the file should be renamed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
    },
}

/// Everything needed to continue an upload: the session, the file it is for, and the parts Box
/// acknowledged. Serialize it (e.g. as JSON) whenever [`Event::CheckpointUpdated`](crate::Event)
/// comes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The session, with its endpoints.
    pub session: UploadSession,
    /// Where the file goes.
    pub target: UploadTarget,
    /// The source's size.
    pub file_size: u64,
    /// The session's part size.
    pub part_size: u64,
    /// A fingerprint of the source chosen by the driver (e.g. path, size and modification time);
    /// resuming with another fingerprint is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_fingerprint: Option<String>,
    /// `If-Match` for the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    /// `If-None-Match` for the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_none_match: Option<String>,
    /// File attributes for the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Parts Box acknowledged, in offset order.
    pub parts: Vec<UploadPart>,
}

/// Where a transport's resume starts from: a checkpoint file it wrote, or a checkpoint value.
#[derive(Clone, Debug)]
pub enum ResumeFrom {
    /// A checkpoint file (JSON of a [`Checkpoint`]), as the transports write it.
    File(PathBuf),
    /// A checkpoint value.
    Checkpoint(Box<Checkpoint>),
}

impl From<PathBuf> for ResumeFrom {
    fn from(path: PathBuf) -> Self {
        ResumeFrom::File(path)
    }
}

impl From<&Path> for ResumeFrom {
    fn from(path: &Path) -> Self {
        ResumeFrom::File(path.to_owned())
    }
}

impl From<Checkpoint> for ResumeFrom {
    fn from(checkpoint: Checkpoint) -> Self {
        ResumeFrom::Checkpoint(Box::new(checkpoint))
    }
}
