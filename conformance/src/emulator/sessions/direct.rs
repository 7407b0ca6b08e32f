//! The model side of a direct upload (`POST /files/content`, `POST /files/{id}/content`): the
//! file or its new version made from the uploaded bytes in one step, with Box's checks.

use super::{etag_matches, io_error, lock, parent_not_found, validate_name, CommitAttributes, FileInfo, Store, Target};
use crate::body::hex;
use crate::emulator::errors::ApiError;
use crate::emulator::storage::Storage;
use serde_json::json;
use sha1::{Digest, Sha1};

impl Store {
    /// Stores `bytes` as a new file or as a new version, as `target` says. `if_match` guards a
    /// new version (412 when the file's etag differs); a name held by another file is a 409 with
    /// `context_info.conflicts`; dates in `attrs` are kept as sent.
    pub(crate) fn upload_direct(
        &self,
        target: &Target,
        bytes: &[u8],
        attrs: &CommitAttributes,
        if_match: Option<&str>,
    ) -> Result<FileInfo, ApiError> {
        let now = self.clock.now();
        let sha1 = hex(&Sha1::digest(bytes));
        let mut guard = lock(&self.model);
        let model = &mut *guard;
        match target {
            Target::NewFile { folder_id, name } => {
                validate_name(name)?;
                if !model.folders.contains_key(folder_id) {
                    return Err(parent_not_found());
                }
                if let Some(existing) = model.name_conflict(folder_id, name, None) {
                    return Err(self.conflict(existing));
                }
                let id = model.next_numeric();
                let version_id = model.next_numeric();
                let stored = self.storage.write_file(&id, &version_id, bytes).map_err(io_error)?;
                let info = FileInfo {
                    id: id.clone(),
                    name: name.clone(),
                    folder_id: folder_id.clone(),
                    size: bytes.len() as u64,
                    sha1,
                    etag: "0".into(),
                    sequence_id: "0".into(),
                    version_id,
                    stored,
                    created_at: now,
                    modified_at: now,
                    content_created_at: attrs.content_created_at.clone(),
                    content_modified_at: attrs.content_modified_at.clone(),
                };
                model.files.insert(id, info.clone());
                Ok(info)
            }
            Target::NewVersion { file_id, name } => {
                let Some(old) = model.files.get(file_id).cloned() else {
                    return Err(ApiError::not_found("Not Found"));
                };
                if let Some(h) = if_match {
                    if !etag_matches(h, Some(&old.etag)) {
                        return Err(ApiError::new(
                            412,
                            "precondition_failed",
                            "The resource has been modified. Please retrieve the resource again and retry",
                        )
                        .context(json!({"if_match": h, "etag": old.etag})));
                    }
                }
                let name = match name {
                    Some(n) => {
                        validate_name(n)?;
                        n.clone()
                    }
                    None => old.name.clone(),
                };
                if let Some(existing) = model.name_conflict(&old.folder_id, &name, Some(&old.id)) {
                    return Err(self.conflict(existing));
                }
                let version_id = model.next_numeric();
                let stored = self.storage.write_file(&old.id, &version_id, bytes).map_err(io_error)?;
                Storage::remove_file(&old.stored);
                let bump = |s: &str| s.parse::<u64>().map(|n| n + 1).unwrap_or(1).to_string();
                let info = FileInfo {
                    name,
                    size: bytes.len() as u64,
                    sha1,
                    etag: bump(&old.etag),
                    sequence_id: bump(&old.sequence_id),
                    version_id,
                    stored,
                    modified_at: now,
                    content_created_at: old.content_created_at.clone(),
                    content_modified_at: attrs.content_modified_at.clone(),
                    ..old
                };
                model.files.insert(info.id.clone(), info.clone());
                Ok(info)
            }
        }
    }
}
