//! SHA-1 (the `sha1` crate, as box-upload-core uses it) over 1 GiB in memory, one way per run:
//! `hot` (a 1 MiB buffer in cache, hashed 1024 times), `cold` (1 GiB hashed once), `cold-touch`
//! (1 GiB, each 64 KiB chunk's cache lines loaded before it is hashed), `cold-copy` (copied 1 MiB
//! at a time into a buffer, then hashed), `two-8m`
//! (8 MiB parts, each hashed whole and then fed to a whole-file hasher, as the transports and the
//! core do today) and `two-256k` (the same two hashes fed 256 KiB at a time, so the second pass
//! reads from cache). Time it with /usr/bin/time: user seconds are the cost.

use sha1::{Digest, Sha1};
use std::hint::black_box;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let total: usize = 1 << 30;
    let big: Vec<u8> = (0..total).map(|i| (i * 7 + 3) as u8).collect();
    let started = std::time::Instant::now();
    match mode.as_str() {
        "none" => {}
        "hot" => {
            let mut h = Sha1::new();
            for _ in 0..1024 {
                h.update(&big[..1 << 20]);
            }
            black_box(h.finalize());
        }
        "cold" => {
            black_box(Sha1::digest(&big));
        }
        "two-8m" => {
            let mut whole = Sha1::new();
            for part in big.chunks(8 << 20) {
                black_box(Sha1::digest(part));
                whole.update(part);
            }
            black_box(whole.finalize());
        }
        "two-256k" => {
            let mut whole = Sha1::new();
            for part in big.chunks(8 << 20) {
                let mut h = Sha1::new();
                for chunk in part.chunks(256 << 10) {
                    h.update(chunk);
                    whole.update(chunk);
                }
                black_box(h.finalize());
            }
            black_box(whole.finalize());
        }
        "cold-touch" => {
            // Loads one byte per cache line of the next chunk before hashing it: the loads are
            // independent, so the core keeps many misses in flight, unlike SHA-1's serial chain.
            let mut h = Sha1::new();
            let chunks: Vec<&[u8]> = big.chunks(64 << 10).collect();
            let mut sum = 0u8;
            for c in chunks[0].iter().step_by(64) {
                sum ^= *c;
            }
            for i in 0..chunks.len() {
                if let Some(next) = chunks.get(i + 1) {
                    for c in next.iter().step_by(64) {
                        sum ^= *c;
                    }
                }
                h.update(chunks[i]);
            }
            black_box(sum);
            black_box(h.finalize());
        }
        "cold-copy" => {
            let mut h = Sha1::new();
            let mut buf = vec![0u8; 1 << 20];
            for chunk in big.chunks(1 << 20) {
                buf[..chunk.len()].copy_from_slice(chunk);
                h.update(&buf[..chunk.len()]);
            }
            black_box(h.finalize());
        }
        _ => {
            eprintln!("usage: sha1-cache none|hot|cold|cold-touch|cold-copy|two-8m|two-256k");
            std::process::exit(2);
        }
    }
    eprintln!("{mode}: {:.3} s wall", started.elapsed().as_secs_f64());
}
