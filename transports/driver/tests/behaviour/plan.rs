//! The plan of an upload session (issue 15), through both transports: the operation by id and
//! by `session_endpoints.plan`, and a deduplicated new version against the emulator in both of
//! its modes (hits added to the session, hits not added) and without a plan at all.

use crate::harness::{both, bytes, call, sha1_hex, Harness, Kind, MIB};
use box_upload_conformance::{Emulator, FaultAction, Faults, Op, PlanMode, Trigger};
use box_upload_driver::core::models::{FileFull, PlanPart};
use box_upload_driver::core::{DedupeStats, Sha512Digest, SourceFacts, UploadRequest};
use box_upload_driver::{Source, UploadOptions};
use std::time::Duration;

both!(
    the_plan_by_id_and_by_url,
    a_deduplicated_new_version_sends_only_the_changed_part,
    hits_the_session_does_not_keep_are_uploaded_after_all,
    a_box_without_the_plan_gets_a_plain_upload,
    an_unchanged_new_version_sends_no_part_and_dedupe_off_sends_all,
    a_changed_part_read_ahead_is_read_again_and_a_stream_is_not_read_ahead,
);

const PART: u64 = 8 * MIB;
const SIZE: u64 = 3 * PART + 1234;

fn grid(content: &[u8]) -> Vec<PlanPart> {
    content
        .chunks(PART as usize)
        .enumerate()
        .map(|(i, c)| PlanPart { offset: i as u64 * PART, size: c.len() as u64, sha512: Sha512Digest::of(c).to_hex() })
        .collect()
}

/// A file `f.bin` whose current version is `v1`, committed through the emulator's API.
fn stored_file(h: &Harness, v1: &[u8]) -> String {
    h.emu.create_file("0", "f.bin", v1).unwrap().id
}

fn the_plan_by_id_and_by_url(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(PART).plan_mode(PlanMode::HitsNotAdded));
    let v1 = bytes(SIZE, 5);
    let file_id = stored_file(&h, &v1);
    let mut v2 = v1.clone();
    v2[(PART + 1) as usize] ^= 1;
    let session = call!(h.client, create_upload_session_for_file(file_id.as_str(), SIZE, None)).unwrap();
    let plan = call!(h.client, plan_upload_session_by_id(session.id.as_str(), grid(&v2))).unwrap();
    let hits: Vec<u64> = plan.hits.iter().map(|p| p.offset).collect();
    let misses: Vec<u64> = plan.misses.iter().map(|p| p.offset).collect();
    assert_eq!((hits, misses), (vec![0, 2 * PART, 3 * PART], vec![PART]));
    assert_eq!(plan.upload_session_id.as_deref(), Some(session.id.as_str()));
    let url = session.session_endpoints.unwrap().plan.unwrap();
    let again = call!(h.client, plan_upload_session_by_url(url.as_str(), grid(&v2))).unwrap();
    assert_eq!(again.misses, plan.misses);
    // Another file's bytes are not this file's earlier version.
    let other = call!(h.client, plan_upload_session_by_url(url.as_str(), grid(&bytes(SIZE, 6)))).unwrap();
    assert_eq!((other.hits.len(), other.misses.len()), (0, 4));
}

/// v1 stored as `f.bin`; v2 = v1 with the listed parts changed, written to a file; then a
/// deduplicated (or plain) upload of v2 as a new version, driven so its stats can be read.
fn new_version(h: &Harness, changed: &[u64], dedupe: bool) -> (FileFull, Vec<u8>, Option<DedupeStats>, u64) {
    new_version_with(h, changed, dedupe, None, false)
}

