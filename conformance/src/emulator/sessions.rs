//! The emulator's model: folders, files and upload sessions, and the rules Box applies to them.
//!
//! Everything here is independent of HTTP: operations return [`ApiError`]s that the routes turn
//! into answers. Locks are always taken in the order model → session state, and the prefix hash
//! lock is never held together with the model lock.
//!
//! Whole-file SHA-1: each session keeps a running SHA-1 over the contiguous prefix of parts it
//! holds. After a part is stored, the prefix is extended over every part that now continues it,
//! re-reading those bytes from the session file (normally still in the page cache). A commit only
//! finishes the prefix (nothing left to do when the parts arrived) and compares digests: the file
//! is never read twice in full, and nothing is re-read when parts arrive in order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use box_upload_core::FileHasher;
use bytes::Bytes;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::clock::{rfc3339, Clock};
use super::errors::ApiError;
use super::faults::Rng;
use super::storage::{hash_prefetched, SessionData, Storage, Stored};
use crate::body::hex;

mod direct;

/// A committed file as the emulator stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// File id (digits).
    pub id: String,
    /// File name.
    pub name: String,
    /// Id of the parent folder.
    pub folder_id: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-1 of the content, lower-case hex.
    pub sha1: String,
    /// Current etag (`"0"` for a new file, incremented with each version).
    pub etag: String,
    /// Current sequence id.
    pub sequence_id: String,
    /// Id of the current file version.
    pub version_id: String,
    /// Where the content lives.
    pub(crate) stored: Stored,
    /// Creation time.
    pub created_at: SystemTime,
    /// Time of the latest version.
    pub modified_at: SystemTime,
    /// `content_created_at` as given in the commit's `attributes` (`None`: the creation time).
    pub content_created_at: Option<String>,
    /// `content_modified_at` as given in the commit's `attributes` (`None`: the latest version's
    /// time).
    pub content_modified_at: Option<String>,
}

impl FileInfo {
    /// Where the content lives on disk; `None` for an emulator that keeps no content (see
    /// [`EmulatorBuilder::discard_content`](crate::EmulatorBuilder::discard_content)).
    #[must_use]
    pub fn path(&self) -> Option<&std::path::Path> {
        match &self.stored {
            Stored::Path(p) => Some(p),
            Stored::Discarded => None,
        }
    }
}

/// A folder.
#[derive(Clone, Debug)]
pub(crate) struct Folder {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `None` for the root folder "0".
    pub(crate) parent_id: Option<String>,
}

/// The shape of `context_info.conflicts` in 409 `item_name_in_use` answers. Box's answers have
/// been seen with one object (rclone, Box's .NET SDK), while Box's spec (`ConflictError`) types
/// it as an array of `FileConflict`: clients should accept both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConflictsShape {
    /// `"conflicts": {"type": "file", "id": ..., ...}` (the default).
    #[default]
    Object,
    /// `"conflicts": [{"type": "file", "id": ..., ...}]`.
    Array,
}

/// Attributes a commit body may carry (`attributes`), stored with the file.
#[derive(Debug, Default, Clone)]
pub(crate) struct CommitAttributes {
    pub(crate) content_created_at: Option<String>,
    pub(crate) content_modified_at: Option<String>,
}

/// What a session will create at commit.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A new file in a folder.
    NewFile { folder_id: String, name: String },
    /// A new version of an existing file, optionally renamed.
    NewVersion { file_id: String, name: Option<String> },
}

/// A stored part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartRecord {
    pub(crate) part_id: String,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) sha1: String,
}

impl PartRecord {
    pub(crate) fn to_json(&self) -> Value {
        json!({"part_id": self.part_id, "offset": self.offset, "size": self.size, "sha1": self.sha1})
    }
}

/// An upload session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) file_size: u64,
    pub(crate) part_size: u64,
    pub(crate) total_parts: u64,
    pub(crate) target: Target,
    pub(crate) expires_at: SystemTime,
    pub(crate) data: SessionData,
    state: Mutex<SessionState>,
    prefix: Mutex<PrefixHash>,
}

