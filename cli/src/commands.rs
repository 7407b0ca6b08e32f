//! The commands: argument checks, the calls, and what is printed.

use crate::args::{Cli, Command, Global, PartCommand, ResumeArgs, SessionCommand, SubjectType, UploadArgs};
use crate::backend::{Auth, Backend, Settings};
use crate::emulator::{Emulated, EMULATOR_TOKEN};
use crate::failure::{io_failure, Exit, Failure};
use crate::output::{print_json, print_line};
use crate::progress::Bar;
use box_upload_core::models::{FileFull, UploadPart};
use box_upload_core::operations::{
    CommitUploadSession, CreateUploadSession, CreateUploadSessionForFile, DeleteUploadSession, GetUploadSession,
    ListUploadSessionParts, SessionRef as Session, UploadFilePart,
};
use box_upload_core::{
    BoxSubject, Event, FileFingerprint, FileHasher, PartData, ResumeOptions, Secret, Sha1Digest, UploadRequest,
    UploadTarget,
};
use box_upload_driver::UploadOptions;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs the command `cli` names.
pub(crate) fn run(cli: Cli) -> Result<(), Failure> {
    let Cli { global, command } = cli;
    match command {
        Command::Upload(mut args) if args.emulator => {
            let emulated = Emulated::start(global.transport.name(), &mut args)?;
            let mut settings = settings(&global, Some(Auth::Token(Secret::new(EMULATOR_TOKEN))))?;
            settings.upload_base = emulated.upload_base();
            // The emulator's API host is its own origin, which the core derives.
            settings.api_base = None;
            let started = Instant::now();
            let file = upload(&settings, &args, Some(&emulated.path))?;
            emulated.verify(&file, started.elapsed(), args.json)
        }
        Command::Upload(args) => upload(&settings(&global, None)?, &args, None).map(|_| ()),
        Command::Resume(args) => resume(&global, &args),
        Command::Session(cmd) => session(&global, cmd),
        Command::Part(cmd) => part(&global, cmd),
    }
}

/// A usage error found after parsing (exit 2, like clap's).
fn usage(message: impl Into<String>) -> Failure {
    Failure::new(Exit::Usage, message)
}

/// The client settings from the global flags; `auth` overrides the credentials (the emulator's).
fn settings(global: &Global, auth: Option<Auth>) -> Result<Settings, Failure> {
    let auth = match auth {
        Some(a) => a,
        None => credentials(global)?,
    };
    Ok(Settings {
        transport: global.transport,
        upload_base: global.upload_url.clone(),
        api_base: global.api_url.clone(),
        auth,
        parallel: global.parallel as usize,
        max_part_size: global.max_part_size,
        proxy: global.proxy.clone(),
        ca_files: global.ca_file.clone(),
        allow_insecure_http: global.allow_insecure_http,
        timeout: global.timeout.map(Duration::from_secs),
        deadline: global.deadline.map(Duration::from_secs),
    })
}

