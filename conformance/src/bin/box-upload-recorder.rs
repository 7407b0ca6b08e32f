//! `box-upload-recorder`: a recording proxy that writes fixtures.
//!
//! Prints its base URL (`http://127.0.0.1:PORT`) as its first line on stdout, then records until
//! killed. Point a client's upload base at `<base>/api` and its token URL at `<base>/oauth2/token`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use box_upload_conformance::recorder::{Output, Recorder, RecorderConfig};
use clap::Parser;

/// Records HTTP exchanges with an upstream (the emulator, or Box) as fixtures.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Upstream origin, e.g. http://127.0.0.1:8080 or https://upload.box.com.
    #[arg(long)]
    upstream: String,
    /// Address to listen on (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write everything into this fixture file.
    #[arg(long, conflicts_with = "out_dir", required_unless_present = "out_dir")]
    out: Option<PathBuf>,
    /// Write one fixture per scenario into this directory (switch with POST /__recorder/scenario?name=...).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Name of the first scenario.
    #[arg(long, default_value = "recording")]
    scenario: String,
    /// The fixtures' "source" field.
    #[arg(long, default_value = "emulator")]
    source: String,
    /// A secret to redact wherever it appears (repeatable).
    #[arg(long)]
    redact: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let output = match (args.out, args.out_dir) {
        (Some(f), _) => Output::File(f),
        (None, Some(d)) => Output::Dir(d),
        (None, None) => return Err("one of --out or --out-dir is required".into()),
    };
    let handle = Recorder::start(RecorderConfig {
        upstream: args.upstream,
        listen: args.listen,
        output,
        scenario: args.scenario,
        source: args.source,
        redact: args.redact,
    })
    .await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", handle.base_url())?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let files = handle.finish().await?;
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    Ok(())
}
