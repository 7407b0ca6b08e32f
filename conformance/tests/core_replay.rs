//! The public core replay: a recorded big upload replays through `box-upload-core` with no
//! network, and a client that sends other bytes is caught.
#![allow(clippy::unwrap_used)]

mod common;

use box_upload_conformance::core_replay::{replay_config, replay_machine};
use box_upload_conformance::fixture::Fixture;
use box_upload_conformance::replay::{ReplayError, ReplayOptions};
use box_upload_core::{Client, DeveloperToken, PartData, UploadRequest};
use std::path::PathBuf;

const SIZE: usize = 20_000_000;

fn fixture(name: &str) -> Fixture {
    Fixture::load(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/emulator").join(name)).unwrap()
}

fn reader(content: Vec<u8>) -> impl FnMut(u64, usize) -> Result<PartData, box_upload_core::SourceError> {
    move |offset, len| {
        let start = (offset as usize).min(content.len());
        let end = (start + len).min(content.len());
        Ok(PartData::new(content[start..end].to_vec()))
    }
}

#[test]
fn recorded_big_upload_replays_through_the_core() {
    let client = Client::new(replay_config(), DeveloperToken::new("any"));
    let mut upload = client.big_upload(UploadRequest::new_file("0", "c.bin", SIZE as u64)).unwrap();
    let file = replay_machine(
        &mut upload,
        fixture("upload_big_file.json"),
        ReplayOptions::default(),
        reader(common::data(SIZE, 99)),
    )
    .expect("every request matches the recording")
    .expect("the recorded commit is accepted");
    assert_eq!(file.size, Some(SIZE as u64));
}

#[test]
fn other_bytes_are_a_mismatch() {
    let client = Client::new(replay_config(), DeveloperToken::new("any"));
    let mut upload = client.big_upload(UploadRequest::new_file("0", "c.bin", SIZE as u64)).unwrap();
    let mut content = common::data(SIZE, 99);
    content[9_000_000] ^= 1;
    let err = replay_machine(&mut upload, fixture("upload_big_file.json"), ReplayOptions::default(), reader(content))
        .unwrap_err();
    let ReplayError::Mismatches(m) = err else { panic!("{err:?}") };
    assert!(m[0].differences.iter().any(|d| d.contains("digest") || d.contains("body")), "{m:?}");
}

#[test]
fn another_file_name_is_a_mismatch() {
    let client = Client::new(replay_config(), DeveloperToken::new("any"));
    let mut upload = client.big_upload(UploadRequest::new_file("0", "other.bin", SIZE as u64)).unwrap();
    let err = replay_machine(
        &mut upload,
        fixture("upload_big_file.json"),
        ReplayOptions::default(),
        reader(common::data(SIZE, 99)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("body"), "{err}");
}

#[test]
fn a_202_with_retry_after_is_waited_out_on_a_simulated_clock() {
    // The recorded big upload, with Box answering the first commit 202 and Retry-After: 30.
    let mut f = fixture("upload_big_file.json");
    let commit = f.exchanges.last().unwrap().clone();
    let mut pending = commit.clone();
    pending.response.status = 202;
    pending.response.body = box_upload_conformance::fixture::Body::Empty;
    pending.response.headers.insert("retry-after".into(), "30".into());
    let at = f.exchanges.len() - 1;
    f.exchanges.insert(at, pending);
    let started = std::time::Instant::now();
    let client = Client::new(replay_config(), DeveloperToken::new("any"));
    let mut upload = client.big_upload(UploadRequest::new_file("0", "c.bin", SIZE as u64)).unwrap();
    let file = replay_machine(&mut upload, f, ReplayOptions::default(), reader(common::data(SIZE, 99)))
        .expect("both commits match")
        .expect("the second commit succeeds");
    assert_eq!(file.size, Some(SIZE as u64));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "no real waiting");
}
