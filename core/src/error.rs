//! The errors of the core, one type per kind of failure.

use crate::models::ClientError;
use crate::planner::PlanError;
use crate::RequestKind;
use std::fmt;
use std::time::Duration;

/// Everything that can end an operation or an upload.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input was refused before any request was sent.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Box answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Box's answer does not make sense.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// No token could be had, or Box kept refusing it.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The network failed and retries ran out.
    #[error("{kind} failed after {attempts} attempt(s): {source}")]
    Transport {
        /// The request that failed.
        kind: RequestKind,
        /// How many times it was sent.
        attempts: u32,
        /// The last failure.
        source: TransportError,
    },
    /// A URL would have carried the token to a host that is not trusted.
    #[error(transparent)]
    UntrustedHost(#[from] UntrustedHost),
    /// The source bytes are not what they were.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Box kept answering 202 to the commit for longer than allowed.
    #[error("Box answered 202 (not ready) to {attempts} commits over {waited:?}; giving up")]
    CommitTimeout {
        /// Commits sent.
        attempts: u32,
        /// Time spent since the first commit.
        waited: Duration,
    },
    /// The session of a checkpoint is gone (expired, aborted or committed).
    #[error("upload session {session_id} is gone (expired, aborted or committed): {source}")]
    SessionGone {
        /// The session id.
        session_id: String,
        /// Box's answer.
        source: ApiError,
    },
    /// The caller cancelled the upload.
    #[error("the upload was cancelled")]
    Cancelled,
    /// Whether the commit went through cannot be told: a commit got no answer (or a 5xx) and
    /// then neither Box's next answer nor a look at the file settled it (the lookup failed, found
    /// no file, or found one it could not check). Nothing is aborted: the session is left as it
    /// is. Check `check` before committing or uploading again.
    #[error("commit outcome unknown for upload session {session_id}: {reason}; check {check} before committing or uploading again")]
    CommitOutcomeUnknown {
        /// The session committed.
        session_id: String,
        /// The committed file's id, when an answer named one.
        file_id: Option<String>,
        /// What happened (the answers seen, what the lookup found).
        reason: String,
        /// What to look at in Box: the file or the folder and name, the SHA-1 and size expected.
        check: String,
    },
}

impl Error {
    /// Box's error code, when Box gave one.
    #[must_use]
    pub fn box_code(&self) -> Option<&str> {
        match self {
            Error::Api(e) | Error::SessionGone { source: e, .. } => e.code(),
            Error::Auth(AuthError::Refused(e)) => e.code(),
            _ => None,
        }
    }
}

/// Box's answer to a request that failed: the status and Box's error object.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Which request it answered.
    pub kind: Option<RequestKind>,
    /// Box's error object (empty when the body was not one).
    pub error: Box<ClientError>,
}

