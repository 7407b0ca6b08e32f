//! A commit whose answer did not settle it is confirmed from the file, never guessed: a lost
//! answer followed by a 404, 409 or 412 (or no answer at all), and a 201 without `sha1` or
//! `size`. Against the simulated Box, on a simulated clock.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use box_upload_core::models::{FileFull, Files, UploadPart};
use box_upload_core::operations::{CommitUploadSession, GetFile, PreflightFileUpload};
use box_upload_core::{
    Client, ClientSettings, Config, DeveloperToken, Error, Machine, ProtocolError, RequestKind, RetryPolicy,
    Sha1Digest, UploadRequest, UploadTarget, CONFIRM_FIELDS,
};
use std::time::Duration;
use support::*;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 20_000_001;
const SESSION: &str = "F971964745A5CD0C001BBE4E58196BFD";

fn config() -> Config {
    let mut c = Config::new();
    c.retry = RetryPolicy { initial_backoff: Duration::from_millis(100), ..RetryPolicy::default() };
    c
}

fn client() -> Client {
    Client::new(config(), DeveloperToken::new("tok"))
}

fn new_file() -> UploadRequest {
    UploadRequest::new_file("0", "f.bin", SIZE)
}

fn new_version() -> UploadRequest {
    UploadRequest::new_version("12345", SIZE)
}

fn run(request: UploadRequest, fake: &mut FakeBox) -> Run<FileFull> {
    let mut m = client().big_upload(request).unwrap();
    drive(&mut m, fake, default_source(SIZE), Order::Fifo)
}

/// The first commit is applied and its answer lost; later commits are answered as Box does
/// (the session is gone: 404).
fn lose_first_commit_answer() -> impl FnMut(&Seen, &mut FakeBox) -> Answer {
    let mut lost = false;
    move |seen, _| {
        if seen.kind == RequestKind::CommitSession && !lost {
            lost = true;
            return Answer::ProcessThenFail;
        }
        Answer::Normal
    }
}

/// The requests of `kind`, in order.
fn seen(fake: &FakeBox, kind: RequestKind) -> Vec<Seen> {
    fake.seen.iter().filter(|s| s.kind == kind).cloned().collect()
}

fn kinds(fake: &FakeBox) -> Vec<RequestKind> {
    fake.seen.iter().map(|s| s.kind).filter(|k| *k != RequestKind::UploadPart).collect()
}

/// The file the lookup answered is the run's output, and it is ours.
fn assert_confirmed(run: &Run<FileFull>, fake: &FakeBox) {
    let file = run.output.as_ref().unwrap_or_else(|e| panic!("confirmed, got {e}"));
    assert_eq!(file.id, "12345");
    assert_eq!(file.size, Some(SIZE));
    assert_eq!(file.sha1.as_deref(), Some(whole_sha1(SIZE).to_hex().as_str()));
    assert_eq!(Some(serde_json::to_value(file).unwrap()), fake.file);
    assert!(!fake.aborted);
    assert_eq!(fake.count(RequestKind::AbortSession), 0);
}

fn assert_get_file(s: &Seen, id: &str) {
    let (path, query) = s.uri.split_once('?').unwrap();
    assert_eq!(path, format!("https://api.box.com/2.0/files/{id}"));
    assert_eq!(query, format!("fields={}", CONFIRM_FIELDS.join(",")));
    assert_eq!(s.header("authorization"), Some("Bearer tok"));
}

fn outcome_unknown(run: Run<FileFull>) -> (Option<String>, String, String) {
    match run.output {
        Err(Error::CommitOutcomeUnknown { session_id, file_id, reason, check }) => {
            assert_eq!(session_id, SESSION);
            (file_id, reason, check)
        }
        other => panic!("expected CommitOutcomeUnknown, got {other:?}"),
    }
}

// ---- a lost answer, then 404 --------------------------------------------------------------------

