//! What each wire must do the same way: time out a server that stalls (idle and overall
//! timeouts, retried as the policy says, then a transport timeout error), name a refused
//! connection, never follow a redirect, bound an answer's body, refuse a bad configuration, and
//! log requests without the token.

use crate::harness::{
    both, build, bytes, call, client, fast_retries, transport_failure, Captured, Harness, Kind, Rig, MIB, MIN_SIZE,
};
use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::{
    BoxSubject, ClientCredentials, Error as CoreError, InputError, ProtocolError, RequestKind, RetryPolicy,
    TransportErrorKind, UploadRequest,
};
use box_upload_driver::{Error, Source};
use std::time::{Duration, Instant};

both!(
    a_stalled_answer_hits_the_idle_timeout_after_the_retries,
    a_stalled_part_fails_the_upload_with_a_timeout_and_aborts_the_session,
    a_slow_answer_hits_the_overall_timeout,
    a_refused_connection_is_a_connect_error_after_the_retries,
    redirects_are_answers_never_followed,
    answer_bodies_are_bounded,
    the_builder_refuses_a_bad_configuration,
    requests_are_logged_without_the_token,
);

/// Two retries, 10 ms apart.
fn few_retries() -> RetryPolicy {
    RetryPolicy { max_retries: 2, ..fast_retries() }
}

fn stalled(op: Op) -> Faults {
    Faults::none().rule(op, Trigger::Always, FaultAction::Delay(Duration::from_secs(10)))
}

fn a_stalled_answer_hits_the_idle_timeout_after_the_retries(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().faults(stalled(Op::GetSession)));
    let idle = Duration::from_millis(200);
    let client = client!(&h, |b| b.idle_timeout(idle).retry_policy(few_retries()));
    let started = Instant::now();
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    let took = started.elapsed();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Timeout, 3)), "{err}");
    assert!(matches!(err.core(), Some(CoreError::Transport { kind: RequestKind::GetSession, .. })), "{err}");
    assert_eq!(h.emu.counters().requests(Op::GetSession), 3, "sent once and retried twice");
    assert!(took >= idle * 3, "each attempt waited for the idle timeout: {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

fn a_stalled_part_fails_the_upload_with_a_timeout_and_aborts_the_session(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(4 * MIB).faults(stalled(Op::UploadPart)));
    let client =
        client!(&h, |b| b.idle_timeout(Duration::from_millis(200)).retry_policy(few_retries()).parts_in_flight(2));
    let started = Instant::now();
    let err = call!(client, upload(Source::bytes(bytes(MIN_SIZE, 3)), UploadRequest::new_file("0", "stall.bin", 0)))
        .unwrap_err();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Timeout, 3)), "{err}");
    assert!(matches!(err.core(), Some(CoreError::Transport { kind: RequestKind::UploadPart, .. })), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let c = h.emu.counters();
    assert!(c.requests(Op::UploadPart) >= 3, "{}", c.requests(Op::UploadPart));
    assert_eq!(c.parts_stored, 0);
    assert_eq!(c.requests(Op::Abort), 1);
    h.assert_nothing_committed("stall.bin");
}

fn a_slow_answer_hits_the_overall_timeout(kind: Kind) {
    // Each answer comes after 1 s: an idle timeout of 30 s lets it, an overall one of 300 ms not.
    let slow = Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::Delay(Duration::from_secs(1)));
    let h = Harness::start(kind, Emulator::builder().faults(slow));
    let retries = RetryPolicy { max_retries: 0, ..fast_retries() };
    let client = client!(&h, |b| b.overall_timeout(Duration::from_millis(300)).retry_policy(retries.clone()));
    let started = Instant::now();
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Timeout, 1)), "{err}");
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    // Without it, the slow answer arrives (Box's 404 for an unknown session).
    let patient = client!(&h, |b| b.retry_policy(retries));
    let err = call!(patient, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(err.box_code(), Some("not_found"), "{err}");
}

fn a_refused_connection_is_a_connect_error_after_the_retries(kind: Kind) {
    let rig = Rig::new(kind);
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = build!(&rig, |b| b
        .upload_base(format!("http://127.0.0.1:{port}/api"))
        .developer_token("t")
        .retry_policy(few_retries()))
    .unwrap();
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Connect, 3)), "{err}");
}