impl ApiError {
    /// Box's error code, e.g. `item_name_in_use`.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.error.code.as_deref()
    }

    /// Box's message.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.error.message.as_deref()
    }

    /// Box's request id, for support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.error.request_id.as_deref()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{kind}: Box answered {}", self.status)?,
            None => write!(f, "Box answered {}", self.status)?,
        }
        if let Some(code) = self.code() {
            write!(f, " {code}")?;
        }
        if let Some(message) = self.message() {
            write!(f, ": {message}")?;
        }
        if let Some(id) = self.request_id() {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Input refused before any request was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Upload sessions are for files of 20,000,000 bytes or more.
    #[error("file is {size} bytes; upload sessions need at least 20000000 bytes")]
    FileTooSmall {
        /// The size given.
        size: u64,
    },
    /// A file name Box would refuse.
    #[error("file name {name:?} is not allowed: {reason}")]
    BadName {
        /// The name given (cut to 300 characters).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An id that is empty or not of Box's form.
    #[error("{what} {value:?} is not a valid Box id")]
    BadId {
        /// Which id.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A URL that does not parse or is not http(s).
    #[error("{0:?} is not an absolute http(s) URL")]
    BadUrl(String),
    /// A header the caller gave that is not valid.
    #[error("header {0:?} is not valid")]
    BadHeader(String),
    /// A plan asks about 1 to 1000 parts, each offset once, each with 128 hex digits of SHA-512.
    #[error("a plan asks about 1 to 1000 parts, each offset once with a 128-hex-digit sha512; got {count} parts")]
    PlanParts {
        /// How many parts were given.
        count: usize,
    },
    /// Zero parts in flight.
    #[error("parts in flight must be at least 1")]
    ZeroParallelism,
    /// A checkpoint for another file or session.
    #[error("the checkpoint does not match: {0}")]
    CheckpointMismatch(String),
    /// A `fields` entry that is not a Box field name (letters, digits, `_`, `.`, `-`).
    #[error("{0:?} is not a Box field name")]
    BadField(String),
    /// A list-parts page size over Box's 1000.
    #[error("limit {0} is over Box's maximum of 1000")]
    LimitTooLarge(u64),
    /// Plain `http://` to a host that is not loopback, not allowed
    /// ([`Config::with_insecure_http_allowed`](crate::Config::with_insecure_http_allowed)): the
    /// token or the client secret would cross the network in cleartext.
    #[error("refusing plain http to {0:?}: the token would travel in cleartext (use https, or allow insecure http explicitly)")]
    InsecureHttp(String),
    /// The source's size is not the one the request declares.
    #[error("the source has {actual} bytes but the request declares {declared}")]
    SizeMismatch {
        /// The size in the request.
        declared: u64,
        /// The size of the source.
        actual: u64,
    },
}

/// Box answered something the core cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The body is not the JSON expected (malformed, truncated, wrong shape).
    #[error("{kind}: Box's answer ({status}) is not valid JSON for it: {detail}")]
    BadJson {
        /// The request it answered.
        kind: RequestKind,
        /// The HTTP status.
        status: u16,
        /// What serde said.
        detail: String,
    },
    /// A status the operation does not define.
    #[error("{kind}: unexpected status {status}")]
    UnexpectedStatus {
        /// The request it answered.
        kind: RequestKind,
        /// The HTTP status.
        status: u16,
    },
    /// A field the upload depends on is missing.
    #[error("{kind}: Box's answer has no {field}")]
    MissingField {
        /// The request it answered.
        kind: RequestKind,
        /// The field.
        field: &'static str,
    },
    /// The session's numbers cannot describe the file.
    #[error("the upload session is unusable: {0}")]
    BadSession(#[from] PlanError),
    /// The session's `part_size` is over the client's cap
    /// ([`Config::max_part_size`](crate::Config::max_part_size)): its parts would not fit the
    /// memory allowed. The session is aborted before anything is read.
    #[error(
        "the session's part_size of {part_size} bytes is over the cap of {max_part_size} bytes (max_part_size): up to parts in flight + 1 parts are held in memory"
    )]
    PartSizeTooLarge {
        /// The session's part size.
        part_size: u64,
        /// The cap.
        max_part_size: u64,
    },
    /// Box echoed a part other than the one sent.
    #[error("part at offset {offset}: Box echoed {field} {theirs}, we sent {ours}")]
    PartEchoMismatch {
        /// The part's offset.
        offset: u64,
        /// `offset`, `size` or `sha1`.
        field: &'static str,
        /// What we sent.
        ours: String,
        /// What Box echoed.
        theirs: String,
    },
    /// The listed parts disagree with the acknowledged ones.
    #[error("the session's parts disagree with ours: {0}")]
    PartsListMismatch(String),
    /// Listing every part would need a page past Box's largest `offset`
    /// ([`MAX_LIST_OFFSET`](crate::operations::MAX_LIST_OFFSET)); no such page is asked for.
    #[error(
        "listing {total_count} parts {limit} per page would need offset {offset}, past Box's largest offset of {max_offset}"
    )]
    ListOffsetTooLarge {
        /// The session's `total_count`.
        total_count: u64,
        /// Parts per page.
        limit: u64,
        /// The offset the next page would start at.
        offset: u64,
        /// Box's largest offset.
        max_offset: u64,
    },
    /// A part range is taken by a part with other bytes.
    #[error("part at offset {offset} conflicts with a stored part that is not ours: {detail}")]
    PartConflict {
        /// The part's offset.
        offset: u64,
        /// What differs.
        detail: String,
    },
    /// A plan's answer that does not fit the parts asked about (a part answered twice or not at
    /// all, one not asked about, another size or SHA-512, a `part_id` not of Box's form).
    #[error("plan upload session: Box's answer does not fit the parts asked about: {detail}")]
    BadPlan {
        /// What does not fit.
        detail: String,
    },
    /// The committed file is not the one uploaded.
    #[error("the committed file {file_id} does not match the upload: {detail}")]
    CommitMismatch {
        /// The id of the file Box committed (or found at the upload's target).
        file_id: String,
        /// What differs.
        detail: String,
    },
}

