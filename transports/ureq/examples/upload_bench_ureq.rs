//! Uploads a file to a Box upload API (e.g. a `box-upload-emulator` on loopback) and prints the
//! throughput and this process's peak RSS.
//!
//! ```text
//! box-upload-emulator --listen 127.0.0.1:8787 --part-size 8388608 &
//! cargo run --release -p box-upload-ureq --example upload_bench_ureq -- http://127.0.0.1:8787/api FILE PARTS_IN_FLIGHT
//! ```
#![allow(clippy::unwrap_used)]

use box_upload_ureq::{Client, Source, UploadRequest};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().ok_or("usage: upload_bench_ureq UPLOAD_BASE FILE [PARTS_IN_FLIGHT] [FOLDER_ID]")?;
    let path = args.next().ok_or("missing FILE")?;
    let parts: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let folder = args.next().unwrap_or_else(|| "0".into());
    let token = std::env::var("BOX_TOKEN").unwrap_or_else(|_| "test-token".into());
    let mut builder = Client::builder().upload_base(base).developer_token(token).parts_in_flight(parts);
    // BOX_CHUNKED_FROM: the cutoff between a direct upload and a session (benches/direct-vs-chunked.sh).
    if let Some(bytes) = std::env::var("BOX_CHUNKED_FROM").ok().and_then(|v| v.parse().ok()) {
        builder = builder.chunked_from(bytes);
    }
    let client = builder.build()?;
    let source = Source::file(&path);
    let size = std::fs::metadata(&path)?.len();
    let name = format!("bench-{}-{}.bin", parts, std::process::id());
    let started = Instant::now();
    let file = client.upload(source, UploadRequest::new_file(folder, name, size))?;
    let secs = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l["VmHWM:".len()..].trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    println!(
        "parts_in_flight={parts} size={size} time={secs:.2}s throughput={:.1} MB/s ({:.1} MiB/s) peak_rss={rss} file={}",
        size as f64 / secs / 1e6,
        size as f64 / secs / (1024.0 * 1024.0),
        file.id
    );
    Ok(())
}
