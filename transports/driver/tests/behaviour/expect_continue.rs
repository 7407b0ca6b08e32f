//! `Expect: 100-continue`, the same in both wires, against a raw loopback server: by default only
//! a part sent again after a failure asks (the core adds the header), with `expect_continue(true)`
//! every part does; a body that asks waits for `100 Continue`; a final answer that comes first is read and the body never sent (a
//! server that answers early and closes would otherwise leave only a broken pipe); a server that
//! ignores `Expect` gets the body after [`EXPECT_CONTINUE_WAIT`].

use crate::harness::{both, build, call, fast_retries, Kind, Rig};
use box_upload_driver::core::{Error as CoreError, Sha1Digest};
use box_upload_driver::{Error, EXPECT_CONTINUE_WAIT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

both!(
    a_part_refused_before_100_continue_is_answered_and_its_body_never_sent,
    a_part_is_sent_as_soon_as_100_continue_comes,
    a_server_that_ignores_expect_gets_the_part_after_the_wait,
    with_expect_continue_off_the_part_goes_at_once_without_expect,
    by_default_only_a_part_sent_again_asks_for_100_continue,
);

const PART: usize = 256 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 416 `range_overlaps_existing_part` at once, then only listen (closed for writing).
    Refuse,
    /// `100 Continue`, then read the body and answer 200.
    Continue,
    /// No `100 Continue`: read the body when it comes and answer 200.
    Ignore,
    /// Read the body, then close without an answer (a lost answer).
    Lose,
}

/// What the server saw of the one request.
#[derive(Debug)]
struct Seen {
    expect: bool,
    /// Body bytes that arrived (in 1.5 s after a refusal).
    body_bytes: usize,
    /// From the end of the head (or the `100 Continue`) to the body's first byte.
    body_after: Option<Duration>,
}

fn server(mode: Mode, sha1: String) -> (SocketAddr, mpsc::Receiver<Seen>) {
    server_of(vec![mode], sha1)
}

/// A server taking one connection per mode, in order, and reporting what each saw.
fn server_of(modes: Vec<Mode>, sha1: String) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mode in modes {
            let Ok((stream, _)) = listener.accept() else { return };
            one_request(stream, mode, &sha1, &tx);
        }
    });
    (addr, rx)
}

fn one_request(mut stream: std::net::TcpStream, mode: Mode, sha1: &str, tx: &mpsc::Sender<Seen>) {
    {
        let Some(head) = crate::network::read_head(&mut stream) else { return };
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let expect = head.contains("\r\nexpect: 100-continue\r\n");
        let answer = |status: &str, body: String| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let mut waited_from = Instant::now();
        match mode {
            Mode::Refuse => {
                let body = r#"{"type":"error","status":416,"code":"range_overlaps_existing_part","message":"taken"}"#;
                stream.write_all(answer("416 Range Not Satisfiable", body.into()).as_bytes()).unwrap();
                // A lingering close, as a web server does: no more from us, but what the client
                // still sends is read (and counted) for a while.
                stream.shutdown(std::net::Shutdown::Write).unwrap();
                stream.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let mut body_bytes = 0;
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    body_bytes += n;
                }
                let _ = tx.send(Seen { expect, body_bytes, body_after: None });
                return;
            }
            Mode::Continue => {
                stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                waited_from = Instant::now();
            }
            Mode::Ignore | Mode::Lose => {}
        }
        let mut body = vec![0u8; PART];
        stream.read_exact(&mut body[..1]).unwrap();
        let body_after = waited_from.elapsed();
        stream.read_exact(&mut body[1..]).unwrap();
        let _ = tx.send(Seen { expect, body_bytes: PART, body_after: Some(body_after) });
        if mode == Mode::Lose {
            return;
        }
        let part = format!(r#"{{"part":{{"part_id":"0000ABCD","offset":0,"size":{PART},"sha1":"{sha1}"}}}}"#);
        stream.write_all(answer("200 OK", part).as_bytes()).unwrap();
    }
}

/// One part sent by URL to a server in `mode`: the result, what the server saw, how long it took.
fn send_part(kind: Kind, mode: Mode) -> (Result<(), Error>, Seen, Duration) {
    send_part_with(kind, mode, true)
}

