//! The big-upload state machine against a simulated Box, on a simulated clock.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use box_upload_core::http::StatusCode;
use box_upload_core::{
    Client, Config, DeveloperToken, Error, Event, ProtocolError, RequestKind, RetryPolicy, UploadRequest,
};
use std::time::Duration;
use support::*;

const MIB: u64 = 1 << 20;

fn config() -> Config {
    let mut c = Config::new();
    c.retry = RetryPolicy { initial_backoff: Duration::from_millis(100), ..RetryPolicy::default() };
    c
}

fn client() -> Client {
    Client::new(config(), DeveloperToken::new("tok"))
}

fn upload(size: u64, part_size: u64, order: Order) -> (Run<box_upload_core::models::FileFull>, FakeBox) {
    let mut fake = FakeBox::new(part_size);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), order);
    (run, fake)
}

fn assert_committed(run: &Run<box_upload_core::models::FileFull>, fake: &FakeBox, size: u64) {
    let file = run.output.as_ref().expect("upload succeeds");
    assert_eq!(file.id, "12345");
    assert_eq!(file.size, Some(size));
    let committed = fake.committed.as_ref().expect("committed");
    assert_eq!(committed.len() as u64, size);
    assert_eq!(box_upload_core::Sha1Digest::of(committed), whole_sha1(size));
    assert!(!fake.aborted);
}

#[test]
fn happy_path_last_part_shorter() {
    let size = 20_000_001;
    let (run, fake) = upload(size, 8 * MIB, Order::Fifo);
    assert_committed(&run, &fake, size);
    assert_eq!(fake.count(RequestKind::CreateSession), 1);
    assert_eq!(fake.count(RequestKind::UploadPart), 3);
    // Every part's answer echoed it: Box checks the commit's list, no listing first.
    assert_eq!(fake.count(RequestKind::ListParts), 0);
    assert_eq!(fake.count(RequestKind::CommitSession), 1);
    let last = fake.parts.values().last().unwrap();
    assert_eq!(last.size, size - 2 * 8 * MIB);
    // Commit lists every part by offset, with the whole-file digest.
    let commit = fake.seen.iter().find(|s| s.kind == RequestKind::CommitSession).unwrap();
    let offsets: Vec<u64> =
        commit.json()["parts"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, vec![0, 8 * MIB, 16 * MIB]);
    assert_eq!(commit.header("digest").unwrap(), whole_sha1(size).header_value());
    // Progress ends at the full size.
    let last_progress = run
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Progress(p) => Some(*p),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_progress.bytes_acknowledged, size);
    assert_eq!(last_progress.parts_acknowledged, 3);
    assert!(matches!(run.events.last(), Some(Event::Finished)));
}

#[test]
fn exact_multiple_of_part_size() {
    let size = 24 * MIB;
    let (run, fake) = upload(size, 8 * MIB, Order::Fifo);
    assert_committed(&run, &fake, size);
    assert!(fake.parts.values().all(|p| p.size == 8 * MIB));
    assert_eq!(fake.parts.len(), 3);
}

#[test]
fn part_size_5_mib_and_16_mib_come_from_the_session() {
    for part_size in [5 * MIB, 16 * MIB] {
        let size = 40_000_000;
        let (run, fake) = upload(size, part_size, Order::Fifo);
        assert_committed(&run, &fake, size);
        assert_eq!(fake.parts.len() as u64, size.div_ceil(part_size));
        for (offset, p) in &fake.parts {
            assert_eq!(offset % part_size, 0);
            assert!(p.size == part_size || offset + p.size == size);
        }
    }
}

#[test]
fn answers_out_of_order_and_parts_in_flight_bounded() {
    let size = 50_000_000;
    let mut fake = FakeBox::new(5 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(3)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Lifo);
    assert_committed(&run, &fake, size);
    assert_eq!(run.max_in_flight, 3, "three parts on the wire at once, never more");
    // Box got the parts out of file order.
    let offsets: Vec<u64> = fake
        .seen
        .iter()
        .filter(|s| s.kind == RequestKind::UploadPart)
        .map(|s| s.header("content-range").unwrap().parse::<box_upload_core::ContentRange>().unwrap().offset())
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    assert_ne!(offsets, sorted);
}

