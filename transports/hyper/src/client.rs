//! The async client: a [`box_upload_core::Client`] and a pooled hyper client.

use crate::driver::{drive, Hooks, Plain};
use crate::source::Source;
use crate::transport::{Transport, TransportSettings};
use crate::upload::UploadOptions;
use crate::Error;
use box_upload_core::models::{FileFull, UploadPart, UploadParts, UploadSession, UploadedPart};
use box_upload_core::operations::{
    CommitResponse, CommitUploadSession, CreateUploadSession, CreateUploadSessionForFile, DeleteUploadSession,
    GetUploadSession, ListUploadSessionParts, Operation, UploadFilePart,
};
use box_upload_core::ResumeFrom;
use box_upload_core::{
    random_jitter_seed, ClientCredentials, ClientSettings, DeveloperToken, Machine, PartData, ResumeOptions,
    RetryPolicy, Sha1Digest, SharedTokenSource, TokenSource, UploadRequest,
};
use bytes::Bytes;
use std::time::Duration;

/// Box's chunked-upload API over tokio and hyper: every operation, and the whole big upload.
///
/// Cheap to clone: clones share the connection pool and the token cache.
#[derive(Clone, Debug)]
pub struct Client {
    core: box_upload_core::Client,
    transport: Transport,
    parts_in_flight: Option<usize>,
}

/// Configures a [`Client`]. A token source is required; everything else has a default.
#[derive(Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    settings: ClientSettings,
    token: Option<SharedTokenSource>,
    connect_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    overall_timeout: Option<Duration>,
}

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle timeout: the longest a request may go without a byte moving either way.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

impl ClientBuilder {
    /// Sends requests to `url` instead of `https://upload.box.com/api` (e.g. an emulator's
    /// `http://127.0.0.1:PORT/api`). Its host is trusted with the token.
    pub fn upload_base(mut self, url: impl Into<String>) -> Self {
        self.settings.upload_base = Some(url.into());
        self
    }

