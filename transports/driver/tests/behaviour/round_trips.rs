//! Whole uploads compared byte for byte with their source: a file (two part sizes and parallel
//! settings), a new version with If-Match, a stream, bytes, a `BigUpload` made with
//! `core().start_upload` and driven with `drive_with`, `run` and `drive` of any machine; and the
//! input refused before anything is sent.

use crate::harness::{both, bytes, call, client, sha1_hex, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::Op;
use box_upload_driver::core::operations::GetUploadSession;
use box_upload_driver::core::{Error as CoreError, InputError, SourceError, SourceFacts, UploadRequest};
use box_upload_driver::{Error, Source, UploadOptions};

both!(
    a_file_round_trips,
    a_new_version_with_if_match,
    a_stream_round_trips,
    a_stream_of_the_wrong_length_is_refused,
    bytes_round_trip_with_the_size_taken_from_them,
    drive_with_runs_a_big_upload_from_start_upload,
    run_and_drive_take_any_operation_or_machine,
    input_is_refused_before_any_request,
);

fn a_file_round_trips(kind: Kind) {
    let h = Harness::with_parts(kind, 4 * MIB);
    let size = MIN_SIZE + 1;
    let data = bytes(size, 1);
    let path = h.path("src.bin");
    std::fs::write(&path, &data).unwrap();
    let parts = size.div_ceil(4 * MIB);
    for (n, parts_in_flight) in [(1u64, 3usize), (2, 1)] {
        let client = client!(&h, |b| b.parts_in_flight(parts_in_flight));
        let name = format!("src-{parts_in_flight}.bin");
        let before = h.emu.counters();
        // A file size of 0 is taken from the file.
        let uploaded = call!(client, upload(Source::file(&path), UploadRequest::new_file("0", &name, 0))).unwrap();
        assert_eq!(uploaded.size, Some(size));
        assert_eq!(uploaded.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
        assert_eq!(uploaded.name.as_deref(), Some(name.as_str()));
        h.assert_stored(&uploaded.id, &data);
        let c = h.emu.counters();
        assert_eq!(c.requests(Op::UploadPart) - before.requests(Op::UploadPart), parts, "each part sent once");
        assert_eq!(c.parts_stored, n * parts);
        assert_eq!(c.commits, n);
        assert_eq!(c.requests(Op::Abort), 0);
        assert!(h.emu.session_ids().is_empty(), "no session left open");
        // Keep-alive: a connection per request in flight at most, not one per request.
        let connections = c.connections - before.connections;
        assert!(connections <= parts_in_flight as u64 + 2, "{connections} connections for {parts_in_flight} in flight");
    }
}

fn a_new_version_with_if_match(kind: Kind) {
    let h = Harness::with_parts(kind, 8 * MIB);
    let original = h.emu.create_file("0", "doc.bin", b"first version").unwrap();
    let v2 = bytes(MIN_SIZE + 1, 5);
    let path = h.path("v2.bin");
    std::fs::write(&path, &v2).unwrap();
    let request = UploadRequest::new_version(original.id.clone(), 0).if_match(original.etag.clone());
    let uploaded = call!(h.client, upload(Source::file(&path), request)).unwrap();
    assert_eq!(uploaded.id, original.id);
    h.assert_stored(&original.id, &v2);
    let after = h.emu.file_info(&original.id).unwrap();
    assert_ne!(after.etag, original.etag, "a new version has a new etag");
    assert_eq!(after.sha1, sha1_hex(&v2));

    // The old etag is stale now: Box answers 412, nothing changes, the session is aborted.
    let stale = UploadRequest::new_version(original.id.clone(), 0).if_match(original.etag.clone());
    let err = call!(h.client, upload(Source::bytes(bytes(MIN_SIZE + 1, 6)), stale)).unwrap_err();
    assert_eq!(crate::harness::api_status(&err), Some(412), "{err}");
    let unchanged = h.emu.file_info(&original.id).unwrap();
    assert_eq!((unchanged.etag, unchanged.sha1), (after.etag, after.sha1));
    h.assert_stored(&original.id, &v2);
    assert!(h.emu.session_ids().is_empty(), "the refused session was aborted");
    assert_eq!(h.emu.counters().requests(Op::Abort), 1);
}

fn a_stream_round_trips(kind: Kind) {
    let h = Harness::with_parts(kind, 4 * MIB);
    let size = MIN_SIZE + 3;
    let data = bytes(size, 7);
    let client = client!(&h, |b| b.parts_in_flight(3));
    let reader = std::io::Cursor::new(data.clone());
    // A stream's size must be declared.
    let uploaded = call!(client, upload(Source::reader(reader), UploadRequest::new_file("0", "s.bin", size))).unwrap();
    h.assert_stored(&uploaded.id, &data);
    assert_eq!(uploaded.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
    assert_eq!(h.emu.counters().requests(Op::UploadPart), size.div_ceil(4 * MIB));
}

fn a_stream_of_the_wrong_length_is_refused(kind: Kind) {
    let h = Harness::with_parts(kind, 4 * MIB);
    let size = MIN_SIZE + 1;
    let long = std::io::Cursor::new(bytes(size + 10, 8));
    let err =
        call!(h.client, upload(Source::reader(long), UploadRequest::new_file("0", "long.bin", size))).unwrap_err();
    assert!(
        matches!(err.core(), Some(CoreError::Source(SourceError::RanLong { file_size })) if *file_size == size),
        "{err}"
    );
    h.assert_nothing_committed("long.bin");

    let short = std::io::Cursor::new(bytes(size - 1, 8));
    let err =
        call!(h.client, upload(Source::reader(short), UploadRequest::new_file("0", "short.bin", size))).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Source(SourceError::EndedEarly { .. }))), "{err}");
    h.assert_nothing_committed("short.bin");
    assert_eq!(h.emu.counters().requests(Op::Abort), 2, "both sessions were aborted");
}

