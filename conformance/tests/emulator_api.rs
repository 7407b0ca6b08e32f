//! The emulator's answers beyond a plain upload: list-parts pages of the emulator's size, a part
//! size chosen from the file size, Box's `File` object, the preflight check, the shapes of
//! `context_info.conflicts`, and commit attributes. Raw HTTP; small files where the rules allow.
#![allow(clippy::unwrap_used)]

mod common;

use common::{data, full, sha1_b64, sha1_hex, Client};
use http::Method;
use serde_json::{json, Value};

use box_upload_conformance::{ConflictsShape, Emulator, Op};

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 20_000_001;

fn assert_box_error(r: &common::Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["type"], "error");
    assert_eq!(j["status"], status);
    assert_eq!(j["code"], code, "body: {j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(j["request_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(j["context_info"].is_object());
}

/// An emulator that takes small files (1 KiB parts), so whole uploads stay fast.
async fn small() -> (Emulator, Client) {
    let emu = Emulator::builder().token("tok").min_file_size(1).part_size(1024).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    (emu, client)
}

fn offsets(page: &Value) -> Vec<u64> {
    page["entries"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect()
}

async fn commit_with(client: &Client, session_id: &str, body: &Value, content: &[u8]) -> common::Resp {
    let req = client
        .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{session_id}/commit"))
        .header("content-type", "application/json")
        .header("digest", format!("sha={}", sha1_b64(content)))
        .body(full(body.to_string()))
        .unwrap();
    client.send(req).await
}

async fn options(client: &Client, path: &str, body: &str) -> common::Resp {
    let req = client.req(Method::OPTIONS, path).header("content-type", "application/json").body(full(body.to_string()));
    client.send(req.unwrap()).await
}

// 1. List parts pages like Box.

#[tokio::test]
async fn list_parts_pages_of_the_emulators_size() {
    let emu = Emulator::builder().token("tok").part_size(MIB).list_page_size(7).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let s = client.session("0", SIZE, "paged.bin").await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(s["total_parts"], 20);
    let content = data(SIZE as usize, 31);
    for i in (0..20usize).rev() {
        let start = i * MIB as usize;
        let end = (start + MIB as usize).min(SIZE as usize);
        assert_eq!(client.put_part(id, start as u64, &content[start..end], SIZE).await.status, 200);
    }
    let path = format!("/api/2.0/files/upload_sessions/{id}/parts");
    // Without a limit (Box's default 100) and with Box's maximum: pages of 7, saying so.
    for query in ["", "?limit=1000", "?offset=0&limit=100"] {
        let page = client.get(&format!("{path}{query}")).await.json();
        assert_eq!(page["limit"], 7, "{query}");
        assert_eq!(page["offset"], 0);
        assert_eq!(page["total_count"], 20);
        assert_eq!(page["order"], json!([{"by": "offset", "direction": "ASC"}]));
        assert_eq!(offsets(&page), (0..7).map(|i| i * MIB).collect::<Vec<_>>());
    }
    // A smaller limit is honoured.
    let page = client.get(&format!("{path}?limit=3")).await.json();
    assert_eq!(page["limit"], 3);
    assert_eq!(offsets(&page).len(), 3);
    // Paging by offset until total_count: every part once, in offset order.
    let mut seen = Vec::new();
    loop {
        let page = client.get(&format!("{path}?offset={}&limit=1000", seen.len())).await.json();
        let got = offsets(&page);
        assert!(got.len() <= 7);
        if got.is_empty() {
            break;
        }
        seen.extend(got);
    }
    assert_eq!(seen, (0..20).map(|i| i * MIB).collect::<Vec<_>>());
    let tail = client.get(&format!("{path}?offset=14&limit=1000")).await.json();
    assert_eq!(offsets(&tail), (14..20).map(|i| i * MIB).collect::<Vec<_>>());
    assert_eq!(tail["offset"], 14);
    // Box's bounds.
    assert_box_error(&client.get(&format!("{path}?limit=1001")).await, 400, "bad_request");
    assert_box_error(&client.get(&format!("{path}?offset=10001")).await, 400, "bad_request");
    assert_eq!(client.get(&format!("{path}?offset=10000&limit=1000")).await.json()["entries"], json!([]));
}

#[tokio::test]
async fn default_page_size_is_boxs_maximum() {
    let emu = Emulator::builder().token("tok").start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let s = client.session("0", SIZE, "p.bin").await;
    let path = format!("/api/2.0/files/upload_sessions/{}/parts", s["id"].as_str().unwrap());
    assert_eq!(client.get(&path).await.json()["limit"], 100);
    assert_eq!(client.get(&format!("{path}?limit=1000")).await.json()["limit"], 1000);
    let r = client.get(&format!("{path}?limit=1001")).await;
    assert_box_error(&r, 400, "bad_request");
    assert_eq!(r.json()["context_info"]["limit"], 1001);
    // Larger page sizes are clamped to Box's maximum.
    let emu = Emulator::builder().token("tok").list_page_size(5000).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let s = client.session("0", SIZE, "p.bin").await;
    let path = format!("/api/2.0/files/upload_sessions/{}/parts?limit=1000", s["id"].as_str().unwrap());
    assert_eq!(client.get(&path).await.json()["limit"], 1000);
}

// 2. Part size chosen from the file size.

#[tokio::test]
async fn part_size_depends_on_the_file_size() {
    let emu = Emulator::builder()
        .token("tok")
        .part_size_fn(|size| if size > 30_000_000 { 32 * MIB } else { 8 * MIB })
        .start()
        .await
        .unwrap();
    let client = Client::new(emu.addr(), "tok");
    let a = client.session("0", SIZE, "a.bin").await;
    let b = client.session("0", 40_000_000, "b.bin").await;
    assert_eq!(a["part_size"], 8 * MIB);
    assert_eq!(a["total_parts"], 3);
    assert_eq!(b["part_size"], 32 * MIB);
    assert_eq!(b["total_parts"], 2);
    assert_ne!(a["part_size"], b["part_size"]);
    assert_eq!(emu.part_size_for(40_000_000), 32 * MIB);
    assert_eq!(emu.part_size(), 8 * MIB);
    // The session's own part size is the rule for its parts.
    let bid = b["id"].as_str().unwrap();
    let content = data(40_000_000, 32);
    let r = client.put_part(bid, 0, &content[..8 * MIB as usize], 40_000_000).await;
    assert_box_error(&r, 416, "requested_range_not_satisfiable");
    assert_eq!(r.json()["context_info"]["part_size"], 32 * MIB);
    let parts = client.upload_all(&b, &content).await;
    assert_eq!(parts.len(), 2);
    let r = client.commit(bid, &parts, &format!("sha={}", sha1_b64(&content)), &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // The constant case.
    let emu = Emulator::builder().part_size(5 * MIB).start().await.unwrap();
    assert_eq!(emu.part_size_for(1), 5 * MIB);
    assert_eq!(emu.part_size_for(1 << 40), 5 * MIB);
}

// 4. Box's File object, on the same origin.

#[tokio::test]
async fn get_file_answers_boxs_file_object() {
    let (emu, client) = small().await;
    let docs = emu.create_folder("docs").unwrap();
    let deep = emu.create_folder_in(&docs, "deep").unwrap();
    let info = emu.create_file(&deep, "f.bin", b"hello").unwrap();
    // The API host's layout (api.box.com/2.0/...) and the upload host's (/api/2.0/...).
    let r = client.get(&format!("/2.0/files/{}", info.id)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    let f = r.json();
    assert_eq!(f, client.get(&format!("/api/2.0/files/{}", info.id)).await.json());
    assert_eq!(f["type"], "file");
    assert_eq!(f["id"], info.id.as_str());
    assert_eq!(f["name"], "f.bin");
    assert_eq!(f["size"], 5);
    assert_eq!(f["sha1"], sha1_hex(b"hello").as_str());
    assert_eq!(f["etag"], "0");
    assert_eq!(f["sequence_id"], "0");
    assert_eq!(f["file_version"], json!({"type": "file_version", "id": info.version_id, "sha1": sha1_hex(b"hello")}));
    assert_eq!(f["parent"]["type"], "folder");
    assert_eq!(f["parent"]["id"], deep.as_str());
    assert_eq!(f["parent"]["name"], "deep");
    assert_eq!(f["path_collection"]["total_count"], 3);
    let names: Vec<&str> =
        f["path_collection"]["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["All Files", "docs", "deep"]);
    assert_eq!(f["path_collection"]["entries"][0]["id"], "0");
    assert!(f["path_collection"]["entries"][0]["etag"].is_null());
    for key in ["created_at", "modified_at", "content_created_at", "content_modified_at"] {
        assert!(f[key].as_str().unwrap().ends_with('Z'), "{key}");
    }
    assert_eq!(f["item_status"], "active");
    // fields=: those, plus the mini file's (Box: "only fields for the mini representation are
    // returned, additional to the fields requested").
    let some = client.get(&format!("/2.0/files/{}?fields=size,parent", info.id)).await.json();
    let mut keys: Vec<&String> = some.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["etag", "file_version", "id", "name", "parent", "sequence_id", "sha1", "size", "type"]);
    assert_eq!(some["size"], 5);
    assert_eq!(some["sha1"], sha1_hex(b"hello").as_str());
    // Content, and an unknown file.
    assert_eq!(&client.get(&format!("/2.0/files/{}/content", info.id)).await.body[..], b"hello");
    assert_box_error(&client.get("/2.0/files/424242").await, 404, "not_found");
    assert_eq!(emu.api_base_url(), emu.base_url());
}

// 5. Preflight and the shapes of conflicts.

fn assert_conflict(r: &common::Resp, existing: &box_upload_conformance::FileInfo, shape: ConflictsShape) {
    assert_box_error(r, 409, "item_name_in_use");
    let conflicts = &r.json()["context_info"]["conflicts"];
    let c = match shape {
        ConflictsShape::Object => {
            assert!(conflicts.is_object(), "{conflicts}");
            conflicts.clone()
        }
        ConflictsShape::Array => {
            assert_eq!(conflicts.as_array().map(Vec::len), Some(1), "{conflicts}");
            conflicts[0].clone()
        }
    };
    assert_eq!(c["type"], "file");
    assert_eq!(c["id"], existing.id.as_str());
    assert_eq!(c["name"], existing.name.as_str());
    assert_eq!(c["sha1"], existing.sha1.as_str());
    // Box's FileConflict carries no size.
    assert!(c.get("size").is_none(), "{c}");
    assert_eq!(c["etag"], existing.etag.as_str());
    assert_eq!(c["file_version"], json!({"type": "file_version", "id": existing.version_id, "sha1": existing.sha1}));
}

#[tokio::test]
async fn preflight_for_a_new_file() {
    let (emu, client) = small().await;
    let folder = emu.create_folder("pf").unwrap();
    let existing = emu.create_file(&folder, "taken.bin", b"abc").unwrap();
    let body = |name: &str| json!({"name": name, "size": 123, "parent": {"id": folder}}).to_string();
    for path in ["/2.0/files/content", "/api/2.0/files/content"] {
        let r = options(&client, path, &body("new.bin")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        let url = j["upload_url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/2.0/files/content?upload_session_id=", emu.upload_base_url())), "{url}");
        assert!(j.as_object().unwrap().contains_key("upload_token"));
        assert!(j["upload_token"].is_null());
    }
    // Size is optional.
    let r = options(&client, "/2.0/files/content", &json!({"name": "n.bin", "parent": {"id": "0"}}).to_string()).await;
    assert_eq!(r.status, 200);
    // Name in use: the existing file, as an object by default, then as an array.
    assert_conflict(
        &options(&client, "/2.0/files/content", &body("taken.bin")).await,
        &existing,
        ConflictsShape::Object,
    );
    emu.set_conflicts_shape(ConflictsShape::Array);
    assert_conflict(
        &options(&client, "/2.0/files/content", &body("taken.bin")).await,
        &existing,
        ConflictsShape::Array,
    );
    // No such folder.
    let r = options(&client, "/2.0/files/content", &json!({"name": "a", "parent": {"id": "999999"}}).to_string()).await;
    assert_box_error(&r, 404, "not_found");
    // Bad bodies.
    let bad: [(&str, &str); 9] = [
        ("", "bad_request"),
        ("{\"name\":", "bad_request"),
        ("[1, 2]", "bad_request"),
        (r#"{"size": 1, "parent": {"id": "0"}}"#, "bad_request"),
        (r#"{"name": "a", "size": 1}"#, "bad_request"),
        (r#"{"name": "a", "parent": {"id": 0}}"#, "bad_request"),
        (r#"{"name": "a", "size": "12", "parent": {"id": "0"}}"#, "bad_request"),
        (r#"{"name": "a", "size": -1, "parent": {"id": "0"}}"#, "bad_request"),
        (r#"{"name": "a/b", "parent": {"id": "0"}}"#, "item_name_invalid"),
    ];
    for (b, code) in bad {
        assert_box_error(&options(&client, "/2.0/files/content", b).await, 400, code);
    }
    let huge = json!({"name": "a", "size": u64::MAX, "parent": {"id": "0"}}).to_string();
    assert_box_error(&options(&client, "/2.0/files/content", &huge).await, 403, "storage_limit_exceeded");
    // OPTIONS (the check) and POST (the direct upload, multipart only) are served there.
    let r = client.send(client.req(Method::PUT, "/2.0/files/content").body(full("{}")).unwrap()).await;
    assert_box_error(&r, 405, "method_not_allowed");
    let r = client.send(client.req(Method::POST, "/2.0/files/content").body(full("{}")).unwrap()).await;
    assert_box_error(&r, 400, "bad_request");
    assert_eq!((emu.counters().requests(Op::Preflight), emu.counters().requests(Op::UploadFile)), (17, 1));
}

#[tokio::test]
async fn preflight_for_a_new_version() {
    let (emu, client) = small().await;
    let folder = emu.create_folder("pv").unwrap();
    let file = emu.create_file(&folder, "doc.bin", b"v1").unwrap();
    let other = emu.create_file(&folder, "other.bin", b"x").unwrap();
    let path = format!("/2.0/files/{}/content", file.id);
    for body in ["", "{}", r#"{"size": 10}"#, r#"{"name": "doc.bin"}"#, r#"{"name": "renamed.bin"}"#] {
        let r = options(&client, &path, body).await;
        assert_eq!(r.status, 200, "{body}: {}", String::from_utf8_lossy(&r.body));
        let url = r.json()["upload_url"].as_str().unwrap().to_string();
        assert!(url.contains(&format!("/2.0/files/{}/content?upload_session_id=", file.id)), "{url}");
    }
    assert_conflict(&options(&client, &path, r#"{"name": "other.bin"}"#).await, &other, ConflictsShape::Object);
    assert_box_error(&options(&client, "/2.0/files/424242/content", "{}").await, 404, "not_found");
    let r = options(&client, &path, &json!({"parent": {"id": "999999"}}).to_string()).await;
    assert_box_error(&r, 404, "not_found");
}

#[tokio::test]
async fn create_session_and_commit_conflicts_in_either_shape() {
    let emu = Emulator::builder()
        .token("tok")
        .min_file_size(1)
        .part_size(1024)
        .conflicts_shape(ConflictsShape::Array)
        .start()
        .await
        .unwrap();
    let client = Client::new(emu.addr(), "tok");
    let taken = emu.create_file("0", "taken.bin", b"taken").unwrap();
    assert_conflict(&client.create_session("0", 3000, "taken.bin").await, &taken, ConflictsShape::Array);
    // A name taken between create and commit.
    let content = data(3000, 33);
    let s = client.session("0", 3000, "race.bin").await;
    let parts = client.upload_all(&s, &content).await;
    let racer = emu.create_file("0", "race.bin", b"first").unwrap();
    let r = commit_with(&client, s["id"].as_str().unwrap(), &json!({"parts": parts}), &content).await;
    assert_conflict(&r, &racer, ConflictsShape::Array);
    emu.set_conflicts_shape(ConflictsShape::Object);
    let r = commit_with(&client, s["id"].as_str().unwrap(), &json!({"parts": parts}), &content).await;
    assert_conflict(&r, &racer, ConflictsShape::Object);
    assert_conflict(&client.create_session("0", 3000, "taken.bin").await, &taken, ConflictsShape::Object);
}

// 6. Commit attributes.

#[tokio::test]
async fn commit_attributes_are_stored_and_answered() {
    let (emu, client) = small().await;
    let content = data(2500, 34);
    let s = client.session("0", 2500, "dated.bin").await;
    let id = s["id"].as_str().unwrap();
    let parts = client.upload_all(&s, &content).await;
    // Refused attributes leave the session as it was.
    for attributes in [json!("x"), json!({"content_modified_at": "yesterday"}), json!({"content_created_at": 5})] {
        let r = commit_with(&client, id, &json!({"parts": parts, "attributes": attributes}), &content).await;
        assert_box_error(&r, 400, "bad_request");
    }
    let attributes = json!({"content_created_at": "2020-01-02T03:04:05Z", "content_modified_at": "2024-05-06T07:08:09-07:00", "name": "ignored.bin"});
    let r = commit_with(&client, id, &json!({"parts": parts, "attributes": attributes}), &content).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let f = r.json()["entries"][0].clone();
    assert_eq!(f["name"], "dated.bin");
    assert_eq!(f["content_created_at"], "2020-01-02T03:04:05Z");
    assert_eq!(f["content_modified_at"], "2024-05-06T07:08:09-07:00");
    let file_id = f["id"].as_str().unwrap().to_string();
    let got = client.get(&format!("/2.0/files/{file_id}")).await.json();
    assert_eq!(got["content_created_at"], "2020-01-02T03:04:05Z");
    assert_eq!(got["content_modified_at"], "2024-05-06T07:08:09-07:00");
    let info = emu.file_info(&file_id).unwrap();
    assert_eq!(info.content_modified_at.as_deref(), Some("2024-05-06T07:08:09-07:00"));
    // A new version with only content_modified_at keeps the content creation date.
    let v2 = data(1500, 35);
    let r = client
        .json(Method::POST, &format!("/api/2.0/files/{file_id}/upload_sessions"), &json!({"file_size": 1500}))
        .await;
    assert_eq!(r.status, 201);
    let s = r.json();
    let parts = client.upload_all(&s, &v2).await;
    let body = json!({"parts": parts, "attributes": {"content_modified_at": "2025-12-31T23:59:59.5Z"}});
    let r = commit_with(&client, s["id"].as_str().unwrap(), &body, &v2).await;
    assert_eq!(r.status, 201);
    let got = client.get(&format!("/2.0/files/{file_id}")).await.json();
    assert_eq!(got["etag"], "1");
    assert_eq!(got["content_created_at"], "2020-01-02T03:04:05Z");
    assert_eq!(got["content_modified_at"], "2025-12-31T23:59:59.5Z");
    // Without attributes, the content dates are the upload's.
    let s = client.session("0", 1500, "plain.bin").await;
    let parts = client.upload_all(&s, &v2).await;
    let r = commit_with(&client, s["id"].as_str().unwrap(), &json!({"parts": parts}), &v2).await;
    let f = r.json()["entries"][0].clone();
    assert_eq!(f["content_created_at"], f["created_at"]);
    assert_eq!(f["content_modified_at"], f["modified_at"]);
}
