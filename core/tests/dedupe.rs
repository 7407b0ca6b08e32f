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

// ---- reading ahead of the bound of parts in flight -------------------------------------------

/// Small parts, many of them: 40 parts of 512 KiB (the file is above Box's 20,000,000 bytes).
const SMALL: u64 = 512 * 1024;
const MANY: u64 = 40 * SMALL;
const PIF: usize = 2;
/// Parts the machine holds with their bytes: those in flight and one read ahead.
const HELD: usize = PIF + 1;

std::thread_local! {
    /// Parts' bytes alive now (in the machine or in a request on the wire), and the most at once.
    static LIVE: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// A part's bytes, counted while alive (every clone shares the one owner).
struct Counted(Vec<u8>);

impl Counted {
    fn new(bytes: Vec<u8>) -> Self {
        LIVE.with(|l| {
            let (now, peak) = l.get();
            l.set((now + 1, peak.max(now + 1)));
        });
        Self(bytes)
    }
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.with(|l| {
            let (now, peak) = l.get();
            l.set((now - 1, peak));
        });
    }
}

/// What the scripted driver does next when it could both serve a read and answer a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Next {
    Read,
    Answer,
}

#[derive(Debug, Default)]
struct Counts {
    /// Offsets read, in order (a part read again shows twice).
    reads: Vec<u64>,
    /// Part reads served or under way (offered by the machine) when the first plan was answered.
    reads_before_first_answer: Option<usize>,
    /// Requests answered.
    answers: usize,
    /// The most parts' bytes alive at once.
    peak_parts: usize,
    /// Parts with a plan's part id (`H…`) seen in a checkpoint.
    hits_in_checkpoints: usize,
}

/// Drives `m` against `fake`, serving reads (through the machine's builder, their bytes counted
/// while alive) and answering requests (FIFO) in the order `next` picks when both are possible.
/// The simulated Box keeps a copy of what it is sent, which is not counted.
fn drive_scripted(
    m: &mut box_upload_core::BigUpload,
    fake: &mut FakeBox,
    mut source: Source,
    mut next: impl FnMut(&Counts) -> Next,
) -> (Result<FileFull, Error>, Counts) {
    use box_upload_core::Machine;
    LIVE.with(|l| l.set((0, 0)));
    let mut counts = Counts::default();
    let mut reads = std::collections::VecDeque::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut now = std::time::Instant::now();
    for _ in 0..1_000_000 {
        while let Some(e) = m.poll_event() {
            if matches!(e, box_upload_core::Event::CheckpointUpdated) {
                if let Some(c) = m.checkpoint() {
                    counts.hits_in_checkpoints += c.parts.iter().filter(|p| p.part_id.starts_with('H')).count();
                }
            }
        }
        if let Some(output) = m.poll_output() {
            counts.peak_parts = LIVE.with(|l| l.get().1);
            return (output, counts);
        }
        while let Some(r) = m.poll_read() {
            reads.push_back(r);
        }
        while let Some(t) = m.poll_transmit(now) {
            in_flight.push_back(t);
        }
        let step = match (reads.is_empty(), in_flight.is_empty()) {
            (false, false) => next(&counts),
            (false, true) => Next::Read,
            (true, false) => Next::Answer,
            (true, true) => match m.poll_timeout() {
                Some(at) => {
                    now = now.max(at);
                    m.handle_timeout(now);
                    continue;
                }
                None => panic!("machine stalled"),
            },
        };
        match step {
            Next::Read => {
                let r = reads.pop_front().unwrap();
                let data = source(r.offset, r.len).map(|bytes| {
                    let bytes = box_upload_core::bytes::Bytes::from_owner(Counted::new(bytes));
                    m.part_builder(&r, Vec::new()).finish_with_bytes(bytes)
                });
                if r.len > 1 {
                    counts.reads.push(r.offset);
                }
                m.handle_read(r.id, data, now);
            }
            Next::Answer => {
                let t: box_upload_core::Transmit = in_flight.pop_front().unwrap();
                let (id, kind) = (t.id, t.kind);
                let mut seen = Seen::of(t, now);
                // A copy, so the request's bytes are let go (the memory count sees them gone).
                seen.body = box_upload_core::bytes::Bytes::copy_from_slice(&seen.body);
                if kind == RequestKind::PlanSession && counts.reads_before_first_answer.is_none() {
                    let under_way = reads.iter().filter(|r: &&box_upload_core::ReadRequest| r.len > 1).count();
                    counts.reads_before_first_answer = Some(counts.reads.len() + under_way);
                }
                counts.answers += 1;
                match fake.handle(seen) {
                    Ok(resp) => m.handle_response(id, resp, now),
                    Err(e) => m.handle_transport_error(id, e, now),
                }
            }
        }
    }
    panic!("the machine did not finish");
}

