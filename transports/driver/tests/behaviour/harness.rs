//! What every test body runs on: a transport ([`Kind`]), a tokio runtime that hosts the emulator
//! (and, for hyper, the client's requests), an emulator, a client of that transport built from
//! the same builder settings, and a temporary directory.
//!
//! - [`build!`]`(rig, |b| b.setter(..))`: a client of the rig's transport (a `Result`), `b` a bare
//!   `Client::builder()` of that transport. [`client!`]`(h, |b| ..)` is the same with the suite's
//!   defaults already set for the harness's emulator (token, fast retries, timeouts).
//! - [`call!`]`(client, method(args..))`: calls the method on whichever client it is, blocking on
//!   the runtime for hyper. Same names, same arguments, same `Result<_, Error>`.
//! - [`both!`]`(body, ..)`: instantiates each body (a `fn(Kind)`) as a `#[test]` in a `hyper` and
//!   a `ureq` module, so every test runs through both transports.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use box_upload_conformance::{Emulator, EmulatorBuilder};
use box_upload_driver::core::RetryPolicy;
use box_upload_driver::{ClientBuilder, Error, Wire};
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A client of `rig`'s transport: `|b| expr` gets a bare `Client::builder()` of that transport
/// (the hyper client is built inside the runtime). Gives `Result<Client, Error>`.
macro_rules! build {
    ($rig:expr, |$b:ident| $body:expr) => {{
        let rig: &$crate::harness::Rig = $rig;
        let built: ::std::result::Result<$crate::harness::Client, ::box_upload_driver::Error> = match rig.kind {
            $crate::harness::Kind::Hyper => {
                let _in = rig.rt.enter();
                let $b = ::box_upload_hyper::Client::builder();
                ($body).build().map(|c| $crate::harness::Client::Hyper(c, ::std::sync::Arc::clone(&rig.rt)))
            }
            $crate::harness::Kind::Ureq => {
                let $b = ::box_upload_ureq::Client::builder();
                ($body).build().map($crate::harness::Client::Ureq)
            }
        };
        built
    }};
}

/// A client of the harness's transport for its emulator: the suite's [`defaults`], then `|b| ..`.
macro_rules! client {
    ($h:expr, |$b:ident| $body:expr) => {{
        let h: &$crate::harness::Harness = $h;
        $crate::harness::build!(&h.rig, |$b| {
            let $b = $crate::harness::defaults($b, &h.emu);
            $body
        })
        .unwrap()
    }};
}

/// `call!(client, method(args..))`: the method of either transport's client, blocking.
macro_rules! call {
    ($client:expr, $method:ident($($arg:expr),* $(,)?)) => {
        match &$client {
            $crate::harness::Client::Hyper(c, rt) => rt.block_on(c.$method($($arg),*)),
            $crate::harness::Client::Ureq(c) => c.$method($($arg),*),
        }
    };
}

/// Every body, a `fn(Kind)`, as a `#[test]` of `hyper` and of `ureq`.
macro_rules! both {
    ($($body:ident),* $(,)?) => {
        mod hyper {
            $(
                #[test]
                fn $body() {
                    super::$body($crate::harness::Kind::Hyper);
                }
            )*
        }
        mod ureq {
            $(
                #[test]
                fn $body() {
                    super::$body($crate::harness::Kind::Ureq);
                }
            )*
        }
    };
}

pub(crate) use {both, build, call, client};

pub const MIB: u64 = 1024 * 1024;
/// The smallest file an upload session takes (Box's and the core's minimum).
pub const MIN_SIZE: u64 = 20_000_000;

/// The transport a test body runs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `box-upload-hyper`: async, driven here with `Runtime::block_on`.
    Hyper,
    /// `box-upload-ureq`: blocking.
    Ureq,
}

/// A client of either transport.
#[derive(Clone, Debug)]
pub enum Client {
    Hyper(box_upload_hyper::Client, Arc<Runtime>),
    Ureq(box_upload_ureq::Client),
}

impl Client {
    /// The core client (the same type in both).
    pub fn core(&self) -> &box_upload_driver::core::Client {
        match self {
            Client::Hyper(c, _) => c.core(),
            Client::Ureq(c) => c.core(),
        }
    }
}

/// A transport and the runtime its tests run on (the emulator or replay server, and hyper's
/// requests, are served there; blocking callers wait on their own thread).
pub struct Rig {
    pub kind: Kind,
    pub rt: Arc<Runtime>,
}

impl Rig {
    pub fn new(kind: Kind) -> Self {
        init_tracing();
        Self::with_runtime(kind, tokio::runtime::Builder::new_multi_thread())
    }

