//! Cancel, keep, resume and checkpoints: a cancel that aborts the session, one that keeps it and
//! a resume from the checkpoint file that sends only the missing parts, a checkpoint that cannot
//! be written (the session aborted, or kept and resumed from the last checkpoint written), a
//! checkpoint held by another run, a checkpoint kept after success, and a resume with another file.

use crate::harness::{both, bytes, call, client, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_driver::core::{Checkpoint, Error as CoreError, Event, InputError, ResumeOptions, UploadRequest};
use box_upload_driver::{load_checkpoint, CancelToken, Error, Source, UploadOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(
    a_cancel_aborts_the_session,
    a_cancel_keeping_the_session_then_resume_sends_only_the_missing_parts,
    a_checkpoint_that_cannot_be_written_stops_the_upload_and_aborts_the_session,
    a_checkpoint_that_cannot_be_written_keeps_the_session_when_asked,
    a_checkpoint_held_by_another_run_is_refused,
    a_checkpoint_kept_after_success_names_every_part,
    resume_refuses_another_file,
);

const SIZE: u64 = MIN_SIZE + 1;
const PART: u64 = MIB;

/// Options that cancel `token` once `parts` parts are acknowledged.
fn cancel_after(parts: u64, token: &CancelToken) -> UploadOptions {
    let trigger = token.clone();
    UploadOptions::new().cancel_token(token.clone()).on_progress(move |p| {
        if p.parts_acknowledged >= parts {
            trigger.cancel();
        }
    })
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn a_cancel_aborts_the_session(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    let client = client!(&h, |b| b.parts_in_flight(2));
    let token = CancelToken::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let options = cancel_after(2, &token).on_event(move |e| seen.lock().unwrap().push(e.clone()));
    let err =
        call!(client, upload_with(Source::bytes(bytes(SIZE, 12)), UploadRequest::new_file("0", "c.bin", 0), options))
            .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(token.is_cancelled());
    let c = h.emu.counters();
    assert_eq!(c.requests(Op::Abort), 1);
    assert!(c.requests(Op::UploadPart) < SIZE.div_ceil(PART), "the cancel stopped the parts");
    h.assert_nothing_committed("c.bin");
    let events = events.lock().unwrap();
    assert!(events.contains(&Event::Aborted { confirmed: true }), "{events:?}");
}

fn a_cancel_keeping_the_session_then_resume_sends_only_the_missing_parts(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    let data = bytes(SIZE, 8);
    let path = h.path("r.bin");
    std::fs::write(&path, &data).unwrap();
    let checkpoint = h.path("r.checkpoint.json");
    let total = SIZE.div_ceil(PART);

    // One part at a time: when the sixth is acknowledged and the cancel seen, nothing is on the
    // wire, so Box holds exactly the parts the checkpoint names.
    let one = client!(&h, |b| b.parts_in_flight(1));
    let token = CancelToken::new();
    let options = cancel_after(6, &token).checkpoint_file(&checkpoint).keep_session_on_cancel(true);
    let err =
        call!(one, upload_with(Source::file(&path), UploadRequest::new_file("0", "r.bin", 0), options)).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(h.emu.session_ids().len(), 1, "the session was kept");
    let before = h.emu.counters();
    assert_eq!(before.requests(Op::Abort), 0);
    let saved = load_checkpoint(&checkpoint).unwrap();
    assert_eq!(saved.parts.len(), 6, "the checkpoint names the parts acknowledged");
    assert_eq!(before.parts_stored, 6);
    assert_eq!(before.requests(Op::UploadPart), 6);
    assert_eq!(saved.session.id, h.emu.session_ids()[0]);
    assert_eq!(saved.file_size, SIZE);

    // Resumed by another client, more in flight, from the checkpoint file (kept up to date).
    let three = client!(&h, |b| b.parts_in_flight(3));
    let read = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&read);
    let options = UploadOptions::new().on_progress(move |p| seen.store(p.bytes_read, Ordering::SeqCst));
    let uploaded =
        call!(three, resume_with(checkpoint.as_path(), Source::file(&path), ResumeOptions::default(), options))
            .unwrap();
    let after = h.emu.counters();
    assert_eq!(after.requests(Op::UploadPart) - before.requests(Op::UploadPart), total - 6, "only the missing parts");
    assert_eq!(read.load(Ordering::SeqCst), SIZE, "every byte was read (held parts are checked)");
    assert_eq!(after.commits, 1);
    h.assert_stored(&uploaded.id, &data);
    assert!(h.emu.session_ids().is_empty());
    assert_eq!(names(h.dir.path()), vec!["r.bin"], "the checkpoint and its lock are removed after the commit");
}

fn a_checkpoint_that_cannot_be_written_stops_the_upload_and_aborts_the_session(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    // A directory, not empty, where the checkpoint goes: the atomic rename onto it fails (even
    // for root).
    let checkpoint = h.path("ck.json");
    std::fs::create_dir(&checkpoint).unwrap();
    std::fs::write(checkpoint.join("occupied"), b"x").unwrap();
    let options = UploadOptions::new().checkpoint_file(&checkpoint);
    let err = call!(
        h.client,
        upload_with(Source::bytes(bytes(SIZE, 13)), UploadRequest::new_file("0", "ck.bin", 0), options)
    )
    .unwrap_err();
    assert!(matches!(&err, Error::Checkpoint { path, .. } if *path == checkpoint), "{err}");
    let c = h.emu.counters();
    assert_eq!(c.requests(Op::UploadPart), 0, "no part is sent before the first checkpoint is written");
    assert_eq!(c.requests(Op::Abort), 1, "the session was aborted");
    h.assert_nothing_committed("ck.bin");
    assert!(
        names(h.dir.path()).iter().all(|n| !n.ends_with(".tmp")),
        "a temporary file was left: {:?}",
        names(h.dir.path())
    );
}

fn a_checkpoint_that_cannot_be_written_keeps_the_session_when_asked(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    let data = bytes(SIZE, 14);
    let checkpoint = h.path("keep.json");
    let total = SIZE.div_ceil(PART);
    let client = client!(&h, |b| b.parts_in_flight(1));
    // Once three parts are acknowledged, the checkpoint file is taken away (kept here) and a
    // directory put in its place: the next write fails.
    let last: Arc<Mutex<Option<Checkpoint>>> = Arc::default();
    let (slot, target) = (Arc::clone(&last), checkpoint.clone());
    let options =
        UploadOptions::new().checkpoint_file(&checkpoint).keep_session_on_cancel(true).on_progress(move |p| {
            let mut slot = slot.lock().unwrap();
            if p.parts_acknowledged >= 3 && slot.is_none() {
                *slot = Some(load_checkpoint(&target).unwrap());
                std::fs::remove_file(&target).unwrap();
                std::fs::create_dir(&target).unwrap();
                std::fs::write(target.join("occupied"), b"x").unwrap();
            }
        });
    let err =
        call!(client, upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "k.bin", 0), options))
            .unwrap_err();
    assert!(matches!(&err, Error::Checkpoint { path, .. } if *path == checkpoint), "{err}");
    assert_eq!(h.emu.session_ids().len(), 1, "the session was kept");
    let before = h.emu.counters();
    assert_eq!(before.requests(Op::Abort), 0);
    assert_eq!(before.commits, 0);
    let last = last.lock().unwrap().take().expect("a checkpoint was written before");
    assert!(!last.parts.is_empty() && last.parts.len() <= 3, "{} parts", last.parts.len());

    // The last checkpoint written still resumes the session.
    let uploaded = call!(client, resume(last, Source::bytes(data.clone()), ResumeOptions::default())).unwrap();
    let sent = h.emu.counters().requests(Op::UploadPart) - before.requests(Op::UploadPart);
    assert_eq!(sent, total - before.parts_stored, "only what Box did not hold was sent");
    h.assert_stored(&uploaded.id, &data);
    assert!(h.emu.session_ids().is_empty());
}

