//! Helpers shared by the integration tests: an emulator, a client pointed at it, and large
//! deterministic files on disk.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use box_upload_conformance::{BlockingEmulator, Emulator, Faults};
use box_upload_ureq::{Client, RetryPolicy};
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const MIB: u64 = 1024 * 1024;

/// An emulator with `part_size` and `faults`.
pub fn emulator(part_size: u64, faults: Faults) -> BlockingEmulator {
    Emulator::builder().part_size(part_size).faults(faults).seed(42).start_blocking().unwrap()
}

/// Retries fast: tests never wait seconds.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_millis(20),
        commit_timeout: Duration::from_secs(30),
        parts_mismatch_retries: 3,
    }
}

/// A client for `emu` with the static token, fast retries and `parts` in flight.
pub fn client(emu: &Emulator, parts: usize) -> Client {
    Client::builder()
        .upload_base(emu.upload_base_url())
        .developer_token("test-token")
        .parts_in_flight(parts)
        .retry_policy(fast_retries())
        .connect_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Deterministic pseudo-random bytes (splitmix64 of the position's 8-byte block and `seed`).
pub fn fill(buf: &mut [u8], start: u64, seed: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        let pos = start + i as u64;
        let mut z = (pos / 8).wrapping_add(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        *b = (z >> ((pos % 8) * 8)) as u8;
    }
}

/// `len` deterministic bytes in memory.
pub fn bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len as usize];
    fill(&mut v, 0, seed);
    v
}

/// A temp file of `len` deterministic bytes; returns its path and SHA-1 (hex).
pub fn temp_file(dir: &Path, name: &str, len: u64, seed: u64) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut out = BufWriter::with_capacity(MIB as usize, File::create(&path).unwrap());
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(MIB) as usize;
        fill(&mut buf[..n], at, seed);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        at += n as u64;
    }
    out.flush().unwrap();
    (path, hex(&hasher.finalize()))
}

/// SHA-1 (hex) of a file, streamed.
pub fn sha1_file(path: &Path) -> String {
    let mut f = File::open(path).unwrap();
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex(&Sha1::digest(data))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two files byte for byte.
pub fn assert_same_file(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    assert_eq!(fa.metadata().unwrap().len(), fb.metadata().unwrap().len(), "sizes differ");
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        assert_eq!(na, nb);
        if na == 0 {
            break;
        }
        if ba[..na] != bb[..nb] {
            let i = ba.iter().zip(&bb).position(|(x, y)| x != y).unwrap();
            panic!("files differ at byte {}", offset + i as u64);
        }
        offset += na as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..]).unwrap();
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
