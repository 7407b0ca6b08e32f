//! Uploads a file to an upload base (e.g. a `box-upload-emulator`) and reports throughput and the
//! process's peak resident memory.
//!
//! ```text
//! box-upload-emulator --part-size 16777216 &   # prints http://127.0.0.1:PORT/api
//! cargo run --release -p box-upload-hyper --example upload_bench_hyper -- http://127.0.0.1:PORT/api big.bin 4
//! ```
#![allow(missing_docs)]

use box_upload_hyper::{Client, Source, UploadRequest};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: upload_bench_hyper <upload_base> <file> [parts_in_flight] [token]";
    let base = args.next().ok_or(usage)?;
    let path = args.next().ok_or(usage)?;
    let parts: usize = args.next().map(|p| p.parse()).transpose()?.unwrap_or(4);
    let token = args.next().unwrap_or_else(|| "test-token".into());
    let mut builder = Client::builder().upload_base(base).developer_token(token).parts_in_flight(parts);
    // BOX_CHUNKED_FROM: the cutoff between a direct upload and a session (benches/direct-vs-chunked.sh).
    if let Some(bytes) = std::env::var("BOX_CHUNKED_FROM").ok().and_then(|v| v.parse().ok()) {
        builder = builder.chunked_from(bytes);
    }
    let client = builder.build()?;
    let size = std::fs::metadata(&path)?.len();
    let name = format!("bench-{parts}-{}.bin", std::process::id());
    let started = Instant::now();
    let file = client.upload(Source::file(&path), UploadRequest::new_file("0", name, 0)).await?;
    let secs = started.elapsed().as_secs_f64();
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "parts_in_flight={parts} size={size} secs={secs:.2} MB/s={:.1} peak_rss={hwm} file_id={}",
        size as f64 / 1e6 / secs,
        file.id
    );
    Ok(())
}
