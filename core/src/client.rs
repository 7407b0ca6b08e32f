//! The entry point: policy and token source, shared by every machine it starts.

use crate::auth::{SharedTokenSource, TokenSource};
use crate::call::Call;
use crate::error::InputError;
use crate::file_upload::{with_timestamps, FileUpload, FileUploadOptions};
use crate::operations::{CommitUploadSession, Operation, SessionRef};
use crate::session_tools::{CommitAndWait, ListAllParts};
use crate::upload::{BigUpload, Checkpoint, ResumeOptions, UploadRequest};
use crate::Config;
use std::sync::Arc;

/// The request policy and the token source. Cheap to clone; clones share the token cache.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) config: Arc<Config>,
    pub(crate) auth: SharedTokenSource,
}

impl Client {
    /// A client with `config` and a token `source`.
    pub fn new(config: Config, source: impl TokenSource + 'static) -> Self {
        Self { config: Arc::new(config), auth: SharedTokenSource::new(source) }
    }

    /// A client sharing an existing token source.
    pub fn with_shared_source(config: Config, source: SharedTokenSource) -> Self {
        Self { config: Arc::new(config), auth: source }
    }

    /// The policy in use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The token source.
    #[must_use]
    pub fn token_source(&self) -> &SharedTokenSource {
        &self.auth
    }

    /// Runs one operation. Input errors come out of the machine's `poll_output` at once.
    pub fn call<O: Operation>(&self, operation: O) -> Call<O> {
        Call::new(self, operation)
    }

    /// Lists every part of `session`, page by page, with the big upload's paging rules (see
    /// [`ListAllParts`], whose `with_*` methods set the page size and the bound on the parts).
    ///
    /// ```
    /// use box_upload_core::{operations::SessionRef, Client, Config, DeveloperToken, Machine};
    /// use std::time::Instant;
    ///
    /// let client = Client::new(Config::new(), DeveloperToken::new("token"));
    /// let mut list = client.list_all_parts(SessionRef::Id("F971964745A5CD0C001BBE4E58196BFD".into())).with_max_parts(3);
    /// let t = list.poll_transmit(Instant::now()).expect("the first page");
    /// assert!(t.request.uri().to_string().ends_with("/parts?offset=0&limit=1000"));
    /// ```
    pub fn list_all_parts(&self, session: SessionRef) -> ListAllParts {
        ListAllParts::new(self, session)
    }

    /// Commits a session and waits out Box's 202 answers within the policy's `commit_timeout`,
    /// with the big upload's commit rules (see [`CommitAndWait`]).
    ///
    /// ```
    /// use box_upload_core::{operations::CommitUploadSession, Client, Config, DeveloperToken, Machine, Sha1Digest};
    /// use std::time::Instant;
    ///
    /// let client = Client::new(Config::new(), DeveloperToken::new("token"));
    /// let op = CommitUploadSession::by_id("F971964745A5CD0C001BBE4E58196BFD", Vec::new(), Sha1Digest([0; 20]));
    /// let mut commit = client.commit_and_wait(op);
    /// let t = commit.poll_transmit(Instant::now()).expect("the commit");
    /// assert!(t.request.uri().to_string().ends_with("/commit"));
    /// ```
    pub fn commit_and_wait(&self, commit: CommitUploadSession) -> CommitAndWait {
        CommitAndWait::new(self, commit)
    }

    /// The whole big upload: session, parts, commit. Input is checked before any request.
    /// Memory holds at most `parts_in_flight` parts of the session's `part_size`, which is capped
    /// by [`Config::max_part_size`] (see [`BigUpload`]).
    pub fn big_upload(&self, request: UploadRequest) -> Result<BigUpload, InputError> {
        BigUpload::start(self, request)
    }

    /// Continues an upload from a checkpoint.
    pub fn resume(&self, checkpoint: Checkpoint, options: ResumeOptions) -> Result<BigUpload, InputError> {
        BigUpload::resume(self, checkpoint, options)
    }