/// [`new_version`] with `parts_in_flight`, from a stream (`Source::reader`) when `stream`.
fn new_version_with(
    h: &Harness,
    changed: &[u64],
    dedupe: bool,
    parts_in_flight: Option<usize>,
    stream: bool,
) -> (FileFull, Vec<u8>, Option<DedupeStats>, u64) {
    let v1 = bytes(SIZE, 5);
    let file_id = stored_file(h, &v1);
    let mut v2 = v1.clone();
    for part in changed {
        v2[(part * PART + 3) as usize] ^= 0xa5;
    }
    let path = h.path("v2.bin");
    std::fs::write(&path, &v2).unwrap();
    let before = h.emu.counters().bytes_received;
    let facts = SourceFacts { size: Some(SIZE), read_once: stream, ..SourceFacts::default() };
    let request = UploadRequest::new_version(file_id, 0).dedupe(dedupe);
    let mut machine = h.client.core().start_upload(request, &facts, parts_in_flight).unwrap();
    let source = if stream { Source::reader(std::io::Cursor::new(v2.clone())) } else { Source::file(&path) };
    let file = call!(h.client, drive_with(&mut machine, source, UploadOptions::new())).unwrap();
    let sent = h.emu.counters().bytes_received - before;
    (file, v2, machine.dedupe_stats(), sent)
}

fn a_deduplicated_new_version_sends_only_the_changed_part(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(PART));
    let (file, v2, stats, sent) = new_version(&h, &[1], true);
    assert_eq!(sent, PART, "only the changed part went over the wire");
    assert_eq!(file.sha1.as_deref(), Some(sha1_hex(&v2).as_str()));
    h.assert_stored(&file.id, &v2);
    let stats = stats.unwrap();
    assert_eq!((stats.parts_planned, stats.hits, stats.misses, stats.hits_uploaded), (4, 3, 1, 0));
    assert_eq!(stats.fallback, None);
}

fn hits_the_session_does_not_keep_are_uploaded_after_all(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(PART).plan_mode(PlanMode::HitsNotAdded));
    let (file, v2, stats, sent) = new_version(&h, &[2], true);
    assert_eq!(sent, SIZE, "the hits were read again and uploaded");
    h.assert_stored(&file.id, &v2);
    let stats = stats.unwrap();
    assert_eq!((stats.hits, stats.misses, stats.hits_uploaded), (3, 1, 3));
}

fn a_box_without_the_plan_gets_a_plain_upload(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(PART).plan_mode(PlanMode::Off));
    let (file, v2, stats, sent) = new_version(&h, &[0], true);
    assert_eq!(sent, SIZE);
    h.assert_stored(&file.id, &v2);
    let stats = stats.unwrap();
    assert_eq!((stats.hits, stats.misses), (0, 0));
    assert!(stats.fallback.as_deref().is_some_and(|f| f.contains("404")), "{stats:?}");
}

fn an_unchanged_new_version_sends_no_part_and_dedupe_off_sends_all(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(PART));
    let (file, v2, stats, sent) = new_version(&h, &[], true);
    assert_eq!(sent, 0);
    h.assert_stored(&file.id, &v2);
    assert_eq!(stats.unwrap().hits, 4);
    let h = Harness::start(kind, Emulator::builder().part_size(PART));
    let (file, v2, stats, sent) = new_version(&h, &[], false);
    assert_eq!((sent, stats), (SIZE, None));
    h.assert_stored(&file.id, &v2);
    assert_eq!(h.emu.counters().requests(box_upload_conformance::Op::Plan), 0);
}

/// One part in flight, the first plan answered after a second: the parts after the first are
/// read ahead meanwhile, their bytes let go; the changed one among them is read again and sent.
/// A stream is never read ahead (it could not be read again).
fn a_changed_part_read_ahead_is_read_again_and_a_stream_is_not_read_ahead(kind: Kind) {
    for stream in [false, true] {
        let slow_first_plan =
            Faults::none().rule(Op::Plan, Trigger::FirstN(1), FaultAction::Delay(Duration::from_secs(1)));
        let h = Harness::start(kind, Emulator::builder().part_size(PART).faults(slow_first_plan));
        let (file, v2, stats, sent) = new_version_with(&h, &[2], true, Some(1), stream);
        assert_eq!(sent, PART, "stream {stream}: only the changed part went over the wire");
        assert_eq!(file.sha1.as_deref(), Some(sha1_hex(&v2).as_str()));
        h.assert_stored(&file.id, &v2);
        let stats = stats.unwrap();
        assert_eq!((stats.hits, stats.misses, stats.hits_uploaded), (3, 1, 0), "stream {stream}");
        assert_eq!(stats.misses_reread, u64::from(!stream), "stream {stream}: {stats:?}");
    }
}
