//! The big upload's behaviours through this transport: new versions with If-Match, faults,
//! cancel and resume, a source that changes, Client Credentials with a token expiring mid-way.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_ureq::core::{self as box_upload_core, SourceError};
use box_upload_ureq::{
    load_checkpoint, BoxSubject, CancelToken, Client, ClientCredentials, Error, ResumeOptions, Source, UploadOptions,
    UploadRequest,
};
use common::{assert_same_file, client, emulator, fast_retries, temp_file, MIB};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn new_version_with_if_match_then_a_stale_etag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(8 * MIB, Faults::none());
    let folder = emu.create_folder("f").unwrap();
    let old = emu.create_file(&folder, "doc.bin", b"the first version").unwrap();
    let client = client(&emu, 2);

    let size = 20_000_001;
    let (path, sha1) = temp_file(dir.path(), "v2.bin", size, 1);
    let request = UploadRequest::new_version(old.id.clone(), size).if_match(old.etag.clone());
    let file = client.upload(Source::file(&path), request).unwrap();
    assert_eq!(file.id, old.id);
    let now = emu.file_info(&old.id).unwrap();
    assert_eq!(now.sha1, sha1);
    assert_ne!(now.etag, old.etag, "a new version has a new etag");
    assert_same_file(&path, now.path().expect("on disk"));

    // The old etag is stale now: the commit answers 412 and nothing changes.
    let (path3, _) = temp_file(dir.path(), "v3.bin", size, 2);
    let stale = UploadRequest::new_version(old.id.clone(), size).if_match(old.etag.clone());
    let err = client.upload(Source::file(&path3), stale).unwrap_err();
    match err.core() {
        Some(box_upload_core::Error::Api(api)) => assert_eq!(api.status, 412, "{err}"),
        other => panic!("expected a 412, got {other:?}"),
    }
    let after = emu.file_info(&old.id).unwrap();
    assert_eq!(after.sha1, now.sha1, "content unchanged");
    assert_eq!(after.etag, now.etag, "etag unchanged");
    assert!(emu.session_ids().is_empty(), "the failed session was aborted");
    assert_eq!(emu.counters().commits, 1);
}

#[test]
fn uploads_are_byte_exact_under_injected_faults() {
    common::init_tracing();
    let faults = Faults::none()
        .rule(Op::UploadPart, Trigger::Probability(0.05), FaultAction::Status { status: 500, retry_after: None })
        .rule(Op::UploadPart, Trigger::Probability(0.02), FaultAction::Status { status: 429, retry_after: Some(1) })
        .rule(Op::UploadPart, Trigger::Probability(0.02), FaultAction::CutBody)
        .rule(Op::UploadPart, Trigger::Probability(0.02), FaultAction::DropAnswer)
        .rule(Op::Commit, Trigger::FirstN(3), FaultAction::CommitPending { retry_after: Some(1) });
    let dir = tempfile::tempdir().unwrap();
    let size = 48 * MIB + 12_345;
    let (path, sha1) = temp_file(dir.path(), "faulty.bin", size, 3);
    // Small parts: many requests, so the faults fire.
    let emu = emulator(512 * 1024, faults);
    let folder = emu.create_folder("faults").unwrap();
    let client = client(&emu, 4);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let options = UploadOptions::new().on_event(move |e| seen.lock().unwrap().push(e.clone()));
    let file = client
        .upload_with(Source::file(&path), UploadRequest::new_file(folder, "faulty.bin", size), options)
        .unwrap();
    let info = emu.file_info(&file.id).unwrap();
    assert_eq!(info.sha1, sha1);
    assert_same_file(&path, info.path().expect("on disk"));
    let c = emu.counters();
    let parts = size.div_ceil(512 * 1024);
    assert!(c.faults_injected > 3, "faults fired: {}", c.faults_injected);
    assert!(c.requests(Op::UploadPart) > parts, "some parts were sent again");
    assert_eq!(c.requests(Op::Commit), 4, "three 202s, then the commit");
    assert_eq!(c.commits, 1);
    let events = events.lock().unwrap();
    let pending = events.iter().filter(|e| matches!(e, box_upload_core::Event::CommitPending { .. })).count();
    assert_eq!(pending, 3);
    assert!(events.iter().any(|e| matches!(e, box_upload_core::Event::Retrying { .. })));
}

