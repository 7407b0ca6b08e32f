//! One upload for every size: a direct upload below the cutoff, an upload session from it, with
//! the preflight check first, the caller's policy for a name already in use, and the file's
//! timestamps. See [`FileUpload`].

use crate::digest::{FileHasher, Sha1Digest};
use crate::dispatch::{Completion, Dispatcher};
use crate::error::{ApiError, Error, ProtocolError, SourceError, TransportError};
use crate::machine::{
    Event, Machine, PartBuilder, PartData, Progress, ReadId, ReadRequest, RequestId, RequestKind, Transmit,
};
use crate::models::{FileConflict, FileFull};
use crate::operations::{GetFile, Operation, PreflightCheck, PreflightFileUpload, UploadFile, MAX_DIRECT_UPLOAD_SIZE};
use crate::planner::MIN_FILE_SIZE;
use crate::response::api_error;
use crate::upload::{BigUpload, UploadRequest, UploadTarget};
use crate::Client;
use bytes::Bytes;
use http::{Response, StatusCode};
use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

/// Files of at least this many bytes go in an upload session by default; smaller ones in one
/// direct request. Measured with 50 ms per request, 4 parts in flight, both transports, median
/// of 9 (`benches/results-direct-vs-chunked.md`): a session took 1.1-1.25 x a direct upload's
/// time at 20 MB (its creation, beside the preflight check, and its commit are round trips of
/// their own), 1.0-1.05 x at 25 MB, 0.9 x at 30 MB and 0.7 x at 50 MB (the direct upload reads
/// the file twice, once for its SHA-1 and once to send it, one after the other; a session overlaps
/// them and sends parts in parallel). From where the two meet, 25 MB, a session also brings
/// resumes and per-part retries.
pub const DEFAULT_CHUNKED_FROM: u64 = 25_000_000;

/// The file's bytes are read this many at a time while its SHA-1 is taken (each read hashed a
/// [`HASH_CHUNK`](crate::HASH_CHUNK) at a time, in cache, then dropped).
const HASH_READ: usize = 4 * 1024 * 1024;

/// What to do when the name is already taken in the folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnConflict {
    /// Fail with Box's 409 `item_name_in_use` (the default).
    #[default]
    Fail,
    /// Upload a new version of the file holding the name, with `If-Match` on its etag, so a
    /// file changed meanwhile is not overwritten.
    Version,
    /// Send nothing when the file holding the name has our SHA-1, and give that file; fail as
    /// [`Fail`](Self::Fail) does when it has other content.
    Skip,
}

/// The caller's choices for a [`FileUpload`] beyond the [`UploadRequest`].
#[derive(Clone, Debug)]
pub struct FileUploadOptions {
    /// Files of at least this many bytes go in an upload session, smaller ones direct
    /// (default [`DEFAULT_CHUNKED_FROM`]; kept within Box's limits: at least 20,000,000, at most
    /// 50,000,001, so a direct upload holds at most 50 MB).
    pub chunked_from: u64,
    /// A name already in use (default: fail).
    pub on_conflict: OnConflict,
    /// When the source was last modified, sent as `content_modified_at` unless the request's
    /// attributes hold one.
    pub modified: Option<SystemTime>,
    /// When the source was made, sent as `content_created_at` for a new file unless the
    /// request's attributes hold one.
    pub created: Option<SystemTime>,
}

