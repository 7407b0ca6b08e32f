//! Fault injection: which request kinds misbehave, when, and how.
//!
//! A [`Faults`] value is a list of [`FaultRule`]s. Each rule names a request kind ([`Op`]), a
//! [`Trigger`] (always, the first N requests of that kind, a window, or a probability drawn from
//! the emulator's seeded generator) and a [`FaultAction`]. Rules count the requests of their kind
//! from the moment they are installed ([`crate::Emulator::set_faults`] resets the counts), so a
//! run with the same seed and the same request order injects the same faults.

use std::sync::Mutex;
use std::time::Duration;

/// The kinds of request the emulator serves; faults and counters are kept per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `POST /oauth2/token`.
    Token,
    /// `POST /2.0/files/upload_sessions` and `POST /2.0/files/{id}/upload_sessions`.
    CreateSession,
    /// `GET /2.0/files/upload_sessions/{id}`.
    GetSession,
    /// `PUT /2.0/files/upload_sessions/{id}`.
    UploadPart,
    /// `GET /2.0/files/upload_sessions/{id}/parts`.
    ListParts,
    /// `POST /2.0/files/upload_sessions/{id}/commit`.
    Commit,
    /// `DELETE /2.0/files/upload_sessions/{id}`.
    Abort,
    /// `GET /2.0/files/{id}` and `GET /2.0/files/{id}/content`.
    File,
    /// Anything else (answered 404 or 405).
    Other,
    /// `OPTIONS /2.0/files/content` and `OPTIONS /2.0/files/{id}/content` (preflight checks).
    Preflight,
    /// `POST /2.0/files/upload_sessions/{id}/plan`.
    Plan,
    /// `POST /2.0/files/content` and `POST /2.0/files/{id}/content` (direct uploads).
    UploadFile,
}

impl Op {
    /// Every kind, in a fixed order (the index used by the counters).
    pub const ALL: [Op; 12] = [
        Op::Token,
        Op::CreateSession,
        Op::GetSession,
        Op::UploadPart,
        Op::ListParts,
        Op::Commit,
        Op::Abort,
        Op::File,
        Op::Other,
        Op::Preflight,
        Op::Plan,
        Op::UploadFile,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// When a rule fires, counted over the requests of the rule's kind since the rule was installed.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Every request.
    Always,
    /// The first `n` requests.
    FirstN(u32),
    /// Requests number `skip + 1` to `skip + count` (1-based), e.g. only the third part.
    Window {
        /// Requests let through before the rule starts firing.
        skip: u32,
        /// Requests the rule fires on after that.
        count: u32,
    },
    /// Each request with this probability (0.0 to 1.0), drawn from the seeded generator.
    Probability(f64),
}

/// Which field of an upload-part answer a [`FaultAction::WrongEcho`] alters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoField {
    /// The echoed `sha1` (hex) is replaced by another digest.
    Sha1,
    /// The echoed `offset` is moved by one part.
    Offset,
    /// The echoed `size` is one byte short.
    Size,
}

/// What a firing rule does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Answer with this status and a Box error body before doing anything; `retry_after`
    /// adds a `Retry-After` header (seconds). Typical: 500, 503, 429.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After` in seconds, if any.
        retry_after: Option<u64>,
    },
    /// Close the connection in the middle of the request body (for upload part: after half the
    /// part has been received and written; the part is not stored). No answer is sent.
    CutBody,
    /// Do the work (store the part, commit the file, ...), then close the connection instead
    /// of answering: the client cannot know that it succeeded.
    DropAnswer,
    /// Wait this long before handling the request.
    Delay(Duration),
    /// Commit only: answer `202 Accepted` (no body), with `Retry-After` if given.
    /// `Trigger::FirstN(n)` gives n 202s before the commit goes through; `Always` never commits.
    CommitPending {
        /// `Retry-After` in seconds, if any.
        retry_after: Option<u64>,
    },
    /// Commit only: answer 400 `parts_mismatch` even though the parts list is right.
    PartsMismatch,
    /// Commit only: "commit applied, answer lost". The commit goes through (the file or its new
    /// version is stored, the session is gone), then the connection is closed without an
    /// answer, so the client sees a transport failure; a retried commit answers 404. Unlike
    /// [`DropAnswer`](Self::DropAnswer), which drops whatever answer the request gets, this
    /// fault only takes effect on a commit that is applied: a commit answered 202 or refused
    /// (400, 409, 412, ...) is answered as usual (the rule still counts it). On a direct upload
    /// (`Op::UploadFile`) the same: the file is stored, then the connection closed.
    CommitAnswerLost,
    /// Upload part only: store the part, but echo a wrong value in the answer.
    WrongEcho(EchoField),
    /// List parts only: add this (possibly negative) number to the `total_count` answered.
    LyingTotalCount(i64),
    /// Answer 200 with a JSON-looking body of `len` bytes that never closes its array
    /// (`u64::MAX` is effectively endless; the body stops when the client goes away).
    HugeBody {
        /// Bytes to send.
        len: u64,
    },
    /// Answer `302 Found` with this `Location`.
    Redirect {
        /// The `Location` header.
        location: String,
    },
}

