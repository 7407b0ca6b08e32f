//! Blocking (ureq) transport for [`box_upload_core`]: Box's chunked uploads from synchronous code.
//!
//! The core decides everything (what to send, retries, tokens, the part plan, the commit).
//! Everything above the wire (sources, checkpoints, options, errors, the builder, the reading
//! thread, the run of a machine) is [`box_upload_driver`]'s, shared with the async transport
//! (`box-upload-hyper`), so both behave alike. This crate adds the wire (`transport.rs`: one
//! request over a shared [`ureq::Agent`], a bounded answer) and the blocking loop
//! (`driver.rs`): each call runs a core machine on the calling thread; requests go out on worker
//! threads (as many as parts in flight, plus two, started as needed); the source is read on the
//! shared reading thread, one part at a time, in order, each chunk hashed while in cache for its
//! part and the whole file in one pass. Memory stays under about
//! `(parts_in_flight + 2) × part_size` (the parts on the wire, one read ahead, one let go).
//!
//! ```no_run
//! use box_upload_ureq::{CancelToken, Client, Source, UploadOptions, UploadRequest};
//!
//! # fn main() -> Result<(), box_upload_ureq::Error> {
//! let client = Client::builder()
//!     .developer_token("DEVELOPER_TOKEN")
//!     .parts_in_flight(4)
//!     .build()?;
//! let cancel = CancelToken::new();
//! let options = UploadOptions::new()
//!     .on_progress(|p| eprintln!("{}/{} bytes", p.bytes_acknowledged, p.total_bytes))
//!     .checkpoint_file("video.mp4.box-upload.json")
//!     .cancel_token(cancel.clone())
//!     .keep_session_on_cancel(true);
//! // A file size of 0 is taken from the file.
//! let file = client.upload_with(Source::file("video.mp4"), UploadRequest::new_file("0", "video.mp4", 0), options)?;
//! println!("uploaded file {} (sha1 {:?})", file.id, file.sha1);
//! # Ok(()) }
//! ```
//!
//! Single operations are blocking methods too
//! ([`Client::create_upload_session`], [`Client::upload_file_part_by_id`], ...), and
//! [`Client::run`] / [`Client::drive`] run any core operation or machine.
//!
//! HTTPS uses rustls with the driver's roots (the platform's, Mozilla's, the caller's CA files),
//! through an HTTP `CONNECT` proxy where the driver's rules say; plain HTTP is for loopback.
//! Each request is logged with `tracing` at debug level (kind, method, path, status, time) —
//! never headers or bodies, so never the token.

#![forbid(unsafe_code)]

mod client;
mod driver;
mod transport;

pub use box_upload_driver;
pub use box_upload_driver::exports::*;
pub use client::{Client, ClientBuilder, Ureq};