/// The credentials the flags give: the Client Credentials Grant when `--client-id` is given,
/// else the token.
fn credentials(global: &Global) -> Result<Auth, Failure> {
    if let Some(id) = &global.client_id {
        let secret = global
            .client_secret
            .clone()
            .ok_or_else(|| usage("--client-id needs --client-secret (or BOX_CLIENT_SECRET)"))?;
        let kind = global
            .subject_type
            .ok_or_else(|| usage("--client-id needs --subject-type enterprise|user (or BOX_SUBJECT_TYPE)"))?;
        let subject_id =
            global.subject_id.clone().ok_or_else(|| usage("--client-id needs --subject-id (or BOX_SUBJECT_ID)"))?;
        let subject = match kind {
            SubjectType::Enterprise => BoxSubject::Enterprise(subject_id),
            SubjectType::User => BoxSubject::User(subject_id),
        };
        return Ok(Auth::Ccg { id: id.clone(), secret, subject, token_url: global.token_url.clone() });
    }
    let token = match (&global.token_file, &global.token) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| io_failure("cannot read --token-file", path, &e))?;
            token_line(&text).ok_or_else(|| usage(format!("--token-file {}: no token in it", path.display())))?
        }
        (None, Some(t)) if t.expose() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .map_err(|e| Failure::new(Exit::Io, format!("cannot read the token from stdin: {e}")))?;
            token_line(&text).ok_or_else(|| usage("--token -: no token on standard input"))?
        }
        (None, Some(t)) => token_line(t.expose()).unwrap_or_default(),
        (None, None) => Secret::default(),
    };
    if token.is_empty() {
        return Err(Failure::new(
            Exit::Auth,
            "no credentials: give --token (or BOX_DEVELOPER_TOKEN, --token-file FILE, --token - for stdin), \
             or --client-id, --client-secret, --subject-type and --subject-id for the Client Credentials Grant",
        ));
    }
    Ok(Auth::Token(token))
}

/// The token in `text`: its first line that is not blank, trimmed.
fn token_line(text: &str) -> Option<Secret> {
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(Secret::new)
}

// ---- the big upload ----------------------------------------------------------------------------

/// The path recorded in a checkpoint's fingerprint (the core's format).
fn fingerprint_path(fingerprint: &str) -> Option<PathBuf> {
    fingerprint.parse::<FileFingerprint>().ok().map(|f| PathBuf::from(f.path))
}

/// A failure before the run started: the file could not be opened, or the core refused the
/// input (e.g. a bad file name). No request was made.
fn nothing_sent(failure: Failure) -> Failure {
    Failure { message: format!("{} (nothing was sent)", failure.message), ..failure }
}

/// `box-upload upload` (also used by `--emulator`); returns the committed file.
fn upload(settings: &Settings, args: &UploadArgs, path: Option<&Path>) -> Result<FileFull, Failure> {
    let path = path
        .or(args.path.as_deref())
        .ok_or_else(|| usage("upload needs a PATH (only --emulator makes one up)"))?
        .to_path_buf();
    // A size of 0: the core takes the file's.
    let mut request = match (&args.folder, &args.file_id) {
        (_, Some(file_id)) => {
            let mut r = UploadRequest::new_version(file_id, 0);
            if let Some(name) = &args.name {
                r.target = UploadTarget::NewVersion { file_id: file_id.clone(), file_name: Some(name.clone()) };
            }
            r
        }
        (folder, None) => {
            let name = match &args.name {
                Some(n) => n.clone(),
                None => path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| usage(format!("{} has no file name: give --name", path.display())))?,
            };
            UploadRequest::new_file(folder.clone().unwrap_or_else(|| "0".into()), name, 0)
        }
    };
    if let Some(etag) = &args.if_match {
        request = request.if_match(etag);
    }
    if let Some(etag) = &args.if_none_match {
        request = request.if_none_match(etag);
    }
    if args.checkpoint.is_some() {
        request = request.keep_session_on_failure(true);
    }
    if args.dedupe {
        request = request.dedupe(true);
    }
    let (low, high) = (box_upload_core::MIN_FILE_SIZE, box_upload_core::MAX_DIRECT_UPLOAD_SIZE + 1);
    if !(low..=high).contains(&args.chunked_from) {
        return Err(usage(format!(
            "--chunked-from must be from {low} (Box's smallest upload session) to {high} (Box's direct uploads hold at most {} bytes)",
            high - 1
        )));
    }
    let failed = |f: Failure| f.context(&format!("upload of {} failed", path.display()));
    let backend = Backend::build(settings)?;
    let choices = UploadOptions::new().on_conflict(args.on_conflict.into()).timestamps(!args.no_timestamps);
    let run = backend.start_upload(&path, request, args.chunked_from, &choices).map_err(|f| failed(nothing_sent(f)))?;
    let size = run.size();
    if size < args.chunked_from {
        // Options that only an upload session uses: say so rather than drop them silently.
        let unused: Vec<&str> = [
            (args.checkpoint.is_some(), "--checkpoint (one request has nothing to resume)"),
            (args.dedupe, "--dedupe"),
        ]
        .into_iter()
        .filter_map(|(given, what)| given.then_some(what))
        .collect();
        if !unused.is_empty() {
            eprintln!(
                "box-upload: note: {} ({size} bytes, below --chunked-from {}) goes in one direct request; unused: {}",
                path.display(),
                args.chunked_from,
                unused.join(", ")
            );
        }
    }
    let bar = Bar::for_stderr(size, "uploading");
    let mut options = bar.watch(choices);
    if let Some(deadline) = settings.deadline {
        options = options.deadline(deadline);
    }
    if let Some(checkpoint) = &args.checkpoint {
        options = options.checkpoint_file(checkpoint);
    }
    let started = Instant::now();
    let result = backend.finish(run, options, args.checkpoint.is_some());
    finish(&bar, &result);
    let file = result.map_err(failed)?;
    report(&file, &path, size, started.elapsed(), args.json)?;
    Ok(file)
}