/// A token could not be had or was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token URL does not parse.
    #[error("token URL {0:?} is not an absolute http(s) URL")]
    BadTokenUrl(String),
    /// The token endpoint refused the credentials.
    #[error("the token request was refused: {0}")]
    Refused(Box<ApiError>),
    /// The token endpoint answered something that is not a token.
    #[error("the token answer is not valid: {0}")]
    BadTokenResponse(String),
    /// A token source that fetches nothing was handed a token answer.
    #[error("this token source did not ask for a token request")]
    UnexpectedTokenResponse,
    /// Box answered 401 and no new token could be had (or the new one was refused too).
    #[error(transparent)]
    Unauthorized(ApiError),
    /// A custom token source failed.
    #[error("the token source failed: {0}")]
    Source(String),
}

/// A URL outside the trusted hosts: the token is never sent there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to send the token to untrusted host {host:?} ({context})")]
pub struct UntrustedHost {
    /// The host (or the whole URL when it has none).
    pub host: String,
    /// Where the URL came from.
    pub context: &'static str,
}

/// The source's bytes are not what the upload expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Fewer bytes than the file size.
    #[error("the source ended early: {got} bytes at offset {offset}, expected {expected}")]
    EndedEarly {
        /// Offset of the read.
        offset: u64,
        /// Bytes asked for.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// More bytes than the file size.
    #[error("the source has more than the {file_size} bytes declared")]
    RanLong {
        /// The declared size.
        file_size: u64,
    },
    /// The source changed while uploading (size or modification time), as the driver saw it.
    #[error("the source changed during the upload: {0}")]
    Changed(String),
    /// On resume, a part already uploaded no longer matches the source.
    #[error("on resume, the part at offset {offset} no longer matches the source")]
    ResumeMismatch {
        /// The part's offset.
        offset: u64,
    },
    /// Reading failed.
    #[error("reading the source failed: {0}")]
    Io(String),
}

/// A failure the transport saw: the request may or may not have reached Box.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The transport's description (never the token).
    pub message: String,
}

impl TransportError {
    /// A failure of `kind`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Whether sending again may help.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self.kind,
            TransportErrorKind::BodyTooLarge | TransportErrorKind::Redirect | TransportErrorKind::Certificate
        )
    }
}

/// The kinds of transport failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made.
    Connect,
    /// A connect, idle or overall timeout.
    Timeout,
    /// The connection broke while sending or receiving.
    Io,
    /// The answer's body was over the bound the core set.
    BodyTooLarge,
    /// The answer was a redirect, which is never followed with the token.
    Redirect,
    /// The server's TLS certificate was refused (not signed by a trusted CA, expired, for
    /// another name): sending again would meet the same certificate, so it is not retried.
    Certificate,
    /// Anything else.
    Other,
}
