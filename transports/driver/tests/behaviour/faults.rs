//! The emulator's injected faults: an upload survives them byte for byte, retrying as the core
//! says; faults that never stop end with Box's error and the session aborted. Client Credentials:
//! a token that expires mid-upload is fetched again; refused credentials send nothing.

use crate::harness::{api_status, both, build, bytes, call, client, fast_retries, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::UploadRequest;
use box_upload_driver::core::{AuthError, BoxSubject, ClientCredentials, Error as CoreError, Event, RequestKind};
use box_upload_driver::{Source, UploadOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(
    an_upload_survives_injected_faults_byte_exact,
    endless_faults_end_with_boxs_error_and_the_session_aborted,
    a_client_credentials_token_expiring_mid_upload_is_fetched_again,
    refused_client_credentials_send_nothing,
);

fn one_shot(skip: u32) -> Trigger {
    Trigger::Window { skip, count: 1 }
}

fn an_upload_survives_injected_faults_byte_exact(kind: Kind) {
    // Each fault fires once, on a known request: 500, 429 with Retry-After, a body cut mid-way,
    // an answer dropped after the part was stored; a 503 to the session's creation; two 202s to
    // the commit.
    let faults = Faults::none()
        .rule(Op::CreateSession, Trigger::FirstN(1), FaultAction::Status { status: 503, retry_after: None })
        .rule(Op::UploadPart, one_shot(2), FaultAction::Status { status: 500, retry_after: None })
        .rule(Op::UploadPart, one_shot(6), FaultAction::Status { status: 429, retry_after: Some(1) })
        .rule(Op::UploadPart, one_shot(10), FaultAction::CutBody)
        .rule(Op::UploadPart, one_shot(14), FaultAction::DropAnswer)
        .rule(Op::Commit, Trigger::FirstN(2), FaultAction::CommitPending { retry_after: Some(1) });
    let part = MIB;
    let h = Harness::start(kind, Emulator::builder().part_size(part).faults(faults).seed(11));
    let size = MIN_SIZE + 1;
    let data = bytes(size, 31);
    let path = h.path("faulty.bin");
    std::fs::write(&path, &data).unwrap();
    let client = client!(&h, |b| b.parts_in_flight(4));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let options = UploadOptions::new().on_event(move |e| seen.lock().unwrap().push(e.clone()));
    let uploaded =
        call!(client, upload_with(Source::file(&path), UploadRequest::new_file("0", "faulty.bin", 0), options))
            .unwrap();
    h.assert_stored(&uploaded.id, &data);

    let c = h.emu.counters();
    let parts = size.div_ceil(part);
    assert_eq!(c.faults_injected, 7, "every fault fired once");
    assert_eq!(c.requests(Op::CreateSession), 2, "the 503 was retried");
    assert!(
        c.requests(Op::UploadPart) >= parts + 3,
        "the faulted parts were sent again: {}",
        c.requests(Op::UploadPart)
    );
    assert_eq!(c.requests(Op::Commit), 3, "two 202s, then the commit");
    assert_eq!(c.commits, 1);
    assert!(h.emu.session_ids().is_empty());

    let events = events.lock().unwrap();
    let retried = |kind: RequestKind| {
        events.iter().filter(|e| matches!(e, Event::Retrying { kind: k, .. } if *k == kind)).count()
    };
    assert_eq!(retried(RequestKind::CreateSession), 1);
    assert!(retried(RequestKind::UploadPart) >= 3, "retries of parts: {}", retried(RequestKind::UploadPart));
    let pending = events.iter().filter(|e| matches!(e, Event::CommitPending { .. })).count();
    assert_eq!(pending, 2);
    assert!(matches!(events.last(), Some(Event::Finished)), "{:?}", events.last());
}

fn endless_faults_end_with_boxs_error_and_the_session_aborted(kind: Kind) {
    let faults =
        Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Status { status: 503, retry_after: None });
    let h = Harness::start(kind, Emulator::builder().part_size(8 * MIB).faults(faults));
    let client = client!(&h, |b| b.parts_in_flight(2));
    let err = call!(client, upload(Source::bytes(bytes(MIN_SIZE, 4)), UploadRequest::new_file("0", "never.bin", 0)))
        .unwrap_err();
    assert_eq!(api_status(&err), Some(503), "{err}");
    let c = h.emu.counters();
    assert_eq!(c.requests(Op::Abort), 1, "the session was aborted");
    h.assert_nothing_committed("never.bin");
    // Bounded: each of the 3 parts is sent at most max_retries + 1 times, and at least one of
    // them that many times.
    let attempts = u64::from(fast_retries().max_retries) + 1;
    assert!(c.requests(Op::UploadPart) >= attempts, "{}", c.requests(Op::UploadPart));
    assert!(c.requests(Op::UploadPart) <= 3 * attempts, "{}", c.requests(Op::UploadPart));
}

fn credentials(emu: &Emulator, secret: &str) -> ClientCredentials {
    ClientCredentials::new("cid", secret, BoxSubject::Enterprise("1".into())).with_token_url(&emu.token_url()).unwrap()
}

fn a_client_credentials_token_expiring_mid_upload_is_fetched_again(kind: Kind) {
    let emu = Emulator::builder().part_size(MIB).client_credentials("cid", "csecret").token("unused");
    let h = Harness::start(kind, emu);
    let client = build!(&h.rig, |b| b
        .upload_base(h.emu.upload_base_url())
        .client_credentials(credentials(&h.emu, "csecret"))
        .retry_policy(fast_retries())
        .parts_in_flight(2)
        .chunked_from(MIN_SIZE))
    .unwrap();
    let data = bytes(MIN_SIZE, 15);
    let expired = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&expired);
    let emu = &h.emu;
    std::thread::scope(|s| {
        // Box's clock jumps past the token's hour while parts are in flight: the next requests
        // are answered 401, and the core fetches a new token and sends them again.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        s.spawn(move || {
            if rx.recv().is_ok() {
                emu.advance_clock(Duration::from_secs(2 * 3600));
                let _ = done_tx.send(());
            }
        });
        let tx = Mutex::new(tx);
        let done_rx = Mutex::new(done_rx);
        let options = UploadOptions::new().on_progress(move |p| {
            if p.parts_acknowledged >= 5 && !flag.swap(true, Ordering::SeqCst) {
                let _ = tx.lock().unwrap().send(());
                let _ = done_rx.lock().unwrap().recv();
            }
        });
        let uploaded = call!(
            client,
            upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "ccg.bin", 0), options)
        );
        h.assert_stored(&uploaded.unwrap().id, &data);
    });
    assert!(expired.load(Ordering::SeqCst));
    let c = h.emu.counters();
    assert!(c.requests(Op::Token) >= 2, "the token was fetched again: {} token requests", c.requests(Op::Token));
    assert_eq!(c.commits, 1);
}

fn refused_client_credentials_send_nothing(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().client_credentials("cid", "csecret"));
    let client = build!(&h.rig, |b| b
        .upload_base(h.emu.upload_base_url())
        .client_credentials(credentials(&h.emu, "wrong"))
        .retry_policy(fast_retries()))
    .unwrap();
    let err = call!(client, create_upload_session("0", "x.bin", MIN_SIZE)).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Auth(AuthError::Refused(_)))), "{err}");
    assert_eq!(h.emu.counters().requests(Op::CreateSession), 0, "nothing sent without a token");
    assert_eq!(h.emu.counters().requests(Op::Token), 1, "a refusal is not retried");
}