#[test]
fn lost_answer_adopted_after_416_overlap() {
    let size = 20_000_001;
    let mut lost = false;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::UploadPart
            && !lost
            && seen.header("content-range").unwrap().starts_with("bytes 8388608-")
        {
            lost = true;
            return Answer::ProcessThenFail;
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    assert!(run.events.contains(&Event::PartAdopted { offset: 8 * MIB }));
    // The retry hit the stored part (416), then the parts were listed to adopt it.
    assert_eq!(fake.count(RequestKind::UploadPart), 4);
    assert!(fake.count(RequestKind::ListParts) >= 2);
}

#[test]
fn lost_answer_adopted_after_409() {
    let size = 20_000_001;
    let mut state = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, fake| {
        if seen.kind == RequestKind::UploadPart && seen.header("content-range").unwrap().starts_with("bytes 0-") {
            state += 1;
            if state == 1 {
                return Answer::ProcessThenFail;
            }
            if fake.parts.contains_key(&0) {
                return Answer::Respond(error(409, "conflict", "part exists"));
            }
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    assert!(run.events.contains(&Event::PartAdopted { offset: 0 }));
}

#[test]
fn overlap_with_foreign_bytes_fails_clearly_and_aborts() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, fake| {
        if seen.kind == RequestKind::CreateSession {
            // Someone else already stored other bytes at offset 0 of this session.
            fake.parts.insert(
                0,
                StoredPart {
                    part_id: "DEADBEEF".into(),
                    size: 8 * MIB,
                    sha1: box_upload_core::Sha1Digest::of(b"other"),
                    bytes: box_upload_core::bytes::Bytes::new(),
                },
            );
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    match run.output {
        Err(Error::Protocol(ProtocolError::PartConflict { offset: 0, .. })) => {}
        other => panic!("expected a part conflict, got {other:?}"),
    }
    assert!(fake.aborted);
    assert_eq!(fake.count(RequestKind::CommitSession), 0);
}

#[test]
fn commit_202_three_times_then_201_honours_retry_after() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::CommitSession && n < 3 {
            n += 1;
            let r = box_upload_core::http::Response::builder()
                .status(202)
                .header("retry-after", "30")
                .body(Default::default())
                .unwrap();
            return Answer::Respond(r);
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    assert_eq!(fake.count(RequestKind::CommitSession), 4);
    let commits: Vec<_> = fake.seen.iter().filter(|s| s.kind == RequestKind::CommitSession).map(|s| s.at).collect();
    for w in commits.windows(2) {
        assert_eq!(w[1] - w[0], Duration::from_secs(30), "each commit waits Retry-After");
    }
    assert_eq!(run.events.iter().filter(|e| matches!(e, Event::CommitPending { .. })).count(), 3);
}

#[test]
fn commit_202_without_retry_after_backs_off_and_succeeds() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::CommitSession && n < 2 {
            n += 1;
            return Answer::Respond(empty(202));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let commits: Vec<_> = fake.seen.iter().filter(|s| s.kind == RequestKind::CommitSession).map(|s| s.at).collect();
    assert_eq!(commits.len(), 3);
    assert!(commits[1] > commits[0] && commits[2] > commits[1]);
}

#[test]
fn commit_202_fifteen_times_with_30s_is_still_within_budget() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::CommitSession && n < 16 {
            n += 1;
            let r = box_upload_core::http::Response::builder()
                .status(202)
                .header("retry-after", "30")
                .body(Default::default())
                .unwrap();
            return Answer::Respond(r);
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    assert_eq!(fake.count(RequestKind::CommitSession), 17);
}

#[test]
fn endless_202_ends_in_commit_timeout_and_abort() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| {
        if seen.kind == RequestKind::CommitSession {
            let r = box_upload_core::http::Response::builder()
                .status(202)
                .header("retry-after", "30")
                .body(Default::default())
                .unwrap();
            return Answer::Respond(r);
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    match run.output {
        Err(Error::CommitTimeout { attempts, waited }) => {
            // Commits at 0 s, 30 s, ... 900 s: the budget, not a count of tries, ends it.
            assert_eq!(waited, Duration::from_secs(15 * 60));
            assert_eq!(attempts, 31);
        }
        other => panic!("expected a commit timeout, got {other:?}"),
    }
    assert!(fake.aborted);
}

#[test]
fn transient_parts_mismatch_is_retried() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::CommitSession && n < 2 {
            n += 1;
            return Answer::Respond(error(400, "parts_mismatch", "not yet"));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    assert_eq!(fake.count(RequestKind::CommitSession), 3);
}

#[test]
fn persistent_parts_mismatch_fails_after_bounded_retries() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| {
        if seen.kind == RequestKind::CommitSession {
            return Answer::Respond(error(400, "parts_mismatch", "never"));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    let err = run.output.unwrap_err();
    assert_eq!(err.box_code(), Some("parts_mismatch"));
    assert_eq!(fake.count(RequestKind::CommitSession), 4);
    assert!(fake.aborted);
}

#[test]
fn too_many_requests_honours_retry_after() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::UploadPart && n < 1 {
            n += 1;
            let r = box_upload_core::http::Response::builder()
                .status(429)
                .header("retry-after", "7")
                .body(Default::default())
                .unwrap();
            return Answer::Respond(r);
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(1)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let parts: Vec<_> = fake.seen.iter().filter(|s| s.kind == RequestKind::UploadPart).collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[1].at - parts[0].at, Duration::from_secs(7));
    assert_eq!(parts[0].header("content-range"), parts[1].header("content-range"));
    assert!(run.events.iter().any(|e| matches!(e, Event::Retrying { kind: RequestKind::UploadPart, attempt: 1, delay, .. } if *delay == Duration::from_secs(7))));
}

#[test]
fn retry_after_as_http_date_is_relative_to_date_header() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind == RequestKind::UploadPart && n < 1 {
            n += 1;
            let r = box_upload_core::http::Response::builder()
                .status(503)
                .header("date", "Wed, 25 Nov 2026 06:00:00 GMT")
                .header("retry-after", "Wed, 25 Nov 2026 06:00:12 GMT")
                .body(Default::default())
                .unwrap();
            return Answer::Respond(r);
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(1)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let parts: Vec<_> = fake.seen.iter().filter(|s| s.kind == RequestKind::UploadPart).collect();
    assert_eq!(parts[1].at - parts[0].at, Duration::from_secs(12));
}

#[test]
fn server_errors_until_retries_run_out_then_abort() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| {
        if seen.kind == RequestKind::UploadPart {
            return Answer::Respond(error(500, "internal_server_error", "boom"));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(1)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    match &run.output {
        Err(Error::Api(e)) => {
            assert_eq!(e.status, 500);
            assert_eq!(e.code(), Some("internal_server_error"));
            assert_eq!(e.request_id(), Some("req-1"));
        }
        other => panic!("expected Box's 500, got {other:?}"),
    }
    // 1 try + 5 retries, then the abort request.
    assert_eq!(fake.count(RequestKind::UploadPart), 6);
    assert_eq!(fake.count(RequestKind::AbortSession), 1);
    assert!(fake.aborted);
    assert!(run.events.contains(&Event::Aborted { confirmed: true }));
    assert_eq!(fake.count(RequestKind::CommitSession), 0);
}

#[test]
fn keep_session_on_failure_sends_no_abort() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| {
        if seen.kind == RequestKind::UploadPart {
            return Answer::Respond(error(500, "internal_server_error", "boom"));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).keep_session_on_failure(true)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert!(run.output.is_err());
    assert_eq!(fake.count(RequestKind::AbortSession), 0);
}

#[test]
fn part_echo_with_wrong_sha1_fails_and_aborts() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| {
        if seen.kind == RequestKind::UploadPart && seen.header("content-range").unwrap().starts_with("bytes 0-") {
            return Answer::Respond(json(200, serde_json::json!({"part": {"part_id": "AB", "offset": 0, "size": 8 * MIB, "sha1": "0000000000000000000000000000000000000000"}})));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    match run.output {
        Err(Error::Protocol(ProtocolError::PartEchoMismatch { offset: 0, field: "sha1", .. })) => {}
        other => panic!("expected an echo mismatch, got {other:?}"),
    }
    assert!(fake.aborted);
    assert_eq!(fake.count(RequestKind::CommitSession), 0);
}

#[test]
fn list_parts_over_several_pages() {
    // A resumed upload lists the session before its commit (its first parts were not answered
    // in this run), page by page.
    let size = 60_000_000;
    let mut fake = FakeBox::new(5 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(1)).unwrap();
    let run = drive_with(&mut m, &mut fake, &mut default_source(size), Order::Fifo, |e, m| {
        if matches!(e, Event::Progress(p) if p.parts_acknowledged == 2) {
            m.cancel(true);
        }
    });
    assert!(matches!(run.output, Err(Error::Cancelled)));
    assert_eq!(fake.count(RequestKind::ListParts), 0);
    let options = box_upload_core::ResumeOptions { list_page_size: 4, ..Default::default() };
    let mut resumed = client().resume(m.checkpoint().unwrap(), options).unwrap();
    let run = drive(&mut resumed, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let pages: Vec<String> =
        fake.seen.iter().filter(|s| s.kind == RequestKind::ListParts).map(|s| s.uri.clone()).collect();
    assert_eq!(fake.parts.len(), 12);
    // One page on resume (at most 4 parts stored), three before the commit.
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages[0].ends_with("/parts?offset=0&limit=4"));
    assert!(pages[1].ends_with("/parts?offset=0&limit=4"));
    assert!(pages[2].ends_with("/parts?offset=4&limit=4"));
    assert!(pages[3].ends_with("/parts?offset=8&limit=4"));
}

#[test]
fn a_401_refreshes_the_token_once() {
    use box_upload_core::{BoxSubject, ClientCredentials};
    let size = 20_000_001;
    let mut revoked = false;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, fake| {
        // The first token dies after the session is created.
        if seen.kind == RequestKind::UploadPart && !revoked {
            revoked = true;
            fake.valid_token = "rotated".into();
        }
        Answer::Normal
    });
    let ccg = ClientCredentials::new("id", "secret", BoxSubject::Enterprise("42".into()));
    let client = Client::new(config(), ccg);
    let mut m = client.big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(1)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    assert_eq!(fake.count(RequestKind::Token), 2, "one token, then one refresh after the 401");
    let token_req = fake.seen.iter().find(|s| s.kind == RequestKind::Token).unwrap();
    assert_eq!(token_req.uri, "https://api.box.com/oauth2/token");
    assert!(token_req.header("authorization").is_none());
}

#[test]
fn a_second_401_is_final() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    fake.valid_token = "something-else".into();
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    match run.output {
        Err(Error::Auth(box_upload_core::AuthError::Unauthorized(e))) => assert_eq!(e.status, 401),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::CreateSession), 1, "a developer token cannot be refreshed");
}

#[test]
fn foreign_session_endpoints_are_refused_before_sending_the_token() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    fake.endpoints_base = "https://evil.example.com/api".into();
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    match run.output {
        Err(Error::UntrustedHost(h)) => assert_eq!(h.host, "evil.example.com"),
        other => panic!("expected an untrusted host, got {other:?}"),
    }
    assert!(fake.seen.iter().all(|s| !s.uri.contains("evil.example.com")));
    // The abort goes to the trusted base, by id.
    let abort = fake.seen.iter().find(|s| s.kind == RequestKind::AbortSession).unwrap();
    assert!(abort.uri.starts_with("https://upload.box.com/api/2.0/files/upload_sessions/"));
    assert_eq!(fake.count(RequestKind::UploadPart), 0);
}

#[test]
fn box_subdomain_endpoints_are_trusted() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    fake.endpoints_base = "https://dl-upload.box.com/api".into();
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let part = fake.seen.iter().find(|s| s.kind == RequestKind::UploadPart).unwrap();
    assert!(part.uri.starts_with("https://dl-upload.box.com/api/2.0/files/upload_sessions/"));
}

#[test]
fn resume_sends_only_missing_parts() {
    let size = 50_000_000;
    let part_size = 5 * MIB;
    let mut fake = FakeBox::new(part_size);
    let mut m = client()
        .big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(2).source_fingerprint("fp-1"))
        .unwrap();
    // Stop (keeping the session) once four parts are acknowledged.
    let run = drive_with(&mut m, &mut fake, &mut default_source(size), Order::Fifo, |e, m| {
        if let Event::Progress(p) = e {
            if p.parts_acknowledged == 4 {
                m.cancel(true);
            }
        }
    });
    assert!(matches!(run.output, Err(Error::Cancelled)));
    assert!(!fake.aborted);
    let checkpoint = m.checkpoint().unwrap();
    let stored_before = fake.parts.len();
    assert!(stored_before >= 4);
    assert_eq!(checkpoint.parts.len(), 4);
    // The checkpoint survives serde.
    let text = serde_json::to_string(&checkpoint).unwrap();
    let checkpoint: box_upload_core::Checkpoint = serde_json::from_str(&text).unwrap();

    let puts_before = fake.count(RequestKind::UploadPart);
    let options = box_upload_core::ResumeOptions {
        source_fingerprint: Some("fp-1".into()),
        file_size: Some(size),
        ..Default::default()
    };
    let mut resumed = client().resume(checkpoint, options).unwrap();
    let run = drive(&mut resumed, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let puts_after = fake.count(RequestKind::UploadPart) - puts_before;
    assert_eq!(puts_after, 10 - stored_before, "only the missing parts are sent");
    assert_eq!(fake.count(RequestKind::GetSession), 1);
}

#[test]
fn resume_of_a_gone_session_is_a_clear_error() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).keep_session_on_failure(true)).unwrap();
    let _ = drive_with(&mut m, &mut fake, &mut default_source(size), Order::Fifo, |e, m| {
        if matches!(e, Event::SessionCreated { .. }) {
            m.cancel(true);
        }
    });
    let checkpoint = m.checkpoint().unwrap();
    fake.session_exists = false;
    let mut resumed = client().resume(checkpoint, Default::default()).unwrap();
    let run = drive(&mut resumed, &mut fake, default_source(size), Order::Fifo);
    match run.output {
        Err(Error::SessionGone { source, .. }) => assert_eq!(source.status, 404),
        other => panic!("expected session gone, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::UploadPart), 0);
}

#[test]
fn resume_with_a_changed_source_fails_before_commit() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(1)).unwrap();
    let _ = drive_with(&mut m, &mut fake, &mut default_source(size), Order::Fifo, |e, m| {
        if let Event::Progress(p) = e {
            if p.parts_acknowledged == 1 {
                m.cancel(true);
            }
        }
    });
    let checkpoint = m.checkpoint().unwrap();
    let mut resumed = client().resume(checkpoint, Default::default()).unwrap();
    let changed: Source = Box::new(move |offset, len| {
        let mut v = source_bytes(offset, ((offset + len as u64).min(size) - offset.min(size)) as usize);
        if offset == 0 && !v.is_empty() {
            v[0] ^= 0xff;
        }
        Ok(v)
    });
    let run = drive(&mut resumed, &mut fake, changed, Order::Fifo);
    assert!(matches!(run.output, Err(Error::Source(box_upload_core::SourceError::ResumeMismatch { offset: 0 }))));
    assert!(fake.committed.is_none());
}