#[derive(Debug, Default)]
struct SessionState {
    parts: BTreeMap<u64, PartRecord>,
    in_flight: BTreeSet<u64>,
    closed: bool,
}

#[derive(Debug, Default)]
struct PrefixHash {
    hashed: u64,
    hasher: FileHasher,
    buf: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// Parts held, by offset.
    pub(crate) fn parts(&self) -> Vec<PartRecord> {
        lock(&self.state).parts.values().cloned().collect()
    }

    /// Number of parts held.
    pub(crate) fn num_parts(&self) -> usize {
        lock(&self.state).parts.len()
    }

    /// Checks `[offset, offset + size)` against the session's rules and reserves it for an
    /// upload in progress. The reservation is released when the returned guard drops unless
    /// [`Reservation::store`] was called.
    pub(crate) fn reserve(self: &Arc<Self>, offset: u64, size: u64) -> Result<Reservation, ApiError> {
        let mut st = lock(&self.state);
        if st.closed {
            return Err(ApiError::not_found("The upload session was not found"));
        }
        let overlaps = st.parts.contains_key(&offset) || st.in_flight.contains(&offset);
        if overlaps {
            return Err(ApiError::new(
                416,
                "range_overlaps_existing_part",
                "Part range overlaps with a part that has already been uploaded",
            )
            .context(json!({"offset": offset, "size": size})));
        }
        st.in_flight.insert(offset);
        Ok(Reservation { session: Arc::clone(self), offset, size, stored: false })
    }

    /// Extends the whole-file hash over every part that continues the hashed prefix. Blocking:
    /// may read from disk.
    pub(crate) fn advance_prefix(&self) -> std::io::Result<()> {
        let mut guard = lock(&self.prefix);
        let prefix = &mut *guard;
        loop {
            let next = lock(&self.state).parts.get(&prefix.hashed).map(|p| p.size);
            let Some(size) = next else { return Ok(()) };
            self.data.hash_part(prefix.hashed, size, &mut prefix.hasher, &mut prefix.buf)?;
            prefix.hashed += size;
        }
    }

    /// The SHA-1 of the whole file when every byte is held, else `None`. Blocking.
    pub(crate) fn whole_sha1(&self) -> std::io::Result<Option<[u8; 20]>> {
        self.advance_prefix()?;
        let prefix = lock(&self.prefix);
        if prefix.hashed == self.file_size {
            Ok(Some(prefix.hasher.clone().finish().0))
        } else {
            Ok(None)
        }
    }

    /// The whole-file hash so far, when it stands exactly at `offset` (to carry it over the part
    /// there in the same pass as the part's own SHA-1; see
    /// [`store_verified`](Self::store_verified)).
    pub(crate) fn prefix_at(&self, offset: u64) -> Option<FileHasher> {
        let prefix = lock(&self.prefix);
        (prefix.hashed == offset).then(|| prefix.hasher.clone())
    }

    /// Hashes a whole part held as body frames (content is discarded): its SHA-1 and, when the
    /// part starts exactly where the whole-file hash stands (parts mostly complete in order), that
    /// hash carried over it in the same paired pass, to install with
    /// [`store_verified`](Self::store_verified) once the part is accepted.
    pub(crate) fn hash_frames(&self, first: u64, frames: &[Bytes]) -> ([u8; 20], Option<FileHasher>) {
        let mut whole = {
            let prefix = lock(&self.prefix);
            (prefix.hashed == first).then(|| prefix.hasher.clone())
        };
        let mut part = FileHasher::new();
        for frame in frames {
            hash_prefetched(frame, |chunk| match &mut whole {
                Some(whole) => part.update_pair(whole, chunk),
                None => part.update(chunk),
            });
        }
        (part.finish().0, whole)
    }

