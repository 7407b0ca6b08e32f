//! Faults, new versions, resume, a changing source, and Client Credentials against the emulator.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_hyper::core::{ApiError, Error as CoreError};
use box_upload_hyper::{
    BoxSubject, CancelToken, Client, ClientCredentials, Error, ResumeOptions, Source, SourceError, UploadOptions,
    UploadRequest,
};
use common::{builder, client, file, init_tracing, same_content, MIB};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn api_status(e: &Error) -> Option<u16> {
    match e.core()? {
        CoreError::Api(ApiError { status, .. }) => Some(*status),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_survived_byte_exact() {
    init_tracing();
    let faults = Faults::none()
        .rule(Op::UploadPart, Trigger::Probability(0.05), FaultAction::Status { status: 500, retry_after: None })
        .rule(Op::UploadPart, Trigger::Probability(0.02), FaultAction::Status { status: 429, retry_after: Some(1) })
        .rule(Op::UploadPart, Trigger::Probability(0.02), FaultAction::CutBody)
        .rule(Op::UploadPart, Trigger::Probability(0.02), FaultAction::DropAnswer)
        .rule(Op::Commit, Trigger::FirstN(3), FaultAction::CommitPending { retry_after: Some(1) });
    let emu = Emulator::builder().part_size(MIB).faults(faults).seed(11).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let size = 64 * MIB + 1;
    let path = file(dir.path(), "f.bin", size, 21);
    let client = client(&emu);
    let request = UploadRequest::new_file("0", "f.bin", 0).parts_in_flight(6);
    let uploaded = client.upload(Source::file(&path), request).await.unwrap();
    let stored = emu.file_info(&uploaded.id).unwrap();
    assert!(same_content(&path, stored.path().expect("on disk")));
    let c = emu.counters();
    assert!(c.faults_injected >= 5, "faults injected: {}", c.faults_injected);
    assert!(c.requests(Op::UploadPart) > 65, "parts were retried");
    assert_eq!(c.requests(Op::Commit), 4, "three 202s, then the commit");
    assert_eq!(c.commits, 1);
    assert!(emu.session_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_faults_fail_clearly_and_abort_the_session() {
    init_tracing();
    let faults =
        Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Status { status: 500, retry_after: None });
    let emu = Emulator::builder().part_size(5 * MIB).faults(faults).start().await.unwrap();
    let client = client(&emu);
    let data = common::bytes(20_000_001, 3);
    let err = client.upload(Source::bytes(data), UploadRequest::new_file("0", "x.bin", 0)).await.unwrap_err();
    assert_eq!(api_status(&err), Some(500), "{err}");
    let c = emu.counters();
    assert_eq!(c.requests(Op::Abort), 1, "the session was aborted");
    assert!(emu.session_ids().is_empty(), "no live session");
    assert_eq!(c.commits, 0);
    assert!(emu.find_file("0", "x.bin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_version_with_if_match() {
    init_tracing();
    let emu = Emulator::builder().part_size(8 * MIB).start().await.unwrap();
    let original = emu.create_file("0", "doc.bin", b"first version").unwrap();
    let client = client(&emu);
    let v2 = common::bytes(20_000_001, 5);
    let request = UploadRequest::new_version(original.id.clone(), 0).if_match(original.etag.clone());
    let uploaded = client.upload(Source::bytes(v2.clone()), request).await.unwrap();
    assert_eq!(uploaded.id, original.id);
    assert_eq!(emu.file_content(&original.id).unwrap(), v2);
    let after = emu.file_info(&original.id).unwrap();
    assert_ne!(after.etag, original.etag);

    // The stale etag: Box answers 412 and nothing changes.
    let v3 = common::bytes(20_000_001, 6);
    let stale = UploadRequest::new_version(original.id.clone(), 0).if_match(original.etag.clone());
    let err = client.upload(Source::bytes(v3), stale).await.unwrap_err();
    assert_eq!(api_status(&err), Some(412), "{err}");
    let unchanged = emu.file_info(&original.id).unwrap();
    assert_eq!((unchanged.etag, unchanged.sha1), (after.etag, after.sha1));
    assert_eq!(emu.file_content(&original.id).unwrap(), v2);
    assert!(emu.session_ids().is_empty(), "the refused session was aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_keep_session_then_resume_sends_only_missing_parts() {
    init_tracing();
    let emu = Emulator::builder().part_size(MIB).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 20_000_001;
    let total_parts = size.div_ceil(MIB);
    let path = file(dir.path(), "r.bin", size, 8);
    let checkpoint = dir.path().join("r.checkpoint.json");
    let client = builder(&emu).parts_in_flight(2).build().unwrap();

    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let options = UploadOptions::new()
        .checkpoint_file(&checkpoint)
        .cancel_token(cancel)
        .keep_session_on_cancel(true)
        .on_progress(move |p| {
            if p.parts_acknowledged >= 6 {
                trigger.cancel();
            }
        });
    let err = client.upload_with(Source::file(&path), UploadRequest::new_file("0", "r.bin", 0), options).await;
    let err = err.unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(emu.session_ids().len(), 1, "the session was kept");
    assert_eq!(emu.counters().requests(Op::Abort), 0);
    let saved = box_upload_hyper::load_checkpoint(&checkpoint).unwrap();
    assert!(saved.parts.len() >= 6, "checkpoint has {} parts", saved.parts.len());
    assert!((saved.parts.len() as u64) < total_parts);

    // What Box holds now (a part in flight at the cancel may have landed after the checkpoint).
    let listed = client.list_upload_session_parts_by_id(&saved.session.id, None, Some(1000)).await.unwrap();
    let stored = listed.entries.len() as u64;
    let sent_before = emu.counters().requests(Op::UploadPart);

    let read = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&read);
    let options = UploadOptions::new().on_progress(move |p| seen.store(p.bytes_read, Ordering::Relaxed));
    let uploaded =
        client.resume_with(checkpoint.as_path(), Source::file(&path), ResumeOptions::default(), options).await.unwrap();
    let sent = emu.counters().requests(Op::UploadPart) - sent_before;
    assert_eq!(sent, total_parts - stored, "only the missing parts were sent");
    assert_eq!(read.load(Ordering::Relaxed), size, "every byte was read (held parts are checked)");
    assert!(same_content(&path, emu.file_info(&uploaded.id).unwrap().path().expect("on disk")));
    assert!(!checkpoint.exists(), "the checkpoint is removed after the commit");
    assert!(emu.session_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_another_file() {
    init_tracing();
    let emu = Emulator::builder().part_size(MIB).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "a.bin", 20_000_001, 9);
    let checkpoint = dir.path().join("a.checkpoint.json");
    let client = builder(&emu).parts_in_flight(1).build().unwrap();
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let options = UploadOptions::new()
        .checkpoint_file(&checkpoint)
        .cancel_token(cancel)
        .keep_session_on_cancel(true)
        .on_progress(move |p| {
            if p.parts_acknowledged >= 1 {
                trigger.cancel();
            }
        });
    let err = client.upload_with(Source::file(&path), UploadRequest::new_file("0", "a.bin", 0), options).await;
    assert!(err.unwrap_err().is_cancelled());
    let other = file(dir.path(), "b.bin", 20_000_001, 10);
    let err = client.resume(checkpoint.as_path(), Source::file(&other), ResumeOptions::default()).await.unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(_))), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_without_keep_aborts_the_session() {
    init_tracing();
    let emu = Emulator::builder().part_size(MIB).start().await.unwrap();
    let client = builder(&emu).parts_in_flight(2).build().unwrap();
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let options = UploadOptions::new().cancel_token(cancel).on_progress(move |p| {
        if p.parts_acknowledged >= 2 {
            trigger.cancel();
        }
    });
    let data = common::bytes(20_000_001, 12);
    let err = client.upload_with(Source::bytes(data), UploadRequest::new_file("0", "c.bin", 0), options).await;
    assert!(err.unwrap_err().is_cancelled());
    assert_eq!(emu.counters().requests(Op::Abort), 1);
    assert!(emu.session_ids().is_empty());
}

async fn changing_source(change: fn(&std::path::Path)) {
    init_tracing();
    let emu = Emulator::builder().part_size(MIB).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "grow.bin", 20_000_001, 13);
    let client = builder(&emu).parts_in_flight(2).build().unwrap();
    let changed = Arc::new(AtomicBool::new(false));
    let target = path.clone();
    let options = UploadOptions::new().on_progress(move |p| {
        if p.parts_acknowledged >= 3 && !changed.swap(true, Ordering::SeqCst) {
            change(&target);
        }
    });
    let err = client.upload_with(Source::file(&path), UploadRequest::new_file("0", "grow.bin", 0), options).await;
    let err = err.unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Source(SourceError::Changed(_)))), "{err}");
    let c = emu.counters();
    assert_eq!(c.requests(Op::Commit), 0, "nothing committed");
    assert_eq!(c.requests(Op::Abort), 1);
    assert!(emu.session_ids().is_empty());
    assert!(emu.find_file("0", "grow.bin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_that_grows_during_upload_is_refused() {
    changing_source(|p| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(b"more").unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_rewritten_during_upload_is_refused() {
    changing_source(|p| {
        // Same size, new bytes: only the modification time tells.
        std::thread::sleep(Duration::from_millis(5));
        std::fs::write(p, common::bytes(20_000_001, 14)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_and_a_token_that_expires_mid_upload() {
    init_tracing();
    let emu = Arc::new(
        Emulator::builder().part_size(MIB).client_credentials("cid", "csecret").token("unused").start().await.unwrap(),
    );
    let credentials = ClientCredentials::new("cid", "csecret", BoxSubject::Enterprise("1".into()))
        .with_token_url(&emu.token_url())
        .unwrap();
    let client = Client::builder()
        .upload_base(emu.upload_base_url())
        .client_credentials(credentials)
        .retry_policy(common::fast_retries())
        .parts_in_flight(2)
        .build()
        .unwrap();
    let expired = Arc::new(AtomicBool::new(false));
    let clock = Arc::clone(&emu);
    let options = UploadOptions::new().on_progress(move |p| {
        // Box's clock jumps past the token's hour: the next requests get 401.
        if p.parts_acknowledged >= 5 && !expired.swap(true, Ordering::SeqCst) {
            clock.advance_clock(Duration::from_secs(2 * 3600));
        }
    });
    let data = common::bytes(20_000_001, 15);
    let uploaded =
        client.upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "ccg.bin", 0), options).await;
    let uploaded = uploaded.unwrap();
    assert_eq!(emu.file_content(&uploaded.id).unwrap(), data);
    assert!(emu.counters().requests(Op::Token) >= 2, "the token was fetched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_refused() {
    init_tracing();
    let emu = Emulator::builder().client_credentials("cid", "csecret").start().await.unwrap();
    let credentials = ClientCredentials::new("cid", "wrong", BoxSubject::Enterprise("1".into()))
        .with_token_url(&emu.token_url())
        .unwrap();
    let client = Client::builder().upload_base(emu.upload_base_url()).client_credentials(credentials).build().unwrap();
    let err = client.create_upload_session("0", "x.bin", 20_000_000).await.unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Auth(_))), "{err}");
    assert_eq!(emu.counters().requests(Op::CreateSession), 0, "nothing sent without a token");
}
