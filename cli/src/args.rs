//! The command line, declared with clap's derive API.

use box_upload_core::operations::SessionRef as Session;
use box_upload_core::Secret;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The exit codes, shown after `box-upload --help` (and listed in cli/README.md).
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure (input refused before any request, e.g. a bad file name; a bad
     checkpoint file; cancelled)
  2  usage error (bad or missing arguments)
  3  authentication (Box answered 401, the token request was refused, no token given)
  4  Box answered an error (4xx/5xx after retries, e.g. 404 not found, 409 name in use,
     412 precondition failed), or an answer that cannot be used
  5  integrity (digest, part echo or parts list mismatch, the source changed, the committed
     file does not match, a checkpoint for another file)
  6  I/O (a file missing or unreadable, network or transport failure)
  7  commit outcome unknown: a commit's answer was lost and looking at the file (on the API
     host, --api-url) did not settle whether it went through; the message names the session
     and what to check in Box before committing or uploading again
Ctrl-C stops an upload cleanly (exit 1; the session is kept when --checkpoint can resume it,
aborted otherwise); a second Ctrl-C quits at once with exit 130.

The token is never printed, in errors or in -v logs.";

/// `box-upload`: big (chunked) uploads to Box, and Box's upload-session operations one by one.
#[derive(Debug, Parser)]
#[command(name = "box-upload", version, about, after_help = EXIT_CODES_HELP)]
pub(crate) struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub(crate) global: Global,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The HTTP stack that carries the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportKind {
    /// box-upload-hyper (async, tokio + hyper).
    Hyper,
    /// box-upload-ureq (blocking, ureq).
    Ureq,
}

impl TransportKind {
    /// The name used on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TransportKind::Hyper => "hyper",
            TransportKind::Ureq => "ureq",
        }
    }
}

/// Box's subject types for the Client Credentials Grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SubjectType {
    /// A service account of the enterprise (`--subject-id` is the enterprise id).
    Enterprise,
    /// A managed or app user (`--subject-id` is the user id).
    User,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// A developer token or any access token (never printed); `-` reads it from standard input.
    #[arg(long, global = true, env = "BOX_DEVELOPER_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<Secret>,
    /// Read the token from FILE (its first line; takes precedence over BOX_DEVELOPER_TOKEN).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Client id for the Client Credentials Grant.
    #[arg(long, global = true, env = "BOX_CLIENT_ID", hide_env_values = true)]
    pub(crate) client_id: Option<String>,
    /// Client secret for the Client Credentials Grant (never printed).
    #[arg(long, global = true, env = "BOX_CLIENT_SECRET", hide_env_values = true)]
    pub(crate) client_secret: Option<Secret>,
    /// Subject type for the Client Credentials Grant.
    #[arg(long, global = true, env = "BOX_SUBJECT_TYPE", hide_env_values = true, value_enum)]
    pub(crate) subject_type: Option<SubjectType>,
    /// Subject id (enterprise or user id) for the Client Credentials Grant.
    #[arg(long, global = true, env = "BOX_SUBJECT_ID", hide_env_values = true)]
    pub(crate) subject_id: Option<String>,
    /// Token endpoint for the Client Credentials Grant.
    #[arg(long, global = true, env = "BOX_TOKEN_URL", default_value = box_upload_core::DEFAULT_TOKEN_URL)]
    pub(crate) token_url: String,
    /// Upload API base URL.
    #[arg(long, global = true, env = "BOX_UPLOAD_URL", default_value = box_upload_core::DEFAULT_UPLOAD_BASE)]
    pub(crate) upload_url: String,
    /// API base URL (files, the preflight check; used to confirm a commit whose answer was
    /// lost). Default https://api.box.com, or the --upload-url's origin when that is not a Box
    /// host (an emulator), so no request goes to Box's real hosts.
    #[arg(long, global = true, env = "BOX_API_URL")]
    pub(crate) api_url: Option<String>,
    /// Send requests through the HTTP proxy at URL (`http://[user:password@]host[:port]`, with
    /// CONNECT), or `none` to ignore the environment. Default: HTTPS_PROXY, http_proxy,
    /// ALL_PROXY and NO_PROXY as curl reads them; loopback hosts are never proxied.
    #[arg(long, global = true, value_name = "URL|none")]
    pub(crate) proxy: Option<Secret>,
    /// Also trust the certificate authorities in this PEM file (repeatable), beside the
    /// platform's and Mozilla's roots; SSL_CERT_FILE is honoured too.
    #[arg(long, global = true, value_name = "PEM")]
    pub(crate) ca_file: Vec<PathBuf>,
    /// Allow plain http:// to hosts that are not loopback: the token (or client secret) then
    /// crosses the network in cleartext.
    #[arg(long, global = true)]
    pub(crate) allow_insecure_http: bool,
    /// The longest a request may go without a byte moving, in seconds (default 120); each
    /// request must also be over within this plus its body at 16 KiB/s, so a server that
    /// trickles is cut off and the request retried.
    #[arg(long, global = true, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: Option<u64>,
    /// Stop an upload or resume that is not over within SECS seconds (the session is kept with
    /// --checkpoint, aborted otherwise).
    #[arg(long, global = true, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) deadline: Option<u64>,
    /// HTTP stack used for the requests.
    #[arg(long, global = true, value_enum, default_value_t = TransportKind::Hyper)]
    pub(crate) transport: TransportKind,
    /// Parts in flight at once during an upload (memory is about this many parts).
    #[arg(long, global = true, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) parallel: u32,
    /// Refuse (and abort) an upload session whose part size is over BYTES: memory holds up to
    /// --parallel + 1 parts (default 536870912, 512 MiB).
    #[arg(long, global = true, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_part_size: Option<u64>,
    /// Log each request to stderr (-v), more detail with -vv. The token is never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Upload a file of any size: a new file (--folder) or a new version (--file-id); direct below
    /// --chunked-from, in an upload session from it.
    Upload(UploadArgs),
    /// Continue an upload from its checkpoint file (written by `upload --checkpoint`).
    Resume(ResumeArgs),
    /// Upload-session operations, one request each; Box's JSON answer on stdout.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Part operations, one request each; Box's JSON answer on stdout.
    #[command(subcommand)]
    Part(PartCommand),
}

