//! The one surface every transport drives, for single operations and the big upload alike: the
//! [`Machine`] trait (its docs give the order of calls), what goes in and out of it, and the
//! builder that reads and hashes a part.

use crate::digest::{FileHasher, PartSha512, Sha1Digest, Sha512Digest};
use crate::error::{Error, SourceError, TransportError};
use bytes::Bytes;
use http::{Request, Response};
use std::fmt;
use std::time::{Duration, Instant};

/// Which of Box's requests a transmit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// The Client Credentials Grant token request.
    Token,
    /// Create a session for a new file.
    CreateSession,
    /// Create a session for a new version.
    CreateSessionForFile,
    /// Get a session.
    GetSession,
    /// Upload a part.
    UploadPart,
    /// Abort a session.
    AbortSession,
    /// List a session's parts.
    ListParts,
    /// Commit a session.
    CommitSession,
    /// Get a file (`GET /2.0/files/{id}` on the API host).
    GetFile,
    /// The preflight check of a new file (`OPTIONS /2.0/files/content` on the API host).
    PreflightFileUpload,
    /// Ask which parts of a session Box already holds (the session's plan).
    PlanSession,
    /// A direct upload (`POST /2.0/files/content` or `/2.0/files/{id}/content`).
    UploadFile,
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::Token => "token request",
            RequestKind::CreateSession => "create upload session",
            RequestKind::CreateSessionForFile => "create upload session for file",
            RequestKind::GetSession => "get upload session",
            RequestKind::UploadPart => "upload part",
            RequestKind::AbortSession => "abort upload session",
            RequestKind::ListParts => "list parts",
            RequestKind::CommitSession => "commit upload session",
            RequestKind::GetFile => "get file",
            RequestKind::PreflightFileUpload => "preflight file upload",
            RequestKind::PlanSession => "plan upload session",
            RequestKind::UploadFile => "upload file",
        })
    }
}

/// Names one request sent, to match its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A request to send.
pub struct Transmit {
    /// Hand this back with the answer.
    pub id: RequestId,
    /// Which request it is (for logs and metrics).
    pub kind: RequestKind,
    /// The request. Its `Authorization` header is marked sensitive; a token request's body holds
    /// the client secret. Do not follow redirects with it.
    pub request: Request<Bytes>,
    /// Read at most this many bytes of the answer's body; past it, report
    /// [`TransportErrorKind::BodyTooLarge`](crate::TransportErrorKind::BodyTooLarge).
    pub max_response_bytes: usize,
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers print through `http`, which hides sensitive values; the body is never printed.
        f.debug_struct("Transmit")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .field("headers", self.request.headers())
            .field("body_len", &self.request.body().len())
            .finish()
    }
}

/// Names one read asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadId(pub u64);

/// A range of the source the machine wants: read `len` bytes at `offset`, fewer only where the
/// source ends. Reads are asked for in offset order; a driver reading a stream serves them in that
/// order. The last read asks for one byte at the end of the file, which must come back empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// Hand this back with the bytes.
    pub id: ReadId,
    /// Where to read.
    pub offset: u64,
    /// How many bytes.
    pub len: usize,
}

/// A part's bytes and their SHA-1, hashed once when made. A driver may build it on any thread, so
/// part hashing need not hold up its loop.
#[derive(Clone)]
pub struct PartData {
    bytes: Bytes,
    sha1: Sha1Digest,
    /// The bytes' SHA-512, when the builder was asked for it (a deduplicated upload's plan).
    sha512: Option<Sha512Digest>,
    /// The machine's whole-file hasher carried on over these bytes, when the machine handed its
    /// state to the [`PartBuilder`] (see [`Machine::part_builder`]).
    pub(crate) file: Option<Box<FileHasher>>,
}

impl PartData {
    /// Hashes `bytes`.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let sha1 = Sha1Digest::of(&bytes);
        Self { bytes, sha1, sha512: None, file: None }
    }

    /// Their SHA-512, when the machine asked the builder for it (see [`Machine::part_builder`]).
    #[must_use]
    pub fn sha512(&self) -> Option<Sha512Digest> {
        self.sha512
    }

    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Their SHA-1.
    #[must_use]
    pub fn sha1(&self) -> Sha1Digest {
        self.sha1
    }

    /// Their length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// How much a driver should read (and hash) at a time: small enough to stay in the CPU cache
/// between the read and both SHA-1 passes, large enough that calls cost little.
pub const HASH_CHUNK: usize = 256 * 1024;

