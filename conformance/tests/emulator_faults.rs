//! Round trips of large files and every fault kind.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{data, sha1_b64, sha1_hex, Client};
use http::Method;
use serde_json::{json, Value};

use box_upload_conformance::{EchoField, Emulator, FaultAction, Faults, Op, Trigger};

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 20_000_001;

async fn start(faults: Faults) -> (Emulator, Client) {
    let emu = Emulator::builder().token("tok").faults(faults).seed(7).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    (emu, client)
}

#[tokio::test]
async fn round_trip_20_000_001_bytes() {
    let (emu, client) = start(Faults::none()).await;
    let content = data(SIZE as usize, 21);
    let r = common::upload_file(&client, "0", "odd.bin", &content).await;
    assert_eq!(r.status, 201);
    let id = r.json()["entries"][0]["id"].as_str().unwrap().to_string();
    let got = client.get(&format!("/api/2.0/files/{id}/content")).await;
    assert_eq!(got.header("content-length").unwrap(), SIZE.to_string());
    assert!(got.body == content);
    assert_eq!(emu.counters().bytes_received, SIZE);
    assert_eq!(emu.counters().parts_stored, 3);
    assert_eq!(emu.counters().commits, 1);
}

#[tokio::test]
async fn round_trip_100_mb_with_four_parallel_clients() {
    let emu = Emulator::builder().token("tok").part_size(16 * MIB).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let size = 100_000_000usize;
    let content = Arc::new(data(size, 22));
    let s = client.session("0", size as u64, "big.bin").await;
    let id = s["id"].as_str().unwrap().to_string();
    let ps = 16 * MIB as usize;
    let n = size.div_ceil(ps);
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (client, content, id) = (client.clone(), Arc::clone(&content), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut parts = Vec::new();
            // Each worker keeps one connection and uploads every fourth part, last first.
            let mut conn = common::Conn::open(client.addr).await.unwrap();
            for i in (0..n).rev().filter(|i| i % 4 == worker) {
                let start = i * ps;
                let end = (start + ps).min(size);
                let r = conn.send(client.part_req(&id, start as u64, &content[start..end], size as u64)).await.unwrap();
                assert_eq!(r.status, 200);
                parts.push(r.json()["part"].clone());
            }
            parts
        }));
    }
    let mut parts: Vec<Value> = Vec::new();
    for t in tasks {
        parts.extend(t.await.unwrap());
    }
    parts.sort_by_key(|p| p["offset"].as_u64().unwrap());
    let r = client.commit(&id, &parts, &format!("sha={}", sha1_b64(&content)), &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let file_id = r.json()["entries"][0]["id"].as_str().unwrap().to_string();
    let got = client.get(&format!("/api/2.0/files/{file_id}/content")).await;
    assert_eq!(got.body.len(), size);
    assert!(got.body == content[..], "content differs");
}

#[tokio::test]
async fn status_faults_for_the_first_n_requests() {
    let faults = Faults::none()
        .rule(Op::CreateSession, Trigger::FirstN(2), FaultAction::Status { status: 503, retry_after: None })
        .rule(Op::GetSession, Trigger::FirstN(1), FaultAction::Status { status: 429, retry_after: Some(3) })
        .rule(Op::Token, Trigger::Always, FaultAction::Status { status: 500, retry_after: None });
    let (emu, client) = start(faults).await;
    let r = client.create_session("0", SIZE, "a").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.code(), "unavailable");
    assert_eq!(client.create_session("0", SIZE, "a").await.status, 503);
    let s = client.session("0", SIZE, "a").await;
    let path = format!("/api/2.0/files/upload_sessions/{}", s["id"].as_str().unwrap());
    let r = client.get(&path).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("3"));
    assert_eq!(r.code(), "rate_limit_exceeded");
    assert_eq!(client.get(&path).await.status, 200);
    let t = client.send(http::Request::post("/oauth2/token").body(common::full("grant_type=x")).unwrap()).await;
    assert_eq!(t.status, 500);
    assert_eq!(emu.counters().faults_injected, 4);
}

#[tokio::test]
async fn window_trigger_hits_only_the_chosen_request() {
    let faults = Faults::none().rule(
        Op::UploadPart,
        Trigger::Window { skip: 1, count: 1 },
        FaultAction::Status { status: 500, retry_after: None },
    );
    let (_emu, client) = start(faults).await;
    let s = client.session("0", SIZE, "a").await;
    let id = s["id"].as_str().unwrap();
    let content = data(SIZE as usize, 23);
    let ps = 8 * MIB as usize;
    assert_eq!(client.put_part(id, 0, &content[..ps], SIZE).await.status, 200);
    assert_eq!(client.put_part(id, ps as u64, &content[ps..2 * ps], SIZE).await.status, 500);
    assert_eq!(client.put_part(id, ps as u64, &content[ps..2 * ps], SIZE).await.status, 200);
}

