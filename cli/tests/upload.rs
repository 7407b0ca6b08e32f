//! `box-upload upload` and `resume` against the emulator: success, kill and resume, conditions,
//! bad input, credentials, and the embedded `--emulator` mode.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn upload_new_file_summary_and_json() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "movie.bin", SIZE, 1);
    let content = std::fs::read(&path).unwrap();
    let folder = emu.create_folder("uploads").unwrap();

    let out = run(cli(&emu, "hyper"), &["upload", path.to_str().unwrap(), "--folder", &folder]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(&sha1_hex(&content)) && stdout.contains("uploaded"), "{stdout}");
    let stored = emu.find_file(&folder, "movie.bin").unwrap();
    assert_eq!(emu.file_content(&stored.id).unwrap(), content);

    let out = run(
        cli(&emu, "ureq"),
        &["--parallel", "2", "upload", path.to_str().unwrap(), "--folder", &folder, "--name", "copy.bin", "--json"],
    );
    let file = json(&out);
    assert_eq!(file["type"], "file");
    assert_eq!(file["name"], "copy.bin");
    assert_eq!(file["size"], SIZE);
    assert_eq!(file["sha1"], sha1_hex(&content));
    assert_eq!(file["parent"]["id"], folder.as_str());
    // Quiet when stderr is not a terminal: no progress bar.
    assert!(!out.stderr.contains(&b'\r'), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `upload --checkpoint` killed (SIGKILL) after a part is acknowledged; `resume FILE` finishes, and
/// the parts Box already held were not sent again.
fn kill_and_resume(transport: &str) {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "resume.bin", SIZE, 2);
    let checkpoint = dir.path().join("resume.checkpoint.json");
    // The first part goes through; the others hang long enough to be killed mid-way.
    emu.set_faults(Faults::none().rule(
        Op::UploadPart,
        Trigger::Window { skip: 1, count: 1000 },
        FaultAction::Delay(Duration::from_secs(120)),
    ));
    let mut child = cli(&emu, transport)
        .args(["upload", path.to_str().unwrap(), "--folder", "0", "--checkpoint", checkpoint.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let parts = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["parts"].as_array().map(Vec::len))
            .unwrap_or(0);
        if parts >= 1 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the upload ended before it was killed");
        assert!(Instant::now() < deadline, "no checkpoint with a part within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    emu.set_faults(Faults::none());
    let before = emu.counters();
    assert!(before.parts_stored >= 1);
    assert_eq!(before.commits, 0);

    // PATH comes from the checkpoint.
    let out = run(cli(&emu, transport), &["resume", checkpoint.to_str().unwrap(), "--json"]);
    let file = json(&out);
    let after = emu.counters();
    let content = std::fs::read(&path).unwrap();
    assert_eq!(emu.file_content(file["id"].as_str().unwrap()).unwrap(), content);
    assert_eq!(file["sha1"], sha1_hex(&content));
    let sent = after.requests(Op::UploadPart) - before.requests(Op::UploadPart);
    assert_eq!(sent, 4 - before.parts_stored, "parts re-sent: {before:?} -> {after:?}");
    assert_eq!(after.parts_stored, 4);
    assert_eq!(after.commits, 1);
    assert!(!checkpoint.exists(), "the checkpoint is removed after the commit");
}

#[test]
fn upload_killed_then_resume_finishes_hyper() {
    kill_and_resume("hyper");
}

#[test]
fn upload_killed_then_resume_finishes_ureq() {
    kill_and_resume("ureq");
}

/// A new version with a stale --if-match is refused (412, exit 4); the file keeps its content.
#[test]
fn new_version_with_stale_if_match_is_refused() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let v1 = make_file(dir.path(), "v1.bin", SIZE, 3);
    let v2 = make_file(dir.path(), "v2.bin", SIZE + 7, 4);
    let file = emu.create_file("0", "doc.bin", b"version zero").unwrap();
    let etag0 = file.etag.clone();

    let out = run(cli(&emu, "hyper"), &["upload", v1.to_str().unwrap(), "--file-id", &file.id, "--if-match", &etag0]);
    assert_ok(&out);
    let now = emu.file_info(&file.id).unwrap();
    assert_ne!(now.etag, etag0);
    let v1_content = std::fs::read(&v1).unwrap();
    assert_eq!(emu.file_content(&file.id).unwrap(), v1_content);

    for transport in ["hyper", "ureq"] {
        let out =
            run(cli(&emu, transport), &["upload", v2.to_str().unwrap(), "--file-id", &file.id, "--if-match", &etag0]);
        assert_fails(&out, 4, &["412", "precondition"]);
        assert_eq!(emu.file_content(&file.id).unwrap(), v1_content, "the file changed");
        assert_eq!(emu.file_info(&file.id).unwrap().etag, now.etag);
    }
}

#[test]
fn missing_file_exits_6() {
    let emu = emulator();
    let out = run(cli(&emu, "hyper"), &["upload", "/nonexistent/dir/file.bin", "--folder", "0"]);
    assert_fails(&out, 6, &["/nonexistent/dir/file.bin", "no such file"]);
    assert_eq!(emu.counters().total_requests(), 0);
    let out = run(cli(&emu, "ureq"), &["part", "upload", "ABC", "--file", "/nonexistent/x", "--offset", "0"]);
    assert_fails(&out, 6, &["/nonexistent/x"]);
}

#[test]
fn any_size_uploads_direct_below_the_cutoff_and_in_a_session_from_it() {
    let dir = tempfile::tempdir().unwrap();
    for transport in ["hyper", "ureq"] {
        let emu = emulator();
        for (size, direct) in [(0, true), (1_000, true), (19_999_999, true), (20_000_000, false), (60_000_000, false)] {
            let name = format!("{transport}-{size}.bin");
            let path = make_file(dir.path(), &name, size, 5);
            let before = emu.counters();
            let out = run(cli(&emu, transport), &["upload", path.to_str().unwrap(), "--folder", "0", "--json"]);
            let file = json(&out);
            assert_eq!(file["size"], size, "{transport} {size}");
            let content = std::fs::read(&path).unwrap();
            assert_eq!(file["sha1"], sha1_hex(&content));
            assert_eq!(emu.file_content(file["id"].as_str().unwrap()).unwrap(), content, "{transport} {size}");
            let after = emu.counters();
            let direct_sends = after.requests(Op::UploadFile) - before.requests(Op::UploadFile);
            let sessions = after.requests(Op::CreateSession) - before.requests(Op::CreateSession);
            assert_eq!((direct_sends, sessions), if direct { (1, 0) } else { (0, 1) }, "{transport} {size}");
        }
    }
    // By default (no BOX_CHUNKED_FROM), files below 25,000,000 bytes go direct.
    let emu = emulator();
    let path = make_file(dir.path(), "default.bin", 20_000_000, 9);
    let mut cmd = cli(&emu, "ureq");
    cmd.env_remove("BOX_CHUNKED_FROM");
    let file = json(&run(cmd, &["upload", path.to_str().unwrap(), "--folder", "0", "--json"]));
    assert_eq!(file["size"], 20_000_000);
    assert_eq!((emu.counters().requests(Op::UploadFile), emu.counters().requests(Op::CreateSession)), (1, 0));
    // The cutoff is the user's, within Box's limits.
    let emu = emulator();
    let path = make_file(dir.path(), "cut.bin", 1_000, 6);
    let out = run(cli(&emu, "ureq"), &["upload", path.to_str().unwrap(), "--folder", "0", "--chunked-from", "1000"]);
    assert_fails(&out, 2, &["--chunked-from", "20000000"]);
    let out = run(cli(&emu, "hyper"), &["session", "create", "--folder", "0", "--name", "x", "--size", "1000"]);
    assert_fails(&out, 1, &["20000000"]);
    assert_eq!(emu.counters().total_requests(), 0, "a request reached the emulator");
}

#[test]
fn on_conflict_fail_version_and_skip() {
    let dir = tempfile::tempdir().unwrap();
    for transport in ["hyper", "ureq"] {
        let emu = emulator();
        let path = make_file(dir.path(), "notes.txt", 1_000, 7);
        let content = std::fs::read(&path).unwrap();
        let old = emu.create_file("0", "notes.txt", b"old notes").unwrap();
        let upload = |extra: &[&str]| {
            let mut args = vec!["upload", path.to_str().unwrap(), "--folder", "0", "--json"];
            args.extend_from_slice(extra);
            run(cli(&emu, transport), &args)
        };
        // Default: Box's 409, exit 4, nothing changed.
        assert_fails(&upload(&[]), 4, &["item_name_in_use"]);
        assert_eq!(emu.file_content(&old.id).unwrap(), b"old notes");
        // Other content under the name: skip fails the same way.
        assert_fails(&upload(&["--on-conflict", "skip"]), 4, &["item_name_in_use"]);
        // version: a new version of that file.
        let file = json(&upload(&["--on-conflict", "version"]));
        assert_eq!(file["id"], old.id.as_str(), "{transport}");
        assert_eq!(emu.file_content(&old.id).unwrap(), content);
        // skip: the same content now, nothing is sent.
        let before = emu.counters().requests(Op::UploadFile);
        let file = json(&upload(&["--on-conflict", "skip"]));
        assert_eq!(
            (file["id"].as_str(), file["sha1"].as_str()),
            (Some(old.id.as_str()), Some(sha1_hex(&content).as_str()))
        );
        assert_eq!(emu.counters().requests(Op::UploadFile), before, "{transport}: skipped");
    }
}

#[test]
fn the_files_modification_time_goes_to_box_unless_no_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator();
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    for (transport, flag) in [("hyper", None), ("ureq", Some("--no-timestamps"))] {
        let name = format!("{transport}.txt");
        let path = make_file(dir.path(), &name, 100, 8);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        let mut args = vec!["upload", path.to_str().unwrap(), "--folder", "0", "--json"];
        args.extend(flag);
        let file = json(&run(cli(&emu, transport), &args));
        let stored = emu.file_info(file["id"].as_str().unwrap()).unwrap();
        match flag {
            None => {
                assert_eq!(stored.content_modified_at.as_deref(), Some("2020-01-02T03:04:05Z"));
                assert_eq!(file["content_modified_at"], "2020-01-02T03:04:05Z");
            }
            Some(_) => assert_eq!(stored.content_modified_at, None),
        }
    }
}

