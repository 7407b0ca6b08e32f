//! The big upload as one state machine: session → parts (N in flight) → list → commit (202 loop).
//!
//! Failures it cannot recover from abort the session (unless asked to keep it for a resume) and
//! end the run with the first error. It recovers from what real Box does: 202 commits for minutes,
//! a transient `parts_mismatch`, and parts stored whose answer was lost (adopted after a 409 or 416
//! `range_overlaps_existing_part` when the listed part is ours).

mod checkpoint;
mod fingerprint;
mod listing;
mod request;

pub use checkpoint::{Checkpoint, ResumeFrom, UploadTarget, CHECKPOINT_VERSION};
pub use fingerprint::{FileFingerprint, FingerprintError};
pub use request::{ResumeOptions, UploadRequest, DEFAULT_PARTS_IN_FLIGHT};

use crate::digest::{FileHasher, Sha1Digest};
use crate::dispatch::{Completion, Dispatcher};
use crate::machine::{
    Event, Machine, PartBuilder, PartData, Progress, ReadId, ReadRequest, RequestId, RequestKind, Transmit,
};
use crate::error::{Error, InputError, ProtocolError, SourceError, TransportError};
use crate::models::{FileFull, UploadPart, UploadSession};
use crate::operations::{
    CommitResponse, CommitUploadSession, CreateUploadSession, CreateUploadSessionForFile, DeleteUploadSession,
    GetUploadSession, ListUploadSessionParts, Operation, SessionRef, UploadFilePart,
};
use crate::planner::PartPlan;
use crate::Client;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use listing::{ListOutcome, Lister};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Create,
    GetSession,
    Part(usize),
    List,
    Commit,
    Abort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    UploadPart,
    Commit,
    ListParts,
    Abort,
    Status,
}