#[tokio::test]
async fn probability_faults_are_deterministic_for_a_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let faults = Faults::none().rule(
            Op::GetSession,
            Trigger::Probability(0.5),
            FaultAction::Status { status: 500, retry_after: None },
        );
        let emu = Emulator::builder().token("tok").faults(faults).seed(seed).start().await.unwrap();
        let client = Client::new(emu.addr(), "tok");
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(client.get("/api/2.0/files/upload_sessions/NOPE").await.status.as_u16());
        }
        out
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert!(a.contains(&500) && a.contains(&404), "{a:?}");
    assert_ne!(a, run(43).await);
}

#[tokio::test]
async fn cut_mid_body_stores_nothing() {
    let faults = Faults::none().rule(Op::UploadPart, Trigger::FirstN(1), FaultAction::CutBody);
    let (emu, client) = start(faults).await;
    let s = client.session("0", SIZE, "a").await;
    let id = s["id"].as_str().unwrap();
    let part = data(8 * MIB as usize, 24);
    let r = client.try_send(client.part_req(id, 0, &part, SIZE)).await;
    assert!(r.is_err(), "expected a closed connection, got {r:?}");
    assert_eq!(emu.counters().parts_stored, 0);
    assert!(emu.counters().bytes_received >= 4 * MIB);
    // The range was released: the retry succeeds.
    assert_eq!(client.put_part(id, 0, &part, SIZE).await.status, 200);
}

#[tokio::test]
async fn answer_lost_after_the_part_was_stored() {
    let faults = Faults::none().rule(Op::UploadPart, Trigger::FirstN(1), FaultAction::DropAnswer);
    let (emu, client) = start(faults).await;
    let s = client.session("0", SIZE, "a").await;
    let id = s["id"].as_str().unwrap();
    let part = data(8 * MIB as usize, 25);
    assert!(client.try_send(client.part_req(id, 0, &part, SIZE)).await.is_err());
    assert_eq!(emu.counters().parts_stored, 1);
    let listed = client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json();
    assert_eq!(listed["entries"][0]["sha1"], sha1_hex(&part).as_str());
    let retry = client.put_part(id, 0, &part, SIZE).await;
    assert_eq!(retry.status, 416);
    assert_eq!(retry.code(), "range_overlaps_existing_part");
}

#[tokio::test]
async fn cut_and_drop_on_other_kinds() {
    let faults = Faults::none().rule(Op::CreateSession, Trigger::FirstN(1), FaultAction::CutBody).rule(
        Op::Commit,
        Trigger::FirstN(1),
        FaultAction::DropAnswer,
    );
    let (emu, client) = start(faults).await;
    let body = json!({"folder_id": "0", "file_size": SIZE, "file_name": "a"}).to_string();
    let req = || client.req(Method::POST, "/api/2.0/files/upload_sessions").body(common::full(body.clone())).unwrap();
    assert!(client.try_send(req()).await.is_err());
    assert!(emu.session_ids().is_empty());
    let s = client.send(req()).await.json();
    let content = data(SIZE as usize, 26);
    let parts = client.upload_all(&s, &content).await;
    let id = s["id"].as_str().unwrap();
    let digest = format!("sha={}", sha1_b64(&content));
    let commit = client
        .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/commit"))
        .header("digest", digest.as_str())
        .body(common::full(json!({"parts": parts}).to_string()))
        .unwrap();
    assert!(client.try_send(commit).await.is_err());
    // The commit happened although the answer was lost.
    assert!(emu.find_file("0", "a").is_some());
    assert_eq!(client.commit(id, &parts, &digest, &[]).await.status, 404);
}

/// A commit request (on a fresh connection, so a lost answer is an `Err`).
fn commit_req(client: &Client, id: &str, parts: &[Value], digest: &str) -> http::Request<common::ReqBody> {
    client
        .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/commit"))
        .header("content-type", "application/json")
        .header("digest", digest)
        .body(common::full(json!({"parts": parts}).to_string()))
        .unwrap()
}

