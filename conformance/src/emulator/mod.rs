//! The Box upload API emulator: a real HTTP/1.1 server on loopback.
//!
//! Start it with [`Emulator::builder`], then point a client at [`Emulator::upload_base_url`]
//! (`http://127.0.0.1:PORT/api`) and [`Emulator::token_url`]. See the crate README for the
//! rules and error codes it enforces.
//!
//! ```no_run
//! # async fn demo() -> Result<(), box_upload_conformance::EmulatorError> {
//! use box_upload_conformance::{Emulator, Faults, FaultAction, Op, Trigger};
//! let emu = Emulator::builder()
//!     .token("test-token")
//!     .part_size(8 * 1024 * 1024)
//!     .faults(Faults::none().rule(Op::UploadPart, Trigger::FirstN(1), FaultAction::Status { status: 503, retry_after: Some(1) }))
//!     .seed(7)
//!     .start()
//!     .await?;
//! let folder = emu.create_folder("uploads")?;
//! println!("{} {folder}", emu.upload_base_url());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
mod clock;
mod direct;
mod errors;
mod faults;
mod plan;
mod request_log;
mod routes;
mod sessions;
mod storage;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use faults::{EchoField, FaultAction, FaultRule, Faults, Op, Trigger};
pub use plan::PlanMode;
pub use request_log::{RequestOutcome, RequestRecord};
pub use sessions::{ConflictsShape, FileInfo};

use auth::Auth;
use faults::FaultState;
use request_log::Observer;
use sessions::Store;
use storage::Storage;

/// Parses a form-encoded body (`application/x-www-form-urlencoded`) into pairs.
pub(crate) fn parse_form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    auth::parse_form(body)
}

/// Decodes `%XX` escapes and `+` in a query or form value.
pub(crate) fn percent_decode_str(s: &str) -> Option<String> {
    auth::percent_decode(s)
}

/// Box's minimum file size for chunked uploads.
pub const MIN_FILE_SIZE: u64 = 20_000_000;
/// The default part size (8 MiB).
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Box's largest `limit` for list parts, and the emulator's default page size.
pub const MAX_LIST_LIMIT: u64 = 1000;
/// The largest list-parts `offset` Box accepts; above it, 400.
pub const MAX_LIST_OFFSET: u64 = 10_000;

/// Errors of the emulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding the listener, creating the data directory or a runtime failed.
    #[error("emulator I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An operation of the library API was refused (unknown folder, name in use, ...), with the
    /// Box error code the HTTP API would answer.
    #[error("{code}: {message}")]
    Refused {
        /// Box error code, e.g. `item_name_in_use`.
        code: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// No file has this id.
    #[error("no file with id {0}")]
    NoSuchFile(String),
    /// The TLS certificate or configuration could not be made.
    #[error("emulator TLS setup failed: {0}")]
    Tls(String),
}

impl From<errors::ApiError> for EmulatorError {
    fn from(e: errors::ApiError) -> Self {
        EmulatorError::Refused { code: e.code, message: e.message }
    }
}

/// How the emulator chooses the `part_size` of a new session.
#[derive(Clone)]
pub(crate) enum PartSizeRule {
    /// The same for every file.
    Fixed(u64),
    /// A function of the file size.
    By(Arc<dyn Fn(u64) -> u64 + Send + Sync>),
}

impl PartSizeRule {
    /// The part size for a file of `file_size` bytes (at least 1).
    pub(crate) fn for_size(&self, file_size: u64) -> u64 {
        match self {
            PartSizeRule::Fixed(n) => *n,
            PartSizeRule::By(f) => f(file_size),
        }
        .max(1)
    }
}

impl std::fmt::Debug for PartSizeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartSizeRule::Fixed(n) => f.debug_tuple("Fixed").field(n).finish(),
            PartSizeRule::By(_) => f.write_str("By(fn(file_size) -> part_size)"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) part_size: PartSizeRule,
    /// The most entries a list-parts page holds (1 to 1000).
    pub(crate) list_page_size: u64,
    pub(crate) session_lifetime: Duration,
    pub(crate) min_file_size: u64,
    pub(crate) max_file_size: u64,
    pub(crate) max_json_body: usize,
    /// How the plan of a session answers and whether hits join the session.
    pub(crate) plan_mode: PlanMode,
}