/// `box-upload upload`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").args(["folder", "file_id", "emulator"]).required(true)))]
pub(crate) struct UploadArgs {
    /// The file to upload (with --emulator: optional, default a 100 MB file of random bytes).
    pub(crate) path: Option<PathBuf>,
    /// Upload a new file into this folder ("0" is the root).
    #[arg(long, conflicts_with = "file_id")]
    pub(crate) folder: Option<String>,
    /// Upload a new version of this file.
    #[arg(long)]
    pub(crate) file_id: Option<String>,
    /// The name of the file in Box (default: PATH's file name; with --file-id: a rename).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Commit only if the file's current etag is ETAG (new versions).
    #[arg(long, value_name = "ETAG", requires = "file_id")]
    pub(crate) if_match: Option<String>,
    /// Commit only if the file's current etag is not ETAG.
    #[arg(long, value_name = "ETAG")]
    pub(crate) if_none_match: Option<String>,
    /// Keep resume state in FILE as parts are acknowledged (resume with `box-upload resume FILE`);
    /// the session is kept open on failure, and FILE is removed once the file is committed.
    #[arg(long, value_name = "FILE")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Print the committed file (Box's FileFull JSON) on stdout instead of a summary line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Send only the parts Box does not hold already (a new version that changed in places):
    /// each part's SHA-512 is computed in the same read as its SHA-1s, the session's plan says
    /// which parts Box holds, and only the others are sent. A Box without the plan gets a plain
    /// upload. For upload sessions only (files of at least --chunked-from bytes).
    #[arg(long)]
    pub(crate) dedupe: bool,
    /// Start Box's emulator in-process on loopback, upload there through the chosen transport,
    /// download the result and check it byte for byte. Needs no token.
    #[arg(long)]
    pub(crate) emulator: bool,
    /// Files of at least BYTES go in an upload session (parts in parallel, resumable), smaller
    /// ones in one direct upload. From 20000000 (Box's smallest session) to 50000001 (Box's
    /// largest direct upload is 50 MB). Default 25000000, where the two meet when measured
    /// (benches/results-direct-vs-chunked.md).
    #[arg(long, value_name = "BYTES", env = "BOX_CHUNKED_FROM", default_value_t = box_upload_core::DEFAULT_CHUNKED_FROM)]
    pub(crate) chunked_from: u64,
    /// When the name is already in use in the folder: fail (Box's 409), upload a new version of
    /// that file (only if it is not changed meanwhile: If-Match on its etag), or skip the upload
    /// when that file has the same SHA-1 (and fail when it does not).
    #[arg(long, value_enum, default_value_t = OnConflictArg::Fail)]
    pub(crate) on_conflict: OnConflictArg,
    /// Do not send the file's modification (and creation) time as Box's content_modified_at
    /// (content_created_at): Box then shows the time of the upload.
    #[arg(long)]
    pub(crate) no_timestamps: bool,
    /// With --emulator: the emulator's part size in bytes.
    #[arg(long, value_name = "BYTES", requires = "emulator", hide = true)]
    pub(crate) emulator_part_size: Option<u64>,
}

/// `--on-conflict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnConflictArg {
    /// Fail with Box's 409 item_name_in_use (exit 4).
    Fail,
    /// Upload a new version of the file holding the name, with If-Match on its etag.
    Version,
    /// Upload nothing when the file holding the name has the same content.
    Skip,
}

impl From<OnConflictArg> for box_upload_core::OnConflict {
    fn from(arg: OnConflictArg) -> Self {
        match arg {
            OnConflictArg::Fail => Self::Fail,
            OnConflictArg::Version => Self::Version,
            OnConflictArg::Skip => Self::Skip,
        }
    }
}

