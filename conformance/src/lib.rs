//! Box upload API emulator, recorded fixtures and replay for box-upload.
//!
//! - [`Emulator`]: a loopback HTTP/1.1 server implementing Box's upload-session API
//!   (`/api/2.0/files/upload_sessions...`) and the Client Credentials Grant (`/oauth2/token`),
//!   with deterministic fault injection ([`Faults`]) and counters.
//! - [`fixture`]: the JSON fixture format (recorded exchanges) with load/save functions.
//! - [`recorder`]: a recording proxy that writes fixtures, with secrets redacted.
//! - [`replay`]: a loopback server that plays a fixture back and reports mismatches.

mod body;
pub mod core_replay;
pub mod emulator;
pub mod fixture;
mod multipart;
pub mod recorder;
pub mod replay;
mod serve;

pub use emulator::{
    BlockingEmulator, ConflictsShape, CounterSnapshot, EchoField, Emulator, EmulatorBuilder, EmulatorError,
    FaultAction, FaultRule, Faults, FileInfo, Op, PlanMode, RequestOutcome, RequestRecord, Trigger, DEFAULT_PART_SIZE,
    MAX_LIST_LIMIT, MAX_LIST_OFFSET, MIN_FILE_SIZE,
};

/// The workspace README's examples, compiled and run as doctests of this crate (it can see every
/// other crate of the workspace).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
