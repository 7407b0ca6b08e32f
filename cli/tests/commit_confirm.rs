//! An upload whose commit answer is lost (the emulator applies the commit and closes the
//! connection; the resend answers 404): confirmed from the file on the API host, exit 0; not
//! confirmable, exit 7 with the session and what to check; `--api-url` / `BOX_API_URL` say where
//! the API host is.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{FaultAction, Faults, Op, Trigger};
use common::*;

fn commit_answer_lost() -> Faults {
    Faults::none().rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitAnswerLost)
}

#[test]
fn an_upload_whose_commit_answer_is_lost_exits_0_through_both_transports() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "lost.bin", SIZE, 21);
    let content = std::fs::read(&path).unwrap();
    for (transport, name) in [("hyper", "lost-hyper.bin"), ("ureq", "lost-ureq.bin")] {
        emu.set_faults(commit_answer_lost());
        let before = emu.counters();
        let out =
            run(cli(&emu, transport), &["upload", path.to_str().unwrap(), "--folder", "0", "--name", name, "--json"]);
        let file = json(&out);
        let stored = emu.find_file("0", name).unwrap();
        assert_eq!(file["id"], stored.id.as_str(), "{transport}");
        assert_eq!(file["size"], SIZE);
        assert_eq!(file["sha1"], sha1_hex(&content));
        assert_eq!(emu.file_content(&stored.id).unwrap(), content);
        let after = emu.counters();
        let sent = |op| after.requests(op) - before.requests(op);
        assert_eq!((sent(Op::Commit), after.commits - before.commits), (2, 1), "{transport}");
        // One preflight check before the session, one to confirm the commit.
        assert_eq!((sent(Op::Preflight), sent(Op::File)), (2, 1), "{transport}");
    }
}

#[test]
fn an_unconfirmable_commit_exits_7_with_the_session_and_what_to_check() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "v2.bin", SIZE, 22);
    let v1 = emu.create_file("0", "doc.bin", b"version one").unwrap();
    // Applied, answer lost, and every look at the file answered 404.
    emu.set_faults(commit_answer_lost().rule(
        Op::File,
        Trigger::Always,
        FaultAction::Status { status: 404, retry_after: None },
    ));
    let checkpoint = dir.path().join("v2.checkpoint.json");
    let out = run(
        cli(&emu, "ureq"),
        &["upload", path.to_str().unwrap(), "--file-id", &v1.id, "--checkpoint", checkpoint.to_str().unwrap()],
    );
    let check = format!("whether file {} holds sha1 {}", v1.id, sha1_hex(&std::fs::read(&path).unwrap()));
    assert_fails(&out, 7, &["commit outcome unknown for upload session", &check, "404"]);
    // Nothing aborted, and the checkpoint kept.
    assert_eq!(emu.counters().requests(Op::Abort), 0);
    assert!(checkpoint.exists());
}

#[test]
fn api_url_and_box_api_url_name_the_api_host() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "api.bin", SIZE, 23);
    // A port nothing listens on. A new file's preflight check goes there, beside the session's
    // creation: the upload fails before any part is sent, and the session is aborted (the
    // default, the upload URL's origin, would have passed; the lookup after a lost commit answer
    // uses the same host, see the behaviour suite).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = run(cli(&emu, "hyper"), &["--api-url", &nowhere, "upload", path.to_str().unwrap(), "--folder", "0"]);
    assert_fails(&out, 6, &["preflight file upload failed"]);
    assert_eq!((emu.counters().requests(Op::Preflight), emu.counters().requests(Op::CreateSession)), (0, 1));
    assert_eq!((emu.counters().requests(Op::UploadPart), emu.counters().requests(Op::Abort)), (0, 1));
    // BOX_API_URL: the emulator's API host, given explicitly.
    emu.set_faults(commit_answer_lost());
    let mut cmd = cli(&emu, "ureq");
    cmd.env("BOX_API_URL", emu.api_base_url());
    let out = run(cmd, &["upload", path.to_str().unwrap(), "--folder", "0", "--name", "api2.bin"]);
    assert_ok(&out);
    assert_eq!(emu.counters().requests(Op::Preflight), 2, "the check before the session and the confirmation");
    // --help lists the new exit code.
    let help = run(bare(), &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("7  commit outcome unknown") && text.contains("--api-url"), "{text}");
}