/// `box-upload resume`.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The checkpoint file written by `upload --checkpoint` (kept up to date while resuming).
    pub(crate) checkpoint: PathBuf,
    /// The file being uploaded (default: the path recorded in the checkpoint).
    pub(crate) path: Option<PathBuf>,
    /// Print the committed file (Box's FileFull JSON) on stdout instead of a summary line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Which session an operation is on: an id, or one of the session's URLs.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("session_ref").args(["session_pos", "session", "session_url"]).required(true)))]
pub(crate) struct SessionRef {
    /// The session id, or a session URL (taken as a URL when it starts with http).
    #[arg(value_name = "SESSION")]
    pub(crate) session_pos: Option<String>,
    /// The session id.
    #[arg(long, value_name = "ID")]
    pub(crate) session: Option<String>,
    /// The session URL from `session_endpoints` (e.g. `status`, `abort`, `list_parts`, `commit`).
    #[arg(long, value_name = "URL")]
    pub(crate) session_url: Option<String>,
}

impl SessionRef {
    /// The session as an id or a URL (by id, the URL is built from `--upload-url`).
    pub(crate) fn target(&self) -> Session {
        if let Some(url) = &self.session_url {
            return Session::Url(url.clone());
        }
        if let Some(id) = &self.session {
            return Session::Id(id.clone());
        }
        let pos = self.session_pos.clone().unwrap_or_default();
        if pos.starts_with("http") {
            Session::Url(pos)
        } else {
            Session::Id(pos)
        }
    }
}

/// `box-upload session ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// Create an upload session for a new file (POST /files/upload_sessions).
    Create {
        /// The folder the file goes into.
        #[arg(long)]
        folder: String,
        /// The file's name.
        #[arg(long)]
        name: String,
        /// The file's size in bytes (at least 20,000,000).
        #[arg(long, value_name = "BYTES")]
        size: u64,
    },
    /// Create an upload session for a new version of a file (POST /files/{id}/upload_sessions).
    CreateForFile {
        /// The file to version.
        #[arg(long)]
        file_id: String,
        /// The new version's size in bytes (at least 20,000,000).
        #[arg(long, value_name = "BYTES")]
        size: u64,
        /// A new name for the file.
        #[arg(long)]
        name: Option<String>,
    },
    /// Get a session (GET /files/upload_sessions/{id}, or session_endpoints.status).
    Get {
        /// The session.
        #[command(flatten)]
        session: SessionRef,
    },
    /// Abort a session (DELETE /files/upload_sessions/{id}, or session_endpoints.abort).
    Abort {
        /// The session.
        #[command(flatten)]
        session: SessionRef,
    },
    /// List a session's parts (GET .../parts, or session_endpoints.list_parts).
    Parts {
        /// The session.
        #[command(flatten)]
        session: SessionRef,
        /// Index of the first part listed.
        #[arg(long)]
        offset: Option<u64>,
        /// Parts per page (at most 1000).
        #[arg(long)]
        limit: Option<u64>,
        /// Follow the pages and print every part in one UploadParts object.
        #[arg(long, conflicts_with = "offset")]
        all: bool,
    },
    /// Which parts of a file Box holds already (POST .../plan, or session_endpoints.plan): the
    /// SHA-512 of each part on the session's grid; prints the plan (hits and misses) as JSON.
    Plan {
        /// The session.
        #[command(flatten)]
        session: SessionRef,
        /// The file to plan.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// The session's part_size (default: asked of the session, by id).
        #[arg(long, value_name = "BYTES")]
        part_size: Option<u64>,
    },
    /// Commit a session (POST .../commit, or session_endpoints.commit).
    ///
    /// The parts come from `session parts` JSON output (an UploadParts object, or a JSON array of
    /// parts) on stdin or in --parts FILE.
    Commit {
        /// The session.
        #[command(flatten)]
        session: SessionRef,
        /// Read the parts from FILE instead of stdin.
        #[arg(long, value_name = "FILE")]
        parts: Option<PathBuf>,
        /// The whole file's SHA-1: `sha=<base64>` or 40 hex digits.
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        digest: Option<String>,
        /// Compute the digest from the file at PATH.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Commit only if the file's etag is ETAG.
        #[arg(long, value_name = "ETAG")]
        if_match: Option<String>,
        /// Commit only if the file's etag is not ETAG.
        #[arg(long, value_name = "ETAG")]
        if_none_match: Option<String>,
    },
}

/// `box-upload part ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PartCommand {
    /// Upload one part (PUT .../upload_sessions/{id}, or session_endpoints.upload_part); the
    /// Digest and Content-Range are computed from the file, the total size is its length.
    Upload {
        /// The session.
        #[command(flatten)]
        session: SessionRef,
        /// The whole file the part is taken from.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Where the part starts in the file (a multiple of the session's part_size).
        #[arg(long)]
        offset: u64,
        /// The part's size (default: the session's part_size, or up to the end of the file; asks
        /// Box for the session once to learn it).
        #[arg(long, value_name = "BYTES")]
        size: Option<u64>,
    },
}