fn send_part_with(kind: Kind, mode: Mode, expect_continue: bool) -> (Result<(), Error>, Seen, Duration) {
    let data: Vec<u8> = (0..PART).map(|i| (i % 251) as u8).collect();
    let (addr, seen) = server(mode, Sha1Digest::of(&data).to_hex());
    let rig = Rig::new(kind);
    let base = format!("http://{addr}/api");
    let client = build!(&rig, |b| b
        .developer_token("t")
        .upload_base(base.as_str())
        .retry_policy(fast_retries())
        .expect_continue(expect_continue))
    .unwrap();
    let url = format!("{base}/2.0/files/upload_sessions/S1");
    let started = Instant::now();
    let result = call!(client, upload_file_part_by_url(url, 0, PART as u64 * 4, data)).map(|_| ());
    let took = started.elapsed();
    let seen = seen.recv_timeout(Duration::from_secs(10)).expect("the server saw the request");
    (result, seen, took)
}

fn a_part_refused_before_100_continue_is_answered_and_its_body_never_sent(kind: Kind) {
    let (result, seen, took) = send_part(kind, Mode::Refuse);
    let err = result.unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Api(e)) if e.status == 416), "the 416 is read: {err}");
    assert!(err.to_string().contains("range_overlaps_existing_part"), "{err}");
    assert!(seen.expect, "the part asked for 100 Continue");
    assert_eq!(seen.body_bytes, 0, "the body is not sent after a final answer");
    assert!(took < EXPECT_CONTINUE_WAIT, "answered without waiting out the timer: {took:?}");
}

fn a_part_is_sent_as_soon_as_100_continue_comes(kind: Kind) {
    let (result, seen, _) = send_part(kind, Mode::Continue);
    result.unwrap();
    assert!(seen.expect);
    let after = seen.body_after.unwrap();
    assert!(after < EXPECT_CONTINUE_WAIT / 2, "the body followed the 100 at once: {after:?}");
}

fn a_server_that_ignores_expect_gets_the_part_after_the_wait(kind: Kind) {
    let (result, seen, took) = send_part(kind, Mode::Ignore);
    result.unwrap();
    assert!(seen.expect);
    let after = seen.body_after.unwrap();
    assert!(after >= EXPECT_CONTINUE_WAIT * 8 / 10, "the body waited for a 100 first: {after:?}");
    assert!(took < EXPECT_CONTINUE_WAIT * 5, "{took:?}");
}

fn with_expect_continue_off_the_part_goes_at_once_without_expect(kind: Kind) {
    let (result, seen, _) = send_part_with(kind, Mode::Ignore, false);
    result.unwrap();
    assert!(!seen.expect, "no Expect header when it is turned off");
    let after = seen.body_after.unwrap();
    assert!(after < EXPECT_CONTINUE_WAIT / 2, "the body followed the head at once: {after:?}");
}

/// The default: the first send streams at once; after its answer is lost, the part sent again
/// asks first, so the server's early 416 (the part is stored) is read and no body is pushed.
fn by_default_only_a_part_sent_again_asks_for_100_continue(kind: Kind) {
    let data: Vec<u8> = (0..PART).map(|i| (i % 251) as u8).collect();
    let (addr, seen) = server_of(vec![Mode::Lose, Mode::Refuse], Sha1Digest::of(&data).to_hex());
    let rig = Rig::new(kind);
    let base = format!("http://{addr}/api");
    let client =
        build!(&rig, |b| b.developer_token("t").upload_base(base.as_str()).retry_policy(fast_retries())).unwrap();
    let url = format!("{base}/2.0/files/upload_sessions/S1");
    let err = call!(client, upload_file_part_by_url(url, 0, PART as u64 * 4, data)).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Api(e)) if e.status == 416), "the 416 is read: {err}");
    let first = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    let again = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!first.expect, "a first send does not ask");
    assert!(first.body_after.unwrap() < EXPECT_CONTINUE_WAIT / 2, "and goes at once");
    assert!(again.expect, "the part sent again asks for 100 Continue");
    assert_eq!(again.body_bytes, 0, "and its body is not sent after the early 416");
}
