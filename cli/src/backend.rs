//! One surface over the two transports: box-upload-hyper (async, run on a runtime owned here) and
//! box-upload-ureq (blocking).

use crate::args::TransportKind;
use crate::failure::{one_line, Exit, Failure};
use crate::interrupt::Interrupt;
use box_upload_core::models::FileFull;
use box_upload_core::operations::Operation;
use box_upload_core::{BoxSubject, Checkpoint, ClientCredentials, Progress, ResumeOptions, UploadRequest};
use std::path::PathBuf;
use std::sync::Arc;

/// How the client authenticates.
#[derive(Clone)]
pub(crate) enum Auth {
    /// A fixed token (developer token or any access token).
    Token(String),
    /// Client Credentials Grant.
    Ccg {
        /// Client id.
        id: String,
        /// Client secret.
        secret: String,
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

impl Auth {
    fn credentials(&self) -> Result<Option<ClientCredentials>, Failure> {
        match self {
            Auth::Token(_) => Ok(None),
            Auth::Ccg { id, secret, subject, token_url } => ClientCredentials::new(id, secret, subject.clone())
                .with_token_url(token_url)
                .map(Some)
                .map_err(|e| Failure::new(Exit::Auth, one_line(&e.to_string()))),
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
    /// The credentials.
    pub(crate) auth: Auth,
    /// `--parallel`.
    pub(crate) parallel: usize,
}

/// A progress callback shared with the transport.
pub(crate) type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// A big upload's source and watchers.
pub(crate) struct Job {
    /// The file uploaded.
    pub(crate) path: PathBuf,
    /// The checkpoint file kept up to date, if any.
    pub(crate) checkpoint: Option<PathBuf>,
    /// Called with the upload's progress.
    pub(crate) progress: Option<ProgressFn>,
}

/// A built client of either transport.
pub(crate) enum Backend {
    /// Blocking.
    Ureq(box_upload_ureq::Client),
    /// Async, with the runtime it runs on.
    Hyper(box_upload_hyper::Client, Box<tokio::runtime::Runtime>),
}

impl Backend {
    /// Builds the client `settings` describe.
    pub(crate) fn build(settings: &Settings) -> Result<Self, Failure> {
        tracing::debug!(
            transport = settings.transport.name(),
            upload_base = %settings.upload_base,
            auth = ?settings.auth,
            parallel = settings.parallel,
            "building the client"
        );
        let credentials = settings.auth.credentials()?;
        match settings.transport {
            TransportKind::Ureq => {
                let mut builder = box_upload_ureq::Client::builder()
                    .upload_base(&settings.upload_base)
                    .parts_in_flight(settings.parallel);
                builder = match (&settings.auth, credentials) {
                    (_, Some(c)) => builder.client_credentials(c),
                    (Auth::Token(t), None) => builder.developer_token(t.clone()),
                    (Auth::Ccg { .. }, None) => unreachable!("credentials are built for CCG"),
                };
                builder.build().map(Backend::Ureq).map_err(Failure::from)
            }
            TransportKind::Hyper => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("box-upload-hyper")
                    .enable_all()
                    .build()
                    .map_err(|e| Failure::new(Exit::Other, format!("cannot start the async runtime: {e}")))?;
                let _guard = runtime.enter();
                let mut builder = box_upload_hyper::Client::builder()
                    .upload_base(&settings.upload_base)
                    .parts_in_flight(settings.parallel);
                builder = match (&settings.auth, credentials) {
                    (_, Some(c)) => builder.client_credentials(c),
                    (Auth::Token(t), None) => builder.developer_token(t.clone()),
                    (Auth::Ccg { .. }, None) => unreachable!("credentials are built for CCG"),
                };
                let client = builder.build().map_err(Failure::from)?;
                drop(_guard);
                Ok(Backend::Hyper(client, Box::new(runtime)))
            }
        }
    }

    /// Runs one operation (with the core's token handling and retries).
    pub(crate) fn run<O>(&self, op: O) -> Result<O::Output, Failure>
    where
        O: Operation + Send,
        O::Output: Send,
    {
        match self {
            Backend::Ureq(c) => c.run(op).map_err(Failure::from),
            Backend::Hyper(c, rt) => rt.block_on(c.run(op)).map_err(Failure::from),
        }
    }

    /// A big upload of `job.path` as `request` says.
    pub(crate) fn upload(&self, job: Job, request: UploadRequest) -> Result<FileFull, Failure> {
        match self {
            Backend::Ureq(c) => {
                let source = box_upload_ureq::Source::file(&job.path)?;
                let mut options = box_upload_ureq::UploadOptions::new();
                if let Some(p) = job.progress {
                    options = options.on_progress(move |x| p(x));
                }
                let keep = job.checkpoint.is_some();
                if let Some(cp) = job.checkpoint {
                    options = options.checkpoint_file(cp);
                }
                let flag = box_upload_ureq::CancelFlag::new();
                let cancel = flag.clone();
                let interrupt = Interrupt::watch(move || cancel.cancel());
                options = options.cancel_flag(flag).keep_session_on_cancel(keep);
                interrupted(c.upload_with(source, request, options).map_err(Failure::from), &interrupt, keep)
            }
            Backend::Hyper(c, rt) => {
                let source = box_upload_hyper::Source::file(&job.path);
                let mut options = box_upload_hyper::UploadOptions::new();
                if let Some(p) = job.progress {
                    options = options.on_progress(move |x| p(x));
                }
                let keep = job.checkpoint.is_some();
                if let Some(cp) = job.checkpoint {
                    options = options.checkpoint_file(cp);
                }
                let token = box_upload_hyper::CancellationToken::new();
                let cancel = token.clone();
                let interrupt = Interrupt::watch(move || cancel.cancel());
                options = options.cancel_token(token).keep_session_on_cancel(keep);
                let result = rt.block_on(c.upload_with(source, request, options)).map_err(Failure::from);
                interrupted(result, &interrupt, keep)
            }
        }
    }

    /// Continues `checkpoint` from `job.path`.
    pub(crate) fn resume(&self, job: Job, checkpoint: Checkpoint, resume: ResumeOptions) -> Result<FileFull, Failure> {
        match self {
            Backend::Ureq(c) => {
                let source = box_upload_ureq::Source::file(&job.path)?;
                let mut options = box_upload_ureq::UploadOptions::new();
                if let Some(p) = job.progress {
                    options = options.on_progress(move |x| p(x));
                }
                if let Some(cp) = job.checkpoint {
                    options = options.checkpoint_file(cp);
                }
                let flag = box_upload_ureq::CancelFlag::new();
                let cancel = flag.clone();
                let interrupt = Interrupt::watch(move || cancel.cancel());
                options = options.cancel_flag(flag).keep_session_on_cancel(true);
                interrupted(c.resume_with(checkpoint, source, resume, options).map_err(Failure::from), &interrupt, true)
            }
            Backend::Hyper(c, rt) => {
                let source = box_upload_hyper::Source::file(&job.path);
                let mut options = box_upload_hyper::UploadOptions::new();
                if let Some(p) = job.progress {
                    options = options.on_progress(move |x| p(x));
                }
                if let Some(cp) = job.checkpoint {
                    options = options.checkpoint_file(cp);
                }
                let token = box_upload_hyper::CancellationToken::new();
                let cancel = token.clone();
                let interrupt = Interrupt::watch(move || cancel.cancel());
                options = options.cancel_token(token).keep_session_on_cancel(true);
                let result = rt.block_on(c.resume_with(checkpoint, source, resume, options)).map_err(Failure::from);
                interrupted(result, &interrupt, true)
            }
        }
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
