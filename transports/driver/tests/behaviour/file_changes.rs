//! A file that changes during its upload is never committed: one that grows, one rewritten in
//! place with a new modification time, and one rewritten in place with its modification time
//! set back (as `rsync --inplace` or `cp -p` leave it), which only the status-change time
//! (ctime) shows, mid-way and once every part has been read and acknowledged (caught by the
//! check before the commit). Each upload fails with `SourceError::Changed` and its session is
//! aborted. (Unix: ctime.)

use crate::harness::{both, bytes, call, client, Harness, Kind, MIB, MIN_SIZE};
use box_upload_conformance::Op;
use box_upload_driver::core::{Error as CoreError, Progress, SourceError, UploadRequest};
use box_upload_driver::{Source, UploadOptions};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

both!(
    a_file_that_grows_is_never_committed,
    a_file_rewritten_with_a_new_mtime_is_never_committed,
    a_file_rewritten_in_place_with_its_mtime_restored_is_never_committed,
    a_file_rewritten_after_its_last_read_is_never_committed,
);

const SIZE: u64 = MIN_SIZE;

/// When three of the twenty parts are acknowledged: most of the file is still to be read.
fn early(p: &Progress) -> bool {
    p.parts_acknowledged >= 3
}

/// Uploads a file of `SIZE` bytes and calls `change` once, on the driver's loop, at the first
/// progress `when` accepts; the upload must fail with `SourceError::Changed`. Returns what the
/// error said.
fn changed_during_upload(kind: Kind, when: fn(&Progress) -> bool, change: fn(&Path)) -> (Harness, PathBuf, String) {
    let h = Harness::with_parts(kind, MIB);
    let path = h.file("changing.bin", SIZE, 13);
    let client = client!(&h, |b| b.parts_in_flight(2));
    let changed = Arc::new(AtomicBool::new(false));
    let (flag, target) = (Arc::clone(&changed), path.clone());
    let options = UploadOptions::new().on_progress(move |p| {
        if when(&p) && !flag.swap(true, Ordering::SeqCst) {
            change(&target);
        }
    });
    let err = call!(client, upload_with(Source::file(&path), UploadRequest::new_file("0", "changing.bin", 0), options))
        .unwrap_err();
    assert!(changed.load(Ordering::SeqCst), "the file was changed");
    let Some(CoreError::Source(SourceError::Changed(what))) = err.core() else {
        panic!("expected SourceError::Changed, got {err}");
    };
    let what = what.clone();
    let c = h.emu.counters();
    assert_eq!(c.requests(Op::Commit), 0, "nothing committed");
    assert_eq!(c.requests(Op::Abort), 1, "the session was aborted");
    h.assert_nothing_committed("changing.bin");
    (h, path, what)
}

fn a_file_that_grows_is_never_committed(kind: Kind) {
    let (h, path, what) = changed_during_upload(kind, early, |p| {
        use std::io::Write;
        OpenOptions::new().append(true).open(p).unwrap().write_all(b"more").unwrap();
    });
    assert_eq!(std::fs::metadata(path).unwrap().len(), SIZE + 4);
    assert!(h.emu.counters().requests(Op::UploadPart) < SIZE.div_ceil(MIB), "the upload stopped early");
    assert!(what.contains(&format!("size {SIZE} -> {}", SIZE + 4)), "{what}");
}

fn a_file_rewritten_with_a_new_mtime_is_never_committed(kind: Kind) {
    let (_h, _path, what) = changed_during_upload(kind, early, |p| {
        // Same size, new bytes at the start (a part already sent) and a new modification time.
        let f = OpenOptions::new().write(true).open(p).unwrap();
        f.write_at(b"changed", 0).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
    });
    assert!(what.contains("modified"), "{what}");
}

/// Flips 7 bytes at offset 100 (a part already sent) and sets the modification time back: the
/// size and mtime are what they were, only the ctime moved.
fn rewrite_in_place_restoring_the_mtime(p: &Path) {
    let before = std::fs::metadata(p).unwrap();
    // The kernel's file timestamps move with a coarse clock (a few ms): step past its tick so the
    // write's ctime differs from the one recorded when the upload started.
    std::thread::sleep(Duration::from_millis(20));
    let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut original = [0u8; 7];
    f.read_at(&mut original, 100).unwrap();
    let flipped: Vec<u8> = original.iter().map(|b| !b).collect();
    f.write_at(&flipped, 100).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    let after = std::fs::metadata(p).unwrap();
    assert_eq!((after.len(), after.modified().unwrap()), (before.len(), before.modified().unwrap()));
    assert_ne!((after.ctime(), after.ctime_nsec()), (before.ctime(), before.ctime_nsec()));
}

/// The rewrite was caught through the ctime alone.
fn assert_caught_by_the_ctime(path: &Path, what: &str) {
    assert_eq!(std::fs::metadata(path).unwrap().len(), SIZE);
    assert_ne!(std::fs::read(path).unwrap()[100..107], bytes(SIZE, 13)[100..107], "the bytes were rewritten");
    assert!(!what.contains("size") && !what.contains("modified"), "only the ctime moved: {what}");
    assert!(what.contains("status changed"), "{what}");
}

fn a_file_rewritten_in_place_with_its_mtime_restored_is_never_committed(kind: Kind) {
    let (h, path, what) = changed_during_upload(kind, early, rewrite_in_place_restoring_the_mtime);
    assert_caught_by_the_ctime(&path, &what);
    assert!(h.emu.counters().requests(Op::UploadPart) < SIZE.div_ceil(MIB), "the upload stopped early");
}

fn a_file_rewritten_after_its_last_read_is_never_committed(kind: Kind) {
    // Once every part is acknowledged, every read is done (the one at the end of the file too),
    // and the commit is next: the check before the commit must see the rewrite.
    let (h, path, what) =
        changed_during_upload(kind, |p| p.parts_acknowledged == p.total_parts, rewrite_in_place_restoring_the_mtime);
    assert_caught_by_the_ctime(&path, &what);
    assert_eq!(h.emu.counters().parts_stored, SIZE.div_ceil(MIB), "every part was sent");
}