/// Request and data counters, readable at any time through [`Emulator::counters`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: [AtomicU64; Op::ALL.len()],
    bytes_received: AtomicU64,
    parts_stored: AtomicU64,
    commits: AtomicU64,
    faults: AtomicU64,
    connections: AtomicU64,
}

impl Counters {
    fn request(&self, op: Op) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
    }
    fn received(&self, n: u64) {
        self.bytes_received.fetch_add(n, Ordering::Relaxed);
    }
    fn part_stored(&self) {
        self.parts_stored.fetch_add(1, Ordering::Relaxed);
    }
    fn commit(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
    fn fault(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of the emulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    requests: [u64; Op::ALL.len()],
    /// Part body bytes received (including bytes of parts later refused or cut).
    pub bytes_received: u64,
    /// Parts stored.
    pub parts_stored: u64,
    /// Successful commits.
    pub commits: u64,
    /// Requests on which at least one fault fired.
    pub faults_injected: u64,
    /// TCP connections accepted.
    pub connections: u64,
}

impl CounterSnapshot {
    /// Requests received of kind `op` (including those answered with an error or a fault).
    pub fn requests(&self, op: Op) -> u64 {
        self.requests[op.index()]
    }

    /// All requests received.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }
}

/// State shared by the server tasks and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) auth: Auth,
    pub(crate) faults: FaultState,
    pub(crate) counters: Counters,
    pub(crate) config: Config,
    /// `http://127.0.0.1:PORT/api`.
    pub(crate) upload_base: String,
    /// Told of every request once it is over.
    pub(crate) observer: Option<Observer>,
}

impl Shared {
    /// The base of `session_endpoints`: our own, or a foreign one injected by a fault.
    pub(crate) fn endpoint_base(&self) -> String {
        self.faults.foreign_endpoints().unwrap_or_else(|| self.upload_base.clone())
    }
}

/// Configures and starts an [`Emulator`].
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    listen: SocketAddr,
    tokens: Vec<String>,
    client: Option<(String, String)>,
    token_lifetime: Duration,
    config: Config,
    faults: Faults,
    seed: u64,
    data_dir: Option<PathBuf>,
    discard_content: bool,
    conflicts_shape: ConflictsShape,
    observer: Option<Observer>,
    tls: bool,
    ca_out: Option<PathBuf>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec!["test-token".to_string()],
            client: None,
            token_lifetime: Duration::from_secs(3600),
            config: Config {
                part_size: PartSizeRule::Fixed(DEFAULT_PART_SIZE),
                list_page_size: MAX_LIST_LIMIT,
                session_lifetime: Duration::from_secs(7 * 24 * 3600),
                min_file_size: MIN_FILE_SIZE,
                max_file_size: 1 << 40,
                max_json_body: 1 << 20,
                plan_mode: PlanMode::AddHits,
            },
            faults: Faults::default(),
            seed: 0,
            data_dir: None,
            discard_content: false,
            conflicts_shape: ConflictsShape::Object,
            observer: None,
            tls: false,
            ca_out: None,
        }
    }
}