#[test]
fn unknown_folder_exits_4_with_404() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "f.bin", SIZE, 6);
    for transport in ["hyper", "ureq"] {
        let out = run(cli(&emu, transport), &["upload", path.to_str().unwrap(), "--folder", "987654321"]);
        assert_fails(&out, 4, &["404", "not_found", "request id"]);
    }
}

#[test]
fn bad_token_exits_3_and_is_never_printed() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "f.bin", SIZE, 7);
    let bad = "BAD-token-0c1d2e3f";
    for transport in ["hyper", "ureq"] {
        for verbosity in ["-q", "-vv"] {
            let mut cmd = bare();
            cmd.args(["--upload-url", &emu.upload_base_url(), "--transport", transport]);
            if verbosity != "-q" {
                cmd.arg(verbosity);
            }
            cmd.env("BOX_DEVELOPER_TOKEN", bad);
            let out = cmd.args(["upload", path.to_str().unwrap(), "--folder", "0"]).output().unwrap();
            assert_fails(&out, 3, &["401"]);
            assert_no_secret(&out, bad);
        }
    }
    // No credentials at all: exit 3 too, before any request.
    let before = emu.counters().total_requests();
    let out = bare().args(["--upload-url", &emu.upload_base_url(), "session", "get", "X"]).output().unwrap();
    assert_fails(&out, 3, &["no credentials"]);
    assert_eq!(emu.counters().total_requests(), before);
}

