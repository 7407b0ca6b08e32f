//! The 13 single operations against the emulator, by id and by URL; and what the transport must
//! never do: follow a redirect, read an unbounded body, or log the token.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{FaultAction, Faults, Op, Trigger};
use box_upload_ureq::core::operations::{CommitResponse, GetUploadSession};
use box_upload_ureq::core::{self as box_upload_core, Sha1Digest, TransportErrorKind};
use box_upload_ureq::Client;
use common::{client, emulator, MIB};
use std::io::Write;
use std::sync::{Arc, Mutex};

const SIZE: u64 = 20_000_000;

#[test]
fn the_single_operations_by_id() {
    let emu = emulator(8 * MIB, Faults::none());
    let folder = emu.create_folder("ops").unwrap();
    let client = client(&emu, 2);
    let content = common::bytes(SIZE, 21);

    let session = client.create_upload_session(folder.as_str(), "ops.bin", SIZE).unwrap();
    assert_eq!(session.part_size, Some(8 * MIB));
    assert_eq!(session.total_parts, Some(3));
    let got = client.get_upload_session_by_id(session.id.as_str()).unwrap();
    assert_eq!(got.id, session.id);

    let mut parts = Vec::new();
    for offset in [0, 8 * MIB, 16 * MIB] {
        let end = (offset + 8 * MIB).min(SIZE) as usize;
        let bytes = content[offset as usize..end].to_vec();
        let part = client.upload_file_part_by_id(session.id.as_str(), offset, SIZE, bytes).unwrap().part.unwrap();
        assert_eq!(part.offset, offset);
        parts.push(part);
    }
    let listed = client.list_upload_session_parts_by_id(session.id.as_str(), None, None).unwrap();
    assert_eq!(listed.total_count, Some(3));
    let page = client.list_upload_session_parts_by_id(session.id.as_str(), Some(1), Some(1)).unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].offset, 8 * MIB);

    let digest = Sha1Digest::of(&content);
    match client.commit_upload_session_by_id(session.id.as_str(), parts, digest, None, None).unwrap() {
        CommitResponse::Committed(files) => {
            let file = &files.entries[0];
            assert_eq!(emu.file_content(&file.id).unwrap(), content);
        }
        other => panic!("{other:?}"),
    }

    // Abort, then the session is gone.
    let doomed = client.create_upload_session(folder.as_str(), "doomed.bin", SIZE).unwrap();
    client.delete_upload_session_by_id(doomed.id.as_str()).unwrap();
    let err = client.get_upload_session_by_id(doomed.id.as_str()).unwrap_err();
    assert_eq!(err.box_code(), Some("not_found"), "{err}");

    // A new version of the committed file, renamed.
    let file = emu.find_file(&folder, "ops.bin").unwrap();
    let v2 = client.create_upload_session_for_file(file.id.as_str(), SIZE, Some("ops-v2.bin".into())).unwrap();
    assert_eq!(v2.total_parts, Some(3));
}

#[test]
fn the_single_operations_by_url() {
    let emu = emulator(8 * MIB, Faults::none());
    let folder = emu.create_folder("urls").unwrap();
    let client = client(&emu, 2);
    let content = common::bytes(SIZE, 22);
    let session = client.create_upload_session(folder.as_str(), "u.bin", SIZE).unwrap();
    let endpoints = session.session_endpoints.clone().unwrap();
    let got = client.get_upload_session_by_url(endpoints.status.clone().unwrap()).unwrap();
    assert_eq!(got.id, session.id);
    let mut parts = Vec::new();
    for offset in [16 * MIB, 0, 8 * MIB] {
        let end = (offset + 8 * MIB).min(SIZE) as usize;
        let bytes = content[offset as usize..end].to_vec();
        let uploaded =
            client.upload_file_part_by_url(endpoints.upload_part.clone().unwrap(), offset, SIZE, bytes).unwrap();
        parts.push(uploaded.part.unwrap());
    }
    let listed =
        client.list_upload_session_parts_by_url(endpoints.list_parts.clone().unwrap(), Some(0), Some(1000)).unwrap();
    assert_eq!(listed.entries.len(), 3);
    let digest = Sha1Digest::of(&content);
    match client.commit_upload_session_by_url(endpoints.commit.clone().unwrap(), parts, digest, None, None).unwrap() {
        CommitResponse::Committed(files) => assert_eq!(files.entries[0].size, Some(SIZE)),
        other => panic!("{other:?}"),
    }
    let other = client.create_upload_session(folder.as_str(), "gone.bin", SIZE).unwrap();
    client.delete_upload_session_by_url(other.session_endpoints.unwrap().abort.unwrap()).unwrap();
    assert_eq!(emu.session_ids().len(), 0);
    assert_eq!(emu.counters().requests(Op::Abort), 1);
}

