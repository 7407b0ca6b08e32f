//! SHA-1 implementations on 8 MiB, one part: the `sha1` crate the core uses, and `ring`'s. The
//! script `core/benches/sha1-vs-openssl.sh` runs this beside `openssl speed` in the same run.
//! `two_passes_8MiB`: a part's digest and the whole file's over the same bytes, as a big upload
//! computes them (256 KiB at a time, in cache): two `sha1` crate passes, two `FileHasher`
//! passes, and one `FileHasher::update_pair` pass.
//!
//! Run: `cargo bench -p box-upload-core --bench sha1_impls`

#![allow(missing_docs, clippy::unwrap_used)]

use box_upload_core::FileHasher;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sha1::Digest as _;

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let mut group = c.benchmark_group("sha1_8MiB");
    group.sample_size(30);
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("sha1_crate", |b| b.iter(|| black_box(sha1::Sha1::digest(&data))));
    group.bench_function("ring", |b| {
        b.iter(|| black_box(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &data)))
    });
    group.finish();

    let mut group = c.benchmark_group("two_passes_8MiB");
    group.sample_size(30);
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("sha1_crate_twice", |b| {
        b.iter(|| {
            let (mut part, mut file) = (sha1::Sha1::new(), sha1::Sha1::new());
            for chunk in data.chunks(256 * 1024) {
                part.update(chunk);
                file.update(chunk);
            }
            black_box((part.finalize(), file.finalize()))
        })
    });
    group.bench_function("file_hasher_twice", |b| {
        b.iter(|| {
            let (mut part, mut file) = (FileHasher::new(), FileHasher::new());
            for chunk in data.chunks(256 * 1024) {
                part.update(chunk);
                file.update(chunk);
            }
            black_box((part.finish(), file.finish()))
        })
    });
    group.bench_function("update_pair", |b| {
        b.iter(|| {
            let (mut part, mut file) = (FileHasher::new(), FileHasher::new());
            for chunk in data.chunks(256 * 1024) {
                part.update_pair(&mut file, chunk);
            }
            black_box((part.finish(), file.finish()))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
