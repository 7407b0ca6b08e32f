//! `box-upload-emulator`: runs the Box upload API emulator until killed.
//!
//! Prints the upload base URL (`http://127.0.0.1:PORT/api`) as its first line on stdout.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use box_upload_conformance::{Emulator, FaultAction, Faults, Op, Trigger};
use clap::Parser;

/// Box upload API emulator (loopback HTTP/1.1 server).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Bearer token accepted.
    #[arg(long, default_value = "test-token", env = "BOX_EMULATOR_TOKEN")]
    token: String,
    /// Part size of new sessions, in bytes.
    #[arg(long, default_value_t = box_upload_conformance::DEFAULT_PART_SIZE)]
    part_size: u64,
    /// Directory for part data and files (default: a temporary directory).
    #[arg(long, conflicts_with = "discard_content")]
    data_dir: Option<PathBuf>,
    /// Keep no content: digests are checked as always, but a part's bytes are held only until
    /// the whole-file SHA-1 has them, and downloads answer 404. For benchmarks.
    #[arg(long)]
    discard_content: bool,
    /// Client id accepted by /oauth2/token (with --client-secret).
    #[arg(long, requires = "client_secret")]
    client_id: Option<String>,
    /// Client secret accepted by /oauth2/token.
    #[arg(long, requires = "client_id", env = "BOX_EMULATOR_CLIENT_SECRET")]
    client_secret: Option<String>,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Wait this many milliseconds before handling each upload-session request (create, get,
    /// part, list, commit, abort): a stand-in for the round trip and server time of real Box.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed for ids and probabilistic faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut builder = Emulator::builder()
        .listen(args.listen)
        .token(args.token)
        .part_size(args.part_size)
        .token_lifetime(Duration::from_secs(args.token_lifetime))
        .seed(args.seed)
        .discard_content(args.discard_content);
    if args.latency_ms > 0 {
        let delay = FaultAction::Delay(Duration::from_millis(args.latency_ms));
        let faults = [Op::CreateSession, Op::GetSession, Op::UploadPart, Op::ListParts, Op::Commit, Op::Abort]
            .into_iter()
            .fold(Faults::none(), |f, op| f.rule(op, Trigger::Always, delay.clone()));
        builder = builder.faults(faults);
    }
    if let Some(dir) = args.data_dir {
        builder = builder.data_dir(dir);
    }
    if let (Some(id), Some(secret)) = (args.client_id, args.client_secret) {
        builder = builder.client_credentials(id, secret);
    }
    let emulator = builder.start().await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", emulator.upload_base_url())?;
        out.flush()?;
    }
    wait_for_signal().await;
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
