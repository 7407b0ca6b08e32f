//! Helpers shared by the integration tests: deterministic files, digests, emulator clients.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use box_upload_conformance::Emulator;
use box_upload_hyper::{Client, ClientBuilder, RetryPolicy};
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const MIB: u64 = 1024 * 1024;

/// Deterministic pseudo-random bytes (xorshift64), `len` of them, for `seed`.
pub fn bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize);
    fill(&mut out, len, seed);
    out
}

fn fill(out: &mut Vec<u8>, len: u64, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while (out.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len() as u64).min(8) as usize;
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
}

/// Writes `len` deterministic bytes to `dir/name`, 1 MiB at a time (never the whole file in memory).
pub fn file(dir: &Path, name: &str, len: u64, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut written = 0u64;
    let mut chunk = Vec::with_capacity(MIB as usize);
    while written < len {
        chunk.clear();
        let n = (len - written).min(MIB);
        while (chunk.len() as u64) < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let take = (n - chunk.len() as u64).min(8) as usize;
            chunk.extend_from_slice(&x.to_le_bytes()[..take]);
        }
        f.write_all(&chunk).unwrap();
        written += n;
    }
    f.flush().unwrap();
    path
}

pub fn sha1_hex_of_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha1::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex(&Sha1::digest(data))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two files byte for byte, 1 MiB at a time.
pub fn same_content(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Fast retries, for tests.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_millis(20),
        commit_timeout: Duration::from_secs(30),
        parts_mismatch_retries: 3,
    }
}

pub fn builder(emu: &Emulator) -> ClientBuilder {
    Client::builder()
        .upload_base(emu.upload_base_url())
        .developer_token("test-token")
        .retry_policy(fast_retries())
        .idle_timeout(Duration::from_secs(30))
}

pub fn client(emu: &Emulator) -> Client {
    builder(emu).build().unwrap()
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
