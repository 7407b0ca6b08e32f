//! One `upload` for every size (issue 13): a direct upload below the cutoff (the body streamed
//! from the source, `content-md5` checked by the emulator), an upload session from it after the
//! preflight check; the conflict policies (fail, version with `If-Match`, skip); the file's
//! timestamps; the cutoff setting; a retried direct upload; a file changed before its send.

use crate::harness::{both, build, bytes, call, client, defaults, sha1_hex, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::{ConflictsShape, Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::{Error as CoreError, OnConflict, SourceError, UploadRequest};
use box_upload_driver::{Error, Source, UploadOptions};
use std::time::{Duration, SystemTime};

both!(
    every_size_goes_the_right_way_and_arrives_byte_for_byte,
    a_stream_and_bytes_below_the_cutoff_go_direct,
    a_new_version_goes_direct_with_if_match,
    on_conflict_fail_is_boxs_409_and_nothing_changes,
    on_conflict_version_uploads_a_version_of_the_file_holding_the_name,
    on_conflict_skip_sends_nothing_when_the_content_is_the_same,
    a_chunked_upload_checks_first_and_fails_before_any_byte_is_sent,
    the_files_times_go_to_box_unless_turned_off,
    the_cutoff_is_a_client_setting_within_boxs_limits,
    by_default_files_from_25_mb_go_in_a_session,
    a_direct_upload_answered_503_is_sent_again_from_the_source,
    a_file_changed_after_it_was_hashed_is_not_uploaded,
    a_direct_upload_stored_but_its_answer_lost_is_confirmed_by_its_own_file,
);

fn emulator() -> box_upload_conformance::EmulatorBuilder {
    Emulator::builder().part_size(8 * MIB)
}

fn every_size_goes_the_right_way_and_arrives_byte_for_byte(kind: Kind) {
    for (size, chunked) in [(0, false), (1_000, false), (MIN_SIZE - 1, false), (MIN_SIZE, true), (60_000_000, true)] {
        let h = Harness::start(kind, emulator());
        let name = format!("f{size}.bin");
        let path = h.file(&name, size, size + 7);
        let file = call!(h.client, upload(Source::file(&path), UploadRequest::new_file("0", &name, 0)))
            .unwrap_or_else(|e| panic!("{size} bytes: {e}"));
        let data = std::fs::read(&path).unwrap();
        assert_eq!(file.size, Some(size), "{size}");
        assert_eq!(file.sha1.as_deref(), Some(sha1_hex(&data).as_str()), "{size}");
        assert_eq!(file.name.as_deref(), Some(name.as_str()));
        h.assert_stored(&file.id, &data);
        let c = h.emu.counters();
        if chunked {
            assert_eq!((c.requests(Op::UploadFile), c.requests(Op::CreateSession), c.commits), (0, 1, 1), "{size}");
            assert_eq!(c.requests(Op::Preflight), 1, "{size}: checked before the session");
        } else {
            assert_eq!((c.requests(Op::UploadFile), c.requests(Op::CreateSession)), (1, 0), "{size}");
            assert_eq!(c.requests(Op::Preflight), 0, "{size}: the upload's own answer says it all");
        }
    }
}

fn a_stream_and_bytes_below_the_cutoff_go_direct(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let data = bytes(3 * MIB, 5);
    let request = UploadRequest::new_file("0", "stream.bin", data.len() as u64);
    let file = call!(h.client, upload(Source::reader(std::io::Cursor::new(data.clone())), request)).unwrap();
    h.assert_stored(&file.id, &data);
    let file =
        call!(h.client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "bytes.bin", 0))).unwrap();
    h.assert_stored(&file.id, &data);
    // A stream longer than it says is refused before anything is sent.
    let request = UploadRequest::new_file("0", "long.bin", 10);
    let err = call!(h.client, upload(Source::reader(std::io::Cursor::new(vec![1u8; 11])), request)).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Source(SourceError::RanLong { file_size: 10 }))), "{err}");
    assert_eq!(h.emu.counters().requests(Op::UploadFile), 2);
    // A stream in a session cannot be read twice: skip (which compares first) is refused up front.
    let options = UploadOptions::new().on_conflict(OnConflict::Skip);
    let request = UploadRequest::new_file("0", "big-stream.bin", MIN_SIZE);
    let stream = Source::reader(std::io::Cursor::new(vec![0u8; MIN_SIZE as usize]));
    let err = call!(h.client, upload_with(stream, request, options)).unwrap_err();
    assert!(matches!(&err, Error::Config(m) if m.contains("skip")), "{err}");
    assert_eq!(h.emu.counters().requests(Op::Preflight), 0, "nothing sent");
}

