//! One code path over the two transports. Everything a command does is a core machine (an
//! operation's `Call`, a big upload, a listing, a commit) run by [`Backend::drive`], the one place
//! that knows which transport carries it: box-upload-hyper (async, on a runtime owned here) or
//! box-upload-ureq (blocking). Both clients are built from one builder configuration and fail with
//! the one [`box_upload_driver::Error`].

use crate::args::TransportKind;
use crate::failure::{one_line, Exit, Failure};
use crate::interrupt::Interrupt;
use box_upload_core::models::FileFull;
use box_upload_core::operations::Operation;
use box_upload_core::Secret;
use box_upload_core::{
    BigUpload, BoxSubject, Checkpoint, ClientCredentials, FileUpload, Machine, ResumeFrom, ResumeOptions, UploadRequest,
};
use box_upload_driver::{CancelToken, ClientBuilder, OpenSource, ProxySetting, Source, UploadOptions, Wire};
use std::path::Path;

/// How the client authenticates.
#[derive(Clone)]
pub(crate) enum Auth {
    /// A fixed token (developer token or any access token).
    Token(Secret),
    /// Client Credentials Grant.
    Ccg {
        /// Client id.
        id: String,
        /// Client secret.
        secret: Secret,
        /// The subject.
        subject: BoxSubject,
        /// The token endpoint.
        token_url: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token or the secret.
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(REDACTED)"),
            Auth::Ccg { subject, token_url, .. } => {
                write!(f, "Auth::Ccg {{ subject: {subject:?}, token_url: {token_url:?} }}")
            }
        }
    }
}

/// What a client is built from.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// `--transport`.
    pub(crate) transport: TransportKind,
    /// `--upload-url`.
    pub(crate) upload_base: String,
    /// `--api-url` (unset: the core derives it from the upload base).
    pub(crate) api_base: Option<String>,
    /// The credentials.
    pub(crate) auth: Auth,
    /// `--parallel`.
    pub(crate) parallel: usize,
    /// `--max-part-size` (unset: the core's default).
    pub(crate) max_part_size: Option<u64>,
    /// `--proxy` (unset: the environment's, as curl reads it).
    pub(crate) proxy: Option<Secret>,
    /// `--ca-file`.
    pub(crate) ca_files: Vec<std::path::PathBuf>,
    /// `--allow-insecure-http`.
    pub(crate) allow_insecure_http: bool,
    /// `--timeout` (the idle timeout).
    pub(crate) timeout: Option<std::time::Duration>,
    /// `--deadline`: the longest an upload or resume may take.
    pub(crate) deadline: Option<std::time::Duration>,
}

impl Settings {
    /// The builder of either transport, configured the same way.
    fn configure<W: Wire>(&self, builder: ClientBuilder<W>) -> Result<ClientBuilder<W>, Failure> {
        let mut builder = builder.upload_base(&self.upload_base).parts_in_flight(self.parallel);
        if let Some(max) = self.max_part_size {
            builder = builder.max_part_size(max);
        }
        if let Some(api) = &self.api_base {
            builder = builder.api_base(api);
        }
        builder = match &self.proxy {
            Some(p) if p.expose().trim().eq_ignore_ascii_case("none") => builder.proxy_setting(ProxySetting::Direct),
            Some(p) => builder.proxy_setting(ProxySetting::Url(p.clone())),
            None => builder,
        };
        for path in &self.ca_files {
            builder = builder.ca_file(path);
        }
        builder = builder.allow_insecure_http(self.allow_insecure_http);
        if let Some(timeout) = self.timeout {
            builder = builder.idle_timeout(timeout);
        }
        Ok(match &self.auth {
            Auth::Token(token) => builder.developer_token(token.expose()),
            Auth::Ccg { id, secret, subject, token_url } => builder.client_credentials(
                ClientCredentials::new(id, secret.expose(), subject.clone())
                    .with_token_url(token_url)
                    .map_err(|e| Failure::new(Exit::Auth, one_line(&e.to_string())))?,
            ),
        })
    }
}

/// A built client of either transport.
enum Transport {
    /// Blocking.
    Ureq(box_upload_ureq::Client),
    /// Async, with the runtime it runs on.
    Hyper(box_upload_hyper::Client, Box<tokio::runtime::Runtime>),
}

/// The client every command runs through.
pub(crate) struct Backend {
    transport: Transport,
    /// The core client the transport drives (shares its token cache).
    core: box_upload_core::Client,
    /// `--parallel`.
    parts_in_flight: usize,
}