fn finish<T>(bar: &Bar, result: &Result<T, Failure>) {
    match result {
        Ok(_) => bar.finish(),
        Err(_) => bar.abandon(),
    }
}

/// Prints the committed file: its JSON, or one summary line.
fn report(file: &FileFull, path: &Path, size: u64, took: Duration, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(file);
    }
    let secs = took.as_secs_f64().max(0.001);
    print_line(&format!(
        "uploaded {} as file {} {:?} in folder {}: {} bytes, sha1 {}, version {}, {:.1} s ({:.1} MB/s)",
        path.display(),
        file.id,
        file.name.as_deref().unwrap_or(""),
        file.parent.as_ref().map_or("?", |p| p.id.as_str()),
        file.size.unwrap_or(size),
        file.sha1.as_deref().unwrap_or("?"),
        file.file_version.as_ref().map_or("?", |v| v.id.as_str()),
        secs,
        size as f64 / secs / 1e6,
    ))
}

/// `box-upload resume`.
fn resume(global: &Global, args: &ResumeArgs) -> Result<(), Failure> {
    let checkpoint = box_upload_driver::load_checkpoint(&args.checkpoint)?;
    let path = match &args.path {
        Some(p) => p.clone(),
        None => checkpoint
            .source_fingerprint
            .as_deref()
            .and_then(fingerprint_path)
            .ok_or_else(|| usage(format!("{} does not name the file: give PATH", args.checkpoint.display())))?,
    };
    let settings = settings(global, None)?;
    // The file's size and fingerprint are checked against the checkpoint's by the core.
    let options = ResumeOptions { keep_session_on_failure: true, ..ResumeOptions::default() };
    let failed = |f: Failure| f.context(&format!("resume of {} failed", path.display()));
    let backend = Backend::build(&settings)?;
    let run = backend.start_resume(&path, checkpoint, options).map_err(|f| failed(nothing_sent(f)))?;
    let size = run.size();
    let bar = Bar::for_stderr(size, "resuming");
    let mut options = bar.watch(UploadOptions::new()).checkpoint_file(&args.checkpoint);
    if let Some(deadline) = settings.deadline {
        options = options.deadline(deadline);
    }
    let started = Instant::now();
    let result = backend.finish(run, options, true);
    finish(&bar, &result);
    let file = result.map_err(failed)?;
    report(&file, &path, size, started.elapsed(), args.json)
}

// ---- single operations -------------------------------------------------------------------------

fn backend(global: &Global) -> Result<Backend, Failure> {
    Backend::build(&settings(global, None)?)
}

