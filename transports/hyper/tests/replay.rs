//! Every recorded fixture (conformance/fixtures/{emulator,official-python}) replayed through this
//! transport: each recorded request is issued again with the same operation and the same inputs,
//! and the replay server checks it is byte-for-byte the recorded one (method, URI, compared
//! headers, body) and that every exchange was consumed.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::fixture::{Body, Exchange, Fixture};
use box_upload_conformance::replay::{ReplayOptions, ReplayServer};
use box_upload_hyper::core::{AuthError, Config, Error as CoreError};
use box_upload_hyper::models::UploadPart;
use box_upload_hyper::operations::{CommitResponse, Operation};
use box_upload_hyper::{Client, Error, Sha1Digest, Source, UploadRequest};
use bytes::Bytes;
use std::path::PathBuf;

const SIZE: usize = 20_000_000;

fn fixtures(dir: &str) -> Vec<Fixture> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures").join(dir);
    let mut all = Fixture::load_dir(path).unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!all.is_empty());
    all
}

/// The content the emulator fixtures were recorded with (conformance/tests/common `data(SIZE, 99)`).
fn emulator_content() -> Vec<u8> {
    common::bytes(SIZE as u64, 99)
}

/// The content the official Python SDK run uploaded: `random.Random(7).randbytes(20_000_000)`,
/// i.e. MT19937 seeded by `init_by_array([7])`, 32-bit words little-endian.
fn python_content() -> Vec<u8> {
    let mut mt = Mt19937::by_array(&[7]);
    let mut out = Vec::with_capacity(SIZE);
    while out.len() < SIZE {
        out.extend_from_slice(&mt.next_u32().to_le_bytes());
    }
    out.truncate(SIZE);
    out
}

struct Mt19937 {
    mt: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn by_array(key: &[u32]) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = 19_650_218;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Self { mt, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// A request sent exactly as recorded, for the one the operations refuse to build on purpose
/// (a part whose `Digest` does not match its bytes). Its output is the status.
struct Verbatim {
    request: http::Request<Bytes>,
}

impl Operation for Verbatim {
    type Output = u16;

    fn kind(&self) -> box_upload_hyper::core::RequestKind {
        box_upload_hyper::core::RequestKind::UploadPart
    }

    fn request(&self, _config: &Config) -> Result<http::Request<Bytes>, CoreError> {
        let mut r = http::Request::new(self.request.body().clone());
        *r.method_mut() = self.request.method().clone();
        *r.uri_mut() = self.request.uri().clone();
        *r.headers_mut() = self.request.headers().clone();
        Ok(r)
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<u16, CoreError> {
        Ok(response.status().as_u16())
    }
}

/// The status an error carries, if Box answered.
fn status_of(e: &Error) -> Option<u16> {
    match e.core()? {
        CoreError::Api(a) => Some(a.status),
        CoreError::Auth(AuthError::Unauthorized(a)) => Some(a.status),
        CoreError::SessionGone { source, .. } => Some(source.status),
        _ => None,
    }
}

/// What one issued operation ended with: a status.
fn outcome<T>(r: Result<T, Error>, ok_status: impl FnOnce(&T) -> u16) -> u16 {
    match r {
        Ok(v) => ok_status(&v),
        Err(e) => status_of(&e).unwrap_or_else(|| panic!("no status in {e}")),
    }
}

fn query_param(uri: &str, name: &str) -> Option<u64> {
    let q = uri.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).and_then(|v| v.parse().ok()))
}

fn json(body: &Body) -> serde_json::Value {
    match body {
        Body::Json(v) => v.clone(),
        other => panic!("expected a JSON body, got {other:?}"),
    }
}

/// Sends the recorded request as it is, for requests the operations refuse to build on purpose.
async fn verbatim(client: &Client, url: &str, ex: &Exchange, body: Bytes) -> u16 {
    let mut r = http::Request::builder().method(ex.request.method.as_str()).uri(url);
    for name in ["content-type", "digest", "content-range", "if-match", "if-none-match"] {
        if let Some(v) = ex.request.headers.get(name) {
            r = r.header(name, v);
        }
    }
    outcome(client.run(Verbatim { request: r.body(body).unwrap() }).await, |s| *s)
}

fn refused_input<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(e) if matches!(e.core(), Some(CoreError::Input(_))))
}

