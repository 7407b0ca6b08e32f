//! What the caller asks of a big upload.

use super::{Settings, UploadTarget};
use crate::error::InputError;
use crate::operations::MAX_LIST_LIMIT;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// Parts in flight when the caller does not say.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;

/// A big upload to start: where the file goes, its size, and how to run.
#[derive(Clone, Debug)]
pub struct UploadRequest {
    /// Where the file goes.
    pub target: UploadTarget,
    /// The source's size in bytes.
    pub file_size: u64,
    /// Parts read and on the wire at once (default 4); bounds memory to this many parts, each at
    /// most [`Config::max_part_size`](crate::Config::max_part_size).
    pub parts_in_flight: usize,
    /// `If-Match` for the commit (new versions).
    pub if_match: Option<String>,
    /// `If-None-Match` for the commit.
    pub if_none_match: Option<String>,
    /// Leave the session open after a failure, for a resume (default: abort it).
    pub keep_session_on_failure: bool,
    /// A fingerprint of the source, stored in the checkpoint.
    pub source_fingerprint: Option<String>,
    /// Parts per list page (default and most 1000).
    pub list_page_size: u64,
    /// Headers added to every request.
    pub headers: HeaderMap,
    /// File attributes sent with the commit (e.g. `content_modified_at`).
    pub commit_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Deduplicate (default off): plan the parts by their SHA-512 and send only those Box does
    /// not hold (see [`BigUpload`](crate::BigUpload)).
    pub dedupe: bool,
    /// List the session's parts and check each against ours before the commit, always (default
    /// off: only when some part Box holds was not learnt from its own answer, as on a resume,
    /// after a lost answer or with deduplication; otherwise each part's answer echoed our offset,
    /// size and SHA-1, and Box checks the commit's list against what it holds). One round trip
    /// per 1000 parts.
    pub list_before_commit: bool,
    /// The source is a stream that can be read only once, in order (default off: a file or bytes).
    /// A deduplicated upload then reads no part ahead of the bound of parts in flight (see
    /// [`BigUpload`](crate::BigUpload)): a part read ahead keeps only its digests, and a miss
    /// among them would have to be read again. [`Client::start_upload`](crate::Client::start_upload)
    /// sets it from [`SourceFacts::read_once`](crate::SourceFacts::read_once).
    pub source_read_once: bool,
}

impl UploadRequest {
    /// A new file called `file_name` in `folder_id`.
    pub fn new_file(folder_id: impl Into<String>, file_name: impl Into<String>, file_size: u64) -> Self {
        Self::with_target(UploadTarget::NewFile { folder_id: folder_id.into(), file_name: file_name.into() }, file_size)
    }

    /// A new version of `file_id`.
    pub fn new_version(file_id: impl Into<String>, file_size: u64) -> Self {
        Self::with_target(UploadTarget::NewVersion { file_id: file_id.into(), file_name: None }, file_size)
    }

    /// An upload to `target`.
    pub fn with_target(target: UploadTarget, file_size: u64) -> Self {
        Self {
            target,
            file_size,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            if_match: None,
            if_none_match: None,
            keep_session_on_failure: false,
            source_fingerprint: None,
            list_page_size: MAX_LIST_LIMIT,
            headers: HeaderMap::new(),
            commit_attributes: None,
            dedupe: false,
            list_before_commit: false,
            source_read_once: false,
        }
    }

    /// Sends file attributes with the commit, such as
    /// `{"content_modified_at": "2017-04-08T00:58:08Z"}`.
    #[must_use]
    pub fn commit_attributes(mut self, attributes: serde_json::Map<String, serde_json::Value>) -> Self {
        self.commit_attributes = Some(attributes);
        self
    }

    /// Sets the parts in flight.
    #[must_use]
    pub fn parts_in_flight(mut self, n: usize) -> Self {
        self.parts_in_flight = n;
        self
    }

    /// Commits only if the file's etag is `etag`.
    #[must_use]
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// Commits only if the file's etag is not `etag`.
    #[must_use]
    pub fn if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.if_none_match = Some(etag.into());
        self
    }

    /// Keeps the session after a failure.
    #[must_use]
    pub fn keep_session_on_failure(mut self, keep: bool) -> Self {
        self.keep_session_on_failure = keep;
        self
    }

    /// Records a fingerprint of the source in the checkpoint.
    #[must_use]
    pub fn source_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.source_fingerprint = Some(fingerprint.into());
        self
    }

    /// Deduplicates: the reading pass also computes each part's SHA-512, the session's plan
    /// says which parts Box holds already, and only the others are sent (see
    /// [`BigUpload`](crate::BigUpload) for the order and the fallback).
    #[must_use]
    pub fn dedupe(mut self, yes: bool) -> Self {
        self.dedupe = yes;
        self
    }

    /// Lists the session's parts before the commit even when every part's answer echoed it (see
    /// [`list_before_commit`](Self::list_before_commit)).
    #[must_use]
    pub fn list_before_commit(mut self, yes: bool) -> Self {
        self.list_before_commit = yes;
        self
    }

    /// Says the source is a stream that can be read only once (see
    /// [`source_read_once`](Self::source_read_once)).
    #[must_use]
    pub fn source_read_once(mut self, yes: bool) -> Self {
        self.source_read_once = yes;
        self
    }

    /// Adds a header to every request.
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    pub(super) fn into_settings(self) -> Result<Settings, InputError> {
        if self.parts_in_flight == 0 {
            return Err(InputError::ZeroParallelism);
        }
        if self.list_page_size > MAX_LIST_LIMIT {
            return Err(InputError::LimitTooLarge(self.list_page_size));
        }
        Ok(Settings {
            target: self.target,
            file_size: self.file_size,
            parts_in_flight: self.parts_in_flight,
            if_match: self.if_match,
            if_none_match: self.if_none_match,
            keep_session_on_failure: self.keep_session_on_failure,
            source_fingerprint: self.source_fingerprint,
            list_page_size: self.list_page_size,
            headers: self.headers,
            commit_attributes: self.commit_attributes,
            dedupe: self.dedupe,
            list_before_commit: self.list_before_commit,
            read_ahead: self.dedupe && !self.source_read_once,
        })
    }
}

/// How to run a resumed upload.
#[derive(Clone, Debug)]
pub struct ResumeOptions {
    /// Parts in flight (default 4).
    pub parts_in_flight: usize,
    /// Leave the session open after a failure (default: abort it).
    pub keep_session_on_failure: bool,
    /// The source's fingerprint now; refused if the checkpoint holds another.
    pub source_fingerprint: Option<String>,
    /// The source's size now; refused if the checkpoint holds another.
    pub file_size: Option<u64>,
    /// Parts per list page (default and most 1000).
    pub list_page_size: u64,
    /// Headers added to every request.
    pub headers: HeaderMap,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        Self {
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            keep_session_on_failure: false,
            source_fingerprint: None,
            file_size: None,
            list_page_size: MAX_LIST_LIMIT,
            headers: HeaderMap::new(),
        }
    }
}