#[test]
fn new_file_lost_answer_then_404_is_confirmed_by_the_preflight_check_conflicts_as_object_or_array() {
    for array in [false, true] {
        let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer());
        fake.conflicts_array = array;
        let run = run(new_file(), &mut fake);
        assert_confirmed(&run, &fake);
        assert_eq!(
            kinds(&fake)[1..],
            [
                RequestKind::CommitSession,
                RequestKind::CommitSession,
                RequestKind::PreflightFileUpload,
                RequestKind::GetFile,
            ]
        );
        let preflight = &seen(&fake, RequestKind::PreflightFileUpload)[0];
        assert_eq!(preflight.method, "OPTIONS");
        assert_eq!(preflight.uri, "https://api.box.com/2.0/files/content");
        assert_eq!(preflight.json(), serde_json::json!({"name": "f.bin", "size": SIZE, "parent": {"id": "0"}}));
        assert_get_file(&seen(&fake, RequestKind::GetFile)[0], "12345");
    }
}

#[test]
fn new_version_lost_answer_then_404_is_confirmed_by_get_file() {
    let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer());
    let run = run(new_version().if_match("7"), &mut fake);
    assert_confirmed(&run, &fake);
    // The file is known: no preflight check.
    assert_eq!(fake.count(RequestKind::PreflightFileUpload), 0);
    assert_eq!(fake.count(RequestKind::GetFile), 1);
    assert_get_file(&seen(&fake, RequestKind::GetFile)[0], "12345");
}

#[test]
fn a_lost_answer_then_409_or_412_is_looked_into_too() {
    for (status, code) in [(409, "item_name_in_use"), (412, "precondition_failed")] {
        let mut commits = 0;
        let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
            if seen.kind != RequestKind::CommitSession {
                return Answer::Normal;
            }
            commits += 1;
            if commits == 1 {
                Answer::ProcessThenFail
            } else {
                Answer::Respond(error(status, code, "taken"))
            }
        });
        let run = run(new_version(), &mut fake);
        assert_confirmed(&run, &fake);
    }
}

#[test]
fn a_commit_that_never_gets_an_answer_is_looked_into() {
    // Applied, then every resend fails in the transport until the retries run out.
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, fake| match seen.kind {
        RequestKind::CommitSession if fake.committed.is_none() => Answer::ProcessThenFail,
        RequestKind::CommitSession => Answer::Fail,
        _ => Answer::Normal,
    });
    let run = run(new_file(), &mut fake);
    assert_confirmed(&run, &fake);
    assert_eq!(fake.count(RequestKind::CommitSession), RetryPolicy::default().max_retries as usize + 1);
}

#[test]
fn a_404_to_a_commit_that_was_answered_before_is_not_looked_into() {
    // No lost answer: the session is gone for another reason, and that is the error.
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, _| match seen.kind {
        RequestKind::CommitSession => Answer::Respond(error(404, "not_found", "no session")),
        _ => Answer::Normal,
    });
    let run = run(new_file(), &mut fake);
    match run.output {
        Err(Error::Api(e)) => assert_eq!((e.status, e.code()), (404, Some("not_found"))),
        other => panic!("expected Box's 404, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::PreflightFileUpload) + fake.count(RequestKind::GetFile), 0);
}

// ---- the file found is not ours ----------------------------------------------------------------

#[test]
fn a_conflict_with_another_sha1_is_a_mismatch_naming_the_file() {
    let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer()).hook(|seen, fake| {
        if seen.kind == RequestKind::PreflightFileUpload {
            // Someone else's file holds the name.
            fake.file.as_mut().unwrap()["sha1"] = serde_json::json!(Sha1Digest([9; 20]).to_hex());
        }
        Answer::Normal
    });
    let run = run(new_file(), &mut fake);
    match run.output {
        Err(Error::Protocol(ProtocolError::CommitMismatch { file_id, detail })) => {
            assert_eq!(file_id, "12345");
            assert!(detail.contains(&Sha1Digest([9; 20]).to_hex()), "{detail}");
        }
        other => panic!("expected CommitMismatch, got {other:?}"),
    }
    // The conflict's sha1 settles it: no get file.
    assert_eq!(fake.count(RequestKind::GetFile), 0);
}

#[test]
fn a_file_with_another_sha1_or_size_is_a_mismatch_naming_the_file() {
    for (field, value) in [("sha1", serde_json::json!(Sha1Digest([9; 20]).to_hex())), ("size", serde_json::json!(7))] {
        let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer()).hook(move |seen, fake| {
            if seen.kind == RequestKind::GetFile {
                fake.file.as_mut().unwrap()[field] = value.clone();
            }
            Answer::Normal
        });
        let run = run(new_version(), &mut fake);
        match run.output {
            Err(Error::Protocol(ProtocolError::CommitMismatch { file_id, .. })) => assert_eq!(file_id, "12345"),
            other => panic!("{field}: expected CommitMismatch, got {other:?}"),
        }
    }
}

