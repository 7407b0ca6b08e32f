//! The plan of an upload session: the emulator's rule for hits (offset, size and SHA-512 of the
//! same range of the file's current version) and its three modes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{data, sha1_b64, sha1_hex, upload_file, Client};
use http::Method;
use serde_json::{json, Value};

use box_upload_conformance::{Emulator, PlanMode};
use box_upload_core::Sha512Digest;

const PS: usize = 8 * 1024 * 1024;
const SIZE: usize = 2 * PS + 5_000_000;

async fn start(mode: PlanMode) -> (Emulator, Client) {
    let emu = Emulator::builder().token("tok").plan_mode(mode).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    (emu, client)
}

fn grid(content: &[u8]) -> Vec<Value> {
    content
        .chunks(PS)
        .enumerate()
        .map(|(i, c)| json!({"offset": i * PS, "size": c.len(), "sha512": Sha512Digest::of(c).to_hex()}))
        .collect()
}

/// v1 stored; a new-version session for v2 (part 1 changed); the plan of v2's parts.
async fn version_two(client: &Client) -> (String, Vec<u8>, Value) {
    let v1 = data(SIZE, 1);
    let r = upload_file(client, "0", "f.bin", &v1).await;
    assert_eq!(r.status, 201);
    let file_id = r.json()["entries"][0]["id"].as_str().unwrap().to_owned();
    let mut v2 = v1.clone();
    v2[PS + 5] ^= 0xff;
    let r = client
        .json(Method::POST, &format!("/api/2.0/files/{file_id}/upload_sessions"), &json!({"file_size": SIZE}))
        .await;
    assert_eq!(r.status, 201);
    let session = r.json();
    let plan_url = session["session_endpoints"]["plan"].as_str().unwrap().to_owned();
    let id = session["id"].as_str().unwrap().to_owned();
    assert!(plan_url.ends_with(&format!("/2.0/files/upload_sessions/{id}/plan")), "{plan_url}");
    let r = client
        .json(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/plan"), &json!({"parts": grid(&v2)}))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    (id, v2, r.json())
}

fn offsets(list: &Value) -> Vec<u64> {
    list.as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn hits_join_the_session_and_commit_like_uploaded_parts() {
    let (emu, client) = start(PlanMode::AddHits).await;
    let (id, v2, plan) = version_two(&client).await;
    assert_eq!(plan["upload_session_id"], id.as_str());
    assert_eq!(offsets(&plan["hits"]), vec![0, 2 * PS as u64]);
    assert_eq!(offsets(&plan["misses"]), vec![PS as u64]);
    assert_eq!(plan["misses"][0]["sha512"], Sha512Digest::of(&v2[PS..2 * PS]).to_hex());
    // Listed as stored parts, with the bytes' SHA-1.
    let listed = client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json();
    assert_eq!(offsets(&listed["entries"]), vec![0, 2 * PS as u64]);
    assert_eq!(listed["entries"][0]["sha1"], sha1_hex(&v2[..PS]));
    assert_eq!(listed["entries"][0]["part_id"], plan["hits"][0]["part_id"]);
    // Asking again: the held parts are hits with their own ids.
    let again = client
        .json(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/plan"), &json!({"parts": grid(&v2)}))
        .await
        .json();
    assert_eq!(again["hits"], plan["hits"]);
    let received_before = emu.counters().bytes_received;
    let r = client.put_part(&id, PS as u64, &v2[PS..2 * PS], SIZE as u64).await;
    assert_eq!(r.status, 200);
    assert_eq!(emu.counters().bytes_received - received_before, PS as u64, "only the miss was sent");
    let mut parts = listed["entries"].as_array().unwrap().clone();
    parts.push(r.json()["part"].clone());
    parts.sort_by_key(|p| p["offset"].as_u64());
    let r = client.commit(&id, &parts, &format!("sha={}", sha1_b64(&v2)), &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let file = &r.json()["entries"][0];
    assert_eq!(file["sha1"], sha1_hex(&v2));
    let stored = emu.file_content(file["id"].as_str().unwrap()).unwrap();
    assert!(stored == v2, "the committed version is v2 byte for byte");
}

#[tokio::test]
async fn hits_not_added_leave_the_session_as_uploaded() {
    let (_emu, client) = start(PlanMode::HitsNotAdded).await;
    let (id, _v2, plan) = version_two(&client).await;
    assert_eq!(offsets(&plan["hits"]), vec![0, 2 * PS as u64]);
    let listed = client.get(&format!("/api/2.0/files/upload_sessions/{id}/parts")).await.json();
    assert_eq!(listed["entries"], json!([]));
    assert_eq!(listed["total_count"], 0);
}

#[tokio::test]
async fn no_plan_is_404_and_no_endpoint() {
    let (_emu, client) = start(PlanMode::Off).await;
    let session = client.session("0", SIZE as u64, "a.bin").await;
    assert!(session["session_endpoints"].get("plan").is_none(), "{session}");
    assert!(session["session_endpoints"]["commit"].is_string());
    let id = session["id"].as_str().unwrap();
    let r = client
        .json(
            Method::POST,
            &format!("/api/2.0/files/upload_sessions/{id}/plan"),
            &json!({"parts": grid(&data(SIZE, 1))}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found".to_owned()));
}

#[tokio::test]
async fn a_new_file_has_no_hits_and_bad_plans_are_400() {
    let (_emu, client) = start(PlanMode::AddHits).await;
    let content = data(SIZE, 1);
    assert_eq!(upload_file(&client, "0", "same.bin", &content).await.status, 201);
    // Same bytes, another file: no earlier version, so no hits.
    let session = client.session("0", SIZE as u64, "other.bin").await;
    let id = session["id"].as_str().unwrap();
    let path = format!("/api/2.0/files/upload_sessions/{id}/plan");
    let plan = client.json(Method::POST, &path, &json!({"parts": grid(&content)})).await.json();
    assert_eq!((plan["hits"].as_array().unwrap().len(), offsets(&plan["misses"]).len()), (0, 3));
    let sha = Sha512Digest::of(b"x").to_hex();
    let bad = [
        json!({}),
        json!({"parts": []}),
        json!({"parts": [{"offset": 1, "size": PS, "sha512": sha}]}),
        json!({"parts": [{"offset": 0, "size": PS - 1, "sha512": sha}]}),
        json!({"parts": [{"offset": 0, "size": PS, "sha512": "abc"}]}),
        json!({"parts": [{"offset": 0, "size": PS, "sha512": sha}, {"offset": 0, "size": PS, "sha512": sha}]}),
        json!({"parts": [{"offset": 3 * PS, "size": PS, "sha512": sha}]}),
    ];
    for body in bad {
        let r = client.json(Method::POST, &path, &body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "bad_request".to_owned()), "{body}");
    }
}
