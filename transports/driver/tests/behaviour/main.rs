//! The behaviour suite of the transports, written once: every test body is a plain `fn(Kind)`
//! run through `box-upload-hyper` (async) and `box-upload-ureq` (blocking) alike, with the same
//! client methods, the same builder settings and the same `Error`, against the conformance
//! emulator or the recorded fixtures. A difference between the transports is a failure here.
//!
//! `cargo test -p box-upload-driver --test behaviour` runs it all; `-- hyper::` or `-- ureq::`
//! one transport; `-- cancel::` one topic. The topics:
//!
//! - [`round_trips`]: new file, new version with If-Match, file, stream and bytes sources,
//!   `drive_with` a `BigUpload` from `core().start_upload`, `run`/`drive`, input refused.
//! - [`operations`]: the single operations, by id and by `session_endpoints` URL.
//! - [`faults`]: the emulator's injected faults and retries, Client Credentials.
//! - [`big_sessions`]: sessions of 2,000 and 10,000 parts losing part answers, list pages of 1,
//!   2 and 1000, 1 to 8 in flight; the cap on `part_size`.
//! - [`cancel`]: cancel (abort or keep the session), resume from the checkpoint, checkpoints
//!   that cannot be written, a checkpoint in use, resume refused for another file.
//! - [`file_changes`]: a file that grows, whose mtime changes, or that is rewritten in place with
//!   its mtime restored, during the upload (also after its last read, before the commit).
//! - [`direct_upload`]: one `upload` for every size (0 B to 60 MB; direct below the cutoff,
//!   a session from it after the preflight check), conflicts (fail, version, skip), the file's
//!   timestamps, the cutoff setting, a retried direct upload, a file changed before its send.
//! - [`commit_confirm`]: a commit whose answer is lost, confirmed from the file on the API host
//!   (or reported as of unknown outcome); `get_file` and `preflight_file_upload`.
//! - [`events`]: the event and progress callbacks.
//! - [`plan`]: the plan of an upload session, by id and URL; deduplicated new versions with hits
//!   added to the session, hits not added (the fallback) and no plan at all.
//! - [`expect_continue`]: a part waits for `100 Continue`; an early final answer is read and the
//!   body never sent; a server that ignores `Expect` gets it after the wait.
//! - [`settings`]: the `User-Agent` sent, `trusted_host` for `session_endpoints` elsewhere.
//! - [`transport`]: timeouts, refused connections, redirects, bounded answers, the builder, logs.
//! - [`replay`]: every recorded fixture replayed through the transport.
//! - [`network`]: TLS to the emulator's CA, certificate errors, a `CONNECT` proxy
//!   ([`connect_proxy`]), proxy credentials, loopback never proxied, plain http refused.
#![allow(clippy::unwrap_used, missing_docs)]

mod harness;

mod big_sessions;
mod cancel;
mod commit_confirm;
mod connect_proxy;
mod direct_upload;
mod events;
mod expect_continue;
mod faults;
#[cfg(unix)]
mod file_changes;
mod network;
mod operations;
mod plan;
mod replay;
mod round_trips;
mod settings;
mod transport;

/// Both transports name the same shared types: a value of one crate's type is a value of the
/// other's (this only has to compile).
#[test]
fn the_transports_share_their_types() {
    fn same<T>(t: T) -> T {
        t
    }
    let _: box_upload_ureq::Source = same::<box_upload_hyper::Source>(box_upload_driver::Source::bytes(vec![1]));
    let _: box_upload_ureq::UploadOptions =
        same::<box_upload_hyper::UploadOptions>(box_upload_driver::UploadOptions::new());
    let _: box_upload_ureq::CancelToken = same::<box_upload_hyper::CancelToken>(box_upload_driver::CancelToken::new());
    let _: Option<box_upload_ureq::Error> = same::<Option<box_upload_hyper::Error>>(None::<box_upload_driver::Error>);
    let _: box_upload_ureq::ClientBuilder = box_upload_driver::ClientBuilder::<box_upload_ureq::Ureq>::new();
    let _: box_upload_hyper::ClientBuilder = box_upload_driver::ClientBuilder::<box_upload_hyper::Hyper>::new();
}