fn many_parts(read_once: bool) -> box_upload_core::BigUpload {
    let request =
        UploadRequest::new_version("12345", MANY).dedupe(true).parts_in_flight(PIF).source_read_once(read_once);
    client().big_upload(request).unwrap()
}

fn assert_many_committed(output: &Result<FileFull, Error>, fake: &FakeBox) {
    let file = output.as_ref().expect("upload succeeds");
    assert_eq!(file.size, Some(MANY));
    let committed = fake.committed.as_ref().expect("committed");
    assert_eq!(Sha1Digest::of(committed), whole_sha1(MANY), "committed byte for byte");
    assert!(!fake.aborted);
}

/// Each plan request's offsets.
fn plans(fake: &FakeBox) -> Vec<Vec<u64>> {
    fake.seen
        .iter()
        .filter(|s| s.kind == RequestKind::PlanSession)
        .map(|s| s.json()["parts"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect())
        .collect()
}

#[test]
fn reads_run_ahead_of_the_bound_so_few_plans_cover_every_part() {
    let mut fake = FakeBox::new(SMALL).hook(planner(|_| true, true));
    let mut m = many_parts(false);
    // Box answers only once nothing is left to read.
    let (output, counts) = drive_scripted(&mut m, &mut fake, default_source(MANY), |_| Next::Read);
    assert_many_committed(&output, &fake);
    let plans = plans(&fake);
    assert!(plans.len() <= 3, "{} plans: {plans:?}", plans.len());
    let mut planned: Vec<u64> = plans.concat();
    planned.sort_unstable();
    assert_eq!(planned, (0..40).map(|i| i * SMALL).collect::<Vec<_>>(), "every part planned once");
    assert_eq!(counts.reads_before_first_answer, Some(40), "read ahead while the first plan was unanswered");
    assert_eq!(counts.reads.len(), 40, "each part read once");
    assert!(parts_sent(&fake).is_empty(), "no part body sent");
    assert!(counts.peak_parts <= HELD + 1, "{} parts in memory at once", counts.peak_parts);
    assert_eq!(counts.hits_in_checkpoints, 0, "no unconfirmed hit in a checkpoint");
    let stats = m.dedupe_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.misses_reread, stats.hits_uploaded), (40, 0, 0, 0));
    assert_eq!(m.whole_file_bytes_hashed_here(), 0, "the reads carried the whole-file hash on");
}

#[test]
fn a_miss_read_ahead_is_read_again_and_sent_as_it_was() {
    let changed = 30 * SMALL;
    let mut fake = FakeBox::new(SMALL).hook(planner(move |o| o != changed, true));
    let mut m = many_parts(false);
    let (output, counts) = drive_scripted(&mut m, &mut fake, default_source(MANY), |_| Next::Read);
    assert_many_committed(&output, &fake);
    assert_eq!(parts_sent(&fake), vec![changed], "only the miss");
    let sent = fake.seen.iter().find(|s| s.kind == RequestKind::UploadPart).unwrap();
    assert!(sent.body[..] == source_bytes(changed, SMALL as usize)[..], "the miss's bytes are the source's");
    assert_eq!(counts.reads.iter().filter(|&&o| o == changed).count(), 2, "read ahead, then again");
    assert_eq!(counts.reads.len(), 41);
    assert_eq!(m.progress().bytes_read, MANY, "a part read again is counted once");
    assert!(counts.peak_parts <= HELD + 1, "{} parts in memory at once", counts.peak_parts);
    let stats = m.dedupe_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.misses_reread, stats.hits_uploaded), (39, 1, 1, 0));
}

#[test]
fn a_miss_read_ahead_that_reads_otherwise_the_second_time_is_never_sent() {
    let changed = 30 * SMALL;
    let mut fake = FakeBox::new(SMALL).hook(planner(move |o| o != changed, true));
    let mut m = many_parts(false);
    let mut times = 0;
    let source: Source = Box::new(move |offset, len| {
        let mut bytes = source_bytes(offset, len.min((MANY - offset.min(MANY)) as usize));
        if offset == changed {
            times += 1;
            if times == 2 {
                bytes[7] ^= 1;
            }
        }
        Ok(bytes)
    });
    let (output, _) = drive_scripted(&mut m, &mut fake, source, |_| Next::Read);
    match output {
        Err(Error::Source(box_upload_core::SourceError::Changed(detail))) => {
            assert!(detail.contains(&changed.to_string()), "{detail}")
        }
        other => panic!("expected SourceError::Changed, got {other:?}"),
    }
    assert!(parts_sent(&fake).is_empty(), "nothing of it sent");
    assert!(fake.committed.is_none() && fake.aborted);
}

