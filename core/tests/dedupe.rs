//! A deduplicated big upload (issue 15) against a simulated Box: hits added to the session or
//! not, plans that fail (404, 5xx, hostile answers) falling back to a plain upload, a plan URL on
//! a foreign host refused, a hit Box lists with other bytes refused, and never a wrong commit.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use box_upload_core::models::FileFull;
use box_upload_core::{
    Client, Config, DeveloperToken, Error, ProtocolError, RequestKind, RetryPolicy, Sha1Digest, Sha512Digest,
    UploadRequest,
};
use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const MIB: u64 = 1 << 20;
const PS: u64 = 4 * MIB;
const SIZE: u64 = 5 * PS + 1000;

fn client() -> Client {
    let mut c = Config::new();
    c.retry = RetryPolicy { initial_backoff: Duration::from_millis(100), ..RetryPolicy::default() };
    Client::new(c, DeveloperToken::new("tok"))
}

/// A plan answer: `hit(offset)` decides which parts asked about are hits. With `store`, the hits
/// join the session as Box's own parts (bytes from the source).
fn planner(hit: impl Fn(u64) -> bool + 'static, store: bool) -> impl FnMut(&Seen, &mut FakeBox) -> Answer {
    move |seen, fake| {
        if seen.kind != RequestKind::PlanSession {
            return Answer::Normal;
        }
        let (mut hits, mut misses) = (Vec::new(), Vec::new());
        for p in seen.json()["parts"].as_array().unwrap() {
            let offset = p["offset"].as_u64().unwrap();
            let size = p["size"].as_u64().unwrap();
            let ours = source_bytes(offset, size as usize);
            assert_eq!(p["sha512"].as_str().unwrap(), Sha512Digest::of(&ours).to_hex(), "the plan names our SHA-512");
            if hit(offset) {
                let part_id = format!("H{offset:07X}");
                if store {
                    let bytes = box_upload_core::bytes::Bytes::from(ours);
                    let sha1 = Sha1Digest::of(&bytes);
                    fake.parts.insert(offset, StoredPart { part_id: part_id.clone(), size, sha1, bytes });
                }
                hits.push(json!({"offset": offset, "size": size, "sha512": p["sha512"], "part_id": part_id}));
            } else {
                misses.push(p.clone());
            }
        }
        Answer::Respond(json(200, json!({"upload_session_id": fake.session_id, "hits": hits, "misses": misses})))
    }
}

/// Box's answer to a plan, from the parts asked about and the session id.
type PlanAnswer = Box<dyn Fn(&Value, &str) -> box_upload_core::http::Response<box_upload_core::bytes::Bytes>>;

fn upload(fake: &mut FakeBox, dedupe: bool) -> (Run<FileFull>, Option<box_upload_core::DedupeStats>) {
    let mut m = client().big_upload(UploadRequest::new_version("12345", SIZE).dedupe(dedupe)).unwrap();
    let run = drive(&mut m, fake, default_source(SIZE), Order::Fifo);
    (run, m.dedupe_stats())
}

fn assert_committed(run: &Run<FileFull>, fake: &FakeBox) {
    let file = run.output.as_ref().expect("upload succeeds");
    assert_eq!(file.size, Some(SIZE));
    let committed = fake.committed.as_ref().expect("committed");
    assert_eq!(Sha1Digest::of(committed), whole_sha1(SIZE), "committed byte for byte");
    assert!(!fake.aborted);
}

fn parts_sent(fake: &FakeBox) -> Vec<u64> {
    fake.seen
        .iter()
        .filter(|s| s.kind == RequestKind::UploadPart)
        .map(|s| s.header("content-range").unwrap().parse::<box_upload_core::ContentRange>().unwrap().offset())
        .collect()
}