#[test]
fn source_that_ends_early_or_runs_long() {
    let size = 20_000_001;
    // Ends early: the last part is short.
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let short: Source = Box::new(move |offset, len| {
        let end = (offset + len as u64).min(size - 10);
        Ok(source_bytes(offset, end.saturating_sub(offset) as usize))
    });
    let run = drive(&mut m, &mut fake, short, Order::Fifo);
    assert!(matches!(run.output, Err(Error::Source(box_upload_core::SourceError::EndedEarly { .. }))));
    assert!(fake.committed.is_none());
    assert!(fake.aborted);

    // Runs long: bytes past the declared size.
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let long: Source = Box::new(move |offset, len| Ok(source_bytes(offset, len)));
    let run = drive(&mut m, &mut fake, long, Order::Fifo);
    assert!(matches!(run.output, Err(Error::Source(box_upload_core::SourceError::RanLong { file_size: 20_000_001 }))));
    assert!(fake.committed.is_none());
    assert_eq!(fake.count(RequestKind::CommitSession), 0);
}

#[test]
fn transport_failures_are_retried() {
    let size = 20_000_001;
    let mut n = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind != RequestKind::CommitSession && n < 4 {
            n += 1;
            return Answer::Fail;
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
}

#[test]
fn new_version_sends_if_match_on_commit() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_version("12345", size).if_match("7")).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert_committed(&run, &fake, size);
    let create = &fake.seen[0];
    assert_eq!(create.uri, "https://upload.box.com/api/2.0/files/12345/upload_sessions");
    assert_eq!(create.json(), serde_json::json!({"file_size": size}));
    let commit = fake.seen.iter().find(|s| s.kind == RequestKind::CommitSession).unwrap();
    assert_eq!(commit.header("if-match"), Some("7"));
}