impl Backend {
    /// Builds the client `settings` describe. Nothing is sent.
    pub(crate) fn build(settings: &Settings) -> Result<Self, Failure> {
        tracing::debug!(
            transport = settings.transport.name(),
            upload_base = %settings.upload_base,
            api_base = ?settings.api_base,
            auth = ?settings.auth,
            parallel = settings.parallel,
            "building the client"
        );
        let transport = match settings.transport {
            TransportKind::Ureq => Transport::Ureq(settings.configure(box_upload_ureq::Client::builder())?.build()?),
            TransportKind::Hyper => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("box-upload-hyper")
                    .enable_all()
                    .build()
                    .map_err(|e| Failure::new(Exit::Other, format!("cannot start the async runtime: {e}")))?;
                let client = {
                    let _guard = runtime.enter();
                    settings.configure(box_upload_hyper::Client::builder())?.build()?
                };
                Transport::Hyper(client, Box::new(runtime))
            }
        };
        let core = match &transport {
            Transport::Ureq(c) => c.core().clone(),
            Transport::Hyper(c, _) => c.core().clone(),
        };
        Ok(Self { transport, core, parts_in_flight: settings.parallel })
    }

    /// The core client: machines are made here, then run with [`drive`](Self::drive).
    pub(crate) fn core(&self) -> &box_upload_core::Client {
        &self.core
    }

    /// Runs `machine` to its output through the transport, reading from `source` if it reads,
    /// steered by `options` (events, progress, checkpoint file, cancellation).
    pub(crate) fn drive<M>(
        &self,
        machine: &mut M,
        source: Option<OpenSource>,
        options: UploadOptions,
    ) -> Result<M::Output, Failure>
    where
        M: Machine + Send,
        M::Output: Send,
    {
        let result = match &self.transport {
            Transport::Ureq(c) => c.drive_open(machine, source, options),
            Transport::Hyper(c, runtime) => runtime.block_on(c.drive_open(machine, source, options)),
        };
        result.map_err(Failure::from)
    }

    /// Runs one operation (with the core's token handling and retries).
    pub(crate) fn run<O>(&self, operation: O) -> Result<O::Output, Failure>
    where
        O: Operation + Send,
        O::Output: Send,
    {
        let mut call = self.core.call(operation);
        self.drive(&mut call, None, UploadOptions::new())
    }

    /// The upload of the file at `path` as `request` says, any size: direct below
    /// `chunked_from`, an upload session from it. The file is opened and the core takes its
    /// size, fingerprint and times (unless `options` turns them off), and checks the request.
    /// Nothing is sent.
    pub(crate) fn start_upload(
        &self,
        path: &Path,
        request: UploadRequest,
        chunked_from: u64,
        options: &UploadOptions,
    ) -> Result<BigRun<FileUpload>, Failure> {
        let (machine, source) = box_upload_driver::open_file_upload(
            &self.core,
            Source::file(path),
            request,
            Some(self.parts_in_flight),
            chunked_from,
            options,
        )?;
        Ok(BigRun::new(machine, source))
    }

    /// The resume of `checkpoint` from the file at `path`: the core checks the file's size and
    /// fingerprint against the checkpoint's. Nothing is sent.
    pub(crate) fn start_resume(
        &self,
        path: &Path,
        checkpoint: Checkpoint,
        options: ResumeOptions,
    ) -> Result<BigRun, Failure> {
        // The checkpoint file to keep up to date is named in the options of `finish`.
        let mut unused = UploadOptions::new();
        let (machine, source) = box_upload_driver::open_resume(
            &self.core,
            ResumeFrom::Checkpoint(Box::new(checkpoint)),
            Source::file(path),
            options,
            &mut unused,
            Some(self.parts_in_flight),
        )?;
        Ok(BigRun::new(machine, source))
    }

    /// Runs a big upload to its commit. Ctrl-C cancels it: the session is then kept when
    /// `keep_session_on_cancel` (a checkpoint can resume it), aborted otherwise.
    pub(crate) fn finish<M>(
        &self,
        mut run: BigRun<M>,
        options: UploadOptions,
        keep_session_on_cancel: bool,
    ) -> Result<FileFull, Failure>
    where
        M: Machine<Output = FileFull> + Send,
    {
        let token = CancelToken::new();
        let interrupt = Interrupt::watch(token.clone());
        let options = options.cancel_token(token).keep_session_on_cancel(keep_session_on_cancel);
        // The reads are checked against the opening the machine's size and fingerprint came from.
        let result = self.drive(&mut run.machine, Some(run.source), options);
        interrupted(result, &interrupt, keep_session_on_cancel)
    }
}

/// An upload ready to run: the core's machine (a [`FileUpload`], or the [`BigUpload`] of a
/// resume) and what opening the file told.
pub(crate) struct BigRun<M = BigUpload> {
    machine: M,
    /// The file, opened.
    source: OpenSource,
    /// Its size when opened.
    size: u64,
}

impl<M> BigRun<M> {
    fn new(machine: M, source: OpenSource) -> Self {
        let size = source.facts().size.unwrap_or_default();
        Self { machine, source, size }
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// Says what became of the session when the run ended because of Ctrl-C.
fn interrupted<T>(result: Result<T, Failure>, interrupt: &Interrupt, kept: bool) -> Result<T, Failure> {
    match result {
        Err(f) if interrupt.fired() => {
            let what = if kept {
                "interrupted; the session is kept: continue with `box-upload resume CHECKPOINT`"
            } else {
                "interrupted; the upload session was aborted"
            };
            Err(Failure::new(Exit::Other, format!("{what} ({})", f.message)))
        }
        other => other,
    }
}
