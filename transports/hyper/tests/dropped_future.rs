//! What only the async transport can show (everything else is in the shared behaviour suite,
//! `transports/driver/tests/behaviour`): dropping a method's future stops the run at once.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use box_upload_hyper::{Client, Source, UploadRequest};
use std::time::Duration;

/// Dropping the upload future aborts every request in flight: nothing more reaches the server,
/// and the session is left open (only a `CancelToken` aborts it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_future_stops_the_upload() {
    let faults = Faults::none().rule(Op::UploadPart, Trigger::Always, FaultAction::Delay(Duration::from_millis(100)));
    let emu = Emulator::builder().part_size(1024 * 1024).faults(faults).start().await.unwrap();
    let client = Client::builder()
        .upload_base(emu.upload_base_url())
        .developer_token("test-token")
        .parts_in_flight(2)
        // A session (the default cutoff would send 20 MB in one direct upload).
        .chunked_from(20_000_000)
        .build()
        .unwrap();
    let upload = client.upload(Source::bytes(vec![7u8; 20_000_001]), UploadRequest::new_file("0", "d.bin", 0));
    assert!(tokio::time::timeout(Duration::from_millis(350), upload).await.is_err());
    // A request already written when the future was dropped may still be on its way to the
    // emulator, which counts it on arrival: let those land before taking the count. A run that
    // went on would send about two parts per 100 ms (100 ms answers, two in flight).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = emu.counters().requests(Op::UploadPart);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = emu.counters();
    assert_eq!(c.requests(Op::UploadPart), sent, "no request after the drop");
    assert!(sent > 0 && sent < 20, "{sent} parts sent");
    assert_eq!((c.requests(Op::Abort), c.commits), (0, 0));
    assert_eq!(emu.session_ids().len(), 1, "the session is left open");
    emu.shutdown().await;
}
