//! Async (tokio + hyper) transport for [`box_upload_core`]: Box's chunked-upload API over a pooled
//! keep-alive HTTP/1.1 client, HTTPS through rustls (ring; the platform's, Mozilla's and the
//! caller's roots), through an HTTP `CONNECT` proxy where the driver's rules say, plain HTTP for
//! loopback.
//!
//! The transport only moves bytes. The core decides everything else: which request comes next,
//! the token, retries and backoff, what an answer means. Everything above the wire (sources,
//! checkpoints, options, errors, the builder, the reading thread, the run of a machine) is
//! [`box_upload_driver`]'s, shared with the blocking transport (`box-upload-ureq`), so both
//! behave alike. This crate adds the wire (`transport.rs`: send one request, read a bounded
//! answer) and the async loop (`driver.rs`): requests run as tasks on the connection pool; the
//! source is read on the shared reading thread one part at a time, in order, each chunk hashed
//! while in cache for its part and the whole file in one pass; the loop sleeps until the
//! machine's next deadline.
//!
//! - [`Client::upload`] / [`Client::upload_with`]: the whole big upload from a [`Source`]
//!   (a file, a stream, or bytes), with progress, an atomic checkpoint file and cancellation
//!   ([`UploadOptions`]); [`Client::resume`] continues from a checkpoint.
//! - The single operations (`create_upload_session`, `upload_file_part_by_id`, ..., and
//!   `get_file`, `preflight_file_upload` on the API host), and
//!   [`Client::run`] for any [`Operation`](box_upload_core::operations::Operation).
//!
//! Memory stays under about `(parts_in_flight + 2) × part_size` whatever the file size (the parts
//! on the wire, one read ahead, one being let go): the core asks for no more reads while it holds
//! those, and parts are never copied on the way to the socket.
//!
//! ```no_run
//! use box_upload_hyper::{Client, Source, UploadOptions, UploadRequest};
//!
//! # async fn demo() -> Result<(), box_upload_hyper::Error> {
//! let client = Client::builder()
//!     .developer_token(std::env::var("BOX_TOKEN").unwrap_or_default())
//!     .parts_in_flight(4)
//!     .build()?;
//! // A file size of 0 is taken from the file.
//! let request = UploadRequest::new_file("0", "video.mp4", 0);
//! let options = UploadOptions::new()
//!     .checkpoint_file("video.mp4.box-checkpoint")
//!     .on_progress(|p| eprintln!("{}/{} bytes", p.bytes_acknowledged, p.total_bytes));
//! let file = client.upload_with(Source::file("video.mp4"), request, options).await?;
//! println!("uploaded file {} (sha1 {:?})", file.id, file.sha1);
//! # Ok(()) }
//! ```
//!
//! Requests are traced with [`tracing`] (a `box_request` span with method, kind and URI path; an
//! event with status and elapsed time). Headers and bodies are never logged, so neither is the
//! token.

#![forbid(unsafe_code)]

mod client;
mod driver;
mod transport;

pub use box_upload_driver;
pub use box_upload_driver::exports::*;
pub use client::{Client, ClientBuilder, Hyper};
