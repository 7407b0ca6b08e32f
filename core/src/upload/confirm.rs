//! Confirming a commit from the file itself, when Box's answer does not settle it: a commit
//! that got no answer (a transport failure or a 5xx) and whose resend Box then refused (404, the
//! session is gone; 409, the name is taken; 412, the etag moved on), or a 201 without the file's
//! `sha1` or `size`. The file is looked up on the API host and its SHA-1 and size compared with
//! the upload's; only a match is a success.
//!
//! - A new version: `GET /2.0/files/{id}` ([`GetFile`]).
//! - A new file: the preflight check ([`PreflightFileUpload`]) names the file holding the name
//!   (with its SHA-1), then `GET /2.0/files/{id}` gives the whole file and its size.
//! - A 201 without `sha1` or `size`: `GET /2.0/files/{id}` of the file it names.
//!
//! A lookup that fails, finds nothing, or finds a file it cannot check ends in
//! [`Error::CommitOutcomeUnknown`]; one that finds other content, in
//! [`ProtocolError::CommitMismatch`] naming the file. [`Confirm`] is used by the big upload and
//! by [`CommitAndWait`](crate::CommitAndWait) alike.

use super::{sha1_matches, UploadTarget};
use crate::digest::Sha1Digest;
use crate::error::{Error, ProtocolError};
use crate::machine::RequestKind;
use crate::models::{FileConflict, FileFull, Files};
use crate::operations::{GetFile, Operation, PreflightCheck, PreflightFileUpload};
use crate::Config;
use bytes::Bytes;
use http::{Request, Response};
use std::fmt;

/// The fields asked for when a file is looked up to confirm a commit: the ones a commit's own
/// answer carries, so a confirmed commit gives a file of the same shape (every field then comes
/// from the lookup, not from the commit).
pub const CONFIRM_FIELDS: &[&str] = &[
    "id",
    "type",
    "etag",
    "sequence_id",
    "name",
    "size",
    "sha1",
    "file_version",
    "parent",
    "path_collection",
    "created_at",
    "modified_at",
    "content_created_at",
    "content_modified_at",
    "item_status",
];

/// What the committed file must be.
#[derive(Clone, Debug)]
pub(crate) struct Expected {
    /// The session committed (for the messages).
    pub(crate) session_id: String,
    /// The whole file's SHA-1, as sent in the commit's `Digest`.
    pub(crate) sha1: Sha1Digest,
    /// The file's size.
    pub(crate) size: u64,
    /// Where the file goes, when known (without it a lost answer cannot be looked up).
    pub(crate) target: Option<UploadTarget>,
    /// The `If-Match` the commit was sent with: the file's etag before the upload.
    pub(crate) if_match: Option<String>,
}

/// What to do next.
#[derive(Debug)]
pub(crate) enum ConfirmNext {
    /// Send this lookup and hand its answer to [`Confirm::on_answer`].
    Send(RequestKind, Request<Bytes>),
    /// Settled.
    Done(Result<FileFull, Error>),
}

#[derive(Debug)]
enum Lookup {
    Idle,
    Preflight(PreflightFileUpload),
    File(GetFile),
}

/// One confirmation: the checks of a commit's answer and, when needed, the lookups.
#[derive(Debug)]
pub(crate) struct Confirm {
    expected: Expected,
    lookup: Lookup,
    /// Why the commit needs confirming (the start of the error when nothing settles it).
    why: String,
    /// The file the answers named, once one did.
    file_id: Option<String>,
}

enum Compared {
    Same,
    Differs(String),
    Incomplete(&'static str),
}

impl Confirm {
    pub(crate) fn new(expected: Expected) -> Self {
        Self { expected, lookup: Lookup::Idle, why: String::new(), file_id: None }
    }

    /// The session's file, for a lookup that has not started yet.
    pub(crate) fn set_target(&mut self, target: UploadTarget) {
        self.expected.target = Some(target);
    }