impl Default for FileUploadOptions {
    fn default() -> Self {
        Self { chunked_from: DEFAULT_CHUNKED_FROM, on_conflict: OnConflict::Fail, modified: None, created: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Preflight,
    Direct,
    /// The file holding the name, to report it (skip) or to confirm a lost answer.
    Existing,
}

#[derive(Debug)]
enum Phase {
    /// Nothing sent yet.
    Start,
    /// The preflight check is out.
    Preflight,
    /// Reading the source once for its SHA-1.
    Hashing,
    /// The direct upload (or the look-up of the existing file) is out.
    Sending,
    /// An upload session does the rest.
    Chunked(Box<BigUpload>),
    Done,
}

/// The upload of one file of any size, 0 bytes included, as a [`Machine`]: made by
/// [`Client::file_upload`].
///
/// - Below [`FileUploadOptions::chunked_from`] it reads the source once for its SHA-1, then
///   sends one direct upload ([`UploadFile`]) whose body the driver streams from the source
///   (the request's [`SourceBody`](crate::SourceBody)), with `content-md5`, so Box refuses a
///   body that is not what was hashed. The answer's SHA-1 and size must be ours.
/// - From it, a [`BigUpload`] does the work. A new file's preflight check
///   ([`PreflightFileUpload`]) goes out beside the session's creation (one round trip, not two),
///   and no part is read before it passes: a name in use, a missing folder, a permission or
///   quota problem fails before any byte of the file is sent, and the session, if Box made it,
///   is aborted.
/// - A name in use goes as [`OnConflict`] says, also when Box refuses the session's creation
///   because the name was taken after the check. For direct uploads under the default policy
///   the upload's own 409 says so; the other policies check first.
/// - A direct upload whose answer was lost and whose retry meets its own file (the name in use
///   by a file with our SHA-1) succeeds with that file.
#[derive(Debug)]
pub struct FileUpload {
    client: Client,
    request: UploadRequest,
    options: FileUploadOptions,
    dispatch: Dispatcher<Job>,
    phase: Phase,
    hasher: Option<FileHasher>,
    hashed: u64,
    read_out: Option<ReadId>,
    next_read: u64,
    sha1: Option<Sha1Digest>,
    /// The file holding the name, and Box's 409 that named it.
    conflict: Option<(FileConflict, ApiError)>,
    events: VecDeque<Event>,
    output: Option<Result<FileFull, Error>>,
}

impl FileUpload {
    pub(crate) fn new(client: &Client, request: UploadRequest, options: FileUploadOptions) -> Self {
        let mut options = options;
        options.chunked_from = options.chunked_from.clamp(MIN_FILE_SIZE, MAX_DIRECT_UPLOAD_SIZE + 1);
        Self {
            client: client.clone(),
            dispatch: Dispatcher::new(client.config.clone(), client.auth.clone()),
            request,
            options,
            phase: Phase::Start,
            hasher: None,
            hashed: 0,
            read_out: None,
            next_read: 0,
            sha1: None,
            conflict: None,
            events: VecDeque::new(),
            output: None,
        }
    }

    /// Whether the file goes in an upload session (else in one direct request).
    #[must_use]
    pub fn is_chunked(&self) -> bool {
        self.request.file_size >= self.options.chunked_from
    }

    /// The file's size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.request.file_size
    }

    fn start(&mut self) {
        if !matches!(self.phase, Phase::Start) {
            return;
        }
        let new_file = matches!(self.request.target, UploadTarget::NewFile { .. });
        // A session checks a new file itself, beside its creation (`BigUpload::start_checked`).
        if new_file && !self.is_chunked() && self.options.on_conflict != OnConflict::Fail {
            let UploadTarget::NewFile { folder_id, file_name } = &self.request.target else { return };
            match PreflightFileUpload::new(folder_id.clone(), file_name.clone(), self.size()) {
                Ok(op) => match op.request(self.dispatch.config()) {
                    Ok(mut request) => {
                        self.add_headers(&mut request);
                        self.dispatch.submit(Job::Preflight, RequestKind::PreflightFileUpload, request, None);
                        self.phase = Phase::Preflight;
                    }
                    Err(e) => self.finish(Err(e)),
                },
                Err(e) => self.finish(Err(e.into())),
            }
        } else {
            self.proceed();
        }
    }

    /// After the checks: hash (direct, or to compare for a skip) or hand over to a session.
    fn proceed(&mut self) {
        if self.is_chunked() && !(self.conflict.is_some() && self.options.on_conflict == OnConflict::Skip) {
            self.start_chunked();
        } else {
            self.phase = Phase::Hashing;
            self.hasher = Some(FileHasher::new());
        }
    }

    fn start_chunked(&mut self) {
        match BigUpload::start_checked(&self.client, self.request.clone(), self.dispatch.last_id()) {
            Ok(big) => self.phase = Phase::Chunked(Box::new(big)),
            Err(e) => self.finish(Err(e.into())),
        }
    }

    /// Takes the session's output once it has one: a name in use (found by the preflight check
    /// beside the session's creation, or by the creation itself when the name was taken in
    /// between) goes as [`OnConflict`] says; anything else is the upload's output.
    fn settle_chunked(&mut self) {
        let Phase::Chunked(big) = &mut self.phase else { return };
        let Some(output) = big.poll_output() else { return };
        // Whatever comes next must not take a late answer to the session's requests as its own.
        self.dispatch.ids_after(big.last_request_id());
        let new_file = matches!(self.request.target, UploadTarget::NewFile { .. });
        match output {
            Err(Error::Api(error))
                if new_file
                    && self.options.on_conflict != OnConflict::Fail
                    && error.status == 409
                    && error.code() == Some("item_name_in_use") =>
            {
                let conflicts = crate::operations::conflicts_of(error.error.context_info.as_ref());
                self.on_name_in_use(conflicts, error);
            }
            output => {
                self.phase = Phase::Done;
                self.output = Some(output);
                self.events.push_back(Event::Finished);
            }
        }
    }

    fn add_headers(&self, request: &mut http::Request<Bytes>) {
        for (name, value) in &self.request.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }

    fn finish(&mut self, output: Result<FileFull, Error>) {
        // The output comes once: a run already over stays over.
        if !matches!(self.phase, Phase::Done) {
            self.phase = Phase::Done;
            self.dispatch.clear();
            if let Ok(file) = &output {
                let size = file.size.unwrap_or(self.size());
                self.events.push_back(Event::Progress(Progress {
                    bytes_acknowledged: size,
                    parts_acknowledged: 1,
                    bytes_read: self.hashed,
                    total_bytes: self.size(),
                    total_parts: 1,
                }));
            }
            self.output = Some(output);
            self.events.push_back(Event::Finished);
        }
    }

    /// The file's SHA-1 is known: compare it with the name's holder (skip), or send.
    fn hashed(&mut self, sha1: Sha1Digest) {
        self.sha1 = Some(sha1);
        if self.options.on_conflict == OnConflict::Skip {
            if let Some((existing, error)) = self.conflict.clone() {
                if same_sha1(existing.sha1.as_deref(), sha1) {
                    self.look_up_existing(&existing.id);
                } else {
                    self.finish(Err(Error::Api(error)));
                }
                return;
            }
        }
        if self.is_chunked() {
            self.start_chunked();
        } else {
            self.send_direct();
        }
    }

    fn send_direct(&mut self) {
        let Some(sha1) = self.sha1 else { return };
        let made = UploadFile::new(self.request.target.clone(), self.size()).map(|op| {
            let mut op = op.with_sha1(sha1);
            if let Some(attributes) = &self.request.commit_attributes {
                op = op.with_attributes(attributes.clone());
            }
            if let Some(etag) = &self.request.if_match {
                op = op.with_if_match(etag.clone());
            }
            op
        });
        let request = made.map_err(Error::from).and_then(|op| op.request(self.dispatch.config()));
        match request {
            Ok(mut request) => {
                self.add_headers(&mut request);
                self.dispatch.submit(Job::Direct, RequestKind::UploadFile, request, None);
                self.phase = Phase::Sending;
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn look_up_existing(&mut self, file_id: &str) {
        let request = GetFile::new(file_id).map_err(Error::from).and_then(|op| op.request(self.dispatch.config()));
        match request {
            Ok(mut request) => {
                self.add_headers(&mut request);
                self.dispatch.submit(Job::Existing, RequestKind::GetFile, request, None);
                self.phase = Phase::Sending;
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    /// The upload goes to the file holding the name from now on, guarded by its etag.
    fn become_version(&mut self, existing: &FileConflict, error: ApiError) -> Result<(), Error> {
        let Some(etag) = existing.etag.clone() else {
            // Without its etag a change made meanwhile could be overwritten.
            return Err(Error::Api(error));
        };
        self.request.target = UploadTarget::NewVersion { file_id: existing.id.clone(), file_name: None };
        self.request.if_match = Some(etag);
        if let Some(attributes) = &mut self.request.commit_attributes {
            // Box takes a creation time for new files only.
            attributes.remove("content_created_at");
        }
        Ok(())
    }

    fn drain(&mut self) {
        self.events.extend(self.dispatch.events.drain(..));
        while let Some(completion) = self.dispatch.poll_completion() {
            match completion {
                Completion::Answered { job, response, maybe_applied } => self.answered(job, response, maybe_applied),
                Completion::Failed { error, .. } => self.finish(Err(error)),
            }
            self.events.extend(self.dispatch.events.drain(..));
        }
    }

    fn answered(&mut self, job: Job, response: Response<Bytes>, maybe_applied: bool) {
        match job {
            Job::Preflight => self.preflight_answered(response),
            Job::Direct => self.direct_answered(response, maybe_applied),
            Job::Existing => {
                let result = GetFile { file_id: String::new(), fields: Vec::new(), headers: Default::default() }
                    .parse(response)
                    .and_then(|file| self.check_file(file, "the file holding the name"));
                self.finish(result);
            }
        }
    }

    fn preflight_answered(&mut self, response: Response<Bytes>) {
        let taken = name_in_use(&response);
        let parsed = PreflightFileUpload {
            folder_id: String::new(),
            file_name: String::new(),
            size: self.size(),
            headers: Default::default(),
        }
        .parse(response);
        match parsed {
            Ok(PreflightCheck::Accepted(_)) => self.proceed(),
            Ok(PreflightCheck::NameInUse { conflicts }) => {
                let error = taken.unwrap_or_else(|| conflict_error(&conflicts));
                self.on_name_in_use(conflicts, error);
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn on_name_in_use(&mut self, conflicts: Vec<FileConflict>, error: ApiError) {
        let existing = conflicts.into_iter().find(|c| c.kind.as_deref().is_none_or(|k| k == "file"));
        let Some(existing) = existing else {
            // A folder holds the name, or Box named nothing: nothing to version or compare.
            return self.finish(Err(Error::Api(error)));
        };
        match self.options.on_conflict {
            OnConflict::Fail => self.finish(Err(Error::Api(error))),
            OnConflict::Version => match self.become_version(&existing, error) {
                Ok(()) => match self.sha1 {
                    Some(_) if !self.is_chunked() => self.send_direct(),
                    _ => self.proceed(),
                },
                Err(e) => self.finish(Err(e)),
            },
            OnConflict::Skip => {
                self.conflict = Some((existing, error));
                match self.sha1 {
                    Some(sha1) => self.hashed(sha1),
                    None => self.proceed(),
                }
            }
        }
    }

    fn direct_answered(&mut self, response: Response<Bytes>, maybe_applied: bool) {
        if response.status() == StatusCode::CONFLICT {
            if let Some(error) = name_in_use(&response) {
                let conflicts = crate::operations::conflicts_of(error.error.context_info.as_ref());
                let ours = self.sha1.is_some_and(|s| conflicts.iter().any(|c| same_sha1(c.sha1.as_deref(), s)));
                if maybe_applied && ours {
                    // An earlier send was stored and its answer lost: the name's holder is ours.
                    if let Some(existing) =
                        conflicts.iter().find(|c| self.sha1.is_some_and(|s| same_sha1(c.sha1.as_deref(), s)))
                    {
                        let id = existing.id.clone();
                        return self.look_up_existing(&id);
                    }
                }
                if matches!(self.request.target, UploadTarget::NewFile { .. }) {
                    return self.on_name_in_use(conflicts, error);
                }
            }
        }
        let parsed = UploadFile::new(self.request.target.clone(), self.size())
            .map_err(Error::from)
            .and_then(|op| op.parse(response))
            .and_then(|file| self.check_file(file, "the uploaded file"));
        self.finish(parsed);
    }

    /// Box's file must hold our bytes: its SHA-1 and size.
    fn check_file(&self, file: FileFull, what: &str) -> Result<FileFull, Error> {
        let Some(ours) = self.sha1 else { return Ok(file) };
        let mismatch = |detail: String| ProtocolError::CommitMismatch { file_id: file.id.clone(), detail };
        match file.sha1.as_deref() {
            Some(theirs) if same_sha1(Some(theirs), ours) => {}
            Some(theirs) => {
                return Err(mismatch(format!(
                    "{what} has SHA-1 {}, ours is {ours}",
                    theirs.chars().take(64).collect::<String>()
                ))
                .into())
            }
            None => return Err(mismatch(format!("Box's answer gives no SHA-1 for {what}")).into()),
        }
        if let Some(size) = file.size {
            if size != self.size() {
                return Err(mismatch(format!("{what} has {size} bytes, ours {}", self.size())).into());
            }
        }
        Ok(file)
    }

    fn next_hash_read(&mut self) -> Option<ReadRequest> {
        if !matches!(self.phase, Phase::Hashing) || self.read_out.is_some() || self.sha1.is_some() {
            return None;
        }
        let size = self.size();
        // After the last byte, one more read of one byte that must come back empty.
        let len = if self.hashed < size {
            usize::try_from(size - self.hashed).unwrap_or(HASH_READ).min(HASH_READ)
        } else {
            1
        };
        self.next_read += 1;
        let id = ReadId(self.next_read);
        self.read_out = Some(id);
        Some(ReadRequest { id, offset: self.hashed, len })
    }

    fn read_done(&mut self, id: ReadId, data: Result<PartData, SourceError>) {
        if self.read_out != Some(id) || !matches!(self.phase, Phase::Hashing) {
            return;
        }
        self.read_out = None;
        let mut data = match data {
            Ok(d) => d,
            Err(e) => return self.finish(Err(e.into())),
        };
        let size = self.size();
        if self.hashed >= size {
            if !data.is_empty() {
                return self.finish(Err(SourceError::RanLong { file_size: size }.into()));
            }
            let Some(hasher) = self.hasher.take() else {
                return self.finish(Err(Error::Protocol(ProtocolError::MissingField {
                    kind: RequestKind::UploadFile,
                    field: "hash",
                })));
            };
            return self.hashed(hasher.finish());
        }
        let expected = (size - self.hashed).min(HASH_READ as u64);
        if data.len() as u64 != expected {
            let got = data.len() as u64;
            return self.finish(Err(SourceError::EndedEarly { offset: self.hashed, expected, got }.into()));
        }
        match data.file.take() {
            Some(file) => self.hasher = Some(*file),
            None => {
                let hasher = self.hasher.get_or_insert_with(FileHasher::new);
                for chunk in data.bytes().chunks(crate::HASH_CHUNK) {
                    hasher.update(chunk);
                }
            }
        }
        self.hashed += data.len() as u64;
        self.events.push_back(Event::Progress(Progress {
            bytes_acknowledged: 0,
            parts_acknowledged: 0,
            bytes_read: self.hashed,
            total_bytes: size,
            total_parts: 1,
        }));
    }
}

/// Box's 409 `item_name_in_use`, read from the answer (left for the operation's parse).
pub(crate) fn name_in_use(response: &Response<Bytes>) -> Option<ApiError> {
    if response.status() != StatusCode::CONFLICT {
        return None;
    }
    let mut copy = Response::new(response.body().clone());
    *copy.status_mut() = response.status();
    *copy.headers_mut() = response.headers().clone();
    let error = api_error(copy);
    (error.code() == Some("item_name_in_use")).then_some(error)
}

pub(crate) fn conflict_error(conflicts: &[FileConflict]) -> ApiError {
    let mut error = ApiError { status: 409, kind: Some(RequestKind::PreflightFileUpload), error: Box::default() };
    error.error.code = Some("item_name_in_use".into());
    error.error.message = Some(format!(
        "Item with the same name already exists{}",
        conflicts.first().map(|c| format!(" (file {})", c.id)).unwrap_or_default()
    ));
    error
}

fn same_sha1(hex: Option<&str>, ours: Sha1Digest) -> bool {
    hex.and_then(|h| Sha1Digest::from_hex(h).ok()) == Some(ours)
}

impl Machine for FileUpload {
    type Output = FileFull;

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.start();
        match &mut self.phase {
            Phase::Chunked(big) => big.poll_transmit(now),
            Phase::Done => None,
            _ => {
                let t = self.dispatch.poll_transmit(now);
                self.drain();
                t
            }
        }
    }

    fn poll_read(&mut self) -> Option<ReadRequest> {
        self.start();
        match &mut self.phase {
            Phase::Chunked(big) => big.poll_read(),
            _ => self.next_hash_read(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Chunked(big) => big.poll_timeout(),
            Phase::Done => None,
            _ => self.dispatch.poll_timeout(),
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.start();
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            let Phase::Chunked(big) = &mut self.phase else { return None };
            match big.poll_event() {
                // The upload may go on after the session (a name in use): it says when it ends.
                Some(Event::Finished) => self.settle_chunked(),
                other => return other,
            }
        }
    }

    fn poll_output(&mut self) -> Option<Result<FileFull, Error>> {
        self.start();
        self.settle_chunked();
        self.output.take()
    }

    fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant) {
        match &mut self.phase {
            Phase::Chunked(big) => big.handle_response(id, response, now),
            _ => {
                self.dispatch.handle_response(id, response, now);
                self.drain();
            }
        }
    }

    fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        match &mut self.phase {
            Phase::Chunked(big) => big.handle_transport_error(id, error, now),
            _ => {
                self.dispatch.handle_transport_error(id, error, now);
                self.drain();
            }
        }
    }

    fn handle_read(&mut self, id: ReadId, data: Result<PartData, SourceError>, now: Instant) {
        match &mut self.phase {
            Phase::Chunked(big) => big.handle_read(id, data, now),
            _ => self.read_done(id, data),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Chunked(big) = &mut self.phase {
            big.handle_timeout(now);
        }
    }

    fn part_builder(&mut self, read: &ReadRequest, buf: Vec<u8>) -> PartBuilder {
        match &mut self.phase {
            Phase::Chunked(big) => big.part_builder(read, buf),
            // The file's hash rides on the read (one pass, in cache), and comes back with it.
            _ => match &self.hasher {
                Some(hasher) if self.read_out == Some(read.id) => PartBuilder::continuing(buf, hasher.clone()),
                _ => PartBuilder::new(buf),
            },
        }
    }

    fn checkpoint(&self) -> Option<crate::upload::Checkpoint> {
        match &self.phase {
            Phase::Chunked(big) => big.checkpoint(),
            _ => None,
        }
    }

    fn cancel(&mut self, keep_session: bool) -> bool {
        match &mut self.phase {
            Phase::Chunked(big) => Machine::cancel(big.as_mut(), keep_session),
            _ => {
                self.finish(Err(Error::Cancelled));
                true
            }
        }
    }
}

/// `time` as RFC 3339 in UTC, to the second (`2026-12-02T18:00:00Z`); `None` before 1970.
#[must_use]
pub fn rfc3339(time: SystemTime) -> Option<String> {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60))
}

/// The request with the source's timestamps in its attributes (unless they hold their own).
pub(crate) fn with_timestamps(mut request: UploadRequest, options: &FileUploadOptions) -> UploadRequest {
    let new_file = matches!(request.target, UploadTarget::NewFile { .. });
    let mut stamps = Vec::new();
    if let Some(at) = options.modified.and_then(rfc3339) {
        stamps.push(("content_modified_at", at));
    }
    if new_file {
        if let Some(at) = options.created.and_then(rfc3339) {
            stamps.push(("content_created_at", at));
        }
    }
    if !stamps.is_empty() {
        let attributes = request.commit_attributes.get_or_insert_with(Default::default);
        for (key, at) in stamps {
            attributes.entry(key).or_insert(at.into());
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::{Duration, SystemTime};

    #[test]
    fn rfc3339_dates() {
        let at = |s| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(at(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(at(1_796_234_400 + 3_723).as_deref(), Some("2026-12-02T19:02:03Z"));
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), None);
    }
}