// ---- nothing settles it: outcome unknown --------------------------------------------------------

#[test]
fn no_file_found_is_outcome_unknown_with_the_session_and_what_to_check() {
    // The first commit is lost before Box sees it; the resend is refused with 404.
    let mut commits = 0;
    let mut fake = FakeBox::new(8 * MIB).hook(move |seen, _| {
        if seen.kind != RequestKind::CommitSession {
            return Answer::Normal;
        }
        commits += 1;
        if commits == 1 {
            Answer::Fail
        } else {
            Answer::Respond(error(404, "not_found", "no session"))
        }
    });
    let run = run(new_file(), &mut fake);
    assert!(fake.committed.is_none());
    let (file_id, reason, check) = outcome_unknown(run);
    assert_eq!(file_id, None);
    assert!(reason.contains("404") && reason.contains("no file named \"f.bin\" in folder 0"), "{reason}");
    assert_eq!(
        check,
        format!("whether folder 0 holds a file named \"f.bin\" with sha1 {} and {SIZE} bytes", whole_sha1(SIZE))
    );
    // Left as it is: nothing is aborted.
    assert_eq!(fake.count(RequestKind::AbortSession), 0);
    assert_eq!(fake.count(RequestKind::GetFile), 0);
}

#[test]
fn a_lookup_that_fails_is_outcome_unknown() {
    // Get file: 404, or 503 until the retries run out.
    for (status, code) in [(404, "not_found"), (503, "unavailable")] {
        let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer()).hook(move |seen, _| {
            if seen.kind == RequestKind::GetFile {
                return Answer::Respond(error(status, code, "lookup"));
            }
            Answer::Normal
        });
        let run = run(new_version(), &mut fake);
        let (file_id, reason, check) = outcome_unknown(run);
        assert_eq!(file_id.as_deref(), Some("12345"));
        assert!(reason.contains(&format!("getting file 12345 failed: get file: Box answered {status}")), "{reason}");
        assert!(check.starts_with("whether file 12345 holds sha1 "), "{check}");
        assert_eq!(fake.count(RequestKind::AbortSession), 0);
    }
    // The preflight check: in the transport, every time.
    let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer()).hook(|seen, _| match seen.kind {
        RequestKind::PreflightFileUpload => Answer::Fail,
        _ => Answer::Normal,
    });
    let run = run(new_file(), &mut fake);
    let (file_id, reason, _) = outcome_unknown(run);
    assert_eq!(file_id, None);
    assert!(reason.contains("the lookup failed: preflight file upload failed after"), "{reason}");
}

#[test]
fn a_version_whose_etag_did_not_move_is_outcome_unknown() {
    // The commit was conditional on etag 1, and the file still has it: no new version is seen.
    // (The simulated Box does not check If-Match; its file's etag is 1.)
    let mut fake = FakeBox::new(8 * MIB).hook(lose_first_commit_answer());
    let run = run(new_version().if_match("1"), &mut fake);
    let (_, reason, _) = outcome_unknown(run);
    assert!(reason.contains("still has etag 1"), "{reason}");
}

// ---- a 201 without sha1 or size ------------------------------------------------------------------

fn answer_without(field: &'static str) -> impl FnMut(&Seen, &mut FakeBox) -> Answer {
    move |seen, fake| {
        if seen.kind != RequestKind::CommitSession {
            return Answer::Normal;
        }
        // Let the simulated Box commit (hooks are not run inside a hook), then answer without
        // the field.
        let r = fake.handle(seen.clone()).unwrap();
        fake.seen.pop();
        let mut files: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        files["entries"][0].as_object_mut().unwrap().remove(field);
        Answer::Respond(json(201, files))
    }
}

#[test]
fn a_commit_answer_without_sha1_or_size_is_confirmed_by_get_file() {
    for field in ["sha1", "size"] {
        let mut fake = FakeBox::new(8 * MIB).hook(answer_without(field));
        let run = run(new_file(), &mut fake);
        assert_confirmed(&run, &fake);
        let gets = seen(&fake, RequestKind::GetFile);
        assert_eq!(gets.len(), 1, "{field}");
        assert_get_file(&gets[0], "12345");
        assert_eq!(fake.count(RequestKind::PreflightFileUpload), 0);
    }
}

