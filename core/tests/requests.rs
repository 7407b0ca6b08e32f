//! Snapshots of the exact request each operation sends: method, URI, headers (the token
//! redacted) and body.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use box_upload_core::http::Request;
use box_upload_core::models::UploadPart;
use box_upload_core::operations::*;
use box_upload_core::{
    bytes::Bytes, BoxSubject, Client, ClientCredentials, Config, DeveloperToken, Machine, PartData, Sha1Digest,
    TokenPoll, TokenSource, UploadRequest,
};
use std::time::Instant;

const SESSION: &str = "F971964745A5CD0C001BBE4E58196BFD";
const URL: &str = "https://upload.box.com/api/2.0/files/upload_sessions/F971964745A5CD0C001BBE4E58196BFD";

fn render(request: &Request<Bytes>) -> String {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    let mut headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = if k == "authorization" {
                let v = v.to_str().unwrap();
                assert!(v.starts_with("Bearer "), "bearer auth");
                assert!(v.len() > "Bearer ".len());
                "Bearer <redacted>".to_owned()
            } else {
                v.to_str().unwrap().to_owned()
            };
            (k.to_string(), value)
        })
        .collect();
    headers.sort();
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let body = request.body();
    let is_json = request.headers().get("content-type").is_some_and(|v| v == "application/json");
    if body.is_empty() {
        out.push_str("(no body)\n");
    } else if is_json {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        out.push_str(&serde_json::to_string_pretty(&v).unwrap());
        out.push('\n');
    } else {
        out.push_str(&format!("<{} bytes, sha1 {}>\n", body.len(), Sha1Digest::of(body)));
    }
    out
}

fn first_request<O: Operation>(op: O) -> String {
    let client = Client::new(Config::new(), DeveloperToken::new("secret-token"));
    let mut call = client.call(op);
    let t = call.poll_transmit(Instant::now()).expect("a request");
    assert!(!format!("{t:?}").contains("secret-token"), "Debug of a transmit hides the token");
    assert_eq!(t.request.headers()["authorization"], "Bearer secret-token");
    render(&t.request)
}

fn parts() -> Vec<UploadPart> {
    vec![
        UploadPart {
            part_id: "BFDF5379".into(),
            offset: 8388608,
            size: 8388608,
            sha1: Some("134b65991ed521fcfe4724b7d814ab8ded5185dc".into()),
        },
        UploadPart {
            part_id: "6F2D3486".into(),
            offset: 0,
            size: 8388608,
            sha1: Some("234b65991ed521fcfe4724b7d814ab8ded5185dc".into()),
        },
    ]
}

#[test]
fn create_upload_session() {
    insta::assert_snapshot!(first_request(CreateUploadSession::new("0", "video.mp4", 104_857_600).unwrap()));
}

#[test]
fn create_upload_session_for_existing_file() {
    let op = CreateUploadSessionForFile::new("12345", 104_857_600).unwrap().with_file_name("video-v2.mp4").unwrap();
    insta::assert_snapshot!(first_request(op));
    insta::assert_snapshot!(
        "create_for_file_no_name",
        first_request(CreateUploadSessionForFile::new("12345", 20_000_000).unwrap())
    );
}

#[test]
fn get_upload_session_by_id_and_by_url() {
    let by_id = first_request(GetUploadSession::by_id(SESSION));
    assert_eq!(by_id, first_request(GetUploadSession::by_url(URL)));
    insta::assert_snapshot!(by_id);
}

#[test]
fn upload_file_part_by_id_and_by_url() {
    let data = PartData::new(Bytes::from(vec![7u8; 1024]));
    let by_id = first_request(UploadFilePart::by_id(SESSION, 8388608, 20_000_000, data.clone()).unwrap());
    assert_eq!(by_id, first_request(UploadFilePart::by_url(URL, 8388608, 20_000_000, data).unwrap()));
    insta::assert_snapshot!(by_id);
}

#[test]
fn delete_upload_session_by_id_and_by_url() {
    let by_id = first_request(DeleteUploadSession::by_id(SESSION));
    assert_eq!(by_id, first_request(DeleteUploadSession::by_url(URL)));
    insta::assert_snapshot!(by_id);
}

