//! The emulator enforces Box's documented rules and answers Box-shaped errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{data, full, sha1_b64, sha1_hex, upload_file, Client, Conn};
use http::Method;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use box_upload_conformance::{Emulator, Op};

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 20_000_001;

async fn start() -> (Emulator, Client) {
    let emu = Emulator::builder().token("tok").start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    (emu, client)
}

fn assert_box_error(r: &common::Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["type"], "error");
    assert_eq!(j["status"], status);
    assert_eq!(j["code"], code, "body: {j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(j["request_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(j["help_url"], "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/");
    assert!(j["context_info"].is_object());
}

#[tokio::test]
async fn bearer_token_is_required() {
    let (emu, client) = start().await;
    let none = client
        .send(
            http::Request::post("/api/2.0/files/upload_sessions")
                .body(full(json!({"folder_id": "0", "file_size": SIZE, "file_name": "a"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_box_error(&none, 401, "unauthorized");
    assert!(none.header("www-authenticate").unwrap().starts_with("Bearer"));
    let wrong = Client::new(emu.addr(), "nope").create_session("0", SIZE, "a").await;
    assert_box_error(&wrong, 401, "unauthorized");
    let ok = client.create_session("0", SIZE, "a").await;
    assert_eq!(ok.status, 201);
    assert_eq!(emu.counters().requests(Op::CreateSession), 3);
}

#[tokio::test]
async fn create_session_validates_the_body() {
    let (_emu, client) = start().await;
    let path = "/api/2.0/files/upload_sessions";
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"file_size": SIZE, "file_name": "a"}), 400, "missing_destination"),
        (json!({"folder_id": 0, "file_size": SIZE, "file_name": "a"}), 400, "invalid_folder_id"),
        (json!({"folder_id": "abc", "file_size": SIZE, "file_name": "a"}), 400, "invalid_folder_id"),
        (json!({"folder_id": "0", "file_name": "a"}), 400, "missing_file_size"),
        (json!({"folder_id": "0", "file_size": "20000001", "file_name": "a"}), 400, "invalid_file_size"),
        (json!({"folder_id": "0", "file_size": -5, "file_name": "a"}), 400, "invalid_file_size"),
        (json!({"folder_id": "0", "file_size": 1.5, "file_name": "a"}), 400, "invalid_file_size"),
        (json!({"folder_id": "0", "file_size": 19_999_999, "file_name": "a"}), 400, "file_size_too_small"),
        (json!({"folder_id": "0", "file_size": SIZE}), 400, "missing_file_name"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": ""}), 400, "item_name_invalid"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": "x".repeat(256)}), 400, "item_name_invalid"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": "a/b"}), 400, "item_name_invalid"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": "a\\b"}), 400, "item_name_invalid"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": "."}), 400, "item_name_invalid"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": ".."}), 400, "item_name_invalid"),
        (json!({"folder_id": "0", "file_size": SIZE, "file_name": 7}), 400, "item_name_invalid"),
        (json!(["not", "an", "object"]), 400, "bad_request"),
        (json!({"folder_id": "999", "file_size": SIZE, "file_name": "a"}), 404, "not_found"),
        (json!({"folder_id": "0", "file_size": u64::MAX, "file_name": "a"}), 403, "storage_limit_exceeded"),
    ];
    for (body, status, code) in cases {
        let r = client.json(Method::POST, path, &body).await;
        assert_box_error(&r, status, code);
    }
    let malformed = client
        .send(
            client
                .req(Method::POST, path)
                .header("content-type", "application/json")
                .body(full("{\"folder_id\":"))
                .unwrap(),
        )
        .await;
    assert_box_error(&malformed, 400, "bad_request");
    // 255 characters is still a valid name, and exactly the minimum size is accepted.
    let r = client
        .json(Method::POST, path, &json!({"folder_id": "0", "file_size": 20_000_000, "file_name": "x".repeat(255)}))
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn json_bodies_are_bounded() {
    let emu = Emulator::builder().token("tok").max_json_body(1024).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let big = json!({"folder_id": "0", "file_size": SIZE, "file_name": "a", "pad": "x".repeat(4096)});
    let r = client.json(Method::POST, "/api/2.0/files/upload_sessions", &big).await;
    assert_box_error(&r, 413, "request_entity_too_large");
}