#[test]
fn if_match_412_is_reported_with_boxs_error() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| {
        if seen.kind == RequestKind::CommitSession {
            return Answer::Respond(error(412, "precondition_failed", "etag"));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_version("12345", size).if_match("stale")).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    let err = run.output.unwrap_err();
    assert_eq!(err.box_code(), Some("precondition_failed"));
    assert!(err.to_string().contains("412"), "{err}");
    assert!(fake.committed.is_none());
}

#[test]
fn too_small_is_refused_before_any_request() {
    let err = client().big_upload(UploadRequest::new_file("0", "f.bin", 19_999_999)).unwrap_err();
    assert_eq!(err, box_upload_core::InputError::FileTooSmall { size: 19_999_999 });
    let long = "x".repeat(256);
    assert!(matches!(
        client().big_upload(UploadRequest::new_file("0", long, 30_000_000)),
        Err(box_upload_core::InputError::BadName { .. })
    ));
    assert!(matches!(
        client().big_upload(UploadRequest::new_file("0", "a/b", 30_000_000)),
        Err(box_upload_core::InputError::BadName { .. })
    ));
    assert!(matches!(
        client().big_upload(UploadRequest::new_file("0", "a", 30_000_000).parts_in_flight(0)),
        Err(box_upload_core::InputError::ZeroParallelism)
    ));
}

