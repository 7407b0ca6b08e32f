//! Core replay against the official Python SDK: for the same inputs, box-upload-core must emit the
//! same method, path, query, Content-Type, Digest, Content-Range, If-Match and JSON body as the
//! official SDK did in `fixtures/official-python/` (recorded by `official-sdk/run.sh`).
//!
//! Documented differences are allowed: the Python SDK also sends `Content-Type:
//! application/json` on bodiless GET and DELETE requests; there, the core may omit it. A direct
//! upload (`upload_file`, `upload_file_version`) is compared part by part: each client picks its
//! own multipart boundary and `filename`; the parts, their order, the attributes JSON, the file
//! part's length, `content-md5` and `If-Match` must agree. (The SDK writes a date as
//! `2020-01-02T03:04:05+00:00`, the core as `2020-01-02T03:04:05Z`: the same RFC 3339 instant;
//! here the core is given the SDK's attributes as they are.)
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use box_upload_conformance::fixture::{Body, Fixture, RecordedRequest};
use box_upload_core::models::UploadPart;
use box_upload_core::operations::{
    CommitUploadSession, CreateUploadSession, CreateUploadSessionForFile, DeleteUploadSession, GetUploadSession,
    ListUploadSessionParts, PreflightFileUpload, UploadFile, UploadFilePart,
};
use box_upload_core::{Client, Config, DeveloperToken, Machine, PartData, Sha1Digest, SourceBody, UploadTarget};
use bytes::Bytes;

const ORIGIN: &str = "http://127.0.0.1:9";

fn dir() -> PathBuf {
    // CI points this at a fresh recording of the official SDK; by default, the committed one.
    match std::env::var_os("BOX_UPLOAD_OFFICIAL_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("official-python"),
    }
}

fn client() -> Client {
    let config = Config::new().with_upload_base(&format!("{ORIGIN}/api")).unwrap().with_trusted_host("127.0.0.1");
    Client::new(config, DeveloperToken::new("t"))
}

/// The request the core emits first for `machine`.
fn first_request<M: Machine>(mut machine: M) -> http::Request<Bytes> {
    machine.poll_transmit(Instant::now()).expect("the core emits a request").request
}

fn json(b: &Body) -> &serde_json::Value {
    match b {
        Body::Json(v) => v,
        other => panic!("expected a JSON body, got {other:?}"),
    }
}

static COMPARED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Compares the core's request with the official SDK's.
fn compare(name: &str, ours: &http::Request<Bytes>, theirs: &RecordedRequest) {
    COMPARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(ours.method().as_str(), theirs.method, "{name}: method");
    let pq = ours.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    assert_eq!(pq, theirs.uri, "{name}: path and query");
    let header = |n: &str| ours.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    for h in ["digest", "content-range", "if-match", "if-none-match"] {
        assert_eq!(header(h).as_ref(), theirs.headers.get(h), "{name}: header {h}");
    }
    let has_body = !matches!(theirs.body, Body::Empty);
    if has_body || header("content-type").is_some() {
        assert_eq!(header("content-type").as_ref(), theirs.headers.get("content-type"), "{name}: content-type");
    }
    match &theirs.body {
        Body::Json(v) => {
            let got: serde_json::Value = serde_json::from_slice(ours.body()).unwrap();
            assert_eq!(&got, v, "{name}: JSON body");
        }
        Body::Binary { len, .. } => assert_eq!(ours.body().len() as u64, *len, "{name}: body length"),
        Body::Empty => assert!(ours.body().is_empty(), "{name}: body"),
        other => panic!("{name}: unexpected body {other:?}"),
    }
    assert!(
        ours.headers().get("authorization").is_some_and(|v| v.to_str().unwrap_or("").starts_with("Bearer ")),
        "{name}: bearer auth"
    );
}

