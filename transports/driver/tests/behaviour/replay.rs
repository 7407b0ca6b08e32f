//! Every recorded fixture (`conformance/fixtures/{emulator,official-python}`) replayed through
//! the transport: each recorded request is issued again with the client's method for it (by id,
//! or by URL for the `*_by_url` recordings) and the same inputs; the replay server checks it is
//! the recorded one (method, URI, compared headers, body), that every exchange was consumed, and
//! the answer must be the recorded status. The recorded `upload_big_file` flow is exactly what
//! `upload` sends.
//!
//! Requests the core refuses to build on purpose (a file under 20,000,000 bytes, a bad name, a
//! part whose `Digest` is deliberately wrong) are sent as recorded through a raw [`Operation`]:
//! still through the client (token, retries, wire), still checked by the replay server.

use crate::harness::{both, build, bytes, call, fast_retries, sha1_hex, Client, Kind, Rig};
use box_upload_conformance::fixture::{Body, Exchange, Fixture};
use box_upload_conformance::replay::{ReplayOptions, ReplayServer};
use box_upload_driver::bytes::Bytes;
use box_upload_driver::core::models::UploadPart;
use box_upload_driver::core::operations::{CommitResponse, Operation, PreflightCheck};
use box_upload_driver::core::{AuthError, Config, Error as CoreError, RequestKind, Sha1Digest, UploadRequest};
use box_upload_driver::{Error, Source};
use std::path::PathBuf;
use std::sync::OnceLock;

both!(
    every_emulator_fixture_replays,
    every_official_python_fixture_replays,
    the_big_upload_sends_the_recorded_upload_big_file,
);

const SIZE: usize = 20_000_000;

fn fixtures(dir: &str) -> Vec<Fixture> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures").join(dir);
    let mut all = Fixture::load_dir(path).unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The content the emulator fixtures were recorded with (conformance/tests/common `data(SIZE, 99)`).
fn emulator_content() -> &'static Bytes {
    static CONTENT: OnceLock<Bytes> = OnceLock::new();
    CONTENT.get_or_init(|| Bytes::from(bytes(SIZE as u64, 99)))
}

/// The content the official Python SDK run uploaded: `random.Random(7).randbytes(20_000_000)`,
/// i.e. MT19937 seeded by `init_by_array([7])`, 32-bit outputs little-endian, in order.
fn python_content() -> &'static Bytes {
    static CONTENT: OnceLock<Bytes> = OnceLock::new();
    CONTENT.get_or_init(|| {
        let mut mt = Mt19937::by_array(&[7]);
        let mut out = Vec::with_capacity(SIZE + 4);
        while out.len() < SIZE {
            out.extend_from_slice(&mt.next_u32().to_le_bytes());
        }
        out.truncate(SIZE);
        Bytes::from(out)
    })
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

/// The content generators reproduce the recorded parts (once: no transport involved).
#[test]
fn the_content_generators_reproduce_the_recorded_parts() {
    for (dir, content) in [("emulator", emulator_content()), ("official-python", python_content())] {
        let fixture = fixtures(dir).into_iter().find(|f| f.name == "upload_big_file").unwrap();
        let mut checked = 0;
        for ex in fixture.exchanges.iter().filter(|e| e.request.method == "PUT") {
            let Body::Binary { len, sha1 } = &ex.request.body else { panic!("{:?}", ex.request.body) };
            let first: usize =
                ex.request.headers["content-range"]["bytes ".len()..].split('-').next().unwrap().parse().unwrap();
            assert_eq!(&sha1_hex(&content[first..first + *len as usize]), sha1, "{dir}: part at {first}");
            checked += 1;
        }
        assert!(checked >= 2, "{dir}: {checked} parts");
    }
}

/// A recorded request sent as it was. Its output is the status.
struct Raw {
    request: http::Request<Bytes>,
}

impl Operation for Raw {
    type Output = u16;

    fn kind(&self) -> RequestKind {
        match *self.request.method() {
            http::Method::PUT => RequestKind::UploadPart,
            _ => RequestKind::CreateSession,
        }
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
    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(|v| v.parse().unwrap()))
}

fn json(body: &Body) -> serde_json::Value {
    match body {
        Body::Json(v) => v.clone(),
        other => panic!("expected a JSON body, got {other:?}"),
    }
}

/// Sends the recorded request as it is.
fn verbatim(client: &Client, url: &str, ex: &Exchange, body: Bytes) -> u16 {
    let mut r = http::Request::builder().method(ex.request.method.as_str()).uri(url);
    for name in ["content-type", "digest", "content-range", "if-match", "if-none-match"] {
        if let Some(v) = ex.request.headers.get(name) {
            r = r.header(name, v);
        }
    }
    call!(client, run(Raw { request: r.body(body).unwrap() })).unwrap()
}

fn refused_input<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(e) if matches!(e.core(), Some(CoreError::Input(_))))
}