#[test]
fn a_commit_answer_without_sha1_whose_file_has_none_either_is_outcome_unknown() {
    let mut fake = FakeBox::new(8 * MIB).hook(answer_without("sha1")).hook(|seen, fake| {
        if seen.kind == RequestKind::GetFile {
            fake.file.as_mut().unwrap().as_object_mut().unwrap().remove("sha1");
        }
        Answer::Normal
    });
    let run = run(new_file(), &mut fake);
    let (file_id, reason, _) = outcome_unknown(run);
    assert_eq!(file_id.as_deref(), Some("12345"));
    assert!(reason.contains("names file 12345 but gives no sha1"), "{reason}");
    assert!(reason.contains("file 12345 as Box describes it has no sha1"), "{reason}");
}

#[test]
fn a_commit_answer_with_another_size_is_a_mismatch_without_a_lookup() {
    let mut fake = FakeBox::new(8 * MIB).hook(|seen, fake| {
        if seen.kind != RequestKind::CommitSession {
            return Answer::Normal;
        }
        let r = fake.handle(seen.clone()).unwrap();
        fake.seen.pop();
        let mut files: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        files["entries"][0]["size"] = serde_json::json!(SIZE - 1);
        files["entries"][0].as_object_mut().unwrap().remove("sha1");
        Answer::Respond(json(201, files))
    });
    let run = run(new_file(), &mut fake);
    match run.output {
        Err(Error::Protocol(ProtocolError::CommitMismatch { file_id, detail })) => {
            assert_eq!(file_id, "12345");
            assert!(detail.contains(&format!("{} bytes", SIZE - 1)), "{detail}");
        }
        other => panic!("expected CommitMismatch, got {other:?}"),
    }
    assert_eq!(fake.count(RequestKind::GetFile), 0);
}

// ---- CommitAndWait ------------------------------------------------------------------------------

/// A session of three 8-byte parts, and a commit of it.
fn session_fake() -> FakeBox {
    let mut fake = FakeBox::new(8);
    fake.file_size = 24;
    fake.session_exists = true;
    for i in 0..3 {
        let bytes = box_upload_core::bytes::Bytes::from(source_bytes(i * 8, 8));
        let sha1 = Sha1Digest::of(&bytes);
        fake.parts.insert(i * 8, StoredPart { part_id: format!("{:08X}", 0x1000 + i), size: 8, sha1, bytes });
    }
    fake
}

fn session_commit(fake: &FakeBox) -> CommitUploadSession {
    let parts: Vec<UploadPart> = fake
        .parts
        .iter()
        .map(|(o, p)| UploadPart { part_id: p.part_id.clone(), offset: *o, size: p.size, sha1: Some(p.sha1.to_hex()) })
        .collect();
    CommitUploadSession::by_id(SESSION, parts, whole_sha1(24))
}

fn commit_and_wait(fake: &mut FakeBox, target: Option<UploadTarget>) -> Run<Files> {
    let mut m = client().commit_and_wait(session_commit(fake));
    if let Some(t) = target {
        m = m.with_target(t);
    }
    drive(&mut m, fake, default_source(0), Order::Fifo)
}

#[test]
fn commit_and_wait_without_a_target_reports_a_lost_answer_then_404_as_outcome_unknown() {
    let mut fake = session_fake().hook(lose_first_commit_answer());
    let run = commit_and_wait(&mut fake, None);
    match run.output {
        Err(Error::CommitOutcomeUnknown { session_id, file_id, check, .. }) => {
            assert_eq!((session_id.as_str(), file_id), (SESSION, None));
            assert!(check.contains(&format!("the file session {SESSION} was created for")), "{check}");
        }
        other => panic!("expected CommitOutcomeUnknown, got {other:?}"),
    }
    // Nothing to look at, so nothing looked up.
    assert_eq!(fake.count(RequestKind::PreflightFileUpload) + fake.count(RequestKind::GetFile), 0);
}