/// One fault: a request kind, when, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// The request kind the rule applies to.
    pub op: Op,
    /// When it fires.
    pub when: Trigger,
    /// What it does.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule for `op` that does `action` when `when` says so.
    pub fn new(op: Op, when: Trigger, action: FaultAction) -> Self {
        FaultRule { op, when, action }
    }
}

/// The complete fault configuration of an emulator. `Faults::default()` injects nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Rules, applied in order; several may fire on one request (e.g. a delay and a status).
    pub rules: Vec<FaultRule>,
    /// When set, `session_endpoints` in new sessions are built from this base (for example
    /// `http://foreign.invalid:1234/api`) instead of the emulator's own upload base URL.
    pub foreign_endpoints: Option<String>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Adds a rule (builder style).
    #[must_use]
    pub fn rule(mut self, op: Op, when: Trigger, action: FaultAction) -> Self {
        self.rules.push(FaultRule::new(op, when, action));
        self
    }

    /// Points `session_endpoints` at a foreign base URL (builder style).
    #[must_use]
    pub fn foreign_endpoints(mut self, base: impl Into<String>) -> Self {
        self.foreign_endpoints = Some(base.into());
        self
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the faults decided for one request.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    pub(crate) delay: Option<Duration>,
    /// An action that replaces normal handling (status, redirect, huge body, cut, 202, mismatch).
    pub(crate) early: Option<FaultAction>,
    pub(crate) drop_answer: bool,
    /// Commit: close without answering once the commit is applied.
    pub(crate) commit_answer_lost: bool,
    pub(crate) wrong_echo: Option<EchoField>,
    pub(crate) total_count_delta: i64,
}

/// The installed faults and their per-rule request counts.
#[derive(Debug)]
pub(crate) struct FaultState {
    inner: Mutex<FaultInner>,
}

#[derive(Debug)]
struct FaultInner {
    faults: Faults,
    seen: Vec<u32>,
    rng: Rng,
}

impl FaultState {
    pub(crate) fn new(faults: Faults, seed: u64) -> Self {
        let seen = vec![0; faults.rules.len()];
        FaultState { inner: Mutex::new(FaultInner { faults, seen, rng: Rng::new(seed ^ 0xFA01_7000) }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set(&self, faults: Faults) {
        let mut inner = self.lock();
        inner.seen = vec![0; faults.rules.len()];
        inner.faults = faults;
    }

    pub(crate) fn get(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub(crate) fn foreign_endpoints(&self) -> Option<String> {
        self.lock().faults.foreign_endpoints.clone()
    }

    /// Decides the faults for one request of kind `op`.
    pub(crate) fn plan(&self, op: Op) -> FaultPlan {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut plan = FaultPlan::default();
        for (i, rule) in inner.faults.rules.iter().enumerate() {
            if rule.op != op {
                continue;
            }
            inner.seen[i] = inner.seen[i].saturating_add(1);
            let n = inner.seen[i];
            let fire = match rule.when {
                Trigger::Always => true,
                Trigger::FirstN(k) => n <= k,
                Trigger::Window { skip, count } => n > skip && n - skip <= count,
                Trigger::Probability(p) => inner.rng.next_f64() < p,
            };
            if !fire {
                continue;
            }
            match &rule.action {
                FaultAction::Delay(d) => plan.delay = Some(plan.delay.unwrap_or_default() + *d),
                FaultAction::DropAnswer => plan.drop_answer = true,
                FaultAction::CommitAnswerLost => plan.commit_answer_lost = true,
                FaultAction::WrongEcho(field) => plan.wrong_echo = Some(*field),
                FaultAction::LyingTotalCount(delta) => plan.total_count_delta += delta,
                other => {
                    if plan.early.is_none() {
                        plan.early = Some(other.clone());
                    }
                }
            }
        }
        plan
    }
}