fn a_new_version_goes_direct_with_if_match(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let v1 = h.emu.create_file("0", "doc.txt", b"version one").unwrap();
    let data = bytes(1_000, 9);
    let request = UploadRequest::new_version(&v1.id, 0).if_match(&v1.etag);
    let file = call!(h.client, upload(Source::bytes(data.clone()), request)).unwrap();
    assert_eq!(file.id, v1.id);
    assert_ne!(file.etag, Some(v1.etag.clone()));
    h.assert_stored(&v1.id, &data);
    // A stale etag: Box's 412, the content stays.
    let err =
        call!(h.client, upload(Source::bytes(vec![1u8; 10]), UploadRequest::new_version(&v1.id, 0).if_match(&v1.etag)))
            .unwrap_err();
    assert_eq!(err.core().and_then(CoreError::box_code), Some("precondition_failed"), "{err}");
    h.assert_stored(&v1.id, &data);
}

fn on_conflict_fail_is_boxs_409_and_nothing_changes(kind: Kind) {
    for size in [1_000, MIN_SIZE] {
        let h = Harness::start(kind, emulator());
        let old = h.emu.create_file("0", "taken.bin", b"old").unwrap();
        let err = call!(h.client, upload(Source::bytes(bytes(size, 1)), UploadRequest::new_file("0", "taken.bin", 0)))
            .unwrap_err();
        assert_eq!(err.core().and_then(CoreError::box_code), Some("item_name_in_use"), "{size}: {err}");
        h.assert_stored(&old.id, b"old");
        let c = h.emu.counters();
        // A session's creation goes out beside the preflight check, and Box refuses it too.
        let sessions = u64::from(size >= MIN_SIZE);
        assert_eq!((c.requests(Op::UploadPart), c.requests(Op::CreateSession)), (0, sessions), "{size}");
        assert_eq!(h.emu.counters().requests(Op::Abort), 0, "no session was made");
    }
}

fn on_conflict_version_uploads_a_version_of_the_file_holding_the_name(kind: Kind) {
    for (size, shape) in
        [(1_000, ConflictsShape::Object), (1_000, ConflictsShape::Array), (MIN_SIZE, ConflictsShape::Object)]
    {
        let h = Harness::start(kind, emulator().conflicts_shape(shape));
        let old = h.emu.create_file("0", "taken.bin", b"old").unwrap();
        let data = bytes(size, 2);
        let options = UploadOptions::new().on_conflict(OnConflict::Version);
        let file = call!(
            h.client,
            upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "taken.bin", 0), options)
        )
        .unwrap_or_else(|e| panic!("{size} {shape:?}: {e}"));
        assert_eq!(file.id, old.id, "{size}: a version of the same file");
        assert_eq!(file.etag.as_deref(), Some("1"));
        h.assert_stored(&old.id, &data);
    }
}

