//! Each low-level subcommand against the emulator, through the built binary.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::Op;
use common::*;
use std::io::Write;
use std::process::Stdio;

/// session create → part upload ×4 (by id and by URL) → session parts --all → session commit (parts
/// on stdin, digest from --file); the committed content is the source.
fn create_parts_commit(transport: &str) {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "big.bin", SIZE, 11);
    let p = path.to_str().unwrap();

    let session = json(&run(
        cli(&emu, transport),
        &["session", "create", "--folder", "0", "--name", "big.bin", "--size", &SIZE.to_string()],
    ));
    let id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(session["part_size"], PART);
    assert_eq!(session["total_parts"], 4);
    let upload_url = session["session_endpoints"]["upload_part"].as_str().unwrap().to_owned();
    let commit_url = session["session_endpoints"]["commit"].as_str().unwrap().to_owned();

    for i in 0..4u64 {
        let offset = (i * PART).to_string();
        // Even parts by id (the size from the session), odd parts by URL with an explicit size.
        let out = if i % 2 == 0 {
            run(cli(&emu, transport), &["part", "upload", "--session", &id, "--file", p, "--offset", &offset])
        } else {
            let size = PART.min(SIZE - i * PART).to_string();
            run(
                cli(&emu, transport),
                &["part", "upload", &upload_url, "--file", p, "--offset", &offset, "--size", &size],
            )
        };
        let part = json(&out);
        assert_eq!(part["part"]["offset"], i * PART);
        assert_eq!(part["part"]["size"], PART.min(SIZE - i * PART));
    }
    assert_eq!(emu.counters().parts_stored, 4);

    let parts_out = run(cli(&emu, transport), &["session", "parts", &id, "--all"]);
    let parts = json(&parts_out);
    assert_eq!(parts["total_count"], 4);
    assert_eq!(parts["entries"].as_array().unwrap().len(), 4);

    let mut child = cli(&emu, transport)
        .args(["session", "commit", "--session-url", &commit_url, "--file", p])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&parts_out.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_no_secret(&out, TOKEN);
    let files = json(&out);
    let file = &files["entries"][0];
    let content = std::fs::read(&path).unwrap();
    assert_eq!(file["sha1"], sha1_hex(&content));
    assert_eq!(file["name"], "big.bin");
    assert!(emu.file_content(file["id"].as_str().unwrap()).unwrap() == content, "stored content differs");
}

#[test]
fn session_create_part_upload_parts_commit_hyper() {
    create_parts_commit("hyper");
}

#[test]
fn session_create_part_upload_parts_commit_ureq() {
    create_parts_commit("ureq");
}

/// session create-for-file; get by id (positional and --session) and by URL (positional and
/// --session-url); abort by id and by URL; a get after the abort is Box's 404 (exit 4).
#[test]
fn create_for_file_get_and_abort_by_id_and_url() {
    let emu = emulator();
    let old = emu.create_file("0", "doc.bin", b"version one").unwrap();
    let size = SIZE.to_string();
    let s1 = json(&run(
        cli(&emu, "hyper"),
        &["session", "create-for-file", "--file-id", &old.id, "--size", &size, "--name", "renamed.bin"],
    ));
    let s2 = json(&run(cli(&emu, "ureq"), &["session", "create-for-file", "--file-id", &old.id, "--size", &size]));
    let (id1, id2) = (s1["id"].as_str().unwrap(), s2["id"].as_str().unwrap());
    let status2 = s2["session_endpoints"]["status"].as_str().unwrap();
    let abort2 = s2["session_endpoints"]["abort"].as_str().unwrap();

    for args in [vec!["session", "get", id1], vec!["session", "get", "--session", id1]] {
        let got = json(&run(cli(&emu, "hyper"), &args));
        assert_eq!(got["id"], id1);
        assert_eq!(got["total_parts"], 4);
    }
    for args in [vec!["session", "get", status2], vec!["session", "get", "--session-url", status2]] {
        let got = json(&run(cli(&emu, "ureq"), &args));
        assert_eq!(got["id"], id2);
    }

    let out = run(cli(&emu, "hyper"), &["session", "abort", id1]);
    assert_ok(&out);
    assert!(out.stdout.is_empty());
    let out = run(cli(&emu, "ureq"), &["session", "abort", abort2]);
    assert_ok(&out);
    assert_eq!(emu.counters().requests(Op::Abort), 2);

    for (transport, session) in [("hyper", id1), ("ureq", status2)] {
        let out = run(cli(&emu, transport), &["session", "get", session]);
        assert_fails(&out, 4, &["404", "not_found", "request id"]);
    }
}

