//! Resuming from a checkpoint: the checks before any request, the session's fresh state, the
//! parts Box already holds (from the resume listing), and the re-read parts checked against them.

use super::{
    sha1_matches, BigUpload, Checkpoint, Endpoint, Job, ListPurpose, PartStatus, Phase, ResumeOptions, Settings,
    CHECKPOINT_VERSION,
};
use crate::error::{Error, InputError, ProtocolError, SourceError};
use crate::machine::{Event, PartData, RequestKind};
use crate::models::{UploadPart, UploadSession};
use crate::operations::GetUploadSession;
use crate::planner::PlannedPart;
use crate::Client;
use bytes::Bytes;
use http::Response;

impl BigUpload {
    pub(crate) fn resume(client: &Client, checkpoint: Checkpoint, options: ResumeOptions) -> Result<Self, InputError> {
        if checkpoint.version != CHECKPOINT_VERSION {
            return Err(InputError::CheckpointMismatch(format!(
                "checkpoint version {} is not {CHECKPOINT_VERSION}",
                checkpoint.version
            )));
        }
        if let (Some(ours), Some(theirs)) = (&options.source_fingerprint, &checkpoint.source_fingerprint) {
            if ours != theirs {
                return Err(InputError::CheckpointMismatch(format!(
                    "the source is not the one the checkpoint was made for (fingerprint {theirs:?}, now {ours:?})"
                )));
            }
        }
        if let Some(size) = options.file_size {
            if size != checkpoint.file_size {
                return Err(InputError::CheckpointMismatch(format!(
                    "the source has {size} bytes, the checkpoint {}",
                    checkpoint.file_size
                )));
            }
        }
        crate::operations::check_id("session id", &checkpoint.session.id)?;
        let settings = Settings {
            target: checkpoint.target,
            file_size: checkpoint.file_size,
            parts_in_flight: options.parts_in_flight,
            if_match: checkpoint.if_match,
            if_none_match: checkpoint.if_none_match,
            keep_session_on_failure: options.keep_session_on_failure,
            source_fingerprint: checkpoint.source_fingerprint,
            list_page_size: options.list_page_size,
            headers: options.headers,
            commit_attributes: checkpoint.commit_attributes,
            // A resume lists what the session holds: there is nothing left to plan.
            dedupe: false,
            // Parts stored by an earlier run are known from a listing, not from their answers.
            list_before_commit: true,
            read_ahead: false,
        };
        if settings.parts_in_flight == 0 {
            return Err(InputError::ZeroParallelism);
        }
        let mut upload = Self::new(client, settings, Phase::Resuming);
        let mut session = checkpoint.session;
        // The checkpoint's part size is what its parts were cut with.
        session.part_size = Some(checkpoint.part_size);
        upload.session = Some(session);
        // Parts over the cap are refused before any request but the abort, as for a new session.
        if let Err(e) = upload.check_part_size(checkpoint.part_size) {
            upload.fail(e.into());
            return Ok(upload);
        }
        let get = match upload.session_ref(Endpoint::Status) {
            Ok(r) => GetUploadSession { session: r, headers: Default::default() },
            Err(e) => {
                upload.fail(e);
                return Ok(upload);
            }
        };
        upload.submit(Job::GetSession, &get, None);
        Ok(upload)
    }

    /// The session's state on resume: it must still be the checkpoint's session, cut in the
    /// checkpoint's parts; then the parts Box holds are listed.
    pub(super) fn on_session_answer(&mut self, response: Response<Bytes>) {
        let session_id = self.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let part_size = self.session.as_ref().and_then(|s| s.part_size);
        let result = match crate::response::parse_json::<UploadSession>(RequestKind::GetSession, response) {
            Err(Error::Api(e)) if e.status == 404 || e.status == 410 => {
                Err(Error::SessionGone { session_id, source: e })
            }
            Err(e) => Err(e),
            Ok(mut fresh) => {
                if fresh.part_size.is_some() && fresh.part_size != part_size {
                    Err(InputError::CheckpointMismatch(format!(
                        "the session's part_size is {:?}, the checkpoint's {:?}",
                        fresh.part_size, part_size
                    ))
                    .into())
                } else {
                    // The checkpoint's session stays until the answer is accepted, so a
                    // refused answer still aborts it.
                    let old = self.session.clone().unwrap_or_default();
                    fresh.part_size = part_size;
                    if fresh.id.is_empty() {
                        fresh.id = old.id.clone();
                    }
                    if fresh.id != old.id {
                        return self.fail(
                            InputError::CheckpointMismatch(format!(
                                "Box answered for session {:?}, not the checkpoint's",
                                fresh.id.chars().take(64).collect::<String>()
                            ))
                            .into(),
                        );
                    }
                    if fresh.session_endpoints.is_none() {
                        fresh.session_endpoints = old.session_endpoints;
                    }
                    if fresh.total_parts.is_none() {
                        fresh.total_parts = old.total_parts;
                    }
                    self.on_session(fresh, RequestKind::GetSession)
                }
            }
        };
        match result {
            // The resume listing stays strict (a `total_count` that changes fails it): nothing of
            // ours is in flight yet, and the run that made the checkpoint is over (the driver's
            // checkpoint lock keeps a second local run out; a dead run's half-sent part is
            // dropped by Box with its connection). A session that changes while we list has
            // another writer, which no listing can make safe to resume.
            Ok(()) => self.start_list(ListPurpose::Resume),
            Err(e) => self.fail(e),
        }
    }

    pub(super) fn adopt_resumed(&mut self, entries: Vec<UploadPart>) -> Result<(), Error> {
        let Some(plan) = self.plan else { return Ok(()) };
        for entry in entries {
            let planned = plan.part_at(entry.offset).filter(|p| p.size == entry.size).ok_or_else(|| {
                ProtocolError::PartsListMismatch(format!(
                    "the session lists a part at offset {} of {} bytes, which is not one of the file's parts",
                    entry.offset, entry.size
                ))
            })?;
            let slot = &mut self.parts[planned.index];
            if !matches!(slot.status, PartStatus::Acked(_)) {
                slot.status = PartStatus::Acked(entry);
                self.progress.parts_acknowledged += 1;
                self.progress.bytes_acknowledged += planned.size;
            }
        }
        self.emit_progress();
        self.events.push_back(Event::CheckpointUpdated);
        Ok(())
    }

    /// A resumed part Box already holds, read again: it must still be the source's.
    pub(super) fn check_resumed_part(known: &UploadPart, planned: &PlannedPart, data: &PartData) -> Result<(), Error> {
        if sha1_matches(known.sha1.as_deref(), data.sha1()) {
            Ok(())
        } else {
            Err(SourceError::ResumeMismatch { offset: planned.offset }.into())
        }
    }
}
