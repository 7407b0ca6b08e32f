//! The `box-upload` command: big (chunked) uploads to Box, resumable from a checkpoint file, and
//! each of Box's upload-session operations as a subcommand. See `box-upload --help` and
//! cli/README.md.

mod args;
mod backend;
mod commands;
mod emulator;
mod failure;
mod interrupt;
mod output;
mod plan;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic is a bug: one line, no backtrace, exit 1.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("box-upload: error: internal error{at}: {}", failure::one_line(&what));
    }));
    let cli = args::Cli::parse();
    init_tracing(cli.global.verbose);
    match std::panic::catch_unwind(move || commands::run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(failure)) => {
            eprintln!("box-upload: error: {failure}");
            ExitCode::from(failure.exit as u8)
        }
        Err(_) => ExitCode::from(failure::Exit::Other as u8),
    }
}

/// `-v`: each request (box-upload's crates at debug); `-vv`: trace. Only box-upload's own crates
/// log, and they never log headers or bodies, so never the token.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "debug",
        _ => "trace",
    };
    let directives = ["box_upload_core", "box_upload_hyper", "box_upload_ureq", "box_upload"]
        .iter()
        .map(|c| format!("{c}={level}"))
        .collect::<Vec<_>>()
        .join(",");
    let filter = tracing_subscriber::EnvFilter::new(format!("off,{directives}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}