/// session parts pages with --offset and --limit.
#[test]
fn session_parts_paging() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "paged.bin", SIZE, 5);
    let p = path.to_str().unwrap();
    let session = json(&run(
        cli(&emu, "hyper"),
        &["session", "create", "--folder", "0", "--name", "paged.bin", "--size", &SIZE.to_string()],
    ));
    let id = session["id"].as_str().unwrap();
    let list_url = session["session_endpoints"]["list_parts"].as_str().unwrap();
    for i in 0..4u64 {
        assert_ok(&run(
            cli(&emu, "hyper"),
            &["part", "upload", id, "--file", p, "--offset", &(i * PART).to_string(), "--size", &PART.to_string()],
        ));
    }
    let first = json(&run(cli(&emu, "hyper"), &["session", "parts", id, "--limit", "3"]));
    let second = json(&run(cli(&emu, "ureq"), &["session", "parts", list_url, "--offset", "3", "--limit", "3"]));
    assert_eq!(first["entries"].as_array().unwrap().len(), 3);
    assert_eq!(second["entries"].as_array().unwrap().len(), 1);
    assert_eq!(first["total_count"], 4);
    assert_eq!(second["total_count"], 4);
    let offsets: Vec<u64> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["entries"].as_array().unwrap())
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, vec![0, PART, 2 * PART, 3 * PART]);
    let all = json(&run(cli(&emu, "hyper"), &["session", "parts", "--session", id, "--all", "--limit", "2"]));
    assert_eq!(all["entries"].as_array().unwrap().len(), 4);

    // A limit over Box's 1000 is refused before any request.
    let before = emu.counters().total_requests();
    let out = run(cli(&emu, "hyper"), &["session", "parts", id, "--limit", "1001"]);
    assert_fails(&out, 1, &["1000"]);
    assert_eq!(emu.counters().total_requests(), before);
}

/// A commit with a wrong digest is Box's digest_mismatch: an integrity failure (exit 5).
#[test]
fn commit_with_wrong_digest_is_integrity_failure() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "d.bin", SIZE, 9);
    let p = path.to_str().unwrap();
    let session = json(&run(
        cli(&emu, "ureq"),
        &["session", "create", "--folder", "0", "--name", "d.bin", "--size", &SIZE.to_string()],
    ));
    let id = session["id"].as_str().unwrap();
    for i in 0..4u64 {
        assert_ok(&run(cli(&emu, "ureq"), &["part", "upload", id, "--file", p, "--offset", &(i * PART).to_string()]));
    }
    let parts = run(cli(&emu, "ureq"), &["session", "parts", id]);
    let parts_file = dir.path().join("parts.json");
    std::fs::write(&parts_file, &parts.stdout).unwrap();
    let wrong = "0".repeat(40);
    let out =
        run(cli(&emu, "ureq"), &["session", "commit", id, "--parts", parts_file.to_str().unwrap(), "--digest", &wrong]);
    assert_fails(&out, 5, &["digest_mismatch"]);
    assert_eq!(emu.counters().commits, 0);
}

