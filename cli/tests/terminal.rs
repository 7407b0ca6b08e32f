//! The progress bar: drawn under a pseudo-terminal and ending at 100%; absent when piped.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::Read;
use std::time::{Duration, Instant};

/// Runs `box-upload args` under a pty; everything the terminal received, and the exit code.
fn under_pty(args: &[&str]) -> (String, u32) {
    let pty = native_pty_system();
    let pair = pty.openpty(PtySize { rows: 30, cols: 160, pixel_width: 0, pixel_height: 0 }).unwrap();
    let mut cmd = CommandBuilder::new(bin());
    cmd.args(args);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("BOX_DEVELOPER_TOKEN");
    cmd.env_remove("BOX_UPLOAD_URL");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let collector = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        // Ends with EOF or EIO once the child has exited and the slave side is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "box-upload under a pty did not finish in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(pair.master);
    let output = collector.join().unwrap();
    (String::from_utf8_lossy(&output).into_owned(), status.exit_code())
}

#[test]
fn progress_bar_drawn_on_a_terminal_ends_at_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    // Bigger than the other tests' files, and small parts, so the bar has time to be drawn.
    let path = make_file(dir.path(), "tty.bin", 40_000_000, 12);
    let (screen, code) = under_pty(&[
        "--parallel",
        "2",
        "upload",
        "--emulator",
        path.to_str().unwrap(),
        "--emulator-part-size",
        "5242880",
    ]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("uploading ["), "no bar drawn: {screen:?}");
    assert!(screen.contains("100%"), "the bar does not end at 100%: {screen:?}");
    assert!(screen.contains("40.00 MB") || screen.contains("38.15 MiB"), "total bytes not shown: {screen:?}");
    assert!(screen.contains("verified"), "{screen:?}");
    // The bar's line is ended before the summary prints.
    assert!(screen.contains("\nuploaded "), "the summary shares the bar's line: {screen:?}");
    // The last state of the bar is full.
    let last_bar = screen.rsplit("uploading [").next().unwrap();
    assert!(last_bar.contains("100%"), "{last_bar:?}");
}

#[test]
fn no_progress_bar_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "pipe.bin", SIZE, 13);
    let out = bare().args(["upload", "--emulator", path.to_str().unwrap()]).output().unwrap();
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains('\r'), "carriage returns in piped stderr: {err:?}");
    assert!(!err.contains('%') && !err.contains("uploading ["), "a bar in piped stderr: {err:?}");
    assert!(!err.contains('\u{1b}'), "terminal escapes in piped stderr: {err:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified"));
}