    /// Box's 201: the file it names is checked; without `sha1` or `size` it is looked up.
    pub(crate) fn committed(&mut self, files: Files, config: &Config) -> ConfirmNext {
        let missing = |field| {
            ConfirmNext::Done(Err(ProtocolError::MissingField { kind: RequestKind::CommitSession, field }.into()))
        };
        let Some(file) = files.entries.into_iter().next() else { return missing("entries[0]") };
        if file.id.is_empty() {
            return missing("entries[0].id");
        }
        self.file_id = Some(file.id.clone());
        match self.compare(&file) {
            Compared::Same => ConfirmNext::Done(Ok(file)),
            Compared::Differs(detail) => ConfirmNext::Done(Err(mismatch(&file.id, detail))),
            Compared::Incomplete(field) => {
                self.why = format!("Box's answer to the commit names file {} but gives no {field}", file.id);
                self.get_file(file.id, config)
            }
        }
    }

    /// A commit that may have been applied without its answer reaching us (`why` says what was
    /// seen): the upload's target is looked up.
    pub(crate) fn unanswered(&mut self, why: String, config: &Config) -> ConfirmNext {
        self.why = why;
        match self.expected.target.clone() {
            Some(UploadTarget::NewVersion { file_id, .. }) => self.get_file(file_id, config),
            Some(UploadTarget::NewFile { folder_id, file_name }) => {
                let op = match PreflightFileUpload::new(folder_id, file_name, self.expected.size) {
                    Ok(op) => op,
                    Err(e) => return self.unknown(format_args!("the preflight check cannot be made: {e}")),
                };
                self.send(Lookup::Preflight(op), config)
            }
            None => self.unknown("the file this session was created for is not known here, so it was not looked up"),
        }
    }

    /// The final answer to the lookup sent last.
    pub(crate) fn on_answer(&mut self, response: Response<Bytes>, config: &Config) -> ConfirmNext {
        match std::mem::replace(&mut self.lookup, Lookup::Idle) {
            Lookup::Preflight(op) => match op.parse(response) {
                Ok(PreflightCheck::NameInUse { conflicts }) => self.on_conflicts(&op, &conflicts, config),
                Ok(_) => self.unknown(format_args!(
                    "the preflight check finds no file named {:?} in folder {}",
                    op.file_name, op.folder_id
                )),
                Err(e) => self.unknown(format_args!("the preflight check failed: {e}")),
            },
            Lookup::File(op) => match op.parse(response) {
                Ok(file) => self.on_file(&op.file_id, file),
                Err(e) => self.unknown(format_args!("getting file {} failed: {e}", op.file_id)),
            },
            Lookup::Idle => self.unknown("an answer came for no lookup"),
        }
    }

    /// The lookup sent last got no answer (retries ran out, no token, ...).
    pub(crate) fn on_failure(&mut self, error: &Error) -> ConfirmNext {
        self.lookup = Lookup::Idle;
        self.unknown(format_args!("the lookup failed: {error}"))
    }

    fn on_conflicts(&mut self, op: &PreflightFileUpload, conflicts: &[FileConflict], config: &Config) -> ConfirmNext {
        let file = conflicts.iter().find(|c| !c.id.is_empty() && c.kind.as_deref().is_none_or(|k| k == "file"));
        let Some(file) = file else {
            return self.unknown("the preflight check answered item_name_in_use but named no file");
        };
        self.file_id = Some(file.id.clone());
        if let Some(sha1) = file.sha1.as_deref() {
            if !sha1_matches(Some(sha1), self.expected.sha1) {
                let detail = format!(
                    "{:?} in folder {} holds sha1 {sha1}, we uploaded {}",
                    op.file_name, op.folder_id, self.expected.sha1
                );
                return ConfirmNext::Done(Err(mismatch(&file.id, detail)));
            }
        }
        // The conflict carries no size (Box's FileConflict has none): the file itself does.
        self.get_file(file.id.clone(), config)
    }

