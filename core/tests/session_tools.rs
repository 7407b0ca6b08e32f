//! `ListAllParts` and `CommitAndWait` against the simulated Box, on a simulated clock: paging
//! rules that end every listing, and a commit that waits out 202 answers within its budget.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use box_upload_core::bytes::Bytes;
use box_upload_core::http::Response;
use box_upload_core::models::{Files, UploadPart, UploadParts};
use box_upload_core::operations::{CommitUploadSession, SessionRef, MAX_LIST_OFFSET};
use box_upload_core::{
    Client, Config, DeveloperToken, Error, Event, InputError, ListAllParts, Machine, ProtocolError, RequestKind,
    RetryPolicy, Sha1Digest, MAX_PARTS,
};
use std::time::Duration;
use support::*;

fn config() -> Config {
    let mut c = Config::new();
    c.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(100),
        commit_timeout: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    c
}

fn client() -> Client {
    Client::new(config(), DeveloperToken::new("tok"))
}

/// A simulated Box whose session holds `n` parts of 8 bytes.
fn fake_with_parts(n: u64) -> FakeBox {
    let mut fake = FakeBox::new(8);
    fake.file_size = 8 * n;
    fake.session_exists = true;
    for i in 0..n {
        let bytes = Bytes::from(source_bytes(i * 8, 8));
        let sha1 = Sha1Digest::of(&bytes);
        fake.parts.insert(i * 8, StoredPart { part_id: format!("{:08X}", 0x1000 + i), size: 8, sha1, bytes });
    }
    fake
}

fn query(uri: &str, key: &str) -> Option<u64> {
    let (_, q) = uri.split_once('?')?;
    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok())
}

/// The offsets of the list-parts requests Box saw, in order.
fn list_offsets(fake: &FakeBox) -> Vec<u64> {
    fake.seen.iter().filter(|s| s.kind == RequestKind::ListParts).map(|s| query(&s.uri, "offset").unwrap()).collect()
}

/// A page of a made-up session: `per_page(offset, limit)` entries from `offset`, Box saying
/// `total`.
fn page_hook(total: u64, per_page: impl Fn(u64, u64) -> u64 + 'static) -> impl FnMut(&Seen, &mut FakeBox) -> Answer {
    move |seen, _| {
        if seen.kind != RequestKind::ListParts {
            return Answer::Normal;
        }
        let offset = query(&seen.uri, "offset").unwrap();
        let limit = query(&seen.uri, "limit").unwrap();
        let end = (offset + per_page(offset, limit)).min(total);
        let entries: Vec<_> = (offset..end)
            .map(|i| serde_json::json!({"part_id": format!("{i:08X}"), "offset": i * 8, "size": 8}))
            .collect();
        Answer::Respond(json(
            200,
            serde_json::json!({"entries": entries, "offset": offset, "limit": limit, "total_count": total}),
        ))
    }
}

fn list(machine: ListAllParts, fake: &mut FakeBox) -> Run<UploadParts> {
    let mut machine = machine;
    drive(&mut machine, fake, default_source(0), Order::Fifo)
}

/// A commit of three 8-byte parts (24 bytes) whose whole-file SHA-1 is `[7; 20]`.
fn commit_op() -> CommitUploadSession {
    let parts = (0..3)
        .map(|i| UploadPart { part_id: format!("{:08X}", 0x1000 + i), offset: i * 8, size: 8, sha1: None })
        .collect();
    CommitUploadSession::by_id("F971964745A5CD0C001BBE4E58196BFD", parts, Sha1Digest([7; 20]))
}

fn commit(fake: &mut FakeBox) -> Run<Files> {
    let mut machine = client().commit_and_wait(commit_op());
    drive(&mut machine, fake, default_source(0), Order::Fifo)
}

fn not_ready(retry_after: Option<&str>) -> Response<Bytes> {
    let mut r = empty(202);
    if let Some(v) = retry_after {
        r.headers_mut().insert("retry-after", v.parse().unwrap());
    }
    r
}

fn committed() -> Response<Bytes> {
    // The file of `commit_op`: its size and SHA-1, as CommitAndWait checks them.
    let sha1 = Sha1Digest([7; 20]).to_hex();
    json(
        201,
        serde_json::json!({"entries": [{"id": "12345", "type": "file", "size": 24, "sha1": sha1}], "total_count": 1}),
    )
}

fn commit_times(fake: &FakeBox) -> Vec<Duration> {
    let first = fake.seen.first().unwrap().at;
    fake.seen.iter().filter(|s| s.kind == RequestKind::CommitSession).map(|s| s.at - first).collect()
}