/// `box-upload session ...`.
fn session(global: &Global, cmd: SessionCommand) -> Result<(), Failure> {
    match cmd {
        SessionCommand::Create { folder, name, size } => {
            let op = CreateUploadSession::new(folder, name, size)?;
            let session = backend(global)?.run(op).map_err(|f| f.context("session create failed"))?;
            print_json(&session)
        }
        SessionCommand::CreateForFile { file_id, size, name } => {
            let mut op = CreateUploadSessionForFile::new(file_id, size)?;
            if let Some(name) = name {
                op = op.with_file_name(name)?;
            }
            let session = backend(global)?.run(op).map_err(|f| f.context("session create-for-file failed"))?;
            print_json(&session)
        }
        SessionCommand::Get { session } => {
            let op = match session.target() {
                Session::Id(id) => GetUploadSession::by_id(id),
                Session::Url(url) => GetUploadSession::by_url(url),
            };
            let session = backend(global)?.run(op).map_err(|f| f.context("session get failed"))?;
            print_json(&session)
        }
        SessionCommand::Abort { session } => {
            let target = session.target();
            let op = match &target {
                Session::Id(id) => DeleteUploadSession::by_id(id),
                Session::Url(url) => DeleteUploadSession::by_url(url),
            };
            backend(global)?.run(op).map_err(|f| f.context("session abort failed"))?;
            let (Session::Id(name) | Session::Url(name)) = target;
            eprintln!("aborted upload session {name}");
            Ok(())
        }
        // clap keeps --offset from --all.
        SessionCommand::Parts { session, limit, all: true, .. } => {
            let failed = |f: Failure| f.context("session parts failed");
            let target = session.target();
            let backend = backend(global)?;
            let mut list = backend.core().list_all_parts(target.clone());
            if let Some(l) = limit {
                list = list.with_limit(l).map_err(|e| failed(e.into()))?;
            }
            // By id, the session says how many parts it can hold: a listing of more is refused.
            if let Session::Id(id) = &target {
                let session = backend.run(GetUploadSession::by_id(id)).map_err(failed)?;
                if let Some(total) = session.total_parts {
                    list = list.with_max_parts(total);
                }
            }
            let parts = backend.drive(&mut list, None, UploadOptions::new()).map_err(failed)?;
            print_json(&parts)
        }
        SessionCommand::Parts { session, offset, limit, all: false } => {
            let mut op = match session.target() {
                Session::Id(id) => ListUploadSessionParts::by_id(id),
                Session::Url(url) => ListUploadSessionParts::by_url(url),
            };
            op = op.with_page(offset, limit)?;
            let parts = backend(global)?.run(op).map_err(|f| f.context("session parts failed"))?;
            print_json(&parts)
        }
        SessionCommand::Plan { session, file, part_size } => {
            crate::plan::session_plan(&backend(global)?, session.target(), &file, part_size)
        }
        SessionCommand::Commit { session, parts, digest, file, if_match, if_none_match } => {
            if parts.is_none()
                && global.token_file.is_none()
                && global.token.as_ref().is_some_and(|t| t.expose() == "-")
            {
                return Err(usage(
                    "--token - reads standard input, where the parts would come from: give --parts FILE",
                ));
            }
            let parts = read_parts(parts.as_deref())?;
            let digest = match (digest, file) {
                (Some(d), _) => parse_digest(&d)?,
                (None, Some(path)) => file_digest(&path)?,
                (None, None) => return Err(usage("give --digest or --file")),
            };
            let op = CommitUploadSession::new(session.target(), parts, digest).with_conditions(if_match, if_none_match);
            let backend = backend(global)?;
            let mut commit = backend.core().commit_and_wait(op);
            // The core waits out Box's 202s within its RetryPolicy; each is said here.
            let options = UploadOptions::new().on_event(|event| {
                if let Event::CommitPending { delay, .. } = event {
                    eprintln!(
                        "Box is still processing the parts (202); committing again in {:.1} s",
                        delay.as_secs_f64()
                    );
                }
            });
            let files = backend.drive(&mut commit, None, options).map_err(|f| f.context("session commit failed"))?;
            print_json(&files)
        }
    }
}