#[test]
fn faults_that_never_stop_end_with_a_clear_error_and_the_session_aborted() {
    let faults =
        Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Status { status: 503, retry_after: None });
    let emu = emulator(8 * MIB, faults);
    let folder = emu.create_folder("down").unwrap();
    let client = client(&emu, 2);
    let size = 20_000_000;
    let err = client
        .upload(Source::bytes(common::bytes(size, 4)), UploadRequest::new_file(folder, "never.bin", size))
        .unwrap_err();
    match err.core() {
        Some(box_upload_core::Error::Api(api)) => assert_eq!(api.status, 503, "{err}"),
        other => panic!("expected Box's 503, got {other:?}: {err}"),
    }
    let c = emu.counters();
    assert_eq!(c.requests(Op::Abort), 1, "the session was aborted");
    assert!(emu.session_ids().is_empty());
    assert_eq!(c.commits, 0);
    // Bounded: at most (max_retries + 1) sends of each part that was started.
    assert!(c.requests(Op::UploadPart) <= 3 * (u64::from(fast_retries().max_retries) + 1));
}

#[test]
fn connection_refused_is_a_transport_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = Client::builder()
        .upload_base(format!("http://127.0.0.1:{port}/api"))
        .developer_token("t")
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let err = client.get_upload_session_by_id("ABC").unwrap_err();
    match err.core() {
        Some(box_upload_core::Error::Transport { source, attempts, .. }) => {
            assert_eq!(source.kind, box_upload_core::TransportErrorKind::Connect, "{err}");
            assert_eq!(*attempts, fast_retries().max_retries + 1);
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[test]
fn cancel_keeping_the_session_then_resume_sends_only_the_missing_parts() {
    let dir = tempfile::tempdir().unwrap();
    let size = 24 * MIB + 7;
    let part = MIB;
    let total = size.div_ceil(part);
    let (path, sha1) = temp_file(dir.path(), "resume.bin", size, 5);
    let checkpoint = dir.path().join("resume.checkpoint.json");
    let emu = emulator(part, Faults::none());
    let folder = emu.create_folder("r").unwrap();
    let client = client(&emu, 2);

    let cancel = CancelToken::new();
    let flag = cancel.clone();
    let options = UploadOptions::new()
        .checkpoint_file(&checkpoint)
        .cancel_token(cancel.clone())
        .keep_session_on_cancel(true)
        .on_progress(move |p| {
            if p.parts_acknowledged >= 6 {
                flag.cancel();
            }
        });
    let err = client
        .upload_with(Source::file(&path), UploadRequest::new_file(folder.clone(), "resume.bin", size), options)
        .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(emu.session_ids().len(), 1, "the session was kept");
    let saved = load_checkpoint(&checkpoint).unwrap();
    assert!(saved.parts.len() >= 6 && (saved.parts.len() as u64) < total, "{} parts saved", saved.parts.len());
    let before = emu.counters();
    assert_eq!(before.requests(Op::Abort), 0);
    // Every part sent has finished when upload_with returns: nothing is left on the wire.
    assert_eq!(before.parts_stored, before.requests(Op::UploadPart));
    assert!(before.parts_stored >= saved.parts.len() as u64);

    let file = client.resume(checkpoint.clone(), Source::file(&path), ResumeOptions::default()).unwrap();
    let after = emu.counters();
    assert_eq!(
        after.requests(Op::UploadPart) - before.requests(Op::UploadPart),
        total - before.parts_stored,
        "only the missing parts were sent"
    );
    assert_eq!(after.parts_stored, total);
    assert_eq!(after.commits, 1);
    let info = emu.file_info(&file.id).unwrap();
    assert_eq!(info.sha1, sha1);
    assert_same_file(&path, info.path().expect("on disk"));
    assert!(!checkpoint.exists(), "the checkpoint is removed after the commit");
}

#[test]
fn cancel_without_keeping_the_session_aborts_it() {
    let size = 20_000_000;
    let emu = emulator(MIB, Faults::none());
    let folder = emu.create_folder("c").unwrap();
    let client = client(&emu, 2);
    let cancel = CancelToken::new();
    let flag = cancel.clone();
    let options = UploadOptions::new().cancel_token(cancel).on_progress(move |p| {
        if p.parts_acknowledged >= 2 {
            flag.cancel();
        }
    });
    let err = client
        .upload_with(Source::bytes(common::bytes(size, 6)), UploadRequest::new_file(folder, "c.bin", size), options)
        .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(emu.session_ids().is_empty());
    assert_eq!(emu.counters().requests(Op::Abort), 1);
    assert_eq!(emu.counters().commits, 0);
}

#[test]
fn resume_refuses_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let size = 20_000_000;
    let (path, _) = temp_file(dir.path(), "a.bin", size, 7);
    let (other, _) = temp_file(dir.path(), "b.bin", size, 8);
    let checkpoint = dir.path().join("a.json");
    let emu = emulator(MIB, Faults::none());
    let folder = emu.create_folder("x").unwrap();
    let client = client(&emu, 1);
    let cancel = CancelToken::new();
    let flag = cancel.clone();
    let options =
        UploadOptions::new().checkpoint_file(&checkpoint).cancel_token(cancel).keep_session_on_cancel(true).on_progress(
            move |p| {
                if p.parts_acknowledged >= 1 {
                    flag.cancel();
                }
            },
        );
    let err = client
        .upload_with(Source::file(&path), UploadRequest::new_file(folder, "a.bin", size), options)
        .unwrap_err();
    assert!(err.is_cancelled());
    let err = client.resume(checkpoint.clone(), Source::file(&other), ResumeOptions::default()).unwrap_err();
    assert!(
        matches!(err.core(), Some(box_upload_core::Error::Input(box_upload_core::InputError::CheckpointMismatch(_)))),
        "{err}"
    );
}

#[test]
fn a_file_that_changes_during_the_upload_is_never_committed() {
    let dir = tempfile::tempdir().unwrap();
    let size = 20_000_000;
    let (path, _) = temp_file(dir.path(), "changing.bin", size, 9);
    let emu = emulator(MIB, Faults::none());
    let folder = emu.create_folder("ch").unwrap();
    let client = client(&emu, 1);
    let target = path.clone();
    let mut changed = false;
    let options = UploadOptions::new().on_progress(move |p| {
        if !changed && p.parts_acknowledged >= 1 {
            changed = true;
            // Same size, new bytes and a new modification time.
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&target).unwrap();
            f.write_at(b"changed", size - 100).unwrap();
            f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
        }
    });
    let err = client
        .upload_with(
            Source::file(&path),
            UploadRequest::new_file(folder.clone(), "changing.bin", size),
            options,
        )
        .unwrap_err();
    assert!(
        matches!(err.core(), Some(box_upload_core::Error::Source(SourceError::Changed(_)))),
        "expected SourceError::Changed, got {err}"
    );
    assert_eq!(emu.counters().commits, 0);
    assert!(emu.find_file(&folder, "changing.bin").is_none());
    assert!(emu.session_ids().is_empty(), "the session was aborted");
}

