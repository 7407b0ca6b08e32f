//! The blocking client: the core's client plus one shared ureq agent.

use crate::driver::{self, NoHooks};
use crate::source::Source;
use crate::transport::{self, Agent, AgentSettings};

/// Bodies from this size on are sent with `Expect: 100-continue`.
const EXPECT_CONTINUE_FROM: usize = 64 * 1024;
use crate::upload::{UploadHooks, UploadOptions};
use crate::Error;
use box_upload_core::models::{FileFull, UploadPart, UploadParts, UploadSession, UploadedPart};
use box_upload_core::operations::{
    CommitResponse, CommitUploadSession, CreateUploadSession, CreateUploadSessionForFile, DeleteUploadSession,
    GetUploadSession, ListUploadSessionParts, Operation, UploadFilePart,
};
use box_upload_core::ResumeFrom;
use box_upload_core::{
    random_jitter_seed, ClientCredentials, ClientSettings, DeveloperToken, Machine, PartData, ResumeOptions,
    RetryPolicy, Sha1Digest, TokenSource, UploadRequest, DEFAULT_PARTS_IN_FLIGHT,
};
use bytes::Bytes;
use std::fmt;
use std::time::Duration;

/// Sends Box's chunked-upload requests with ureq, blocking the calling thread.
///
/// Cheap to clone: clones share the connection pool and the token cache. Every method runs a
/// core machine to completion on the calling thread, with worker threads for the requests (and
/// one for reading the source) that have all stopped when the method returns.
#[derive(Clone)]
pub struct Client {
    core: box_upload_core::Client,
    agent: Agent,
    parts_in_flight: Option<usize>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("core", &self.core)
            .field("parts_in_flight", &self.parts_in_flight)
            .finish_non_exhaustive()
    }
}

enum Auth {
    None,
    Source(Box<dyn TokenSource>),
}

/// Builds a [`Client`]. A token source is required; everything else has Box's defaults.
pub struct ClientBuilder {
    core: ClientSettings,
    auth: Auth,
    settings: AgentSettings,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("core", &self.core)
            .field("has_token_source", &matches!(self.auth, Auth::Source(_)))
            .field("settings", &self.settings)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            core: ClientSettings::default(),
            auth: Auth::None,
            settings: AgentSettings {
                connect_timeout: Some(Duration::from_secs(30)),
                idle_timeout: Some(Duration::from_secs(120)),
                overall_timeout: None,
                max_idle_connections: 16,
                expect_continue_from: Some(EXPECT_CONTINUE_FROM),
            },
        }
    }
}

impl ClientBuilder {
    /// The upload base URL (default `https://upload.box.com/api`); its host is trusted with the
    /// token. Point it at an emulator with `http://127.0.0.1:PORT/api`.
    #[must_use]
    pub fn upload_base(mut self, url: impl Into<String>) -> Self {
        self.core.upload_base = Some(url.into());
        self
    }

    /// Authenticates with a fixed token (a developer token, or one obtained elsewhere).
    #[must_use]
    pub fn developer_token(self, token: impl Into<String>) -> Self {
        self.token_source(DeveloperToken::new(token))
    }

    /// Authenticates with Box's Client Credentials Grant; tokens are fetched and refreshed as
    /// needed.
    #[must_use]
    pub fn client_credentials(self, credentials: ClientCredentials) -> Self {
        self.token_source(credentials)
    }

    /// Authenticates with any token source.
    #[must_use]
    pub fn token_source(mut self, source: impl TokenSource + 'static) -> Self {
        self.auth = Auth::Source(Box::new(source));
        self
    }

    /// Parts read and on the wire at once for every upload, overriding
    /// [`UploadRequest::parts_in_flight`]; memory is bounded by about this many parts plus one.
    #[must_use]
    pub fn parts_in_flight(mut self, n: usize) -> Self {
        self.core.parts_in_flight = Some(n);
        self
    }

