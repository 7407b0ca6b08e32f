//! The CLI on field networks (issue 14): the README's first command with every proxy variable
//! pointing at a proxy that is down (loopback is never proxied), `--ca-file` and `SSL_CERT_FILE`
//! against the TLS emulator, a refused certificate named at once, `--proxy` checked, plain
//! `http://` refused off loopback, and the token read from `--token-file` and `--token -`.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use box_upload_conformance::Emulator;
use common::{assert_fails, assert_ok, bare, cli, emulator, json, make_file, run, PART, SIZE, TOKEN};
use std::io::Write;
use std::process::Stdio;

const TRANSPORTS: [&str; 2] = ["hyper", "ureq"];

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_first_command_works_with_every_proxy_variable_pointing_at_a_proxy_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "f.bin", SIZE, 3);
    let dead = format!("http://127.0.0.1:{}", dead_port());
    for transport in TRANSPORTS {
        let mut cmd = bare();
        for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env(var, &dead);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
        let part = PART.to_string();
        let out = run(
            cmd,
            &["--transport", transport, "upload", "--emulator", "--emulator-part-size", &part, file.to_str().unwrap()],
        );
        assert_ok(&out);
        assert!(String::from_utf8_lossy(&out.stdout).contains("verified"), "{transport}");
    }
}

#[test]
fn the_tls_emulator_is_trusted_with_ca_file_or_ssl_cert_file_and_refused_without() {
    let emu = Emulator::builder().token(TOKEN).part_size(PART).tls(true).start_blocking().unwrap();
    let ca = emu.ca_path().unwrap().to_str().unwrap().to_owned();
    let create = ["session", "create", "--folder", "0", "--name", "t.bin", "--size", "20000000"];
    for transport in TRANSPORTS {
        let out = run(cli(&emu, transport), &create);
        assert_fails(&out, 6, &["certificate of 127.0.0.1 was refused", "UnknownIssuer", "--ca-file"]);
        let mut args = vec!["--ca-file", ca.as_str()];
        args.extend(create);
        let session = json(&run(cli(&emu, transport), &args));
        assert_eq!(session["total_parts"], 4, "{session}");
        let mut cmd = cli(&emu, transport);
        cmd.env("SSL_CERT_FILE", &ca);
        json(&run(cmd, &create));
        // An SSL_CERT_FILE that cannot be read is said, not ignored.
        let mut cmd = cli(&emu, transport);
        cmd.env("SSL_CERT_FILE", "/nonexistent/ca.pem");
        assert_fails(&run(cmd, &create), 1, &["SSL_CERT_FILE", "/nonexistent/ca.pem"]);
    }
    assert_eq!(emu.session_ids().len(), 4);
}

#[test]
fn proxy_flags_are_checked_and_none_ignores_the_environment() {
    let emu = emulator();
    let get = ["session", "get", "0000"];
    for transport in TRANSPORTS {
        let out = run(cli(&emu, transport), &[&["--proxy", "socks5://127.0.0.1:1080"][..], &get].concat());
        assert_fails(&out, 1, &["socks5:// proxies are not supported"]);
        let out = run(cli(&emu, transport), &[&["--proxy", "http://user:pw-SECRET@:3128"][..], &get].concat());
        assert_fails(&out, 1, &["proxy URL is not valid"]);
        assert!(!String::from_utf8_lossy(&out.stderr).contains("pw-SECRET"));
        // --proxy none: the environment's broken proxy URL is not even read.
        let mut cmd = cli(&emu, transport);
        cmd.env("HTTPS_PROXY", "socks5://x").env("ALL_PROXY", "socks5://x");
        assert_fails(&run(cmd, &get), 1, &["HTTPS_PROXY: socks5:// proxies are not supported"]);
        let mut cmd = cli(&emu, transport);
        cmd.env("HTTPS_PROXY", "socks5://x").env("ALL_PROXY", "socks5://x");
        assert_fails(&run(cmd, &[&["--proxy", "none"][..], &get].concat()), 4, &["not_found"]);
    }
}

#[test]
fn an_upload_stops_at_its_deadline() {
    use box_upload_conformance::{FaultAction, Faults, Op, Trigger};
    let emu = emulator();
    let stall = FaultAction::Delay(std::time::Duration::from_secs(20));
    emu.set_faults(Faults::none().rule(Op::UploadPart, Trigger::Always, stall));
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "late.bin", SIZE, 4);
    for transport in TRANSPORTS {
        let started = std::time::Instant::now();
        let out = run(cli(&emu, transport), &["--deadline", "1", "upload", file.to_str().unwrap(), "--folder", "0"]);
        assert_fails(&out, 6, &["did not finish within its deadline of 1s"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(8), "{:?}", started.elapsed());
    }
    assert!(emu.session_ids().is_empty(), "aborted: {:?}", emu.session_ids());
}

#[test]
fn plain_http_off_loopback_is_refused_before_anything_is_sent() {
    for transport in TRANSPORTS {
        let mut cmd = bare();
        cmd.args(["--upload-url", "http://uploads.example.invalid/api", "--token", TOKEN, "--transport", transport]);
        let out = run(cmd, &["session", "get", "0000"]);
        assert_fails(&out, 1, &["refusing plain http", "cleartext"]);
    }
}

#[test]
fn the_token_comes_from_a_file_or_standard_input() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("\n  {TOKEN}  \nignored\n")).unwrap();
    let base = emu.upload_base_url();
    let create = ["session", "create", "--folder", "0", "--name", "t.bin", "--size", "20000000"];
    for transport in TRANSPORTS {
        let mut cmd = bare();
        cmd.env("BOX_DEVELOPER_TOKEN", "wrong-token");
        cmd.args(["--upload-url", &base, "--transport", transport, "--token-file", token_file.to_str().unwrap()]);
        json(&run(cmd, &create));

        let mut cmd = bare();
        cmd.args(["--upload-url", &base, "--transport", transport, "--token", "-"]);
        cmd.args(create).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{TOKEN}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        common::assert_no_secret(&out, TOKEN);
        json(&out);

        let mut cmd = bare();
        cmd.args(["--upload-url", &base, "--transport", transport, "--token-file", "/nonexistent/token"]);
        assert_fails(&run(cmd, &create), 6, &["--token-file", "/nonexistent/token"]);
    }
    assert_eq!(emu.session_ids().len(), 4);
}
