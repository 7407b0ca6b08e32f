//! The big upload as one state machine: session (beside a new file's preflight check) → parts (N
//! in flight) → list, when a part was not learnt from its own answer → commit (202 loop).
//!
//! Failures it cannot recover from abort the session (unless asked to keep it for a resume) and
//! end the run with the first error. It recovers from what real Box does: 202 commits for minutes,
//! a transient `parts_mismatch`, and parts stored whose answer was lost (adopted after a 409 or 416
//! `range_overlaps_existing_part` when the listed part is ours, looked up while other parts are
//! still being stored).
//!
//! This file holds the machine's state, its phases and the [`Machine`] glue; each job has its
//! own file: `create` (the session), `preflight` (the check beside it), `resume` (from a
//! checkpoint), `parts` (reads and part uploads), `reconcile` (looking up a part whose answer was lost), `listing` (paging through
//! every part, on resume and to verify them) and `commit` (the commit and its answers).

mod checkpoint;
mod commit;
mod confirm;
mod create;
mod dedupe;
mod fingerprint;
mod listing;
mod parts;
mod preflight;
mod reconcile;
mod request;
mod resume;

pub use checkpoint::{Checkpoint, ResumeFrom, UploadTarget, CHECKPOINT_VERSION};
pub use confirm::CONFIRM_FIELDS;
pub use dedupe::DedupeStats;
pub use fingerprint::{FileFingerprint, FingerprintError};
pub use request::{ResumeOptions, UploadRequest, DEFAULT_PARTS_IN_FLIGHT};

pub(crate) use commit::{CommitNext, CommitRetries};
pub(crate) use confirm::{Confirm, ConfirmNext, Expected};
pub(crate) use listing::{ListOutcome, Lister};

use crate::digest::{FileHasher, Sha1Digest};
use crate::dispatch::{Completion, Dispatcher};
use crate::error::{Error, ProtocolError, SourceError, TransportError};
use crate::machine::{
    Event, Machine, PartBuilder, PartData, Progress, ReadId, ReadRequest, RequestId, RequestKind, Transmit,
};
use crate::models::{FileFull, UploadPart, UploadSession};
use crate::operations::{DeleteUploadSession, Operation, SessionRef};
use crate::planner::PartPlan;
use crate::Client;
use bytes::Bytes;
use http::{HeaderMap, Response};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Create,
    GetSession,
    Part(usize),
    List,
    Reconcile,
    Commit,
    /// A lookup confirming the commit (get file, preflight check).
    Confirm,
    /// The session's plan (a deduplicated upload).
    Plan,
    /// The preflight check of a new file, sent beside the session's creation.
    Preflight,
    Abort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    UploadPart,
    Commit,
    ListParts,
    Abort,
    Status,
    Plan,
}

