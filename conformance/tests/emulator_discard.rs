//! The emulator that discards content checks every digest as with a data directory.
#![allow(clippy::unwrap_used)]

mod common;

use common::{data, sha1_b64, Client};
use http::Method;
use serde_json::json;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn parts_out_of_order_with_a_cut_part_and_a_bad_digest_commit_byte_exact() {
    let faults = Faults::none().rule(Op::UploadPart, Trigger::FirstN(1), FaultAction::CutBody);
    let emu = Emulator::builder().token("tok").part_size(8 * MIB as u64).discard_content(true).start().await.unwrap();
    emu.set_faults(faults);
    assert_eq!(emu.data_dir(), None);
    let client = Client::new(emu.addr(), "tok");
    let size = 20_000_001usize;
    let content = data(size, 31);
    let s = client.session("0", size as u64, "mem.bin").await;
    let id = s["id"].as_str().unwrap().to_string();
    let ps = 8 * MIB;
    // Last part first; its first attempt is cut half way, which must leave nothing behind.
    let last = 2 * ps;
    assert!(client.try_send(client.part_req(&id, last as u64, &content[last..], size as u64)).await.is_err());
    assert_eq!(emu.counters().parts_stored, 0);
    let mut parts = vec![json!(null); 3];
    parts[2] = client.put_part(&id, last as u64, &content[last..], size as u64).await.json()["part"].clone();
    // A part whose digest is wrong is refused and not kept.
    let wrong = client
        .put_part_with(&id, ps as u64, &content[ps..2 * ps], size as u64, "sha=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .await;
    assert_eq!(wrong.status, 412);
    for i in [1, 0] {
        let r = client.put_part(&id, (i * ps) as u64, &content[i * ps..(i + 1) * ps], size as u64).await;
        assert_eq!(r.status, 200);
        parts[i] = r.json()["part"].clone();
    }
    // A wrong whole-file digest is refused; the right one commits.
    let bad = client.commit(&id, &parts, &format!("sha={}", sha1_b64(b"other")), &[]).await;
    assert_eq!(bad.status, 400, "{}", String::from_utf8_lossy(&bad.body));
    let r = client.commit(&id, &parts, &format!("sha={}", sha1_b64(&content)), &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let file_id = r.json()["entries"][0]["id"].as_str().unwrap().to_string();
    // The committed file has the source's size and SHA-1, and no content to download.
    let info = emu.file_info(&file_id).unwrap();
    assert_eq!(info.size, size as u64);
    assert_eq!(info.sha1, common::sha1_hex(&content));
    assert_eq!(info.path(), None);
    assert!(emu.file_content(&file_id).is_err());
    assert_eq!(client.get(&format!("/api/2.0/files/{file_id}/content")).await.status, 404);
    assert_eq!(emu.counters().parts_stored, 3);
}

#[tokio::test]
async fn new_versions_and_abort() {
    let emu = Emulator::builder().token("tok").discard_content(true).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let v1 = emu.create_file("0", "v.bin", b"version one").unwrap();
    assert_eq!(v1.sha1, common::sha1_hex(b"version one"));
    let size = 20_000_000usize;
    let v2 = data(size, 32);
    let s = client
        .json(Method::POST, &format!("/api/2.0/files/{}/upload_sessions", v1.id), &json!({"file_size": size}))
        .await
        .json();
    let parts = client.upload_all(&s, &v2).await;
    let r = client.commit(s["id"].as_str().unwrap(), &parts, &format!("sha={}", sha1_b64(&v2)), &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let now = emu.file_info(&v1.id).unwrap();
    assert_eq!((now.size, now.sha1.as_str(), now.etag.as_str()), (size as u64, common::sha1_hex(&v2).as_str(), "1"));
    // An aborted session is gone with its parts.
    let s = client.session("0", size as u64, "gone.bin").await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(client.put_part(id, 0, &v2[..8 * MIB], size as u64).await.status, 200);
    assert_eq!(client.delete(&format!("/api/2.0/files/upload_sessions/{id}")).await.status, 204);
    assert!(emu.session_ids().is_empty());
}

#[tokio::test]
async fn a_refused_part_at_the_hashed_prefix_leaves_the_whole_file_hash_alone() {
    // In order, each part is verified in one pass with the whole-file hash; a part refused there
    // must not have moved that hash.
    let emu = Emulator::builder().token("tok").discard_content(true).start().await.unwrap();
    let client = Client::new(emu.addr(), "tok");
    let size = 20_000_001usize;
    let content = data(size, 33);
    let s = client.session("0", size as u64, "inorder.bin").await;
    let id = s["id"].as_str().unwrap().to_string();
    let ps = s["part_size"].as_u64().unwrap() as usize;
    let other = data(ps, 34);
    let bad = client.put_part_with(&id, 0, &other, size as u64, &format!("sha={}", sha1_b64(&content[..ps]))).await;
    assert_eq!(bad.status, 412, "a part whose bytes do not match its digest");
    let parts = client.upload_all(&s, &content).await;
    let r = client.commit(&id, &parts, &format!("sha={}", sha1_b64(&content)), &[]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["entries"][0]["sha1"], common::sha1_hex(&content).as_str());
}