    /// Records a verified part. Its frames are kept for the whole-file hash, unless `carried`
    /// (from [`hash_frames`](Self::hash_frames)) already covers it: then that becomes the hash,
    /// installed under the prefix lock so that no prefix advance sees the part stored without its
    /// bytes. (That lock is free or briefly held then: the prefix stands at this part, which was
    /// not stored, so there is nothing for an advance to hash.)
    pub(crate) fn store_verified(
        &self,
        reservation: Reservation,
        part_id: String,
        sha1_hex: String,
        frames: Vec<Bytes>,
        carried: Option<FileHasher>,
    ) -> Result<PartRecord, ApiError> {
        let offset = reservation.offset;
        let Some(hasher) = carried else {
            // The bytes first: the whole-file hash may look for them as soon as the part is held.
            self.data.keep_part(offset, frames);
            return reservation.store(part_id, sha1_hex);
        };
        let mut prefix = lock(&self.prefix);
        let part = reservation.store(part_id, sha1_hex)?;
        if prefix.hashed == offset && hasher.len() == offset + part.size {
            prefix.hasher = hasher;
            prefix.hashed = offset + part.size;
        } else {
            self.data.keep_part(offset, frames);
        }
        Ok(part)
    }

    /// The UploadSession JSON, with endpoints built from `base` (e.g. `http://host:port/api`).
    pub(crate) fn to_json(&self, base: &str) -> Value {
        let url = format!("{base}/2.0/files/upload_sessions/{}", self.id);
        json!({
            "total_parts": self.total_parts,
            "part_size": self.part_size,
            "session_endpoints": {
                "upload_part": url,
                "commit": format!("{url}/commit"),
                "abort": url,
                "list_parts": format!("{url}/parts"),
                "status": url,
                "log_event": format!("{url}/log"),
                "plan": format!("{url}/plan"),
            },
            "session_expires_at": rfc3339(self.expires_at),
            "id": self.id,
            "type": "upload_session",
            "num_parts_processed": self.num_parts(),
        })
    }
}

/// A part range reserved for an upload in progress.
#[derive(Debug)]
pub(crate) struct Reservation {
    session: Arc<Session>,
    offset: u64,
    size: u64,
    stored: bool,
}

impl Reservation {
    /// Records the part as held and returns it.
    pub(crate) fn store(mut self, part_id: String, sha1_hex: String) -> Result<PartRecord, ApiError> {
        let mut st = lock(&self.session.state);
        st.in_flight.remove(&self.offset);
        self.stored = true;
        if st.closed {
            return Err(ApiError::not_found("The upload session was not found"));
        }
        let part = PartRecord { part_id, offset: self.offset, size: self.size, sha1: sha1_hex };
        st.parts.insert(self.offset, part.clone());
        Ok(part)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.stored {
            lock(&self.session.state).in_flight.remove(&self.offset);
        }
    }
}

/// Checks a file or folder name as Box does.
pub(crate) fn validate_name(name: &str) -> Result<(), ApiError> {
    let bad = name.is_empty()
        || name.chars().count() > 255
        || name.contains('/')
        || name.contains('\\')
        || name == "."
        || name == ".."
        || name.trim() != name;
    if bad {
        return Err(ApiError::new(400, "item_name_invalid", "Item name invalid").context(json!({"name": name})));
    }
    Ok(())
}

/// Conditions a commit carries.
#[derive(Debug, Default, Clone)]
pub(crate) struct CommitConditions {
    pub(crate) if_match: Option<String>,
    pub(crate) if_none_match: Option<String>,
}

fn etag_matches(header: &str, etag: Option<&str>) -> bool {
    header.split(',').any(|candidate| {
        let c = candidate.trim().trim_start_matches("W/").trim_matches('"');
        match etag {
            Some(e) => c == "*" || c == e,
            None => false,
        }
    })
}

/// The model: folders, files, sessions.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) storage: Storage,
    pub(crate) clock: Clock,
    model: Mutex<Model>,
    /// `context_info.conflicts` as an array (else one object).
    conflicts_array: AtomicBool,
}

#[derive(Debug)]
struct Model {
    folders: HashMap<String, Folder>,
    files: HashMap<String, FileInfo>,
    sessions: HashMap<String, Arc<Session>>,
    next_id: u64,
    rng: Rng,
}