#[test]
fn session_with_impossible_numbers_is_refused() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, fake| {
        if seen.kind == RequestKind::CreateSession {
            let mut s = fake.session_json();
            s["total_parts"] = serde_json::json!(2);
            return Answer::Respond(json(201, s));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert!(matches!(run.output, Err(Error::Protocol(ProtocolError::BadSession(_)))), "{:?}", run.output);
    let _ = StatusCode::OK;
}

#[test]
fn resume_refuses_an_answer_for_another_session() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let _ = drive_with(&mut m, &mut fake, &mut default_source(size), Order::Fifo, |e, m| {
        if matches!(e, Event::SessionCreated { .. }) {
            m.cancel(true);
        }
    });
    let checkpoint = m.checkpoint().unwrap();
    let mut fake = fake.hook(|seen, fake| {
        if seen.kind == RequestKind::GetSession {
            let mut s = fake.session_json();
            s["id"] = serde_json::json!("0123456789ABCDEF");
            return Answer::Respond(json(200, s));
        }
        Answer::Normal
    });
    let mut resumed = client().resume(checkpoint, Default::default()).unwrap();
    let run = drive(&mut resumed, &mut fake, default_source(size), Order::Fifo);
    assert!(
        matches!(run.output, Err(Error::Input(box_upload_core::InputError::CheckpointMismatch(_)))),
        "{:?}",
        run.output
    );
    assert_eq!(fake.count(RequestKind::UploadPart), 0);
    // The checkpoint's own session is the one aborted.
    let abort = fake.seen.iter().find(|s| s.kind == RequestKind::AbortSession).unwrap();
    assert!(abort.uri.ends_with("F971964745A5CD0C001BBE4E58196BFD"));
}

