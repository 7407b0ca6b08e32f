//! Every recorded fixture under `conformance/fixtures` replayed through this transport: each
//! recorded request is turned into the matching core operation, sent with this client to the
//! conformance replay server, and must match the recording; the answer must be the recorded one.
//!
//! Requests the core's typed operations refuse to build (a file size under 20,000,000, a name
//! with a slash, a part whose `Digest` is deliberately wrong) are sent as recorded through a raw
//! [`Operation`] instead: still through this client (token, retries, transport), and still checked
//! by the replay server.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::fixture::{Body, Exchange, Fixture};
use box_upload_conformance::replay::{ReplayOptions, ReplayServer};
use box_upload_ureq::core::bytes::Bytes;
use box_upload_ureq::core::models::UploadPart;
use box_upload_ureq::core::operations::{CommitResponse, Operation};
use box_upload_ureq::core::{self as box_upload_core, Config, RequestKind, Sha1Digest};
use box_upload_ureq::{Client, Error};
use std::path::PathBuf;

const SIZE: usize = 20_000_000;

/// The emulator fixtures' content: `conformance/tests/common::data(SIZE, 99)` (xorshift64).
fn emulator_content() -> Vec<u8> {
    let mut out = vec![0u8; SIZE];
    let mut x = 99u64.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// The official Python SDK fixtures' content: Python's `random.Random(7).randbytes(SIZE)`
/// (MT19937 seeded by `init_by_array([7])`; 32-bit outputs little-endian, in order).
fn python_content() -> Vec<u8> {
    let mut mt = Mt::new(&[7]);
    let mut out = Vec::with_capacity(SIZE);
    while out.len() < SIZE {
        out.extend_from_slice(&mt.next_u32().to_le_bytes());
    }
    out.truncate(SIZE);
    out
}

struct Mt {
    state: [u32; 624],
    index: usize,
}

impl Mt {
    fn new(key: &[u32]) -> Self {
        let mut state = [0u32; 624];
        state[0] = 19_650_218;
        for i in 1..624 {
            state[i] = 1_812_433_253u32.wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30)).wrapping_add(i as u32);
        }
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            state[i] = (state[i] ^ (state[i - 1] ^ (state[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                state[0] = state[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            state[i] =
                (state[i] ^ (state[i - 1] ^ (state[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                state[0] = state[623];
                i = 1;
            }
        }
        state[0] = 0x8000_0000;
        Self { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(k + 397) % 624] ^ (y >> 1);
                if y & 1 == 1 {
                    v ^= 0x9908_b0df;
                }
                self.state[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures")
}

/// What running one recorded request through the client gave.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Sent; the client saw this status.
    Status(u16),
    /// The core refused to build the request.
    RefusedLocally(String),
}

fn status_of<T>(result: Result<T, Error>, ok: u16) -> Outcome {
    match result {
        Ok(_) => Outcome::Status(ok),
        Err(e) => match e.core() {
            Some(box_upload_core::Error::Api(api)) => Outcome::Status(api.status),
            Some(box_upload_core::Error::Auth(box_upload_core::AuthError::Unauthorized(api))) => {
                Outcome::Status(api.status)
            }
            Some(box_upload_core::Error::Input(i)) => Outcome::RefusedLocally(i.to_string()),
            _ => panic!("unexpected error: {e}"),
        },
    }
}

fn json_body(exchange: &Exchange) -> serde_json::Value {
    match &exchange.request.body {
        Body::Json(v) => v.clone(),
        other => panic!("expected a JSON body, got {other:?}"),
    }
}

fn header<'a>(exchange: &'a Exchange, name: &str) -> Option<&'a str> {
    exchange.request.headers.get(name).map(String::as_str)
}

/// Sends the request of `exchange` with the matching operation of `client`.
fn play_one(client: &Client, exchange: &Exchange, content: &[u8]) -> Outcome {
    let req = &exchange.request;
    let (path, query) = req.uri.split_once('?').unwrap_or((&req.uri, ""));
    let rest = path.strip_prefix("/api/2.0/files/").unwrap_or_else(|| panic!("unexpected path {path}"));
    let segments: Vec<&str> = rest.split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["upload_sessions"]) => {
            let b = json_body(exchange);
            status_of(
                client.create_upload_session(
                    b["folder_id"].as_str().unwrap(),
                    b["file_name"].as_str().unwrap(),
                    b["file_size"].as_u64().unwrap(),
                ),
                201,
            )
        }
        ("POST", [file_id, "upload_sessions"]) => {
            let b = json_body(exchange);
            let name = b["file_name"].as_str().map(str::to_owned);
            status_of(client.create_upload_session_for_file(*file_id, b["file_size"].as_u64().unwrap(), name), 201)
        }
        ("GET", ["upload_sessions", id]) => status_of(client.get_upload_session_by_id(*id), 200),
        ("DELETE", ["upload_sessions", id]) => status_of(client.delete_upload_session_by_id(*id), 204),
        ("GET", ["upload_sessions", id, "parts"]) => {
            let mut offset = None;
            let mut limit = None;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap();
                match k {
                    "offset" => offset = Some(v.parse().unwrap()),
                    "limit" => limit = Some(v.parse().unwrap()),
                    _ => panic!("unexpected query {pair}"),
                }
            }
            status_of(client.list_upload_session_parts_by_id(*id, offset, limit), 200)
        }
        ("PUT", ["upload_sessions", id]) => {
            let range = header(exchange, "content-range").unwrap();
            let (span, total) = range.strip_prefix("bytes ").unwrap().split_once('/').unwrap();
            let (first, last) = span.split_once('-').unwrap();
            let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
            let bytes = content[first..=last].to_vec();
            let ours = Sha1Digest::of(&bytes);
            if header(exchange, "digest") != Some(ours.header_value().as_str()) {
                return Outcome::RefusedLocally("the recorded Digest is not the part's SHA-1".into());
            }
            status_of(client.upload_file_part_by_id(*id, first as u64, total.parse().unwrap(), bytes), 200)
        }
        ("POST", ["upload_sessions", id, "commit"]) => {
            let b = json_body(exchange);
            let parts: Vec<UploadPart> = serde_json::from_value(b["parts"].clone()).unwrap();
            let digest = Sha1Digest::parse_header(header(exchange, "digest").unwrap()).unwrap();
            let if_match = header(exchange, "if-match").map(str::to_owned);
            let if_none_match = header(exchange, "if-none-match").map(str::to_owned);
            match client.commit_upload_session_by_id(*id, parts, digest, if_match, if_none_match) {
                Ok(CommitResponse::NotReady { .. }) => Outcome::Status(202),
                other => status_of(other, 201),
            }
        }
        (method, _) => panic!("no operation for {method} {path}"),
    }
}

/// A recorded request sent as it was, answering its status.
struct Raw {
    request: http::Request<Bytes>,
}

impl Raw {
    fn new(exchange: &Exchange, origin: &str, content: &[u8]) -> Self {
        let req = &exchange.request;
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(format!("{origin}{}", req.uri));
        for name in ["content-type", "digest", "content-range", "if-match", "if-none-match"] {
            if let Some(v) = req.headers.get(name) {
                builder = builder.header(name, v);
            }
        }
        let body = match &req.body {
            Body::Empty => Bytes::new(),
            Body::Json(v) => Bytes::from(serde_json::to_vec(v).unwrap()),
            Body::Binary { len, .. } => {
                let range = header(exchange, "content-range").unwrap();
                let first: usize = range["bytes ".len()..].split('-').next().unwrap().parse().unwrap();
                Bytes::copy_from_slice(&content[first..first + *len as usize])
            }
            other => panic!("cannot send {other:?}"),
        };
        Self { request: builder.body(body).unwrap() }
    }
}

impl Operation for Raw {
    type Output = u16;

    fn kind(&self) -> RequestKind {
        match *self.request.method() {
            http::Method::PUT => RequestKind::UploadPart,
            _ => RequestKind::CreateSession,
        }
    }

    fn request(&self, _config: &Config) -> Result<http::Request<Bytes>, box_upload_core::Error> {
        let mut r = http::Request::new(self.request.body().clone());
        *r.method_mut() = self.request.method().clone();
        *r.uri_mut() = self.request.uri().clone();
        *r.headers_mut() = self.request.headers().clone();
        Ok(r)
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<u16, box_upload_core::Error> {
        Ok(response.status().as_u16())
    }
}

fn replay(fixture: &Fixture, options: ReplayOptions, content: &[u8]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(ReplayServer::start_with(fixture.clone(), options)).unwrap();
    let client = Client::builder()
        .upload_base(server.upload_base_url())
        .developer_token("test-token")
        .retry_policy(common::fast_retries())
        .build()
        .unwrap();
    let exchanges = &fixture.exchanges;
    let origin = server.base_url();
    let mut raw = 0;
    let mut i = 0;
    while i < exchanges.len() {
        let exchange = &exchanges[i];
        // The core retries 429 and 5xx by itself: the recorded retry is part of the same call.
        let mut expected = exchange.response.status;
        let mut last = i;
        while (expected == 429 || expected >= 500)
            && exchanges
                .get(last + 1)
                .is_some_and(|n| n.request.method == exchange.request.method && n.request.uri == exchange.request.uri)
        {
            last += 1;
            expected = exchanges[last].response.status;
        }
        let mut outcome = play_one(&client, exchange, content);
        if let Outcome::RefusedLocally(_) = outcome {
            raw += 1;
            outcome = Outcome::Status(client.run(Raw::new(exchange, &origin, content)).unwrap());
        }
        match outcome {
            Outcome::Status(got) if got == expected => {}
            Outcome::Status(got) => {
                return Err(format!(
                    "exchange {i} ({} {}): answer {got}, recorded {expected}; mismatches: {:?}",
                    exchange.request.method,
                    exchange.request.uri,
                    server.mismatches()
                ))
            }
            Outcome::RefusedLocally(_) => unreachable!(),
        }
        i = last + 1;
    }
    rt.block_on(server.finish()).map_err(|e| format!("replay: {e} ({raw} request(s) sent raw)"))
}

fn replay_dir(name: &str, options: impl Fn() -> ReplayOptions, content: &[u8]) -> usize {
    let fixtures = Fixture::load_dir(fixtures_dir().join(name)).unwrap();
    assert!(!fixtures.is_empty());
    let mut failures = Vec::new();
    for fixture in &fixtures {
        if let Err(e) = replay(fixture, options(), content) {
            failures.push(format!("{}: {e}", fixture.name));
        }
    }
    assert!(failures.is_empty(), "{} fixture(s) failed:\n{}", failures.len(), failures.join("\n"));
    fixtures.len()
}

#[test]
fn content_generators_reproduce_the_recorded_parts() {
    // First part of upload_big_file in each directory.
    let first = |dir: &str| {
        let fixture = Fixture::load(fixtures_dir().join(dir).join("upload_big_file.json")).unwrap();
        match &fixture.exchanges[1].request.body {
            Body::Binary { len, sha1 } => (*len as usize, sha1.clone()),
            other => panic!("{other:?}"),
        }
    };
    let (len, sha1) = first("emulator");
    assert_eq!(common::sha1_hex(&emulator_content()[..len]), sha1);
    let (len, sha1) = first("official-python");
    assert_eq!(common::sha1_hex(&python_content()[..len]), sha1);
}

#[test]
fn every_emulator_fixture_replays_through_this_transport() {
    let n = replay_dir("emulator", ReplayOptions::default, &emulator_content());
    assert!(n >= 22, "{n} fixtures");
}

#[test]
fn every_official_python_fixture_replays_through_this_transport() {
    // The Python SDK sends `Content-Type: application/json` on bodiless GET and DELETE requests;
    // the core does not, so content-type is not compared here. Bodies (JSON by value, parts by
    // length and SHA-1), Digest, Content-Range, If-Match and If-None-Match still are.
    let options = || {
        let mut o = ReplayOptions::default();
        o.compare_headers.retain(|h| h != "content-type");
        o
    };
    let n = replay_dir("official-python", options, &python_content());
    assert!(n >= 13, "{n} fixtures");
}
