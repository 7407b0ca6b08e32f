//! Field networks (issue 14), the same in both wires: uploads over TLS to the emulator's own CA,
//! a certificate error that names the host at once, uploads through a `CONNECT` proxy that sees
//! only `CONNECT` lines and never the token, proxy credentials that go to the proxy alone and
//! are never logged, loopback never proxied unless asked, a proxy that is down named in the
//! error, and plain `http://` refused off loopback.

use crate::connect_proxy::ConnectProxy;
use crate::harness::{
    both, build, bytes, call, fast_retries, transport_failure, Captured, Harness, Kind, Rig, MIN_SIZE,
};
use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::{Error as CoreError, InputError, RetryPolicy, TransportErrorKind, UploadRequest};
use box_upload_driver::{Error, Proxy, ProxySetting, Source, UploadOptions};
use std::time::{Duration, Instant};

both!(
    uploads_over_tls_trusting_the_emulator_ca,
    tls_without_the_ca_fails_at_once_naming_the_host,
    uploads_through_a_connect_proxy_that_sees_only_connect_lines,
    proxy_credentials_go_to_the_proxy_alone_and_are_never_logged,
    loopback_is_never_proxied_unless_asked,
    a_proxy_that_is_down_is_a_connect_error_naming_it,
    plain_http_off_loopback_is_refused_unless_allowed,
    a_proxy_url_that_is_not_http_is_refused_at_build,
    a_trickling_answer_is_cut_at_the_request_deadline,
    the_whole_upload_can_have_a_deadline,
);

fn tls_emulator(kind: Kind) -> Harness {
    Harness::start(kind, Emulator::builder().tls(true).part_size(8 << 20))
}

fn few_retries() -> RetryPolicy {
    RetryPolicy { max_retries: 2, ..fast_retries() }
}

fn uploads_over_tls_trusting_the_emulator_ca(kind: Kind) {
    let h = tls_emulator(kind);
    assert!(h.emu.upload_base_url().starts_with("https://127.0.0.1:"), "{}", h.emu.upload_base_url());
    let ca = h.emu.ca_path().unwrap().to_path_buf();
    assert!(std::fs::read_to_string(&ca).unwrap().contains("BEGIN CERTIFICATE"));
    let client = crate::harness::client!(&h, |b| b.ca_file(&ca));
    let data = bytes(MIN_SIZE, 14);
    let file = call!(client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "tls.bin", 0))).unwrap();
    h.assert_stored(&file.id, &data);
    assert!(h.emu.counters().parts_stored >= 3);
}

fn tls_without_the_ca_fails_at_once_naming_the_host(kind: Kind) {
    let h = tls_emulator(kind);
    let started = Instant::now();
    let err = call!(h.client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Certificate, 1)), "not retried: {err}");
    let text = err.to_string();
    assert!(text.contains("certificate of 127.0.0.1 was refused"), "{text}");
    assert!(text.contains("UnknownIssuer"), "says why: {text}");
    assert!(text.contains("--ca-file"), "says what to do: {text}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(h.emu.counters().total_requests(), 0, "no request got through");
    // A CA file that holds no certificate is refused when the client is built.
    let bogus = h.path("bogus.pem");
    std::fs::write(&bogus, "-----BEGIN NOTHING-----\n").unwrap();
    let err = build!(&h.rig, |b| crate::harness::defaults(b, &h.emu).ca_file(&bogus)).unwrap_err();
    assert!(matches!(&err, Error::Tls(m) if m.contains("bogus.pem")), "{err}");
}

