//! The preflight check of a new file, sent beside the session's creation instead of before it:
//! the two round trips overlap, and no part is read (so no byte of the file is sent) until the
//! check has passed. A check that fails while the session is still being created waits for it,
//! so the session is aborted, and the upload fails with the check's error.

use super::{BigUpload, Job, Phase, UploadTarget};
use crate::error::{Error, InputError};
use crate::file_upload::{conflict_error, name_in_use};
use crate::operations::{Operation, PreflightCheck, PreflightFileUpload};
use bytes::Bytes;
use http::Response;

/// Where the preflight check stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// Not asked for (a new version, a resume, or a caller that checked already).
    Off,
    /// Sent, not answered: parts wait.
    Pending,
    /// Passed.
    Passed,
    /// Failed: the upload fails with its error.
    Failed,
}

impl BigUpload {
    /// A new upload whose session is created beside the preflight check of its new file (a new
    /// version has nothing to check: it starts as [`BigUpload::start`] does). Request ids are
    /// given out above `id_floor`, so no late answer to an earlier machine's request is taken
    /// for one of this one's.
    pub(crate) fn start_checked(
        client: &crate::Client,
        request: super::UploadRequest,
        id_floor: u64,
    ) -> Result<Self, InputError> {
        let check = match &request.target {
            UploadTarget::NewFile { folder_id, file_name } => {
                Some(PreflightFileUpload::new(folder_id.clone(), file_name.clone(), request.file_size)?)
            }
            UploadTarget::NewVersion { .. } => None,
        };
        let mut upload = Self::start_with_floor(client, request, id_floor)?;
        if let Some(check) = check {
            upload.preflight = Gate::Pending;
            upload.submit(Job::Preflight, &check, None);
        }
        Ok(upload)
    }

    /// Whether parts may be read: not while the preflight check is out.
    pub(super) fn preflight_passed(&self) -> bool {
        matches!(self.preflight, Gate::Off | Gate::Passed)
    }

    /// The last request id this machine gave out.
    pub(crate) fn last_request_id(&self) -> u64 {
        self.dispatch.last_id()
    }

    pub(super) fn on_preflight_answer(&mut self, response: Response<Bytes>) {
        let taken = name_in_use(&response);
        let UploadTarget::NewFile { folder_id, file_name } = &self.settings.target else { return };
        let check = PreflightFileUpload {
            folder_id: folder_id.clone(),
            file_name: file_name.clone(),
            size: self.settings.file_size,
            headers: Default::default(),
        };
        match check.parse(response) {
            Ok(PreflightCheck::Accepted(_)) => {
                self.preflight = Gate::Passed;
                if let Some(error) = self.create_failure.take() {
                    self.fail(error);
                }
            }
            Ok(PreflightCheck::NameInUse { conflicts }) => {
                let error = taken.unwrap_or_else(|| conflict_error(&conflicts));
                self.preflight_failed(Error::Api(error));
            }
            Err(e) => self.preflight_failed(e),
        }
    }

    /// The check failed: the upload fails with its error, once the session being created (if
    /// it is) is known and can be aborted.
    pub(super) fn preflight_failed(&mut self, error: Error) {
        // No part was sent: a session kept for a resume would hold nothing to resume.
        self.settings.keep_session_on_failure = false;
        self.preflight = Gate::Failed;
        if self.phase == Phase::Creating && self.create_failure.is_none() {
            self.pending_failure = Some(error);
        } else {
            self.create_failure = None;
            self.fail(error);
        }
    }

    /// The session's creation failed: while the preflight check is out, its answer decides the
    /// error (the check's when it fails too), so the upload ends the same whichever comes first.
    pub(super) fn create_failed(&mut self, error: Error) {
        if self.preflight == Gate::Pending {
            self.create_failure = Some(error);
        } else {
            self.fail(error);
        }
    }
}
