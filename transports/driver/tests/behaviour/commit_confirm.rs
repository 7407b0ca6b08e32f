//! A commit whose answer is lost (the emulator's `CommitAnswerLost`: applied, then the
//! connection closed; the resend answers 404) is confirmed from the file on the API host, never
//! guessed: through the preflight check for a new file (its conflicts as one object or as an
//! array), through `GET /2.0/files/{id}` for a new version; a lookup that finds nothing ends in
//! `CommitOutcomeUnknown` with the session left as it is. And the two API-host operations.

use crate::harness::{both, bytes, call, client, sha1_hex, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::{ConflictsShape, Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::operations::PreflightCheck;
use box_upload_driver::core::{Error as CoreError, UploadRequest};
use box_upload_driver::Source;

both!(
    a_new_file_whose_commit_answer_is_lost_is_confirmed_conflicts_as_object_and_array,
    a_new_version_whose_commit_answer_is_lost_is_confirmed_by_get_file,
    a_lost_commit_answer_that_cannot_be_confirmed_is_outcome_unknown,
    get_file_and_the_preflight_check_reach_the_emulators_api_host,
);

fn commit_answer_lost() -> Faults {
    Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitAnswerLost)
}

fn a_new_file_whose_commit_answer_is_lost_is_confirmed_conflicts_as_object_and_array(kind: Kind) {
    for shape in [ConflictsShape::Object, ConflictsShape::Array] {
        let emulator = Emulator::builder().part_size(8 * MIB).faults(commit_answer_lost()).conflicts_shape(shape);
        let h = Harness::start(kind, emulator);
        let data = bytes(MIN_SIZE + 3, 51);
        let file = call!(h.client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "lost.bin", 0)))
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        let stored = h.emu.find_file("0", "lost.bin").unwrap();
        assert_eq!(file.id, stored.id);
        assert_eq!(file.size, Some(data.len() as u64));
        assert_eq!(file.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
        // The file as the lookup gives it: Box's File fields.
        assert_eq!(file.name.as_deref(), Some("lost.bin"));
        assert_eq!(file.parent.as_ref().map(|p| p.id.as_str()), Some("0"));
        assert_eq!(file.file_version.as_ref().map(|v| v.id.as_str()), Some(stored.version_id.as_str()));
        h.assert_stored(&file.id, &data);
        let c = h.emu.counters();
        assert_eq!((c.commits, c.requests(Op::Commit)), (1, 2), "applied once, sent twice");
        assert_eq!(c.requests(Op::Preflight), 2, "one before the session, one to confirm the commit");
        assert_eq!(c.requests(Op::File), 1);
        assert_eq!(c.requests(Op::Abort), 0);
    }
}

fn a_new_version_whose_commit_answer_is_lost_is_confirmed_by_get_file(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(8 * MIB).faults(commit_answer_lost()));
    let v1 = h.emu.create_file("0", "doc.bin", b"version one").unwrap();
    let data = bytes(MIN_SIZE, 52);
    let request = UploadRequest::new_version(&v1.id, 0).if_match(&v1.etag);
    let file = call!(h.client, upload(Source::bytes(data.clone()), request)).unwrap();
    assert_eq!(file.id, v1.id);
    assert_eq!(file.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
    assert_ne!(file.etag.as_deref(), Some(v1.etag.as_str()));
    h.assert_stored(&v1.id, &data);
    let c = h.emu.counters();
    assert_eq!((c.commits, c.requests(Op::Commit)), (1, 2));
    assert_eq!((c.requests(Op::Preflight), c.requests(Op::File)), (0, 1));
}

fn a_lost_commit_answer_that_cannot_be_confirmed_is_outcome_unknown(kind: Kind) {
    // The commit is applied and its answer lost, and every look at the file fails.
    let faults =
        commit_answer_lost().rule(Op::File, Trigger::Always, FaultAction::Status { status: 404, retry_after: None });
    let h = Harness::start(kind, Emulator::builder().part_size(8 * MIB).faults(faults));
    let v1 = h.emu.create_file("0", "doc.bin", b"version one").unwrap();
    let err =
        call!(h.client, upload(Source::bytes(bytes(MIN_SIZE, 53)), UploadRequest::new_version(&v1.id, 0))).unwrap_err();
    match err.core() {
        Some(CoreError::CommitOutcomeUnknown { session_id, file_id, reason, check }) => {
            assert_eq!(session_id.len(), 32, "{session_id}");
            assert_eq!(file_id.as_deref(), Some(v1.id.as_str()));
            assert!(reason.contains("404"), "{reason}");
            assert!(check.starts_with(&format!("whether file {} holds sha1 ", v1.id)), "{check}");
        }
        other => panic!("expected CommitOutcomeUnknown, got {other:?} ({err})"),
    }
    let message = err.to_string();
    assert!(message.contains("commit outcome unknown"), "{message}");
    // Nothing aborted: the caller checks first.
    assert_eq!(h.emu.counters().requests(Op::Abort), 0);
}

fn get_file_and_the_preflight_check_reach_the_emulators_api_host(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(8 * MIB));
    // The client was given only the upload base: the API base is its origin.
    assert_eq!(h.client.core().config().api_base(), h.emu.api_base_url());
    let info = h.emu.create_file("0", "taken.bin", b"hello").unwrap();
    let file = call!(h.client, get_file(&info.id, &["size"])).unwrap();
    assert_eq!((file.id.as_str(), file.size), (info.id.as_str(), Some(5)));
    assert_eq!(file.sha1.as_deref(), Some(info.sha1.as_str()));
    for shape in [ConflictsShape::Object, ConflictsShape::Array] {
        h.emu.set_conflicts_shape(shape);
        match call!(h.client, preflight_file_upload("0", "taken.bin", 5)).unwrap() {
            PreflightCheck::NameInUse { conflicts } => {
                assert_eq!(conflicts.len(), 1);
                assert_eq!(conflicts[0].id, info.id);
                assert_eq!(conflicts[0].sha1.as_deref(), Some(info.sha1.as_str()));
            }
            other => panic!("{shape:?}: expected NameInUse, got {other:?}"),
        }
    }
    assert!(matches!(call!(h.client, preflight_file_upload("0", "free.bin", 5)).unwrap(), PreflightCheck::Accepted(_)));
    let err = call!(h.client, get_file("424242", &[])).unwrap_err();
    assert_eq!(crate::harness::api_status(&err), Some(404));
    let c = h.emu.counters();
    assert_eq!((c.requests(Op::File), c.requests(Op::Preflight)), (2, 3));
    // An API base given explicitly is used.
    let other = client!(&h, |b| b.api_base(format!("{}/", h.emu.api_base_url())));
    assert!(call!(other, get_file(&info.id, &[])).is_ok());
}