#[test]
fn commit_and_wait_with_a_target_confirms_a_lost_answer() {
    let target = UploadTarget::NewFile { folder_id: "0".into(), file_name: "f.bin".into() };
    let mut fake = session_fake().hook(lose_first_commit_answer());
    let run = commit_and_wait(&mut fake, Some(target));
    let files = run.output.unwrap();
    assert_eq!(files.total_count, Some(1));
    assert_eq!(Some(serde_json::to_value(&files.entries[0]).unwrap()), fake.file);
    assert_eq!(files.entries[0].size, Some(24));
    assert_eq!(fake.count(RequestKind::PreflightFileUpload), 1);
    assert_eq!(fake.count(RequestKind::GetFile), 1);
}

#[test]
fn commit_and_wait_checks_the_answer_and_looks_up_one_without_sha1() {
    let mut fake = session_fake().hook(answer_without("sha1"));
    let run = commit_and_wait(&mut fake, None);
    assert_eq!(run.output.unwrap().entries[0].sha1.as_deref(), Some(whole_sha1(24).to_hex().as_str()));
    assert_get_file(&seen(&fake, RequestKind::GetFile)[0], "12345");
    // Another sha1 in the answer: a mismatch naming the file.
    let mut fake = session_fake().hook(|seen, _| match seen.kind {
        RequestKind::CommitSession => Answer::Respond(json(
            201,
            serde_json::json!({"entries": [{"id": "777", "type": "file", "size": 24, "sha1": Sha1Digest([1; 20]).to_hex()}]}),
        )),
        _ => Answer::Normal,
    });
    match commit_and_wait(&mut fake, None).output {
        Err(Error::Protocol(ProtocolError::CommitMismatch { file_id, .. })) => assert_eq!(file_id, "777"),
        other => panic!("expected CommitMismatch, got {other:?}"),
    }
}

// ---- the API host -------------------------------------------------------------------------------

#[test]
fn the_api_base_follows_the_upload_base_unless_set() {
    let default = Config::new();
    assert_eq!(default.api_base(), "https://api.box.com");
    let emulator = Config::new().with_upload_base("http://127.0.0.1:8787/api/").unwrap();
    assert_eq!(emulator.api_base(), "http://127.0.0.1:8787");
    let other_box_host = Config::new().with_upload_base("https://upload.app.box.com/api").unwrap();
    assert_eq!(other_box_host.api_base(), "https://api.box.com");
    // Set: kept, whichever comes first.
    let set = Config::new().with_api_base("http://127.0.0.1:9/").unwrap().with_upload_base("http://127.0.0.1:8/api");
    assert_eq!(set.unwrap().api_base(), "http://127.0.0.1:9");
    assert!(Config::new().with_api_base("ftp://x").is_err());
    let settings = ClientSettings {
        upload_base: Some("http://127.0.0.1:8/api".into()),
        api_base: Some("http://127.0.0.1:9".into()),
        ..ClientSettings::default()
    };
    let config = settings.config(1).unwrap();
    assert_eq!(config.api_base(), "http://127.0.0.1:9");
    // Its host is trusted like the upload host's, and no other.
    for url in ["http://127.0.0.1:9/2.0/files/1", "http://127.0.0.1:8/api/2.0/files/1"] {
        assert!(config.check_trusted(&url.parse().unwrap(), "test").is_ok(), "{url}");
    }
    assert!(config.check_trusted(&"http://127.0.0.1:10/2.0/files/1".parse().unwrap(), "test").is_err());
}

#[test]
fn lookups_go_to_the_api_base_and_never_to_boxs_hosts_from_an_emulator_config() {
    let config = Config::new().with_upload_base("http://127.0.0.1:8787/api").unwrap();
    let client = Client::new(config, DeveloperToken::new("tok"));
    let now = std::time::Instant::now();
    let mut call = client.call(GetFile::new("12345").unwrap());
    let t = call.poll_transmit(now).unwrap();
    assert_eq!(t.kind, RequestKind::GetFile);
    assert_eq!(t.request.uri(), "http://127.0.0.1:8787/2.0/files/12345");
    assert_eq!(t.request.headers()["authorization"], "Bearer tok");
    let mut call = client.call(PreflightFileUpload::new("0", "f.bin", 1).unwrap());
    let t = call.poll_transmit(now).unwrap();
    assert_eq!(t.request.uri(), "http://127.0.0.1:8787/2.0/files/content");
}