#[test]
fn hits_kept_by_the_session_are_not_sent() {
    for through_builder in [Some(true), Some(false), None] {
        reads_through_builder(through_builder);
        let mut fake = FakeBox::new(PS).hook(planner(|o| o != 2 * PS, true));
        let (run, stats) = upload(&mut fake, true);
        assert_committed(&run, &fake);
        assert_eq!(parts_sent(&fake), vec![2 * PS], "only the miss");
        let stats = stats.unwrap();
        assert_eq!((stats.parts_planned, stats.hits, stats.misses, stats.hits_uploaded), (6, 5, 1, 0));
        // The commit names the listed parts (Box's ids for the hits).
        let commit = fake.seen.iter().find(|s| s.kind == RequestKind::CommitSession).unwrap().json();
        assert_eq!(commit["parts"][0]["part_id"], "H0000000");
        assert_eq!(commit["parts"].as_array().unwrap().len(), 6);
    }
    reads_through_builder(None);
}

#[test]
fn hits_the_session_does_not_list_are_read_again_and_sent() {
    let mut fake = FakeBox::new(PS).hook(planner(|o| o % (2 * PS) == 0, false));
    let (run, stats) = upload(&mut fake, true);
    assert_committed(&run, &fake);
    let mut sent = parts_sent(&fake);
    sent.sort_unstable();
    assert_eq!(sent, (0..6).map(|i| i * PS).collect::<Vec<_>>());
    let stats = stats.unwrap();
    assert_eq!((stats.hits, stats.misses, stats.hits_uploaded), (3, 3, 3));
    assert_eq!(fake.count(RequestKind::ListParts), 2, "listed, then listed again after the uploads");
}

#[test]
fn a_plan_that_fails_falls_back_to_a_plain_upload() {
    let answers: Vec<(&str, PlanAnswer)> = vec![
        ("404", Box::new(|_, _| error(404, "not_found", "Not Found"))),
        ("400", Box::new(|_, _| error(400, "bad_request", "no"))),
        ("500", Box::new(|_, _| error(500, "internal_server_error", "down"))),
        // Hostile: a hit for an offset not asked about.
        (
            "not asked about",
            Box::new(|parts, sid| {
                let mut misses: Vec<Value> = parts.as_array().unwrap().clone();
                let first = misses.remove(0);
                json(
                    200,
                    json!({"upload_session_id": sid, "hits": [{"offset": 999, "size": first["size"], "sha512": first["sha512"], "part_id": "X"}], "misses": misses}),
                )
            }),
        ),
        // Hostile: every part a hit, but one with the wrong size.
        (
            "size",
            Box::new(|parts, sid| {
                let hits: Vec<Value> = parts
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let size = p["size"].as_u64().unwrap() + u64::from(i == 0);
                        json!({"offset": p["offset"], "size": size, "sha512": p["sha512"], "part_id": "X"})
                    })
                    .collect();
                json(200, json!({"upload_session_id": sid, "hits": hits, "misses": []}))
            }),
        ),
        // Hostile: a hit with another SHA-512.
        (
            "sha512",
            Box::new(|parts, sid| {
                let hits: Vec<Value> = parts.as_array().unwrap().iter().map(|p| {
                json!({"offset": p["offset"], "size": p["size"], "sha512": Sha512Digest::of(b"other").to_hex(), "part_id": "X"})
            }).collect();
                json(200, json!({"upload_session_id": sid, "hits": hits, "misses": []}))
            }),
        ),
        ("not valid JSON", Box::new(|_, _| json(200, json!({"hits": 7})))),
    ];
    for (what, answer) in answers {
        let mut fake = FakeBox::new(PS).hook(move |seen, fake| {
            if seen.kind != RequestKind::PlanSession {
                return Answer::Normal;
            }
            Answer::Respond(answer(&seen.json()["parts"], &fake.session_id))
        });
        let (run, stats) = upload(&mut fake, true);
        assert_committed(&run, &fake);
        assert_eq!(parts_sent(&fake).len(), 6, "{what}: every part sent");
        assert!(fake.count(RequestKind::PlanSession) >= 1, "{what}");
        let stats = stats.unwrap();
        let reason = stats.fallback.unwrap_or_default();
        assert!(!reason.is_empty(), "{what}: the fallback says why");
        assert_eq!(stats.hits, 0, "{what}");
    }
    // A plan that fails in the transport, every time: retried, then the fallback.
    let mut fake =
        FakeBox::new(PS)
            .hook(|seen, _| if seen.kind == RequestKind::PlanSession { Answer::Fail } else { Answer::Normal });
    let (run, stats) = upload(&mut fake, true);
    assert_committed(&run, &fake);
    assert!(fake.count(RequestKind::PlanSession) > 1, "retried");
    assert!(stats.unwrap().fallback.is_some());
}

