//! The request log (`EmulatorBuilder::on_request`): one record per request once it is over, with
//! the part's range and how it ended: answered, withheld by a fault, or closed before an answer
//! (also when the client goes away mid-body).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{data, sha1_b64, Client};
use http::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, RequestOutcome, RequestRecord, Trigger};

const SIZE: u64 = 3000;

/// What the test checks of a record: kind, part range, outcome.
type Seen = (Op, Option<(u64, u64, u64)>, RequestOutcome);

/// Waits (up to 5 s) until `log` holds `n` records.
async fn wait_for(log: &Mutex<Vec<RequestRecord>>, n: usize) {
    for _ in 0..500 {
        if log.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} records, expected {n}: {:?}", log.lock().unwrap().len(), log.lock().unwrap());
}

#[tokio::test]
async fn every_request_is_recorded_with_its_range_and_outcome() {
    let faults = Faults::none()
        .rule(
            Op::UploadPart,
            Trigger::Window { skip: 0, count: 1 },
            FaultAction::Status { status: 503, retry_after: None },
        )
        .rule(Op::UploadPart, Trigger::Window { skip: 1, count: 1 }, FaultAction::DropAnswer)
        .rule(Op::UploadPart, Trigger::Window { skip: 2, count: 1 }, FaultAction::CutBody)
        .rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitAnswerLost);
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let emu = Emulator::builder()
        .token("tok")
        .min_file_size(1)
        .part_size(1024)
        .faults(faults)
        .on_request(move |r| sink.lock().unwrap().push(r.clone()))
        .start()
        .await
        .unwrap();
    let client = Client::new(emu.addr(), "tok");
    let content = data(SIZE as usize, 50);
    let s = client.session("0", SIZE, "logged.bin").await;
    let id = s["id"].as_str().unwrap();
    let part = |i: usize| &content[i * 1024..((i + 1) * 1024).min(SIZE as usize)];

    assert_eq!(client.send(client.part_req(id, 0, part(0), SIZE)).await.status, 503);
    assert!(client.try_send(client.part_req(id, 0, part(0), SIZE)).await.is_err(), "answer dropped");
    assert!(client.try_send(client.part_req(id, 1024, part(1), SIZE)).await.is_err(), "body cut");
    let mut parts = vec![json!({"part_id": "?"})];
    for (i, offset) in [(1, 1024), (2, 2048)] {
        let r = client.put_part(id, offset, part(i), SIZE).await;
        assert_eq!(r.status, 200);
        parts.push(r.json()["part"].clone());
    }
    let listed = client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json();
    parts[0] = listed["entries"][0].clone();
    let digest = format!("sha={}", sha1_b64(&content));
    let commit = client
        .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/commit"))
        .header("content-type", "application/json")
        .header("digest", digest.as_str())
        .body(common::full(json!({"parts": parts}).to_string()))
        .unwrap();
    assert!(client.try_send(commit).await.is_err(), "commit answer lost");
    assert!(emu.find_file("0", "logged.bin").is_some(), "the commit was applied");

    // A client that goes away halfway through a part's body.
    let other = client.session("0", SIZE, "abandoned.bin").await;
    let other_id = other["id"].as_str().unwrap();
    let mut raw = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let head = format!(
        "PUT /api/2.0/files/upload_sessions/{other_id} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer tok\r\n\
         content-range: bytes 0-1023/{SIZE}\r\ndigest: sha={}\r\ncontent-length: 1024\r\n\r\n",
        emu.addr(),
        sha1_b64(part(0)),
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    raw.write_all(&part(0)[..100]).await.unwrap();
    raw.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(raw);
    wait_for(&log, 10).await;

    let log = log.lock().unwrap().clone();
    let seen: Vec<Seen> = log.iter().map(|r| (r.op, r.content_range, r.outcome)).collect();
    use RequestOutcome::{Answered, Closed, Withheld};
    assert_eq!(
        seen,
        vec![
            (Op::CreateSession, None, Answered(201)),
            (Op::UploadPart, Some((0, 1023, SIZE)), Answered(503)),
            (Op::UploadPart, Some((0, 1023, SIZE)), Withheld),
            (Op::UploadPart, Some((1024, 2047, SIZE)), Closed),
            (Op::UploadPart, Some((1024, 2047, SIZE)), Answered(200)),
            (Op::UploadPart, Some((2048, 2999, SIZE)), Answered(200)),
            (Op::ListParts, None, Answered(200)),
            (Op::Commit, None, Withheld),
            (Op::CreateSession, None, Answered(201)),
            (Op::UploadPart, Some((0, 1023, SIZE)), Closed),
        ]
    );
    assert_eq!(log[1].method, "PUT");
    assert_eq!(log[1].path, format!("/api/2.0/files/upload_sessions/{id}"));
    assert_eq!(log[7].path, format!("/api/2.0/files/upload_sessions/{id}/commit"));
    // Withheld: the part was stored all the same (the listing had it).
    assert_eq!(listed["total_count"], 3);
    assert_eq!(emu.counters().parts_stored, 3);
}