impl Model {
    fn next_numeric(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    fn name_conflict(&self, folder_id: &str, name: &str, except: Option<&str>) -> Option<&FileInfo> {
        self.files.values().find(|f| f.folder_id == folder_id && f.name == name && Some(f.id.as_str()) != except)
    }
}

/// The 409 for a name taken by `existing`, with `context_info.conflicts` in the given shape.
/// Each conflict is Box's `FileConflict`: the mini file (`type`, `id`, `etag`, `sequence_id`,
/// `name`, `sha1`, `file_version`) and no size.
fn conflict_error(existing: &FileInfo, shape: ConflictsShape) -> ApiError {
    let conflict = json!({
        "type": "file",
        "id": existing.id,
        "file_version": {"type": "file_version", "id": existing.version_id, "sha1": existing.sha1},
        "sequence_id": existing.sequence_id,
        "etag": existing.etag,
        "sha1": existing.sha1,
        "name": existing.name,
    });
    let conflicts = match shape {
        ConflictsShape::Object => conflict,
        ConflictsShape::Array => json!([conflict]),
    };
    ApiError::new(409, "item_name_in_use", "Item with the same name already exists")
        .context(json!({"conflicts": conflicts}))
}

/// The 404 for a missing parent folder.
fn parent_not_found() -> ApiError {
    ApiError::not_found("Not Found")
        .context(json!({"errors": [{"reason": "not_found", "name": "parent", "message": "Parent folder not found"}]}))
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::new(500, "internal_server_error", format!("storage error: {e}"))
}

impl Store {
    /// A store with only the root folder "0" (named "All Files").
    pub(crate) fn new(storage: Storage, seed: u64, conflicts: ConflictsShape) -> Self {
        let mut folders = HashMap::new();
        folders.insert("0".to_string(), Folder { id: "0".into(), name: "All Files".into(), parent_id: None });
        Store {
            conflicts_array: AtomicBool::new(conflicts == ConflictsShape::Array),
            storage,
            clock: Clock::default(),
            model: Mutex::new(Model {
                folders,
                files: HashMap::new(),
                sessions: HashMap::new(),
                next_id: 100_000_000_000,
                rng: Rng::new(seed),
            }),
        }
    }

    /// Sets the shape of `context_info.conflicts` in 409 answers.
    pub(crate) fn set_conflicts_shape(&self, shape: ConflictsShape) {
        self.conflicts_array.store(shape == ConflictsShape::Array, Ordering::Relaxed);
    }

    fn conflict(&self, existing: &FileInfo) -> ApiError {
        let shape =
            if self.conflicts_array.load(Ordering::Relaxed) { ConflictsShape::Array } else { ConflictsShape::Object };
        conflict_error(existing, shape)
    }

    /// A fresh random hex id of `len` characters, upper case (deterministic for a seed).
    pub(crate) fn random_hex(&self, len: usize) -> String {
        let mut model = lock(&self.model);
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(&format!("{:016X}", model.rng.next_u64()));
        }
        s.truncate(len);
        s
    }

    /// Creates a folder.
    pub(crate) fn create_folder(&self, parent_id: &str, name: &str) -> Result<String, ApiError> {
        validate_name(name)?;
        let mut model = lock(&self.model);
        if !model.folders.contains_key(parent_id) {
            return Err(ApiError::not_found("Parent folder not found"));
        }
        let id = model.next_numeric();
        model.folders.insert(
            id.clone(),
            Folder { id: id.clone(), name: name.to_string(), parent_id: Some(parent_id.to_string()) },
        );
        Ok(id)
    }

    /// A file by id.
    pub(crate) fn file(&self, id: &str) -> Option<FileInfo> {
        lock(&self.model).files.get(id).cloned()
    }

    /// A file by folder and name.
    pub(crate) fn find_file(&self, folder_id: &str, name: &str) -> Option<FileInfo> {
        lock(&self.model).name_conflict(folder_id, name, None).cloned()
    }