/// Builds a [`PartData`] as the driver reads it, hashing each chunk the moment it is written, while
/// it is still in the CPU cache: hashing a whole 8 MiB part after reading it runs at memory speed,
/// not SHA-1 speed. The digest is still computed here, over exactly the bytes the part will hold.
///
/// ```
/// use box_upload_core::{PartBuilder, PartData};
/// let source = vec![7u8; 1000];
/// let mut part = PartBuilder::new(vec![0; 1000]);
/// while part.filled() < 1000 {
///     let chunk = part.unfilled();
///     let n = chunk.len().min(256);
///     let at = 1000 - chunk.len();
///     chunk[..n].copy_from_slice(&source[at..at + n]); // e.g. a positioned read
///     part.advance(n);
/// }
/// assert_eq!(part.finish().sha1(), PartData::new(source).sha1());
/// ```
pub struct PartBuilder {
    buf: Vec<u8>,
    filled: usize,
    hasher: FileHasher,
    file: Option<FileHasher>,
    sha512: Option<PartSha512>,
}

impl PartBuilder {
    /// A builder filling `buf` (its length is the most the part can hold; its contents are
    /// overwritten). Pass a reused buffer to avoid allocating per part.
    #[must_use]
    pub fn new(buf: Vec<u8>) -> Self {
        Self { buf, filled: 0, hasher: FileHasher::new(), file: None, sha512: None }
    }

    /// Also computes the part's SHA-512, on each chunk as it is hashed (a deduplicated upload
    /// plans its parts by it).
    #[must_use]
    pub fn with_sha512(mut self) -> Self {
        self.sha512 = Some(PartSha512::new());
        self
    }

    /// A builder that also carries the machine's whole-file hash on over the bytes.
    pub(crate) fn continuing(buf: Vec<u8>, file: FileHasher) -> Self {
        Self { file: Some(file), ..Self::new(buf) }
    }

    /// Gives the builder the buffer to fill (its length is the most the part can hold), when
    /// nothing is written yet: a driver can get the builder from the machine on its loop and
    /// take a buffer (e.g. from a pool) on the thread that reads.
    pub fn set_buffer(&mut self, buf: Vec<u8>) {
        if self.filled == 0 {
            self.buf = buf;
        }
    }

    /// The part of the buffer not written yet: write into its start, then call
    /// [`advance`](Self::advance).
    pub fn unfilled(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled..]
    }

    /// Marks the next `n` bytes of [`unfilled`](Self::unfilled) as written, and hashes them
    /// (`n` is capped at what is left).
    pub fn advance(&mut self, n: usize) {
        let end = self.filled + n.min(self.buf.len() - self.filled);
        let chunk = &self.buf[self.filled..end];
        match &mut self.file {
            // Same bytes, still in cache, both digests in one pass.
            Some(file) => self.hasher.update_pair(file, chunk),
            None => self.hasher.update(chunk),
        }
        if let Some(sha512) = &mut self.sha512 {
            sha512.update(chunk);
        }
        self.filled = end;
    }

    /// The part is `bytes` (no copy; the builder's buffer is not used), hashed a chunk at a time
    /// like a read, so a whole-file hash carried by the builder runs on each chunk in cache.
    #[must_use]
    pub fn finish_with_bytes(mut self, bytes: Bytes) -> PartData {
        for chunk in bytes.chunks(HASH_CHUNK) {
            match &mut self.file {
                Some(file) => self.hasher.update_pair(file, chunk),
                None => self.hasher.update(chunk),
            }
            if let Some(sha512) = &mut self.sha512 {
                sha512.update(chunk);
            }
        }
        let sha512 = self.sha512.map(PartSha512::finish);
        PartData { sha1: self.hasher.finish(), sha512, file: self.file.map(Box::new), bytes }
    }

    /// How many bytes are written.
    #[must_use]
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// The part: the bytes written so far, with their SHA-1.
    #[must_use]
    pub fn finish(self) -> PartData {
        self.finish_with(Bytes::from)
    }

    /// Like [`finish`](Self::finish), with `wrap` turning the buffer (cut to the bytes written) into
    /// `Bytes`, e.g. with a drop guard that returns it to a pool.
    pub fn finish_with(mut self, wrap: impl FnOnce(Vec<u8>) -> Bytes) -> PartData {
        self.buf.truncate(self.filled);
        let sha1 = self.hasher.finish();
        let bytes = wrap(self.buf);
        debug_assert_eq!(bytes.len(), self.filled, "wrap must keep the bytes");
        if bytes.len() == self.filled {
            let sha512 = self.sha512.map(PartSha512::finish);
            PartData { bytes, sha1, sha512, file: self.file.map(Box::new) }
        } else {
            // A wrapper that changed the bytes gets them hashed again: the digest must be theirs.
            let wanted = self.sha512.is_some();
            let mut data = PartData::new(bytes);
            if wanted {
                data.sha512 = Some(Sha512Digest::of(&data.bytes));
            }
            data
        }
    }
}

impl fmt::Debug for PartBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartBuilder").field("capacity", &self.buf.len()).field("filled", &self.filled).finish()
    }
}

impl fmt::Debug for PartData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartData").field("len", &self.bytes.len()).field("sha1", &self.sha1).finish()
    }
}