/// -v logs each request (method, kind, path, status) on stderr, never the token.
#[test]
fn verbose_logs_requests_without_the_token() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "v.bin", SIZE, 8);
    for transport in ["hyper", "ureq"] {
        let name = format!("v-{transport}.bin");
        let out =
            run(cli(&emu, transport), &["-v", "upload", path.to_str().unwrap(), "--folder", "0", "--name", &name]);
        assert_ok(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("upload part") || err.contains("upload_part"), "{err}");
        assert!(err.contains("/2.0/files/upload_sessions"), "{err}");
        assert!(err.to_lowercase().contains("commit"), "{err}");
    }
}

/// The Client Credentials Grant against the emulator's token endpoint; the secret never shows.
#[test]
fn client_credentials_grant() {
    let emu = Emulator::builder()
        .token(TOKEN)
        .part_size(PART)
        .client_credentials("cid-123", "csecret-SHH-42")
        .start_blocking()
        .unwrap();
    for transport in ["hyper", "ureq"] {
        let out = bare()
            .args(["--upload-url", &emu.upload_base_url(), "--transport", transport, "-vv"])
            .args(["--client-id", "cid-123", "--subject-type", "enterprise", "--subject-id", "42"])
            .args(["--token-url", &emu.token_url()])
            .env("BOX_CLIENT_SECRET", "csecret-SHH-42")
            .args(["session", "create", "--folder", "0", "--name", &format!("{transport}.bin"), "--size", "20000000"])
            .output()
            .unwrap();
        let session = json(&out);
        assert!(session["id"].is_string());
        assert_no_secret(&out, "csecret-SHH-42");
    }
    assert!(emu.counters().requests(Op::Token) >= 2);
    // A wrong secret: auth failure, exit 3.
    let out = bare()
        .args(["--upload-url", &emu.upload_base_url(), "--client-id", "cid-123", "--client-secret", "nope-XYZ"])
        .args(["--subject-type", "user", "--subject-id", "7", "--token-url", &emu.token_url()])
        .args(["session", "get", "ABC"])
        .output()
        .unwrap();
    assert_fails(&out, 3, &["token"]);
    assert_no_secret(&out, "nope-XYZ");
}