/// The parts for a commit: an UploadParts object (`session parts` output) or a JSON array.
fn read_parts(path: Option<&Path>) -> Result<Vec<UploadPart>, Failure> {
    let text = match path {
        Some(p) => std::fs::read(p).map_err(|e| io_failure("cannot read parts file", p, &e))?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(usage("give the parts as JSON on stdin (e.g. from `session parts --all`) or --parts FILE"));
            }
            let mut buf = Vec::new();
            stdin
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::new(Exit::Io, format!("cannot read stdin: {e}")))?;
            buf
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| usage(format!("the parts are not JSON: {e}")))?;
    let list = match value {
        serde_json::Value::Object(mut o) => o.remove("entries").unwrap_or(serde_json::Value::Null),
        v => v,
    };
    serde_json::from_value(list)
        .map_err(|e| usage(format!("the parts must be an UploadParts object or a JSON array of parts: {e}")))
}

/// `sha=<base64>` or 40 hex digits.
fn parse_digest(text: &str) -> Result<Sha1Digest, Failure> {
    let text = text.trim();
    let parsed = if text.len() >= 4 && text[..4].eq_ignore_ascii_case("sha=") {
        Sha1Digest::parse_header(text)
    } else {
        Sha1Digest::from_hex(text)
    };
    parsed.map_err(|e| usage(format!("--digest {text:?}: {e} (give sha=<base64> or 40 hex digits)")))
}

/// The SHA-1 of the file at `path`.
fn file_digest(path: &Path) -> Result<Sha1Digest, Failure> {
    let mut file = std::fs::File::open(path).map_err(|e| io_failure("cannot open", path, &e))?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| io_failure("cannot read", path, &e))?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// `box-upload part ...`.
fn part(global: &Global, cmd: PartCommand) -> Result<(), Failure> {
    let PartCommand::Upload { session, file, offset, size } = cmd;
    let target = session.target();
    let mut f = std::fs::File::open(&file).map_err(|e| io_failure("cannot open", &file, &e))?;
    let file_size = f.metadata().map_err(|e| io_failure("cannot read", &file, &e))?.len();
    if offset >= file_size {
        return Err(usage(format!("--offset {offset} is not inside {} ({file_size} bytes)", file.display())));
    }
    let backend = backend(global)?;
    let size = match size {
        Some(s) => s,
        None => {
            let op = match &target {
                Session::Id(id) => GetUploadSession::by_id(id),
                Session::Url(url) => GetUploadSession::by_url(url),
            };
            let s = backend.run(op).map_err(|f| f.context("part upload failed: getting the session's part_size"))?;
            s.part_size.ok_or_else(|| {
                Failure::new(Exit::Api, "part upload failed: the session has no part_size; give --size")
            })?
        }
    };
    let size = size.min(file_size - offset);
    let len = usize::try_from(size).map_err(|_| usage(format!("--size {size} is too large")))?;
    let mut bytes = vec![0u8; len];
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut bytes))
        .map_err(|e| io_failure("cannot read", &file, &e))?;
    let data = PartData::new(bytes);
    let op = UploadFilePart::new(target, offset, file_size, data)?;
    let part = backend.run(op).map_err(|f| f.context("part upload failed"))?;
    print_json(&part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let fp = "file/1 size=3 mtime=1.000000000 path=/tmp/a b/c path=d";
        assert_eq!(fingerprint_path(fp), Some(PathBuf::from("/tmp/a b/c path=d")));
        assert_eq!(fingerprint_path("file:/x:size=1"), None);
    }

    #[test]
    fn digests() {
        let d = Sha1Digest::of(b"abc");
        assert_eq!(parse_digest(&d.to_hex()).ok(), Some(d));
        assert_eq!(parse_digest(&d.header_value()).ok(), Some(d));
        assert!(parse_digest("nope").is_err());
    }
}