#[test]
fn a_session_with_more_parts_than_box_can_list_is_refused_before_any_part() {
    let size = 20_000_001;
    let mut fake = FakeBox::new(1000).hook(|seen, fake| {
        if seen.kind == RequestKind::CreateSession {
            // 20,001 parts of 1000 bytes: past what list parts can page through.
            fake.file_size = 20_000_001;
            fake.session_exists = true;
            return Answer::Respond(json(201, fake.session_json()));
        }
        Answer::Normal
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert!(
        matches!(
            run.output,
            Err(Error::Protocol(ProtocolError::BadSession(box_upload_core::PlanError::TooManyParts { parts: 20_001 })))
        ),
        "{:?}",
        run.output
    );
    assert_eq!(fake.count(RequestKind::UploadPart), 0);
    assert!(fake.aborted);
}

#[test]
fn reads_served_in_order_carry_the_whole_file_hash() {
    // A driver that serves reads one at a time through `part_builder` leaves the machine no
    // whole-file hashing of its own: each read runs both SHA-1 passes on its chunks.
    let size = 40 * MIB + 17;
    for (through_builder, hashed_here) in [(true, 0), (false, size)] {
        reads_through_builder(Some(through_builder));
        let mut fake = FakeBox::new(8 * MIB);
        let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
        let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
        reads_through_builder(None);
        assert_committed(&run, &fake, size);
        assert_eq!(m.whole_file_bytes_hashed_here(), hashed_here, "through the builder: {through_builder}");
        assert_eq!(m.file_digest(), Some(whole_sha1(size)));
    }
}

#[test]
fn a_carried_hash_from_bytes_is_the_same_as_from_a_read() {
    use box_upload_core::{PartBuilder, PartData};
    let bytes = box_upload_core::bytes::Bytes::from((0..3 * MIB + 5).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>());
    let part = PartBuilder::new(Vec::new()).finish_with_bytes(bytes.clone());
    assert_eq!(part.sha1(), PartData::new(bytes.clone()).sha1());
    assert_eq!(part.bytes(), &bytes);
}

/// Box's answer to `t`, from the simulated Box.
fn answer_of(
    fake: &mut FakeBox,
    t: box_upload_core::Transmit,
    now: std::time::Instant,
) -> box_upload_core::http::Response<box_upload_core::bytes::Bytes> {
    fake.handle(Seen::of(t, now)).unwrap()
}

#[test]
fn the_next_part_is_read_ahead_and_goes_out_as_soon_as_a_place_frees() {
    use box_upload_core::{Machine, PartData};
    let size = 5 * 8 * MIB;
    let mut fake = FakeBox::new(8 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).parts_in_flight(2)).unwrap();
    let now = std::time::Instant::now();
    let create = m.poll_transmit(now).unwrap();
    let id = create.id;
    let r = answer_of(&mut fake, create, now);
    m.handle_response(id, r, now);
    let mut reads = 0;
    while let Some(read) = m.poll_read() {
        m.handle_read(read.id, Ok(PartData::new(source_bytes(read.offset, read.len))), now);
        reads += 1;
    }
    assert_eq!(reads, 3, "two parts in flight and one read ahead");
    let mut parts: Vec<box_upload_core::Transmit> = std::iter::from_fn(|| m.poll_transmit(now)).collect();
    assert_eq!(parts.len(), 2, "no more than parts_in_flight on the wire");
    let first = parts.remove(0);
    let id = first.id;
    let r = answer_of(&mut fake, first, now);
    m.handle_response(id, r, now);
    // The part read ahead goes out at once, before any read.
    let next = m.poll_transmit(now).expect("the part read ahead goes out");
    assert_eq!(next.kind, RequestKind::UploadPart);
    let range = next.request.headers()["content-range"].to_str().unwrap().to_owned();
    assert!(range.starts_with(&format!("bytes {}-", 16 * MIB)), "{range}");
    assert!(m.poll_transmit(now).is_none(), "still two on the wire");
    assert!(m.poll_read().is_some(), "and the next part is read ahead");
}
