//! Uploads to the emulator, compared byte for byte with the source.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_hyper::UploadOptions;
use box_upload_conformance::{Emulator, Op};
use box_upload_hyper::{Source, UploadRequest};
use common::{client, file, init_tracing, same_content, sha1_hex_of_file, MIB};

/// One upload of a `size`-byte file with `part_size` parts; checks the stored file matches.
async fn round_trip(size: u64, part_size: u64, parts_in_flight: usize, seed: u64) {
    init_tracing();
    let emu = Emulator::builder().part_size(part_size).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "src.bin", size, seed);
    let client = client(&emu);
    let request = UploadRequest::new_file("0", "src.bin", 0).parts_in_flight(parts_in_flight);
    let uploaded = client.upload(Source::file(&path), request).await.unwrap();
    assert_eq!(uploaded.size, Some(size));
    let stored = emu.file_info(&uploaded.id).unwrap();
    assert!(same_content(&path, stored.path().expect("on disk")), "stored file differs from the source");
    assert_eq!(uploaded.sha1.as_deref(), Some(sha1_hex_of_file(&path).as_str()));
    let counters = emu.counters();
    let parts = size.div_ceil(part_size);
    assert_eq!(counters.requests(Op::UploadPart), parts, "each part sent once");
    assert_eq!(counters.parts_stored, parts);
    assert_eq!(counters.commits, 1);
    assert!(emu.session_ids().is_empty(), "no session left open");
    // Keep-alive: far fewer connections than requests.
    assert!(counters.connections <= parts_in_flight as u64 + 2, "connections {}", counters.connections);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_20000001_bytes_5mib_parts() {
    round_trip(20_000_001, 5 * MIB, 4, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_20000001_bytes_8mib_parts() {
    round_trip(20_000_001, 8 * MIB, 2, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_20000001_bytes_16mib_parts() {
    round_trip(20_000_001, 16 * MIB, 1, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_64mib_plus_1_5mib_parts() {
    round_trip(64 * MIB + 1, 5 * MIB, 4, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_64mib_plus_1_8mib_parts() {
    round_trip(64 * MIB + 1, 8 * MIB, 8, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_64mib_plus_1_16mib_parts() {
    round_trip(64 * MIB + 1, 16 * MIB, 3, 6).await;
}

/// The big one, once: compared by SHA-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_300mib_16mib_parts_sha1() {
    init_tracing();
    let size = 300 * MIB;
    let emu = Emulator::builder().part_size(16 * MIB).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "big.bin", size, 300);
    let want = sha1_hex_of_file(&path);
    let client = client(&emu);
    let started = std::time::Instant::now();
    let uploaded = client.upload(Source::file(&path), UploadRequest::new_file("0", "big.bin", size)).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("300 MiB in {secs:.2} s: {:.1} MB/s", size as f64 / 1e6 / secs);
    assert_eq!(uploaded.sha1.as_deref(), Some(want.as_str()));
    let stored = emu.file_info(&uploaded.id).unwrap();
    assert_eq!(stored.size, size);
    assert_eq!(sha1_hex_of_file(stored.path().expect("on disk")), want);
    emu.shutdown().await;
}

/// Bytes in memory and a stream give the same result as a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_and_reader_sources() {
    init_tracing();
    let size = 20_000_001u64;
    let data = common::bytes(size, 7);
    let emu = Emulator::builder().part_size(5 * MIB).start().await.unwrap();
    let client = client(&emu);
    let a = client.upload(Source::bytes(data.clone()), UploadRequest::new_file("0", "a.bin", 0)).await.unwrap();
    assert_eq!(emu.file_content(&a.id).unwrap(), data);
    let reader = std::io::Cursor::new(data.clone());
    let b = client.upload(Source::reader(reader), UploadRequest::new_file("0", "b.bin", size)).await.unwrap();
    assert_eq!(emu.file_content(&b.id).unwrap(), data);
    assert_eq!(a.sha1, b.sha1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_carries_the_whole_file_hash() {
    // The driver serves reads one at a time, in order, through the machine's part builder, so the
    // whole-file SHA-1 is computed on the reading thread in the same pass as each part's, and the
    // machine never hashes on its own (ece2636 once lost this without a test noticing).
    init_tracing();
    let emu = Emulator::builder().part_size(5 * MIB).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB + 3;
    let path = file(dir.path(), "carried.bin", size, 9);
    let client = client(&emu);
    for parts_in_flight in [1, 4] {
        let name = format!("carried-{parts_in_flight}.bin");
        let request = UploadRequest::new_file("0", &name, size).parts_in_flight(parts_in_flight);
        let mut machine = client.core().big_upload(request).unwrap();
        let uploaded = client.drive_with(&mut machine, Source::file(&path), UploadOptions::new()).await.unwrap();
        assert_eq!(uploaded.sha1.as_deref(), Some(sha1_hex_of_file(&path).as_str()));
        assert_eq!(machine.whole_file_bytes_hashed_here(), 0, "{parts_in_flight} in flight");
    }
    emu.shutdown().await;
}
