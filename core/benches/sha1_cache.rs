//! SHA-1 (the core's [`FileHasher`]) on data in cache against data that has to come from memory,
//! which is what decides how an upload's hashing should be fed (see `benches/README.md`,
//! findings). `sha1_impls` measures the hashers on 8 MiB that stays cached; this bench measures
//! the memory side.
//!
//! `sha1_cache_one_pass`:
//! - `hot`: a 1 MiB buffer hashed over and over (in cache);
//! - `cold`: one pass over a buffer far larger than the last-level cache (from memory);
//! - `cold_touch`: the same, each 64 KiB chunk's cache lines loaded (one byte each) before the
//!   chunk is hashed; the loads are independent, so many misses overlap, unlike SHA-1's serial
//!   rounds (the emulator's `hash_prefetched` does this);
//! - `cold_copy`: the same, copied 1 MiB at a time into a buffer that is then hashed.
//!
//! `sha1_cache_two_passes` (a part's digest and the whole file's, over 8 MiB parts of the big
//! buffer; throughput counts each input byte once):
//! - `part_then_file`: each part hashed whole, then fed to the whole-file hasher (the second pass
//!   reads 8 MiB back, from the outer cache levels at best);
//! - `both_256k`: the two hashers fed 256 KiB at a time, so the second pass reads from cache;
//! - `update_pair_256k`: one paired pass 256 KiB at a time, as the core and transports do.
//!
//! The big buffer is 1 GiB (`SHA1_CACHE_MIB=N` to change it); keep it well above the last-level
//! cache (this 2-vCPU guest reports a 480 MiB L3). A cold pass over 1 GiB takes about 0.9 s here,
//! the whole bench about 2.5 minutes.
//!
//! Run: `cargo bench -p box-upload-core --bench sha1_cache`

#![allow(missing_docs, clippy::unwrap_used)]

use box_upload_core::FileHasher;
use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::time::Duration;

const PART: usize = 8 << 20;
const CHUNK: usize = 256 << 10;

fn big_len() -> usize {
    let mib: usize = std::env::var("SHA1_CACHE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    mib.max(1) << 20
}

fn fill(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

/// One byte of each 64-byte cache line.
fn touch(chunk: &[u8]) -> u8 {
    chunk.iter().step_by(64).fold(0, |acc, &b| acc ^ b)
}

fn bench(c: &mut Criterion) {
    let big = fill(big_len());
    let hot = fill(1 << 20);

    let mut group = c.benchmark_group("sha1_cache_one_pass");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(hot.len() as u64));
    group.bench_function("hot", |b| {
        b.iter(|| {
            let mut h = FileHasher::new();
            h.update(&hot);
            black_box(h.finish())
        })
    });
    group.sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("cold", |b| {
        b.iter(|| {
            let mut h = FileHasher::new();
            h.update(&big);
            black_box(h.finish())
        })
    });
    group.bench_function("cold_touch", |b| {
        b.iter(|| {
            let mut h = FileHasher::new();
            let mut chunks = big.chunks(64 << 10).peekable();
            let mut sink = chunks.peek().map_or(0, |c| touch(c));
            while let Some(chunk) = chunks.next() {
                if let Some(next) = chunks.peek() {
                    sink ^= touch(next);
                }
                h.update(chunk);
            }
            black_box(sink);
            black_box(h.finish())
        })
    });
    group.bench_function("cold_copy", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut h = FileHasher::new();
            for chunk in big.chunks(buf.len()) {
                buf[..chunk.len()].copy_from_slice(chunk);
                h.update(&buf[..chunk.len()]);
            }
            black_box(h.finish())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("sha1_cache_two_passes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("part_then_file", |b| {
        b.iter(|| {
            let mut file = FileHasher::new();
            for part in big.chunks(PART) {
                let mut h = FileHasher::new();
                h.update(part);
                black_box(h.finish());
                file.update(part);
            }
            black_box(file.finish())
        })
    });
    group.bench_function("both_256k", |b| {
        b.iter(|| {
            let mut file = FileHasher::new();
            for part in big.chunks(PART) {
                let mut h = FileHasher::new();
                for chunk in part.chunks(CHUNK) {
                    h.update(chunk);
                    file.update(chunk);
                }
                black_box(h.finish());
            }
            black_box(file.finish())
        })
    });
    group.bench_function("update_pair_256k", |b| {
        b.iter(|| {
            let mut file = FileHasher::new();
            for part in big.chunks(PART) {
                let mut h = FileHasher::new();
                for chunk in part.chunks(CHUNK) {
                    h.update_pair(&mut file, chunk);
                }
                black_box(h.finish());
            }
            black_box(file.finish())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