#[tokio::test]
async fn commit_applied_answer_lost() {
    let faults = Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitAnswerLost);
    let emu = Emulator::builder().token("tok").min_file_size(1).part_size(1024).faults(faults).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let content = data(2500, 40);
    let digest = format!("sha={}", sha1_b64(&content));
    let s = client.session("0", 2500, "lost.bin").await;
    let id = s["id"].as_str().unwrap();
    let parts = client.upload_all(&s, &content).await;
    let r = client.try_send(commit_req(&client, id, &parts, &digest)).await;
    assert!(r.is_err(), "expected a closed connection, got {r:?}");
    // Applied: the file exists, the session is gone.
    let file = emu.find_file("0", "lost.bin").unwrap();
    assert_eq!(file.sha1, sha1_hex(&content));
    assert!(emu.session_ids().is_empty());
    assert_eq!(emu.counters().commits, 1);
    assert_eq!(emu.counters().faults_injected, 1);
    let got = client.get(&format!("/2.0/files/{}", file.id)).await.json();
    assert_eq!(got["sha1"], sha1_hex(&content).as_str());
    // The retried commit: 404, as Box answers for a committed session.
    let retry = client.commit(id, &parts, &digest, &[]).await;
    assert_eq!(retry.status, 404);
    assert_eq!(retry.code(), "not_found");
    assert_eq!(client.get(&format!("/api/2.0/files/upload_sessions/{id}")).await.status, 404);

    // A new version: stored, answer lost.
    emu.set_faults(Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitAnswerLost));
    let v2 = data(1500, 41);
    let digest2 = format!("sha={}", sha1_b64(&v2));
    let r = client
        .json(Method::POST, &format!("/api/2.0/files/{}/upload_sessions", file.id), &json!({"file_size": 1500}))
        .await;
    let s = r.json();
    let id2 = s["id"].as_str().unwrap();
    let parts2 = client.upload_all(&s, &v2).await;
    assert!(client.try_send(commit_req(&client, id2, &parts2, &digest2)).await.is_err());
    let info = emu.file_info(&file.id).unwrap();
    assert_eq!(info.etag, "1");
    assert_eq!(emu.file_content(&file.id).unwrap(), v2);
    assert_eq!(client.commit(id2, &parts2, &digest2, &[]).await.status, 404);
}

#[tokio::test]
async fn commit_answer_lost_only_when_the_commit_is_applied() {
    let faults = Faults::none()
        .rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitPending { retry_after: Some(1) })
        .rule(Op::Commit, Trigger::Always, FaultAction::CommitAnswerLost);
    let emu = Emulator::builder().token("tok").min_file_size(1).part_size(1024).faults(faults).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let content = data(2048, 42);
    let digest = format!("sha={}", sha1_b64(&content));
    let s = client.session("0", 2048, "later.bin").await;
    let id = s["id"].as_str().unwrap();
    let parts = client.upload_all(&s, &content).await;
    // 202: answered.
    assert_eq!(client.commit(id, &parts, &digest, &[]).await.status, 202);
    // Refused: answered.
    let wrong = format!("sha={}", sha1_b64(b"other"));
    let r = client.commit(id, &parts, &wrong, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "digest_mismatch");
    assert_eq!(emu.counters().commits, 0);
    // Applied: no answer.
    assert!(client.try_send(commit_req(&client, id, &parts, &digest)).await.is_err());
    assert_eq!(emu.counters().commits, 1);
    assert!(emu.find_file("0", "later.bin").is_some());
}

#[tokio::test]
async fn delays_slow_down_answers() {
    let faults =
        Faults::none().rule(Op::GetSession, Trigger::FirstN(1), FaultAction::Delay(Duration::from_millis(300)));
    let (_emu, client) = start(faults).await;
    let t = Instant::now();
    assert_eq!(client.get("/api/2.0/files/upload_sessions/X").await.status, 404);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    client.get("/api/2.0/files/upload_sessions/X").await;
    assert!(t.elapsed() < Duration::from_millis(300));
}

async fn ready_session(client: &Client, name: &str) -> (String, Vec<Value>, String) {
    let content = data(SIZE as usize, 27);
    let s = client.session("0", SIZE, name).await;
    let parts = client.upload_all(&s, &content).await;
    (s["id"].as_str().unwrap().to_string(), parts, format!("sha={}", sha1_b64(&content)))
}

#[tokio::test]
async fn commit_answers_202_n_times() {
    let faults =
        Faults::none().rule(Op::Commit, Trigger::FirstN(2), FaultAction::CommitPending { retry_after: Some(1) });
    let (emu, client) = start(faults).await;
    let (id, parts, digest) = ready_session(&client, "p.bin").await;
    for _ in 0..2 {
        let r = client.commit(&id, &parts, &digest, &[]).await;
        assert_eq!(r.status, 202);
        assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        assert!(r.body.is_empty());
    }
    assert_eq!(client.commit(&id, &parts, &digest, &[]).await.status, 201);
    // 202 without Retry-After, forever.
    emu.set_faults(Faults::none().rule(Op::Commit, Trigger::Always, FaultAction::CommitPending { retry_after: None }));
    let (id, parts, digest) = ready_session(&client, "q.bin").await;
    for _ in 0..3 {
        let r = client.commit(&id, &parts, &digest, &[]).await;
        assert_eq!(r.status, 202);
        assert!(r.header("retry-after").is_none());
    }
    assert!(emu.find_file("0", "q.bin").is_none());
}