#[test]
fn a_commit_answered_202_comes_back_as_not_ready() {
    let faults =
        Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitPending { retry_after: Some(3) });
    let emu = emulator(8 * MIB, faults);
    let client = client(&emu, 1);
    let content = common::bytes(SIZE, 23);
    let s = client.create_upload_session("0", "p.bin", SIZE).unwrap();
    let mut parts = Vec::new();
    for offset in [0, 8 * MIB, 16 * MIB] {
        let end = (offset + 8 * MIB).min(SIZE) as usize;
        parts.push(
            client
                .upload_file_part_by_id(s.id.as_str(), offset, SIZE, content[offset as usize..end].to_vec())
                .unwrap()
                .part
                .unwrap(),
        );
    }
    let digest = Sha1Digest::of(&content);
    match client.commit_upload_session_by_id(s.id.as_str(), parts.clone(), digest, None, None).unwrap() {
        CommitResponse::NotReady { retry_after } => assert_eq!(retry_after, Some(std::time::Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.commit_upload_session_by_id(s.id.as_str(), parts, digest, None, None).unwrap(),
        CommitResponse::Committed(_)
    ));
}

#[test]
fn a_redirect_is_never_followed() {
    let faults = Faults::none().rule(
        Op::GetSession,
        Trigger::Always,
        FaultAction::Redirect { location: "http://127.0.0.1:9/elsewhere".into() },
    );
    let emu = emulator(8 * MIB, faults);
    let client = client(&emu, 1);
    let s = client.create_upload_session("0", "r.bin", SIZE).unwrap();
    let err = client.get_upload_session_by_id(s.id.as_str()).unwrap_err();
    assert!(err.core().is_some(), "{err}");
    assert_eq!(emu.counters().requests(Op::GetSession), 1, "not retried, not followed: {err}");
}

#[test]
fn an_endless_body_is_cut_at_the_bound() {
    let faults = Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::HugeBody { len: u64::MAX });
    let emu = emulator(8 * MIB, faults);
    let client = Client::builder()
        .upload_base(emu.upload_base_url())
        .developer_token("test-token")
        .retry_policy(common::fast_retries())
        .max_response_bytes(64 * 1024)
        .build()
        .unwrap();
    let s = client.create_upload_session("0", "h.bin", SIZE).unwrap();
    let err = client.get_upload_session_by_id(s.id.as_str()).unwrap_err();
    match err.core() {
        Some(box_upload_core::Error::Transport { source, .. }) => {
            assert_eq!(source.kind, TransportErrorKind::BodyTooLarge, "{err}")
        }
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
}

#[test]
fn run_and_drive_take_any_operation_or_machine() {
    let emu = emulator(8 * MIB, Faults::none());
    let client = client(&emu, 1);
    let s = client.create_upload_session("0", "m.bin", SIZE).unwrap();
    let got = client.run(GetUploadSession::by_id(s.id.clone())).unwrap();
    assert_eq!(got.id, s.id);
    let mut call = client.core().call(GetUploadSession::by_id(s.id.clone()));
    assert_eq!(client.drive(&mut call).unwrap().id, s.id);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn requests_are_traced_without_the_token() {
    let token = "very-secret-token-value";
    let emu = box_upload_conformance::Emulator::builder().token(token).start_blocking().unwrap();
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let client = Client::builder().upload_base(emu.upload_base_url()).developer_token(token).build().unwrap();
        let s = client.create_upload_session("0", "t.bin", SIZE).unwrap();
        client.upload_file_part_by_id(s.id.as_str(), 0, SIZE, common::bytes(8 * MIB, 24)).unwrap();
        let _ = client.get_upload_session_by_id("0000").unwrap_err();
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("upload part") && logs.contains("status=200"), "{logs}");
    assert!(logs.contains("/api/2.0/files/upload_sessions"), "{logs}");
    assert!(logs.contains("status=404"), "{logs}");
    assert!(!logs.contains(token), "the token leaked into the logs:\n{logs}");
    assert!(!logs.to_ascii_lowercase().contains("bearer"), "{logs}");
}