// ---- ListAllParts -------------------------------------------------------------------------------

#[test]
fn lists_every_part_over_several_pages_in_order() {
    let mut fake = fake_with_parts(7);
    let run = list(ListAllParts::by_id(&client(), fake.session_id.clone()).with_limit(3).unwrap(), &mut fake);
    let parts = run.output.unwrap();
    let offsets: Vec<u64> = parts.entries.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [0, 8, 16, 24, 32, 40, 48]);
    assert_eq!(parts.entries[6].part_id, "00001006");
    assert_eq!((parts.total_count, parts.offset, parts.limit), (Some(7), Some(0), Some(3)));
    assert_eq!(list_offsets(&fake), [0, 3, 6]);
    for seen in fake.seen.iter() {
        assert_eq!(query(&seen.uri, "limit"), Some(3));
        assert_eq!(seen.header("authorization"), Some("Bearer tok"));
    }
    assert_eq!(run.events.last(), Some(&Event::Finished));
}

#[test]
fn lists_at_the_session_endpoints_url_with_the_client_constructor() {
    let mut fake = fake_with_parts(1001);
    let url = fake.session_json()["session_endpoints"]["list_parts"].as_str().unwrap().to_owned();
    let machine = client().list_all_parts(SessionRef::Url(url.clone())).with_max_parts(1001);
    assert_eq!(machine.session(), &SessionRef::Url(url.clone()));
    let run = list(machine, &mut fake);
    let parts = run.output.unwrap();
    assert_eq!(parts.total_count, Some(1001));
    assert_eq!(parts.entries.len(), 1001);
    assert!(parts.entries.windows(2).all(|w| w[0].offset < w[1].offset));
    // Default page size: Box's largest.
    assert_eq!(list_offsets(&fake), [0, 1000]);
    assert!(fake.seen.iter().all(|s| s.uri.starts_with(&format!("{url}?"))), "{:?}", fake.seen[0].uri);
}

#[test]
fn a_page_answered_503_is_sent_again_by_the_dispatcher() {
    let mut failed = false;
    let mut fake = fake_with_parts(5).hook(move |seen, _| {
        if seen.kind == RequestKind::ListParts && query(&seen.uri, "offset") == Some(2) && !failed {
            failed = true;
            return Answer::Respond(error(503, "unavailable", "try again"));
        }
        Answer::Normal
    });
    let run = list(ListAllParts::by_id(&client(), fake.session_id.clone()).with_limit(2).unwrap(), &mut fake);
    assert_eq!(run.output.unwrap().entries.len(), 5);
    assert_eq!(list_offsets(&fake), [0, 2, 2, 4]);
    let retries: Vec<_> = run.events.iter().filter(|e| matches!(e, Event::Retrying { .. })).collect();
    assert!(matches!(retries[..], [Event::Retrying { kind: RequestKind::ListParts, attempt: 1, .. }]), "{retries:?}");
}

