//! `--transport hyper` and `--transport ureq` run one code path: the same scenario against two
//! emulators started alike gives the same stdout, stderr and exit code with either transport.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{FaultAction, Faults, Op, Trigger};
use common::*;
use std::path::Path;
use std::process::Output;

/// What a run showed, with what legitimately differs between two runs taken out: times
/// (`..._at` fields, durations and speeds) and the checkpoint's own path.
#[derive(Debug, PartialEq)]
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn seen(out: &Output, dir: &Path, transport: &str) -> Seen {
    let scrub = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes)
            .replace(dir.to_str().unwrap(), "DIR")
            .replace(&format!("{transport}.checkpoint"), "T.checkpoint");
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut v) => {
                drop_times(&mut v);
                serde_json::to_string_pretty(&v).unwrap()
            }
            // A summary line ends "..., version V, 0.4 s (52.1 MB/s)".
            Err(_) => text
                .lines()
                .map(|l| if l.starts_with("uploaded ") { l.rsplit_once(", ").map_or(l, |(kept, _)| kept) } else { l })
                .map(request_id_masked)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    };
    Seen { code: out.status.code(), stdout: scrub(&out.stdout), stderr: scrub(&out.stderr) }
}

/// Box's request id, drawn by the emulator in the order requests reach it: the preflight check
/// and the session's creation go out together, so the order (and the id) can differ.
fn request_id_masked(line: &str) -> String {
    match line.split_once("(request id ") {
        Some((before, after)) => {
            format!("{before}(request id ID){}", after.split_once(')').map_or("", |(_, rest)| rest))
        }
        None => line.to_owned(),
    }
}

fn drop_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.retain(|k, _| !k.ends_with("_at"));
            o.values_mut().for_each(drop_times);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_times),
        _ => {}
    }
}

/// Every run of the scenario with `transport`, each on a fresh emulator, files in `dir`.
fn scenario(transport: &str, dir: &Path) -> Vec<Seen> {
    let big = dir.join("big.bin");
    let small = dir.join("small.bin");
    let (b, s) = (big.to_str().unwrap(), small.to_str().unwrap());
    let checkpoint = dir.join(format!("{transport}.checkpoint.json"));
    let cp = checkpoint.to_str().unwrap();
    let mut all = Vec::new();
    let mut step = |emu: &box_upload_conformance::BlockingEmulator, args: &[&str]| {
        let out = run(cli(emu, transport), args);
        all.push(seen(&out, dir, transport));
        out
    };

    // Uploads: a summary line, JSON, a new version, a small file (direct), and the refusals.
    let emu = emulator();
    step(&emu, &["upload", b, "--folder", "0"]);
    let file = json(&step(&emu, &["upload", b, "--folder", "0", "--name", "copy.bin", "--json"]));
    step(&emu, &["upload", b, "--file-id", file["id"].as_str().unwrap(), "--json"]);
    step(&emu, &["upload", b, "--file-id", file["id"].as_str().unwrap(), "--if-match", "stale"]);
    step(&emu, &["upload", s, "--folder", "0"]);
    step(&emu, &["upload", "/nonexistent/file.bin", "--folder", "0"]);
    step(&emu, &["upload", b, "--folder", "987654321"]);

    // A failed commit keeps the checkpoint; resume finishes; the file changed is refused.
    let emu = emulator();
    emu.set_faults(Faults::none().rule(
        Op::Commit,
        Trigger::Always,
        FaultAction::Status { status: 400, retry_after: None },
    ));
    step(&emu, &["upload", b, "--folder", "0", "--checkpoint", cp]);
    emu.set_faults(Faults::none());
    step(&emu, &["resume", cp, "--json"]);
    assert!(!checkpoint.exists());
    emu.set_faults(Faults::none().rule(
        Op::Commit,
        Trigger::Always,
        FaultAction::Status { status: 400, retry_after: None },
    ));
    step(&emu, &["upload", b, "--folder", "0", "--name", "again.bin", "--checkpoint", cp]);
    emu.set_faults(Faults::none());
    step(&emu, &["resume", cp, s]);
    std::fs::write(&checkpoint, b"{not a checkpoint").unwrap();
    step(&emu, &["resume", cp]);
    std::fs::remove_file(&checkpoint).unwrap();
    step(&emu, &["resume", cp]);
    all
}

#[test]
fn hyper_and_ureq_give_the_same_output_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    make_file(dir.path(), "big.bin", SIZE, 21);
    make_file(dir.path(), "small.bin", 19_999_999, 22);
    let hyper = scenario("hyper", dir.path());
    let ureq = scenario("ureq", dir.path());
    assert_eq!(hyper.len(), ureq.len());
    for (i, (h, u)) in hyper.iter().zip(&ureq).enumerate() {
        assert_eq!(h, u, "step {i} differs between hyper and ureq");
    }
    let codes: Vec<_> = hyper.iter().map(|s| s.code).collect();
    assert_eq!(codes, [0, 0, 0, 4, 0, 6, 4, 4, 0, 4, 5, 1, 6].map(Some), "{hyper:#?}");
}