/// Issues the operation recorded in `ex` and returns the status it ended with.
async fn issue(client: &Client, origin: &str, ex: &Exchange, by_url: bool, content: &Bytes) -> u16 {
    let req = &ex.request;
    let path = req.uri.split('?').next().unwrap();
    let url = format!("{origin}{}", req.uri);
    let segs: Vec<&str> = path.trim_start_matches("/api/2.0/files/").split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["upload_sessions"]) => {
            let b = json(&req.body);
            let r = client
                .create_upload_session(
                    b["folder_id"].as_str().unwrap(),
                    b["file_name"].as_str().unwrap(),
                    b["file_size"].as_u64().unwrap(),
                )
                .await;
            if refused_input(&r) {
                // Too small or a bad name: the core refuses before sending; the transport can
                // still carry the recorded request.
                return verbatim(client, &url, ex, Bytes::from(serde_json::to_vec(&b).unwrap())).await;
            }
            outcome(r, |_| 201)
        }
        ("POST", [file_id, "upload_sessions"]) => {
            let b = json(&req.body);
            let name = b["file_name"].as_str().map(str::to_owned);
            let r = client.create_upload_session_for_file(*file_id, b["file_size"].as_u64().unwrap(), name).await;
            outcome(r, |_| 201)
        }
        ("GET", ["upload_sessions", id]) => {
            let r = if by_url {
                client.get_upload_session_by_url(url).await
            } else {
                client.get_upload_session_by_id(*id).await
            };
            outcome(r, |_| 200)
        }
        ("DELETE", ["upload_sessions", id]) => {
            let r = if by_url {
                client.delete_upload_session_by_url(url).await
            } else {
                client.delete_upload_session_by_id(*id).await
            };
            outcome(r, |()| 204)
        }
        ("GET", ["upload_sessions", id, "parts"]) => {
            let (offset, limit) = (query_param(&req.uri, "offset"), query_param(&req.uri, "limit"));
            let r = if by_url {
                let base = format!("{origin}{path}");
                client.list_upload_session_parts_by_url(base, offset, limit).await
            } else {
                client.list_upload_session_parts_by_id(*id, offset, limit).await
            };
            outcome(r, |_| 200)
        }
        ("PUT", ["upload_sessions", id]) => {
            let range = &req.headers["content-range"];
            let (span, total) = range.strip_prefix("bytes ").unwrap().split_once('/').unwrap();
            let (first, last) = span.split_once('-').unwrap();
            let (first, last, total): (u64, u64, u64) =
                (first.parse().unwrap(), last.parse().unwrap(), total.parse().unwrap());
            let part = content.slice(first as usize..=last as usize);
            let digest = Sha1Digest::of(&part).header_value();
            if req.headers.get("digest") != Some(&digest) {
                // Recorded on purpose with a wrong digest: send it verbatim.
                return verbatim(client, &url, ex, part).await;
            }
            let r = if by_url {
                client.upload_file_part_by_url(url, first, total, part).await
            } else {
                client.upload_file_part_by_id(*id, first, total, part).await
            };
            outcome(r, |_| 200)
        }
        ("POST", ["upload_sessions", id, "commit"]) => {
            let parts: Vec<UploadPart> = serde_json::from_value(json(&req.body)["parts"].clone()).unwrap();
            let digest = Sha1Digest::of(content);
            assert_eq!(req.headers.get("digest"), Some(&digest.header_value()), "content");
            let if_match = req.headers.get("if-match").cloned();
            let if_none_match = req.headers.get("if-none-match").cloned();
            let r = if by_url {
                client.commit_upload_session_by_url(url, parts, digest, if_match, if_none_match).await
            } else {
                client.commit_upload_session_by_id(*id, parts, digest, if_match, if_none_match).await
            };
            outcome(r, |c| match c {
                CommitResponse::Committed(_) => 201,
                CommitResponse::NotReady { .. } => 202,
            })
        }
        other => panic!("no operation for {other:?}"),
    }
}

async fn replay_all(dir: &str, content: Vec<u8>, options: ReplayOptions) {
    common::init_tracing();
    let content = Bytes::from(content);
    for fixture in fixtures(dir) {
        let name = fixture.name.clone();
        let exchanges = fixture.exchanges.clone();
        let replay = ReplayServer::start_with(fixture, options.clone()).await.unwrap();
        let token = if name == "error_401" { "wrong-token" } else { "test-token" };
        let client = Client::builder()
            .upload_base(replay.upload_base_url())
            .developer_token(token)
            .retry_policy(common::fast_retries())
            .build()
            .unwrap();
        let by_url = name.ends_with("by_url");
        let mut i = 0;
        while i < exchanges.len() {
            let ex = &exchanges[i];
            // A 429 or 5xx is retried by the core: the same request again, recorded next.
            let mut last = i;
            while (exchanges[last].response.status == 429 || exchanges[last].response.status >= 500)
                && exchanges.get(last + 1).is_some_and(|n| n.request.uri == ex.request.uri)
            {
                last += 1;
            }
            let got = issue(&client, &replay.base_url(), ex, by_url, &content).await;
            assert_eq!(
                got, exchanges[last].response.status,
                "{dir}/{name}: exchange #{i} {} {}",
                ex.request.method, ex.request.uri
            );
            i = last + 1;
        }
        replay.finish().await.unwrap_or_else(|e| panic!("{dir}/{name}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_fixtures_replay_through_hyper() {
    replay_all("emulator", emulator_content(), ReplayOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_fixtures_replay_through_hyper() {
    // The Python SDK sends `Content-Type: application/json` on bodiless GET and DELETE requests;
    // we send none there, so that header is not compared for this recording.
    let options = ReplayOptions {
        compare_headers: ["digest", "content-range", "if-match", "if-none-match"].map(String::from).to_vec(),
        ..ReplayOptions::default()
    };
    replay_all("official-python", python_content(), options).await;
}

/// The recorded `upload_big_file` flow (create, parts, list, commit) is exactly what the big
/// upload sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_upload_matches_the_recorded_upload_big_file() {
    common::init_tracing();
    let fixture = fixtures("emulator").into_iter().find(|f| f.name == "upload_big_file").unwrap();
    let create = json(&fixture.exchanges[0].request.body);
    let replay = ReplayServer::start(fixture).await.unwrap();
    let client = Client::builder().upload_base(replay.upload_base_url()).developer_token("test-token").build().unwrap();
    let request = UploadRequest::new_file(
        create["folder_id"].as_str().unwrap(),
        create["file_name"].as_str().unwrap(),
        create["file_size"].as_u64().unwrap(),
    );
    let file = client.upload(Source::bytes(emulator_content()), request).await.unwrap();
    assert_eq!(file.size, Some(SIZE as u64));
    replay.finish().await.unwrap();
}