impl Endpoint {
    fn url(self, endpoints: &crate::models::SessionEndpoints) -> Option<&str> {
        match self {
            Endpoint::UploadPart => endpoints.upload_part.as_deref(),
            Endpoint::Commit => endpoints.commit.as_deref(),
            Endpoint::ListParts => endpoints.list_parts.as_deref(),
            Endpoint::Abort => endpoints.abort.as_deref(),
            Endpoint::Status => endpoints.status.as_deref(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListPurpose {
    /// Resume: learn which parts Box already has.
    Resume,
    /// A part answered 409/416 overlap: find out whether the stored part is ours.
    Reconcile,
    /// Before the commit: check Box holds exactly our parts.
    Verify,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Creating,
    Resuming,
    Uploading,
    Committing,
    Aborting,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PartStatus {
    /// Not sent yet (not read, or read and waiting to be sent).
    Pending,
    /// Submitted: queued or on the wire.
    Sending,
    /// Box said the range is taken; waiting for the list to tell whose part it is.
    Conflict,
    /// Box holds it.
    Acked(UploadPart),
}

#[derive(Debug)]
struct PartSlot {
    status: PartStatus,
    reading: bool,
    data: Option<PartData>,
    hashed: bool,
}

#[derive(Debug)]
enum ReadTarget {
    Part(usize),
    EndOfFile,
}

#[derive(Debug)]
struct Settings {
    target: UploadTarget,
    file_size: u64,
    parts_in_flight: usize,
    if_match: Option<String>,
    if_none_match: Option<String>,
    keep_session_on_failure: bool,
    source_fingerprint: Option<String>,
    list_page_size: u64,
    headers: HeaderMap,
    commit_attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A big upload in progress: drive it as a [`Machine`] until `poll_output` gives the committed
/// file. Made by [`Client::big_upload`] or [`Client::resume`].
#[derive(Debug)]
pub struct BigUpload {
    dispatch: Dispatcher<Job>,
    settings: Settings,
    phase: Phase,
    session: Option<UploadSession>,
    plan: Option<PartPlan>,
    parts: Vec<PartSlot>,
    next_read: usize,
    /// Parts being read or whose bytes are kept: never more than `parts_in_flight`.
    holding: usize,
    reads: HashMap<ReadId, ReadTarget>,
    next_read_id: u64,
    eof_checked: Option<bool>,
    hashed_upto: usize,
    whole: FileHasher,
    /// Bytes this machine hashed itself for the whole-file digest (not carried by a read).
    whole_hashed_here: u64,
    digest: Option<Sha1Digest>,
    lister: Option<(Lister, ListPurpose)>,
    relist: bool,
    commit_started: Option<Instant>,
    commits: u32,
    mismatch_retries: u32,
    progress: Progress,
    error: Option<Error>,
    output: Option<Result<FileFull, Error>>,
    events: VecDeque<Event>,
}

impl BigUpload {
    pub(crate) fn start(client: &Client, request: UploadRequest) -> Result<Self, InputError> {
        let settings = request.into_settings()?;
        // The create operation checks the size, ids and name before anything is sent.
        let create = create_request(&settings)?;
        let mut upload = Self::new(client, settings, Phase::Creating);
        match create.request(&upload.dispatch.config().clone()) {
            Ok(mut req) => {
                upload.add_headers(&mut req);
                upload.dispatch.submit(Job::Create, create.kind(), req, None);
            }
            Err(e) => upload.fail(e),
        }
        Ok(upload)
    }

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
        };
        if settings.parts_in_flight == 0 {
            return Err(InputError::ZeroParallelism);
        }
        let mut upload = Self::new(client, settings, Phase::Resuming);
        let mut session = checkpoint.session;
        // The checkpoint's part size is what its parts were cut with.
        session.part_size = Some(checkpoint.part_size);
        upload.session = Some(session);
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

    fn new(client: &Client, settings: Settings, phase: Phase) -> Self {
        let progress = Progress { total_bytes: settings.file_size, ..Progress::default() };
        Self {
            dispatch: Dispatcher::new(client.config.clone(), client.auth.clone()),
            settings,
            phase,
            session: None,
            plan: None,
            parts: Vec::new(),
            next_read: 0,
            holding: 0,
            reads: HashMap::new(),
            next_read_id: 0,
            eof_checked: None,
            hashed_upto: 0,
            whole: FileHasher::new(),
            whole_hashed_here: 0,
            digest: None,
            lister: None,
            relist: false,
            commit_started: None,
            commits: 0,
            mismatch_retries: 0,
            progress,
            error: None,
            output: None,
            events: VecDeque::new(),
        }
    }

    /// The session, once created.
    #[must_use]
    pub fn session(&self) -> Option<&UploadSession> {
        self.session.as_ref()
    }

    /// How far the upload has come.
    #[must_use]
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// The SHA-1 of the whole source, once every byte has been read.
    #[must_use]
    pub fn file_digest(&self) -> Option<Sha1Digest> {
        self.digest
    }

    /// How many bytes the machine fed to the whole-file hasher itself, on the driver's thread,
    /// because no read carried the hash on (see [`Machine::part_builder`]). A driver that serves
    /// reads one at a time, in order, through `part_builder` keeps this at 0 for a new upload.
    #[doc(hidden)]
    #[must_use]
    pub fn whole_file_bytes_hashed_here(&self) -> u64 {
        self.whole_hashed_here
    }

    /// A checkpoint to resume from, once the session exists.
    #[must_use]
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let session = self.session.clone()?;
        let part_size = session.part_size?;
        let parts = self
            .parts
            .iter()
            .filter_map(|p| match &p.status {
                PartStatus::Acked(part) => Some(part.clone()),
                _ => None,
            })
            .collect();
        Some(Checkpoint {
            version: CHECKPOINT_VERSION,
            session,
            target: self.settings.target.clone(),
            file_size: self.settings.file_size,
            part_size,
            source_fingerprint: self.settings.source_fingerprint.clone(),
            if_match: self.settings.if_match.clone(),
            if_none_match: self.settings.if_none_match.clone(),
            commit_attributes: self.settings.commit_attributes.clone(),
            parts,
        })
    }

    /// Stops the upload: nothing more is read or sent; the session is aborted unless
    /// `keep_session` (then the checkpoint can resume it). The output is [`Error::Cancelled`].
    pub fn cancel(&mut self, keep_session: bool) {
        if keep_session {
            self.settings.keep_session_on_failure = true;
        }
        self.fail(Error::Cancelled);
    }

    // ---- helpers -------------------------------------------------------------------------

    fn add_headers(&self, request: &mut http::Request<Bytes>) {
        for (name, value) in &self.settings.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }

    fn submit<O: Operation>(&mut self, job: Job, op: &O, not_before: Option<Instant>) {
        let config = self.dispatch.config().clone();
        match op.request(&config) {
            Ok(mut request) => {
                self.add_headers(&mut request);
                self.dispatch.submit(job, op.kind(), request, not_before);
            }
            Err(e) => self.fail(e),
        }
    }

    /// The session URL from `session_endpoints` when Box gave one, else the id form. Endpoints
    /// outside the trusted hosts are refused here, before anything is sent to them.
    fn session_ref(&self, endpoint: Endpoint) -> Result<SessionRef, Error> {
        let session = self
            .session
            .as_ref()
            .ok_or(ProtocolError::MissingField { kind: RequestKind::CreateSession, field: "id" })?;
        match session.session_endpoints.as_ref().and_then(|e| endpoint.url(e)) {
            Some(url) => {
                let uri = crate::operations::parse_url(url)?;
                self.dispatch.config().check_trusted(&uri, "session_endpoints")?;
                Ok(SessionRef::Url(url.to_owned()))
            }
            None => Ok(SessionRef::Id(session.id.clone())),
        }
    }

    fn emit_progress(&mut self) {
        self.events.push_back(Event::Progress(self.progress));
    }

    fn fail(&mut self, error: Error) {
        if self.error.is_some() || self.output.is_some() || self.phase == Phase::Done {
            return;
        }
        self.error = Some(error);
        self.dispatch.clear();
        self.reads.clear();
        self.lister = None;
        self.drop_parts();
        let gone = matches!(self.error, Some(Error::SessionGone { .. }));
        if self.session.is_some() && !self.settings.keep_session_on_failure && !gone {
            self.phase = Phase::Aborting;
            // Abort by id when the endpoints are not to be trusted: the base URL always is.
            let target = self
                .session_ref(Endpoint::Abort)
                .or_else(|_| self.session.as_ref().map(|s| SessionRef::Id(s.id.clone())).ok_or(()));
            if let Ok(session) = target {
                let abort = DeleteUploadSession { session, headers: Default::default() };
                if let Ok(mut request) = abort.request(&self.dispatch.config().clone()) {
                    self.add_headers(&mut request);
                    self.dispatch.submit(Job::Abort, abort.kind(), request, None);
                    return;
                }
            }
        }
        self.finish_with_error();
    }

    fn drop_parts(&mut self) {
        for slot in &mut self.parts {
            slot.data = None;
            slot.reading = false;
        }
        self.holding = 0;
    }

    fn finish_with_error(&mut self) {
        let error = self.error.take().unwrap_or(Error::Cancelled);
        self.finish(Err(error));
    }

    fn finish(&mut self, output: Result<FileFull, Error>) {
        self.phase = Phase::Done;
        self.dispatch.clear();
        self.drop_parts();
        self.output = Some(output);
        self.events.push_back(Event::Finished);
    }

    fn is_over(&self) -> bool {
        self.error.is_some() || matches!(self.phase, Phase::Done | Phase::Aborting)
    }

    // ---- session ---------------------------------------------------------------------------

    fn on_session(&mut self, session: UploadSession, kind: RequestKind) -> Result<(), Error> {
        if session.id.is_empty() {
            return Err(ProtocolError::MissingField { kind, field: "id" }.into());
        }
        crate::operations::check_id("session id", &session.id)
            .map_err(|_| ProtocolError::MissingField { kind, field: "a valid session id" })?;
        let plan = PartPlan::for_session(self.settings.file_size, &session);
        // Box holds the session even when its numbers are unusable: keep it so the failure aborts it.
        self.session = Some(session);
        let plan = plan.map_err(ProtocolError::BadSession)?;
        // Refuse foreign endpoints now, before a single part is read.
        for endpoint in [Endpoint::UploadPart, Endpoint::Commit, Endpoint::ListParts, Endpoint::Abort, Endpoint::Status]
        {
            self.session_ref(endpoint)?;
        }
        self.plan = Some(plan);
        self.parts = (0..plan.len())
            .map(|_| PartSlot { status: PartStatus::Pending, reading: false, data: None, hashed: false })
            .collect();
        self.progress.total_parts = plan.len() as u64;
        Ok(())
    }

    // ---- reads and parts -------------------------------------------------------------------

    /// Lets go of a part's bytes once Box holds the part and the whole-file hash has them.
    fn release_if_done(&mut self, index: usize) {
        let slot = &mut self.parts[index];
        if slot.hashed && matches!(slot.status, PartStatus::Acked(_)) && slot.data.take().is_some() {
            self.holding -= 1;
        }
    }

    fn on_read(&mut self, id: ReadId, data: Result<PartData, SourceError>, now: Instant) {
        let Some(target) = self.reads.remove(&id) else { return };
        let data = match data {
            Ok(d) => d,
            Err(e) => return self.fail(e.into()),
        };
        let Some(plan) = self.plan else { return };
        match target {
            ReadTarget::EndOfFile => {
                if data.is_empty() {
                    self.eof_checked = Some(true);
                    self.maybe_verify(now);
                } else {
                    self.fail(SourceError::RanLong { file_size: plan.file_size() }.into());
                }
            }
            ReadTarget::Part(index) => {
                let Some(planned) = plan.part(index) else { return };
                self.parts[index].reading = false;
                if data.len() as u64 != planned.size {
                    let e = if (data.len() as u64) < planned.size {
                        SourceError::EndedEarly {
                            offset: planned.offset,
                            expected: planned.size,
                            got: data.len() as u64,
                        }
                    } else {
                        SourceError::RanLong { file_size: plan.file_size() }
                    };
                    return self.fail(e.into());
                }
                self.progress.bytes_read += planned.size;
                match &self.parts[index].status {
                    PartStatus::Acked(known) => {
                        // Resumed: Box has this part; it must still be the source's.
                        if !sha1_matches(known.sha1.as_deref(), data.sha1()) {
                            return self.fail(SourceError::ResumeMismatch { offset: planned.offset }.into());
                        }
                    }
                    _ => {
                        let session = match self.session_ref(Endpoint::UploadPart) {
                            Ok(s) => s,
                            Err(e) => return self.fail(e),
                        };
                        let op = UploadFilePart {
                            session,
                            range: planned.content_range(plan.file_size()),
                            data: data.clone(),
                            headers: Default::default(),
                        };
                        self.parts[index].status = PartStatus::Sending;
                        self.submit(Job::Part(index), &op, None);
                    }
                }
                self.parts[index].data = Some(data);
                self.advance_hash();
                self.emit_progress();
                self.maybe_verify(now);
            }
        }
    }

    /// Feeds the whole-file hasher every part now contiguous from the start, and lets go of the
    /// bytes of parts Box already holds.
    fn advance_hash(&mut self) {
        while let Some(slot) = self.parts.get_mut(self.hashed_upto) {
            let Some(data) = &slot.data else { break };
            // The reading thread may have carried the whole-file hash on already (see
            // `part_builder`); it did if the hasher it returns covers exactly this part more.
            match &data.file {
                Some(file) if file.len() == self.whole.len() + data.len() as u64 => self.whole = (**file).clone(),
                _ => {
                    self.whole.update(data.bytes());
                    self.whole_hashed_here += data.len() as u64;
                }
            }
            slot.hashed = true;
            self.release_if_done(self.hashed_upto);
            self.hashed_upto += 1;
        }
        if self.hashed_upto == self.parts.len() && self.digest.is_none() && !self.parts.is_empty() {
            self.digest = Some(std::mem::take(&mut self.whole).finish());
        }
    }

    fn on_part_answer(&mut self, index: usize, response: Response<Bytes>, now: Instant) {
        let (Some(plan), Some(slot)) = (self.plan, self.parts.get(index)) else { return };
        let Some(planned) = plan.part(index) else { return };
        let Some(data) = slot.data.as_ref() else { return };
        let ours = data.sha1();
        let status = response.status();
        let code = overlap_code(&response);
        if status == StatusCode::CONFLICT || (status == StatusCode::RANGE_NOT_SATISFIABLE && code) {
            self.parts[index].status = PartStatus::Conflict;
            self.start_list(ListPurpose::Reconcile);
            return;
        }
        let op_kind = RequestKind::UploadPart;
        let echoed = match crate::response::parse_json::<crate::models::UploadedPart>(op_kind, response) {
            Ok(p) => p.part,
            Err(e) => return self.fail(e),
        };
        let Some(part) = echoed else {
            return self.fail(ProtocolError::MissingField { kind: op_kind, field: "part" }.into());
        };
        let mismatch = |field, ours: String, theirs: String| {
            Error::from(ProtocolError::PartEchoMismatch { offset: planned.offset, field, ours, theirs })
        };
        if part.offset != planned.offset {
            return self.fail(mismatch("offset", planned.offset.to_string(), part.offset.to_string()));
        }
        if part.size != planned.size {
            return self.fail(mismatch("size", planned.size.to_string(), part.size.to_string()));
        }
        if !sha1_matches(part.sha1.as_deref(), ours) {
            return self.fail(mismatch("sha1", ours.to_hex(), part.sha1.clone().unwrap_or_default()));
        }
        self.ack(index, part);
        self.maybe_verify(now);
    }

    fn ack(&mut self, index: usize, part: UploadPart) {
        let size = part.size;
        let slot = &mut self.parts[index];
        if matches!(slot.status, PartStatus::Acked(_)) {
            return;
        }
        slot.status = PartStatus::Acked(part);
        self.release_if_done(index);
        self.progress.parts_acknowledged += 1;
        self.progress.bytes_acknowledged += size;
        self.emit_progress();
        self.events.push_back(Event::CheckpointUpdated);
    }

    // ---- listing ---------------------------------------------------------------------------

    fn start_list(&mut self, purpose: ListPurpose) {
        if let Some((_, running)) = &self.lister {
            // A reconcile started while a list runs needs a fresh list: the part may be newer.
            if purpose == ListPurpose::Reconcile {
                self.relist = *running == ListPurpose::Reconcile || self.relist;
            }
            return;
        }
        let Some(plan) = self.plan else { return };
        let lister = Lister::new(self.settings.list_page_size, plan.len() as u64);
        self.lister = Some((lister, purpose));
        self.submit_list_page();
    }

    fn submit_list_page(&mut self) {
        let Some((lister, _)) = &self.lister else { return };
        let (offset, limit) = (lister.next_offset(), lister.limit());
        let session = match self.session_ref(Endpoint::ListParts) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let op =
            ListUploadSessionParts { session, offset: Some(offset), limit: Some(limit), headers: Default::default() };
        self.submit(Job::List, &op, None);
    }

    fn on_list_answer(&mut self, response: Response<Bytes>, now: Instant) {
        let page = match crate::response::parse_json::<crate::models::UploadParts>(RequestKind::ListParts, response) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        let Some((lister, purpose)) = self.lister.as_mut() else { return };
        let purpose = *purpose;
        match lister.add_page(page) {
            Err(e) => self.fail(e.into()),
            Ok(ListOutcome::More) => self.submit_list_page(),
            Ok(ListOutcome::Done(entries)) => {
                self.lister = None;
                let result = match purpose {
                    ListPurpose::Resume => self.adopt_resumed(entries),
                    ListPurpose::Reconcile => self.reconcile(entries),
                    ListPurpose::Verify => self.verify(entries),
                };
                if let Err(e) = result {
                    return self.fail(e);
                }
                match purpose {
                    ListPurpose::Resume => self.phase = Phase::Uploading,
                    ListPurpose::Reconcile if std::mem::take(&mut self.relist) => {
                        self.start_list(ListPurpose::Reconcile)
                    }
                    ListPurpose::Reconcile => self.maybe_verify(now),
                    ListPurpose::Verify => self.commit(now, None),
                }
            }
        }
    }

    fn adopt_resumed(&mut self, entries: Vec<UploadPart>) -> Result<(), Error> {
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

    fn reconcile(&mut self, entries: Vec<UploadPart>) -> Result<(), Error> {
        let Some(plan) = self.plan else { return Ok(()) };
        let by_offset: HashMap<u64, UploadPart> = entries.into_iter().map(|p| (p.offset, p)).collect();
        for index in 0..self.parts.len() {
            if self.parts[index].status != PartStatus::Conflict {
                continue;
            }
            let Some(planned) = plan.part(index) else { continue };
            let Some(ours) = self.parts[index].data.as_ref().map(PartData::sha1) else { continue };
            let Some(stored) = by_offset.get(&planned.offset) else {
                return Err(ProtocolError::PartConflict {
                    offset: planned.offset,
                    detail: "Box refused the part as overlapping but lists no part at its offset".into(),
                }
                .into());
            };
            if stored.size != planned.size || !sha1_matches(stored.sha1.as_deref(), ours) {
                return Err(ProtocolError::PartConflict {
                    offset: planned.offset,
                    detail: format!(
                        "the stored part has {} bytes and sha1 {}; ours has {} bytes and sha1 {}",
                        stored.size,
                        stored.sha1.as_deref().unwrap_or("(none)"),
                        planned.size,
                        ours.to_hex()
                    ),
                }
                .into());
            }
            self.events.push_back(Event::PartAdopted { offset: planned.offset });
            self.ack(index, stored.clone());
        }
        Ok(())
    }

    fn verify(&mut self, entries: Vec<UploadPart>) -> Result<(), Error> {
        let ours = self.acked_parts();
        if entries.len() != ours.len() {
            return Err(ProtocolError::PartsListMismatch(format!(
                "Box lists {} parts, we uploaded {}",
                entries.len(),
                ours.len()
            ))
            .into());
        }
        let mut listed: Vec<&UploadPart> = entries.iter().collect();
        listed.sort_by_key(|p| p.offset);
        for (theirs, ours) in listed.iter().zip(&ours) {
            let same_sha = match (theirs.sha1.as_deref(), ours.sha1.as_deref()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            if theirs.offset != ours.offset || theirs.size != ours.size || !same_sha {
                return Err(ProtocolError::PartsListMismatch(format!(
                    "Box lists offset {} size {} sha1 {}, we uploaded offset {} size {} sha1 {}",
                    theirs.offset,
                    theirs.size,
                    theirs.sha1.as_deref().unwrap_or("(none)"),
                    ours.offset,
                    ours.size,
                    ours.sha1.as_deref().unwrap_or("(none)")
                ))
                .into());
            }
        }
        Ok(())
    }

    fn acked_parts(&self) -> Vec<UploadPart> {
        self.parts
            .iter()
            .filter_map(|p| match &p.status {
                PartStatus::Acked(part) => Some(part.clone()),
                _ => None,
            })
            .collect()
    }

    /// When every part is acknowledged, the source is known to end where it should and the digest
    /// is complete: list the parts to check them before the commit.
    fn maybe_verify(&mut self, _now: Instant) {
        if self.phase != Phase::Uploading || self.lister.is_some() || self.is_over() {
            return;
        }
        let all_acked = self.progress.parts_acknowledged == self.parts.len() as u64;
        if all_acked && self.eof_checked == Some(true) && self.digest.is_some() {
            self.phase = Phase::Committing;
            self.start_list(ListPurpose::Verify);
        }
    }

    // ---- commit ----------------------------------------------------------------------------

    fn commit(&mut self, now: Instant, not_before: Option<Instant>) {
        let Some(digest) = self.digest else { return };
        self.commit_started.get_or_insert(now);
        let session = match self.session_ref(Endpoint::Commit) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let mut op = CommitUploadSession::new(session, self.acked_parts(), digest);
        op.if_match = self.settings.if_match.clone();
        op.if_none_match = self.settings.if_none_match.clone();
        op.attributes = self.settings.commit_attributes.clone();
        self.commits += 1;
        self.submit(Job::Commit, &op, not_before);
    }

    fn on_commit_answer(&mut self, response: Response<Bytes>, now: Instant) {
        let headers = response.headers().clone();
        match CommitResponse::try_from(response) {
            Ok(CommitResponse::Committed(files)) => {
                let result = self.check_committed(files.entries.into_iter().next());
                self.finish(result);
            }
            Ok(CommitResponse::NotReady { retry_after }) => {
                let policy = self.dispatch.config().retry.clone();
                let delay = match retry_after {
                    Some(d) => d.min(policy.max_retry_after),
                    None => policy.backoff(self.commits, self.dispatch.jitter()),
                };
                let started = self.commit_started.unwrap_or(now);
                let waited = now.saturating_duration_since(started);
                if waited + delay > policy.commit_timeout {
                    return self.fail(Error::CommitTimeout { attempts: self.commits, waited });
                }
                self.events.push_back(Event::CommitPending { attempts: self.commits, delay });
                self.commit(now, Some(now + delay));
            }
            Err(e) if e.box_code() == Some("parts_mismatch") => {
                let policy = self.dispatch.config().retry.clone();
                if self.mismatch_retries >= policy.parts_mismatch_retries {
                    return self.fail(e);
                }
                self.mismatch_retries += 1;
                let delay = self.dispatch.retry_delay(&headers, self.mismatch_retries);
                self.events.push_back(Event::Retrying {
                    kind: RequestKind::CommitSession,
                    attempt: self.mismatch_retries,
                    delay,
                    reason: "Box answered parts_mismatch".into(),
                });
                self.commit(now, Some(now + delay));
            }
            Err(e) => self.fail(e),
        }
    }

    fn check_committed(&self, file: Option<FileFull>) -> Result<FileFull, Error> {
        let file = file.ok_or(ProtocolError::MissingField { kind: RequestKind::CommitSession, field: "entries[0]" })?;
        if file.id.is_empty() {
            return Err(ProtocolError::MissingField { kind: RequestKind::CommitSession, field: "entries[0].id" }.into());
        }
        if let Some(size) = file.size {
            if size != self.settings.file_size {
                return Err(ProtocolError::CommitMismatch(format!(
                    "Box reports {size} bytes, we uploaded {}",
                    self.settings.file_size
                ))
                .into());
            }
        }
        if let (Some(sha1), Some(ours)) = (file.sha1.as_deref(), self.digest) {
            if !sha1_matches(Some(sha1), ours) {
                return Err(
                    ProtocolError::CommitMismatch(format!("Box reports sha1 {sha1}, we uploaded {ours}")).into()
                );
            }
        }
        Ok(file)
    }

    // ---- completions -----------------------------------------------------------------------

    fn drain(&mut self, now: Instant) {
        loop {
            self.events.extend(self.dispatch.events.drain(..));
            let Some(completion) = self.dispatch.poll_completion() else { break };
            match completion {
                Completion::Failed { job: Job::Abort, .. } => {
                    self.events.push_back(Event::Aborted { confirmed: false });
                    self.finish_with_error();
                }
                Completion::Answered { job: Job::Abort, response } => {
                    self.events.push_back(Event::Aborted { confirmed: response.status().is_success() });
                    self.finish_with_error();
                }
                Completion::Failed { error, .. } => self.fail(error),
                Completion::Answered { job, response } => self.on_answer(job, response, now),
            }
        }
    }

    fn on_answer(&mut self, job: Job, response: Response<Bytes>, now: Instant) {
        if self.is_over() {
            return;
        }
        match job {
            Job::Create => {
                let create = match create_request(&self.settings) {
                    Ok(c) => c,
                    Err(e) => return self.fail(e.into()),
                };
                let kind = create.kind();
                match create.parse(response).and_then(|s| self.on_session(s, kind)) {
                    Ok(()) => {
                        self.phase = Phase::Uploading;
                        let session_id = self.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
                        self.events.push_back(Event::SessionCreated { session_id });
                        self.events.push_back(Event::CheckpointUpdated);
                    }
                    Err(e) => self.fail(e),
                }
            }
            Job::GetSession => {
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
                    Ok(()) => self.start_list(ListPurpose::Resume),
                    Err(e) => self.fail(e),
                }
            }
            Job::Part(index) => self.on_part_answer(index, response, now),
            Job::List => self.on_list_answer(response, now),
            Job::Commit => self.on_commit_answer(response, now),
            Job::Abort => {}
        }
    }
}

impl Machine for BigUpload {
    type Output = FileFull;

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.phase == Phase::Done {
            return None;
        }
        let t = self.dispatch.poll_transmit(now);
        self.drain(now);
        t
    }

    fn poll_read(&mut self) -> Option<ReadRequest> {
        if self.phase != Phase::Uploading || self.is_over() {
            return None;
        }
        let plan = self.plan?;
        if self.next_read < plan.len() {
            if self.holding >= self.settings.parts_in_flight {
                return None;
            }
            let part = plan.part(self.next_read)?;
            self.parts[part.index].reading = true;
            self.holding += 1;
            self.next_read += 1;
            self.next_read_id += 1;
            let id = ReadId(self.next_read_id);
            self.reads.insert(id, ReadTarget::Part(part.index));
            // Bounded by part_size, which fits in memory or the plan would be refused upstream.
            let len = usize::try_from(part.size).ok()?;
            return Some(ReadRequest { id, offset: part.offset, len });
        }
        if self.eof_checked.is_none() {
            self.eof_checked = Some(false);
            self.next_read_id += 1;
            let id = ReadId(self.next_read_id);
            self.reads.insert(id, ReadTarget::EndOfFile);
            return Some(ReadRequest { id, offset: plan.file_size(), len: 1 });
        }
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Done {
            return None;
        }
        self.dispatch.poll_timeout()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_output(&mut self) -> Option<Result<FileFull, Error>> {
        self.output.take()
    }

    fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant) {
        self.dispatch.handle_response(id, response, now);
        self.drain(now);
    }

    fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        self.dispatch.handle_transport_error(id, error, now);
        self.drain(now);
    }

    fn handle_read(&mut self, id: ReadId, data: Result<PartData, SourceError>, now: Instant) {
        if self.is_over() {
            return;
        }
        self.on_read(id, data, now);
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.drain(now);
    }

    fn part_builder(&mut self, read: &ReadRequest, buf: Vec<u8>) -> PartBuilder {
        // Only the read that continues the hashed prefix can carry the whole-file hash on.
        match self.reads.get(&read.id) {
            Some(ReadTarget::Part(index)) if *index == self.hashed_upto && self.digest.is_none() => {
                PartBuilder::continuing(buf, self.whole.clone())
            }
            _ => PartBuilder::new(buf),
        }
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        BigUpload::checkpoint(self)
    }

    fn cancel(&mut self, keep_session: bool) -> bool {
        BigUpload::cancel(self, keep_session);
        true
    }
}

fn create_request(settings: &Settings) -> Result<Box<dyn CreateOp>, InputError> {
    Ok(match &settings.target {
        UploadTarget::NewFile { folder_id, file_name } => {
            Box::new(CreateUploadSession::new(folder_id.clone(), file_name.clone(), settings.file_size)?)
        }
        UploadTarget::NewVersion { file_id, file_name } => {
            let mut op = CreateUploadSessionForFile::new(file_id.clone(), settings.file_size)?;
            if let Some(name) = file_name {
                op = op.with_file_name(name.clone())?;
            }
            Box::new(op)
        }
    })
}

/// Either create operation, so the machine can hold one without caring which.
trait CreateOp: Operation<Output = UploadSession> {}
impl CreateOp for CreateUploadSession {}
impl CreateOp for CreateUploadSessionForFile {}

impl Operation for Box<dyn CreateOp> {
    type Output = UploadSession;

    fn kind(&self) -> RequestKind {
        (**self).kind()
    }

    fn request(&self, config: &crate::Config) -> Result<http::Request<Bytes>, Error> {
        (**self).request(config)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadSession, Error> {
        (**self).parse(response)
    }
}

fn sha1_matches(hex: Option<&str>, ours: Sha1Digest) -> bool {
    hex.and_then(|h| Sha1Digest::from_hex(h).ok()) == Some(ours)
}

fn overlap_code(response: &Response<Bytes>) -> bool {
    crate::response::read_json::<crate::models::ClientError>(response.body())
        .ok()
        .and_then(|e| e.code)
        .is_some_and(|c| c == "range_overlaps_existing_part")
}