    /// Creates a file with `bytes` directly (no upload session).
    pub(crate) fn create_file(&self, folder_id: &str, name: &str, bytes: &[u8]) -> Result<FileInfo, ApiError> {
        validate_name(name)?;
        let mut model = lock(&self.model);
        if !model.folders.contains_key(folder_id) {
            return Err(ApiError::not_found("Folder not found"));
        }
        if let Some(existing) = model.name_conflict(folder_id, name, None) {
            return Err(self.conflict(existing));
        }
        let id = model.next_numeric();
        let version_id = model.next_numeric();
        let stored = self.storage.write_file(&id, &version_id, bytes).map_err(io_error)?;
        let now = self.clock.now();
        let info = FileInfo {
            id: id.clone(),
            name: name.to_string(),
            folder_id: folder_id.to_string(),
            size: bytes.len() as u64,
            sha1: hex(&Sha1::digest(bytes)),
            etag: "0".into(),
            sequence_id: "0".into(),
            version_id,
            stored,
            created_at: now,
            modified_at: now,
            content_created_at: None,
            content_modified_at: None,
        };
        model.files.insert(id, info.clone());
        Ok(info)
    }

    /// The preflight check of an upload (`OPTIONS /files/content`, `OPTIONS /files/{id}/content`):
    /// `file_id` is the file a new version is for (404 when unknown), `folder_id` the destination
    /// (by default the file's folder; 404 when unknown), `name` the file's name (by default the
    /// file's; 409 when another file has it).
    pub(crate) fn preflight(
        &self,
        file_id: Option<&str>,
        folder_id: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        let model = lock(&self.model);
        let file = match file_id {
            Some(id) => Some(model.files.get(id).ok_or_else(|| ApiError::not_found("Not Found"))?),
            None => None,
        };
        let folder_id = folder_id.or(file.map(|f| f.folder_id.as_str())).unwrap_or("0");
        if !model.folders.contains_key(folder_id) {
            return Err(parent_not_found());
        }
        let name = name.or(file.map(|f| f.name.as_str()));
        if let Some(name) = name {
            if let Some(existing) = model.name_conflict(folder_id, name, file_id) {
                return Err(self.conflict(existing));
            }
        }
        Ok(())
    }

    /// Opens an upload session after checking the target (folder/file exists, name free).
    pub(crate) fn create_session(
        &self,
        target: Target,
        file_size: u64,
        part_size: u64,
        lifetime: Duration,
    ) -> Result<Arc<Session>, ApiError> {
        let id = self.random_hex(32);
        {
            let model = lock(&self.model);
            match &target {
                Target::NewFile { folder_id, name } => {
                    if !model.folders.contains_key(folder_id) {
                        return Err(parent_not_found());
                    }
                    if let Some(existing) = model.name_conflict(folder_id, name, None) {
                        return Err(self.conflict(existing));
                    }
                }
                Target::NewVersion { file_id, name } => {
                    let Some(file) = model.files.get(file_id) else {
                        return Err(ApiError::not_found("Not Found"));
                    };
                    if let Some(name) = name {
                        if let Some(existing) = model.name_conflict(&file.folder_id, name, Some(file_id)) {
                            return Err(self.conflict(existing));
                        }
                    }
                }
            }
        }
        let data = self.storage.create_session(&id, file_size).map_err(io_error)?;
        let session = Arc::new(Session {
            id: id.clone(),
            file_size,
            part_size,
            total_parts: file_size.div_ceil(part_size),
            target,
            expires_at: self.clock.now() + lifetime,
            data,
            state: Mutex::new(SessionState::default()),
            prefix: Mutex::new(PrefixHash::default()),
        });
        lock(&self.model).sessions.insert(id, Arc::clone(&session));
        Ok(session)
    }

    /// A live session; 404 when unknown, aborted, committed or expired (an expired session is
    /// removed and its data deleted).
    pub(crate) fn session(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        let now = self.clock.now();
        let mut model = lock(&self.model);
        let Some(session) = model.sessions.get(id).cloned() else {
            return Err(ApiError::not_found("The upload session was not found"));
        };
        if session.expires_at <= now {
            model.sessions.remove(id);
            lock(&session.state).closed = true;
            session.data.discard();
            return Err(ApiError::not_found("The upload session has expired"));
        }
        Ok(session)
    }