#[tokio::test]
async fn transient_parts_mismatch() {
    let faults = Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::PartsMismatch);
    let (_emu, client) = start(faults).await;
    let (id, parts, digest) = ready_session(&client, "m.bin").await;
    let r = client.commit(&id, &parts, &digest, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "parts_mismatch");
    assert_eq!(client.commit(&id, &parts, &digest, &[]).await.status, 201);
}

#[tokio::test]
async fn foreign_session_endpoints() {
    let (emu, client) = start(Faults::none().foreign_endpoints("http://foreign.invalid:9/api")).await;
    let s = client.session("0", SIZE, "f").await;
    let id = s["id"].as_str().unwrap();
    for key in ["upload_part", "commit", "abort", "list_parts", "status", "log_event"] {
        assert!(
            s["session_endpoints"][key]
                .as_str()
                .unwrap()
                .starts_with("http://foreign.invalid:9/api/2.0/files/upload_sessions/"),
            "{key}"
        );
    }
    emu.set_faults(Faults::none());
    let again = client.get(&format!("/api/2.0/files/upload_sessions/{id}")).await.json();
    assert!(again["session_endpoints"]["status"].as_str().unwrap().starts_with(&emu.upload_base_url()));
}

#[tokio::test]
async fn wrong_part_echoes() {
    let (emu, client) = start(Faults::none()).await;
    let s = client.session("0", SIZE, "e").await;
    let id = s["id"].as_str().unwrap();
    let content = data(SIZE as usize, 28);
    let ps = 8 * MIB as usize;
    let cases = [(EchoField::Sha1, 0usize), (EchoField::Offset, 1), (EchoField::Size, 2)];
    for (field, i) in cases {
        emu.set_faults(Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::WrongEcho(field)));
        let start = i * ps;
        let end = (start + ps).min(SIZE as usize);
        let part = &client.put_part(id, start as u64, &content[start..end], SIZE).await.json()["part"];
        match field {
            EchoField::Sha1 => assert_ne!(part["sha1"], sha1_hex(&content[start..end]).as_str()),
            EchoField::Offset => assert_ne!(part["offset"], start as u64),
            EchoField::Size => assert_ne!(part["size"], (end - start) as u64),
        }
    }
    // What was stored is right.
    emu.set_faults(Faults::none());
    let listed = client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json();
    assert_eq!(listed["entries"][0]["sha1"], sha1_hex(&content[..ps]).as_str());
    assert_eq!(listed["entries"][1]["offset"], ps as u64);
}

#[tokio::test]
async fn lying_total_count() {
    let (emu, client) =
        start(Faults::none().rule(Op::ListParts, Trigger::Always, FaultAction::LyingTotalCount(5))).await;
    let s = client.session("0", SIZE, "l").await;
    let id = s["id"].as_str().unwrap();
    let j = client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json();
    assert_eq!(j["total_count"], 5);
    assert_eq!(j["entries"], json!([]));
    emu.set_faults(Faults::none());
    assert_eq!(client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json()["total_count"], 0);
}

#[tokio::test]
async fn huge_json_body() {
    let (_emu, client) =
        start(Faults::none().rule(Op::ListParts, Trigger::Always, FaultAction::HugeBody { len: 8_000_000 })).await;
    let r = client.get("/api/2.0/files/upload_sessions/X/parts").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 8_000_000);
    assert!(r.body.starts_with(b"{\"entries\":["));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
}

#[tokio::test]
async fn redirect_to_another_host() {
    let (_emu, client) = start(Faults::none().rule(
        Op::GetSession,
        Trigger::Always,
        FaultAction::Redirect { location: "http://elsewhere.invalid/x".into() },
    ))
    .await;
    let r = client.get("/api/2.0/files/upload_sessions/X").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").as_deref(), Some("http://elsewhere.invalid/x"));
}

#[test]
fn blocking_emulator_serves_sync_code() {
    use std::io::{Read, Write};
    let emu = Emulator::builder().token("tok").start_blocking().unwrap();
    let folder = emu.create_folder("sync").unwrap();
    let mut stream = std::net::TcpStream::connect(emu.addr()).unwrap();
    let body = json!({"folder_id": folder, "file_size": SIZE, "file_name": "s.bin"}).to_string();
    write!(
        stream,
        "POST /api/2.0/files/upload_sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(emu.session_ids().len(), 1);
    drop(emu);
}
