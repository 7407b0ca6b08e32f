//! The transport's own duties: bounded bodies, no redirects, timeouts, error kinds, keep-alive,
//! and logs that never show the token.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_hyper::core::{Error as CoreError, ProtocolError, TransportErrorKind};
use box_upload_hyper::{Client, Error, RetryPolicy, Source, UploadRequest};
use common::{builder, client, MIB};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn transport_kind(e: &Error) -> Option<TransportErrorKind> {
    match e.core()? {
        CoreError::Transport { source, .. } => Some(source.kind),
        _ => None,
    }
}

fn no_retries() -> RetryPolicy {
    RetryPolicy { max_retries: 0, ..common::fast_retries() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_bodies_are_bounded() {
    let faults = Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::HugeBody { len: u64::MAX });
    let emu = Emulator::builder().faults(faults).start().await.unwrap();
    let client = builder(&emu).max_response_bytes(64 * 1024).build().unwrap();
    let err = client.get_upload_session_by_id("ABCDEF").await.unwrap_err();
    assert_eq!(transport_kind(&err), Some(TransportErrorKind::BodyTooLarge), "{err}");
    assert_eq!(emu.counters().requests(Op::GetSession), 1, "a body too large is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let elsewhere = Emulator::builder().start().await.unwrap();
    let location = format!("{}/2.0/files/upload_sessions/ABCDEF", elsewhere.upload_base_url());
    let faults = Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::Redirect { location });
    let emu = Emulator::builder().faults(faults).start().await.unwrap();
    let err = client(&emu).get_upload_session_by_id("ABCDEF").await.unwrap_err();
    assert!(
        matches!(err.core(), Some(CoreError::Protocol(ProtocolError::UnexpectedStatus { status: 302, .. }))),
        "{err}"
    );
    assert_eq!(elsewhere.counters().total_requests(), 0, "nothing went to the Location");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out() {
    let faults = Faults::none().rule(Op::GetSession, Trigger::Always, FaultAction::Delay(Duration::from_secs(5)));
    let emu = Emulator::builder().faults(faults).start().await.unwrap();
    let client = builder(&emu).retry_policy(no_retries()).idle_timeout(Duration::from_millis(300)).build().unwrap();
    let started = std::time::Instant::now();
    let err = client.get_upload_session_by_id("ABCDEF").await.unwrap_err();
    assert_eq!(transport_kind(&err), Some(TransportErrorKind::Timeout), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let client = builder(&emu).retry_policy(no_retries()).overall_timeout(Duration::from_millis(300)).build().unwrap();
    let err = client.get_upload_session_by_id("ABCDEF").await.unwrap_err();
    assert_eq!(transport_kind(&err), Some(TransportErrorKind::Timeout), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_connect_errors() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = Client::builder()
        .upload_base(format!("http://127.0.0.1:{port}/api"))
        .developer_token("t")
        .retry_policy(no_retries())
        .build()
        .unwrap();
    let err = client.get_upload_session_by_id("ABCDEF").await.unwrap_err();
    assert_eq!(transport_kind(&err), Some(TransportErrorKind::Connect), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_refuses_bad_input() {
    assert!(matches!(Client::builder().build(), Err(Error::Config(_))));
    let err = Client::builder().developer_token("t").upload_base("ftp://x").build().unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(_))), "{err}");
    let err = Client::builder().developer_token("t").parts_in_flight(0).build().unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(_))), "{err}");
    // The default (Box over HTTPS) builds: rustls is set up.
    Client::builder().developer_token("t").build().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_must_match_the_source() {
    let emu = Emulator::builder().start().await.unwrap();
    let err = client(&emu)
        .upload(Source::bytes(vec![0u8; 20_000_001]), UploadRequest::new_file("0", "s.bin", 20_000_002))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Core(box_upload_core::Error::Input(box_upload_core::InputError::SizeMismatch { declared: 20_000_002, actual: 20_000_001 }))), "{err}");
    let err = client(&emu)
        .upload(Source::file("/nonexistent/box-upload-test"), UploadRequest::new_file("0", "s.bin", 0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SourceOpen { .. }), "{err}");
    assert_eq!(emu.counters().total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_early_is_refused() {
    let emu = Emulator::builder().part_size(5 * MIB).start().await.unwrap();
    let short = std::io::Cursor::new(vec![1u8; 20_000_000]);
    let err = client(&emu)
        .upload(Source::reader(short), UploadRequest::new_file("0", "s.bin", 20_000_001))
        .await
        .unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Source(_))), "{err}");
    assert_eq!(emu.counters().commits, 0);
    assert!(emu.session_ids().is_empty());
}

/// Dropping the upload future stops every request: nothing more reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_future_stops_the_upload() {
    let faults = Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Delay(Duration::from_millis(100)));
    let emu = Emulator::builder().part_size(MIB).faults(faults).start().await.unwrap();
    let client = builder(&emu).parts_in_flight(2).build().unwrap();
    let upload = client.upload(Source::bytes(vec![7u8; 20_000_001]), UploadRequest::new_file("0", "d.bin", 0));
    assert!(tokio::time::timeout(Duration::from_millis(350), upload).await.is_err());
    let sent = emu.counters().requests(Op::UploadPart);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(emu.counters().requests(Op::UploadPart), sent, "no request after the drop");
    assert!(sent < 20);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every request is traced (method, kind, path, status), and the token and client secret never
/// appear in the logs, even at the most verbose level.
#[tokio::test]
async fn traces_requests_without_the_token() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let token = "SECRET-token-7f3a9c";
    let emu = Emulator::builder().token(token).client_credentials("cid", "SECRET-client-secret").start().await.unwrap();
    let client = Client::builder().upload_base(emu.upload_base_url()).developer_token(token).build().unwrap();
    client.upload(Source::bytes(vec![3u8; 20_000_001]), UploadRequest::new_file("0", "t.bin", 0)).await.unwrap();
    let credentials = box_upload_hyper::ClientCredentials::new(
        "cid",
        "SECRET-client-secret",
        box_upload_hyper::BoxSubject::Enterprise("1".into()),
    )
    .with_token_url(&emu.token_url())
    .unwrap();
    let ccg = Client::builder().upload_base(emu.upload_base_url()).client_credentials(credentials).build().unwrap();
    ccg.create_upload_session("0", "u.bin", 20_000_000).await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("box_request"), "{logs}");
    assert!(logs.contains("kind=upload part"), "{logs}");
    assert!(logs.contains("kind=token request"), "{logs}");
    assert!(logs.contains("status=201"), "{logs}");
    assert!(logs.contains("elapsed_ms"), "{logs}");
    assert!(!logs.contains("SECRET"), "a secret was logged");
}