fn on_conflict_skip_sends_nothing_when_the_content_is_the_same(kind: Kind) {
    for size in [1_000, MIN_SIZE] {
        let h = Harness::start(kind, emulator());
        let data = bytes(size, 3);
        let old = h.emu.create_file("0", "same.bin", &data).unwrap();
        let options = UploadOptions::new().on_conflict(OnConflict::Skip);
        let request = UploadRequest::new_file("0", "same.bin", 0);
        let file = call!(h.client, upload_with(Source::bytes(data.clone()), request, options.clone())).unwrap();
        assert_eq!(
            (file.id.as_str(), file.etag.as_deref()),
            (old.id.as_str(), Some("0")),
            "{size}: the file as it was"
        );
        let c = h.emu.counters();
        let sessions = u64::from(size >= MIN_SIZE);
        assert_eq!(
            (c.requests(Op::UploadFile), c.requests(Op::CreateSession), c.requests(Op::UploadPart)),
            (0, sessions, 0),
            "{size}: a session's creation goes beside the check, and Box refuses it"
        );
        // Other content under the name: Box's 409, still nothing sent.
        let request = UploadRequest::new_file("0", "same.bin", 0);
        let err = call!(h.client, upload_with(Source::bytes(bytes(size, 4)), request, options)).unwrap_err();
        assert_eq!(err.core().and_then(CoreError::box_code), Some("item_name_in_use"), "{err}");
        h.assert_stored(&old.id, &data);
        assert_eq!(h.emu.counters().requests(Op::UploadFile) + h.emu.counters().requests(Op::UploadPart), 0);
    }
}

fn a_chunked_upload_checks_first_and_fails_before_any_byte_is_sent(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let path = h.file("big.bin", MIN_SIZE + 5, 6);
    let err =
        call!(h.client, upload(Source::file(&path), UploadRequest::new_file("424242", "big.bin", 0))).unwrap_err();
    assert_eq!(err.core().and_then(CoreError::box_code), Some("not_found"), "{err}");
    let c = h.emu.counters();
    // The check and the session's creation go out together; whichever Box refuses first ends
    // the upload, before any part.
    assert_eq!((c.requests(Op::CreateSession), c.requests(Op::UploadPart), c.requests(Op::Abort)), (1, 0, 0));
    assert!(c.requests(Op::Preflight) <= 1);
}

fn the_files_times_go_to_box_unless_turned_off(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_934_245); // 2020-01-02T03:04:05Z
    for (name, size) in [("small.txt", 1_000), ("big.bin", MIN_SIZE)] {
        let path = h.file(name, size, 8);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        call!(h.client, upload(Source::file(&path), UploadRequest::new_file("0", name, 0))).unwrap();
        let stored = h.emu.find_file("0", name).unwrap();
        assert_eq!(stored.content_modified_at.as_deref(), Some("2020-01-02T03:04:05Z"), "{name}");
        if let Ok(born) = std::fs::metadata(&path).unwrap().created() {
            let expected = box_upload_driver::core::rfc3339(born);
            assert_eq!(stored.content_created_at, expected, "{name}: the birth time where the platform knows it");
        }
        // Read back through Box's API: the file's fields.
        let got = call!(h.client, get_file(&stored.id, &["content_modified_at"])).unwrap();
        assert_eq!(got.extra.get("content_modified_at").and_then(|v| v.as_str()), Some("2020-01-02T03:04:05Z"));
    }
    let path = h.file("plain.txt", 10, 9);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
    let options = UploadOptions::new().timestamps(false);
    call!(h.client, upload_with(Source::file(&path), UploadRequest::new_file("0", "plain.txt", 0), options)).unwrap();
    let stored = h.emu.find_file("0", "plain.txt").unwrap();
    assert_eq!((stored.content_modified_at, stored.content_created_at), (None, None));
}

fn the_cutoff_is_a_client_setting_within_boxs_limits(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let direct = client!(&h, |b| b.chunked_from(50_000_001));
    let data = bytes(25_000_000, 10);
    let file = call!(direct, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "25mb.bin", 0))).unwrap();
    h.assert_stored(&file.id, &data);
    assert_eq!((h.emu.counters().requests(Op::UploadFile), h.emu.counters().requests(Op::CreateSession)), (1, 0));
    for bad in [19_999_999, 50_000_002] {
        let err = build!(&h.rig, |b| defaults(b, &h.emu).chunked_from(bad)).err().unwrap();
        assert!(matches!(&err, Error::Config(m) if m.contains("chunked_from")), "{bad}: {err}");
    }
}