    /// Longest time to open a connection (DNS, TCP and TLS), default 30 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = Some(timeout);
        self
    }

    /// Longest time a single read or write on a connection may make no progress, default 120 s.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = Some(timeout);
        self
    }

    /// Longest time one request may take from start to the end of its answer (default none).
    /// Parts are large: leave room for the slowest link.
    #[must_use]
    pub fn overall_timeout(mut self, timeout: Duration) -> Self {
        self.settings.overall_timeout = Some(timeout);
        self
    }

    /// Also trusts `host` (exact name, any port) with the token, e.g. for session endpoints on a
    /// proxy.
    #[must_use]
    pub fn trusted_host(mut self, host: impl Into<String>) -> Self {
        self.core.trusted_hosts.push(host.into());
        self
    }

    /// Retries, backoff and the commit budget (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.core.retry = Some(policy);
        self
    }

    /// The most bytes of an answer's body read (default: the core's 4 MiB).
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.core.max_response_bytes = Some(bytes);
        self
    }

    /// Sends `user_agent` instead of the crate's own `User-Agent`.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.core.user_agent = Some(user_agent.into());
        self
    }

    /// Whether bodies of 64 KiB or more (the parts) are sent with `Expect: 100-continue` (default
    /// yes): a server refusing a part (401, 429, 5xx) then answers before the part is sent, and
    /// the answer (with its `Retry-After`) reaches the retry logic instead of a broken pipe.
    #[must_use]
    pub fn expect_continue(mut self, enabled: bool) -> Self {
        self.settings.expect_continue_from = enabled.then_some(EXPECT_CONTINUE_FROM);
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let config = self.core.config(random_jitter_seed())?;
        let parts_in_flight = self.core.parts_in_flight;
        let Auth::Source(source) = self.auth else {
            return Err(Error::Config(
                "no token source: call developer_token, client_credentials or token_source".into(),
            ));
        };
        let core = box_upload_core::Client::new(config, BoxedSource(source));
        let mut settings = self.settings;
        settings.max_idle_connections = settings.max_idle_connections.max(parts_in_flight.unwrap_or(0) + 2);
        Ok(Client { core, agent: transport::agent(settings), parts_in_flight })
    }
}

/// Lets a boxed token source be handed to the core.
struct BoxedSource(Box<dyn TokenSource>);

impl TokenSource for BoxedSource {
    fn poll_token(
        &mut self,
        now: std::time::Instant,
    ) -> Result<box_upload_core::TokenPoll, box_upload_core::AuthError> {
        self.0.poll_token(now)
    }

    fn handle_token_response(
        &mut self,
        response: http::Response<Bytes>,
        now: std::time::Instant,
    ) -> Result<(), box_upload_core::AuthError> {
        self.0.handle_token_response(response, now)
    }

    fn invalidate(&mut self, token: &box_upload_core::AccessToken) -> bool {
        self.0.invalidate(token)
    }
}

impl Client {
    /// A builder with Box's defaults.
    #[must_use]
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client around an existing core client and ureq agent. The agent must not follow
    /// redirects and must return every status as a response (`max_redirects(0)`,
    /// `http_status_as_error(false)`).
    #[must_use]
    pub fn from_parts(core: box_upload_core::Client, agent: ureq::Agent) -> Self {
        Self { core, agent: Agent { agent, expect_continue_from: Some(EXPECT_CONTINUE_FROM) }, parts_in_flight: None }
    }

    /// The core client (policy and token source).
    #[must_use]
    pub fn core(&self) -> &box_upload_core::Client {
        &self.core
    }