#[test]
fn a_file_that_grows_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let size = 20_000_000;
    let (path, _) = temp_file(dir.path(), "growing.bin", size, 10);
    let emu = emulator(4 * MIB, Faults::none());
    let folder = emu.create_folder("g").unwrap();
    let client = client(&emu, 1);
    let target = path.clone();
    let mut grown = false;
    let options = UploadOptions::new().on_progress(move |p| {
        if !grown && p.bytes_read > 0 {
            grown = true;
            use std::io::Write;
            std::fs::OpenOptions::new().append(true).open(&target).unwrap().write_all(b"more").unwrap();
        }
    });
    let err = client
        .upload_with(Source::file(&path), UploadRequest::new_file(folder, "growing.bin", size), options)
        .unwrap_err();
    assert!(matches!(err.core(), Some(box_upload_core::Error::Source(_))), "{err}");
    assert_eq!(emu.counters().commits, 0);
}

#[test]
fn client_credentials_token_refreshed_when_it_expires_mid_upload() {
    let emu =
        Emulator::builder().client_credentials("client-id", "client-secret").part_size(MIB).start_blocking().unwrap();
    let folder = emu.create_folder("ccg").unwrap();
    let credentials = ClientCredentials::new("client-id", "client-secret", BoxSubject::Enterprise("42".into()))
        .with_token_url(&emu.token_url())
        .unwrap();
    let client = Client::builder()
        .upload_base(emu.upload_base_url())
        .client_credentials(credentials)
        .parts_in_flight(2)
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let size = 20_000_000;
    let data = common::bytes(size, 11);
    let mut expired = false;
    let emu_ref: &Emulator = &emu;
    // The emulator's clock jumps two hours while parts are in flight: its tokens expire.
    let clock = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = s.spawn(move || {
            if rx.recv().is_ok() {
                emu_ref.advance_clock(Duration::from_secs(2 * 3600));
            }
        });
        let options = UploadOptions::new().on_progress(move |p| {
            if !expired && p.parts_acknowledged >= 4 {
                expired = true;
                let _ = tx.send(());
            }
        });
        let file = client
            .upload_with(Source::bytes(data.clone()), UploadRequest::new_file(folder.clone(), "ccg.bin", size), options)
            .unwrap();
        h.join().unwrap();
        file
    });
    let info = emu.file_info(&clock.id).unwrap();
    assert_eq!(info.sha1, common::sha1_hex(&data));
    let c = emu.counters();
    assert!(c.requests(Op::Token) >= 2, "a new token was fetched: {} token requests", c.requests(Op::Token));
    assert_eq!(c.commits, 1);
}

