//! The core stays sans-IO: no socket, file, thread or clock in its source, and no I/O crate in
//! its dependencies.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_src_uses_no_io() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 10);
    let forbidden = [
        "std::net",
        "std::fs",
        "std::thread",
        "Instant::now",
        "SystemTime::now",
        "tokio",
        "hyper",
        "ureq",
        "std::io::stdin",
        "std::env::var",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for word in forbidden {
                assert!(!code.contains(word), "{} uses {word}: {line}", file.display());
            }
        }
    }
}

#[test]
fn core_depends_on_no_io_crate() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
    for line in deps.lines().filter(|l| !l.trim().is_empty()) {
        let name = line.split(['=', '.']).next().unwrap().trim();
        assert!(
            ["http", "bytes", "serde", "serde_json", "sha1", "sha2", "base64", "thiserror", "httpdate"].contains(&name),
            "unexpected dependency {name}"
        );
    }
}