/// A server that lies about the listing: every page holds one part and says `total_count` is
/// `total`. It counts the requests it answers. (The session it describes has 4 parts.)
struct HostileServer {
    base: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl HostileServer {
    fn start(total: u64) -> Self {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/api", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The rest of the head (a GET has no body).
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let offset: u64 = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("offset="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let body = if path.ends_with("/parts") {
                    serde_json::json!({
                        "entries": [{
                            "part_id": format!("{:08X}", offset),
                            "offset": offset * PART,
                            "size": PART,
                            "sha1": "0".repeat(40),
                        }],
                        "limit": 1,
                        "offset": offset,
                        "total_count": total,
                    })
                } else {
                    serde_json::json!({
                        "id": "HOSTILE", "type": "upload_session", "part_size": PART,
                        "total_parts": 4, "num_parts_processed": 0,
                    })
                }
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Self { base, requests }
    }

    fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `session parts --all` against a server answering total_count 10^12, one part a page: the
/// core's listing bounds stop it at once with a clear error (exit 5, a parts-list mismatch), where
/// paging until the count is reached would go on for ever. By id the bound is the session's
/// `total_parts` (one GET first); by URL, the most parts a session can have.
#[test]
fn session_parts_all_stops_a_server_that_lies_about_total_count() {
    for transport in ["hyper", "ureq"] {
        for (by_url, needle, most_requests) in [(false, "session's 4 parts", 2), (true, "more than the session's", 1)] {
            let server = HostileServer::start(1_000_000_000_000);
            let target = if by_url {
                format!("{}/2.0/files/upload_sessions/HOSTILE/parts", server.base)
            } else {
                "HOSTILE".into()
            };
            let mut child = bare()
                .args(["--upload-url", &server.base, "--token", TOKEN, "--transport", transport])
                .args(["session", "parts", &target, "--all", "--limit", "1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    child.kill().unwrap();
                    panic!("{transport}: still paging after 60 s ({} requests)", server.requests());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let out = child.wait_with_output().unwrap();
            assert_no_secret(&out, TOKEN);
            assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
            assert_fails(&out, 5, &["session parts failed", "total_count 1000000000000", needle]);
            assert_eq!(server.requests(), most_requests, "{transport}, by url {by_url}");
        }
    }
}

/// A `total_count` within the session bound, but more than pages of `--limit 1` can reach
/// (Box's largest offset is 10,000): refused as soon as that is known, not after 10,000 pages.
#[test]
fn session_parts_all_never_pages_past_the_largest_offset() {
    for transport in ["hyper", "ureq"] {
        let server = HostileServer::start(10_900);
        let url = format!("{}/2.0/files/upload_sessions/HOSTILE/parts", server.base);
        let out = bare()
            .args(["--upload-url", &server.base, "--token", TOKEN, "--transport", transport])
            .args(["session", "parts", &url, "--all", "--limit", "1"])
            .output()
            .unwrap();
        assert_fails(&out, 4, &["session parts failed", "largest offset of 10000"]);
        assert!(server.requests() <= 2, "{transport}: {} requests", server.requests());
    }
}

/// `session commit` waits out Box's 202s (the core's commit machine, RetryPolicy's bounds) and
/// says so on stderr each time; the commit then goes through.
#[test]
fn session_commit_waits_out_202s() {
    use box_upload_conformance::{FaultAction, Faults, Trigger};
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "slow.bin", SIZE, 17);
    let p = path.to_str().unwrap();
    for transport in ["hyper", "ureq"] {
        let name = format!("slow-{transport}.bin");
        let session = json(&run(
            cli(&emu, transport),
            &["session", "create", "--folder", "0", "--name", &name, "--size", &SIZE.to_string()],
        ));
        let id = session["id"].as_str().unwrap();
        for i in 0..4u64 {
            assert_ok(&run(
                cli(&emu, transport),
                &["part", "upload", id, "--file", p, "--offset", &(i * PART).to_string()],
            ));
        }
        let parts = run(cli(&emu, transport), &["session", "parts", id, "--all"]);
        let parts_file = dir.path().join(format!("parts-{transport}.json"));
        std::fs::write(&parts_file, &parts.stdout).unwrap();
        emu.set_faults(Faults::none().rule(
            Op::Commit,
            Trigger::FirstN(2),
            FaultAction::CommitPending { retry_after: Some(1) },
        ));
        let commits = emu.counters().requests(Op::Commit);
        let out =
            run(cli(&emu, transport), &["session", "commit", id, "--parts", parts_file.to_str().unwrap(), "--file", p]);
        let files = json(&out);
        assert_eq!(files["entries"][0]["name"], name.as_str());
        assert_eq!(files["entries"][0]["sha1"], sha1_hex(&std::fs::read(&path).unwrap()));
        assert_eq!(emu.counters().requests(Op::Commit) - commits, 3);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches("still processing the parts (202)").count(), 2, "{transport}: {err}");
        emu.set_faults(Faults::none());
    }
}