/// `upload --emulator PATH`: in-process emulator, real HTTP, download and byte-for-byte check.
#[test]
fn upload_emulator_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "e.bin", SIZE, 10);
    let sha1 = sha1_hex(&std::fs::read(&path).unwrap());
    for transport in ["hyper", "ureq"] {
        let out =
            bare().args(["--transport", transport, "upload", "--emulator", path.to_str().unwrap()]).output().unwrap();
        assert_ok(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let verified = stdout.lines().find(|l| l.starts_with("verified")).unwrap_or_else(|| panic!("{stdout}"));
        assert!(verified.contains(&sha1), "{verified}");
    }
}

#[test]
fn help_lists_exit_codes_and_usage_errors_exit_2() {
    let out = bare().arg("--help").output().unwrap();
    assert_ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["Exit codes", "3  authentication", "4  Box answered", "5  integrity", "6  I/O", "session", "resume"]
    {
        assert!(help.contains(needle), "{needle:?} not in help");
    }
    let out = bare().args(["upload", "x.bin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bare().args(["session", "get"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The token's value is hidden from help even when set in the environment.
    let out = bare().env("BOX_DEVELOPER_TOKEN", "env-secret-999").arg("--help").output().unwrap();
    assert_no_secret(&out, "env-secret-999");
}

/// Ctrl-C (SIGINT) stops the upload: with --checkpoint the session is kept and `resume` finishes;
/// without, the session is aborted.
#[test]
fn ctrl_c_keeps_the_session_with_a_checkpoint_and_aborts_without() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "int.bin", SIZE, 14);
    let checkpoint = dir.path().join("int.checkpoint.json");
    // The ureq transport waits for requests in flight before it stops (its requests cannot be
    // interrupted), so its parts hang only briefly here; hyper's are dropped at once.
    for (transport, with_checkpoint, hang) in [("hyper", true, 120), ("ureq", false, 2)] {
        emu.set_faults(Faults::none().rule(
            Op::UploadPart,
            Trigger::Window { skip: 1, count: 1000 },
            FaultAction::Delay(Duration::from_secs(hang)),
        ));
        let aborts = emu.counters().requests(Op::Abort);
        let stored = emu.counters().parts_stored;
        let mut cmd = cli(&emu, transport);
        cmd.args(["upload", path.to_str().unwrap(), "--folder", "0", "--name", &format!("{transport}.bin")]);
        if with_checkpoint {
            cmd.args(["--checkpoint", checkpoint.to_str().unwrap()]);
        }
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while emu.counters().parts_stored <= stored {
            assert!(Instant::now() < deadline, "no part stored within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let signalled = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(signalled.elapsed() < Duration::from_secs(30), "{transport}: {:?} to stop", signalled.elapsed());
        assert_no_secret(&out, TOKEN);
        assert_fails(&out, 1, &["interrupted"]);
        emu.set_faults(Faults::none());
        if with_checkpoint {
            assert_eq!(emu.counters().requests(Op::Abort), aborts, "the session was aborted");
            let file = json(&run(cli(&emu, "ureq"), &["resume", checkpoint.to_str().unwrap(), "--json"]));
            assert_eq!(file["sha1"], sha1_hex(&std::fs::read(&path).unwrap()));
        } else {
            assert_eq!(emu.counters().requests(Op::Abort), aborts + 1, "the session was not aborted");
        }
    }
}

/// A resume after the file changed is refused as an integrity failure (exit 5), and nothing is
/// committed.
#[test]
fn resume_of_a_changed_file_is_refused() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "changing.bin", SIZE, 15);
    let checkpoint = dir.path().join("changing.checkpoint.json");
    emu.set_faults(Faults::none().rule(
        Op::Commit,
        Trigger::Always,
        FaultAction::Status { status: 400, retry_after: None },
    ));
    // With the commit failing, the upload stops after its parts and keeps the checkpoint.
    let out = run(
        cli(&emu, "ureq"),
        &["upload", path.to_str().unwrap(), "--folder", "0", "--checkpoint", checkpoint.to_str().unwrap()],
    );
    assert_fails(&out, 4, &["400"]);
    assert!(checkpoint.exists());
    emu.set_faults(Faults::none());
    std::thread::sleep(Duration::from_millis(20));
    make_file(dir.path(), "changing.bin", SIZE, 16);
    let out = run(cli(&emu, "hyper"), &["resume", checkpoint.to_str().unwrap()]);
    assert_fails(&out, 5, &["resume of"]);
    assert_eq!(emu.counters().commits, 0);
}