#[tokio::test]
async fn name_in_use_is_409_and_unknown_file_is_404() {
    let (emu, client) = start().await;
    let folder = emu.create_folder("docs").unwrap();
    let existing = emu.create_file(&folder, "taken.bin", b"hello").unwrap();
    let r = client.create_session(&folder, SIZE, "taken.bin").await;
    assert_box_error(&r, 409, "item_name_in_use");
    assert_eq!(r.json()["context_info"]["conflicts"]["id"], existing.id.as_str());
    let r = client.json(Method::POST, "/api/2.0/files/424242/upload_sessions", &json!({"file_size": SIZE})).await;
    assert_box_error(&r, 404, "not_found");
    let r = client.get("/api/2.0/files/upload_sessions/NOPE").await;
    assert_box_error(&r, 404, "not_found");
}

#[tokio::test]
async fn session_shape_and_status() {
    let (emu, client) = start().await;
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(s["type"], "upload_session");
    assert_eq!(s["part_size"], 8 * MIB);
    assert_eq!(s["total_parts"], 3);
    assert_eq!(s["num_parts_processed"], 0);
    assert!(s["session_expires_at"].as_str().unwrap().ends_with('Z'));
    let base = format!("{}/2.0/files/upload_sessions/{id}", emu.upload_base_url());
    let ep = &s["session_endpoints"];
    assert_eq!(ep["upload_part"], base.as_str());
    assert_eq!(ep["abort"], base.as_str());
    assert_eq!(ep["status"], base.as_str());
    assert_eq!(ep["commit"], format!("{base}/commit").as_str());
    assert_eq!(ep["list_parts"], format!("{base}/parts").as_str());
    assert_eq!(ep["log_event"], format!("{base}/log").as_str());
    let content = data(SIZE as usize, 1);
    let r = client.put_part(id, 0, &content[..8 * MIB as usize], SIZE).await;
    assert_eq!(r.status, 200);
    let g = client.get(&format!("/api/2.0/files/upload_sessions/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.json()["num_parts_processed"], 1);
    assert_eq!(g.json()["id"], id);
}

#[tokio::test]
async fn part_ranges_must_fit_the_session() {
    let (_emu, client) = start().await;
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    let ps = 8 * MIB as usize;
    let content = data(SIZE as usize, 2);
    let last_off = 2 * ps;
    // Misaligned start.
    let r = client.put_part(id, 1, &content[1..ps + 1], SIZE).await;
    assert_box_error(&r, 416, "requested_range_not_satisfiable");
    // A middle part shorter than part_size.
    let r = client.put_part(id, 0, &content[..ps - 1], SIZE).await;
    assert_box_error(&r, 416, "requested_range_not_satisfiable");
    // Total differs from file_size.
    let r = client.put_part(id, 0, &content[..ps], SIZE + 1).await;
    assert_box_error(&r, 416, "requested_range_not_satisfiable");
    // Last part shorter than the rest of the file (not ending at total - 1).
    let r = client.put_part(id, last_off as u64, &content[last_off..SIZE as usize - 1], SIZE).await;
    assert_box_error(&r, 416, "requested_range_not_satisfiable");
    // Malformed and missing Content-Range.
    for range in ["bytes 0-8388607", "bytes=0-8388607/20000001", "bytes 5-4/20000001"] {
        let req = client
            .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{id}"))
            .header("digest", format!("sha={}", sha1_b64(&content[..ps])))
            .header("content-range", range)
            .body(full(Bytes::copy_from_slice(&content[..ps])))
            .unwrap();
        assert_box_error(&client.send(req).await, 416, "requested_range_not_satisfiable");
    }
    let req = client
        .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{id}"))
        .header("digest", format!("sha={}", sha1_b64(&content[..ps])))
        .body(full(Bytes::copy_from_slice(&content[..ps])))
        .unwrap();
    assert_box_error(&client.send(req).await, 416, "requested_range_not_satisfiable");
    // The short last part is fine, and parts can come in any order.
    let r = client.put_part(id, last_off as u64, &content[last_off..], SIZE).await;
    assert_eq!(r.status, 200);
    let part = r.json()["part"].clone();
    assert_eq!(part["offset"], last_off as u64);
    assert_eq!(part["size"], SIZE - last_off as u64);
    assert_eq!(part["sha1"], sha1_hex(&content[last_off..]).as_str());
    assert_eq!(part["part_id"].as_str().unwrap().len(), 8);
    // Parts are immutable: the same range again is refused, even with the same bytes.
    let r = client.put_part(id, last_off as u64, &content[last_off..], SIZE).await;
    assert_box_error(&r, 416, "range_overlaps_existing_part");
    // A body longer than the range is refused (declared by Content-Length).
    let req = client
        .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{id}"))
        .header("digest", format!("sha={}", sha1_b64(&content[..ps])))
        .header("content-range", format!("bytes 0-{}/{SIZE}", ps - 1))
        .body(full(Bytes::copy_from_slice(&content[..ps + 10])))
        .unwrap();
    assert_box_error(&client.send(req).await, 400, "bad_request");
}

#[tokio::test]
async fn part_digest_is_checked() {
    let (emu, client) = start().await;
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    let ps = 8 * MIB as usize;
    let content = data(SIZE as usize, 3);
    let part = &content[..ps];
    let req = |digest: Option<&str>| {
        let mut b = client
            .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{id}"))
            .header("content-range", format!("bytes 0-{}/{SIZE}", ps - 1));
        if let Some(d) = digest {
            b = b.header("digest", d);
        }
        b.body(full(Bytes::copy_from_slice(part))).unwrap()
    };
    assert_box_error(&client.send(req(None)).await, 400, "missing_digest");
    assert_box_error(&client.send(req(Some("sha=not base64!"))).await, 400, "invalid_digest");
    assert_box_error(&client.send(req(Some("md5=AAAA"))).await, 400, "invalid_digest");
    assert_box_error(&client.send(req(Some("sha=AAAA"))).await, 400, "invalid_digest");
    let wrong = format!("sha={}", sha1_b64(b"other bytes"));
    let r = client.send(req(Some(&wrong))).await;
    assert_box_error(&r, 412, "precondition_failed");
    assert_eq!(emu.counters().parts_stored, 0);
    // The refused range is free again.
    let good = format!("sha={}", sha1_b64(part));
    assert_eq!(client.send(req(Some(&good))).await.status, 200);
    assert_eq!(emu.counters().parts_stored, 1);
}

#[tokio::test]
async fn list_parts_pages() {
    let emu = Emulator::builder().token("tok").part_size(MIB).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(s["total_parts"], 20);
    let content = data(SIZE as usize, 4);
    // Upload in reverse order: listing is by offset anyway.
    for i in (0..20usize).rev() {
        let start = i * MIB as usize;
        let end = (start + MIB as usize).min(SIZE as usize);
        assert_eq!(client.put_part(id, start as u64, &content[start..end], SIZE).await.status, 200);
    }
    let path = format!("/api/2.0/files/upload_sessions/{id}/parts");
    let all = client.get(&path).await.json();
    assert_eq!(all["total_count"], 20);
    assert_eq!(all["offset"], 0);
    assert_eq!(all["limit"], 100);
    assert_eq!(all["order"], json!([{"by": "offset", "direction": "ASC"}]));
    let offsets: Vec<u64> = all["entries"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, (0..20).map(|i| i * MIB).collect::<Vec<_>>());
    let page = client.get(&format!("{path}?offset=18&limit=5")).await.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["entries"][0]["offset"], 18 * MIB);
    assert_eq!(page["limit"], 5);
    assert_eq!(page["total_count"], 20);
    let page = client.get(&format!("{path}?limit=3")).await.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    assert_box_error(&client.get(&format!("{path}?limit=5000")).await, 400, "bad_request");
    assert_eq!(client.get(&format!("{path}?limit=1000")).await.json()["limit"], 1000);
    assert_box_error(&client.get(&format!("{path}?offset=10001")).await, 400, "bad_request");
    assert_box_error(&client.get(&format!("{path}?limit=abc")).await, 400, "bad_request");
    assert_box_error(&client.get(&format!("{path}?limit=0")).await, 400, "bad_request");
    assert_eq!(client.get(&format!("{path}?offset=10000")).await.json()["entries"], json!([]));
}

#[tokio::test]
async fn commit_checks_parts_and_digest() {
    let (emu, client) = start().await;
    let s = client.session("0", SIZE, "c.bin").await;
    let id = s["id"].as_str().unwrap();
    let content = data(SIZE as usize, 5);
    let digest = format!("sha={}", sha1_b64(&content));
    let ps = 8 * MIB as usize;
    // Two of three parts uploaded.
    let p0 = client.put_part(id, 0, &content[..ps], SIZE).await.json()["part"].clone();
    let p1 = client.put_part(id, ps as u64, &content[ps..2 * ps], SIZE).await.json()["part"].clone();
    let r = client.commit(id, &[p0.clone(), p1.clone()], &digest, &[]).await;
    assert_box_error(&r, 400, "parts_mismatch");
    let p2 = client.put_part(id, 2 * ps as u64, &content[2 * ps..], SIZE).await.json()["part"].clone();
    // Missing, extra and altered parts.
    assert_box_error(&client.commit(id, &[p0.clone(), p2.clone()], &digest, &[]).await, 400, "parts_mismatch");
    let mut extra = p2.clone();
    extra["offset"] = json!(3 * ps);
    let all = [p0.clone(), p1.clone(), p2.clone()];
    assert_box_error(
        &client.commit(id, &[all.to_vec(), vec![extra]].concat(), &digest, &[]).await,
        400,
        "parts_mismatch",
    );
    let mut altered = p1.clone();
    altered["sha1"] = json!(sha1_hex(b"x"));
    assert_box_error(&client.commit(id, &[p0.clone(), altered, p2.clone()], &digest, &[]).await, 400, "parts_mismatch");
    // Missing / malformed body and digest.
    let r = client.commit(id, &all, "sha=AAAA", &[]).await;
    assert_box_error(&r, 400, "invalid_digest");
    let wrong = format!("sha={}", sha1_b64(b"not the file"));
    assert_box_error(&client.commit(id, &all, &wrong, &[]).await, 400, "digest_mismatch");
    let no_parts = client
        .send(
            client
                .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/commit"))
                .header("digest", digest.as_str())
                .body(full("{}"))
                .unwrap(),
        )
        .await;
    assert_box_error(&no_parts, 400, "bad_request");
    // Parts in any order in the request are accepted (the service sorts them by offset).
    let r = client.commit(id, &[p2, p0, p1], &digest, &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["total_count"], 1);
    let f = &j["entries"][0];
    assert_eq!(f["type"], "file");
    assert_eq!(f["name"], "c.bin");
    assert_eq!(f["size"], SIZE);
    assert_eq!(f["sha1"], sha1_hex(&content).as_str());
    assert_eq!(f["file_version"]["sha1"], sha1_hex(&content).as_str());
    assert_eq!(f["file_version"]["type"], "file_version");
    assert_eq!(f["parent"]["id"], "0");
    assert_eq!(f["etag"], "0");
    let file_id = f["id"].as_str().unwrap();
    assert_eq!(emu.file_content(file_id).unwrap(), content);
    // The session is gone after commit.
    assert_box_error(&client.get(&format!("/api/2.0/files/upload_sessions/{id}")).await, 404, "not_found");
    // Same name again: 409 at creation.
    assert_box_error(&client.create_session("0", SIZE, "c.bin").await, 409, "item_name_in_use");
}

#[tokio::test]
async fn name_taken_between_create_and_commit_is_409() {
    let (emu, client) = start().await;
    let content = data(SIZE as usize, 6);
    let s = client.session("0", SIZE, "race.bin").await;
    let parts = client.upload_all(&s, &content).await;
    emu.create_file("0", "race.bin", b"first").unwrap();
    let r = client.commit(s["id"].as_str().unwrap(), &parts, &format!("sha={}", sha1_b64(&content)), &[]).await;
    assert_box_error(&r, 409, "item_name_in_use");
}

#[tokio::test]
async fn new_version_honours_if_match() {
    let (emu, client) = start().await;
    let folder = emu.create_folder("v").unwrap();
    let old = emu.create_file(&folder, "doc.bin", b"version one").unwrap();
    let content = data(SIZE as usize, 7);
    let digest = format!("sha={}", sha1_b64(&content));
    let path = format!("/api/2.0/files/{}/upload_sessions", old.id);
    let r = client.json(Method::POST, &path, &json!({"file_size": SIZE})).await;
    assert_eq!(r.status, 201);
    let s = r.json();
    let id = s["id"].as_str().unwrap();
    let parts = client.upload_all(&s, &content).await;
    assert_box_error(&client.commit(id, &parts, &digest, &[("if-match", "7")]).await, 412, "precondition_failed");
    assert_box_error(&client.commit(id, &parts, &digest, &[("if-none-match", "*")]).await, 412, "precondition_failed");
    assert_box_error(
        &client.commit(id, &parts, &digest, &[("if-none-match", "\"0\"")]).await,
        412,
        "precondition_failed",
    );
    let r = client.commit(id, &parts, &digest, &[("if-match", "0")]).await;
    assert_eq!(r.status, 201);
    let f = r.json()["entries"][0].clone();
    assert_eq!(f["id"], old.id.as_str());
    assert_eq!(f["etag"], "1");
    assert_eq!(f["name"], "doc.bin");
    assert_ne!(f["file_version"]["id"], old.version_id.as_str());
    let info = emu.file_info(&old.id).unwrap();
    assert_eq!(info.etag, "1");
    assert_eq!(emu.file_content(&old.id).unwrap(), content);
    // The content endpoint serves the new bytes.
    let got = client.get(&format!("/api/2.0/files/{}/content", old.id)).await;
    assert_eq!(got.status, 200);
    assert!(got.body == content);
    // A rename into a taken name is refused.
    emu.create_file(&folder, "other.bin", b"x").unwrap();
    let r = client.json(Method::POST, &path, &json!({"file_size": SIZE, "file_name": "other.bin"})).await;
    assert_box_error(&r, 409, "item_name_in_use");
    // If-Match on a brand-new file cannot match anything.
    let s = client.session(&folder, SIZE, "new.bin").await;
    let parts = client.upload_all(&s, &content).await;
    let sid = s["id"].as_str().unwrap();
    assert_box_error(&client.commit(sid, &parts, &digest, &[("if-match", "0")]).await, 412, "precondition_failed");
    assert_eq!(client.commit(sid, &parts, &digest, &[("if-none-match", "*")]).await.status, 201);
}

#[tokio::test]
async fn abort_then_everything_is_404() {
    let (emu, client) = start().await;
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    let content = data(SIZE as usize, 8);
    assert_eq!(client.put_part(id, 0, &content[..8 * MIB as usize], SIZE).await.status, 200);
    let r = client.delete(&format!("/api/2.0/files/upload_sessions/{id}")).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert!(emu.session_ids().is_empty());
    let base = format!("/api/2.0/files/upload_sessions/{id}");
    assert_box_error(&client.get(&base).await, 404, "not_found");
    assert_box_error(&client.get(&format!("{base}/parts")).await, 404, "not_found");
    assert_box_error(&client.delete(&base).await, 404, "not_found");
    let r = client.put_part(id, 8 * MIB, &content[8 * MIB as usize..16 * MIB as usize], SIZE).await;
    assert_box_error(&r, 404, "not_found");
    let r = client.commit(id, &[], &format!("sha={}", sha1_b64(&content)), &[]).await;
    assert_box_error(&r, 404, "not_found");
}

#[tokio::test]
async fn sessions_expire() {
    let emu = Emulator::builder().token("tok").start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    emu.advance_clock(Duration::from_secs(6 * 24 * 3600));
    assert_eq!(client.get(&format!("/api/2.0/files/upload_sessions/{id}")).await.status, 200);
    emu.advance_clock(Duration::from_secs(24 * 3600 + 1));
    assert_box_error(&client.get(&format!("/api/2.0/files/upload_sessions/{id}")).await, 404, "not_found");
    // A configurable lifetime.
    let emu = Emulator::builder().token("tok").session_lifetime(Duration::from_secs(60)).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let s = client.session("0", SIZE, "a.bin").await;
    emu.advance_clock(Duration::from_secs(61));
    let r = client.put_part(s["id"].as_str().unwrap(), 0, &data(8 * MIB as usize, 1), SIZE).await;
    assert_box_error(&r, 404, "not_found");
}

async fn token_request(emu: &Emulator, form: &str) -> common::Resp {
    let client = Client::new(emu.addr(), "");
    client
        .send(
            http::Request::post("/oauth2/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(full(form.to_string()))
                .unwrap(),
        )
        .await
}

#[tokio::test]
async fn client_credentials_tokens_work_until_they_expire() {
    let emu = Emulator::builder()
        .token("static")
        .client_credentials("cid", "s3cr+t")
        .token_lifetime(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let good = "grant_type=client_credentials&client_id=cid&client_secret=s3cr%2Bt&box_subject_type=enterprise&box_subject_id=123";
    let r = token_request(&emu, good).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["token_type"], "bearer");
    assert_eq!(j["expires_in"], 120);
    assert_eq!(j["restricted_to"], json!([]));
    assert!(j["issued_token_type"].is_string());
    let token = j["access_token"].as_str().unwrap();
    let client = Client::new(emu.addr(), token);
    assert_eq!(client.create_session("0", SIZE, "t.bin").await.status, 201);
    let bad = token_request(&emu, &good.replace("s3cr%2Bt", "wrong")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "invalid_client");
    let bad = token_request(&emu, &good.replace("client_credentials", "password")).await;
    assert_eq!(bad.json()["error"], "unsupported_grant_type");
    let bad = token_request(&emu, &good.replace("enterprise", "nobody")).await;
    assert_eq!(bad.json()["error"], "invalid_grant");
    emu.advance_clock(Duration::from_secs(121));
    let r = client.create_session("0", SIZE, "t2.bin").await;
    assert_box_error(&r, 401, "unauthorized");
    // The static token never expires.
    assert_eq!(Client::new(emu.addr(), "static").create_session("0", SIZE, "t3.bin").await.status, 201);
    // Lifetime changed at run time.
    emu.set_token_lifetime(Duration::from_secs(5));
    assert_eq!(token_request(&emu, good).await.json()["expires_in"], 5);
}

#[tokio::test]
async fn chunked_request_bodies_are_accepted() {
    let (emu, client) = start().await;
    let s = client.session("0", SIZE, "a.bin").await;
    let id = s["id"].as_str().unwrap();
    let content = data(SIZE as usize, 9);
    let part = Bytes::copy_from_slice(&content[..8 * MIB as usize]);
    // A streamed body without Content-Length: hyper sends Transfer-Encoding: chunked.
    let make = |part: Bytes, extra: usize| {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(4);
        tokio::spawn(async move {
            for chunk in part.chunks(100_000) {
                let _ = tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(chunk)))).await;
            }
            if extra > 0 {
                let _ = tx.send(Ok(hyper::body::Frame::data(Bytes::from(vec![0u8; extra])))).await;
            }
        });
        ChanBody(rx).boxed()
    };
    let req = client
        .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{id}"))
        .header("digest", format!("sha={}", sha1_b64(&part)))
        .header("content-range", format!("bytes 0-{}/{SIZE}", part.len() - 1))
        .body(make(part.clone(), 0))
        .unwrap();
    assert!(req.headers().get("content-length").is_none());
    let r = client.send(req).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["part"]["sha1"], sha1_hex(&part).as_str());
    // A chunked body that runs past the range is cut off and refused.
    let second = Bytes::copy_from_slice(&content[8 * MIB as usize..16 * MIB as usize]);
    let req = client
        .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{id}"))
        .header("digest", format!("sha={}", sha1_b64(&second)))
        .header("content-range", format!("bytes {}-{}/{SIZE}", 8 * MIB, 16 * MIB - 1))
        .body(make(second, 5000))
        .unwrap();
    let r = client.send(req).await;
    assert_box_error(&r, 416, "requested_range_not_satisfiable");
    assert_eq!(emu.counters().parts_stored, 1);
}

