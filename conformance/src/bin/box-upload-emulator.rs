//! `box-upload-emulator`: runs the Box upload API emulator until killed.
//!
//! Prints the upload base URL (`http://127.0.0.1:PORT/api`) as its first line on stdout; with
//! `--tls` the URL is `https://` and the second line is the path of the CA's PEM. It listens on
//! loopback only, unless `--allow-remote` with a `--token` of the user's own.
//! A fault mix (`--lose-part-answers`, `--part-5xx`, `--cut-part-bodies`, `--commit-answer-lost`)
//! and a request log (`--request-log`) serve soak runs such as benches/soak-kill-resume.sh.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use box_upload_conformance::{
    Emulator, FaultAction, Faults, Op, PlanMode, RequestOutcome, RequestRecord, Trigger, MAX_LIST_LIMIT,
};
use clap::Parser;

/// Box upload API emulator (loopback HTTP/1.1 server).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on. Only loopback unless --allow-remote (with an explicit --token).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Allow a --listen address that is not loopback: anyone who can reach it can upload with
    /// the token. Needs --token (or BOX_EMULATOR_TOKEN); prefer --tls then.
    #[arg(long)]
    allow_remote: bool,
    /// Bearer token accepted (default test-token).
    #[arg(long, env = "BOX_EMULATOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve HTTPS with a certificate for localhost, 127.0.0.1 and ::1, signed by a CA made at
    /// start; the CA's PEM path is printed on the second line of stdout.
    #[arg(long)]
    tls: bool,
    /// With --tls: write the CA's PEM to FILE (default: a temporary file, removed on exit).
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca_out: Option<PathBuf>,
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
    #[arg(long, requires = "client_id", env = "BOX_EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// How the plan of a session answers: `added` (hits join the session as stored parts),
    /// `not-added` (hits answered, nothing added: a client must upload them after all) or `off`
    /// (404, no plan URL in session_endpoints).
    #[arg(long, value_enum, default_value_t = PlanArg::Added)]
    plan: PlanArg,
    /// Wait this many milliseconds before handling each upload-session request (create, get,
    /// part, list, commit, abort, plan, direct upload, preflight check, get file): a stand-in for
    /// the round trip and server time of real Box.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed for ids and probabilistic faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The most parts one list-parts page holds (1 to 1000); a client must page by offset.
    #[arg(long, default_value_t = MAX_LIST_LIMIT, value_parser = clap::value_parser!(u64).range(1..=1000))]
    list_page_size: u64,
    /// Lose the answer of PCT % of part uploads: the part is stored, then the connection is
    /// closed without an answer (drawn from --seed).
    #[arg(long, value_name = "PCT", value_parser = percent)]
    lose_part_answers: Option<f64>,
    /// Answer PCT % of part uploads 503 (no Retry-After) without storing them (drawn from --seed).
    #[arg(long = "part-5xx", value_name = "PCT", value_parser = percent)]
    part_5xx: Option<f64>,
    /// Close the connection halfway through the body of PCT % of part uploads; the part is not
    /// stored (drawn from --seed).
    #[arg(long, value_name = "PCT", value_parser = percent)]
    cut_part_bodies: Option<f64>,
    /// Apply the first commit that goes through, then lose its answer (the client sees the
    /// connection close; a retried commit answers 404).
    #[arg(long)]
    commit_answer_lost: bool,
    /// Append one JSON line per request to FILE once it is over: `t_ms` (since start), `op`,
    /// `method`, `path`, `range` (`[first, last, total]` of a part), `outcome` (the status, or
    /// `withheld` by a fault, or `closed` before an answer) and `elapsed_ms`.
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,
}

/// `--plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PlanArg {
    Added,
    NotAdded,
    Off,
}

