//! The direct upload (`UploadFile`): its exact request, its answers, and the `FileUpload` machine
//! (direct below the cutoff, preflight then session from it, conflicts, timestamps) against
//! answers made here, with no network.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_core::bytes::Bytes;
use box_upload_core::operations::{Operation, UploadFile};
use box_upload_core::{
    http, Client, Config, DeveloperToken, Error, FileUploadOptions, Machine, OnConflict, PartBuilder, RequestKind,
    Sha1Digest, SourceBody, SourceFacts, UploadRequest, DEFAULT_CHUNKED_FROM,
};
use std::time::{Duration, Instant, SystemTime};

const SHA1_HEX: &str = "85136c79cbf9fe36bb9d05d0639c70c265c18d37";

fn client() -> Client {
    Client::new(Config::new(), DeveloperToken::new("secret-token"))
}

fn response(status: u16, body: &str) -> http::Response<Bytes> {
    http::Response::builder().status(status).body(Bytes::from(body.to_owned())).unwrap()
}

fn files_answer(id: &str, size: u64, sha1: &str) -> String {
    format!(
        r#"{{"total_count":1,"entries":[{{"type":"file","id":"{id}","etag":"0","name":"notes.txt","size":{size},"sha1":"{sha1}"}}]}}"#
    )
}

#[test]
fn a_new_file_request_has_attributes_before_the_file_and_streams_the_body() {
    let sha1 = Sha1Digest::from_hex(SHA1_HEX).unwrap();
    let mut attributes = serde_json::Map::new();
    attributes.insert("content_modified_at".into(), "2026-12-02T18:00:00Z".into());
    let op = UploadFile::new_file("0", "notes \"v1\".txt", 1000).unwrap().with_sha1(sha1).with_attributes(attributes);
    let request = op.request(&Config::new()).unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri(), "https://upload.box.com/api/2.0/files/content");
    let boundary = format!("box-upload-{SHA1_HEX}");
    assert_eq!(request.headers()["content-type"], format!("multipart/form-data; boundary={boundary}").as_str());
    assert_eq!(request.headers()["content-md5"], SHA1_HEX);
    assert!(request.body().is_empty(), "the file's bytes are not in the request");
    let body = request.extensions().get::<SourceBody>().unwrap();
    assert_eq!((body.offset, body.len), (0, 1000));
    assert_eq!(request.headers()["content-length"], body.total_len().to_string().as_str());
    let head = std::str::from_utf8(&body.head).unwrap();
    let expected_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"attributes\"\r\n\r\n\
         {{\"content_modified_at\":\"2026-12-02T18:00:00Z\",\"name\":\"notes \\\"v1\\\".txt\",\"parent\":{{\"id\":\"0\"}}}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes \\\"v1\\\".txt\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    assert_eq!(head, expected_head);
    assert_eq!(&body.tail[..], format!("\r\n--{boundary}--\r\n").as_bytes());
    assert!(head.find("name=\"attributes\"").unwrap() < head.find("name=\"file\"").unwrap());
}