    /// Authenticates with a fixed (developer) token.
    pub fn developer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SharedTokenSource::new(DeveloperToken::new(token)));
        self
    }

    /// Authenticates with Box's Client Credentials Grant; tokens are fetched and refreshed as
    /// needed (the token request goes through this transport too).
    pub fn client_credentials(mut self, credentials: ClientCredentials) -> Self {
        self.token = Some(SharedTokenSource::new(credentials));
        self
    }

    /// Authenticates with any token source.
    pub fn token_source(mut self, source: impl TokenSource + 'static) -> Self {
        self.token = Some(SharedTokenSource::new(source));
        self
    }

    /// Shares a token source (and its cached token) with other clients.
    pub fn shared_token_source(mut self, source: SharedTokenSource) -> Self {
        self.token = Some(source);
        self
    }

    /// Parts read and on the wire at once for every big upload of this client, overriding the
    /// request's own setting. Memory is bounded by about `(n + 1) × part_size`.
    pub fn parts_in_flight(mut self, n: usize) -> Self {
        self.settings.parts_in_flight = Some(n);
        self
    }

    /// How long to wait for a TCP connection (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long a request may go without a byte moving (sent or received) before it fails with
    /// a timeout (default 120 s); also how long an unused pooled connection is kept.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The longest one request may take in all, body included (default: no limit; the idle
    /// timeout catches stalls).
    pub fn overall_timeout(mut self, timeout: Duration) -> Self {
        self.overall_timeout = Some(timeout);
        self
    }

    /// Also trusts `host` with the token (e.g. a proxy or emulator named in `session_endpoints`).
    pub fn trusted_host(mut self, host: impl Into<String>) -> Self {
        self.settings.trusted_hosts.push(host.into());
        self
    }

    /// Retries, backoff and the commit budget (the core applies them).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = Some(policy);
        self
    }

    /// The most bytes of an answer body read (default: the core's, 4 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_response_bytes = Some(bytes);
        self
    }

    /// Sends this `User-Agent` instead of the crate's.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.settings.user_agent = Some(user_agent.into());
        self
    }

    /// Builds the client. Fails without a token source, with a bad URL, with zero parts in flight,
    /// or if TLS cannot be set up.
    pub fn build(self) -> Result<Client, Error> {
        let token = self.token.ok_or_else(|| {
            Error::Config("no token source: call developer_token, client_credentials or token_source".into())
        })?;
        let config = self.settings.config(random_jitter_seed())?;
        let parts_in_flight = self.settings.parts_in_flight;
        let transport = Transport::new(TransportSettings {
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            idle_timeout: self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            overall_timeout: self.overall_timeout,
            max_idle_per_host: parts_in_flight.unwrap_or(box_upload_core::DEFAULT_PARTS_IN_FLIGHT).max(8) + 2,
        })?;
        Ok(Client { core: box_upload_core::Client::with_shared_source(config, token), transport, parts_in_flight })
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The core client (policy and token source) this one drives.
    #[must_use]
    pub fn core(&self) -> &box_upload_core::Client {
        &self.core
    }

    // ---- the generic surface ---------------------------------------------------------------

    /// Runs any core machine to its output: sends its requests, serves no reads, keeps its
    /// deadlines.
    pub async fn drive<M: Machine + Send>(&self, machine: &mut M) -> Result<M::Output, Error> {
        drive(&self.transport, &mut Plain(machine), None, &Hooks::default()).await
    }

    /// Runs any core machine to its output, serving its reads from `source` (e.g. a
    /// [`BigUpload`](box_upload_core::BigUpload) made with `core().big_upload(..)`): one read at
    /// a time, in order, each through the machine's `part_builder`.
    pub async fn drive_with_source<M: Machine + Send>(
        &self,
        machine: &mut M,
        source: Source,
    ) -> Result<M::Output, Error> {
        let buffers = self.parts_in_flight.unwrap_or(box_upload_core::DEFAULT_PARTS_IN_FLIGHT).saturating_add(1);
        let source = source.open(buffers).await?;
        drive(&self.transport, &mut Plain(machine), Some(source), &Hooks::default()).await
    }

    /// Runs one operation (with the core's token handling and retries).
    pub async fn run<O>(&self, operation: O) -> Result<O::Output, Error>
    where
        O: Operation + Send,
        O::Output: Send,
    {
        let mut call = self.core.call(operation);
        self.drive(&mut call).await
    }

    // ---- the 13 operations -----------------------------------------------------------------

    /// `POST /files/upload_sessions`: a session for a new file.
    pub async fn create_upload_session(
        &self,
        folder_id: impl Into<String>,
        file_name: impl Into<String>,
        file_size: u64,
    ) -> Result<UploadSession, Error> {
        self.run(CreateUploadSession::new(folder_id, file_name, file_size)?).await
    }

    /// `POST /files/{file_id}/upload_sessions`: a session for a new version, optionally renamed.
    pub async fn create_upload_session_for_file(
        &self,
        file_id: impl Into<String>,
        file_size: u64,
        file_name: Option<String>,
    ) -> Result<UploadSession, Error> {
        let mut op = CreateUploadSessionForFile::new(file_id, file_size)?;
        if let Some(name) = file_name {
            op = op.with_file_name(name)?;
        }
        self.run(op).await
    }

    /// `GET /files/upload_sessions/{id}`.
    pub async fn get_upload_session_by_id(&self, session_id: impl Into<String>) -> Result<UploadSession, Error> {
        self.run(GetUploadSession::by_id(session_id)).await
    }

    /// `GET` the session's `session_endpoints.status` URL.
    pub async fn get_upload_session_by_url(&self, url: impl Into<String>) -> Result<UploadSession, Error> {
        self.run(GetUploadSession::by_url(url)).await
    }

    /// `PUT /files/upload_sessions/{id}`: one part at `offset` of a file of `file_size` bytes. The
    /// part's SHA-1 is computed on a blocking thread.
    pub async fn upload_file_part_by_id(
        &self,
        session_id: impl Into<String>,
        offset: u64,
        file_size: u64,
        bytes: impl Into<Bytes>,
    ) -> Result<UploadedPart, Error> {
        let data = hash(bytes.into()).await?;
        self.run(UploadFilePart::by_id(session_id, offset, file_size, data)?).await
    }

    /// `PUT` the session's `session_endpoints.upload_part` URL.
    pub async fn upload_file_part_by_url(
        &self,
        url: impl Into<String>,
        offset: u64,
        file_size: u64,
        bytes: impl Into<Bytes>,
    ) -> Result<UploadedPart, Error> {
        let data = hash(bytes.into()).await?;
        self.run(UploadFilePart::by_url(url, offset, file_size, data)?).await
    }

    /// `DELETE /files/upload_sessions/{id}`: aborts the session.
    pub async fn delete_upload_session_by_id(&self, session_id: impl Into<String>) -> Result<(), Error> {
        self.run(DeleteUploadSession::by_id(session_id)).await
    }

    /// `DELETE` the session's `session_endpoints.abort` URL.
    pub async fn delete_upload_session_by_url(&self, url: impl Into<String>) -> Result<(), Error> {
        self.run(DeleteUploadSession::by_url(url)).await
    }

    /// `GET /files/upload_sessions/{id}/parts`, one page.
    pub async fn list_upload_session_parts_by_id(
        &self,
        session_id: impl Into<String>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<UploadParts, Error> {
        self.run(ListUploadSessionParts::by_id(session_id).with_page(offset, limit)?).await
    }

    /// `GET` the session's `session_endpoints.list_parts` URL, one page.
    pub async fn list_upload_session_parts_by_url(
        &self,
        url: impl Into<String>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<UploadParts, Error> {
        self.run(ListUploadSessionParts::by_url(url).with_page(offset, limit)?).await
    }

    /// `POST /files/upload_sessions/{id}/commit` with every part and the whole file's SHA-1.
    /// A 202 comes back as [`CommitResponse::NotReady`]: commit again after its delay.
    pub async fn commit_upload_session_by_id(
        &self,
        session_id: impl Into<String>,
        parts: Vec<UploadPart>,
        digest: Sha1Digest,
        if_match: Option<String>,
        if_none_match: Option<String>,
    ) -> Result<CommitResponse, Error> {
        let op = CommitUploadSession::by_id(session_id, parts, digest);
        self.run(op.with_conditions(if_match, if_none_match)).await
    }

    /// `POST` the session's `session_endpoints.commit` URL.
    pub async fn commit_upload_session_by_url(
        &self,
        url: impl Into<String>,
        parts: Vec<UploadPart>,
        digest: Sha1Digest,
        if_match: Option<String>,
        if_none_match: Option<String>,
    ) -> Result<CommitResponse, Error> {
        let op = CommitUploadSession::by_url(url, parts, digest);
        self.run(op.with_conditions(if_match, if_none_match)).await
    }

    // ---- the big upload --------------------------------------------------------------------

    /// Uploads `source` as the request says (a new file, or a new version with
    /// [`UploadRequest::new_version`]): session, parts in parallel, check, commit. On failure the
    /// session is aborted unless the request keeps it.
    ///
    /// A request `file_size` of 0 is taken from the source when it knows its size (files and
    /// bytes); another size than the source's is refused. A file source's fingerprint (path,
    /// size, modification time) goes into the checkpoint.
    pub async fn upload(&self, source: Source, request: UploadRequest) -> Result<FileFull, Error> {
        self.upload_with(source, request, UploadOptions::default()).await
    }

    /// [`upload`](Self::upload) with progress, a checkpoint file and cancellation.
    pub async fn upload_with(
        &self,
        source: Source,
        mut request: UploadRequest,
        options: UploadOptions,
    ) -> Result<FileFull, Error> {
        if let Some(n) = self.parts_in_flight {
            request.parts_in_flight = n;
        }
        let source = source.open(request.parts_in_flight.saturating_add(1)).await?;
        if let Some(size) = source.size() {
            if request.file_size == 0 {
                request.file_size = size;
            } else if request.file_size != size {
                return Err(Error::SizeMismatch { declared: request.file_size, actual: size });
            }
        }
        if request.source_fingerprint.is_none() {
            if let Some(fingerprint) = source.fingerprint() {
                request.source_fingerprint = Some(fingerprint);
            }
        }
        tracing::info!(
            size = request.file_size,
            parts_in_flight = request.parts_in_flight,
            path = ?source.path(),
            "starting upload"
        );
        let mut machine = self.core.big_upload(request)?;
        drive(&self.transport, &mut machine, Some(source), &options.hooks()).await
    }

    /// Continues an upload from a checkpoint (a value, or the path of a checkpoint file) with the
    /// same source. Parts Box already holds are read again to check they still match, but not
    /// sent. The source's size and fingerprint are checked against the checkpoint's.
    pub async fn resume(
        &self,
        from: impl Into<ResumeFrom>,
        source: Source,
        options: ResumeOptions,
    ) -> Result<FileFull, Error> {
        self.resume_with(from, source, options, UploadOptions::default()).await
    }

    /// [`resume`](Self::resume) with progress, a checkpoint file and cancellation. Resuming from a
    /// checkpoint file keeps updating that file unless `upload_options` names another.
    pub async fn resume_with(
        &self,
        from: impl Into<ResumeFrom>,
        source: Source,
        mut options: ResumeOptions,
        mut upload_options: UploadOptions,
    ) -> Result<FileFull, Error> {
        let checkpoint = match from.into() {
            ResumeFrom::Checkpoint(c) => *c,
            ResumeFrom::File(path) => {
                let checkpoint = load_checkpoint(&path).await?;
                if upload_options.checkpoint_path.is_none() {
                    upload_options.checkpoint_path = Some(path);
                }
                checkpoint
            }
        };
        if let Some(n) = self.parts_in_flight {
            options.parts_in_flight = n;
        }
        let source = source.open(options.parts_in_flight.saturating_add(1)).await?;
        if options.file_size.is_none() {
            options.file_size = source.size();
        }
        if options.source_fingerprint.is_none() {
            options.source_fingerprint = source.fingerprint();
        }
        tracing::info!(session_id = %checkpoint.session.id, parts_done = checkpoint.parts.len(), "resuming upload");
        let mut machine = self.core.resume(checkpoint, options)?;
        drive(&self.transport, &mut machine, Some(source), &upload_options.hooks()).await
    }
}

/// Reads a checkpoint file written by an upload.
pub async fn load_checkpoint(path: impl AsRef<std::path::Path>) -> Result<box_upload_core::Checkpoint, Error> {
    let path = path.as_ref().to_owned();
    let read_path = path.clone();
    let text = tokio::task::spawn_blocking(move || std::fs::read(read_path))
        .await
        .map_err(|e| Error::Internal(format!("the checkpoint read task failed: {e}")))?
        .map_err(|source| Error::Checkpoint { path: path.clone(), source })?;
    serde_json::from_slice(&text).map_err(|e| Error::CheckpointFormat { path, detail: e.to_string() })
}

async fn hash(bytes: Bytes) -> Result<PartData, Error> {
    tokio::task::spawn_blocking(move || PartData::new(bytes))
        .await
        .map_err(|e| Error::Internal(format!("the hash task failed: {e}")))
}