    /// Ids of the live sessions.
    pub(crate) fn session_ids(&self) -> Vec<String> {
        lock(&self.model).sessions.keys().cloned().collect()
    }

    /// Aborts a session: its parts are discarded and every later request on it gets 404.
    pub(crate) fn abort(&self, id: &str) -> Result<(), ApiError> {
        let session = self.session(id)?;
        let mut model = lock(&self.model);
        model.sessions.remove(id);
        lock(&session.state).closed = true;
        session.data.discard();
        Ok(())
    }

    /// Checks a commit's parts list against the parts held. `Ok(true)` when some listed part is
    /// still being uploaded (the caller answers 202).
    pub(crate) fn check_parts(&self, session: &Session, listed: &[PartRecord]) -> Result<bool, ApiError> {
        let st = lock(&session.state);
        if st.closed {
            return Err(ApiError::not_found("The upload session was not found"));
        }
        if listed.iter().any(|p| st.in_flight.contains(&p.offset)) {
            return Ok(true);
        }
        let held: Vec<&PartRecord> = st.parts.values().collect();
        let mut sorted: Vec<&PartRecord> = listed.iter().collect();
        sorted.sort_by_key(|p| p.offset);
        let covered: u64 = held.iter().map(|p| p.size).sum();
        let same = held.len() == sorted.len() && held.iter().zip(&sorted).all(|(a, b)| *a == *b);
        if !same || covered != session.file_size {
            let missing: Vec<Value> = held.iter().filter(|h| !sorted.contains(h)).map(|h| h.to_json()).collect();
            let unknown: Vec<Value> = sorted.iter().filter(|p| !held.contains(p)).map(|p| p.to_json()).collect();
            return Err(ApiError::new(
                400,
                "parts_mismatch",
                "The parts in the request do not match the parts uploaded to the session",
            )
            .context(json!({
                "held_parts": held.len(),
                "listed_parts": sorted.len(),
                "bytes_held": covered,
                "file_size": session.file_size,
                "not_listed": missing,
                "not_held": unknown,
            })));
        }
        Ok(false)
    }

    /// Commits: checks the conditions, then turns the session file into the file's content.
    pub(crate) fn commit(
        &self,
        session: &Session,
        cond: &CommitConditions,
        attrs: &CommitAttributes,
    ) -> Result<FileInfo, ApiError> {
        let now = self.clock.now();
        let mut guard = lock(&self.model);
        let model = &mut *guard;
        let current: Option<FileInfo> = match &session.target {
            Target::NewFile { .. } => None,
            Target::NewVersion { file_id, .. } => match model.files.get(file_id) {
                Some(f) => Some(f.clone()),
                None => return Err(ApiError::not_found("The file of this session no longer exists")),
            },
        };
        let etag = current.as_ref().map(|f| f.etag.as_str());
        if let Some(h) = &cond.if_match {
            if !etag_matches(h, etag) {
                return Err(ApiError::new(
                    412,
                    "precondition_failed",
                    "The resource has been modified. Please retrieve the resource again and retry",
                )
                .context(json!({"if_match": h, "etag": etag})));
            }
        }
        if let Some(h) = &cond.if_none_match {
            if etag_matches(h, etag) {
                return Err(ApiError::new(412, "precondition_failed", "The resource matches If-None-Match")
                    .context(json!({"if_none_match": h, "etag": etag})));
            }
        }
        let (folder_id, name) = match (&session.target, &current) {
            (Target::NewFile { folder_id, name }, _) => (folder_id.clone(), name.clone()),
            (Target::NewVersion { name, .. }, Some(f)) => {
                (f.folder_id.clone(), name.clone().unwrap_or_else(|| f.name.clone()))
            }
            (Target::NewVersion { .. }, None) => return Err(ApiError::not_found("Not Found")),
        };
        if !model.folders.contains_key(&folder_id) {
            return Err(ApiError::not_found("The folder of this session no longer exists"));
        }
        let except = current.as_ref().map(|f| f.id.as_str());
        if let Some(existing) = model.name_conflict(&folder_id, &name, except) {
            return Err(self.conflict(existing));
        }
        let sha1 = {
            let mut st = lock(&session.state);
            if st.closed {
                return Err(ApiError::not_found("The upload session was not found"));
            }
            st.closed = true;
            drop(st);
            let prefix = lock(&session.prefix);
            hex(&prefix.hasher.clone().finish().0)
        };
        let id = match &current {
            Some(f) => f.id.clone(),
            None => model.next_numeric(),
        };
        let version_id = model.next_numeric();
        let stored = match self.storage.commit(&session.data, &id, &version_id) {
            Ok(stored) => stored,
            Err(e) => {
                lock(&session.state).closed = false;
                return Err(io_error(e));
            }
        };
        model.sessions.remove(&session.id);
        let info = match current {
            Some(old) => {
                Storage::remove_file(&old.stored);
                let bump = |s: &str| s.parse::<u64>().map(|n| n + 1).unwrap_or(1).to_string();
                FileInfo {
                    name,
                    size: session.file_size,
                    sha1,
                    etag: bump(&old.etag),
                    sequence_id: bump(&old.sequence_id),
                    version_id,
                    stored,
                    modified_at: now,
                    content_created_at: attrs.content_created_at.clone().or(old.content_created_at.clone()),
                    content_modified_at: attrs.content_modified_at.clone(),
                    ..old
                }
            }
            None => FileInfo {
                id: id.clone(),
                name,
                folder_id,
                size: session.file_size,
                sha1,
                etag: "0".into(),
                sequence_id: "0".into(),
                version_id,
                stored,
                created_at: now,
                modified_at: now,
                content_created_at: attrs.content_created_at.clone(),
                content_modified_at: attrs.content_modified_at.clone(),
            },
        };
        model.files.insert(id, info.clone());
        Ok(info)
    }

