//! What every box-upload transport shares above the wire, written once: the [`Error`] type, the
//! [`Source`]s (with one strict change check), checkpoint files, [`UploadOptions`] and the
//! [`CancelToken`], the [`ClientBuilder`] and its [`Settings`], the reading thread, and one
//! [`Run`] of a core machine that a transport's loop steps through. A transport
//! (`box-upload-hyper`, `box-upload-ureq`) keeps only its wire (send a request, read a bounded
//! answer), its loop around [`Run::poll`], and a thin client whose methods come from
//! [`client_surface!`]. What a user can observe is therefore the same in every transport.
//!
//! No HTTP library here: std, the core, and `http` types.
//!
//! A transport's loop, in outline (a blocking one; `send` stands for the wire):
//!
//! ```
//! use box_upload_driver::{Completion, Error, Notify, Run, Step, UploadOptions};
//! use box_upload_driver::core::{Machine, Transmit, TransportError};
//! use std::sync::{mpsc, Arc};
//! use std::time::Instant;
//!
//! fn drive<M: Machine>(
//!     machine: &mut M,
//!     send: impl Fn(Transmit) -> Result<http::Response<bytes::Bytes>, TransportError>,
//! ) -> Result<M::Output, Error> {
//!     let (tx, rx) = mpsc::channel();
//!     let notify: Notify = Arc::new(move |c| { let _ = tx.send(c); });
//!     let mut run = Run::new(machine, None, UploadOptions::new(), notify)?;
//!     loop {
//!         match run.poll(Instant::now()) {
//!             Step::Send(t) => {
//!                 let id = t.id;
//!                 let answer = send(t);
//!                 run.complete(Completion::Answer(id, answer), Instant::now());
//!             }
//!             Step::Save(write) => run.saved(write.write()),
//!             Step::Wait(Some(at)) => {
//!                 if let Ok(c) = rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
//!                     run.complete(c, Instant::now());
//!                 }
//!             }
//!             Step::Wait(None) => match rx.recv() {
//!                 Ok(c) => run.complete(c, Instant::now()),
//!                 Err(_) => return Err(Error::Internal("nothing left to wait for".into())),
//!             },
//!             Step::Done(result) => return result,
//!         }
//!     }
//! }
//! ```

#![forbid(unsafe_code)]

mod body;
mod checkpoint;
mod error;
mod network;
mod options;
mod reader;
mod run;
mod settings;
mod source;
mod surface;

pub use body::{BodyReader, SourceReader};
pub use box_upload_core as core;
pub use bytes;
pub use checkpoint::{load_checkpoint, save_checkpoint, CheckpointWrite};
pub use error::Error;
pub use network::{
    ca_file, certificate_refused, deadline_passed, find_cause, printable, proxy_failed, root_certificates,
    tls_provider, NoProxy, Proxy, ProxyRules, ProxySetting, DEFAULT_PROXY_PORT,
};
pub use options::{CancelToken, UploadOptions};
pub use run::{Completion, Notify, Run, Step};
pub use settings::{
    ClientBuilder, Settings, Wire, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_TRANSFER_RATE,
    EXPECT_CONTINUE_FROM, EXPECT_CONTINUE_WAIT,
};
pub use source::{OpenSource, Source};
pub use surface::{expect_continue, open_file_upload, open_resume, open_source, open_upload};

/// What each transport's crate root re-exports, the same in all: the core, its models and
/// operations, the types a caller names, and this crate's shared ones. A transport says
/// `pub use box_upload_driver::exports::*;`.
pub mod exports {
    pub use crate::{
        load_checkpoint, save_checkpoint, CancelToken, Error, ProxySetting, Source, UploadOptions,
        DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    };
    pub use box_upload_core as core;
    pub use box_upload_core::models;
    pub use box_upload_core::operations;
    pub use box_upload_core::{
        BoxSubject, Checkpoint, ClientCredentials, DeveloperToken, Event, Machine, Progress, ResumeFrom, ResumeOptions,
        RetryPolicy, Secret, Sha1Digest, SourceError, TokenSource, UploadRequest,
    };
}
