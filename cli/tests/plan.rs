//! `box-upload session plan` and `upload --dedupe` against the emulator (issue 15), through both
//! transports.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::{BlockingEmulator, Emulator, PlanMode};
use common::*;

fn emulator_with(mode: PlanMode) -> BlockingEmulator {
    Emulator::builder().token(TOKEN).part_size(PART).seed(1).plan_mode(mode).start_blocking().unwrap()
}

/// A file stored as `v1`, a copy with part 2 changed, and a new-version session for it.
fn changed_copy(emu: &BlockingEmulator, dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let v1 = make_file(dir, "v1.bin", SIZE, 3);
    let id = emu.create_file("0", "f.bin", &std::fs::read(&v1).unwrap()).unwrap().id;
    let mut bytes = std::fs::read(&v1).unwrap();
    bytes[(2 * PART + 7) as usize] ^= 0x55;
    let v2 = dir.join("v2.bin");
    std::fs::write(&v2, &bytes).unwrap();
    (id, v2)
}

fn offsets(list: &serde_json::Value) -> Vec<u64> {
    list.as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect()
}

#[test]
fn session_plan_by_id_and_by_url() {
    for transport in ["hyper", "ureq"] {
        let emu = emulator_with(PlanMode::HitsNotAdded);
        let dir = tempfile::tempdir().unwrap();
        let (file_id, v2) = changed_copy(&emu, dir.path());
        let session = json(&run(
            cli(&emu, transport),
            &["session", "create-for-file", "--file-id", &file_id, "--size", &SIZE.to_string()],
        ));
        let id = session["id"].as_str().unwrap();
        let plan = json(&run(cli(&emu, transport), &["session", "plan", id, "--file", v2.to_str().unwrap()]));
        assert_eq!(offsets(&plan["hits"]), vec![0, PART, 3 * PART], "{transport}");
        assert_eq!(offsets(&plan["misses"]), vec![2 * PART], "{transport}");
        let url = session["session_endpoints"]["plan"].as_str().unwrap();
        let by_url = json(&run(
            cli(&emu, transport),
            &["session", "plan", url, "--file", v2.to_str().unwrap(), "--part-size", &PART.to_string()],
        ));
        assert_eq!(by_url["misses"], plan["misses"]);
        // By URL the part size cannot be asked of the session.
        let out = run(cli(&emu, transport), &["session", "plan", url, "--file", v2.to_str().unwrap()]);
        assert_fails(&out, 2, &["--part-size"]);
    }
}

#[test]
fn session_plan_on_a_box_without_it_is_a_box_error() {
    let emu = emulator_with(PlanMode::Off);
    let dir = tempfile::tempdir().unwrap();
    let (file_id, v2) = changed_copy(&emu, dir.path());
    let session = json(&run(
        cli(&emu, "ureq"),
        &["session", "create-for-file", "--file-id", &file_id, "--size", &SIZE.to_string()],
    ));
    let id = session["id"].as_str().unwrap();
    let out = run(cli(&emu, "ureq"), &["session", "plan", id, "--file", v2.to_str().unwrap()]);
    assert_fails(&out, 4, &["session plan failed", "404"]);
}

/// `upload --dedupe` of a new version with one part changed: with hits added to the session only
/// that part is sent; with hits not added they are uploaded after all; without the plan, a plain
/// upload. Committed byte for byte each time, through both transports.
#[test]
fn upload_dedupe_in_both_emulator_modes_and_without_a_plan() {
    // Hits added: both transports; the other modes one transport each (the behaviour suite runs
    // every mode through both).
    let runs = [
        (PlanMode::AddHits, 1u64, "hyper"),
        (PlanMode::AddHits, 1, "ureq"),
        (PlanMode::HitsNotAdded, 4, "hyper"),
        (PlanMode::Off, 4, "ureq"),
    ];
    for (mode, sent_parts, transport) in runs {
        {
            let emu = emulator_with(mode);
            let dir = tempfile::tempdir().unwrap();
            let (file_id, v2) = changed_copy(&emu, dir.path());
            let before = emu.counters().bytes_received;
            let out = run(
                cli(&emu, transport),
                &[
                    "upload",
                    v2.to_str().unwrap(),
                    "--file-id",
                    &file_id,
                    "--dedupe",
                    "--chunked-from",
                    "20000000",
                    "--json",
                ],
            );
            let file = json(&out);
            let expected = std::fs::read(&v2).unwrap();
            assert_eq!(file["sha1"], sha1_hex(&expected), "{mode:?} {transport}");
            assert!(emu.file_content(&file_id).unwrap() == expected, "{mode:?} {transport}: stored byte for byte");
            let sent = emu.counters().bytes_received - before;
            let expect_sent = if sent_parts == 1 { PART } else { SIZE };
            assert_eq!(sent, expect_sent, "{mode:?} {transport}: bytes sent");
        }
    }
}
