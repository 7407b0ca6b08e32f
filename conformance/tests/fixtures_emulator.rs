//! Fixtures of every operation and of Box's error answers, recorded from the emulator through the
//! recorder, and replayed by the replay server.
//!
//! `BOX_UPLOAD_RECORD_FIXTURES=1 cargo test -p box-upload-conformance --test fixtures_emulator`
//! re-records `conformance/fixtures/emulator/*.json`. Without it, each committed fixture is
//! replayed: the same scenario runs against a [`ReplayServer`], which must see exactly the
//! recorded requests and have every exchange consumed.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::{data, sha1_b64, Client};
use http::Method;
use serde_json::{json, Value};

use box_upload_conformance::fixture::{Body, Fixture};
use box_upload_conformance::recorder::{Output, Recorder, RecorderConfig};
use box_upload_conformance::replay::ReplayServer;
use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};

const SIZE: u64 = 20_000_000;
const PS: usize = 8 * 1024 * 1024;
/// The first id a fresh emulator gives (folders and files share one counter).
const FIRST_ID: &str = "100000000001";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("emulator")
}

/// Path part of a session endpoint URL (the "by url" variants follow `session_endpoints`).
fn endpoint_path(session: &Value, key: &str) -> String {
    let url = session["session_endpoints"][key].as_str().unwrap();
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

fn sid(s: &Value) -> String {
    s["id"].as_str().unwrap().to_string()
}

struct Scenario {
    name: &'static str,
    description: &'static str,
    /// Setup on the emulator before recording (not recorded).
    setup: fn(&Emulator),
    faults: fn() -> Faults,
}

fn no_setup(_: &Emulator) {}
fn with_file(emu: &Emulator) {
    let f = emu.create_file("0", "existing.bin", b"old content").unwrap();
    assert_eq!(f.id, FIRST_ID);
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "create_session",
        description: "POST /files/upload_sessions for a new file",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "create_session_for_existing_file",
        description: "POST /files/{id}/upload_sessions (new version)",
        setup: with_file,
        faults: Faults::none,
    },
    Scenario {
        name: "get_session_by_id",
        description: "GET /files/upload_sessions/{id}",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "get_session_by_url",
        description: "GET session_endpoints.status",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "upload_part_by_id",
        description: "PUT /files/upload_sessions/{id} with Digest and Content-Range",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "upload_part_by_url",
        description: "PUT session_endpoints.upload_part",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "abort_by_id",
        description: "DELETE /files/upload_sessions/{id}, then GET is 404",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "abort_by_url",
        description: "DELETE session_endpoints.abort",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "list_parts_by_id",
        description: "GET /files/upload_sessions/{id}/parts",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "list_parts_by_url",
        description: "GET session_endpoints.list_parts with offset and limit",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "commit_by_id",
        description: "all parts, then POST /files/upload_sessions/{id}/commit",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "commit_by_url",
        description: "all parts, then POST session_endpoints.commit",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "upload_big_file",
        description: "create, parts in order, commit (the SDKs' upload_big_file flow; box-upload's too when every part's answer echoed it)",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "error_400",
        description: "400 file_size_too_small and item_name_invalid",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario { name: "error_401", description: "401 unauthorized (bad token)", setup: no_setup, faults: Faults::none },
    Scenario {
        name: "error_404",
        description: "404 not_found for an unknown session and folder",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario { name: "error_409", description: "409 item_name_in_use", setup: with_file, faults: Faults::none },
    Scenario {
        name: "error_412",
        description: "412 precondition_failed: part digest mismatch, and If-Match on commit",
        setup: with_file,
        faults: Faults::none,
    },
    Scenario {
        name: "error_416",
        description: "416 misaligned range and range_overlaps_existing_part",
        setup: no_setup,
        faults: Faults::none,
    },
    Scenario {
        name: "error_429",
        description: "429 with Retry-After, then 201",
        setup: no_setup,
        faults: || {
            Faults::none().rule(
                Op::CreateSession,
                Trigger::FirstN(1),
                FaultAction::Status { status: 429, retry_after: Some(2) },
            )
        },
    },
    Scenario {
        name: "error_500",
        description: "500 on get session, then 200",
        setup: no_setup,
        faults: || {
            Faults::none().rule(
                Op::GetSession,
                Trigger::FirstN(1),
                FaultAction::Status { status: 500, retry_after: None },
            )
        },
    },
    Scenario {
        name: "commit_202",
        description: "commit answered 202 with Retry-After, then 201",
        setup: no_setup,
        faults: || {
            Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitPending { retry_after: Some(1) })
        },
    },
];

async fn create(c: &Client, name: &str) -> Value {
    c.session("0", SIZE, name).await
}

async fn put(c: &Client, path: &str, content: &[u8], i: usize) -> common::Resp {
    let start = i * PS;
    let end = (start + PS).min(content.len());
    let part = &content[start..end];
    let req = c
        .req(Method::PUT, path)
        .header("content-type", "application/octet-stream")
        .header("digest", format!("sha={}", sha1_b64(part)))
        .header("content-range", format!("bytes {start}-{}/{}", end - 1, content.len()))
        .body(common::full(part.to_vec()))
        .unwrap();
    c.send(req).await
}

async fn commit(c: &Client, path: &str, parts: &[Value], content: &[u8], extra: &[(&str, &str)]) -> common::Resp {
    let mut b = c
        .req(Method::POST, path)
        .header("content-type", "application/json")
        .header("digest", format!("sha={}", sha1_b64(content)));
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    c.send(b.body(common::full(json!({"parts": parts}).to_string())).unwrap()).await
}

/// Runs one scenario against `addr` (the recorder or a replay server) and checks the answers.
async fn run(name: &str, addr: SocketAddr) {
    let c = Client::new(addr, "test-token");
    let content = data(SIZE as usize, 99);
    let by_id = |s: &Value| format!("/api/2.0/files/upload_sessions/{}", sid(s));
    match name {
        "create_session" => {
            let s = create(&c, "new.bin").await;
            assert_eq!(s["total_parts"], 3);
        }
        "create_session_for_existing_file" => {
            let r = c
                .json(
                    Method::POST,
                    &format!("/api/2.0/files/{FIRST_ID}/upload_sessions"),
                    &json!({"file_size": SIZE, "file_name": "existing.bin"}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
        "get_session_by_id" | "get_session_by_url" => {
            let s = create(&c, "g.bin").await;
            let path = if name.ends_with("id") { by_id(&s) } else { endpoint_path(&s, "status") };
            let r = c.get(&path).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.json()["id"], s["id"]);
        }
        "upload_part_by_id" | "upload_part_by_url" => {
            let s = create(&c, "p.bin").await;
            let path = if name.ends_with("id") { by_id(&s) } else { endpoint_path(&s, "upload_part") };
            let r = put(&c, &path, &content, 0).await;
            assert_eq!(r.status, 200);
        }
        "abort_by_id" | "abort_by_url" => {
            let s = create(&c, "a.bin").await;
            let path = if name.ends_with("id") { by_id(&s) } else { endpoint_path(&s, "abort") };
            assert_eq!(c.delete(&path).await.status, 204);
            assert_eq!(c.get(&by_id(&s)).await.status, 404);
        }
        "list_parts_by_id" | "list_parts_by_url" => {
            let s = create(&c, "l.bin").await;
            assert_eq!(put(&c, &by_id(&s), &content, 1).await.status, 200);
            assert_eq!(put(&c, &by_id(&s), &content, 0).await.status, 200);
            let path = if name.ends_with("id") {
                format!("{}/parts", by_id(&s))
            } else {
                format!("{}?offset=0&limit=1", endpoint_path(&s, "list_parts"))
            };
            let r = c.get(&path).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.json()["total_count"], 2);
        }
        "commit_by_id" | "commit_by_url" | "upload_big_file" | "commit_202" => {
            let s = create(&c, "c.bin").await;
            let mut parts = Vec::new();
            for i in 0..3 {
                let r = put(&c, &endpoint_path(&s, "upload_part"), &content, i).await;
                assert_eq!(r.status, 200);
                parts.push(r.json()["part"].clone());
            }
            let path =
                if name == "commit_by_id" { format!("{}/commit", by_id(&s)) } else { endpoint_path(&s, "commit") };
            if name == "commit_202" {
                let r = commit(&c, &path, &parts, &content, &[]).await;
                assert_eq!(r.status, 202);
                assert_eq!(r.header("retry-after").as_deref(), Some("1"));
            }
            let r = commit(&c, &path, &parts, &content, &[]).await;
            assert_eq!(r.status, 201);
            assert_eq!(r.json()["entries"][0]["size"], SIZE);
        }
        "error_400" => {
            let r = c.create_session("0", SIZE - 1, "small.bin").await;
            assert_eq!((r.status.as_u16(), r.code()), (400, "file_size_too_small".to_string()));
            let r = c.create_session("0", SIZE, "a/b").await;
            assert_eq!((r.status.as_u16(), r.code()), (400, "item_name_invalid".to_string()));
        }
        "error_401" => {
            let r = Client::new(addr, "expired-or-wrong").create_session("0", SIZE, "x.bin").await;
            assert_eq!(r.status, 401);
        }
        "error_404" => {
            assert_eq!(c.get("/api/2.0/files/upload_sessions/0000000000000000000000000000FFFF").await.status, 404);
            assert_eq!(c.create_session("123", SIZE, "x.bin").await.status, 404);
        }
        "error_409" => {
            let r = c.create_session("0", SIZE, "existing.bin").await;
            assert_eq!((r.status.as_u16(), r.code()), (409, "item_name_in_use".to_string()));
        }
        "error_412" => {
            let s = create(&c, "d.bin").await;
            let req = c
                .req(Method::PUT, &by_id(&s))
                .header("content-type", "application/octet-stream")
                .header("digest", format!("sha={}", sha1_b64(b"not this part")))
                .header("content-range", format!("bytes 0-{}/{SIZE}", PS - 1))
                .body(common::full(content[..PS].to_vec()))
                .unwrap();
            assert_eq!(c.send(req).await.status, 412);
            let r = c
                .json(Method::POST, &format!("/api/2.0/files/{FIRST_ID}/upload_sessions"), &json!({"file_size": SIZE}))
                .await;
            let s = r.json();
            let mut parts = Vec::new();
            for i in 0..3 {
                parts.push(put(&c, &by_id(&s), &content, i).await.json()["part"].clone());
            }
            let r = commit(&c, &format!("{}/commit", by_id(&s)), &parts, &content, &[("if-match", "5")]).await;
            assert_eq!((r.status.as_u16(), r.code()), (412, "precondition_failed".to_string()));
        }
        "error_416" => {
            let s = create(&c, "r.bin").await;
            let req = c
                .req(Method::PUT, &by_id(&s))
                .header("content-type", "application/octet-stream")
                .header("digest", format!("sha={}", sha1_b64(&content[1..PS + 1])))
                .header("content-range", format!("bytes 1-{PS}/{SIZE}"))
                .body(common::full(content[1..PS + 1].to_vec()))
                .unwrap();
            assert_eq!(c.send(req).await.status, 416);
            assert_eq!(put(&c, &by_id(&s), &content, 0).await.status, 200);
            let r = put(&c, &by_id(&s), &content, 0).await;
            assert_eq!((r.status.as_u16(), r.code()), (416, "range_overlaps_existing_part".to_string()));
        }
        "error_429" => {
            let r = c.create_session("0", SIZE, "t.bin").await;
            assert_eq!(r.status, 429);
            assert_eq!(r.header("retry-after").as_deref(), Some("2"));
            assert_eq!(c.create_session("0", SIZE, "t.bin").await.status, 201);
        }
        "error_500" => {
            let s = create(&c, "f.bin").await;
            assert_eq!(c.get(&by_id(&s)).await.status, 500);
            assert_eq!(c.get(&by_id(&s)).await.status, 200);
        }
        other => panic!("unknown scenario {other}"),
    }
}

async fn record(s: &Scenario, out: PathBuf) {
    let emu = Emulator::builder().token("test-token").seed(1).faults((s.faults)()).start().await.unwrap();
    (s.setup)(&emu);
    let rec = Recorder::start(RecorderConfig {
        upstream: emu.base_url(),
        listen: "127.0.0.1:0".parse().unwrap(),
        output: Output::File(out),
        scenario: s.name.into(),
        source: "emulator".into(),
        redact: vec!["test-token".into()],
    })
    .await
    .unwrap();
    rec.start_scenario(s.name, s.description).unwrap();
    run(s.name, rec.addr()).await;
    rec.finish().await.unwrap();
}

#[tokio::test]
async fn recorded_fixtures_replay() {
    let recording = std::env::var_os("BOX_UPLOAD_RECORD_FIXTURES").is_some();
    let tmp = tempfile::tempdir().unwrap();
    for s in SCENARIOS {
        let committed = dir().join(format!("{}.json", s.name));
        if recording {
            record(s, committed.clone()).await;
        } else {
            // Recording works (into a scratch directory) ...
            let scratch = tmp.path().join(format!("{}.json", s.name));
            record(s, scratch.clone()).await;
            let fresh = Fixture::load(&scratch).unwrap();
            let old = Fixture::load(&committed).unwrap();
            assert_eq!(fresh.exchanges.len(), old.exchanges.len(), "{}: re-record the fixtures", s.name);
        }
        // ... and the committed fixture replays.
        let fixture = Fixture::load(&committed).unwrap();
        assert_eq!(fixture.name, s.name);
        let text = std::fs::read_to_string(&committed).unwrap();
        assert!(!text.contains("test-token"), "{}: token not redacted", s.name);
        assert!(!text.contains("127.0.0.1"), "{}: host not redacted", s.name);
        let replay = ReplayServer::start(fixture).await.unwrap();
        run(s.name, replay.addr()).await;
        replay.finish().await.unwrap_or_else(|e| panic!("{}: {e}", s.name));
    }
}

#[tokio::test]
async fn fixtures_cover_the_documented_answers() {
    let mut statuses = std::collections::BTreeSet::new();
    for f in Fixture::load_dir(dir()).unwrap() {
        for ex in &f.exchanges {
            statuses.insert(ex.response.status);
            assert_eq!(ex.request.headers.get("authorization").map(String::as_str), Some("Bearer REDACTED"));
            if ex.request.method == "PUT" {
                assert!(matches!(ex.request.body, Body::Binary { .. }), "part bodies are len+sha1 only");
            }
        }
    }
    for s in [200, 201, 202, 204, 400, 401, 404, 409, 412, 416, 429, 500] {
        assert!(statuses.contains(&s), "no fixture answers {s}");
    }
}

#[tokio::test]
async fn replay_reports_mismatches_and_leftovers() {
    let fixture = Fixture::load(dir().join("get_session_by_id.json")).unwrap();
    // A different request: mismatch, answered 599.
    let replay = ReplayServer::start(fixture.clone()).await.unwrap();
    let c = Client::new(replay.addr(), "test-token");
    let r = c.create_session("0", SIZE, "other-name.bin").await;
    assert_eq!(r.status, 599);
    assert_eq!(r.code(), "replay_mismatch");
    assert!(r.json()["message"].as_str().unwrap().contains("file_name"));
    let err = replay.finish().await.unwrap_err();
    assert!(err.to_string().contains("did not match"), "{err}");
    // Stopping early: unconsumed exchanges.
    let replay = ReplayServer::start(fixture).await.unwrap();
    let c = Client::new(replay.addr(), "test-token");
    assert_eq!(c.create_session("0", SIZE, "g.bin").await.status, 201);
    let err = replay.finish().await.unwrap_err();
    assert!(err.to_string().contains("never requested"), "{err}");
}

#[tokio::test]
async fn replay_accepts_parallel_parts_in_any_order() {
    let fixture = Fixture::load(dir().join("commit_by_url.json")).unwrap();
    let replay = ReplayServer::start(fixture).await.unwrap();
    let c = Client::new(replay.addr(), "test-token");
    let content = data(SIZE as usize, 99);
    let s = create(&c, "c.bin").await;
    let path = endpoint_path(&s, "upload_part");
    let mut parts = vec![Value::Null; 3];
    for i in [2usize, 0, 1] {
        let r = put(&c, &path, &content, i).await;
        assert_eq!(r.status, 200);
        parts[i] = r.json()["part"].clone();
    }
    assert_eq!(commit(&c, &endpoint_path(&s, "commit"), &parts, &content, &[]).await.status, 201);
    replay.finish().await.unwrap();
}