fn by_default_files_from_25_mb_go_in_a_session(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let client = client!(&h, |b| b.chunked_from(box_upload_driver::core::DEFAULT_CHUNKED_FROM));
    for (size, direct) in [(MIN_SIZE, true), (24_999_999, true), (25_000_000, false)] {
        let before = h.emu.counters();
        let data = bytes(size, 13);
        let name = format!("d{size}.bin");
        let file = call!(client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", &name, 0))).unwrap();
        h.assert_stored(&file.id, &data);
        let after = h.emu.counters();
        let sent = |op| after.requests(op) - before.requests(op);
        assert_eq!((sent(Op::UploadFile), sent(Op::CreateSession)), if direct { (1, 0) } else { (0, 1) }, "{size}");
    }
}

fn a_direct_upload_answered_503_is_sent_again_from_the_source(kind: Kind) {
    let faults =
        Faults::none().rule(Op::UploadFile, Trigger::FirstN(2), FaultAction::Status { status: 503, retry_after: None });
    let h = Harness::start(kind, emulator().faults(faults));
    let path = h.file("retry.bin", 2 * MIB + 3, 11);
    let file = call!(h.client, upload(Source::file(&path), UploadRequest::new_file("0", "retry.bin", 0))).unwrap();
    h.assert_stored(&file.id, &std::fs::read(&path).unwrap());
    assert_eq!(h.emu.counters().requests(Op::UploadFile), 3);
}

fn a_direct_upload_stored_but_its_answer_lost_is_confirmed_by_its_own_file(kind: Kind) {
    // Stored, the connection closed; the resend meets the name in use by a file with our SHA-1.
    let faults = Faults::none().rule(Op::UploadFile, Trigger::FirstN(1), FaultAction::CommitAnswerLost);
    for shape in [ConflictsShape::Object, ConflictsShape::Array] {
        let h = Harness::start(kind, emulator().faults(faults.clone()).conflicts_shape(shape));
        let data = bytes(4_000, 14);
        let file = call!(h.client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "lost.txt", 0)))
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        let stored = h.emu.find_file("0", "lost.txt").unwrap();
        assert_eq!((file.id.as_str(), file.sha1.as_deref()), (stored.id.as_str(), Some(sha1_hex(&data).as_str())));
        h.assert_stored(&file.id, &data);
        let c = h.emu.counters();
        assert_eq!((c.requests(Op::UploadFile), c.requests(Op::File)), (2, 1), "{shape:?}: sent twice, then looked up");
    }
    // Another file under the name (not ours): Box's 409 stands.
    let h = Harness::start(kind, emulator());
    h.emu.create_file("0", "taken.txt", b"theirs").unwrap();
    let err = call!(h.client, upload(Source::bytes(bytes(4_000, 15)), UploadRequest::new_file("0", "taken.txt", 0)))
        .unwrap_err();
    assert_eq!(err.core().and_then(CoreError::box_code), Some("item_name_in_use"), "{err}");
}

fn a_file_changed_after_it_was_hashed_is_not_uploaded(kind: Kind) {
    let h = Harness::start(kind, emulator());
    let path = h.file("moving.txt", 1_000, 12);
    let target = path.clone();
    // The last read done (the hash is known), the file grows before the upload is sent.
    let options = UploadOptions::new().on_progress(move |p| {
        if p.bytes_read == 1_000 && p.bytes_acknowledged == 0 {
            use std::io::Write as _;
            let _ = std::fs::OpenOptions::new().append(true).open(&target).and_then(|mut f| f.write_all(b"more"));
        }
    });
    let err = call!(h.client, upload_with(Source::file(&path), UploadRequest::new_file("0", "moving.txt", 0), options))
        .unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Source(SourceError::Changed(_)))), "{err}");
    assert!(h.emu.find_file("0", "moving.txt").is_none());
    assert_eq!(h.emu.counters().requests(Op::UploadFile), 0);
}