#[test]
fn a_file_that_mostly_changed_is_not_read_ahead_once_plans_answer_misses() {
    let mut fake = FakeBox::new(SMALL).hook(planner(|_| false, true));
    let mut m = many_parts(false);
    // Reads run ahead of answers: the first plan answers after three reads, then one answer
    // comes every two reads (the session's create was the first answer).
    let (output, counts) = drive_scripted(&mut m, &mut fake, default_source(MANY), |c| {
        if c.reads.len() >= 3 + 2 * (c.answers - 1) {
            Next::Answer
        } else {
            Next::Read
        }
    });
    assert_many_committed(&output, &fake);
    let before = counts.reads_before_first_answer.unwrap();
    assert!(before > HELD, "some parts were read ahead before the first answer ({before} reads)");
    let stats = m.dedupe_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (0, 40));
    // Only the parts read ahead before the first answer (or under way then) are read again.
    assert_eq!(stats.misses_reread as usize, before - HELD, "{stats:?}");
    assert_eq!(counts.reads.len(), 40 + before - HELD);
    assert_eq!(m.progress().bytes_read, MANY, "a part read again is counted once");
    assert_eq!(parts_sent(&fake).len(), 40);
    assert!(counts.peak_parts <= HELD + 1, "{} parts in memory at once", counts.peak_parts);
}

#[test]
fn a_plan_that_fails_after_reads_ahead_sends_every_part() {
    // The first plan fails once every part has been read ahead (their bytes let go).
    for status in [404, 500] {
        let mut fake = FakeBox::new(SMALL).hook(move |seen, _| match seen.kind {
            RequestKind::PlanSession => Answer::Respond(error(status, "x", "no plan")),
            _ => Answer::Normal,
        });
        let mut m = many_parts(false);
        let (output, counts) = drive_scripted(&mut m, &mut fake, default_source(MANY), |_| Next::Read);
        assert_many_committed(&output, &fake);
        let mut sent = parts_sent(&fake);
        sent.sort_unstable();
        assert_eq!(sent, (0..40).map(|i| i * SMALL).collect::<Vec<_>>(), "{status}: every part sent once");
        let stats = m.dedupe_stats().unwrap();
        assert!(stats.fallback.is_some());
        assert_eq!(stats.misses_reread as usize, 40 - HELD, "{status}: {stats:?}");
        assert_eq!(counts.reads.len(), 40 + 40 - HELD);
        assert!(counts.peak_parts <= HELD + 1, "{} parts in memory at once", counts.peak_parts);
    }
    // The plan fails while a part is being read ahead: that part is kept and sent.
    let mut fake = FakeBox::new(SMALL).hook(|seen, _| match seen.kind {
        RequestKind::PlanSession => Answer::Respond(error(404, "not_found", "no plan")),
        _ => Answer::Normal,
    });
    let mut m = many_parts(false);
    let (output, counts) = drive_scripted(&mut m, &mut fake, default_source(MANY), |c| {
        if c.reads.len() < PIF {
            Next::Read
        } else {
            Next::Answer
        }
    });
    assert_many_committed(&output, &fake);
    assert_eq!(parts_sent(&fake).len(), 40);
    assert_eq!(counts.reads.len(), 40, "nothing read twice");
    assert_eq!(m.dedupe_stats().unwrap().misses_reread, 0);
    assert!(counts.peak_parts <= HELD + 1, "{} parts in memory at once", counts.peak_parts);
}

#[test]
fn a_stream_is_not_read_ahead() {
    let mut fake = FakeBox::new(SMALL).hook(planner(|o| o != 30 * SMALL, true));
    let mut m = many_parts(true);
    let (output, counts) = drive_scripted(&mut m, &mut fake, default_source(MANY), |_| Next::Read);
    assert_many_committed(&output, &fake);
    assert_eq!(counts.reads_before_first_answer, Some(HELD), "no read past the bound");
    assert_eq!(counts.reads.len(), 40, "each part read once");
    assert_eq!(m.dedupe_stats().unwrap().misses_reread, 0);
    assert_eq!(parts_sent(&fake), vec![30 * SMALL]);
}