impl Endpoint {
    fn url(self, endpoints: &crate::models::SessionEndpoints) -> Option<&str> {
        match self {
            Endpoint::UploadPart => endpoints.upload_part.as_deref(),
            Endpoint::Commit => endpoints.commit.as_deref(),
            Endpoint::ListParts => endpoints.list_parts.as_deref(),
            Endpoint::Abort => endpoints.abort.as_deref(),
            Endpoint::Status => endpoints.status.as_deref(),
            Endpoint::Plan => endpoints.plan.as_deref(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListPurpose {
    /// Resume: learn which parts Box already has.
    Resume,
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
    /// Box said the range is taken, or every send went unanswered after it may have reached Box;
    /// waiting for the list to tell whether Box holds it, and whose part it is.
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
    /// Why the part's sends failed, when it is looked up because they went unanswered: the
    /// error the run ends with if Box does not hold the part.
    unanswered: Option<Error>,
}

#[derive(Debug)]
enum ReadTarget {
    /// A part read within the bound of parts in flight (counted in `holding`), or read again.
    Part(usize),
    /// A part read ahead of the bound to plan it (a deduplicated upload): not counted, its bytes
    /// let go once hashed.
    Ahead(usize),
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
    dedupe: bool,
    list_before_commit: bool,
    /// A deduplicated upload may read parts ahead of the bound to plan them (not for a stream).
    read_ahead: bool,
}

/// A big upload in progress: drive it as a [`Machine`] until `poll_output` gives the committed
/// file. Made by [`Client::big_upload`] or [`Client::resume`].
///
/// Memory: it holds at most `parts_in_flight + 1` parts (being read, on the wire, waiting for the
/// whole-file hash, or read ahead: the next part is read and hashed while `parts_in_flight` are on
/// the wire, and goes out the moment one is answered) and offers no read beyond that, so a driver
/// that reuses its buffers keeps about `(parts_in_flight + 2) × part_size` at the most (one more
/// while the transport lets go of a sent part).
/// A deduplicated upload may read further ahead to plan parts sooner, one part at a time and in
/// order: a part read beyond that bound keeps only its digests (its bytes are let go once the
/// whole-file hash has them), so the bound stays the same. It reads ahead only while the plans so
/// far answered at least as many hits as misses (before the first answer too), no miss waits to be
/// read again, and the source can be read again (not a stream); a miss read ahead is read again
/// within the bound, checked against its first SHA-1, and sent.
/// `part_size` is Box's choice, capped by [`Config::max_part_size`](crate::Config::max_part_size)
/// (default 512 MiB): a session with larger parts fails with
/// [`ProtocolError::PartSizeTooLarge`](crate::ProtocolError::PartSizeTooLarge) and is aborted
/// before anything is read.
///
/// The output is a confirmed file: its `size` and `sha1` are the upload's. A commit's 201 that
/// lacks either is confirmed by getting the file it names; a commit that got no answer (a
/// transport failure or a 5xx) and whose resend Box refused with 404, 409 or 412 (or that never
/// got an answer) is confirmed by looking at the target on the API host
/// ([`Config::api_base`](crate::Config::api_base)): `GET /2.0/files/{id}` for a new version, the
/// preflight check (which names the file holding the name) then `GET /2.0/files/{id}` for a new
/// file. The output is then the file as that `GET` gives it (the fields of
/// [`CONFIRM_FIELDS`](crate::CONFIRM_FIELDS), the ones a commit's answer carries), not the
/// commit's answer. Other content there is
/// [`ProtocolError::CommitMismatch`](crate::ProtocolError::CommitMismatch) naming the file; a
/// lookup that fails, finds nothing or cannot check the file is
/// [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown), and the session is left
/// as it is (not aborted). A new version whose etag is still the `If-Match` it was committed
/// with is not taken as confirmed.
///
/// Deduplication ([`UploadRequest::dedupe`](crate::UploadRequest::dedupe), off by default): the
/// reading pass also computes each part's SHA-512, on the same chunks as its SHA-1s while they
/// are in cache; read parts are planned in batches (`POST .../plan`, one plan in flight, every
/// part waiting in it; parts read ahead of the bound as said above); only the misses are
/// uploaded; before the commit the session's parts are listed, a hit the session lists with our
/// offset, size and SHA-1 is committed as listed, and a hit it does not list is read again (it
/// must read the same) and uploaded. How Box expects hits to be committed is not documented publicly: this order is
/// right whether Box adds hits to the session or not. A plan that fails (404 from a Box without
/// it, 400, 5xx or transport failures after the retries, an answer that does not fit the parts
/// asked about) turns the rest into a plain upload; a hit listed with other bytes fails the
/// upload; a `session_endpoints.plan` outside the trusted hosts fails it before anything is
/// read. A hit must be read again when the session does not keep it, which a stream source
/// cannot do (a clear error then): deduplicate files or bytes.
/// [`dedupe_stats`](Self::dedupe_stats) says what it did.
#[derive(Debug)]
pub struct BigUpload {
    dispatch: Dispatcher<Job>,
    settings: Settings,
    phase: Phase,
    session: Option<UploadSession>,
    plan: Option<PartPlan>,
    parts: Vec<PartSlot>,
    next_read: usize,
    /// Parts being read or whose bytes are kept, a deduplicated upload's reads ahead aside: at
    /// most `parts_in_flight + 1` (one more for a moment when a plan fails during a read ahead).
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
    /// The look-up of a part Box refused as overlapping.
    probe: Option<reconcile::Probe>,
    commit_retries: CommitRetries,
    confirm: Option<Confirm>,
    progress: Progress,
    error: Option<Error>,
    output: Option<Result<FileFull, Error>>,
    events: VecDeque<Event>,
    /// Deduplication, when asked for (`UploadRequest::dedupe`).
    dedupe: Option<dedupe::Dedupe>,
    /// The preflight check of a new file, when asked for: no part is read before it passes.
    preflight: preflight::Gate,
    /// Why the upload fails, held until the session being created is known (so it is aborted).
    pending_failure: Option<Error>,
    /// Why the session's creation failed, held until the preflight check beside it answers (its
    /// error, when it fails too, is the upload's: the same whichever answer comes first).
    create_failure: Option<Error>,
    /// Part requests submitted and not over (at most `parts_in_flight`).
    parts_sending: usize,
    /// Parts read and waiting for a place among the parts in flight, in order.
    ready: VecDeque<usize>,
    /// Whether the parts are listed before the commit: a part Box holds was learnt otherwise than
    /// from its own answer (a resume, a look-up, a plan's hit). Otherwise every part's answer
    /// echoed our offset, size and SHA-1, and Box checks the commit's list against what it holds.
    list_before_commit: bool,
}

impl BigUpload {
    fn new(client: &Client, settings: Settings, phase: Phase) -> Self {
        let progress = Progress { total_bytes: settings.file_size, ..Progress::default() };
        let dedupe = settings.dedupe.then(dedupe::Dedupe::new);
        let list_before_commit = settings.list_before_commit || dedupe.is_some();
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
            probe: None,
            commit_retries: CommitRetries::default(),
            confirm: None,
            progress,
            error: None,
            output: None,
            list_before_commit,
            events: VecDeque::new(),
            dedupe,
            preflight: preflight::Gate::Off,
            pending_failure: None,
            create_failure: None,
            parts_sending: 0,
            ready: VecDeque::new(),
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
        let mut parts = self.acked_parts();
        if let Some(dedupe) = &self.dedupe {
            // A hit no listing has shown yet is not known to be held: a resume lists the session.
            let plan = self.plan;
            parts.retain(|p| {
                !plan.and_then(|pl| pl.part_at(p.offset)).is_some_and(|pp| dedupe.is_unconfirmed(pp.index))
            });
        }
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
        // A failed preflight check says more than what went wrong after it.
        self.error = Some(self.pending_failure.take().unwrap_or(error));
        self.dispatch.clear();
        self.parts_sending = 0;
        self.ready.clear();
        self.reads.clear();
        self.lister = None;
        self.probe = None;
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

    /// The parts Box holds, in offset order.
    fn acked_parts(&self) -> Vec<UploadPart> {
        self.parts
            .iter()
            .filter_map(|p| match &p.status {
                PartStatus::Acked(part) => Some(part.clone()),
                _ => None,
            })
            .collect()
    }

    // ---- completions -----------------------------------------------------------------------

    fn drain(&mut self, now: Instant) {
        loop {
            self.events.extend(self.dispatch.events.drain(..));
            let Some(completion) = self.dispatch.poll_completion() else { break };
            let part_over = matches!(
                &completion,
                Completion::Answered { job: Job::Part(_), .. } | Completion::Failed { job: Job::Part(_), .. }
            );
            match completion {
                Completion::Failed { job: Job::Abort, .. } => {
                    self.events.push_back(Event::Aborted { confirmed: false });
                    self.finish_with_error();
                }
                Completion::Answered { job: Job::Abort, response, .. } => {
                    self.events.push_back(Event::Aborted { confirmed: response.status().is_success() });
                    self.finish_with_error();
                }
                Completion::Failed { job: Job::Commit, error, .. } if !self.is_over() => self.on_commit_failure(error),
                Completion::Failed { job: Job::Plan, error, .. } if !self.is_over() => {
                    let indexes = Vec::new();
                    self.fall_back(&error, indexes);
                }
                Completion::Failed { job: Job::Confirm, error, .. } if !self.is_over() => {
                    self.on_confirm_failure(&error)
                }
                Completion::Failed { job: Job::Preflight, error, .. } if !self.is_over() => {
                    self.preflight_failed(error)
                }
                Completion::Failed { job: Job::Create, error, .. } if !self.is_over() => self.create_failed(error),
                Completion::Failed { job: Job::Part(index), error, maybe_applied: true } if !self.is_over() => {
                    self.on_part_unanswered(index, error);
                }
                Completion::Failed { error, .. } => self.fail(error),
                Completion::Answered { job, response, maybe_applied } => {
                    self.on_answer(job, response, maybe_applied, now);
                }
            }
            if part_over {
                self.part_request_over();
            }
        }
    }

    fn on_answer(&mut self, job: Job, response: Response<Bytes>, maybe_applied: bool, now: Instant) {
        if self.is_over() {
            return;
        }
        match job {
            Job::Create => self.on_create_answer(response),
            Job::GetSession => self.on_session_answer(response),
            Job::Part(index) => self.on_part_answer(index, response, now),
            Job::List => self.on_list_answer(response, now),
            Job::Reconcile => self.on_reconcile_answer(response, now),
            Job::Commit => self.on_commit_answer(response, maybe_applied, now),
            Job::Confirm => self.on_confirm_answer(response),
            Job::Plan => self.on_plan_answer(response, now),
            Job::Preflight => self.on_preflight_answer(response),
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
        self.next_read_request()
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
        let index = match self.reads.get(&read.id) {
            Some(ReadTarget::Part(index) | ReadTarget::Ahead(index)) => Some(*index),
            _ => None,
        };
        // Only the read that continues the hashed prefix can carry the whole-file hash on.
        let builder = match index {
            Some(index) if index == self.hashed_upto && self.digest.is_none() => {
                PartBuilder::continuing(buf, self.whole.clone())
            }
            _ => PartBuilder::new(buf),
        };
        // The SHA-512 only while plans are still made, on the same chunks as the SHA-1s; a part
        // read again is checked against its SHA-1 and sent, never planned.
        match (&self.dedupe, index) {
            (Some(dedupe), Some(index)) if dedupe.wants_sha512() && !dedupe.is_reread(index) => builder.with_sha512(),
            _ => builder,
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

fn sha1_matches(hex: Option<&str>, ours: Sha1Digest) -> bool {
    hex.and_then(|h| Sha1Digest::from_hex(h).ok()) == Some(ours)
}