/// A streamed request body fed from a channel (no size hint, so it is sent chunked).
struct ChanBody(tokio::sync::mpsc::Receiver<Result<hyper::body::Frame<Bytes>, std::io::Error>>);

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let (emu, client) = start().await;
    let mut conn = Conn::open(emu.addr()).await.unwrap();
    let content = data(SIZE as usize, 10);
    let body = json!({"folder_id": "0", "file_size": SIZE, "file_name": "k.bin"}).to_string();
    let r =
        conn.send(client.req(Method::POST, "/api/2.0/files/upload_sessions").body(full(body)).unwrap()).await.unwrap();
    let s = r.json();
    let id = s["id"].as_str().unwrap();
    let ps = 8 * MIB as usize;
    let mut parts = Vec::new();
    for (i, chunk) in content.chunks(ps).enumerate() {
        let r = conn.send(client.part_req(id, (i * ps) as u64, chunk, SIZE)).await.unwrap();
        assert_eq!(r.status, 200);
        parts.push(r.json()["part"].clone());
    }
    // An error answer does not close the connection either.
    let r = conn
        .send(client.req(Method::GET, "/api/2.0/files/upload_sessions/NOPE").body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let commit = client
        .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{id}/commit"))
        .header("digest", format!("sha={}", sha1_b64(&content)))
        .body(full(json!({"parts": parts}).to_string()))
        .unwrap();
    assert_eq!(conn.send(commit).await.unwrap().status, 201);
    assert_eq!(emu.counters().connections, 1);
    assert_eq!(emu.counters().total_requests(), 6);
}

#[tokio::test]
async fn upload_file_helper_round_trip_small() {
    let (emu, client) = start().await;
    let content = data(SIZE as usize, 11);
    let r = upload_file(&client, "0", "r.bin", &content).await;
    assert_eq!(r.status, 201);
    let id = r.json()["entries"][0]["id"].as_str().unwrap().to_string();
    let info = emu.file_info(&id).unwrap();
    assert_eq!(info.size, SIZE);
    assert_eq!(info.sha1, sha1_hex(&content));
    let body = client.get(&format!("/api/2.0/files/{id}/content")).await;
    assert!(body.body == content, "content differs");
    let meta = client.get(&format!("/api/2.0/files/{id}")).await.json();
    assert_eq!(meta["sha1"], info.sha1.as_str());
}
