//! The plan operation (`POST .../plan`): its answer is checked against the parts asked about,
//! and a plan URL on a foreign host never gets the token.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_core::bytes::Bytes;
use box_upload_core::http::{Response, StatusCode};
use box_upload_core::models::{PlanPart, SessionEndpoints, UploadSession};
use box_upload_core::operations::{Operation, PlanUploadSession, MAX_PLAN_PARTS};
use box_upload_core::{Client, Config, DeveloperToken, Error, InputError, Machine, ProtocolError, Sha512Digest};
use serde_json::{json, Value};
use std::time::Instant;

const SID: &str = "F971964745A5CD0C001BBE4E58196BFD";

fn parts() -> Vec<PlanPart> {
    (0..3u64).map(|i| PlanPart { offset: i * 8, size: 8, sha512: Sha512Digest::of(&[i as u8; 8]).to_hex() }).collect()
}

fn answer(status: u16, body: Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(serde_json::to_vec(&body).unwrap()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn hit(p: &PlanPart, id: &str) -> Value {
    json!({"offset": p.offset, "size": p.size, "sha512": p.sha512, "part_id": id})
}

fn miss(p: &PlanPart) -> Value {
    json!({"offset": p.offset, "size": p.size, "sha512": p.sha512})
}

fn parse(body: Value) -> Result<box_upload_core::models::UploadSessionPlan, Error> {
    PlanUploadSession::by_id(SID, parts()).unwrap().parse(answer(200, body))
}

fn bad_plan(body: Value) -> String {
    match parse(body) {
        Err(Error::Protocol(ProtocolError::BadPlan { detail })) => detail,
        other => panic!("expected BadPlan, got {other:?}"),
    }
}

#[test]
fn a_fitting_answer_parses_and_upper_case_hex_is_the_same_digest() {
    let p = parts();
    let upper = PlanPart { sha512: p[2].sha512.to_uppercase(), ..p[2].clone() };
    let plan = parse(
        json!({"upload_session_id": SID, "hits": [hit(&p[0], "6F2D3486"), hit(&upper, "AA")], "misses": [miss(&p[1])]}),
    )
    .unwrap();
    assert_eq!(plan.hits.len(), 2);
    assert_eq!(plan.hits[0].part_id, "6F2D3486");
    assert_eq!(plan.misses, vec![p[1].clone()]);
}

#[test]
fn hostile_answers_are_refused_with_what_does_not_fit() {
    let p = parts();
    let stranger = PlanPart { offset: 800, size: 8, sha512: p[0].sha512.clone() };
    let d = bad_plan(json!({"hits": [hit(&stranger, "X")], "misses": [miss(&p[0]), miss(&p[1]), miss(&p[2])]}));
    assert!(d.contains("offset 800") && d.contains("not asked about"), "{d}");
    let d = bad_plan(json!({"hits": [hit(&p[0], "X")], "misses": [miss(&p[0]), miss(&p[1]), miss(&p[2])]}));
    assert!(d.contains("offset 0") && d.contains("twice"), "{d}");
    let wrong_size = PlanPart { size: 9, ..p[1].clone() };
    let d = bad_plan(json!({"hits": [hit(&wrong_size, "X")], "misses": [miss(&p[0]), miss(&p[2])]}));
    assert!(d.contains("size 9"), "{d}");
    let wrong_hash = PlanPart { sha512: Sha512Digest::of(b"other").to_hex(), ..p[1].clone() };
    let d = bad_plan(json!({"hits": [hit(&wrong_hash, "X")], "misses": [miss(&p[0]), miss(&p[2])]}));
    assert!(d.contains("sha512"), "{d}");
    let short_hash = PlanPart { sha512: "abc".into(), ..p[1].clone() };
    let d = bad_plan(json!({"hits": [hit(&short_hash, "X")], "misses": [miss(&p[0]), miss(&p[2])]}));
    assert!(d.contains("sha512"), "{d}");
    let d = bad_plan(json!({"hits": [hit(&p[0], "X")], "misses": [miss(&p[1])]}));
    assert!(d.contains("offset 16") && d.contains("neither"), "{d}");
    let d = bad_plan(json!({"hits": [hit(&p[0], "../etc")], "misses": [miss(&p[1]), miss(&p[2])]}));
    assert!(d.contains("part_id"), "{d}");
    let d = bad_plan(json!({"hits": [hit(&p[0], "")], "misses": [miss(&p[1]), miss(&p[2])]}));
    assert!(d.contains("part_id"), "{d}");
    let d = bad_plan(json!({"upload_session_id": "OTHER", "misses": [miss(&p[0]), miss(&p[1]), miss(&p[2])]}));
    assert!(d.contains("OTHER"), "{d}");
    // Not JSON of the plan's shape at all.
    let op = PlanUploadSession::by_id(SID, parts()).unwrap();
    assert!(matches!(
        op.parse(answer(200, json!({"hits": "all"}))),
        Err(Error::Protocol(ProtocolError::BadJson { .. }))
    ));
    // A Box without the plan: its 404 is Box's error, for the caller to fall back on.
    let op = PlanUploadSession::by_id(SID, parts()).unwrap();
    let e = op.parse(answer(404, json!({"type": "error", "status": 404, "code": "not_found"}))).unwrap_err();
    assert_eq!(e.box_code(), Some("not_found"));
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    assert!(matches!(PlanUploadSession::by_id(SID, vec![]), Err(InputError::PlanParts { count: 0 })));
    let many: Vec<PlanPart> = (0..=MAX_PLAN_PARTS as u64)
        .map(|i| PlanPart { offset: i, size: 1, sha512: Sha512Digest::of(b"x").to_hex() })
        .collect();
    assert!(matches!(PlanUploadSession::by_id(SID, many), Err(InputError::PlanParts { count: 1001 })));
    let mut twice = parts();
    twice[1].offset = 0;
    assert!(PlanUploadSession::by_id(SID, twice).is_err());
    let mut short = parts();
    short[0].sha512 = "00".into();
    assert!(PlanUploadSession::by_id(SID, short).is_err());
}

#[test]
fn a_plan_url_on_a_foreign_host_gets_no_token() {
    let client = Client::new(Config::new(), DeveloperToken::new("secret-token"));
    let op = PlanUploadSession::by_url("https://evil.example/2.0/files/upload_sessions/X/plan", parts()).unwrap();
    let mut call = client.call(op);
    assert!(call.poll_transmit(Instant::now()).is_none(), "nothing is sent to a foreign host");
    let e = call.poll_output().expect("finished").unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::UntrustedHost(_)) && text.contains("evil.example"), "{text}");
    assert!(text.contains("session_endpoints.plan"), "{text}");
    assert!(!text.contains("secret-token"));
}

#[test]
fn session_endpoints_keep_the_plan_url() {
    let body = json!({"id": SID, "part_size": 8, "total_parts": 3,
        "session_endpoints": {"plan": "https://upload.box.com/api/2.0/files/upload_sessions/X/plan"}});
    let session: UploadSession = serde_json::from_value(body).unwrap();
    let endpoints: SessionEndpoints = session.session_endpoints.clone().unwrap();
    assert_eq!(endpoints.plan.as_deref(), Some("https://upload.box.com/api/2.0/files/upload_sessions/X/plan"));
    let back = serde_json::to_value(&session).unwrap();
    assert_eq!(back["session_endpoints"]["plan"], "https://upload.box.com/api/2.0/files/upload_sessions/X/plan");
}
