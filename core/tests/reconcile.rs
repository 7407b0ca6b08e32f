//! Parts whose answer was lost, looked up while other parts are still being stored (the probe of
//! `core/src/upload/reconcile.rs`), against a simulated Box with short list pages; what a hostile
//! list does to it; and the cap on `part_size`, for new sessions and resumes.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use box_upload_core::{
    Checkpoint, Client, Config, DeveloperToken, Error, Event, ProtocolError, RequestKind, RetryPolicy, Sha1Digest,
    UploadRequest, DEFAULT_MAX_PART_SIZE,
};
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;
use support::*;

const MIB: u64 = 1 << 20;
/// 40 parts of 512 KiB.
const PART: u64 = 512 * 1024;
const SIZE: u64 = 40 * PART;

fn config() -> Config {
    let mut c = Config::new();
    c.retry = RetryPolicy { initial_backoff: Duration::from_millis(100), ..RetryPolicy::default() };
    c
}

fn client_with(config: Config) -> Client {
    Client::new(config, DeveloperToken::new("tok"))
}

fn client() -> Client {
    client_with(config())
}

fn query(uri: &str, key: &str) -> Option<u64> {
    let q = uri.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok())
}

fn part_json(offset: u64, size: u64, sha1: &str) -> Value {
    json!({"part_id": format!("{:08X}", offset / PART + 0x1000), "offset": offset, "size": size, "sha1": sha1})
}

/// Box's page for `uri`, at most `max` entries, in offset order.
fn page(fake: &FakeBox, uri: &str, max: u64) -> Value {
    let offset = query(uri, "offset").unwrap_or(0) as usize;
    let limit = query(uri, "limit").unwrap_or(100).min(max) as usize;
    let entries: Vec<Value> =
        fake.parts.iter().skip(offset).take(limit).map(|(o, p)| part_json(*o, p.size, &p.sha1.to_hex())).collect();
    json!({"entries": entries, "limit": limit, "offset": offset, "total_count": fake.parts.len(),
        "order": [{"by": "offset", "direction": "ASC"}]})
}

fn offset_of(seen: &Seen) -> u64 {
    seen.header("content-range").unwrap().parse::<box_upload_core::ContentRange>().unwrap().offset()
}

/// Stores the part `seen` carries, as Box does before an answer is lost.
fn store(seen: &Seen, fake: &mut FakeBox) {
    let offset = offset_of(seen);
    let part_id = format!("{:08X}", offset / PART + 0x1000);
    let part = StoredPart {
        part_id,
        size: seen.body.len() as u64,
        sha1: Sha1Digest::of(&seen.body),
        bytes: seen.body.clone(),
    };
    fake.parts.insert(offset, part);
}

/// A Box that stores the parts at `lost` offsets and then loses their first answer, and whose
/// list pages hold at most `page_size` entries. Every other lost answer is a transport failure
/// (retried after the backoff, which the simulated clock reaches only once nothing else is in
/// flight); the rest answer 416 `range_overlaps_existing_part` at once, as the retry of a lost
/// answer does on a fast link: the look-up then runs while the other parts are being stored.
fn losing_box(lost: &[u64], page_size: u64) -> FakeBox {
    let mut to_lose: HashSet<u64> = lost.iter().copied().collect();
    FakeBox::new(PART).hook(move |seen, fake| match seen.kind {
        RequestKind::UploadPart if to_lose.remove(&offset_of(seen)) => {
            if (offset_of(seen) / PART).is_multiple_of(2) {
                Answer::ProcessThenFail
            } else {
                store(seen, fake);
                Answer::Respond(error(416, "range_overlaps_existing_part", "overlap"))
            }
        }
        RequestKind::ListParts => Answer::Respond(json(200, page(fake, &seen.uri, page_size))),
        _ => Answer::Normal,
    })
}

fn adopted(events: &[Event]) -> Vec<u64> {
    let mut offsets: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::PartAdopted { offset } => Some(*offset),
            _ => None,
        })
        .collect();
    offsets.sort_unstable();
    offsets
}

fn assert_committed(run: &Run<box_upload_core::models::FileFull>, fake: &FakeBox) {
    assert!(run.output.is_ok(), "{:?}", run.output);
    let committed = fake.committed.as_ref().expect("committed");
    assert_eq!(Sha1Digest::of(committed), whole_sha1(SIZE));
    assert!(!fake.aborted);
}