    /// A rig whose runtime threads log into `dispatch` (hyper's request tasks run there); make
    /// it with [`dispatch`].
    pub fn traced(kind: Kind, dispatch: tracing::Dispatch) -> Self {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.on_thread_start(move || {
            // For the thread's whole life: the guard would restore the previous default.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        });
        Self::with_runtime(kind, builder)
    }

    fn with_runtime(kind: Kind, mut builder: tokio::runtime::Builder) -> Self {
        let rt = builder.worker_threads(2).enable_all().build().unwrap();
        Self { kind, rt: Arc::new(rt) }
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }
}

/// A rig, an emulator on it, a client of the rig's transport for the emulator (the suite's
/// defaults), and a temporary directory.
pub struct Harness {
    pub rig: Rig,
    pub emu: Emulator,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn start(kind: Kind, emulator: EmulatorBuilder) -> Self {
        let rig = Rig::new(kind);
        let emu = rig.block_on(emulator.start()).unwrap();
        let client = build!(&rig, |b| defaults(b, &emu)).unwrap();
        Self { rig, emu, client, dir: tempfile::tempdir().unwrap() }
    }

    /// An emulator with `part_size` parts and the default client.
    pub fn with_parts(kind: Kind, part_size: u64) -> Self {
        Self::start(kind, Emulator::builder().part_size(part_size))
    }

    /// `len` deterministic bytes for `seed` in the temporary directory.
    pub fn file(&self, name: &str, len: u64, seed: u64) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes(len, seed)).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The stored content of `file_id`, which must be `expected` (compared without printing
    /// megabytes on failure).
    pub fn assert_stored(&self, file_id: &str, expected: &[u8]) {
        let stored = self.emu.file_content(file_id).unwrap();
        assert_eq!(stored.len(), expected.len(), "stored size");
        if let Some(at) = stored.iter().zip(expected).position(|(a, b)| a != b) {
            panic!("the stored file differs from the source at byte {at}");
        }
    }

    /// Nothing of `name` in folder 0, no live session, no commit.
    pub fn assert_nothing_committed(&self, name: &str) {
        assert!(self.emu.find_file("0", name).is_none(), "{name} was committed");
        assert_eq!(self.emu.counters().commits, 0, "a commit went through");
        assert!(self.emu.session_ids().is_empty(), "a session is left open: {:?}", self.emu.session_ids());
    }
}

/// The suite's settings, the same for both transports: the emulator, its static token, fast
/// retries, short connect and idle timeouts.
pub fn defaults<W: Wire>(builder: ClientBuilder<W>, emu: &Emulator) -> ClientBuilder<W> {
    builder
        .upload_base(emu.upload_base_url())
        .developer_token("test-token")
        .retry_policy(fast_retries())
        .connect_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(30))
        // The suite is mostly about upload sessions: files from Box's smallest session on go in
        // one (the library's default sends them direct up to 40 MB; direct_upload.rs tests it).
        .chunked_from(MIN_SIZE)
}

/// Retries that never make a test wait.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_millis(20),
        commit_timeout: Duration::from_secs(30),
        parts_mismatch_retries: 3,
    }
}

// ---- data ------------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (xorshift64, 8 bytes a step, little-endian), `len` of them,
/// for `seed`. `bytes(20_000_000, 99)` is the content the emulator fixtures were recorded with.
pub fn bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len as usize];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex(&Sha1::digest(data))
}

pub fn sha1_hex_of_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha1::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A dispatcher for `subscriber`, safe to use while other tests run without one.
///
/// While a single dispatcher exists, tracing-core computes callsite interest and the global
/// level filter against the default of whichever thread registers a callsite first, so a test
/// thread without a subscriber would switch this one off (no events at all). A second dispatcher,
/// kept for the whole process and made first, turns that shortcut off.
pub fn dispatch(subscriber: impl tracing::Subscriber + Send + Sync + 'static) -> tracing::Dispatch {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    tracing::Dispatch::new(subscriber)
}

/// A log sink for tests that read what was logged.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The error's transport failure kind and attempts, when retries of a transport failure ran out.
pub fn transport_failure(e: &Error) -> Option<(box_upload_driver::core::TransportErrorKind, u32)> {
    match e.core()? {
        box_upload_driver::core::Error::Transport { source, attempts, .. } => Some((source.kind, *attempts)),
        _ => None,
    }
}

/// Box's status, when the error is Box's answer.
pub fn api_status(e: &Error) -> Option<u16> {
    match e.core()? {
        box_upload_driver::core::Error::Api(api) => Some(api.status),
        _ => None,
    }
}
