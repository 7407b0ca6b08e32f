//! A hostile server and a hostile user, by hand: the big upload driven sans-IO with hand-written
//! `http::Response` values, asserting the exact error and which requests were (not) sent.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_core::bytes::Bytes;
use box_upload_core::http::{HeaderMap, Method, Response, StatusCode};
use box_upload_core::models::FileFull;
use box_upload_core::{
    BigUpload, Checkpoint, Client, Config, ContentRange, DeveloperToken, Error, Event, InputError, Machine, PartData,
    PlanError, ProtocolError, RequestKind, ResumeOptions, RetryPolicy, Sha1Digest, SourceError, Transmit,
    UntrustedHost, UploadRequest, CHECKPOINT_VERSION,
};
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::{Duration, Instant};

const BASE: &str = "https://upload.box.com/api/2.0/files/upload_sessions";
const SID: &str = "S1";
const SIZE: u64 = 20_000_001;
const PS: u64 = 8 << 20;
const PARTS: u64 = 3;

fn config() -> Config {
    let mut c = Config::new();
    c.retry = RetryPolicy { commit_timeout: Duration::from_secs(60), ..RetryPolicy::default() };
    c
}

fn client() -> Client {
    Client::new(config(), DeveloperToken::new("tok"))
}

fn source(size: u64) -> Bytes {
    Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

fn json_response(status: u16, body: Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(serde_json::to_vec(&body).unwrap()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}

fn raw(status: u16, body: &[u8]) -> Response<Bytes> {
    let mut r = Response::new(Bytes::copy_from_slice(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn endpoints(base: &str) -> Value {
    json!({
        "upload_part": format!("{base}/{SID}"),
        "commit": format!("{base}/{SID}/commit"),
        "abort": format!("{base}/{SID}"),
        "list_parts": format!("{base}/{SID}/parts"),
        "status": format!("{base}/{SID}"),
        "log_event": format!("{base}/{SID}/log"),
    })
}

fn session(endpoint_base: Option<&str>) -> Value {
    let mut s = json!({"id": SID, "type": "upload_session", "part_size": PS, "total_parts": PARTS,
        "num_parts_processed": 0, "session_expires_at": "2031-01-01T00:00:00Z"});
    if let Some(base) = endpoint_base {
        s["session_endpoints"] = endpoints(base);
    }
    s
}

fn part_json(offset: u64, size: u64, sha1: &str) -> Value {
    json!({"part_id": format!("P{offset}"), "offset": offset, "size": size, "sha1": sha1})
}

/// One request the machine sent, as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    kind: RequestKind,
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Drives a machine by hand: the test decides every answer.
struct Run {
    m: BigUpload,
    now: Instant,
    source: Bytes,
    sent: Vec<Seen>,
    events: Vec<Event>,
    /// Parts echoed so far: (offset, size, sha1 hex).
    echoed: Vec<(u64, u64, String)>,
}

impl Run {
    fn new(m: BigUpload, size: u64) -> Self {
        Self { m, now: Instant::now(), source: source(size), sent: Vec::new(), events: Vec::new(), echoed: Vec::new() }
    }

    /// An upload that lists its parts before the commit, so each step's answers can be lied in.
    fn start() -> Self {
        let request = UploadRequest::new_file("0", "f.bin", SIZE).list_before_commit(true);
        Self::new(client().big_upload(request).unwrap(), SIZE)
    }

    fn poll(&mut self) -> Option<Transmit> {
        let t = self.m.poll_transmit(self.now)?;
        let r = &t.request;
        self.sent.push(Seen {
            kind: t.kind,
            method: r.method().clone(),
            uri: r.uri().to_string(),
            headers: r.headers().clone(),
            body: r.body().clone(),
        });
        Some(t)
    }

    fn expect(&mut self, kind: RequestKind) -> Transmit {
        let t = self.poll().unwrap_or_else(|| panic!("expected a {kind} request, got none"));
        assert_eq!(t.kind, kind, "expected {kind}, got {:?} {}", t.kind, t.request.uri());
        t
    }

    fn respond(&mut self, t: &Transmit, r: Response<Bytes>) {
        self.m.handle_response(t.id, r, self.now);
    }

    fn events(&mut self) {
        while let Some(e) = self.m.poll_event() {
            self.events.push(e);
        }
    }

    fn output(&mut self) -> Option<Result<FileFull, Error>> {
        self.events();
        self.m.poll_output()
    }

    fn error(&mut self) -> Error {
        match self.output() {
            Some(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Serves every read the machine asks for, from the source.
    fn serve_reads(&mut self) -> usize {
        let mut n = 0;
        while let Some(read) = self.m.poll_read() {
            let end = (read.offset + read.len as u64).min(self.source.len() as u64);
            let data = self.source.slice(read.offset.min(end) as usize..end as usize);
            self.m.handle_read(read.id, Ok(PartData::new(data)), self.now);
            n += 1;
        }
        n
    }

    /// Creates the session with `session` as Box's answer.
    fn create(&mut self, session: Value) {
        let t = self.expect(RequestKind::CreateSession);
        self.respond(&t, json_response(201, session));
    }

    /// The right echo of a part request.
    fn echo(&mut self, t: &Transmit) -> Response<Bytes> {
        let (offset, size, sha1) = part_of(t);
        self.echoed.push((offset, size, sha1.clone()));
        json_response(200, json!({"part": part_json(offset, size, &sha1)}))
    }

    /// Reads and uploads (echoing right) until the machine sends something else, which it returns.
    fn upload_parts(&mut self) -> Transmit {
        for _ in 0..100 {
            self.serve_reads();
            match self.poll() {
                Some(t) if t.kind == RequestKind::UploadPart => {
                    let r = self.echo(&t);
                    self.respond(&t, r);
                }
                Some(t) => return t,
                None => panic!("the machine waits for nothing: {:?}", self.output()),
            }
        }
        panic!("no end to the parts");
    }

    /// A right list page of everything echoed.
    fn full_list(&self) -> Response<Bytes> {
        let entries: Vec<Value> = self.echoed.iter().map(|(o, s, h)| part_json(*o, *s, h)).collect();
        json_response(200, json!({"entries": entries, "total_count": self.echoed.len(), "offset": 0, "limit": 1000}))
    }

    fn count(&self, kind: RequestKind) -> usize {
        self.sent.iter().filter(|s| s.kind == kind).count()
    }

    fn assert_aborted_by(&self, uri: &str) {
        let aborts: Vec<&Seen> = self.sent.iter().filter(|s| s.kind == RequestKind::AbortSession).collect();
        assert_eq!(aborts.len(), 1, "{:?}", self.sent);
        assert_eq!(aborts[0].method, Method::DELETE);
        assert_eq!(aborts[0].uri, uri);
        assert!(aborts[0].body.is_empty());
    }

    fn assert_no_request_after_output(&mut self) {
        assert!(self.m.poll_transmit(self.now).is_none());
        assert!(self.m.poll_read().is_none());
        assert!(self.m.poll_output().is_none());
    }
}

fn part_of(t: &Transmit) -> (u64, u64, String) {
    let range = t.request.headers().get("content-range").unwrap().to_str().unwrap();
    let range = ContentRange::from_str(range).unwrap();
    let digest = t.request.headers().get("digest").unwrap().to_str().unwrap();
    let sha1 = Sha1Digest::parse_header(digest).unwrap();
    assert_eq!(sha1, Sha1Digest::of(t.request.body()));
    (range.offset(), range.size(), sha1.to_hex())
}

fn abort_answer() -> Response<Bytes> {
    raw(204, b"")
}

/// Answers the abort the machine must send next, then expects the output error.
fn finish_with_abort(run: &mut Run) -> Error {
    let abort = run.expect(RequestKind::AbortSession);
    assert!(run.output().is_none(), "the output must wait for the abort");
    run.respond(&abort, abort_answer());
    let e = run.error();
    assert!(run.events.contains(&Event::Aborted { confirmed: true }));
    run.assert_no_request_after_output();
    e
}

// ---- server: session endpoints ------------------------------------------------------------------

fn untrusted_endpoints_case(base: &str, host: &str) {
    let mut run = Run::start();
    run.create(session(Some(base)));
    // Nothing is read or sent to the foreign host: only the abort, by id, to the trusted base.
    assert!(run.m.poll_read().is_none(), "a read after an untrusted session");
    let e = finish_with_abort(&mut run);
    match e {
        Error::UntrustedHost(UntrustedHost { host: h, context }) => {
            assert_eq!(h, host);
            assert_eq!(context, "session_endpoints");
        }
        other => panic!("expected UntrustedHost, got {other:?}"),
    }
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
    for seen in &run.sent {
        assert!(seen.uri.starts_with("https://upload.box.com/"), "{} sent to {}", seen.kind, seen.uri);
    }
    assert_eq!(run.sent.len(), 2, "{:?}", run.sent);
    assert_eq!(run.count(RequestKind::UploadPart), 0);
}

#[test]
fn session_endpoints_on_a_foreign_host_get_no_token() {
    untrusted_endpoints_case("https://evil.example.com/api/2.0/files/upload_sessions", "evil.example.com");
}

#[test]
fn session_endpoints_downgraded_to_http_get_no_token() {
    untrusted_endpoints_case("http://upload.box.com/api/2.0/files/upload_sessions", "upload.box.com");
}

#[test]
fn session_endpoints_on_a_look_alike_host_get_no_token() {
    untrusted_endpoints_case(
        "https://upload.box.com.evil.example/api/2.0/files/upload_sessions",
        "upload.box.com.evil.example",
    );
}

#[test]
fn one_foreign_endpoint_is_enough_to_refuse() {
    let mut s = session(Some(BASE));
    s["session_endpoints"]["abort"] = json!("https://evil.example.com/steal");
    let mut run = Run::start();
    run.create(s);
    assert!(run.m.poll_read().is_none());
    let e = finish_with_abort(&mut run);
    assert!(matches!(e, Error::UntrustedHost(UntrustedHost { ref host, .. }) if host == "evil.example.com"), "{e:?}");
    // The abort goes to the base by id, not to the foreign abort URL.
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
}

#[test]
fn trusted_endpoints_are_used_with_the_token() {
    let mut run = Run::start();
    run.create(session(Some("https://upload-eu.box.com/api/2.0/files/upload_sessions")));
    let list = run.upload_parts();
    assert_eq!(list.kind, RequestKind::ListParts);
    let parts: Vec<&Seen> = run.sent.iter().filter(|s| s.kind == RequestKind::UploadPart).collect();
    assert_eq!(parts.len(), PARTS as usize);
    for p in parts {
        assert!(p.uri.starts_with("https://upload-eu.box.com/"), "{}", p.uri);
        assert_eq!(p.headers.get("authorization").unwrap(), "Bearer tok");
    }
}

// ---- server: part echo ----------------------------------------------------------------------------

fn wrong_echo_case(field: &str) {
    let mut run = Run::start();
    run.create(session(None));
    run.serve_reads();
    let t = run.expect(RequestKind::UploadPart);
    let (offset, size, sha1) = part_of(&t);
    let echo = match field {
        "sha1" => part_json(offset, size, &Sha1Digest([9; 20]).to_hex()),
        "offset" => part_json(offset + PS, size, &sha1),
        _ => part_json(offset, size - 1, &sha1),
    };
    run.respond(&t, json_response(200, json!({ "part": echo })));
    // Other parts in flight are forgotten; the abort comes next.
    let e = loop {
        let next = run.poll().expect("an abort");
        if next.kind == RequestKind::AbortSession {
            assert!(run.output().is_none());
            run.respond(&next, abort_answer());
            break run.error();
        }
        assert_eq!(next.kind, RequestKind::UploadPart, "only queued parts may precede the abort");
    };
    match e {
        Error::Protocol(ProtocolError::PartEchoMismatch { offset: o, field: f, .. }) => {
            assert_eq!((o, f), (offset, field));
        }
        other => panic!("expected PartEchoMismatch on {field}, got {other:?}"),
    }
    assert_eq!(run.count(RequestKind::CommitSession), 0);
    assert_eq!(run.count(RequestKind::ListParts), 0);
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
    run.assert_no_request_after_output();
}

#[test]
fn part_echo_with_wrong_sha1_aborts() {
    wrong_echo_case("sha1");
}

#[test]
fn part_echo_with_wrong_offset_aborts() {
    wrong_echo_case("offset");
}

#[test]
fn part_echo_with_wrong_size_aborts() {
    wrong_echo_case("size");
}

#[test]
fn part_echo_without_part_aborts() {
    let mut run = Run::start();
    run.create(session(None));
    run.serve_reads();
    let t = run.expect(RequestKind::UploadPart);
    run.respond(&t, json_response(200, json!({"id": "x"})));
    let e = loop {
        let next = run.poll().expect("an abort");
        if next.kind == RequestKind::AbortSession {
            run.respond(&next, abort_answer());
            break run.error();
        }
    };
    assert!(
        matches!(e, Error::Protocol(ProtocolError::MissingField { kind: RequestKind::UploadPart, field: "part" })),
        "{e:?}"
    );
    assert_eq!(run.count(RequestKind::CommitSession), 0);
}

// ---- server: list-parts lies -----------------------------------------------------------------------

fn list_lie_case(page_size: u64, pages: Vec<Value>, expect: &str) {
    let request = UploadRequest {
        list_page_size: page_size,
        ..UploadRequest::new_file("0", "f.bin", SIZE).list_before_commit(true)
    };
    let mut run = Run::new(client().big_upload(request).unwrap(), SIZE);
    run.create(session(None));
    let mut list = run.upload_parts();
    let mut pages = pages.into_iter().peekable();
    let e = loop {
        assert_eq!(list.kind, RequestKind::ListParts);
        let page = pages.next().expect("no more pages scripted");
        run.respond(&list, json_response(200, page));
        let next = run.poll().expect("a request");
        if next.kind == RequestKind::AbortSession {
            assert!(pages.peek().is_none(), "stopped before the lie");
            run.respond(&next, abort_answer());
            break run.error();
        }
        list = next;
    };
    match &e {
        Error::Protocol(ProtocolError::PartsListMismatch(msg)) => assert!(msg.contains(expect), "{msg}"),
        other => panic!("expected PartsListMismatch, got {other:?}"),
    }
    assert_eq!(run.count(RequestKind::CommitSession), 0);
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
    let lists: Vec<&Seen> = run.sent.iter().filter(|s| s.kind == RequestKind::ListParts).collect();
    for (i, l) in lists.iter().enumerate() {
        assert!(l.uri.ends_with(&format!("/parts?offset={}&limit={page_size}", i as u64 * page_size)), "{}", l.uri);
    }
}

fn entries(run_parts: &[(u64, u64)]) -> Vec<Value> {
    let src = source(SIZE);
    run_parts
        .iter()
        .map(|&(o, s)| part_json(o, s, &Sha1Digest::of(&src[o as usize..(o + s) as usize]).to_hex()))
        .collect()
}

const ALL: [(u64, u64); 3] = [(0, PS), (PS, PS), (2 * PS, SIZE - 2 * PS)];

#[test]
fn list_empty_page_while_total_count_says_more() {
    list_lie_case(1000, vec![json!({"entries": [], "total_count": 3})], "is empty");
}

#[test]
fn list_total_count_changing_between_pages() {
    let e = entries(&ALL);
    list_lie_case(
        1,
        vec![json!({"entries": [e[0]], "total_count": 3}), json!({"entries": [e[1]], "total_count": 4})],
        "changed from 3 to 4",
    );
}

#[test]
fn list_more_entries_than_total_count() {
    list_lie_case(1000, vec![json!({"entries": entries(&ALL), "total_count": 2})], "total_count says 2");
}

#[test]
fn list_total_count_above_the_session() {
    list_lie_case(1000, vec![json!({"entries": entries(&ALL), "total_count": 4})], "more than the session's 3");
}

#[test]
fn list_page_over_the_limit() {
    let e = entries(&ALL);
    list_lie_case(1, vec![json!({"entries": [e[0], e[1]], "total_count": 3})], "more than the limit of 1");
}

#[test]
fn list_without_total_count() {
    list_lie_case(1000, vec![json!({"entries": entries(&ALL)})], "no total_count");
}

#[test]
fn list_missing_one_of_our_parts() {
    list_lie_case(1000, vec![json!({"entries": entries(&ALL[..2]), "total_count": 2})], "Box lists 2 parts");
}

#[test]
fn list_with_another_sha1() {
    let mut e = entries(&ALL);
    e[1]["sha1"] = json!(Sha1Digest([3; 20]).to_hex());
    list_lie_case(1000, vec![json!({"entries": e, "total_count": 3})], "sha1");
}

// ---- server: commit ---------------------------------------------------------------------------------

#[test]
fn commit_202_forever_times_out() {
    let mut run = Run::start();
    run.create(session(None));
    let list = run.upload_parts();
    let full = run.full_list();
    run.respond(&list, full);
    let started = run.now;
    let mut commits = 0;
    let e = loop {
        let t = match run.poll() {
            Some(t) => t,
            None => {
                // Nothing due: the next commit waits for Retry-After.
                let at = run.m.poll_timeout().expect("a deadline while waiting");
                assert!(at > run.now);
                run.now = at;
                run.m.handle_timeout(run.now);
                continue;
            }
        };
        match t.kind {
            RequestKind::CommitSession => {
                commits += 1;
                assert!(commits <= 10, "commits without bound");
                let mut r = raw(202, b"");
                r.headers_mut().insert("retry-after", "10".parse().unwrap());
                run.respond(&t, r);
            }
            RequestKind::AbortSession => {
                run.respond(&t, abort_answer());
                break run.error();
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    match e {
        Error::CommitTimeout { attempts, waited } => {
            assert_eq!(attempts, commits);
            assert!(waited <= Duration::from_secs(60), "{waited:?}");
        }
        other => panic!("expected CommitTimeout, got {other:?}"),
    }
    // 60 s of commit budget, 10 s apart: commits at 0, 10, ..., 60 s; the next would be late.
    assert_eq!(commits, 7);
    assert!(run.now.duration_since(started) <= Duration::from_secs(60));
    let pending = run.events.iter().filter(|e| matches!(e, Event::CommitPending { .. })).count();
    assert_eq!(pending, 6);
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
}

#[test]
fn commit_202_without_retry_after_also_times_out() {
    let mut run = Run::start();
    run.create(session(None));
    let list = run.upload_parts();
    let full = run.full_list();
    run.respond(&list, full);
    let mut commits = 0;
    let e = loop {
        match run.poll() {
            Some(t) if t.kind == RequestKind::CommitSession => {
                commits += 1;
                assert!(commits <= 20);
                run.respond(&t, raw(202, b""));
            }
            Some(t) if t.kind == RequestKind::AbortSession => {
                run.respond(&t, abort_answer());
                break run.error();
            }
            Some(t) => panic!("unexpected {:?}", t.kind),
            None => {
                run.now = run.m.poll_timeout().unwrap();
                run.m.handle_timeout(run.now);
            }
        }
    };
    assert!(matches!(e, Error::CommitTimeout { .. }), "{e:?}");
}

#[test]
fn commit_answer_for_another_file_is_refused() {
    let mut run = Run::start();
    run.create(session(None));
    let list = run.upload_parts();
    let full = run.full_list();
    run.respond(&list, full);
    let commit = run.expect(RequestKind::CommitSession);
    run.respond(
        &commit,
        json_response(
            201,
            json!({"entries": [{"id": "9", "type": "file", "size": SIZE, "sha1": Sha1Digest([1; 20]).to_hex()}]}),
        ),
    );
    let e = run.error();
    match &e {
        Error::Protocol(ProtocolError::CommitMismatch { file_id, .. }) => assert_eq!(file_id, "9"),
        other => panic!("expected CommitMismatch, got {other:?}"),
    }
}

// ---- server: malformed JSON at each step --------------------------------------------------------------

const TRUNCATED: &[u8] = br#"{"id": "S1", "part_size": 83"#;

fn assert_bad_json(e: &Error, kind: RequestKind) {
    match e {
        Error::Protocol(ProtocolError::BadJson { kind: k, .. }) => assert_eq!(*k, kind),
        other => panic!("expected BadJson for {kind}, got {other:?}"),
    }
}

#[test]
fn malformed_create_answer() {
    for body in [TRUNCATED, b"", b"{\"id\": 5}", b"\xff\xfe", b"null", b"{\"id\": \"S1\", \"part_size\": -1}"] {
        let mut run = Run::start();
        let t = run.expect(RequestKind::CreateSession);
        run.respond(&t, raw(201, body));
        // No session: nothing to abort, the output comes at once.
        let e = run.error();
        assert_bad_json(&e, RequestKind::CreateSession);
        assert_eq!(run.sent.len(), 1);
        run.assert_no_request_after_output();
    }
}

#[test]
fn create_answer_of_the_wrong_shape() {
    // serde reads a JSON array as the struct's fields in order; all are optional.
    let mut run = Run::start();
    let t = run.expect(RequestKind::CreateSession);
    run.respond(&t, raw(201, b"[]"));
    let e = run.error();
    assert!(
        matches!(e, Error::Protocol(ProtocolError::MissingField { kind: RequestKind::CreateSession, field: "id" })),
        "{e:?}"
    );
    assert_eq!(run.sent.len(), 1);
}

#[test]
fn create_answer_without_usable_numbers() {
    for (s, expect) in [
        (json!({"id": SID, "total_parts": 3}), PlanError::MissingPartSize),
        (json!({"id": SID, "part_size": PS}), PlanError::MissingTotalParts),
        (json!({"id": SID, "part_size": 0, "total_parts": 3}), PlanError::ZeroPartSize),
        (json!({"id": SID, "part_size": 1, "total_parts": 3}), PlanError::TooManyParts { parts: SIZE }),
        (
            json!({"id": SID, "part_size": PS, "total_parts": 2}),
            PlanError::SessionTooSmall { part_size: PS, total_parts: 2, file_size: SIZE },
        ),
        (
            json!({"id": SID, "part_size": PS, "total_parts": 4}),
            PlanError::TotalPartsMismatch { total_parts: 4, planned: 3 },
        ),
        (
            json!({"id": SID, "part_size": u64::MAX, "total_parts": u64::MAX}),
            PlanError::TotalPartsMismatch { total_parts: u64::MAX, planned: 1 },
        ),
    ] {
        let mut run = Run::start();
        let t = run.expect(RequestKind::CreateSession);
        run.respond(&t, json_response(201, s.clone()));
        // The session exists at Box, so it is aborted.
        let e = finish_with_abort(&mut run);
        match e {
            Error::Protocol(ProtocolError::BadSession(p)) => assert_eq!(p, expect, "{s}"),
            other => panic!("{s}: expected BadSession, got {other:?}"),
        }
        assert_eq!(run.count(RequestKind::UploadPart), 0);
    }
}

#[test]
fn create_answer_with_a_hostile_id() {
    for id in ["", "../../files/1", "S1?x=1", "S 1"] {
        let mut run = Run::start();
        let t = run.expect(RequestKind::CreateSession);
        let mut s = session(None);
        s["id"] = json!(id);
        run.respond(&t, json_response(201, s));
        let e = run.error();
        assert!(matches!(e, Error::Protocol(ProtocolError::MissingField { .. })), "{id:?}: {e:?}");
        // An id that is not Box's cannot be put in a URL: nothing more is sent.
        assert_eq!(run.sent.len(), 1, "{id:?}: {:?}", run.sent);
    }
}

#[test]
fn malformed_part_answer() {
    let mut run = Run::start();
    run.create(session(None));
    run.serve_reads();
    let t = run.expect(RequestKind::UploadPart);
    run.respond(&t, raw(200, br#"{"part": {"offset": 0, "si"#));
    let e = loop {
        let next = run.poll().expect("an abort");
        if next.kind == RequestKind::AbortSession {
            run.respond(&next, abort_answer());
            break run.error();
        }
    };
    assert_bad_json(&e, RequestKind::UploadPart);
    assert_eq!(run.count(RequestKind::CommitSession), 0);
}

#[test]
fn malformed_list_answer() {
    let mut run = Run::start();
    run.create(session(None));
    let list = run.upload_parts();
    run.respond(&list, raw(200, br#"{"entries": [{"offset": 0}, "#));
    let e = finish_with_abort(&mut run);
    assert_bad_json(&e, RequestKind::ListParts);
    assert_eq!(run.count(RequestKind::CommitSession), 0);
}

#[test]
fn malformed_commit_answer() {
    let mut run = Run::start();
    run.create(session(None));
    let list = run.upload_parts();
    let full = run.full_list();
    run.respond(&list, full);
    let commit = run.expect(RequestKind::CommitSession);
    run.respond(&commit, raw(201, br#"{"entries": [{"id": "9", "ty"#));
    let e = finish_with_abort(&mut run);
    assert_bad_json(&e, RequestKind::CommitSession);
    assert_eq!(run.count(RequestKind::CommitSession), 1);
}

#[test]
fn malformed_get_session_answer_on_resume() {
    let mut run = resume_run(ResumeOptions::default());
    let t = run.expect(RequestKind::GetSession);
    run.respond(&t, raw(200, TRUNCATED));
    let e = finish_with_abort(&mut run);
    assert_bad_json(&e, RequestKind::GetSession);
    assert_eq!(run.count(RequestKind::ListParts), 0);
}

// ---- server: redirects ------------------------------------------------------------------------------

#[test]
fn redirect_to_create_is_not_followed() {
    for status in [301, 302, 303, 307, 308] {
        let mut run = Run::start();
        let t = run.expect(RequestKind::CreateSession);
        let mut r = raw(status, b"");
        r.headers_mut().insert("location", "https://evil.example.com/api/2.0/files/upload_sessions".parse().unwrap());
        run.respond(&t, r);
        let e = run.error();
        match e {
            Error::Protocol(ProtocolError::UnexpectedStatus { kind, status: s }) => {
                assert_eq!((kind, s), (RequestKind::CreateSession, status));
            }
            other => panic!("{status}: expected UnexpectedStatus, got {other:?}"),
        }
        // Not retried, not followed.
        assert_eq!(run.sent.len(), 1);
        run.assert_no_request_after_output();
    }
}

#[test]
fn redirect_to_a_part_is_not_followed_and_aborts() {
    let mut run = Run::start();
    run.create(session(None));
    run.serve_reads();
    let t = run.expect(RequestKind::UploadPart);
    let mut r = raw(307, b"");
    r.headers_mut().insert("location", "https://evil.example.com/put-here".parse().unwrap());
    run.respond(&t, r);
    let e = loop {
        let next = run.poll().expect("an abort");
        if next.kind == RequestKind::AbortSession {
            run.respond(&next, abort_answer());
            break run.error();
        }
    };
    assert!(
        matches!(e, Error::Protocol(ProtocolError::UnexpectedStatus { kind: RequestKind::UploadPart, status: 307 })),
        "{e:?}"
    );
    assert!(run.sent.iter().all(|s| !s.uri.contains("evil")));
    assert_eq!(run.count(RequestKind::CommitSession), 0);
}

// ---- user: the source -------------------------------------------------------------------------------

#[test]
fn source_that_ends_early() {
    let mut run = Run::start();
    run.create(session(None));
    let read = run.m.poll_read().unwrap();
    assert_eq!((read.offset, read.len as u64), (0, PS));
    let short = run.source.slice(0..read.len - 1);
    run.m.handle_read(read.id, Ok(PartData::new(short)), run.now);
    let e = finish_with_abort(&mut run);
    assert_eq!(
        e.to_string(),
        Error::from(SourceError::EndedEarly { offset: 0, expected: PS, got: PS - 1 }).to_string()
    );
    assert!(matches!(e, Error::Source(SourceError::EndedEarly { offset: 0, expected: PS, got }) if got == PS - 1));
    assert_eq!(run.count(RequestKind::UploadPart), 0);
    assert_eq!(run.count(RequestKind::CommitSession), 0);
}

#[test]
fn source_whose_last_part_is_short() {
    let mut run = Run::start();
    run.create(session(None));
    let mut reads = Vec::new();
    while let Some(r) = run.m.poll_read() {
        reads.push(r);
    }
    // The default four parts in flight: all three parts, then the end-of-file check.
    assert_eq!(reads.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, PS, 2 * PS, SIZE]);
    for r in &reads[..2] {
        let data = run.source.slice(r.offset as usize..r.offset as usize + r.len);
        run.m.handle_read(r.id, Ok(PartData::new(data)), run.now);
    }
    let last = reads[2];
    let data = run.source.slice(last.offset as usize..SIZE as usize - 10);
    run.m.handle_read(last.id, Ok(PartData::new(data)), run.now);
    // The parts already sent are forgotten; the abort follows.
    let e = loop {
        let next = run.poll().expect("an abort");
        match next.kind {
            RequestKind::AbortSession => {
                run.respond(&next, abort_answer());
                break run.error();
            }
            RequestKind::UploadPart => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(matches!(e, Error::Source(SourceError::EndedEarly { offset, .. }) if offset == 2 * PS), "{e:?}");
    assert_eq!(run.count(RequestKind::CommitSession), 0);
    assert_eq!(run.count(RequestKind::ListParts), 0);
}

#[test]
fn source_that_runs_long() {
    let mut run = Run::start();
    run.create(session(None));
    let mut eof = None;
    for _ in 0..20 {
        while let Some(r) = run.m.poll_read() {
            if r.offset == SIZE {
                eof = Some(r);
            } else {
                let data = run.source.slice(r.offset as usize..r.offset as usize + r.len);
                run.m.handle_read(r.id, Ok(PartData::new(data)), run.now);
            }
        }
        while let Some(t) = run.poll() {
            let echo = run.echo(&t);
            run.respond(&t, echo);
        }
        if eof.is_some() {
            break;
        }
    }
    let eof = eof.expect("the end-of-file read");
    assert_eq!(eof.len, 1);
    // Every part is acknowledged; the source then gives one byte more.
    assert_eq!(run.count(RequestKind::UploadPart), PARTS as usize);
    run.m.handle_read(eof.id, Ok(PartData::new(Bytes::from_static(b"x"))), run.now);
    let e = finish_with_abort(&mut run);
    assert!(matches!(e, Error::Source(SourceError::RanLong { file_size: SIZE })), "{e:?}");
    assert_eq!(run.count(RequestKind::ListParts), 0);
    assert_eq!(run.count(RequestKind::CommitSession), 0);
}

#[test]
fn source_read_error() {
    let mut run = Run::start();
    run.create(session(None));
    let read = run.m.poll_read().unwrap();
    run.m.handle_read(read.id, Err(SourceError::Changed("mtime moved".into())), run.now);
    let e = finish_with_abort(&mut run);
    assert!(matches!(e, Error::Source(SourceError::Changed(ref m)) if m == "mtime moved"), "{e:?}");
    assert_eq!(run.count(RequestKind::UploadPart), 0);
}

// ---- user: checkpoints and resume ----------------------------------------------------------------------

fn checkpoint() -> Checkpoint {
    // Built from JSON, as a saved checkpoint is read back.
    serde_json::from_value(json!({
        "version": CHECKPOINT_VERSION,
        "session": session(Some(BASE)),
        "target": {"kind": "new_file", "folder_id": "0", "file_name": "f.bin"},
        "file_size": SIZE,
        "part_size": PS,
        "source_fingerprint": "path=/a/f.bin;mtime=1",
        "parts": [part_json(0, PS, &"00".repeat(20))],
    }))
    .unwrap()
}

fn resume_run(options: ResumeOptions) -> Run {
    Run::new(client().resume(checkpoint(), options).unwrap(), SIZE)
}

#[test]
fn checkpoint_of_another_file_is_refused_before_any_request() {
    let other_fingerprint =
        ResumeOptions { source_fingerprint: Some("path=/b/g.bin;mtime=2".into()), ..ResumeOptions::default() };
    let other_size = ResumeOptions { file_size: Some(SIZE + 1), ..ResumeOptions::default() };
    for options in [other_fingerprint, other_size] {
        match client().resume(checkpoint(), options) {
            Err(InputError::CheckpointMismatch(_)) => {}
            Err(other) => panic!("expected CheckpointMismatch, got {other:?}"),
            Ok(_) => panic!("resumed a checkpoint of another file"),
        }
    }
    let mut wrong_version = checkpoint();
    wrong_version.version = CHECKPOINT_VERSION + 1;
    assert!(matches!(client().resume(wrong_version, ResumeOptions::default()), Err(InputError::CheckpointMismatch(_))));
    let mut hostile_id = checkpoint();
    hostile_id.session.id = "../../x".into();
    assert!(matches!(client().resume(hostile_id, ResumeOptions::default()), Err(InputError::BadId { .. })));
    // The same fingerprint and size resume.
    let same = ResumeOptions {
        source_fingerprint: Some("path=/a/f.bin;mtime=1".into()),
        file_size: Some(SIZE),
        ..ResumeOptions::default()
    };
    assert!(client().resume(checkpoint(), same).is_ok());
}

#[test]
fn resumed_session_with_another_part_size_is_refused() {
    let mut run = resume_run(ResumeOptions::default());
    let t = run.expect(RequestKind::GetSession);
    let mut s = session(Some(BASE));
    s["part_size"] = json!(PS * 2);
    s["total_parts"] = json!(2);
    run.respond(&t, json_response(200, s));
    let e = finish_with_abort(&mut run);
    assert!(matches!(e, Error::Input(InputError::CheckpointMismatch(_))), "{e:?}");
    assert_eq!(run.count(RequestKind::UploadPart), 0);
}

#[test]
fn resumed_session_answered_with_a_hostile_id_is_still_aborted() {
    // Regression (found by fuzz/big_upload): the checkpoint's session was dropped before the
    // answer was checked, so refusing it left the session open.
    let mut run = resume_run(ResumeOptions::default());
    let t = run.expect(RequestKind::GetSession);
    let mut s = session(Some(BASE));
    s["id"] = json!("../../files/1");
    run.respond(&t, json_response(200, s));
    let e = finish_with_abort(&mut run);
    // An answer for any other session than the checkpoint's is refused as such.
    assert!(matches!(e, Error::Input(InputError::CheckpointMismatch(_))), "{e:?}");
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
    assert_eq!(run.sent.len(), 2);
}

#[test]
fn resumed_session_with_unusable_numbers_is_aborted() {
    let mut run = resume_run(ResumeOptions::default());
    let t = run.expect(RequestKind::GetSession);
    let mut s = session(Some(BASE));
    s["total_parts"] = json!(1);
    run.respond(&t, json_response(200, s));
    let e = finish_with_abort(&mut run);
    assert!(
        matches!(e, Error::Protocol(ProtocolError::BadSession(PlanError::SessionTooSmall { total_parts: 1, .. }))),
        "{e:?}"
    );
    run.assert_aborted_by(&format!("{BASE}/{SID}"));
}

#[test]
fn resuming_a_session_that_is_gone() {
    for status in [404, 410] {
        let mut run = resume_run(ResumeOptions::default());
        let t = run.expect(RequestKind::GetSession);
        assert_eq!(t.request.uri(), format!("{BASE}/{SID}").as_str());
        run.respond(
            &t,
            json_response(
                status,
                json!({"type": "error", "status": status, "code": "not_found", "message": "gone", "request_id": "r"}),
            ),
        );
        let e = run.error();
        match &e {
            Error::SessionGone { session_id, source } => {
                assert_eq!(session_id, SID);
                assert_eq!(source.status, status);
                assert_eq!(e.box_code(), Some("not_found"));
            }
            other => panic!("expected SessionGone, got {other:?}"),
        }
        // Nothing else: no list, no abort of a session that does not exist.
        assert_eq!(run.sent.len(), 1, "{:?}", run.sent);
        run.assert_no_request_after_output();
    }
}

// ---- user: input -------------------------------------------------------------------------------------

#[test]
fn bad_names_are_refused_before_any_request() {
    let long = "a".repeat(256);
    let long_multibyte = "é".repeat(256);
    for name in [long.as_str(), long_multibyte.as_str(), "a/b.bin", "a\\b", "", ".", "..", "x ", "a\u{0}b"] {
        match client().big_upload(UploadRequest::new_file("0", name, SIZE)) {
            Err(InputError::BadName { .. }) => {}
            Err(other) => panic!("{name:?}: expected BadName, got {other:?}"),
            Ok(_) => panic!("{name:?} accepted"),
        }
    }
    // 255 characters (of any width) is fine.
    for name in ["a".repeat(255), "é".repeat(255)] {
        let mut m = client().big_upload(UploadRequest::new_file("0", name.clone(), SIZE)).unwrap();
        let t = m.poll_transmit(Instant::now()).unwrap();
        let body: Value = serde_json::from_slice(t.request.body()).unwrap();
        assert_eq!(body["file_name"], json!(name));
    }
}

#[test]
fn too_small_is_refused_before_any_request() {
    assert!(matches!(
        client().big_upload(UploadRequest::new_file("0", "f.bin", 19_999_999)),
        Err(InputError::FileTooSmall { size: 19_999_999 })
    ));
    assert!(matches!(
        client().big_upload(UploadRequest::new_version("1", 0)),
        Err(InputError::FileTooSmall { size: 0 })
    ));
    assert!(client().big_upload(UploadRequest::new_file("0", "f.bin", 20_000_000)).is_ok());
}

#[test]
fn bad_ids_and_parallelism_are_refused_before_any_request() {
    assert!(matches!(
        client().big_upload(UploadRequest::new_file("../1", "f.bin", SIZE)),
        Err(InputError::BadId { .. })
    ));
    assert!(matches!(
        client().big_upload(UploadRequest::new_file("0", "f.bin", SIZE).parts_in_flight(0)),
        Err(InputError::ZeroParallelism)
    ));
}