fn uploads_through_a_connect_proxy_that_sees_only_connect_lines(kind: Kind) {
    let h = tls_emulator(kind);
    let proxy = ConnectProxy::start();
    let ca = h.emu.ca_path().unwrap().to_path_buf();
    let client = crate::harness::client!(&h, |b| b.ca_file(&ca).proxy(proxy.url()).proxy_loopback(true));
    let data = bytes(MIN_SIZE, 15);
    let file = call!(client, upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "proxied.bin", 0)));
    let file = file.unwrap();
    h.assert_stored(&file.id, &data);
    let lines = proxy.request_lines();
    let expected = format!("CONNECT {} HTTP/1.1", h.emu.addr());
    assert!(!lines.is_empty(), "nothing went through the proxy");
    assert!(lines.iter().all(|l| *l == expected), "only CONNECT lines: {lines:?}");
    assert!(proxy.relayed_bytes() as u64 > MIN_SIZE, "the parts went through the tunnel");
    assert!(!proxy.saw("test-token"), "the proxy saw the token");
    assert!(!proxy.saw("Bearer") && !proxy.saw("upload_sessions"), "the proxy saw a request in clear");
    // No Proxy-Authorization without credentials.
    assert!(proxy.heads().iter().flatten().all(|l| !l.to_ascii_lowercase().starts_with("proxy-authorization")));
}

fn proxy_credentials_go_to_the_proxy_alone_and_are_never_logged(kind: Kind) {
    let captured = Captured::default();
    let sink = captured.clone();
    let dispatch = crate::harness::dispatch(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    );
    let rig = Rig::traced(kind, dispatch.clone());
    let emu = rig.block_on(Emulator::builder().tls(true).start()).unwrap();
    let proxy = ConnectProxy::start();
    let url = format!("http://alice:Pr0xy%2DS3cret@{}", proxy.addr());
    let expected = Proxy::parse(&url).unwrap().authorization().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let client = build!(&rig, |b| crate::harness::defaults(b, &emu)
            .ca_file(emu.ca_path().unwrap())
            .proxy(url.clone())
            .proxy_loopback(true))
        .unwrap();
        assert!(!format!("{client:?}").contains("S3cret"), "Debug of the client");
        call!(client, create_upload_session("0", "c.bin", MIN_SIZE)).unwrap();
    });
    let heads = proxy.heads();
    assert!(!heads.is_empty());
    for head in &heads {
        let auth: Vec<&String> =
            head.iter().filter(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:")).collect();
        assert_eq!(auth.len(), 1, "{head:?}");
        assert_eq!(auth[0].split_once(':').unwrap().1.trim(), expected.to_str().unwrap());
    }
    assert_eq!(emu.counters().requests(Op::CreateSession), 1);
    let logs = captured.text();
    assert!(logs.contains("box_request"), "{logs}");
    assert!(
        logs.contains(&format!("proxy=http://{}", proxy.addr())),
        "the proxy is logged, without credentials: {logs}"
    );
    assert!(!logs.contains("S3cret") && !logs.contains("alice"), "credentials were logged:\n{logs}");
    assert!(!logs.contains(&expected.to_str().unwrap()["Basic ".len()..]), "encoded credentials were logged");
}

fn loopback_is_never_proxied_unless_asked(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder());
    let proxy = ConnectProxy::start();
    let client = crate::harness::client!(&h, |b| b.proxy(proxy.url()));
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(err.box_code(), Some("not_found"), "answered directly: {err}");
    assert!(proxy.heads().is_empty(), "{:?}", proxy.heads());
    // A proxy that is down does not matter either.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let client = crate::harness::client!(&h, |b| b.proxy(dead));
    assert_eq!(call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err().box_code(), Some("not_found"));
    // Direct ignores any proxy; asked, loopback goes through the proxy (plain http is tunnelled too).
    let client = crate::harness::client!(&h, |b| b.proxy_setting(ProxySetting::Direct).proxy_loopback(true));
    assert_eq!(call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err().box_code(), Some("not_found"));
    let client = crate::harness::client!(&h, |b| b.proxy(proxy.url()).proxy_loopback(true));
    assert_eq!(call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err().box_code(), Some("not_found"));
    assert_eq!(proxy.request_lines(), vec![format!("CONNECT {} HTTP/1.1", h.emu.addr())]);
}

