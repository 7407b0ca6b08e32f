//! Blocking (ureq) transport for [`box_upload_core`]: Box's chunked uploads from synchronous code.
//!
//! The core decides everything (what to send, retries, tokens, the part plan, the commit); this
//! crate only moves bytes. A [`Client`] holds the core's client and one [`ureq::Agent`] whose
//! connection pool every request shares. Each call runs a core machine on the calling thread;
//! requests go out on worker threads (as many as parts in flight, plus one), and the source is read
//! on one more thread, one part at a time, in order, each chunk hashed while in cache for its part
//! and the whole file in one pass, so the loop stays free while parts are on the wire.
//! Memory stays under about `(parts_in_flight + 1) × part_size`.
//!
//! ```no_run
//! use box_upload_ureq::{CancelFlag, Client, Source, UploadOptions, UploadRequest};
//!
//! # fn main() -> Result<(), box_upload_ureq::Error> {
//! let client = Client::builder()
//!     .developer_token("DEVELOPER_TOKEN")
//!     .parts_in_flight(4)
//!     .build()?;
//! let source = Source::file("video.mp4")?;
//! let size = source.len().unwrap_or_default();
//! let cancel = CancelFlag::new();
//! let options = UploadOptions::new()
//!     .on_progress(|p| eprintln!("{}/{} bytes", p.bytes_acknowledged, p.total_bytes))
//!     .checkpoint_file("video.mp4.box-upload.json")
//!     .cancel_flag(cancel.clone())
//!     .keep_session_on_cancel(true);
//! let file = client.upload_with(source, UploadRequest::new_file("0", "video.mp4", size), options)?;
//! println!("uploaded file {} (sha1 {:?})", file.id, file.sha1);
//! # Ok(()) }
//! ```
//!
//! Single operations are blocking methods too
//! ([`Client::create_upload_session`], [`Client::upload_file_part_by_id`], ...), and
//! [`Client::run`] / [`Client::drive`] run any core operation or machine.
//!
//! HTTPS uses rustls with the webpki roots; plain HTTP is for loopback emulators. Each request is
//! logged with `tracing` at debug level (kind, method, path, status, time) — never headers or
//! bodies, so never the token.

#![forbid(unsafe_code)]

mod client;
mod driver;
mod error;
mod source;
mod transport;
mod upload;

pub use box_upload_core;
pub use box_upload_core::models::FileFull;
pub use box_upload_core::ResumeFrom;
pub use box_upload_core::{
    BoxSubject, Checkpoint, ClientCredentials, Event, Progress, ResumeOptions, RetryPolicy, UploadRequest,
};
pub use client::{Client, ClientBuilder};
pub use error::Error;
pub use source::Source;
pub use upload::{load_checkpoint, save_checkpoint, CancelFlag, UploadOptions};