fn a_checkpoint_held_by_another_run_is_refused(kind: Kind) {
    // The first run's parts stall, so it is still running (and holds the checkpoint's lock)
    // when the second starts.
    let faults = Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Delay(Duration::from_secs(5)));
    let h = Harness::start(kind, Emulator::builder().part_size(PART).faults(faults));
    let checkpoint = h.path("shared.json");
    let token = CancelToken::new();
    let (started, wait) = std::sync::mpsc::channel::<()>();
    let started = Mutex::new(started);
    let first = UploadOptions::new().checkpoint_file(&checkpoint).cancel_token(token.clone()).on_event(move |e| {
        if matches!(e, Event::SessionCreated { .. }) {
            let _ = started.lock().unwrap().send(());
        }
    });
    let client = &h.client;
    let (first, second) = std::thread::scope(|s| {
        let running = s.spawn(move || {
            call!(client, upload_with(Source::bytes(bytes(SIZE, 15)), UploadRequest::new_file("0", "a.bin", 0), first))
        });
        wait.recv_timeout(Duration::from_secs(10)).expect("the first run started");
        let options = UploadOptions::new().checkpoint_file(&checkpoint);
        let second = call!(
            client,
            upload_with(Source::bytes(bytes(SIZE, 16)), UploadRequest::new_file("0", "b.bin", 0), options)
        );
        token.cancel();
        (running.join().unwrap(), second)
    });
    let err = second.unwrap_err();
    assert!(matches!(&err, Error::CheckpointInUse { path, .. } if *path == checkpoint), "{err}");
    assert!(first.unwrap_err().is_cancelled());
    assert_eq!(h.emu.counters().requests(Op::CreateSession), 1, "the second run sent nothing");

    // Once the first run is over, the checkpoint is free again.
    h.emu.set_faults(Faults::none());
    let data = bytes(SIZE, 17);
    let options = UploadOptions::new().checkpoint_file(&checkpoint);
    let uploaded =
        call!(h.client, upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "c.bin", 0), options));
    h.assert_stored(&uploaded.unwrap().id, &data);
    assert!(!checkpoint.exists());
}

