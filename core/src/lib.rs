//! The sans-IO core of box-upload: Box's chunked-upload API as `http::Request` values to send and
//! `http::Response` values to parse, and the whole big upload as a state machine.
//!
//! Nothing here opens a socket, reads a file, starts a thread or reads a clock. A transport
//! (`box-upload-hyper`, `box-upload-ureq`, or your own) runs a [`Machine`]: it sends the requests the
//! machine asks for, reads the byte ranges it asks for, and hands back answers, bytes and the time.
//! The machines: one operation ([`Call`], from [`Client::call`]), the big upload ([`BigUpload`]),
//! and two for working on a session by hand: every part listed ([`ListAllParts`]) and a commit
//! that waits out Box's 202 answers ([`CommitAndWait`]).
//!
//! ```
//! use box_upload_core::{Client, Config, DeveloperToken, Machine, operations::GetUploadSession};
//! use std::time::Instant;
//!
//! let client = Client::new(Config::new(), DeveloperToken::new("token"));
//! let mut call = client.call(GetUploadSession::by_id("F971964745A5CD0C001BBE4E58196BFD"));
//! let now = Instant::now();
//! let transmit = call.poll_transmit(now).expect("a request to send");
//! assert_eq!(transmit.request.uri(), "https://upload.box.com/api/2.0/files/upload_sessions/F971964745A5CD0C001BBE4E58196BFD");
//! // Send it with any HTTP client; here, Box's answer is made up.
//! let answer = http::Response::builder().status(200)
//!     .body(bytes::Bytes::from_static(br#"{"id":"F971964745A5CD0C001BBE4E58196BFD","part_size":8388608,"total_parts":3}"#))
//!     .unwrap();
//! call.handle_response(transmit.id, answer, now);
//! let session = call.poll_output().expect("finished").expect("parsed");
//! assert_eq!(session.part_size, Some(8388608));
//! ```

// One module holds unsafe code: the SHA-NI kernel in `digest/lanes.rs`, behind a CPU check.
#![deny(unsafe_code)]

pub use bytes;
pub use http;

mod auth;
mod buffers;
mod call;
mod client;
mod content_range;
mod digest;
mod dispatch;
mod error;
mod file_upload;
mod machine;
pub mod models;
pub mod operations;
mod planner;
mod policy;
mod response;
mod retry;
mod session_tools;
mod upload;

pub use auth::{
    AccessToken, BoxSubject, ClientCredentials, DeveloperToken, Secret, SharedTokenSource, TokenPoll, TokenSource,
    DEFAULT_TOKEN_URL,
};
pub use buffers::PartBuffers;
pub use call::Call;
pub use client::{Client, SourceFacts};
pub use content_range::{ContentRange, ContentRangeError};
pub use digest::{DigestError, FileHasher, PartSha512, Sha1Digest, Sha512Digest};
pub use error::{
    ApiError, AuthError, Error, InputError, ProtocolError, SourceError, TransportError, TransportErrorKind,
    UntrustedHost,
};
pub use file_upload::{rfc3339, FileUpload, FileUploadOptions, OnConflict, DEFAULT_CHUNKED_FROM};
pub use machine::{
    Event, Machine, PartBuilder, PartData, Progress, ReadId, ReadRequest, RequestId, RequestKind, Transmit, HASH_CHUNK,
};
pub use operations::{SourceBody, MAX_DIRECT_UPLOAD_SIZE};
pub use planner::{PartPlan, PlanError, PlannedPart, MAX_PARTS, MIN_FILE_SIZE};
pub use policy::{
    is_loopback_host, random_jitter_seed, ClientSettings, Config, DEFAULT_API_BASE, DEFAULT_MAX_PART_SIZE,
    DEFAULT_UPLOAD_BASE, USER_AGENT_VALUE,
};
pub use response::api_error;
pub use retry::{retry_after, Jitter, RetryPolicy};
pub use session_tools::{CommitAndWait, ListAllParts};
pub use upload::{
    BigUpload, Checkpoint, DedupeStats, FileFingerprint, FingerprintError, ResumeFrom, ResumeOptions, UploadRequest,
    UploadTarget, CHECKPOINT_VERSION, CONFIRM_FIELDS, DEFAULT_PARTS_IN_FLIGHT,
};
