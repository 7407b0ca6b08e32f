//! Helpers for the CLI tests: an emulator per test and the built `box-upload` binary.
#![allow(dead_code, unreachable_pub)]

use box_upload_conformance::{BlockingEmulator, Emulator};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The emulator's token in tests (checked never to be printed).
pub const TOKEN: &str = "tok-SECRET-7f3a9c";
/// Part size used by the tests' emulators: 5 MiB.
pub const PART: u64 = 5 * 1024 * 1024;
/// Just over Box's minimum: 4 parts of 5 MiB.
pub const SIZE: u64 = 20_000_001;

/// An emulator with 5 MiB parts and [`TOKEN`].
pub fn emulator() -> BlockingEmulator {
    Emulator::builder().token(TOKEN).part_size(PART).seed(1).start_blocking().expect("emulator starts")
}

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_box-upload")
}

/// `box-upload` without any BOX_* variables from the environment.
pub fn bare() -> Command {
    let mut cmd = Command::new(bin());
    for var in [
        "BOX_DEVELOPER_TOKEN",
        "BOX_CLIENT_ID",
        "BOX_CLIENT_SECRET",
        "BOX_SUBJECT_TYPE",
        "BOX_SUBJECT_ID",
        "BOX_TOKEN_URL",
        "BOX_UPLOAD_URL",
        "BOX_API_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// `box-upload --upload-url <emulator> --token TOKEN --transport T`.
pub fn cli(emu: &BlockingEmulator, transport: &str) -> Command {
    let mut cmd = bare();
    cmd.args(["--upload-url", &emu.upload_base_url(), "--token", TOKEN, "--transport", transport]);
    // The tests' files from Box's smallest session on go in one (resumable, parts in parallel);
    // the default sends them direct below 25,000,000 bytes (upload.rs tests it).
    cmd.env("BOX_CHUNKED_FROM", "20000000");
    cmd
}

/// Runs `cmd` with `args`; asserts the token never shows.
pub fn run(mut cmd: Command, args: &[&str]) -> Output {
    let out = cmd.args(args).output().expect("box-upload runs");
    assert_no_secret(&out, TOKEN);
    out
}

/// Asserts `secret` appears in neither stdout nor stderr.
pub fn assert_no_secret(out: &Output, secret: &str) {
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!o.contains(secret), "secret on stdout: {o}");
    assert!(!e.contains(secret), "secret on stderr: {e}");
}

/// Asserts success and parses stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    assert_ok(out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Asserts exit 0.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts the exit code and a one-line error on stderr containing every piece of `needles`.
pub fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}\nstdout: {}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("box-upload: error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    for n in needles {
        assert!(lines[0].to_lowercase().contains(&n.to_lowercase()), "{n:?} not in {err:?}");
    }
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}

/// A file of `size` pseudo-random bytes from `seed`.
pub fn make_file(dir: &Path, name: &str, size: u64, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(size as usize + 8);
    while (bytes.len() as u64) < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size as usize);
    std::fs::write(&path, &bytes).expect("test file written");
    path
}

/// SHA-1 of `bytes`, hex.
pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