#[test]
fn a_new_version_request_carries_if_match_and_no_parent() {
    let op = UploadFile::new_version("12345", 0).unwrap().with_content(Bytes::new()).with_if_match("3");
    let request = op.request(&Config::new()).unwrap();
    assert_eq!(request.uri(), "https://upload.box.com/api/2.0/files/12345/content");
    assert_eq!(request.headers()["if-match"], "3");
    // In memory: the whole multipart body is the request's.
    assert!(request.extensions().get::<SourceBody>().is_none());
    let body = std::str::from_utf8(request.body()).unwrap();
    assert!(body.contains("name=\"attributes\"\r\n\r\n{}\r\n"), "{body}");
    assert_eq!(request.headers()["content-length"], body.len().to_string().as_str());
    assert_eq!(request.headers()["content-md5"], "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    assert!(UploadFile::new_file("0", "a/b", 1).is_err());
    assert!(UploadFile::new_file("not an id", "a", 1).is_err());
    assert!(UploadFile::new_version("12 3", 1).is_err());
    let mut op = UploadFile::new_file("0", "a", 5).unwrap().with_content(&b"abc"[..]);
    op.size = 5;
    assert!(matches!(op.request(&Config::new()), Err(Error::Input(_))));
}

#[test]
fn answers_parse_into_the_file_or_boxs_error() {
    let op = UploadFile::new_file("0", "notes.txt", 3).unwrap();
    let file = op.parse(response(201, &files_answer("9", 3, SHA1_HEX))).unwrap();
    assert_eq!((file.id.as_str(), file.size), ("9", Some(3)));
    let e = op.parse(response(201, r#"{"entries":[]}"#)).unwrap_err();
    assert!(e.to_string().contains("entries"), "{e}");
    let e = op.parse(response(400, r#"{"type":"error","status":400,"code":"metadata_after_file_contents"}"#));
    assert_eq!(e.unwrap_err().box_code(), Some("metadata_after_file_contents"));
    assert!(op.parse(response(201, "{not json")).is_err());
}

/// Runs `machine` against `answer`, serving reads from `content`; returns the output and every
/// request sent (method, URI) with its source body, if any.
fn run(
    machine: &mut impl Machine<Output = box_upload_core::models::FileFull>,
    content: &[u8],
    mut answer: impl FnMut(&http::Request<Bytes>) -> http::Response<Bytes>,
) -> (Result<box_upload_core::models::FileFull, Error>, Vec<(RequestKind, String)>) {
    let mut now = Instant::now();
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        while machine.poll_event().is_some() {}
        if let Some(output) = machine.poll_output() {
            return (output, sent);
        }
        while let Some(read) = machine.poll_read() {
            let start = usize::try_from(read.offset).unwrap().min(content.len());
            let end = (start + read.len).min(content.len());
            let part = machine.part_builder(&read, Vec::new());
            machine.handle_read(read.id, Ok(part.finish_with_bytes(Bytes::copy_from_slice(&content[start..end]))), now);
        }
        while let Some(t) = machine.poll_transmit(now) {
            sent.push((t.kind, format!("{} {}", t.request.method(), t.request.uri())));
            if let Some(body) = t.request.extensions().get::<SourceBody>() {
                assert_eq!(body.len, content.len() as u64);
            }
            let r = answer(&t.request);
            machine.handle_response(t.id, r, now);
        }
        now += Duration::from_secs(1);
        machine.handle_timeout(now);
    }
    panic!("the machine did not finish");
}

fn facts(size: u64) -> SourceFacts {
    SourceFacts { size: Some(size), ..SourceFacts::default() }
}

#[test]
fn below_the_cutoff_one_direct_upload_with_our_sha1_and_timestamps() {
    let content = vec![7u8; 1000];
    let sha1 = Sha1Digest::of(&content).to_hex();
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_234_400);
    let options =
        FileUploadOptions { modified: Some(modified), created: Some(modified), ..FileUploadOptions::default() };
    let mut m =
        client().file_upload(UploadRequest::new_file("0", "notes.txt", 0), &facts(1000), None, options).unwrap();
    assert!(!m.is_chunked());
    let mut attributes = None;
    let (out, sent) = run(&mut m, &content, |r| {
        assert_eq!(r.headers()["content-md5"], sha1.as_str());
        let head = r.extensions().get::<SourceBody>().unwrap().head.clone();
        attributes = Some(String::from_utf8(head.to_vec()).unwrap());
        response(201, &files_answer("9", 1000, &sha1))
    });
    assert_eq!(out.unwrap().id, "9");
    assert_eq!(sent, vec![(RequestKind::UploadFile, "POST https://upload.box.com/api/2.0/files/content".into())]);
    let attributes = attributes.unwrap();
    assert!(attributes.contains(r#""content_modified_at":"2026-12-02T18:00:00Z""#), "{attributes}");
    assert!(attributes.contains(r#""content_created_at":"2026-12-02T18:00:00Z""#), "{attributes}");
}

#[test]
fn a_zero_byte_file_goes_direct() {
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "empty", 0), &facts(0), None, FileUploadOptions::default())
        .unwrap();
    let empty = Sha1Digest::of(b"").to_hex();
    let (out, _) = run(&mut m, b"", |_| response(201, &files_answer("1", 0, &empty)));
    assert_eq!(out.unwrap().size, Some(0));
}

#[test]
fn an_answer_with_another_sha1_or_size_is_not_a_success() {
    let content = b"abc";
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(3), None, FileUploadOptions::default())
        .unwrap();
    let (out, _) = run(&mut m, content, |_| response(201, &files_answer("1", 3, SHA1_HEX)));
    assert!(matches!(out, Err(Error::Protocol(_))), "{out:?}");
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(3), None, FileUploadOptions::default())
        .unwrap();
    let ours = Sha1Digest::of(content).to_hex();
    let (out, _) = run(&mut m, content, |_| response(201, &files_answer("1", 4, &ours)));
    assert!(matches!(out, Err(Error::Protocol(_))), "{out:?}");
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(3), None, FileUploadOptions::default())
        .unwrap();
    let (out, _) = run(&mut m, content, |_| response(201, r#"{"entries":[{"id":"1","type":"file"}]}"#));
    assert!(matches!(out, Err(Error::Protocol(_))), "no sha1 in the answer: {out:?}");
}

#[test]
fn a_source_shorter_or_longer_than_its_size_fails() {
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 10), &SourceFacts::default(), None, FileUploadOptions::default())
        .unwrap();
    let (out, sent) = run(&mut m, b"abc", |_| response(500, ""));
    assert!(matches!(out, Err(Error::Source(_))), "{out:?}");
    assert!(sent.is_empty());
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 2), &SourceFacts::default(), None, FileUploadOptions::default())
        .unwrap();
    let (out, sent) = run(&mut m, b"abc", |_| response(500, ""));
    assert!(matches!(out, Err(Error::Source(_))), "{out:?}");
    assert!(sent.is_empty());
}

