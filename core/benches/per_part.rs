//! The core's cost per part, beside one plain SHA-1 pass over the same bytes.
//!
//! `core_upload` drives a whole [`BigUpload`] (session, parts, list, commit) against answers made
//! in memory, so what it measures is everything the core does per byte and per part: the part's
//! SHA-1 and the whole-file SHA-1 (one paired pass, as the transports read), building requests and
//! parsing answers. `sha1_one_pass` is the floor.
//!
//! Run: `cargo bench -p box-upload-core --bench per_part`

#![allow(missing_docs, clippy::unwrap_used)]

use box_upload_core::bytes::Bytes;
use box_upload_core::http::{Method, Response};
use box_upload_core::{Client, Config, ContentRange, DeveloperToken, Machine, RequestKind, Sha1Digest, UploadRequest};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Instant;

const PART: u64 = 8 << 20;

fn source(size: u64) -> Bytes {
    let mut v = Vec::with_capacity(size as usize);
    let mut x: u64 = 0x1234_5678;
    while (v.len() as u64) < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size as usize);
    Bytes::from(v)
}

fn json(status: u16, v: serde_json::Value) -> Response<Bytes> {
    Response::builder().status(status).body(Bytes::from(serde_json::to_vec(&v).unwrap())).unwrap()
}

/// A whole upload of `data`, answered in memory as Box would.
fn upload(data: &Bytes) {
    let size = data.len() as u64;
    let client = Client::new(Config::new(), DeveloperToken::new("t"));
    let mut m = client.big_upload(UploadRequest::new_file("0", "f.bin", size)).unwrap();
    let now = Instant::now();
    let mut parts = Vec::new();
    loop {
        while m.poll_event().is_some() {}
        if let Some(out) = m.poll_output() {
            black_box(out.unwrap());
            return;
        }
        if let Some(r) = m.poll_read() {
            let end = (r.offset + r.len as u64).min(size);
            let bytes = data.slice(r.offset.min(size) as usize..end as usize);
            // As the transports read: through the machine's builder, which carries the whole-file
            // hash on, so both digests come from one paired pass.
            let part = m.part_builder(&r, Vec::new()).finish_with_bytes(bytes);
            m.handle_read(r.id, Ok(part), now);
            continue;
        }
        let Some(t) = m.poll_transmit(now) else { panic!("stalled") };
        let answer = match (t.request.method(), t.kind) {
            (&Method::POST, RequestKind::CreateSession) => {
                json(201, serde_json::json!({"id": "S1", "part_size": PART, "total_parts": size.div_ceil(PART)}))
            }
            (_, RequestKind::UploadPart) => {
                let range: ContentRange = t.request.headers()["content-range"].to_str().unwrap().parse().unwrap();
                let sha1 = Sha1Digest::parse_header(t.request.headers()["digest"].to_str().unwrap()).unwrap();
                let part = serde_json::json!({"part_id": format!("{:08X}", range.offset()), "offset": range.offset(), "size": range.size(), "sha1": sha1.to_hex()});
                parts.push(part.clone());
                json(200, serde_json::json!({ "part": part }))
            }
            (_, RequestKind::ListParts) => {
                json(200, serde_json::json!({"entries": parts, "total_count": parts.len(), "offset": 0, "limit": 1000}))
            }
            (_, RequestKind::CommitSession) => {
                json(201, serde_json::json!({"entries": [{"id": "1", "type": "file", "size": size}], "total_count": 1}))
            }
            other => panic!("unexpected {other:?}"),
        };
        m.handle_response(t.id, answer, now);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_part");
    group.sample_size(20);
    for parts in [3u64, 8] {
        let size = parts * PART - 1234;
        let data = source(size);
        group.throughput(Throughput::Bytes(size));
        group.bench_with_input(BenchmarkId::new("sha1_one_pass", parts), &data, |b, d| {
            b.iter(|| black_box(Sha1Digest::of(d)))
        });
        group.bench_with_input(BenchmarkId::new("core_upload", parts), &data, |b, d| b.iter(|| upload(d)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