fn redirects_are_answers_never_followed(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder());
    let elsewhere = h.rig.block_on(Emulator::builder().start()).unwrap();
    let location = format!("{}/2.0/files/upload_sessions/ABCDEF", elsewhere.upload_base_url());
    h.emu.set_faults(Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::Redirect { location }));
    let err = call!(h.client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert!(
        matches!(err.core(), Some(CoreError::Protocol(ProtocolError::UnexpectedStatus { status: 302, .. }))),
        "{err}"
    );
    assert_eq!(h.emu.counters().requests(Op::GetSession), 1, "not retried");
    assert_eq!(elsewhere.counters().total_requests(), 0, "nothing went to the Location");
}

fn answer_bodies_are_bounded(kind: Kind) {
    let endless = Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::HugeBody { len: u64::MAX });
    let h = Harness::start(kind, Emulator::builder().faults(endless));
    let client = client!(&h, |b| b.max_response_bytes(64 * 1024));
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(transport_failure(&err).map(|(kind, _)| kind), Some(TransportErrorKind::BodyTooLarge), "{err}");
    assert_eq!(h.emu.counters().requests(Op::GetSession), 1, "a body too large is not retried");
}

fn the_builder_refuses_a_bad_configuration(kind: Kind) {
    let rig = Rig::new(kind);
    assert!(matches!(build!(&rig, |b| b), Err(Error::Config(_))), "no token source");
    let err = build!(&rig, |b| b.developer_token("t").upload_base("ftp://x")).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::BadUrl(_)))), "{err}");
    let err = build!(&rig, |b| b.developer_token("t").parts_in_flight(0)).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::ZeroParallelism))), "{err}");
    // The defaults (Box over HTTPS) build: TLS is set up.
    build!(&rig, |b| b.developer_token("t")).unwrap();
}

/// Every request is logged (kind, method, path, status), and neither the token nor the client
/// secret appears in the logs, even at the most verbose level.
fn requests_are_logged_without_the_token(kind: Kind) {
    let captured = Captured::default();
    let sink = captured.clone();
    let dispatch = crate::harness::dispatch(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    );
    // The runtime's threads log there too (the emulator runs there, and hyper's requests).
    let rig = Rig::traced(kind, dispatch.clone());
    let token = "SECRET-token-7f3a9c";
    let emu = Emulator::builder().token(token).client_credentials("cid", "SECRET-client-secret").part_size(4 * MIB);
    let emu = rig.block_on(emu.start()).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let client =
            build!(&rig, |b| b.upload_base(emu.upload_base_url()).developer_token(token).chunked_from(MIN_SIZE))
                .unwrap();
        call!(client, upload(Source::bytes(bytes(MIN_SIZE, 3)), UploadRequest::new_file("0", "t.bin", 0))).unwrap();
        let err = call!(client, get_upload_session_by_id("0000")).unwrap_err();
        assert_eq!(err.box_code(), Some("not_found"));
        let credentials = ClientCredentials::new("cid", "SECRET-client-secret", BoxSubject::Enterprise("1".into()))
            .with_token_url(&emu.token_url())
            .unwrap();
        let ccg = build!(&rig, |b| b.upload_base(emu.upload_base_url()).client_credentials(credentials)).unwrap();
        call!(ccg, create_upload_session("0", "u.bin", MIN_SIZE)).unwrap();
    });
    let logs = captured.text();
    assert!(logs.contains("box_request"), "{logs}");
    assert!(logs.contains("kind=upload part"), "{logs}");
    assert!(logs.contains("kind=token request"), "{logs}");
    assert!(logs.contains("/api/2.0/files/upload_sessions"), "{logs}");
    assert!(logs.contains("status=201") && logs.contains("status=200") && logs.contains("status=404"), "{logs}");
    assert!(logs.contains("elapsed_ms"), "{logs}");
    assert!(!logs.contains("SECRET"), "a secret was logged:\n{logs}");
    assert!(!logs.to_ascii_lowercase().contains("bearer"), "{logs}");
}
