//! Uploads of several sizes and part sizes to the emulator, compared byte for byte.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_ureq::UploadOptions;
use box_upload_conformance::{Faults, Op};
use box_upload_ureq::{Source, UploadRequest};
use common::{assert_same_file, client, emulator, temp_file, MIB};

fn roundtrip(size: u64, part_size: u64, parts_in_flight: usize, compare_bytes: bool) {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (path, sha1) = temp_file(dir.path(), "data.bin", size, size ^ part_size);
    let emu = emulator(part_size, Faults::none());
    let folder = emu.create_folder("uploads").unwrap();
    let client = client(&emu, parts_in_flight);
    let file =
        client.upload(Source::file(&path), UploadRequest::new_file(folder.clone(), "data.bin", size)).unwrap();
    assert_eq!(file.size, Some(size));
    assert_eq!(file.sha1.as_deref(), Some(sha1.as_str()));
    let info = emu.file_info(&file.id).unwrap();
    assert_eq!(info.size, size);
    assert_eq!(info.sha1, sha1);
    assert_eq!(info.folder_id, folder);
    if compare_bytes {
        assert_same_file(&path, info.path().expect("on disk"));
    } else {
        assert_eq!(common::sha1_file(info.path().expect("on disk")), sha1);
    }
    let counters = emu.counters();
    let parts = size.div_ceil(part_size);
    assert_eq!(counters.parts_stored, parts);
    assert_eq!(counters.requests(Op::UploadPart), parts, "no part sent twice");
    assert_eq!(counters.commits, 1);
    assert_eq!(counters.requests(Op::Abort), 0);
    assert!(emu.session_ids().is_empty(), "the session is gone after the commit");
}

#[test]
fn uploads_20_000_001_bytes_with_5_mib_parts() {
    roundtrip(20_000_001, 5 * MIB, 4, true);
}

#[test]
fn uploads_64_mib_plus_one_with_8_mib_parts() {
    roundtrip(64 * MIB + 1, 8 * MIB, 3, true);
}

#[test]
fn uploads_300_mib_with_16_mib_parts() {
    roundtrip(300 * MIB, 16 * MIB, 4, false);
}

#[test]
fn uploads_one_part_at_a_time() {
    roundtrip(20_000_001, 8 * MIB, 1, true);
}

#[test]
fn every_read_carries_the_whole_file_hash() {
    // The reader thread gets one read at a time, in order, through the machine's part builder, so
    // the whole-file SHA-1 is computed in the same pass as each part's and the machine never
    // hashes on its own (ece2636 once lost this without a test noticing).
    let emu = emulator(5 * MIB, Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB + 3;
    let (path, sha1) = temp_file(dir.path(), "carried.bin", size, 9);
    for parts_in_flight in [1, 4] {
        let client = client(&emu, parts_in_flight);
        let name = format!("carried-{parts_in_flight}.bin");
        let mut machine = client.core().big_upload(UploadRequest::new_file("0", name, size)).unwrap();
        let mut source = Source::file(&path);
        let uploaded = client.drive_with(&mut machine, source, UploadOptions::new()).unwrap();
        assert_eq!(uploaded.sha1.as_deref(), Some(sha1.as_str()));
        assert_eq!(machine.whole_file_bytes_hashed_here(), 0, "{parts_in_flight} in flight");
    }
}