/// The failure: a lost answer while other parts are still being stored, with pages of 1
/// and 2 and answers in either order. A whole listing then sees `total_count` grow between pages;
/// the look-up reads only the positions the part can hold, while the other parts go on.
#[test]
fn lost_answers_adopted_while_other_parts_are_stored() {
    let lost = [3 * PART, 17 * PART, 18 * PART, 25 * PART, 39 * PART];
    for page_size in [1, 2, 1000] {
        for (in_flight, order) in [(4, Order::Fifo), (8, Order::Fifo), (4, Order::Lifo), (1, Order::Fifo)] {
            let mut fake = losing_box(&lost, page_size);
            let request = UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(in_flight);
            let mut m = client().big_upload(request).unwrap();
            let run = drive(&mut m, &mut fake, default_source(SIZE), order);
            let case = format!("pages of {page_size}, {in_flight} in flight");
            assert_committed(&run, &fake);
            assert_eq!(adopted(&run.events), lost, "{case}");
            // Each look-up reads at most `in_flight` positions; the rest is the final listing.
            let verify_pages = 40u64.div_ceil(page_size) as usize;
            let lookups = fake.count(RequestKind::ListParts) - verify_pages;
            assert!(lookups <= lost.len() * in_flight, "{case}: {lookups} look-up pages");
            assert!(lookups >= 1, "{case}");
        }
    }
}

/// A look-up reads only the window: with 8 in flight and pages of 1000, one page of at most 8.
#[test]
fn a_look_up_asks_only_for_the_positions_the_part_can_hold() {
    let mut fake = losing_box(&[21 * PART], 1000);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(8)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(SIZE), Order::Fifo);
    assert_committed(&run, &fake);
    let lists: Vec<&Seen> = fake.seen.iter().filter(|s| s.kind == RequestKind::ListParts).collect();
    assert_eq!(lists.len(), 2, "one look-up page, one final page");
    let (offset, limit) = (query(&lists[0].uri, "offset").unwrap(), query(&lists[0].uri, "limit").unwrap());
    // Positions from the parts acknowledged below it (more than 12 of 21) up to 21.
    assert!((13..=21).contains(&offset) && offset + limit == 22 && limit <= 8, "offset {offset} limit {limit}");
    assert_eq!(query(&lists[1].uri, "offset"), Some(0));
    assert_eq!(query(&lists[1].uri, "limit"), Some(1000));
}

// ---- hostile lists during a look-up ------------------------------------------------------------