fn a_checkpoint_kept_after_success_names_every_part(kind: Kind) {
    let h = Harness::with_parts(kind, 4 * MIB);
    let checkpoint = h.path("kept.json");
    let options = UploadOptions::new().checkpoint_file(&checkpoint).keep_checkpoint_on_success(true);
    let data = bytes(SIZE, 18);
    let uploaded =
        call!(h.client, upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "kept.bin", 0), options))
            .unwrap();
    h.assert_stored(&uploaded.id, &data);
    let saved = load_checkpoint(&checkpoint).unwrap();
    assert_eq!(saved.parts.len() as u64, SIZE.div_ceil(4 * MIB));
    assert_eq!(saved.file_size, SIZE);
    // A committed session cannot be resumed.
    let err = call!(h.client, resume(checkpoint.as_path(), Source::bytes(data), ResumeOptions::default())).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::SessionGone { .. })), "{err}");
    assert_eq!(h.emu.counters().commits, 1);
}

fn resume_refuses_another_file(kind: Kind) {
    let h = Harness::with_parts(kind, PART);
    let path = h.file("a.bin", SIZE, 9);
    let other = h.file("b.bin", SIZE, 10);
    let checkpoint = h.path("a.checkpoint.json");
    let client = client!(&h, |b| b.parts_in_flight(1));
    let token = CancelToken::new();
    let options = cancel_after(1, &token).checkpoint_file(&checkpoint).keep_session_on_cancel(true);
    let err = call!(client, upload_with(Source::file(&path), UploadRequest::new_file("0", "a.bin", 0), options));
    assert!(err.unwrap_err().is_cancelled());
    let sent = h.emu.counters().total_requests();

    let err = call!(client, resume(checkpoint.as_path(), Source::file(&other), ResumeOptions::default())).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(InputError::CheckpointMismatch(_)))), "{err}");
    let err = call!(client, resume(checkpoint.as_path(), Source::bytes(bytes(SIZE - 1, 9)), ResumeOptions::default()))
        .unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::Input(_))), "a source of another size: {err}");
    assert_eq!(h.emu.counters().total_requests(), sent, "nothing was sent");

    // The right file still resumes it.
    let uploaded = call!(client, resume(checkpoint.as_path(), Source::file(&path), ResumeOptions::default())).unwrap();
    assert_eq!(uploaded.sha1.as_deref(), Some(crate::harness::sha1_hex_of_file(&path).as_str()));
}