#[test]
fn a_total_count_that_changes_between_pages_is_refused() {
    let mut page = 0;
    let mut fake = FakeBox::new(8).hook(move |seen, _| {
        page += 1;
        let offset = query(&seen.uri, "offset").unwrap();
        let entries = vec![serde_json::json!({"part_id": format!("P{offset}"), "offset": offset * 8, "size": 8})];
        Answer::Respond(json(200, serde_json::json!({"entries": entries, "total_count": 4 + page})))
    });
    let run = list(ListAllParts::by_id(&client(), "S1").with_limit(1).unwrap(), &mut fake);
    match run.output {
        Err(Error::Protocol(ProtocolError::PartsListMismatch(msg))) => {
            assert!(msg.contains("total_count changed from 5 to 6"), "{msg}")
        }
        other => panic!("expected PartsListMismatch, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::ListParts), 2);
}

#[test]
fn a_huge_total_count_with_one_entry_per_page_fails_at_the_first_page() {
    const HUGE: u64 = 1_000_000_000_000;
    // Bounded by the session's parts (by default the core's MAX_PARTS)...
    let mut fake = FakeBox::new(8).hook(page_hook(HUGE, |_, _| 1));
    let run = list(ListAllParts::by_id(&client(), "S1"), &mut fake);
    match run.output {
        Err(Error::Protocol(ProtocolError::PartsListMismatch(msg))) => {
            assert!(msg.contains(&format!("total_count {HUGE} is more than the session's {MAX_PARTS} parts")), "{msg}")
        }
        other => panic!("expected PartsListMismatch, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::ListParts), 1);

    // ... and, with no bound on the parts, by Box's largest offset.
    let mut fake = FakeBox::new(8).hook(page_hook(HUGE, |_, _| 1));
    let run = list(ListAllParts::by_id(&client(), "S1").with_max_parts(u64::MAX), &mut fake);
    match run.output {
        Err(Error::Protocol(ProtocolError::ListOffsetTooLarge { total_count, limit, offset, max_offset })) => {
            assert_eq!((total_count, limit, max_offset), (HUGE, 1000, MAX_LIST_OFFSET));
            assert!(offset > MAX_LIST_OFFSET);
        }
        other => panic!("expected ListOffsetTooLarge, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::ListParts), 1);
}

#[test]
fn a_listing_that_cannot_end_by_offset_10000_fails_before_asking_past_it() {
    // Full pages of 100 would need a page at offset 10,400: known from the first page.
    let mut fake = FakeBox::new(8).hook(page_hook(10_500, |_, limit| limit));
    let run = list(ListAllParts::by_id(&client(), "S1").with_limit(100).unwrap(), &mut fake);
    match run.output {
        Err(Error::Protocol(e @ ProtocolError::ListOffsetTooLarge { .. })) => {
            assert_eq!(
                e,
                ProtocolError::ListOffsetTooLarge {
                    total_count: 10_500,
                    limit: 100,
                    offset: 10_400,
                    max_offset: 10_000
                }
            );
            assert!(e.to_string().contains("past Box's largest offset of 10000"), "{e}");
        }
        other => panic!("expected ListOffsetTooLarge, got {other:?}"),
    }
    assert_eq!(list_offsets(&fake), [0]);

    // Full pages would end at offset 10,000; a short page there only shows it then, and the
    // page it would need (offset 10,001) is never asked for.
    let short_at_the_end = |offset, limit| if offset < 10_000 { limit } else { 1 };
    let mut fake = FakeBox::new(8).hook(page_hook(10_500, short_at_the_end));
    let run = list(ListAllParts::by_id(&client(), "S1"), &mut fake);
    assert!(
        matches!(
            run.output,
            Err(Error::Protocol(ProtocolError::ListOffsetTooLarge { total_count: 10_500, offset: 10_001, .. }))
        ),
        "{:?}",
        run.output
    );
    assert_eq!(list_offsets(&fake), (0..=10).map(|i| i * 1000).collect::<Vec<_>>());
}

#[test]
fn a_listing_that_ends_at_offset_10000_succeeds() {
    let mut fake = FakeBox::new(8).hook(page_hook(MAX_PARTS, |_, limit| limit));
    let run = list(ListAllParts::by_id(&client(), "S1"), &mut fake);
    let parts = run.output.unwrap();
    assert_eq!(parts.entries.len() as u64, MAX_PARTS);
    assert_eq!(parts.entries.last().unwrap().offset, (MAX_PARTS - 1) * 8);
    assert_eq!(list_offsets(&fake), (0..=10).map(|i| i * 1000).collect::<Vec<_>>());
}

#[test]
fn list_all_parts_refuses_bad_input_before_any_request() {
    assert_eq!(ListAllParts::by_id(&client(), "S1").with_limit(1001).unwrap_err(), InputError::LimitTooLarge(1001));
    let mut machine = ListAllParts::by_id(&client(), "not an id");
    assert!(matches!(machine.poll_output(), Some(Err(Error::Input(InputError::BadId { .. })))));
    assert!(machine.poll_transmit(std::time::Instant::now()).is_none());
}

// ---- CommitAndWait ------------------------------------------------------------------------------

#[test]
fn commit_202_202_201_succeeds_and_honours_retry_after() {
    let mut answers = vec![not_ready(Some("7")), not_ready(Some("7"))].into_iter();
    let mut fake = FakeBox::new(8).hook(move |seen, _| {
        assert_eq!(seen.kind, RequestKind::CommitSession);
        Answer::Respond(answers.next().unwrap_or_else(committed))
    });
    let run = commit(&mut fake);
    let files = run.output.unwrap();
    assert_eq!(files.entries[0].id, "12345");
    assert_eq!(commit_times(&fake), [Duration::ZERO, Duration::from_secs(7), Duration::from_secs(14)]);
    let pending: Vec<_> = run.events.iter().filter(|e| matches!(e, Event::CommitPending { .. })).cloned().collect();
    assert_eq!(
        pending,
        [
            Event::CommitPending { attempts: 1, delay: Duration::from_secs(7) },
            Event::CommitPending { attempts: 2, delay: Duration::from_secs(7) },
        ]
    );
    assert_eq!(run.elapsed, Duration::from_secs(14));
    // Every commit is the same request.
    let bodies: Vec<_> = fake.seen.iter().map(|s| s.body.clone()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let digest = fake.seen[0].header("digest").unwrap();
    assert_eq!(Sha1Digest::parse_header(digest).unwrap(), Sha1Digest([7; 20]));
}

#[test]
fn commit_202_with_a_long_retry_after_waits_at_most_max_retry_after() {
    let mut answers = vec![not_ready(Some("3600"))].into_iter();
    let mut fake = FakeBox::new(8).hook(move |_, _| Answer::Respond(answers.next().unwrap_or_else(committed)));
    let mut c = config();
    c.retry.max_retry_after = Duration::from_secs(20);
    let mut machine = Client::new(c, DeveloperToken::new("tok")).commit_and_wait(commit_op());
    let run = drive(&mut machine, &mut fake, default_source(0), Order::Fifo);
    assert!(run.output.is_ok());
    assert_eq!(commit_times(&fake), [Duration::ZERO, Duration::from_secs(20)]);
}

#[test]
fn commit_202_forever_ends_with_the_budget_error_at_the_budget_time() {
    let mut fake = FakeBox::new(8).hook(|_, _| Answer::Respond(not_ready(Some("10"))));
    let run = commit(&mut fake);
    match run.output {
        Err(Error::CommitTimeout { attempts, waited }) => {
            // Commits at 0, 10, ..., 60 s: one more would wait past the 60 s budget.
            assert_eq!(attempts, 7);
            assert_eq!(waited, Duration::from_secs(60));
        }
        other => panic!("expected CommitTimeout, got {other:?}"),
    }
    assert_eq!(run.elapsed, Duration::from_secs(60));
    assert_eq!(fake.count(RequestKind::CommitSession), 7);
    assert_eq!(run.events.iter().filter(|e| matches!(e, Event::CommitPending { .. })).count(), 6);

    // A wait that does not divide the budget: it gives up as soon as the next would be late.
    let mut fake = FakeBox::new(8).hook(|_, _| Answer::Respond(not_ready(Some("25"))));
    let run = commit(&mut fake);
    assert!(matches!(run.output, Err(Error::CommitTimeout { attempts: 3, .. })), "{:?}", run.output);
    assert_eq!(run.elapsed, Duration::from_secs(50));
}

#[test]
fn commit_202_without_retry_after_backs_off_within_the_budget() {
    let mut fake = FakeBox::new(8).hook(|_, _| Answer::Respond(not_ready(None)));
    let run = commit(&mut fake);
    assert!(matches!(run.output, Err(Error::CommitTimeout { .. })), "{:?}", run.output);
    assert!(run.elapsed <= Duration::from_secs(60), "{:?}", run.elapsed);
    let times = commit_times(&fake);
    assert!(times.len() >= 5, "{times:?}");
    // The policy's backoff: 100 ms doubling, capped at 30 s, times a jitter in [0.5, 1.5).
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(50) && gaps[0] < Duration::from_millis(150), "{gaps:?}");
    assert!(gaps.iter().all(|g| *g < Duration::from_secs(45)), "{gaps:?}");
    assert!(gaps.last().unwrap() > &Duration::from_secs(5), "{gaps:?}");
}

#[test]
fn commit_parts_mismatch_is_retried_a_bounded_number_of_times() {
    let mut fake = FakeBox::new(8).hook(|_, _| Answer::Respond(error(400, "parts_mismatch", "parts")));
    let run = commit(&mut fake);
    assert_eq!(run.output.as_ref().err().and_then(Error::box_code), Some("parts_mismatch"));
    // The first commit and `parts_mismatch_retries` (3) more.
    assert_eq!(fake.count(RequestKind::CommitSession), 4);
    let retries = run.events.iter().filter(|e| matches!(e, Event::Retrying { kind: RequestKind::CommitSession, .. }));
    assert_eq!(retries.count(), 3);
}

#[test]
fn commit_errors_end_the_run_without_waiting() {
    let mut fake = FakeBox::new(8).hook(|_, _| Answer::Respond(error(412, "precondition_failed", "etag")));
    let run = commit(&mut fake);
    assert_eq!(run.output.as_ref().err().and_then(Error::box_code), Some("precondition_failed"));
    assert_eq!(fake.count(RequestKind::CommitSession), 1);
    assert_eq!(run.elapsed, Duration::ZERO);
}