/// A Box that loses the answer of the part at `PART * 10` and answers every list request with
/// `answer(request number from 0, fake, uri)`.
fn hostile_case(
    in_flight: usize,
    mut answer: impl FnMut(usize, &FakeBox, &str) -> Value + 'static,
) -> (Error, FakeBox) {
    let mut lost = false;
    let mut lists = 0;
    let mut fake = FakeBox::new(PART).hook(move |seen, fake| match seen.kind {
        RequestKind::UploadPart if !lost && offset_of(seen) == 10 * PART => {
            lost = true;
            Answer::ProcessThenFail
        }
        RequestKind::ListParts => {
            lists += 1;
            Answer::Respond(json(200, answer(lists - 1, fake, &seen.uri)))
        }
        _ => Answer::Normal,
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(in_flight)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(SIZE), Order::Fifo);
    let e = run.output.expect_err("the run fails");
    assert!(fake.aborted, "the session is aborted");
    assert_eq!(fake.count(RequestKind::CommitSession), 0);
    (e, fake)
}

fn assert_conflict(e: &Error, detail: &str) {
    match e {
        Error::Protocol(ProtocolError::PartConflict { offset, detail: d }) => {
            assert_eq!(*offset, 10 * PART);
            assert!(d.contains(detail), "{d}");
        }
        other => panic!("expected a part conflict, got {other:?}"),
    }
}

/// `total_count` grows on every page and every page holds one part listed before ours, as if a
/// part were stored below it each time: the look-up gives up at the end of its window.
#[test]
fn pages_that_shift_for_ever_end_within_the_window() {
    let (e, fake) = hostile_case(4, |n, _, uri| {
        let offset = query(uri, "offset").unwrap();
        json!({"entries": [part_json(offset.min(9) * PART, PART, "00")], "total_count": 1_000_000 + n})
    });
    assert_conflict(&e, "the only ones it can hold");
    assert!(fake.count(RequestKind::ListParts) <= 4, "{} pages", fake.count(RequestKind::ListParts));
}

/// The entry at our offset holds other bytes: never adopted.
#[test]
fn an_entry_that_is_not_ours_is_never_adopted() {
    let (e, _) = hostile_case(4, |_, fake, uri| {
        let mut p = page(fake, uri, 1000);
        for entry in p["entries"].as_array_mut().unwrap() {
            if entry["offset"] == 10 * PART {
                entry["sha1"] = json!(Sha1Digest::of(b"someone else's part").to_hex());
            }
        }
        p
    });
    assert_conflict(&e, &Sha1Digest::of(b"someone else's part").to_hex());
    let (e, _) = hostile_case(4, |_, fake, uri| {
        let mut p = page(fake, uri, 1000);
        for entry in p["entries"].as_array_mut().unwrap() {
            if entry["offset"] == 10 * PART {
                entry["size"] = json!(PART - 1);
            }
        }
        p
    });
    assert_conflict(&e, &format!("{} bytes", PART - 1));
}

#[test]
fn an_empty_page_means_the_part_is_not_stored() {
    let (e, fake) = hostile_case(4, |_, _, _| json!({"entries": [], "total_count": 7}));
    assert_conflict(&e, "is empty");
    assert_eq!(fake.count(RequestKind::ListParts), 1);
}

#[test]
fn a_page_over_the_limit_asked_is_refused() {
    let (e, fake) = hostile_case(2, |_, fake, uri| {
        let mut p = page(fake, uri, 1000);
        let entries = p["entries"].as_array_mut().unwrap();
        let first = entries[0].clone();
        entries.extend(std::iter::repeat_n(first, 5));
        p
    });
    match e {
        Error::Protocol(ProtocolError::PartsListMismatch(msg)) => assert!(msg.contains("more than the limit"), "{msg}"),
        other => panic!("expected PartsListMismatch, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::ListParts), 1);
}

/// `total_count` growing without bound does not disturb the look-up (it is not used), and the
/// final listing, with nothing in flight, refuses it at once.
#[test]
fn total_count_growing_without_bound_is_refused_by_the_final_listing() {
    let (e, fake) = hostile_case(4, |n, fake, uri| {
        let mut p = page(fake, uri, 2);
        p["total_count"] = json!(fake.parts.len() as u64 + 1000 * (n as u64 + 1));
        p
    });
    match e {
        Error::Protocol(ProtocolError::PartsListMismatch(msg)) => assert!(msg.contains("total_count"), "{msg}"),
        other => panic!("expected PartsListMismatch, got {other:?}"),
    }
    assert!(fake.count(RequestKind::ListParts) <= 4 + 1, "{} pages", fake.count(RequestKind::ListParts));
}

/// Every part refused as overlapping, and the list answering one made-up entry per page for ever:
/// each look-up ends within its window and the first failure ends the run.
#[test]
fn a_box_that_refuses_every_part_and_lists_made_up_parts_ends_the_run() {
    let mut fake = FakeBox::new(PART).hook(|seen, _| match seen.kind {
        RequestKind::UploadPart => Answer::Respond(error(416, "range_overlaps_existing_part", "overlap")),
        RequestKind::ListParts => {
            let offset = query(&seen.uri, "offset").unwrap();
            Answer::Respond(json(
                200,
                json!({"entries": [part_json(offset * PART + 1, PART, "00")], "total_count": u64::MAX}),
            ))
        }
        _ => Answer::Normal,
    });
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(8)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(SIZE), Order::Fifo);
    assert!(
        matches!(run.output, Err(Error::Protocol(ProtocolError::PartConflict { offset: 0, .. }))),
        "{:?}",
        run.output
    );
    assert!(fake.aborted);
    // The first part's window is position 0 alone.
    assert_eq!(fake.count(RequestKind::ListParts), 1);
}

// ---- the part_size cap -------------------------------------------------------------------------

// ---- a part whose every send goes unanswered -----------------------------------------------

/// A Box that stores the part at `PART * 10` on its first send and loses the answer, then breaks
/// the connection on every later send of it (a server answering the retry 416 early and closing,
/// so the answer cannot be read), when `stored`; or breaks it on every send without storing.
fn unanswered_box(stored: bool) -> FakeBox {
    let mut first = true;
    FakeBox::new(PART).hook(move |seen, _| match seen.kind {
        RequestKind::UploadPart if offset_of(seen) == 10 * PART => {
            let answer = if first && stored { Answer::ProcessThenFail } else { Answer::Fail };
            first = false;
            answer
        }
        _ => Answer::Normal,
    })
}

/// The soak's failure through hyper: every retry of a stored part is a broken pipe. Once its
/// retries are spent the part is looked up, found with our SHA-1 and adopted.
#[test]
fn a_stored_part_whose_every_send_is_unanswered_is_looked_up_and_adopted() {
    for in_flight in [1, 4] {
        let mut fake = unanswered_box(true);
        let mut m =
            client().big_upload(UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(in_flight)).unwrap();
        let run = drive(&mut m, &mut fake, default_source(SIZE), Order::Fifo);
        assert_committed(&run, &fake);
        assert_eq!(adopted(&run.events), [10 * PART], "{in_flight} in flight");
        let sends = fake.seen.iter().filter(|s| s.kind == RequestKind::UploadPart && offset_of(s) == 10 * PART);
        assert_eq!(sends.count(), 6, "the first send and five retries");
    }
}

/// The same failures for a part Box never stored: the look-up finds nothing and the run ends with
/// the transport's error (not a made-up conflict), the session aborted, nothing committed.
#[test]
fn an_unanswered_part_box_does_not_hold_fails_with_the_transport_error() {
    let mut fake = unanswered_box(false);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(4)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(SIZE), Order::Fifo);
    match run.output {
        Err(Error::Transport { kind: RequestKind::UploadPart, attempts: 6, .. }) => {}
        other => panic!("expected the part's transport error, got {other:?}"),
    }
    assert!(fake.aborted, "the session is aborted");
    assert_eq!(fake.count(RequestKind::CommitSession), 0);
    assert!(fake.count(RequestKind::ListParts) >= 1, "the part was looked up");
}

/// A source that counts the reads asked of it.
fn counting_source(reads: Rc<Cell<u32>>) -> Source {
    Box::new(move |offset, len| {
        reads.set(reads.get() + 1);
        Ok(source_bytes(offset, len))
    })
}

#[test]
fn a_part_size_over_the_default_cap_is_refused_and_the_session_aborted_before_any_read() {
    // Box answers part_size = the file's size, 600 MiB: one part, the whole file in memory.
    let size = 600 * MIB;
    let mut fake = FakeBox::new(size);
    let reads = Rc::new(Cell::new(0));
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, counting_source(Rc::clone(&reads)), Order::Fifo);
    match &run.output {
        Err(e @ Error::Protocol(ProtocolError::PartSizeTooLarge { part_size, max_part_size })) => {
            assert_eq!((*part_size, *max_part_size), (size, DEFAULT_MAX_PART_SIZE));
            let text = e.to_string();
            assert!(text.contains(&size.to_string()) && text.contains(&DEFAULT_MAX_PART_SIZE.to_string()), "{text}");
        }
        other => panic!("expected PartSizeTooLarge, got {other:?}"),
    }
    assert!(fake.aborted, "the session is aborted");
    assert_eq!(reads.get(), 0, "nothing read");
    assert_eq!(fake.count(RequestKind::UploadPart), 0);
    assert!(run.events.contains(&Event::Aborted { confirmed: true }));
}