fn conflict(shape_array: bool, sha1: &str) -> String {
    let item = format!(r#"{{"type":"file","id":"777","etag":"5","name":"a","sha1":"{sha1}"}}"#);
    let conflicts = if shape_array { format!("[{item}]") } else { item };
    format!(r#"{{"type":"error","status":409,"code":"item_name_in_use","context_info":{{"conflicts":{conflicts}}}}}"#)
}

#[test]
fn on_conflict_version_uploads_a_version_guarded_by_the_etag() {
    for array in [false, true] {
        let content = b"hello";
        let ours = Sha1Digest::of(content).to_hex();
        let options = FileUploadOptions { on_conflict: OnConflict::Version, ..FileUploadOptions::default() };
        let mut m = client().file_upload(UploadRequest::new_file("0", "a", 0), &facts(5), None, options).unwrap();
        let (out, sent) = run(&mut m, content, |r| match r.method().as_str() {
            "OPTIONS" => response(409, &conflict(array, SHA1_HEX)),
            _ => {
                assert_eq!(r.headers()["if-match"], "5");
                response(200, &files_answer("777", 5, &ours))
            }
        });
        assert_eq!(out.unwrap().id, "777");
        assert_eq!(sent[0].0, RequestKind::PreflightFileUpload);
        assert_eq!(sent[1], (RequestKind::UploadFile, "POST https://upload.box.com/api/2.0/files/777/content".into()));
    }
}

#[test]
fn on_conflict_skip_sends_nothing_when_the_content_is_ours() {
    let content = b"hello";
    let ours = Sha1Digest::of(content).to_hex();
    let options = FileUploadOptions { on_conflict: OnConflict::Skip, ..FileUploadOptions::default() };
    let mut m = client().file_upload(UploadRequest::new_file("0", "a", 0), &facts(5), None, options.clone()).unwrap();
    let (out, sent) = run(&mut m, content, |r| match r.method().as_str() {
        "OPTIONS" => response(409, &conflict(false, &ours)),
        "GET" => response(
            200,
            &files_answer("777", 5, &ours).replace(r#"{"total_count":1,"entries":["#, "").replace("]}", ""),
        ),
        _ => panic!("nothing is uploaded"),
    });
    assert_eq!(out.unwrap().id, "777");
    assert_eq!(
        sent.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![RequestKind::PreflightFileUpload, RequestKind::GetFile]
    );

    // Other content under the name: fail with Box's 409, nothing sent.
    let mut m = client().file_upload(UploadRequest::new_file("0", "a", 0), &facts(5), None, options).unwrap();
    let (out, sent) = run(&mut m, content, |r| match r.method().as_str() {
        "OPTIONS" => response(409, &conflict(true, SHA1_HEX)),
        _ => panic!("nothing is uploaded"),
    });
    assert_eq!(out.unwrap_err().box_code(), Some("item_name_in_use"));
    assert_eq!(sent.len(), 1);
}

#[test]
fn on_conflict_fail_is_boxs_409_from_the_upload_itself() {
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(5), None, FileUploadOptions::default())
        .unwrap();
    let (out, sent) = run(&mut m, b"hello", |_| response(409, &conflict(false, SHA1_HEX)));
    assert_eq!(out.unwrap_err().box_code(), Some("item_name_in_use"));
    assert_eq!(sent.iter().map(|s| s.0).collect::<Vec<_>>(), vec![RequestKind::UploadFile]);
}

#[test]
fn a_lost_answer_whose_retry_meets_our_own_file_succeeds() {
    let content = b"hello";
    let ours = Sha1Digest::of(content).to_hex();
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(5), None, FileUploadOptions::default())
        .unwrap();
    let mut sends = 0;
    let (out, _) = run(&mut m, content, |r| match r.method().as_str() {
        "POST" => {
            sends += 1;
            if sends == 1 {
                response(503, "")
            } else {
                response(409, &conflict(false, &ours))
            }
        }
        "GET" => response(200, &format!(r#"{{"type":"file","id":"777","size":5,"sha1":"{ours}"}}"#)),
        _ => panic!("no preflight"),
    });
    assert_eq!(out.unwrap().id, "777");
}

/// A session of 5 parts of 8 MiB (40,000,000 bytes), by id only.
const SESSION: &str =
    r#"{"type":"upload_session","id":"ABC","part_size":8388608,"total_parts":5,"num_parts_processed":0}"#;
const CHECK_PASSED: &str = r#"{"upload_url":"https://upload.box.com/api/2.0/files/content"}"#;

/// The first two requests of a chunked new file: its session's creation and its preflight check.
fn create_and_check(m: &mut impl Machine, now: Instant) -> (box_upload_core::Transmit, box_upload_core::Transmit) {
    let first = m.poll_transmit(now).expect("a first request");
    let second = m.poll_transmit(now).expect("the second goes out before the first is answered");
    if first.kind == RequestKind::CreateSession {
        (first, second)
    } else {
        (second, first)
    }
}

#[test]
fn from_the_cutoff_an_upload_session_created_beside_the_preflight_check() {
    assert_eq!(DEFAULT_CHUNKED_FROM, 25_000_000, "where direct uploads and sessions meet (benches/)");
    let size = 40_000_000;
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "big", 0), &facts(size), None, FileUploadOptions::default())
        .unwrap();
    assert!(m.is_chunked());
    let now = Instant::now();
    let (create, check) = create_and_check(&mut m, now);
    assert_eq!(create.kind, RequestKind::CreateSession);
    assert_eq!(create.request.uri(), "https://upload.box.com/api/2.0/files/upload_sessions");
    assert_eq!(check.kind, RequestKind::PreflightFileUpload);
    assert_eq!(check.request.uri(), "https://api.box.com/2.0/files/content");
    m.handle_response(create.id, response(201, SESSION), now);
    while m.poll_event().is_some() {}
    assert!(m.poll_read().is_none(), "nothing is read before the preflight check passes");
    assert!(m.poll_transmit(now).is_none());
    m.handle_response(check.id, response(200, CHECK_PASSED), now);
    let read = m.poll_read().expect("parts are read once the check passed");
    assert_eq!(read.offset, 0);
}

#[test]
fn a_failed_preflight_check_aborts_the_session_made_beside_it_and_fails_with_its_error() {
    let not_found = r#"{"type":"error","status":404,"code":"not_found","message":"no folder"}"#;
    for check_answered_first in [false, true] {
        let mut m = client()
            .file_upload(UploadRequest::new_file("0", "big", 0), &facts(40_000_000), None, FileUploadOptions::default())
            .unwrap();
        let now = Instant::now();
        let (create, check) = create_and_check(&mut m, now);
        if check_answered_first {
            m.handle_response(check.id, response(404, not_found), now);
            assert!(m.poll_output().is_none(), "the session being created is waited for, to abort it");
            m.handle_response(create.id, response(201, SESSION), now);
        } else {
            m.handle_response(create.id, response(201, SESSION), now);
            m.handle_response(check.id, response(404, not_found), now);
        }
        assert!(m.poll_read().is_none(), "no byte of the file is read");
        let abort = m.poll_transmit(now).expect("the session is aborted");
        assert_eq!(abort.kind, RequestKind::AbortSession);
        assert!(abort.request.uri().to_string().ends_with("/files/upload_sessions/ABC"));
        m.handle_response(abort.id, response(204, ""), now);
        while m.poll_event().is_some() {}
        let out = m.poll_output().expect("over");
        assert_eq!(out.unwrap_err().box_code(), Some("not_found"), "the check's error, not the abort's");
    }
    // Even a session kept for a resume on failure: nothing was sent, it is aborted.
    let request = UploadRequest::new_file("0", "big", 0).keep_session_on_failure(true);
    let mut m = client().file_upload(request, &facts(40_000_000), None, FileUploadOptions::default()).unwrap();
    let now = Instant::now();
    let (create, check) = create_and_check(&mut m, now);
    m.handle_response(create.id, response(201, SESSION), now);
    m.handle_response(check.id, response(404, not_found), now);
    assert_eq!(m.poll_transmit(now).expect("the session is aborted").kind, RequestKind::AbortSession);
    // A session that could not be created fails with the check's error all the same.
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "big", 0), &facts(40_000_000), None, FileUploadOptions::default())
        .unwrap();
    let (out, sent) = run(&mut m, b"", |_| response(404, not_found));
    assert_eq!(out.unwrap_err().box_code(), Some("not_found"));
    assert!(
        sent.iter().all(|(k, _)| matches!(k, RequestKind::CreateSession | RequestKind::PreflightFileUpload)),
        "{sent:?}"
    );
}

