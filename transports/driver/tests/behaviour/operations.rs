//! The single operations, each a method of both clients: create a session (new file, new
//! version), get it, upload parts, list them, commit, abort; by id and by the session's
//! `session_endpoints` URLs. (The thirteenth operation of the API, the whole big upload, is
//! `upload`: see `round_trips`.)

use crate::harness::{both, bytes, call, client, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::Emulator;
use box_upload_conformance::{FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::models::UploadPart;
use box_upload_driver::core::operations::CommitResponse;
use box_upload_driver::core::Sha1Digest;
use std::time::Duration;

both!(the_operations_by_id, the_operations_by_url, a_commit_answered_202_comes_back_not_ready);

const SIZE: u64 = MIN_SIZE;
const PART: u64 = 8 * MIB;
const OFFSETS: [u64; 3] = [0, PART, 2 * PART];

fn part_of(content: &[u8], offset: u64) -> Vec<u8> {
    content[offset as usize..(offset + PART).min(SIZE) as usize].to_vec()
}

fn the_operations_by_id(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    let folder = h.emu.create_folder("ops").unwrap();
    let content = bytes(SIZE, 21);

    let session = call!(h.client, create_upload_session(folder.as_str(), "ops.bin", SIZE)).unwrap();
    assert_eq!(session.part_size, Some(PART));
    assert_eq!(session.total_parts, Some(3));
    let got = call!(h.client, get_upload_session_by_id(session.id.as_str())).unwrap();
    assert_eq!(got.id, session.id);
    assert_eq!(got.num_parts_processed, Some(0));

    let mut parts: Vec<UploadPart> = Vec::new();
    for offset in OFFSETS {
        let uploaded =
            call!(h.client, upload_file_part_by_id(session.id.as_str(), offset, SIZE, part_of(&content, offset)));
        let part = uploaded.unwrap().part.unwrap();
        assert_eq!((part.offset, part.size), (offset, (PART).min(SIZE - offset)));
        parts.push(part);
    }
    let listed = call!(h.client, list_upload_session_parts_by_id(session.id.as_str(), None, None)).unwrap();
    assert_eq!(listed.total_count, Some(3));
    assert_eq!(listed.entries, parts);
    let page = call!(h.client, list_upload_session_parts_by_id(session.id.as_str(), Some(1), Some(1))).unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].offset, PART);

    let digest = Sha1Digest::of(&content);
    let committed = call!(h.client, commit_upload_session_by_id(session.id.as_str(), parts, digest, None, None));
    let file = match committed.unwrap() {
        CommitResponse::Committed(files) => files.entries.into_iter().next().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(file.size, Some(SIZE));
    h.assert_stored(&file.id, &content);
    assert!(h.emu.session_ids().is_empty(), "a committed session is gone");

    // Abort: the session is gone.
    let doomed = call!(h.client, create_upload_session(folder.as_str(), "doomed.bin", SIZE)).unwrap();
    call!(h.client, delete_upload_session_by_id(doomed.id.as_str())).unwrap();
    let err = call!(h.client, get_upload_session_by_id(doomed.id.as_str())).unwrap_err();
    assert_eq!(err.box_code(), Some("not_found"), "{err}");

    // A session for a new version of the committed file, renamed, then one without a name.
    let v2 = call!(h.client, create_upload_session_for_file(file.id.as_str(), SIZE + 1, Some("ops-v2.bin".into())));
    assert_eq!(v2.unwrap().total_parts, Some(3));
    let v3 = call!(h.client, create_upload_session_for_file(file.id.as_str(), 3 * PART + 1, None)).unwrap();
    assert_eq!(v3.total_parts, Some(4));
    let c = h.emu.counters();
    assert_eq!(
        (c.requests(Op::CreateSession), c.requests(Op::UploadPart), c.requests(Op::ListParts), c.requests(Op::Commit)),
        (4, 3, 2, 1)
    );
    assert_eq!((c.requests(Op::Abort), c.requests(Op::GetSession)), (1, 2));
}

fn the_operations_by_url(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    let content = bytes(SIZE, 22);
    let session = call!(h.client, create_upload_session("0", "u.bin", SIZE)).unwrap();
    let endpoints = session.session_endpoints.clone().unwrap();
    let got = call!(h.client, get_upload_session_by_url(endpoints.status.clone().unwrap())).unwrap();
    assert_eq!(got.id, session.id);

    // Parts in any order.
    let mut parts = Vec::new();
    for offset in [2 * PART, 0, PART] {
        let url = endpoints.upload_part.clone().unwrap();
        let uploaded = call!(h.client, upload_file_part_by_url(url, offset, SIZE, part_of(&content, offset))).unwrap();
        parts.push(uploaded.part.unwrap());
    }
    let list = endpoints.list_parts.clone().unwrap();
    let listed = call!(h.client, list_upload_session_parts_by_url(list.clone(), Some(0), Some(1000))).unwrap();
    assert_eq!(listed.entries.iter().map(|p| p.offset).collect::<Vec<_>>(), OFFSETS.to_vec());
    let page = call!(h.client, list_upload_session_parts_by_url(list, Some(2), Some(1))).unwrap();
    assert_eq!(page.entries.iter().map(|p| p.offset).collect::<Vec<_>>(), vec![2 * PART]);

    let digest = Sha1Digest::of(&content);
    let commit = endpoints.commit.clone().unwrap();
    match call!(h.client, commit_upload_session_by_url(commit, parts, digest, None, None)).unwrap() {
        CommitResponse::Committed(files) => h.assert_stored(&files.entries[0].id, &content),
        other => panic!("{other:?}"),
    }

    let other = call!(h.client, create_upload_session("0", "gone.bin", SIZE)).unwrap();
    let abort = other.session_endpoints.unwrap().abort.unwrap();
    call!(h.client, delete_upload_session_by_url(abort)).unwrap();
    assert!(h.emu.session_ids().is_empty());
    assert_eq!(h.emu.counters().requests(Op::Abort), 1);
    assert_eq!(h.emu.counters().requests(Op::GetSession), 1);
}

fn a_commit_answered_202_comes_back_not_ready(kind: Kind) {
    let faults =
        Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitPending { retry_after: Some(3) });
    let h = Harness::start(kind, Emulator::builder().part_size(PART).faults(faults));
    let client = client!(&h, |b| b.parts_in_flight(1));
    let content = bytes(SIZE, 23);
    let s = call!(client, create_upload_session("0", "p.bin", SIZE)).unwrap();
    let mut parts = Vec::new();
    for offset in OFFSETS {
        let uploaded = call!(client, upload_file_part_by_id(s.id.as_str(), offset, SIZE, part_of(&content, offset)));
        parts.push(uploaded.unwrap().part.unwrap());
    }
    let digest = Sha1Digest::of(&content);
    // The single commit does not wait: the 202 is the caller's to handle.
    match call!(client, commit_upload_session_by_id(s.id.as_str(), parts.clone(), digest, None, None)).unwrap() {
        CommitResponse::NotReady { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.emu.counters().commits, 0);
    let committed = call!(client, commit_upload_session_by_id(s.id.as_str(), parts, digest, None, None)).unwrap();
    assert!(matches!(committed, CommitResponse::Committed(_)), "{committed:?}");
    assert_eq!(h.emu.counters().requests(Op::Commit), 2);
    assert_eq!(h.emu.counters().commits, 1);
}