#[test]
fn list_upload_session_parts_by_id_and_by_url() {
    let by_id = first_request(ListUploadSessionParts::by_id(SESSION).with_offset(1000).with_limit(1000).unwrap());
    let by_url = first_request(
        ListUploadSessionParts::by_url(format!("{URL}/parts")).with_offset(1000).with_limit(1000).unwrap(),
    );
    assert_eq!(by_id, by_url);
    insta::assert_snapshot!(by_id);
    insta::assert_snapshot!("list_parts_no_paging", first_request(ListUploadSessionParts::by_id(SESSION)));
}

#[test]
fn commit_upload_session_by_id_and_by_url() {
    let digest = Sha1Digest::of(b"the whole file");
    let by_id =
        first_request(CommitUploadSession::by_id(SESSION, parts(), digest).with_if_match("3").with_if_none_match("4"));
    let by_url = first_request(
        CommitUploadSession::by_url(format!("{URL}/commit"), parts(), digest)
            .with_if_match("3")
            .with_if_none_match("4"),
    );
    assert_eq!(by_id, by_url);
    insta::assert_snapshot!(by_id);
}

#[test]
fn get_file_on_the_api_host() {
    let op = GetFile::new("12345").unwrap().with_fields(["sha1", "size", "etag"]).unwrap();
    insta::assert_snapshot!(first_request(op));
    insta::assert_snapshot!("get_file_standard_fields", first_request(GetFile::new("12345").unwrap()));
}

#[test]
fn preflight_file_upload_on_the_api_host() {
    insta::assert_snapshot!(first_request(PreflightFileUpload::new("0", "video.mp4", 104_857_600).unwrap()));
}

#[test]
fn extra_headers_are_sent() {
    let op = GetUploadSession::by_id(SESSION).with_header(
        box_upload_core::http::header::HeaderName::from_static("x-box-ua"),
        box_upload_core::http::header::HeaderValue::from_static("agent=test"),
    );
    assert!(first_request(op).contains("x-box-ua: agent=test"));
}

#[test]
fn token_request() {
    let mut ccg = ClientCredentials::new("client-id", "client-secret", BoxSubject::Enterprise("899905961".into()));
    assert!(!format!("{ccg:?}").contains("client-secret"));
    let TokenPoll::Fetch(request) = ccg.poll_token(Instant::now()).unwrap() else { panic!("fetch expected") };
    let body = std::str::from_utf8(request.body()).unwrap().replace("client-secret", "<redacted>");
    let text = render(&request.map(|_| Bytes::new())).replace("(no body)", &body);
    insta::assert_snapshot!(text);
}

#[test]
fn upload_big_file() {
    // The whole exchange of a big upload, one line a request.
    let size = 20_000_001;
    let mut fake = support::FakeBox::new(8 << 20);
    let client = Client::new(Config::new(), DeveloperToken::new("tok"));
    let mut m = client.big_upload(UploadRequest::new_file("0", "video.mp4", size)).unwrap();
    let run = support::drive(&mut m, &mut fake, support::default_source(size), support::Order::Fifo);
    assert!(run.output.is_ok());
    let lines: Vec<String> = fake
        .seen
        .iter()
        .map(|s| {
            let mut line = format!("{} {}", s.method, s.uri);
            for h in ["content-range", "digest", "content-type"] {
                if let Some(v) = s.header(h) {
                    line.push_str(&format!(" | {h}: {v}"));
                }
            }
            line
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn plan_upload_session_by_id_and_by_url() {
    use box_upload_core::models::PlanPart;
    use box_upload_core::Sha512Digest;
    let parts = vec![
        PlanPart { offset: 0, size: 8388608, sha512: Sha512Digest::of(b"part 0").to_hex() },
        PlanPart { offset: 8388608, size: 3211392, sha512: Sha512Digest::of(b"part 1").to_hex() },
    ];
    let by_id = first_request(PlanUploadSession::by_id(SESSION, parts.clone()).unwrap());
    assert_eq!(by_id, first_request(PlanUploadSession::by_url(format!("{URL}/plan"), parts).unwrap()));
    insta::assert_snapshot!(by_id);
}