#[test]
fn a_plan_url_on_a_foreign_host_is_refused_before_anything_is_read() {
    let mut fake = FakeBox::new(PS).hook(|seen, fake| {
        if seen.kind != RequestKind::CreateSessionForFile {
            return Answer::Normal;
        }
        fake.file_size = SIZE;
        fake.session_exists = true;
        let mut session = fake.session_json();
        session["session_endpoints"]["plan"] = json!("https://evil.example/2.0/files/upload_sessions/X/plan");
        Answer::Respond(json(201, session))
    });
    let (run, _) = upload(&mut fake, true);
    match run.output {
        Err(Error::UntrustedHost(e)) => assert!(e.to_string().contains("evil.example"), "{e}"),
        other => panic!("expected UntrustedHost, got {other:?}"),
    }
    assert_eq!((fake.count(RequestKind::PlanSession), fake.count(RequestKind::UploadPart)), (0, 0));
    assert!(fake.aborted && fake.committed.is_none());
    // Without dedupe the plan URL is never used, so it does not matter.
    let mut plain = FakeBox::new(PS).hook(|seen, fake| {
        if seen.kind != RequestKind::CreateSessionForFile {
            return Answer::Normal;
        }
        fake.file_size = SIZE;
        fake.session_exists = true;
        let mut session = fake.session_json();
        session["session_endpoints"]["plan"] = json!("https://evil.example/plan");
        Answer::Respond(json(201, session))
    });
    let (run, stats) = upload(&mut plain, false);
    assert_committed(&run, &plain);
    assert_eq!(stats, None);
}

#[test]
fn a_hit_the_session_holds_with_other_bytes_is_never_committed() {
    let mut fake = FakeBox::new(PS).hook(|seen, fake| {
        if seen.kind != RequestKind::PlanSession {
            return Answer::Normal;
        }
        // Box claims part 0, and holds other bytes there.
        let bytes = box_upload_core::bytes::Bytes::from(vec![0u8; PS as usize]);
        let sha1 = Sha1Digest::of(&bytes);
        fake.parts.insert(0, StoredPart { part_id: "BAD".into(), size: PS, sha1, bytes });
        let parts = seen.json()["parts"].as_array().unwrap().clone();
        let hits: Vec<Value> = parts
            .iter()
            .filter(|p| p["offset"] == 0)
            .map(|p| json!({"offset": 0, "size": p["size"], "sha512": p["sha512"], "part_id": "BAD"}))
            .collect();
        let misses: Vec<Value> = parts.into_iter().filter(|p| p["offset"] != 0).collect();
        Answer::Respond(json(200, json!({"hits": hits, "misses": misses})))
    });
    let (run, _) = upload(&mut fake, true);
    match run.output {
        Err(Error::Protocol(ProtocolError::PartsListMismatch(detail))) => {
            assert!(detail.contains("offset 0") && detail.contains("not ours"), "{detail}")
        }
        other => panic!("expected PartsListMismatch, got {other:?}"),
    }
    assert!(fake.committed.is_none() && fake.aborted);
}

#[test]
fn a_checkpoint_holds_no_hit_a_listing_has_not_shown() {
    let mut fake = FakeBox::new(PS).hook(planner(|_| true, false));
    let mut m = client().big_upload(UploadRequest::new_version("12345", SIZE).dedupe(true)).unwrap();
    let mut checkpoints = Vec::new();
    let run = drive_with(&mut m, &mut fake, &mut default_source(SIZE), Order::Fifo, |e, m| {
        if matches!(e, box_upload_core::Event::CheckpointUpdated) {
            if let Some(c) = box_upload_core::Machine::checkpoint(m) {
                checkpoints.push(c.parts.iter().map(|p| p.part_id.clone()).collect::<Vec<_>>());
            }
        }
    });
    assert_committed(&run, &fake);
    assert!(checkpoints.iter().flatten().all(|id| !id.starts_with('H')), "no unconfirmed hit in a checkpoint");
}