impl EmulatorBuilder {
    /// The address to listen on (default `127.0.0.1:0`, a free port). Keep it on loopback.
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The static bearer token accepted (default `test-token`); replaces the default.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.tokens = vec![token.into()];
        self
    }

    /// Enables `POST /oauth2/token` for this client id and secret.
    #[must_use]
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client = Some((id.into(), secret.into()));
        self
    }

    /// Lifetime of tokens issued by `/oauth2/token` (default one hour).
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The part size of new sessions (default 8 MiB), the same for every file size. Must be at
    /// least 1. See [`part_size_fn`](Self::part_size_fn) for a part size that depends on the file.
    #[must_use]
    pub fn part_size(mut self, part_size: u64) -> Self {
        self.config.part_size = PartSizeRule::Fixed(part_size.max(1));
        self
    }

    /// Chooses the part size of each new session from its `file_size`, as Box does (Box has
    /// given 8 MiB and 32 MiB parts to files of similar sizes; no rule is published). The
    /// function gets the session's `file_size` and returns its `part_size`; 0 is taken as 1.
    /// Replaces [`part_size`](Self::part_size) (the constant case).
    ///
    /// ```
    /// # use box_upload_conformance::Emulator;
    /// const MIB: u64 = 1024 * 1024;
    /// let builder = Emulator::builder().part_size_fn(|size| if size >= 1 << 30 { 32 * MIB } else { 8 * MIB });
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn part_size_fn(mut self, f: impl Fn(u64) -> u64 + Send + Sync + 'static) -> Self {
        self.config.part_size = PartSizeRule::By(Arc::new(f));
        self
    }

    /// The most entries one list-parts page holds (default 1000, Box's maximum `limit`; clamped
    /// to 1..=1000). A request's `limit` (default 100, as in Box's spec) is cut down to it and the
    /// answer's `limit` says what was applied, so a client asking for 1000 may get pages of `n`
    /// and must page by `offset` until it has `total_count` entries. `limit` above 1000 and
    /// `offset` above 10000 are still answered 400.
    #[must_use]
    pub fn list_page_size(mut self, n: u64) -> Self {
        self.config.list_page_size = n.clamp(1, MAX_LIST_LIMIT);
        self
    }

    /// The shape of `context_info.conflicts` in 409 `item_name_in_use` answers (preflight,
    /// create session, commit): one object (the default; what rclone and Box's .NET SDK have
    /// observed) or an array holding it (what Box's spec says). Changeable at run time with
    /// [`Emulator::set_conflicts_shape`].
    #[must_use]
    pub fn conflicts_shape(mut self, shape: ConflictsShape) -> Self {
        self.conflicts_shape = shape;
        self
    }

    /// How long sessions live (default 7 days); expired sessions answer 404.
    #[must_use]
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.session_lifetime = lifetime;
        self
    }

    /// The smallest `file_size` accepted (default 20,000,000 like Box).
    #[must_use]
    pub fn min_file_size(mut self, size: u64) -> Self {
        self.config.min_file_size = size;
        self
    }

    /// The largest `file_size` accepted (default 1 TiB); larger sizes answer 403
    /// `storage_limit_exceeded`, so a hostile size never reaches the disk.
    #[must_use]
    pub fn max_file_size(mut self, size: u64) -> Self {
        self.config.max_file_size = size;
        self
    }

    /// The largest JSON request body accepted (default 1 MiB).
    #[must_use]
    pub fn max_json_body(mut self, bytes: usize) -> Self {
        self.config.max_json_body = bytes;
        self
    }

    /// Faults installed from the start.
    #[must_use]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Seed of the generator behind ids and probabilistic faults (default 0).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Where to keep part data and files (default: a temporary directory removed on shutdown).
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Keeps no content: every part's digest and each commit's whole-file digest are checked as
    /// always, but a part's bytes (the body frames it came in, never copied) are held only until
    /// the whole-file SHA-1 has them, and committed versions keep their size and SHA-1 alone
    /// (downloads answer 404). Memory stays at the parts ahead of the hashed prefix. Meant for
    /// benchmarks, where the data directory's page-cache writes and re-reads take CPU from the
    /// client being measured. Overrides [`data_dir`](Self::data_dir).
    #[must_use]
    pub fn discard_content(mut self, yes: bool) -> Self {
        self.discard_content = yes;
        self
    }

    /// How the plan of a session (`POST .../plan`) answers: hits added to the session (the
    /// default), hits answered but not added (to test a client's fallback), or no plan at all
    /// (404). The rule for hits is in the crate README.
    #[must_use]
    pub fn plan_mode(mut self, mode: PlanMode) -> Self {
        self.config.plan_mode = mode;
        self
    }

    /// Calls `f` with a [`RequestRecord`] for every request once it is over: answered, its
    /// answer withheld by a fault, or its connection closed (also when the client went away
    /// mid-request). `f` runs on the server's tasks: keep it short. For request logs, e.g.
    /// which parts a soak run sent twice.
    ///
    /// ```
    /// # use box_upload_conformance::{Emulator, Op, RequestRecord};
    /// use std::sync::{Arc, Mutex};
    /// let parts = Arc::new(Mutex::new(Vec::<RequestRecord>::new()));
    /// let seen = Arc::clone(&parts);
    /// let builder = Emulator::builder().on_request(move |r| {
    ///     if r.op == Op::UploadPart {
    ///         seen.lock().unwrap().push(r.clone());
    ///     }
    /// });
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn on_request(mut self, f: impl Fn(&RequestRecord) + Send + Sync + 'static) -> Self {
        self.observer = Some(Observer(Arc::new(f)));
        self
    }

    /// Serves HTTPS instead of HTTP (default no): a certificate authority and a server
    /// certificate for `localhost`, `127.0.0.1` and `::1` are made at start (new keys each
    /// time), and the CA is written as PEM to [`Emulator::ca_path`] (see
    /// [`ca_out`](Self::ca_out)) for clients to trust. The URLs become `https://127.0.0.1:PORT`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), box_upload_conformance::EmulatorError> {
    /// let emu = box_upload_conformance::Emulator::builder().tls(true).start().await?;
    /// assert!(emu.upload_base_url().starts_with("https://127.0.0.1:"));
    /// println!("trust {}", emu.ca_path().unwrap().display());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn tls(mut self, yes: bool) -> Self {
        self.tls = yes;
        self
    }

    /// With [`tls`](Self::tls): writes the CA's PEM to `path` (default: `ca.pem` in a temporary
    /// directory removed with the emulator).
    #[must_use]
    pub fn ca_out(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_out = Some(path.into());
        self
    }

    /// Binds the listener and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
        let identity = if self.tls { Some(tls::identity(self.ca_out.as_deref())?) } else { None };
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let scheme = if identity.is_some() { "https" } else { "http" };
        let storage = if self.discard_content { Storage::discard() } else { Storage::new(self.data_dir.as_deref())? };
        let shared = Arc::new(Shared {
            store: Store::new(storage, self.seed, self.conflicts_shape),
            auth: Auth::new(self.tokens, self.client, self.token_lifetime),
            faults: FaultState::new(self.faults, self.seed),
            counters: Counters::default(),
            config: self.config,
            upload_base: format!("{scheme}://{addr}/api"),
            observer: self.observer,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let acceptor = identity.as_ref().map(|i| i.acceptor.clone());
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), stop_rx, acceptor));
        Ok(Emulator { shared, addr, scheme, tls: identity, stop: stop_tx, task: Some(task) })
    }

    /// Starts the emulator on a runtime of its own (two worker threads), for blocking code.
    /// Must not be called from inside a tokio runtime.
    pub fn start_blocking(self) -> Result<BlockingEmulator, EmulatorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("box-upload-emulator")
            .enable_all()
            .build()?;
        let emulator = runtime.block_on(self.start())?;
        Ok(BlockingEmulator { emulator: Some(emulator), runtime: Some(runtime) })
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of descriptors or similar: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, shared, stop).await,
                Some(acceptor) => {
                    // A client that never finishes the handshake (or refuses our certificate)
                    // costs one task for a bounded time.
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        connection(stream, shared, stop).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 with keep-alive on one connection (plain or TLS) until it ends or the
/// emulator stops.
async fn connection<I>(io: I, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| routes::handle(Arc::clone(&shared), req));
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = stop.changed() => {}
    }
}