/// The token to accept, once the listen address is allowed: loopback, or another address with
/// --allow-remote and a token given on purpose (never the well-known default).
fn listen_check(args: &Args) -> Result<String, String> {
    let ip = args.listen.ip();
    if !ip.is_loopback() {
        if !args.allow_remote {
            return Err(format!(
                "--listen {ip} is not loopback: anyone who reaches it could use the emulator; \
                 give --allow-remote and a --token of your own to allow it"
            ));
        }
        if args.token.as_deref().is_none_or(|t| t.is_empty() || t == DEFAULT_TOKEN) {
            return Err("--allow-remote needs an explicit --token (or BOX_EMULATOR_TOKEN), not the default".into());
        }
    }
    Ok(args.token.clone().unwrap_or_else(|| DEFAULT_TOKEN.to_owned()))
}

/// The token accepted when none is given.
const DEFAULT_TOKEN: &str = "test-token";

/// A percentage, 0 to 100.
fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

/// The faults the flags ask for.
fn faults(args: &Args) -> Faults {
    let mut faults = Faults::none();
    if args.latency_ms > 0 {
        let delay = FaultAction::Delay(Duration::from_millis(args.latency_ms));
        faults = [
            Op::CreateSession,
            Op::GetSession,
            Op::UploadPart,
            Op::ListParts,
            Op::Commit,
            Op::Abort,
            Op::Plan,
            Op::UploadFile,
            Op::Preflight,
            Op::File,
        ]
        .into_iter()
        .fold(faults, |f, op| f.rule(op, Trigger::Always, delay.clone()));
    }
    let chance = |pct: f64| Trigger::Probability(pct / 100.0);
    if let Some(pct) = args.part_5xx {
        faults = faults.rule(Op::UploadPart, chance(pct), FaultAction::Status { status: 503, retry_after: None });
    }
    if let Some(pct) = args.cut_part_bodies {
        faults = faults.rule(Op::UploadPart, chance(pct), FaultAction::CutBody);
    }
    if let Some(pct) = args.lose_part_answers {
        faults = faults.rule(Op::UploadPart, chance(pct), FaultAction::DropAnswer);
    }
    if args.commit_answer_lost {
        faults = faults.rule(Op::Commit, Trigger::FirstN(1), FaultAction::CommitAnswerLost);
    }
    faults
}

/// An observer that appends one JSON line per request to `path` (one write per line, so a
/// reader never sees half a line).
fn request_log(path: &Path) -> std::io::Result<impl Fn(&RequestRecord) + Send + Sync + 'static> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let file = Arc::new(Mutex::new(file));
    let started = Instant::now();
    Ok(move |r: &RequestRecord| {
        let outcome = match r.outcome {
            RequestOutcome::Answered(status) => serde_json::json!(status),
            RequestOutcome::Withheld => serde_json::json!("withheld"),
            RequestOutcome::Closed => serde_json::json!("closed"),
        };
        let line = serde_json::json!({
            "t_ms": started.elapsed().as_millis() as u64,
            "op": format!("{:?}", r.op),
            "method": r.method,
            "path": r.path,
            "range": r.content_range.map(|(first, last, total)| [first, last, total]),
            "outcome": outcome,
            "elapsed_ms": r.elapsed.as_millis() as u64,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        // A failing log must not fail the request it records.
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = file.write_all(&bytes);
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let faults = faults(&args);
    let token = listen_check(&args).unwrap_or_else(|refused| {
        eprintln!("box-upload-emulator: {refused}");
        std::process::exit(2)
    });
    let mut builder = Emulator::builder()
        .listen(args.listen)
        .token(token)
        .tls(args.tls)
        .part_size(args.part_size)
        .token_lifetime(Duration::from_secs(args.token_lifetime))
        .seed(args.seed)
        .discard_content(args.discard_content)
        .list_page_size(args.list_page_size)
        .plan_mode(match args.plan {
            PlanArg::Added => PlanMode::AddHits,
            PlanArg::NotAdded => PlanMode::HitsNotAdded,
            PlanArg::Off => PlanMode::Off,
        })
        .faults(faults);
    if let Some(path) = &args.ca_out {
        builder = builder.ca_out(path);
    }
    if let Some(path) = &args.request_log {
        builder = builder.on_request(request_log(path)?);
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
        if let Some(ca) = emulator.ca_path() {
            writeln!(out, "{}", ca.display())?;
        }
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