/// How far an upload has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes Box has acknowledged (parts stored).
    pub bytes_acknowledged: u64,
    /// Parts Box has acknowledged.
    pub parts_acknowledged: u64,
    /// Bytes read from the source so far.
    pub bytes_read: u64,
    /// The file size.
    pub total_bytes: u64,
    /// The number of parts.
    pub total_parts: u64,
}

/// Something the driver may want to show or act on.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The session exists; a checkpoint can now be saved.
    SessionCreated {
        /// The session id.
        session_id: String,
    },
    /// More parts were acknowledged (or read).
    Progress(Progress),
    /// The checkpoint changed; save it if resuming matters.
    CheckpointUpdated,
    /// A request failed and will be sent again after `delay`.
    Retrying {
        /// Which request.
        kind: RequestKind,
        /// Retry number, from 1.
        attempt: u32,
        /// How long until it is sent.
        delay: Duration,
        /// What went wrong.
        reason: String,
    },
    /// Box answered 202 to the commit: it will be sent again after `delay`.
    CommitPending {
        /// Commits sent so far.
        attempts: u32,
        /// How long until the next.
        delay: Duration,
    },
    /// A stored part whose answer was lost was found in the session and adopted.
    PartAdopted {
        /// The part's offset.
        offset: u64,
    },
    /// The session was aborted after a failure or a cancel.
    Aborted {
        /// Whether Box confirmed the abort.
        confirmed: bool,
    },
    /// The result is ready: call [`Machine::poll_output`].
    Finished,
}

/// A sans-IO state machine a driver runs to completion.
///
/// A machine is a value that does no I/O. A driver repeats, in this order:
/// 1. [`poll_event`](Machine::poll_event) until `None`, and [`poll_output`](Machine::poll_output):
///    `Some` ends the run;
/// 2. [`poll_read`](Machine::poll_read) until `None`, reading each range of the source and handing
///    it back with [`handle_read`](Machine::handle_read). Any order is correct; serving reads one
///    at a time, in order, each into the builder from [`part_builder`](Machine::part_builder),
///    lets each read carry the whole-file SHA-1 in the same pass as the part's;
/// 3. [`poll_transmit`](Machine::poll_transmit) until `None`, sending each request;
/// 4. waits for an answer, a read, or the instant of [`poll_timeout`](Machine::poll_timeout), and
///    passes it in with `handle_response`, `handle_transport_error`, `handle_read` or
///    `handle_timeout`.
///
/// The `Instant`s handed in must never go backwards. Spurious `handle_timeout` calls are harmless.
/// The machine bounds its own work: it offers no further read or request while its limit of parts
/// in flight is reached, so a driver that obeys it holds at most that many parts in memory.
pub trait Machine {
    /// What a successful run gives.
    type Output;

    /// The next request to send, if any may be sent at `now`.
    #[must_use]
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit>;

    /// The next range of the source to read.
    #[must_use]
    fn poll_read(&mut self) -> Option<ReadRequest>;

    /// When to call [`handle_timeout`](Self::handle_timeout) at the latest, if anything waits.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next event.
    #[must_use]
    fn poll_event(&mut self) -> Option<Event>;

    /// The result, once, when the run is over.
    #[must_use]
    fn poll_output(&mut self) -> Option<Result<Self::Output, Error>>;

    /// The answer to request `id`; its body no longer than the transmit's bound.
    fn handle_response(&mut self, id: RequestId, response: Response<Bytes>, now: Instant);

    /// Request `id` failed in the transport.
    fn handle_transport_error(&mut self, id: RequestId, error: TransportError, now: Instant);

    /// The bytes of read `id`, or why they could not be read.
    fn handle_read(&mut self, id: ReadId, data: Result<PartData, SourceError>, now: Instant);

    /// The time is now `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// A builder for the bytes of `read`, filling `buf`. Drivers that read into a
    /// [`PartBuilder`] should get it here, when the read starts: if every earlier read has been
    /// handed back, the big upload hands over its whole-file hasher, so both SHA-1 passes run on
    /// each chunk while it is in cache, in one pass, on the reading thread. Reads started while
    /// another is out get a plain builder, and the machine hashes their bytes again itself.
    fn part_builder(&mut self, read: &ReadRequest, buf: Vec<u8>) -> PartBuilder {
        let _ = read;
        PartBuilder::new(buf)
    }

    /// The state to save so a later run can resume this one, when the machine has such a state
    /// (the big upload, once its session exists). A driver saves it after each
    /// [`Event::CheckpointUpdated`] or [`Event::SessionCreated`].
    fn checkpoint(&self) -> Option<crate::upload::Checkpoint> {
        None
    }

    /// Asks the machine to stop: it sends and reads nothing more, winds down (the big upload
    /// aborts its session unless `keep_session`) and then gives [`Error::Cancelled`]. `false` when
    /// the machine cannot wind down by itself: the driver then ends the run at once, with
    /// [`Error::Cancelled`].
    fn cancel(&mut self, keep_session: bool) -> bool {
        let _ = keep_session;
        false
    }
}