/// A checkpoint held by a running upload cannot be resumed (or uploaded with) by a second run at
/// the same time: exit 1, nothing sent by the second run; the first finishes.
#[test]
fn a_checkpoint_in_use_is_refused_and_nothing_is_sent() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "busy.bin", SIZE, 18);
    let checkpoint = dir.path().join("busy.checkpoint.json");
    let cp = checkpoint.to_str().unwrap();
    emu.set_faults(Faults::none().rule(
        Op::UploadPart,
        Trigger::Window { skip: 1, count: 1000 },
        FaultAction::Delay(Duration::from_secs(3)),
    ));
    let child = cli(&emu, "hyper")
        .args(["upload", path.to_str().unwrap(), "--folder", "0", "--checkpoint", cp])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !checkpoint.exists() {
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (transport, args) in [
        ("ureq", vec!["resume", cp]),
        ("hyper", vec!["upload", path.to_str().unwrap(), "--folder", "0", "--name", "other.bin", "--checkpoint", cp]),
    ] {
        let before = emu.counters().requests(Op::CreateSession);
        let out = run(cli(&emu, transport), &args);
        assert_fails(&out, 1, &["in use by another upload", "nothing was sent"]);
        assert_eq!(emu.counters().requests(Op::CreateSession), before);
    }
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert!(!checkpoint.exists());
}

/// Below the cutoff a file goes in one direct request: options only a session uses are named as
/// unused, not dropped silently, and no checkpoint is written.
#[test]
fn a_small_file_with_checkpoint_and_dedupe_says_they_are_unused() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "small.bin", 1_000, 41);
    let checkpoint = dir.path().join("small.checkpoint.json");
    let out = run(
        cli(&emu, "ureq"),
        &["upload", path.to_str().unwrap(), "--folder", "0", "--checkpoint", checkpoint.to_str().unwrap(), "--dedupe"],
    );
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("goes in one direct request; unused: --checkpoint"), "{stderr}");
    assert!(stderr.contains("--dedupe"), "{stderr}");
    assert!(!checkpoint.exists());
    assert_eq!(emu.counters().requests(Op::UploadFile), 1);
    // From the cutoff, no note.
    let big = make_file(dir.path(), "big.bin", SIZE, 42);
    let out = run(cli(&emu, "ureq"), &["upload", big.to_str().unwrap(), "--folder", "0", "--dedupe"]);
    assert_ok(&out);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unused"));
}