    /// The FileFull JSON of `file`.
    pub(crate) fn file_full_json(&self, file: &FileInfo) -> Value {
        // The folders from the root down to the parent (Box's path_collection).
        let path: Vec<Folder> = {
            let model = lock(&self.model);
            let mut chain = Vec::new();
            let mut next = Some(file.folder_id.clone());
            while let Some(id) = next {
                let Some(folder) = model.folders.get(&id) else { break };
                next = folder.parent_id.clone();
                chain.push(folder.clone());
                if chain.len() > 10_000 {
                    break;
                }
            }
            chain.reverse();
            chain
        };
        let mini = |f: &Folder| {
            // The root folder has no sequence id or etag.
            let tag = if f.parent_id.is_some() { json!("0") } else { Value::Null };
            json!({"type": "folder", "id": f.id, "sequence_id": tag, "etag": tag, "name": f.name})
        };
        let folder_mini = path.last().map(mini).unwrap_or_else(
            || json!({"type": "folder", "id": file.folder_id, "sequence_id": null, "etag": null, "name": ""}),
        );
        let entries: Vec<Value> = path.iter().map(mini).collect();
        let user = json!({"type": "user", "id": "33333", "name": "Emulated User", "login": "emulated@example.com"});
        let content_created_at = file.content_created_at.clone().unwrap_or_else(|| rfc3339(file.created_at));
        let content_modified_at = file.content_modified_at.clone().unwrap_or_else(|| rfc3339(file.modified_at));
        json!({
            "id": file.id,
            "type": "file",
            "etag": file.etag,
            "sequence_id": file.sequence_id,
            "name": file.name,
            "sha1": file.sha1,
            "file_version": {"type": "file_version", "id": file.version_id, "sha1": file.sha1},
            "description": "",
            "size": file.size,
            "path_collection": {"total_count": entries.len(), "entries": entries},
            "created_at": rfc3339(file.created_at),
            "modified_at": rfc3339(file.modified_at),
            "trashed_at": null,
            "purged_at": null,
            "content_created_at": content_created_at,
            "content_modified_at": content_modified_at,
            "created_by": user.clone(),
            "modified_by": user.clone(),
            "owned_by": user,
            "shared_link": null,
            "parent": folder_mini,
            "item_status": "active",
        })
    }
}
