//! The callbacks of a run: every event reaches `on_event`, each progress event reaches
//! `on_progress` right after it, progress only moves forward and ends at the total, and the
//! checkpoint file is written while the upload runs and removed after it.

use crate::harness::{both, bytes, call, client, Harness, Kind, MIB, MIN_SIZE};
use box_upload_driver::core::{Event, Progress, UploadRequest};
use box_upload_driver::{Source, UploadOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

both!(events_and_progress_are_observed_in_order);

/// What the callbacks saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Event(Event),
    Progress(Progress),
}

fn events_and_progress_are_observed_in_order(kind: Kind) {
    let part = 2 * MIB;
    let h = Harness::with_parts(kind, part);
    let size = MIN_SIZE + 5;
    let total_parts = size.div_ceil(part);
    let data = bytes(size, 41);
    let checkpoint = h.path("events.json");
    let client = client!(&h, |b| b.parts_in_flight(3));

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let checkpoint_seen = Arc::new(AtomicBool::new(false));
    let (events, progress) = (Arc::clone(&seen), Arc::clone(&seen));
    let (flag, path) = (Arc::clone(&checkpoint_seen), checkpoint.clone());
    let options = UploadOptions::new()
        .checkpoint_file(&checkpoint)
        .on_event(move |e| {
            if let Event::Progress(p) = e {
                // The checkpoint of the first acknowledged part is on disk by the second.
                if p.parts_acknowledged >= 2 && path.exists() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            events.lock().unwrap().push(Seen::Event(e.clone()));
        })
        .on_progress(move |p| progress.lock().unwrap().push(Seen::Progress(p)));
    let uploaded =
        call!(client, upload_with(Source::bytes(data.clone()), UploadRequest::new_file("0", "e.bin", 0), options))
            .unwrap();
    h.assert_stored(&uploaded.id, &data);

    let seen = seen.lock().unwrap();
    // Every progress callback comes right after the progress event it reports.
    let mut progress = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        if let Seen::Progress(p) = s {
            assert_eq!(i.checked_sub(1).map(|i| &seen[i]), Some(&Seen::Event(Event::Progress(*p))), "#{i}");
            progress.push(*p);
        }
    }
    let progress_events = seen.iter().filter(|s| matches!(s, Seen::Event(Event::Progress(_)))).count();
    assert_eq!(progress.len(), progress_events, "one progress callback per progress event");

    // Progress only moves forward and ends at the total.
    assert!(progress.len() as u64 >= total_parts, "{} progress reports", progress.len());
    for pair in progress.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b.bytes_read >= a.bytes_read && b.bytes_acknowledged >= a.bytes_acknowledged, "{a:?} then {b:?}");
        assert!(b.parts_acknowledged >= a.parts_acknowledged, "{a:?} then {b:?}");
    }
    for p in &progress {
        assert_eq!((p.total_bytes, p.total_parts), (size, total_parts));
        assert!(p.bytes_acknowledged <= p.bytes_read && p.bytes_read <= size, "{p:?}");
    }
    let last = progress.last().unwrap();
    assert_eq!((last.bytes_read, last.bytes_acknowledged, last.parts_acknowledged), (size, size, total_parts));

    // The session first, the end last, checkpoints in between.
    let events: Vec<&Event> = seen.iter().filter_map(|s| if let Seen::Event(e) = s { Some(e) } else { None }).collect();
    let created = events.iter().position(|e| matches!(e, Event::SessionCreated { .. })).expect("SessionCreated");
    assert!(
        events[..created].iter().all(|e| matches!(e, Event::Progress(p) if p.parts_acknowledged == 0)),
        "{:?}",
        &events[..created]
    );
    assert_eq!(events.iter().filter(|e| matches!(e, Event::SessionCreated { .. })).count(), 1);
    let updated = events.iter().filter(|e| matches!(e, Event::CheckpointUpdated)).count() as u64;
    assert!(updated >= total_parts, "{updated} checkpoint updates for {total_parts} parts");
    assert_eq!(events.last(), Some(&&Event::Finished));
    assert!(!events.iter().any(|e| matches!(e, Event::Retrying { .. } | Event::Aborted { .. })), "{events:?}");
    assert!(checkpoint_seen.load(Ordering::SeqCst), "the checkpoint was written during the upload");
    assert!(!checkpoint.exists(), "and removed after the commit");
}