#[test]
fn a_refused_creation_fails_with_the_checks_error_whichever_answer_comes_first() {
    let not_found = r#"{"type":"error","status":404,"code":"not_found","message":"no folder"}"#;
    let kind_of = |out: Result<box_upload_core::models::FileFull, Error>| match out {
        Err(Error::Api(e)) => e.kind,
        other => panic!("expected Box's error, got {other:?}"),
    };
    for check_passes in [false, true] {
        for create_first in [true, false] {
            let mut m = client()
                .file_upload(
                    UploadRequest::new_file("0", "big", 0),
                    &facts(40_000_000),
                    None,
                    FileUploadOptions::default(),
                )
                .unwrap();
            let now = Instant::now();
            let (create, check) = create_and_check(&mut m, now);
            let check_answer = if check_passes { response(200, CHECK_PASSED) } else { response(404, not_found) };
            if create_first {
                m.handle_response(create.id, response(404, not_found), now);
                while m.poll_event().is_some() {}
                assert!(m.poll_output().is_none(), "the check's answer is waited for");
                m.handle_response(check.id, check_answer, now);
            } else {
                m.handle_response(check.id, check_answer, now);
                m.handle_response(create.id, response(404, not_found), now);
            }
            while m.poll_event().is_some() {}
            let expected = if check_passes { RequestKind::CreateSession } else { RequestKind::PreflightFileUpload };
            assert_eq!(
                kind_of(m.poll_output().expect("over")),
                Some(expected),
                "check passes {check_passes}, create first {create_first}"
            );
            assert!(m.poll_read().is_none() && m.poll_transmit(now).is_none(), "no session: nothing more");
        }
    }
}