/// `random.Random(seed).randbytes(len)` (`len` a multiple of 4), as the official SDK run made
/// its small files.
fn python_bytes(seed: u32, len: usize) -> Bytes {
    let mut mt = Mt19937::by_array(&[seed]);
    let mut out = Vec::with_capacity(len + 4);
    while out.len() < len {
        out.extend_from_slice(&mt.next_u32().to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A recorded direct upload sent again through the core's `UploadFile`: the recorded attributes,
/// the file's bytes found by their SHA-1 among the SDK run's small files.
fn direct_upload(client: &Client, ex: &Exchange, file_id: Option<&str>) -> u16 {
    use box_upload_conformance::fixture::FormPart;
    use box_upload_driver::core::operations::UploadFile;
    let Body::Multipart(parts) = &ex.request.body else {
        panic!("a direct upload is multipart: {:?}", ex.request.body)
    };
    let part =
        |name: &str| parts.iter().find(|p: &&FormPart| p.name == name).unwrap_or_else(|| panic!("no {name} part"));
    let attributes = json(&part("attributes").body);
    let Body::Binary { len, sha1 } = &part("file").body else { panic!("the file part is binary") };
    let content = (1..=16)
        .map(|seed| python_bytes(seed, *len as usize))
        .find(|c| sha1_hex(c) == *sha1)
        .unwrap_or_else(|| panic!("no seed makes the recorded file of {len} bytes"));
    let mut extra = attributes.as_object().unwrap().clone();
    let name = extra.remove("name").and_then(|n| n.as_str().map(str::to_owned));
    let parent = extra.remove("parent");
    let mut op = match file_id {
        None => UploadFile::new_file(parent.unwrap()["id"].as_str().unwrap(), name.unwrap(), 0).unwrap(),
        Some(id) => {
            let target = box_upload_driver::core::UploadTarget::NewVersion { file_id: id.into(), file_name: name };
            UploadFile::new(target, 0).unwrap()
        }
    }
    .with_attributes(extra)
    .with_content(content);
    if let Some(etag) = ex.request.headers.get("if-match") {
        op = op.with_if_match(etag);
    }
    outcome(call!(client, run(op)), |_| if file_id.is_some() { 200 } else { 201 })
}

/// Issues the operation recorded in `ex` and returns the status it ended with.
fn issue(client: &Client, origin: &str, ex: &Exchange, by_url: bool, content: &Bytes) -> u16 {
    let req = &ex.request;
    let path = req.uri.split('?').next().unwrap();
    if (req.method.as_str(), path) == ("OPTIONS", "/2.0/files/content") {
        let b = json(&req.body);
        let (folder, name, size) =
            (b["parent"]["id"].as_str().unwrap(), b["name"].as_str().unwrap(), b["size"].as_u64().unwrap());
        return outcome(call!(client, preflight_file_upload(folder, name, size)), |c| match c {
            PreflightCheck::NameInUse { .. } => 409,
            _ => 200,
        });
    }
    let url = format!("{origin}{}", req.uri);
    let segments: Vec<&str> = path.trim_start_matches("/api/2.0/files/").split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["upload_sessions"]) => {
            let b = json(&req.body);
            let (folder, name, size) =
                (b["folder_id"].as_str().unwrap(), b["file_name"].as_str().unwrap(), b["file_size"].as_u64().unwrap());
            let r = call!(client, create_upload_session(folder, name, size));
            if refused_input(&r) {
                // Too small or a bad name: the core refuses before sending; the wire can still
                // carry the recorded request.
                return verbatim(client, &url, ex, Bytes::from(serde_json::to_vec(&b).unwrap()));
            }
            outcome(r, |_| 201)
        }
        ("POST", [file_id, "upload_sessions"]) => {
            let b = json(&req.body);
            let name = b["file_name"].as_str().map(str::to_owned);
            let r = call!(client, create_upload_session_for_file(*file_id, b["file_size"].as_u64().unwrap(), name));
            outcome(r, |_| 201)
        }
        ("GET", ["upload_sessions", id]) => {
            let r = if by_url {
                call!(client, get_upload_session_by_url(url.clone()))
            } else {
                call!(client, get_upload_session_by_id(*id))
            };
            outcome(r, |_| 200)
        }
        ("DELETE", ["upload_sessions", id]) => {
            let r = if by_url {
                call!(client, delete_upload_session_by_url(url.clone()))
            } else {
                call!(client, delete_upload_session_by_id(*id))
            };
            outcome(r, |()| 204)
        }
        ("GET", ["upload_sessions", id, "parts"]) => {
            let (offset, limit) = (query_param(&req.uri, "offset"), query_param(&req.uri, "limit"));
            let r = if by_url {
                call!(client, list_upload_session_parts_by_url(format!("{origin}{path}"), offset, limit))
            } else {
                call!(client, list_upload_session_parts_by_id(*id, offset, limit))
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
            if req.headers.get("digest") != Some(&Sha1Digest::of(&part).header_value()) {
                // Recorded on purpose with a wrong digest: send it verbatim.
                return verbatim(client, &url, ex, part);
            }
            let r = if by_url {
                call!(client, upload_file_part_by_url(url.clone(), first, total, part))
            } else {
                call!(client, upload_file_part_by_id(*id, first, total, part))
            };
            outcome(r, |_| 200)
        }
        ("POST", ["upload_sessions", id, "commit"]) => {
            let parts: Vec<UploadPart> = serde_json::from_value(json(&req.body)["parts"].clone()).unwrap();
            let digest = Sha1Digest::parse_header(&req.headers["digest"]).unwrap();
            let if_match = req.headers.get("if-match").cloned();
            let if_none_match = req.headers.get("if-none-match").cloned();
            let r = if by_url {
                call!(client, commit_upload_session_by_url(url.clone(), parts, digest, if_match, if_none_match))
            } else {
                call!(client, commit_upload_session_by_id(*id, parts, digest, if_match, if_none_match))
            };
            outcome(r, |c| match c {
                CommitResponse::Committed(_) => 201,
                CommitResponse::NotReady { .. } => 202,
            })
        }
        ("POST", ["content"]) => direct_upload(client, ex, None),
        ("POST", [file_id, "content"]) => direct_upload(client, ex, Some(file_id)),
        other => panic!("no operation for {other:?}"),
    }
}

/// Replays every fixture of `dir`; returns how many there were.
fn replay_all(kind: Kind, dir: &str, content: &Bytes, options: ReplayOptions) -> usize {
    let rig = Rig::new(kind);
    let all = fixtures(dir);
    let mut failures = Vec::new();
    for fixture in &all {
        let name = fixture.name.clone();
        let exchanges = &fixture.exchanges;
        let replay = rig.block_on(ReplayServer::start_with(fixture.clone(), options.clone())).unwrap();
        let token = if name == "error_401" { "wrong-token" } else { "test-token" };
        let client = build!(&rig, |b| b
            .upload_base(replay.upload_base_url())
            .developer_token(token)
            .retry_policy(fast_retries()))
        .unwrap();
        let by_url = name.ends_with("by_url");
        let mut i = 0;
        while i < exchanges.len() {
            let ex = &exchanges[i];
            // A 429 or 5xx is retried by the core: the same request again, recorded next.
            let mut last = i;
            while (exchanges[last].response.status == 429 || exchanges[last].response.status >= 500)
                && exchanges
                    .get(last + 1)
                    .is_some_and(|n| n.request.method == ex.request.method && n.request.uri == ex.request.uri)
            {
                last += 1;
            }
            let got = issue(&client, &replay.base_url(), ex, by_url, content);
            let expected = exchanges[last].response.status;
            if got != expected {
                failures.push(format!(
                    "{name}: exchange #{i} {} {}: answer {got}, recorded {expected}; mismatches: {:?}",
                    ex.request.method,
                    ex.request.uri,
                    replay.mismatches()
                ));
                break;
            }
            i = last + 1;
        }
        if let Err(e) = rig.block_on(replay.finish()) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{dir}: {} fixture(s) failed:\n{}", failures.len(), failures.join("\n"));
    all.len()
}

fn every_emulator_fixture_replays(kind: Kind) {
    let n = replay_all(kind, "emulator", emulator_content(), ReplayOptions::default());
    assert!(n >= 22, "{n} fixtures");
}

fn every_official_python_fixture_replays(kind: Kind) {
    // The Python SDK sends `Content-Type: application/json` on bodiless GET and DELETE requests;
    // we send none there, so that header is not compared for this recording. Bodies (JSON by
    // value, parts by length and SHA-1), Digest, Content-Range, If-Match and If-None-Match are.
    let mut options = ReplayOptions::default();
    options.compare_headers.retain(|h| h != "content-type");
    let n = replay_all(kind, "official-python", python_content(), options);
    assert!(n >= 13, "{n} fixtures");
}

fn the_big_upload_sends_the_recorded_upload_big_file(kind: Kind) {
    let rig = Rig::new(kind);
    let fixture = fixtures("emulator").into_iter().find(|f| f.name == "upload_big_file").unwrap();
    let create = json(&fixture.exchanges[0].request.body);
    let replay = rig.block_on(ReplayServer::start(fixture)).unwrap();
    let client = build!(&rig, |b| b.upload_base(replay.upload_base_url()).developer_token("test-token")).unwrap();
    let request = UploadRequest::new_file(
        create["folder_id"].as_str().unwrap(),
        create["file_name"].as_str().unwrap(),
        create["file_size"].as_u64().unwrap(),
    );
    // The session machine itself: `upload` would send the preflight check first, which the
    // recording (of a session alone) does not hold.
    let facts = box_upload_driver::core::SourceFacts { size: Some(SIZE as u64), ..Default::default() };
    let mut machine = client.core().start_upload(request, &facts, None).unwrap();
    let source = Source::bytes(emulator_content().clone());
    let file = call!(client, drive_with(&mut machine, source, box_upload_driver::UploadOptions::new())).unwrap();
    assert_eq!(file.size, Some(SIZE as u64));
    rig.block_on(replay.finish()).unwrap();
}