/// A direct upload: the core's `UploadFile` for the recorded attributes, file size, SHA-1 and
/// `If-Match` must send the same method, path, `content-md5` and `If-Match`, a multipart body
/// (each its own boundary) with the same parts in the same order (`attributes` before `file`),
/// the same attributes JSON and a file part of the same length.
fn compare_direct(name: &str, c: &Client, theirs: &RecordedRequest) {
    COMPARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Body::Multipart(parts) = &theirs.body else { panic!("{name}: a multipart body, got {:?}", theirs.body) };
    let attributes = json(&parts[0].body).as_object().unwrap().clone();
    let Body::Binary { len, .. } = &parts[1].body else { panic!("{name}: the file part is binary") };
    let md5 = Sha1Digest::from_hex(&theirs.headers["content-md5"]).unwrap();
    let mut extra = attributes.clone();
    let file_name = extra.remove("name").and_then(|n| n.as_str().map(str::to_owned));
    let target = match name {
        "upload_file" => {
            let parent = extra.remove("parent").unwrap();
            UploadTarget::NewFile { folder_id: parent["id"].as_str().unwrap().into(), file_name: file_name.unwrap() }
        }
        _ => {
            let file_id = theirs.uri.trim_start_matches("/api/2.0/files/").split('/').next().unwrap();
            UploadTarget::NewVersion { file_id: file_id.into(), file_name }
        }
    };
    let mut op = UploadFile::new(target, *len).unwrap().with_sha1(md5).with_attributes(extra);
    if let Some(etag) = theirs.headers.get("if-match") {
        op = op.with_if_match(etag);
    }
    let ours = first_request(c.call(op));
    assert_eq!(ours.method().as_str(), theirs.method, "{name}: method");
    assert_eq!(ours.uri().path_and_query().map(|p| p.as_str()), Some(theirs.uri.as_str()), "{name}: path and query");
    let header = |n: &str| ours.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    for h in ["content-md5", "if-match", "if-none-match", "digest", "content-range"] {
        assert_eq!(header(h).as_ref(), theirs.headers.get(h), "{name}: header {h}");
    }
    let media = |v: Option<&String>| v.map(|v| v.split(';').next().unwrap().trim().to_ascii_lowercase());
    assert_eq!(media(header("content-type").as_ref()), media(theirs.headers.get("content-type")), "{name}");
    // The body as it goes on the wire: the head, the file's bytes (here zeros), the tail.
    let streamed = ours.extensions().get::<SourceBody>().expect("the file's bytes come from the source");
    let mut wire = streamed.head.to_vec();
    wire.resize(wire.len() + *len as usize, 0);
    wire.extend_from_slice(&streamed.tail);
    assert_eq!(header("content-length"), Some(wire.len().to_string()), "{name}: content-length");
    let Body::Multipart(ours_parts) = Body::from_bytes(header("content-type").as_deref(), &wire) else {
        panic!("{name}: our body is not multipart")
    };
    let names = |p: &[box_upload_conformance::fixture::FormPart]| p.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours_parts), names(parts), "{name}: parts and their order");
    assert_eq!(json(&ours_parts[0].body).as_object(), Some(&attributes), "{name}: attributes");
    assert!(matches!(&ours_parts[1].body, Body::Binary { len: l, .. } if l == len), "{name}: file part length");
}

fn session_id(uri: &str) -> String {
    uri.trim_start_matches("/api/2.0/files/upload_sessions/").split(['/', '?']).next().unwrap().to_string()
}

fn url(uri: &str) -> String {
    format!("{ORIGIN}{}", uri.split('?').next().unwrap())
}

