//! Core replay: drive any `box-upload-core` machine against a fixture, with no network at all.
//!
//! Each request the machine emits must match the next recorded exchange (the same rules as the
//! [server replay](crate::replay): method, path and query, the compared headers, the body; a run of
//! part uploads in any order); the recorded answer is handed back. Time is simulated: when the
//! machine only waits (a `Retry-After`, a backoff), the clock jumps to its deadline. So a fixture
//! recorded once against real Box checks, offline and in milliseconds, that code built on the core
//! still speaks the same protocol.
//!
//! ```no_run
//! use box_upload_conformance::core_replay::{replay_config, replay_machine};
//! use box_upload_conformance::fixture::Fixture;
//! use box_upload_conformance::replay::ReplayOptions;
//! use box_upload_core::{Client, DeveloperToken, PartData, UploadRequest};
//!
//! # fn demo(content: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! let fixture = Fixture::load("conformance/fixtures/emulator/upload_big_file.json")?;
//! let client = Client::new(replay_config(), DeveloperToken::new("any"));
//! let mut upload = client.big_upload(UploadRequest::new_file("0", "big.bin", content.len() as u64))?;
//! let file = replay_machine(&mut upload, fixture, ReplayOptions::default(), |offset, len| {
//!     let start = (offset as usize).min(content.len());
//!     let end = (start + len).min(content.len());
//!     Ok(PartData::new(content[start..end].to_vec()))
//! })?;
//! println!("replayed; the recorded commit returned file {}", file?.id);
//! # Ok(()) }
//! ```

use std::time::Instant;

use box_upload_core::bytes::Bytes;
use box_upload_core::{Config, Machine, PartData, SourceError};

use crate::fixture::{select_headers, Body, Fixture, ORIGIN_PLACEHOLDER, REQUEST_HEADERS};
use crate::replay::{Matcher, Mismatch, ReplayError, ReplayOptions, Seen};

/// The origin `{{origin}}` stands for in a core replay.
pub const REPLAY_ORIGIN: &str = "http://replay.localhost";

/// The most requests one replay answers: a machine that asks for more is stuck in a loop.
const MAX_STEPS: usize = 1_000_000;

/// A [`Config`] whose upload base is [`REPLAY_ORIGIN`]`/api`, the base the fixtures' answers use.
#[must_use]
pub fn replay_config() -> Config {
    match Config::new().with_upload_base(&format!("{REPLAY_ORIGIN}/api")) {
        Ok(config) => config,
        // The constant is a valid URL; keep the default rather than panic.
        Err(_) => Config::new(),
    }
}

/// Runs `machine` to the end against `fixture`, reading the source through `read(offset, len)`.
/// Gives the machine's own result when every request matched and every exchange was used, and
/// [`ReplayError`] otherwise.
pub fn replay_machine<M: Machine>(
    machine: &mut M,
    fixture: Fixture,
    options: ReplayOptions,
    mut read: impl FnMut(u64, usize) -> Result<PartData, SourceError>,
) -> Result<Result<M::Output, box_upload_core::Error>, ReplayError> {
    let mut matcher = Matcher::new(fixture, options);
    let mut now = Instant::now();
    for _ in 0..MAX_STEPS {
        while machine.poll_event().is_some() {}
        if let Some(output) = machine.poll_output() {
            matcher.finish()?;
            return Ok(output);
        }
        if let Some(r) = machine.poll_read() {
            machine.handle_read(r.id, read(r.offset, r.len), now);
            continue;
        }
        if let Some(transmit) = machine.poll_transmit(now) {
            let (parts, body) = transmit.request.into_parts();
            let uri = parts.uri.path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
            let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let mut body = Body::from_bytes(content_type, &body);
            body.replace_text(REPLAY_ORIGIN, ORIGIN_PLACEHOLDER);
            let headers = select_headers(&parts.headers, REQUEST_HEADERS);
            let seen = Seen { method: parts.method.as_str().to_owned(), uri, headers, body };
            let index = matcher.pick(&seen).map_err(|m| ReplayError::Mismatches(vec![m]))?;
            let recorded = &matcher.fixture.exchanges[index].response;
            let mut response = http::Response::new(Bytes::from(recorded.body.to_bytes(REPLAY_ORIGIN)));
            *response.status_mut() =
                http::StatusCode::from_u16(recorded.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in &recorded.headers {
                let value = value.replace(ORIGIN_PLACEHOLDER, REPLAY_ORIGIN);
                if let (Ok(name), Ok(value)) =
                    (http::HeaderName::try_from(name.as_str()), http::HeaderValue::from_str(&value))
                {
                    response.headers_mut().insert(name, value);
                }
            }
            machine.handle_response(transmit.id, response, now);
            continue;
        }
        match machine.poll_timeout() {
            Some(deadline) => {
                now = now.max(deadline);
                machine.handle_timeout(now);
            }
            None => {
                return Err(ReplayError::Mismatches(vec![Mismatch {
                    index: None,
                    request: "(none)".into(),
                    differences: vec!["the machine stopped with no request, read, deadline or result".into()],
                }]))
            }
        }
    }
    Err(ReplayError::Mismatches(vec![Mismatch {
        index: None,
        request: "(none)".into(),
        differences: vec![format!("the machine did not finish within {MAX_STEPS} steps")],
    }]))
}