    fn on_file(&mut self, asked: &str, file: FileFull) -> ConfirmNext {
        if file.id != asked {
            return self.unknown(format_args!("asked for file {asked}, Box answered with file {:?}", file.id));
        }
        if let (Some(UploadTarget::NewVersion { .. }), Some(before)) = (&self.expected.target, &self.expected.if_match)
        {
            if file.etag.as_deref() == Some(before.as_str()) {
                return self.unknown(format_args!(
                    "file {asked} still has etag {before}, the one the commit was conditional on: no new version is seen"
                ));
            }
        }
        match self.compare(&file) {
            Compared::Same => ConfirmNext::Done(Ok(file)),
            Compared::Differs(detail) => ConfirmNext::Done(Err(mismatch(&file.id, detail))),
            Compared::Incomplete(field) => {
                self.unknown(format_args!("file {asked} as Box describes it has no {field}"))
            }
        }
    }

    fn get_file(&mut self, file_id: String, config: &Config) -> ConfirmNext {
        self.file_id = Some(file_id.clone());
        match GetFile::new(file_id.as_str()).and_then(|op| op.with_fields(CONFIRM_FIELDS.iter().copied())) {
            Ok(op) => self.send(Lookup::File(op), config),
            Err(e) => self.unknown(format_args!("file {file_id:?} cannot be looked up: {e}")),
        }
    }

    fn send(&mut self, lookup: Lookup, config: &Config) -> ConfirmNext {
        let built = match &lookup {
            Lookup::Preflight(op) => op.request(config).map(|r| (op.kind(), r)),
            Lookup::File(op) => op.request(config).map(|r| (op.kind(), r)),
            Lookup::Idle => return self.unknown("nothing to look up"),
        };
        match built {
            Ok((kind, request)) => {
                self.lookup = lookup;
                ConfirmNext::Send(kind, request)
            }
            Err(e) => self.unknown(format_args!("the lookup cannot be made: {e}")),
        }
    }

    /// A mismatch is definite; a missing field only means the file must be looked at again.
    fn compare(&self, file: &FileFull) -> Compared {
        let ours = self.expected.sha1;
        if let Some(size) = file.size {
            if size != self.expected.size {
                return Compared::Differs(format!("Box reports {size} bytes, we uploaded {}", self.expected.size));
            }
        }
        if let Some(sha1) = file.sha1.as_deref() {
            if !sha1_matches(Some(sha1), ours) {
                return Compared::Differs(format!("Box reports sha1 {sha1}, we uploaded {ours}"));
            }
        }
        match (file.size, file.sha1.as_deref()) {
            (None, _) => Compared::Incomplete("size"),
            (_, None) => Compared::Incomplete("sha1"),
            _ => Compared::Same,
        }
    }

    fn unknown(&self, found: impl fmt::Display) -> ConfirmNext {
        let reason = if self.why.is_empty() { found.to_string() } else { format!("{}; {found}", self.why) };
        ConfirmNext::Done(Err(Error::CommitOutcomeUnknown {
            session_id: self.expected.session_id.clone(),
            file_id: self.file_id.clone(),
            reason,
            check: self.what_to_check(),
        }))
    }

    fn what_to_check(&self) -> String {
        let content = format!("sha1 {} and {} bytes", self.expected.sha1, self.expected.size);
        match (&self.file_id, &self.expected.target) {
            (Some(id), _) | (None, Some(UploadTarget::NewVersion { file_id: id, .. })) => {
                format!("whether file {id} holds {content}")
            }
            (None, Some(UploadTarget::NewFile { folder_id, file_name })) => {
                format!("whether folder {folder_id} holds a file named {file_name:?} with {content}")
            }
            (None, None) => {
                format!("whether the file session {} was created for holds {content}", self.expected.session_id)
            }
        }
    }
}

fn mismatch(file_id: &str, detail: String) -> Error {
    ProtocolError::CommitMismatch { file_id: file_id.to_owned(), detail }.into()
}