/// Box answers the session's creation 409: the name was taken after the check passed.
fn name_taken_meanwhile(
    policy: OnConflict,
    sha1: &str,
) -> (Result<box_upload_core::models::FileFull, Error>, Vec<(RequestKind, String)>) {
    let content = vec![5u8; 40_000_000];
    let options = FileUploadOptions { on_conflict: policy, ..FileUploadOptions::default() };
    let mut m = client().file_upload(UploadRequest::new_file("0", "a", 0), &facts(40_000_000), None, options).unwrap();
    let conflict_body = conflict(true, sha1);
    run(&mut m, &content, |r| match (r.method().as_str(), r.uri().path()) {
        ("OPTIONS", _) => response(200, CHECK_PASSED),
        ("POST", "/api/2.0/files/upload_sessions") => response(409, &conflict_body),
        // The version's session: refused, to end the run here.
        ("POST", "/api/2.0/files/777/upload_sessions") => {
            response(403, r#"{"type":"error","status":403,"code":"access_denied_insufficient_permissions"}"#)
        }
        ("GET", "/2.0/files/777") => {
            response(200, &format!(r#"{{"type":"file","id":"777","size":40000000,"sha1":"{sha1}"}}"#))
        }
        other => panic!("unexpected {other:?}"),
    })
}

#[test]
fn a_name_taken_between_the_check_and_the_session_goes_as_the_policy_says() {
    let ours = Sha1Digest::of(&vec![5u8; 40_000_000]).to_hex();
    // version: a session for a new version of the file holding the name.
    let (out, sent) = name_taken_meanwhile(OnConflict::Version, SHA1_HEX);
    assert_eq!(out.unwrap_err().box_code(), Some("access_denied_insufficient_permissions"));
    assert_eq!(sent.last().unwrap().1, "POST https://upload.box.com/api/2.0/files/777/upload_sessions", "{sent:?}");
    // skip: the holder has our bytes, nothing is sent.
    let (out, sent) = name_taken_meanwhile(OnConflict::Skip, &ours);
    assert_eq!(out.unwrap().id, "777");
    assert!(sent.iter().all(|(k, _)| *k != RequestKind::UploadPart));
    // fail: Box's 409.
    let (out, _) = name_taken_meanwhile(OnConflict::Fail, &ours);
    assert_eq!(out.unwrap_err().box_code(), Some("item_name_in_use"));
}

#[test]
fn the_cutoff_is_kept_within_boxs_limits() {
    let below = FileUploadOptions { chunked_from: 1, ..FileUploadOptions::default() };
    let m = client().file_upload(UploadRequest::new_file("0", "a", 0), &facts(19_999_999), None, below).unwrap();
    assert!(!m.is_chunked(), "under 20,000,000 bytes a session is impossible");
    let above = FileUploadOptions { chunked_from: u64::MAX, ..FileUploadOptions::default() };
    let m = client().file_upload(UploadRequest::new_file("0", "a", 0), &facts(60_000_000), None, above).unwrap();
    assert!(m.is_chunked(), "over 50 MB a direct upload is refused by Box");
}

#[test]
fn a_part_builder_hands_the_hash_on() {
    // The driver's way: each read through part_builder carries the hash on.
    let content = vec![3u8; 5_000_000];
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(5_000_000), None, FileUploadOptions::default())
        .unwrap();
    let ours = Sha1Digest::of(&content).to_hex();
    let mut now = Instant::now();
    loop {
        while m.poll_event().is_some() {}
        if let Some(read) = m.poll_read() {
            let mut part: PartBuilder = m.part_builder(&read, vec![0; read.len]);
            let start = usize::try_from(read.offset).unwrap().min(content.len());
            let end = (start + read.len).min(content.len());
            part.unfilled()[..end - start].copy_from_slice(&content[start..end]);
            part.advance(end - start);
            m.handle_read(read.id, Ok(part.finish()), now);
            continue;
        }
        let t = m.poll_transmit(now).unwrap();
        assert_eq!(t.request.headers()["content-md5"], ours.as_str());
        m.handle_response(t.id, response(201, &files_answer("1", 5_000_000, &ours)), now);
        break;
    }
    now += Duration::from_millis(1);
    let _ = now;
    while m.poll_event().is_some() {}
    assert!(m.poll_output().unwrap().is_ok());
}

#[test]
fn a_direct_upload_cancelled_while_hashing_sends_nothing_and_ends_once() {
    let mut m = client()
        .file_upload(UploadRequest::new_file("0", "a", 0), &facts(10_000_000), None, FileUploadOptions::default())
        .unwrap();
    let read = m.poll_read().expect("the first read of the hash pass");
    assert!(m.cancel(false), "a direct upload winds down by itself");
    let part = m.part_builder(&read, Vec::new());
    m.handle_read(read.id, Ok(part.finish_with_bytes(Bytes::from(vec![0u8; read.len]))), Instant::now());
    assert!(m.poll_transmit(Instant::now()).is_none(), "nothing sent after a cancel");
    while m.poll_event().is_some() {}
    assert!(matches!(m.poll_output(), Some(Err(Error::Cancelled))));
    assert!(m.poll_output().is_none(), "the output comes once");
    assert!(m.poll_read().is_none());
}