fn bytes_round_trip_with_the_size_taken_from_them(kind: Kind) {
    let h = Harness::with_parts(kind, 4 * MIB);
    let data = bytes(MIN_SIZE + 1, 9);
    let uploaded =
        call!(h.client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "b.bin", 0))).unwrap();
    assert_eq!(uploaded.size, Some(data.len() as u64));
    h.assert_stored(&uploaded.id, &data);
    assert_eq!(h.emu.counters().commits, 1);
}

fn drive_with_runs_a_big_upload_from_start_upload(kind: Kind) {
    // The driver serves reads one at a time, in order, through the machine's part builder, so
    // the whole-file SHA-1 is computed on the reading thread in the same pass as each part's and
    // the machine never hashes on its own.
    let h = Harness::with_parts(kind, 4 * MIB);
    let size = MIN_SIZE + 3;
    let data = bytes(size, 10);
    let path = h.path("driven.bin");
    std::fs::write(&path, &data).unwrap();
    for parts_in_flight in [1usize, 4] {
        let client = client!(&h, |b| b.parts_in_flight(parts_in_flight));
        let name = format!("driven-{parts_in_flight}.bin");
        let facts = SourceFacts { size: Some(size), ..SourceFacts::default() };
        let request = UploadRequest::new_file("0", &name, 0);
        let mut machine = client.core().start_upload(request, &facts, Some(parts_in_flight)).unwrap();
        let uploaded = call!(client, drive_with(&mut machine, Source::file(&path), UploadOptions::new())).unwrap();
        assert_eq!(uploaded.size, Some(size), "the size came from the facts");
        assert_eq!(uploaded.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
        h.assert_stored(&uploaded.id, &data);
        assert_eq!(machine.whole_file_bytes_hashed_here(), 0, "{parts_in_flight} in flight");
    }
    // The facts are checked as by `upload`.
    let facts = SourceFacts { size: Some(size), ..SourceFacts::default() };
    let err = h.client.core().start_upload(UploadRequest::new_file("0", "x.bin", size + 1), &facts, None).unwrap_err();
    assert_eq!(err, InputError::SizeMismatch { declared: size + 1, actual: size });
}

fn run_and_drive_take_any_operation_or_machine(kind: Kind) {
    let h = Harness::with_parts(kind, 8 * MIB);
    let session = call!(h.client, create_upload_session("0", "m.bin", MIN_SIZE)).unwrap();
    let got = call!(h.client, run(GetUploadSession::by_id(session.id.clone()))).unwrap();
    assert_eq!(got.id, session.id);
    let mut machine = h.client.core().call(GetUploadSession::by_id(session.id.clone()));
    assert_eq!(call!(h.client, drive(&mut machine)).unwrap().id, session.id);
    assert_eq!(h.emu.counters().requests(Op::GetSession), 2);

    // `drive` has no source: a machine that reads fails with a source error, and its session
    // is aborted.
    let mut upload = h.client.core().big_upload(UploadRequest::new_file("0", "nosource.bin", MIN_SIZE)).unwrap();
    let err = call!(h.client, drive(&mut upload)).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Source(SourceError::Io(_)))), "{err}");
    assert_eq!(h.emu.counters().requests(Op::UploadPart), 0);
    assert_eq!(h.emu.counters().requests(Op::Abort), 1);
    assert_eq!(h.emu.session_ids(), vec![session.id], "only the first session is left");
}

fn input_is_refused_before_any_request(kind: Kind) {
    let h = Harness::with_parts(kind, 8 * MIB);
    let err = call!(h.client, upload(Source::bytes(vec![0u8; 100]), UploadRequest::new_file("0", "x.bin", MIN_SIZE)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Core(CoreError::Input(InputError::SizeMismatch { declared: MIN_SIZE, actual: 100 }))),
        "{err}"
    );
    let err =
        call!(h.client, upload(Source::bytes(vec![0u8; 100]), UploadRequest::new_file("0", "x/y", 0))).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::BadName { .. }))), "{err}");
    let missing = h.path("missing.bin");
    let err = call!(h.client, upload(Source::file(&missing), UploadRequest::new_file("0", "x.bin", 0))).unwrap_err();
    assert!(matches!(&err, Error::SourceOpen { path, .. } if *path == missing), "{err}");
    let err =
        call!(h.client, upload(Source::file(h.dir.path()), UploadRequest::new_file("0", "x.bin", 0))).unwrap_err();
    assert!(matches!(err, Error::SourceOpen { .. }), "a directory is not a source: {err}");
    let err = call!(h.client, create_upload_session("0", "x.bin", MIN_SIZE - 1)).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::FileTooSmall { .. }))), "{err}");
    let err = call!(h.client, list_upload_session_parts_by_id("ABC", None, Some(1001))).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::LimitTooLarge(1001)))), "{err}");
    assert_eq!(h.emu.counters().total_requests(), 0, "nothing was sent");
}