/// A running emulator. Dropping it stops accepting connections; [`Emulator::shutdown`] also
/// waits for the accept loop to end.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `http`, or `https` with [`EmulatorBuilder::tls`].
    scheme: &'static str,
    tls: Option<tls::Identity>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// A builder with the defaults (token `test-token`, 8 MiB parts, no faults).
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (the server root; `/oauth2/token` lives here); `https://` with
    /// [`EmulatorBuilder::tls`].
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// With [`EmulatorBuilder::tls`]: the PEM of the certificate authority that signed the
    /// server's certificate, for clients to trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// With [`EmulatorBuilder::tls`]: where [`ca_pem`](Self::ca_pem) was written (a client's
    /// `ca_file`, `--ca-file` or `SSL_CERT_FILE`).
    pub fn ca_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_path.as_path())
    }

    /// `http://127.0.0.1:PORT/api`, the upload base URL (paths under `/2.0/`).
    pub fn upload_base_url(&self) -> String {
        self.shared.upload_base.clone()
    }

    /// `http://127.0.0.1:PORT/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("{}://{}/oauth2/token", self.scheme, self.addr)
    }

    /// The part size of new sessions of the smallest accepted file size (with
    /// [`EmulatorBuilder::part_size`], the part size of every session).
    pub fn part_size(&self) -> u64 {
        self.part_size_for(self.shared.config.min_file_size)
    }

    /// The part size a new session of `file_size` bytes gets.
    pub fn part_size_for(&self, file_size: u64) -> u64 {
        self.shared.config.part_size.for_size(file_size)
    }

    /// `http://127.0.0.1:PORT`, the base of the API paths (`/2.0/files/{id}`, the preflight
    /// `OPTIONS /2.0/files/content`), laid out like `https://api.box.com`. Every route is also
    /// served under [`upload_base_url`](Self::upload_base_url) (`/api/2.0/...`): one origin
    /// serves both.
    pub fn api_base_url(&self) -> String {
        self.base_url()
    }

    /// Changes the shape of `context_info.conflicts` in 409 answers from now on.
    pub fn set_conflicts_shape(&self, shape: ConflictsShape) {
        self.shared.store.set_conflicts_shape(shape);
    }

    /// Where part data and files are kept (`None` when content is discarded).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.shared.store.storage.root().map(Path::to_path_buf)
    }

    /// Creates a folder under the root folder "0"; returns its id.
    pub fn create_folder(&self, name: &str) -> Result<String, EmulatorError> {
        Ok(self.shared.store.create_folder("0", name)?)
    }

    /// Creates a folder under `parent_id`; returns its id.
    pub fn create_folder_in(&self, parent_id: &str, name: &str) -> Result<String, EmulatorError> {
        Ok(self.shared.store.create_folder(parent_id, name)?)
    }

    /// Creates a file directly (no upload session), e.g. to upload a new version of it.
    pub fn create_file(&self, folder_id: &str, name: &str, content: &[u8]) -> Result<FileInfo, EmulatorError> {
        Ok(self.shared.store.create_file(folder_id, name, content)?)
    }

    /// A file's metadata (etag, sha1, size, ...).
    pub fn file_info(&self, file_id: &str) -> Option<FileInfo> {
        self.shared.store.file(file_id)
    }

    /// A file in a folder, by name.
    pub fn find_file(&self, folder_id: &str, name: &str) -> Option<FileInfo> {
        self.shared.store.find_file(folder_id, name)
    }

    /// A file's content, in one buffer (see [`FileInfo::path`] for large files). An error when
    /// the emulator discards content.
    pub fn file_content(&self, file_id: &str) -> Result<Vec<u8>, EmulatorError> {
        let info = self.file_info(file_id).ok_or_else(|| EmulatorError::NoSuchFile(file_id.to_string()))?;
        Ok(storage::read_all(&info.stored)?)
    }

    /// Ids of the sessions alive now.
    pub fn session_ids(&self) -> Vec<String> {
        self.shared.store.session_ids()
    }

    /// Replaces the faults; rule counts start again from zero.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// The faults installed now.
    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.auth.set_lifetime(lifetime);
    }

    /// Moves the emulator's clock forward (sessions and tokens expire by this clock).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.store.clock.advance(by);
    }

    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.shared.counters;
        let mut requests = [0; Op::ALL.len()];
        for (slot, counter) in requests.iter_mut().zip(&c.requests) {
            *slot = counter.load(Ordering::Relaxed);
        }
        CounterSnapshot {
            requests,
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            parts_stored: c.parts_stored.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            faults_injected: c.faults.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
        }
    }

    /// Stops serving: closes the listener and every connection, and waits for the accept loop.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// An emulator running on its own runtime, for synchronous code. Derefs to [`Emulator`] for
/// every method but `shutdown`; dropping it stops the server and its runtime.
#[derive(Debug)]
pub struct BlockingEmulator {
    emulator: Option<Emulator>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::ops::Deref for BlockingEmulator {
    type Target = Emulator;

    fn deref(&self) -> &Emulator {
        // Both are Some until drop.
        match &self.emulator {
            Some(e) => e,
            None => unreachable!("the emulator is only taken in drop"),
        }
    }
}

impl BlockingEmulator {
    /// Runs a future on the emulator's runtime (e.g. to use async helpers from sync tests).
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        match &self.runtime {
            Some(rt) => rt.block_on(fut),
            None => unreachable!("the runtime is only taken in drop"),
        }
    }
}

impl Drop for BlockingEmulator {
    fn drop(&mut self) {
        if let (Some(emu), Some(rt)) = (self.emulator.take(), self.runtime.take()) {
            rt.block_on(emu.shutdown());
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