#[test]
fn a_reader_source_uploads_in_order() {
    let emu = emulator(5 * MIB, Faults::none());
    let folder = emu.create_folder("rd").unwrap();
    let client = client(&emu, 3);
    let size = 20_000_001;
    let data = common::bytes(size, 12);
    let reader = std::io::Cursor::new(data.clone());
    let file = client.upload(Source::reader(reader), UploadRequest::new_file(folder, "r.bin", size)).unwrap();
    assert_eq!(emu.file_content(&file.id).unwrap(), data);
}

#[test]
fn a_reader_longer_than_declared_is_refused() {
    let emu = emulator(5 * MIB, Faults::none());
    let folder = emu.create_folder("rl").unwrap();
    let client = client(&emu, 2);
    let size = 20_000_001;
    let reader = std::io::Cursor::new(common::bytes(size + 10, 13));
    let err = client.upload(Source::reader(reader), UploadRequest::new_file(folder, "r.bin", size)).unwrap_err();
    assert!(matches!(err.core(), Some(box_upload_core::Error::Source(SourceError::RanLong { .. }))), "{err}");
    assert_eq!(emu.counters().commits, 0);
}

#[test]
fn a_size_mismatch_is_refused_before_any_request() {
    let emu = emulator(5 * MIB, Faults::none());
    let client = client(&emu, 2);
    let err =
        client.upload(Source::bytes(vec![0u8; 100]), UploadRequest::new_file("0", "x.bin", 20_000_000)).unwrap_err();
    assert!(matches!(err, Error::Core(box_upload_core::Error::Input(box_upload_core::InputError::SizeMismatch { declared: 20_000_000, actual: 100 }))), "{err}");
    let err = client.upload(Source::bytes(vec![0u8; 100]), UploadRequest::new_file("0", "x.bin", 100)).unwrap_err();
    assert!(matches!(err.core(), Some(box_upload_core::Error::Input(_))), "{err}");
    assert_eq!(emu.counters().total_requests(), 0);
}