fn a_proxy_that_is_down_is_a_connect_error_naming_it(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder());
    let dead = format!("http://u:hidden-pass@127.0.0.1:{}", free_port());
    let client = crate::harness::client!(&h, |b| b.proxy(dead).proxy_loopback(true).retry_policy(few_retries()));
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Connect, 3)), "{err}");
    let text = err.to_string();
    assert!(text.contains("through proxy http://127.0.0.1:"), "{text}");
    assert!(!text.contains("hidden-pass"), "{text}");
    assert_eq!(h.emu.counters().total_requests(), 0);
}

fn plain_http_off_loopback_is_refused_unless_allowed(kind: Kind) {
    let rig = Rig::new(kind);
    let err = build!(&rig, |b| b.developer_token("t").upload_base("http://uploads.example.org/api")).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::InsecureHttp(_)))), "{err}");
    build!(&rig, |b| b.developer_token("t").upload_base("http://uploads.example.org/api").allow_insecure_http(true))
        .unwrap();
    build!(&rig, |b| b.developer_token("t").upload_base("http://localhost:9/api")).unwrap();
}

fn a_proxy_url_that_is_not_http_is_refused_at_build(kind: Kind) {
    let rig = Rig::new(kind);
    for url in ["socks5://127.0.0.1:1080", "https://127.0.0.1:3128", "http://:3128"] {
        let err = build!(&rig, |b| b.developer_token("t").proxy(url)).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err}");
    }
}

fn a_trickling_answer_is_cut_at_the_request_deadline(kind: Kind) {
    // A byte every 50 ms: never idle for the 300 ms idle timeout, but 2 s for the answer.
    let server = trickle_server(40, Duration::from_millis(50));
    let rig = Rig::new(kind);
    let base = format!("http://{server}/api");
    let client = build!(&rig, |b| b
        .upload_base(base.clone())
        .developer_token("t")
        .idle_timeout(Duration::from_millis(300))
        .retry_policy(few_retries()))
    .unwrap();
    let started = Instant::now();
    let err = call!(client, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert_eq!(transport_failure(&err), Some((TransportErrorKind::Timeout, 3)), "retried, then a timeout: {err}");
    assert!(err.to_string().contains("deadline of 300"), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1800), "{:?}", started.elapsed());
    // Without the minimum rate the trickle gets through (and is not JSON).
    let lenient = build!(&rig, |b| b
        .upload_base(base.clone())
        .developer_token("t")
        .idle_timeout(Duration::from_millis(300))
        .min_transfer_rate(0)
        .retry_policy(few_retries()))
    .unwrap();
    let err = call!(lenient, get_upload_session_by_id("ABCDEF")).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Protocol(_))), "{err}");
}

fn the_whole_upload_can_have_a_deadline(kind: Kind) {
    let stalled = Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Delay(Duration::from_secs(5)));
    let h = Harness::start(kind, Emulator::builder().part_size(8 << 20).faults(stalled));
    let deadline = Duration::from_millis(400);
    let options = UploadOptions::new().deadline(deadline);
    let started = Instant::now();
    let err = call!(
        h.client,
        upload_with(Source::bytes(bytes(MIN_SIZE, 16)), UploadRequest::new_file("0", "late.bin", 0), options)
    )
    .unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded { deadline: d } if d == deadline), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "stopped at the deadline: {:?}", started.elapsed());
    assert_eq!(h.emu.counters().requests(Op::Abort), 1, "the session is aborted");
    h.assert_nothing_committed("late.bin");
}

/// A loopback HTTP server that answers every request 200 with a `len`-byte body sent one byte
/// every `every` (at most 8 connections, then it stops).
fn trickle_server(len: usize, every: Duration) -> std::net::SocketAddr {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                if read_head(&mut stream).is_none() {
                    return;
                }
                let answer =
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n");
                if stream.write_all(answer.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..len {
                    std::thread::sleep(every);
                    if stream.write_all(b"x").is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A request's head read from `stream` a byte at a time (so nothing of the body is taken), at
/// most 16 KiB; `None` when the client closed first.
pub(crate) fn read_head(stream: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// A port nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