#[test]
fn the_cap_is_configurable() {
    let size = 40 * MIB;
    let cap = |max| {
        let mut c = config();
        c.max_part_size = max;
        client_with(c)
    };
    // 16 MiB parts under a cap of 8 MiB: refused.
    let mut fake = FakeBox::new(16 * MIB);
    let mut m = cap(8 * MIB).big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert!(
        matches!(
            run.output,
            Err(Error::Protocol(ProtocolError::PartSizeTooLarge { part_size, max_part_size: m }))
                if part_size == 16 * MIB && m == 8 * MIB
        ),
        "{:?}",
        run.output
    );
    assert!(fake.aborted);
    // The same parts at exactly the cap: uploaded.
    let mut fake = FakeBox::new(16 * MIB);
    let mut m = cap(16 * MIB).big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let run = drive(&mut m, &mut fake, default_source(size), Order::Fifo);
    assert!(run.output.is_ok(), "{:?}", run.output);
    assert_eq!(fake.count(RequestKind::UploadPart), 3);
}

#[test]
fn a_resume_over_the_cap_aborts_before_any_other_request() {
    let size = 40 * MIB;
    let mut fake = FakeBox::new(16 * MIB);
    let mut m = client().big_upload(UploadRequest::new_file("0", "f.bin", size).keep_session_on_failure(true)).unwrap();
    let _ = drive_with(&mut m, &mut fake, &mut default_source(size), Order::Fifo, |e, m| {
        if matches!(e, Event::SessionCreated { .. }) {
            m.cancel(true);
        }
    });
    let checkpoint: Checkpoint = m.checkpoint().unwrap();
    assert!(!fake.aborted);
    let seen_before = fake.seen.len();
    let mut c = config();
    c.max_part_size = 8 * MIB;
    let reads = Rc::new(Cell::new(0));
    let mut resumed = client_with(c).resume(checkpoint, Default::default()).unwrap();
    let run = drive(&mut resumed, &mut fake, counting_source(Rc::clone(&reads)), Order::Fifo);
    assert!(
        matches!(run.output, Err(Error::Protocol(ProtocolError::PartSizeTooLarge { part_size, .. })) if part_size == 16 * MIB),
        "{:?}",
        run.output
    );
    let after: Vec<RequestKind> = fake.seen[seen_before..].iter().map(|s| s.kind).collect();
    assert_eq!(after, vec![RequestKind::AbortSession]);
    assert!(fake.aborted);
    assert_eq!(reads.get(), 0);
}