#[test]
fn core_emits_what_the_official_sdk_sends() {
    let c = client();
    for f in Fixture::load_dir(dir()).unwrap() {
        let name = f.name.as_str();
        // The scenario's own operation is its last request (earlier ones set it up); the
        // create requests are compared in every scenario.
        for ex in &f.exchanges {
            let r = &ex.request;
            if r.method == "POST" && r.uri == "/api/2.0/files/upload_sessions" {
                let b = json(&r.body);
                let op = CreateUploadSession::new(
                    b["folder_id"].as_str().unwrap(),
                    b["file_name"].as_str().unwrap(),
                    b["file_size"].as_u64().unwrap(),
                )
                .unwrap();
                compare(name, &first_request(c.call(op)), r);
            }
        }
        let r = &f.exchanges.last().unwrap().request;
        let by_url = name.ends_with("_by_url");
        let ours = match name {
            "create_session" | "upload_big_file" if r.method == "POST" && r.uri == "/api/2.0/files/upload_sessions" => {
                continue
            }
            "create_session_for_existing_file" => {
                let b = json(&r.body);
                let file_id = r.uri.trim_start_matches("/api/2.0/files/").split('/').next().unwrap();
                let mut op = CreateUploadSessionForFile::new(file_id, b["file_size"].as_u64().unwrap()).unwrap();
                if let Some(n) = b.get("file_name").and_then(|n| n.as_str()) {
                    op = op.with_file_name(n).unwrap();
                }
                first_request(c.call(op))
            }
            "get_session_by_id" => first_request(c.call(GetUploadSession::by_id(session_id(&r.uri)))),
            "get_session_by_url" => first_request(c.call(GetUploadSession::by_url(url(&r.uri)))),
            "abort_by_id" => first_request(c.call(DeleteUploadSession::by_id(session_id(&r.uri)))),
            "abort_by_url" => first_request(c.call(DeleteUploadSession::by_url(url(&r.uri)))),
            "list_parts_by_id" | "list_parts_by_url" => {
                let mut op = if by_url {
                    ListUploadSessionParts::by_url(url(&r.uri))
                } else {
                    ListUploadSessionParts::by_id(session_id(&r.uri))
                };
                let query = r.uri.split_once('?').map(|(_, q)| q).unwrap_or("");
                for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
                    match k {
                        "offset" => op = op.with_offset(v.parse().unwrap()),
                        "limit" => op = op.with_limit(v.parse().unwrap()).unwrap(),
                        _ => {}
                    }
                }
                first_request(c.call(op))
            }
            "commit_by_id" | "commit_by_url" | "upload_big_file" => {
                let parts: Vec<UploadPart> = serde_json::from_value(json(&r.body)["parts"].clone()).unwrap();
                let digest = Sha1Digest::parse_header(&r.headers["digest"]).unwrap();
                let op = if name == "commit_by_id" {
                    CommitUploadSession::by_id(session_id(&r.uri), parts, digest)
                } else {
                    CommitUploadSession::by_url(url(&r.uri), parts, digest)
                };
                first_request(c.call(op))
            }
            "upload_part_by_id" | "upload_part_by_url" => {
                // The SDK's part bytes are not in the fixture (only len + SHA-1): compare everything
                // but the digest, which the core computes from the bytes it is given.
                let range = &r.headers["content-range"];
                let (first, rest) = range.trim_start_matches("bytes ").split_once('-').unwrap();
                let (last, total) = rest.split_once('/').unwrap();
                let (first, last, total): (u64, u64, u64) =
                    (first.parse().unwrap(), last.parse().unwrap(), total.parse().unwrap());
                let data = PartData::new(vec![0u8; (last - first + 1) as usize]);
                let op = if by_url {
                    UploadFilePart::by_url(url(&r.uri), first, total, data).unwrap()
                } else {
                    UploadFilePart::by_id(session_id(&r.uri), first, total, data).unwrap()
                };
                let mut ours = first_request(c.call(op));
                let mut theirs = r.clone();
                theirs.headers.remove("digest");
                ours.headers_mut().remove("digest");
                compare(name, &ours, &theirs);
                continue;
            }
            "preflight_file_upload_check" => {
                let b = json(&r.body);
                let op = PreflightFileUpload::new(
                    b["parent"]["id"].as_str().unwrap(),
                    b["name"].as_str().unwrap(),
                    b["size"].as_u64().unwrap(),
                )
                .unwrap();
                first_request(c.call(op))
            }
            "upload_file" | "upload_file_version" => {
                compare_direct(name, &c, r);
                continue;
            }
            other => panic!("no core mapping for official fixture {other}"),
        };
        compare(name, &ours, r);
    }
    // 13 scenario operations (the create scenarios are covered by the create loop) plus the
    // creates that set up the other scenarios, and the direct uploads and preflight check.
    assert!(COMPARED.load(std::sync::atomic::Ordering::Relaxed) >= 27, "too few requests compared");
}