    /// The big upload of a source whose size and identity a driver knows (see [`SourceFacts`]):
    /// a `file_size` of 0 is taken from the source, another size than the source's is refused
    /// ([`InputError::SizeMismatch`]), the source's fingerprint goes into the checkpoint unless
    /// the request names one, and `parts_in_flight` (a client-wide setting) overrides the
    /// request's. Every driver starts uploads through here, so they all decide alike.
    pub fn start_upload(
        &self,
        request: UploadRequest,
        source: &SourceFacts,
        parts_in_flight: Option<usize>,
    ) -> Result<BigUpload, InputError> {
        self.big_upload(fill_request(request, source, parts_in_flight)?)
    }

    /// The upload of a file of any size from a source a driver knows, as [`FileUpload`] does
    /// it: direct below `options.chunked_from`, in an upload session from it. The source's size
    /// and fingerprint fill the request as in [`start_upload`](Self::start_upload), and its
    /// timestamps (`options.modified`, `options.created`) go into the attributes unless they
    /// hold their own.
    pub fn file_upload(
        &self,
        request: UploadRequest,
        source: &SourceFacts,
        parts_in_flight: Option<usize>,
        options: FileUploadOptions,
    ) -> Result<FileUpload, InputError> {
        let request = with_timestamps(fill_request(request, source, parts_in_flight)?, &options);
        // A bad name or id is refused before anything is read, whichever way the file goes.
        crate::operations::UploadFile::new(request.target.clone(), request.file_size)?;
        if request.parts_in_flight == 0 {
            return Err(InputError::ZeroParallelism);
        }
        Ok(FileUpload::new(self, request, options))
    }

    /// The resume of `checkpoint` from a source a driver knows: the source's size and
    /// fingerprint fill `options` where it leaves them empty (so a checkpoint of another file,
    /// or of this one changed, is refused), and `parts_in_flight` overrides the options'.
    pub fn start_resume(
        &self,
        checkpoint: Checkpoint,
        mut options: ResumeOptions,
        source: &SourceFacts,
        parts_in_flight: Option<usize>,
    ) -> Result<BigUpload, InputError> {
        if let Some(n) = parts_in_flight {
            options.parts_in_flight = n;
        }
        if options.file_size.is_none() {
            options.file_size = source.size;
        }
        if options.source_fingerprint.is_none() {
            options.source_fingerprint.clone_from(&source.fingerprint);
        }
        self.resume(checkpoint, options)
    }
}

/// `request` with what the source says: its size when the request gives 0 (another size is
/// refused), its fingerprint unless the request names one, and the client's parts in flight.
fn fill_request(
    mut request: UploadRequest,
    source: &SourceFacts,
    parts_in_flight: Option<usize>,
) -> Result<UploadRequest, InputError> {
    if let Some(n) = parts_in_flight {
        request.parts_in_flight = n;
    }
    if let Some(actual) = source.size {
        if request.file_size == 0 {
            request.file_size = actual;
        } else if request.file_size != actual {
            return Err(InputError::SizeMismatch { declared: request.file_size, actual });
        }
    }
    if request.source_fingerprint.is_none() {
        request.source_fingerprint.clone_from(&source.fingerprint);
    }
    request.source_read_once |= source.read_once;
    Ok(request)
}

/// What a driver knows of its source before an upload starts: its size (files and bytes know
/// it, streams do not), its fingerprint (files only: see
/// [`FileFingerprint`](crate::FileFingerprint)) and whether it can be read only once (streams).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFacts {
    /// The size in bytes, when known.
    pub size: Option<u64>,
    /// The fingerprint recorded in checkpoints, when the source has an identity.
    pub fingerprint: Option<String>,
    /// The source is a stream, read once in order and never again (see
    /// [`UploadRequest::source_read_once`]).
    pub read_once: bool,
}