    /// The shared ureq agent.
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent.agent
    }

    fn workers(&self, parts_in_flight: usize) -> usize {
        parts_in_flight.max(1) + 1
    }

    // ---- generic ---------------------------------------------------------------------------

    /// Runs any core machine to its output. Reads it asks for fail (it has no source); use
    /// [`drive_with_source`](Self::drive_with_source) for machines that read.
    pub fn drive<M: Machine>(&self, machine: &mut M) -> Result<M::Output, Error> {
        let workers = self.workers(self.parts_in_flight.unwrap_or(DEFAULT_PARTS_IN_FLIGHT));
        driver::run(&self.agent, workers, machine, None, &mut NoHooks)
    }

    /// Runs any core machine to its output, serving its reads from `source`.
    pub fn drive_with_source<M: Machine>(&self, machine: &mut M, source: &mut Source) -> Result<M::Output, Error> {
        let workers = self.workers(self.parts_in_flight.unwrap_or(DEFAULT_PARTS_IN_FLIGHT));
        driver::run(&self.agent, workers, machine, Some(source), &mut NoHooks)
    }

    /// Runs one operation (with the core's token handling and retries).
    pub fn run<O: Operation>(&self, operation: O) -> Result<O::Output, Error> {
        let mut call = self.core.call(operation);
        driver::run(&self.agent, 1, &mut call, None, &mut NoHooks)
    }

    // ---- the 13 operations -----------------------------------------------------------------

    /// Creates an upload session for a new file `name` of `size` bytes in `folder_id`.
    pub fn create_upload_session(
        &self,
        folder_id: impl Into<String>,
        file_name: impl Into<String>,
        file_size: u64,
    ) -> Result<UploadSession, Error> {
        self.run(CreateUploadSession::new(folder_id, file_name, file_size)?)
    }

    /// Creates an upload session for a new version of `file_id`, optionally renaming it.
    pub fn create_upload_session_for_file(
        &self,
        file_id: impl Into<String>,
        file_size: u64,
        file_name: Option<String>,
    ) -> Result<UploadSession, Error> {
        let mut op = CreateUploadSessionForFile::new(file_id, file_size)?;
        if let Some(name) = file_name {
            op = op.with_file_name(name)?;
        }
        self.run(op)
    }

    /// Gets a session by its id.
    pub fn get_upload_session_by_id(&self, session_id: impl Into<String>) -> Result<UploadSession, Error> {
        self.run(GetUploadSession::by_id(session_id))
    }

    /// Gets a session by its `session_endpoints.status` URL.
    pub fn get_upload_session_by_url(&self, url: impl Into<String>) -> Result<UploadSession, Error> {
        self.run(GetUploadSession::by_url(url))
    }

    /// Uploads one part (`bytes` at `offset` of a `file_size`-byte file) to a session by id.
    pub fn upload_file_part_by_id(
        &self,
        session_id: impl Into<String>,
        offset: u64,
        file_size: u64,
        bytes: impl Into<Bytes>,
    ) -> Result<UploadedPart, Error> {
        self.run(UploadFilePart::by_id(session_id, offset, file_size, PartData::new(bytes))?)
    }

    /// Uploads one part to a session's `session_endpoints.upload_part` URL.
    pub fn upload_file_part_by_url(
        &self,
        url: impl Into<String>,
        offset: u64,
        file_size: u64,
        bytes: impl Into<Bytes>,
    ) -> Result<UploadedPart, Error> {
        self.run(UploadFilePart::by_url(url, offset, file_size, PartData::new(bytes))?)
    }

    /// Aborts a session by id.
    pub fn delete_upload_session_by_id(&self, session_id: impl Into<String>) -> Result<(), Error> {
        self.run(DeleteUploadSession::by_id(session_id))
    }

    /// Aborts a session by its `session_endpoints.abort` URL.
    pub fn delete_upload_session_by_url(&self, url: impl Into<String>) -> Result<(), Error> {
        self.run(DeleteUploadSession::by_url(url))
    }

    /// Lists a session's parts by id, from `offset` (default 0), at most `limit` (at most 1000).
    pub fn list_upload_session_parts_by_id(
        &self,
        session_id: impl Into<String>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<UploadParts, Error> {
        self.run(ListUploadSessionParts::by_id(session_id).with_page(offset, limit)?)
    }

    /// Lists a session's parts by its `session_endpoints.list_parts` URL.
    pub fn list_upload_session_parts_by_url(
        &self,
        url: impl Into<String>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<UploadParts, Error> {
        self.run(ListUploadSessionParts::by_url(url).with_page(offset, limit)?)
    }

    /// Commits a session by id with all its `parts` and the whole file's SHA-1. A 202 comes back
    /// as [`CommitResponse::NotReady`] (this single call does not wait and retry it; the big
    /// upload does).
    pub fn commit_upload_session_by_id(
        &self,
        session_id: impl Into<String>,
        parts: Vec<UploadPart>,
        digest: Sha1Digest,
        if_match: Option<String>,
        if_none_match: Option<String>,
    ) -> Result<CommitResponse, Error> {
        self.run(CommitUploadSession::by_id(session_id, parts, digest).with_conditions(if_match, if_none_match))
    }

    /// Commits a session by its `session_endpoints.commit` URL.
    pub fn commit_upload_session_by_url(
        &self,
        url: impl Into<String>,
        parts: Vec<UploadPart>,
        digest: Sha1Digest,
        if_match: Option<String>,
        if_none_match: Option<String>,
    ) -> Result<CommitResponse, Error> {
        self.run(CommitUploadSession::by_url(url, parts, digest).with_conditions(if_match, if_none_match))
    }

    // ---- the big upload --------------------------------------------------------------------

    /// Uploads `source` as `request` says (a new file, or a new version with
    /// [`UploadRequest::new_version`] and perhaps [`UploadRequest::if_match`]) and returns the
    /// committed file. On failure the session is aborted unless the request keeps it.
    pub fn upload(&self, source: Source, request: UploadRequest) -> Result<FileFull, Error> {
        self.upload_with(source, request, UploadOptions::default())
    }

    /// [`upload`](Self::upload) with a progress callback, a checkpoint file and/or a cancel flag.
    pub fn upload_with(
        &self,
        mut source: Source,
        mut request: UploadRequest,
        options: UploadOptions,
    ) -> Result<FileFull, Error> {
        if let Some(actual) = source.len() {
            if request.file_size == 0 {
                request.file_size = actual;
            } else if actual != request.file_size {
                return Err(Error::SizeMismatch { declared: request.file_size, actual });
            }
        }
        if let Some(n) = self.parts_in_flight {
            request.parts_in_flight = n;
        }
        if request.source_fingerprint.is_none() {
            request.source_fingerprint = source.fingerprint();
        }
        let workers = self.workers(request.parts_in_flight);
        tracing::info!(size = request.file_size, parts_in_flight = request.parts_in_flight, "starting upload");
        let machine = self.core.big_upload(request)?;
        self.run_upload(machine, &mut source, workers, options)
    }

    /// Continues an upload from a checkpoint (a value, or the path of a file saved by
    /// [`UploadOptions::checkpoint_file`]) with `source`: parts Box holds are read and checked
    /// against the source but not sent again.
    pub fn resume(
        &self,
        from: impl Into<ResumeFrom>,
        source: Source,
        options: ResumeOptions,
    ) -> Result<FileFull, Error> {
        self.resume_with(from, source, options, UploadOptions::default())
    }

    /// [`resume`](Self::resume) with a progress callback, a checkpoint file and/or a cancel flag.
    /// The source's size and fingerprint are filled into `options` when it leaves them empty, so a
    /// checkpoint of another file is refused. Resuming from a file keeps that file up to date
    /// unless `upload_options` names another.
    pub fn resume_with(
        &self,
        from: impl Into<ResumeFrom>,
        mut source: Source,
        mut options: ResumeOptions,
        mut upload_options: UploadOptions,
    ) -> Result<FileFull, Error> {
        let checkpoint = match from.into() {
            ResumeFrom::Checkpoint(c) => *c,
            ResumeFrom::File(path) => {
                let checkpoint = crate::load_checkpoint(&path)?;
                upload_options.default_checkpoint_file(path);
                checkpoint
            }
        };
        tracing::info!(session_id = %checkpoint.session.id, parts_done = checkpoint.parts.len(), "resuming upload");
        if let Some(n) = self.parts_in_flight {
            options.parts_in_flight = n;
        }
        if options.file_size.is_none() {
            options.file_size = source.len();
        }
        if options.source_fingerprint.is_none() {
            options.source_fingerprint = source.fingerprint();
        }
        let workers = self.workers(options.parts_in_flight);
        let machine = self.core.resume(checkpoint, options)?;
        self.run_upload(machine, &mut source, workers, upload_options)
    }

    fn run_upload(
        &self,
        mut machine: box_upload_core::BigUpload,
        source: &mut Source,
        workers: usize,
        options: UploadOptions,
    ) -> Result<FileFull, Error> {
        let mut hooks = UploadHooks::new(options);
        let result = driver::run(&self.agent, workers, &mut machine, Some(source), &mut hooks);
        match result {
            Ok(file) => {
                hooks.finished_ok();
                Ok(file)
            }
            Err(e) => Err(hooks.checkpoint_error.take().unwrap_or(e)),
        }
    }
}
