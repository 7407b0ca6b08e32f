//! Checks shared by the fuzz targets (`fuzz/fuzz_targets/*`) and their stable proptest twins
//! (`core/tests/proptest_twins.rs`, which includes this file with `#[path]`). It depends only on
//! box-upload-core and the crates core itself depends on (bytes, http, serde_json).
//!
//! - [`check_plan`] / [`check_content_range_text`]: the part planner and `Content-Range`.
//! - [`responses`]: arbitrary answers to every operation, `api_error`, `retry_after`, digests.
//! - [`big_upload`]: the whole big-upload machine against an adversarial interpreter.

use box_upload_core::bytes::Bytes;
use box_upload_core::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use box_upload_core::http::{HeaderMap, Method, Response, StatusCode};
use box_upload_core::models::{UploadPart, UploadSession};
use box_upload_core::operations::{
    CommitResponse, CommitUploadSession, CreateUploadSession, CreateUploadSessionForFile, DeleteUploadSession, GetFile,
    GetUploadSession, ListUploadSessionParts, Operation, PreflightCheck, PreflightFileUpload, UploadFile,
    UploadFilePart,
};
use box_upload_core::{
    api_error, retry_after, BigUpload, Client, Config, ContentRange, DeveloperToken, Error, Event, FileHasher, Machine,
    PartData, PartPlan, PlanError, ProtocolError, ReadRequest, RequestId, RequestKind, Sha1Digest, SourceError,
    Transmit, TransportError, TransportErrorKind, UploadRequest, MAX_PARTS, MIN_FILE_SIZE,
};
use box_upload_core::{FileUploadOptions, OnConflict, SourceFacts};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, Instant};

// ---- choices ---------------------------------------------------------------------------------

/// Where the harness takes its decisions from: fuzzer bytes, or proptest's.
pub trait Choices {
    /// The next byte, `None` once the input is used up.
    fn next_byte(&mut self) -> Option<u8>;
}

/// Choices from a byte slice.
pub struct ByteChoices<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteChoices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
}

impl Choices for ByteChoices<'_> {
    fn next_byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }
}

/// Typed draws over [`Choices`]; an exhausted input draws zeros (the "cooperative" choice).
pub struct Draw<C> {
    src: C,
    exhausted: bool,
}

impl<C: Choices> Draw<C> {
    pub fn new(src: C) -> Self {
        Self { src, exhausted: false }
    }

    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    pub fn u8(&mut self) -> u8 {
        match self.src.next_byte() {
            Some(b) => b,
            None => {
                self.exhausted = true;
                0
            }
        }
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        if n <= 256 {
            return usize::from(self.u8()) % n;
        }
        let v = u32::from(self.u8()) | (u32::from(self.u8()) << 8) | (u32::from(self.u8()) << 16);
        v as usize % n
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, i| acc | (u64::from(self.u8()) << (8 * i)))
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.u8()).collect()
    }
}

// ---- planner and Content-Range -----------------------------------------------------------------

/// Checks the plan of `file_size` in parts of `part_size` and what a session saying
/// `total_parts` makes of it. `order` permutes the acknowledgements of small plans; `probes` are
/// extra part indices to check in big plans.
pub fn check_plan(file_size: u64, part_size: u64, total_parts: u64, order: &[u16]) {
    let new = PartPlan::new(file_size, part_size);
    let needed = (file_size != 0 && part_size != 0).then(|| file_size.div_ceil(part_size));
    match (&new, needed) {
        (Err(PlanError::EmptyFile), _) => assert_eq!(file_size, 0),
        (Err(PlanError::ZeroPartSize), _) => assert!(file_size != 0 && part_size == 0),
        (Err(PlanError::TooManyParts { parts }), Some(n)) => assert!(n > MAX_PARTS && *parts == n),
        (Ok(plan), Some(n)) => {
            assert!(n <= MAX_PARTS, "{n} parts accepted");
            assert_eq!(plan.len() as u64, n);
            assert!(!plan.is_empty());
            assert_eq!((plan.file_size(), plan.part_size()), (file_size, part_size));
            check_parts(plan, order);
        }
        (other, n) => panic!("PartPlan::new({file_size}, {part_size}) = {other:?}, expected {n:?} parts"),
    }

    let session =
        |ps: Option<u64>, tp: Option<u64>| UploadSession { part_size: ps, total_parts: tp, ..UploadSession::default() };
    assert_eq!(PartPlan::for_session(file_size, &session(None, Some(total_parts))), Err(PlanError::MissingPartSize));
    assert_eq!(PartPlan::for_session(file_size, &session(Some(part_size), None)), Err(PlanError::MissingTotalParts));
    let for_session = PartPlan::for_session(file_size, &session(Some(part_size), Some(total_parts)));
    let capacity_ok = part_size.checked_mul(total_parts).is_none_or(|c| c >= file_size);
    match (&for_session, &new) {
        (Ok(plan), Ok(planned)) => {
            assert_eq!(plan, planned);
            assert!(capacity_ok, "{total_parts} x {part_size} accepted for {file_size} bytes");
            assert_eq!(plan.len() as u64, total_parts);
        }
        (Err(PlanError::SessionTooSmall { part_size: p, total_parts: t, file_size: f }), Ok(_)) => {
            assert_eq!((*p, *t, *f), (part_size, total_parts, file_size));
            assert!(!capacity_ok);
        }
        (Err(PlanError::TotalPartsMismatch { total_parts: t, planned }), Ok(plan)) => {
            assert!(capacity_ok);
            assert_eq!((*t, *planned), (total_parts, plan.len() as u64));
            assert_ne!(t, planned);
        }
        (Err(e), Err(e2)) => assert_eq!(e, e2, "for_session must report the plan's own error"),
        (got, planned) => panic!("for_session = {got:?} but new = {planned:?} (total_parts {total_parts})"),
    }
}

fn check_parts(plan: &PartPlan, order: &[u16]) {
    let (fs, ps, n) = (plan.file_size(), plan.part_size(), plan.len());
    let mut indices: Vec<usize> = if n <= 4096 {
        (0..n).collect()
    } else {
        (0..64).chain(n - 64..n).chain(order.iter().map(|&o| usize::from(o) * 997 % n)).collect()
    };
    indices.sort_unstable();
    indices.dedup();
    for i in indices {
        let part = plan.part(i).unwrap_or_else(|| panic!("part {i} of {n} missing"));
        assert_eq!(part.index, i);
        assert_eq!(part.offset, i as u64 * ps, "part {i} not aligned to {ps}");
        if i + 1 < n {
            assert_eq!(part.size, ps, "part {i} of {n} is short");
        } else {
            assert_eq!(part.offset + part.size, fs, "the last part does not end the file");
            assert!(part.size >= 1 && part.size <= ps);
        }
        assert_eq!(plan.part_at(part.offset), Some(part));
        if ps > 1 {
            assert_eq!(plan.part_at(part.offset + 1), None);
        }
        let range = part.content_range(fs);
        assert_eq!((range.offset(), range.size(), range.total), (part.offset, part.size, fs));
        assert_eq!(ContentRange::new(part.offset, part.size, fs), Ok(range));
        let text = range.to_string();
        assert_eq!(ContentRange::from_str(&text), Ok(range), "{text} does not round-trip");
    }
    assert_eq!(plan.part(n), None);
    assert_eq!(plan.part(usize::MAX), None);
    assert_eq!(plan.part_at(fs), None);
    if n <= 4096 {
        let mut next = 0u64;
        let mut count = 0;
        for part in plan.iter() {
            assert_eq!(part.offset, next);
            next += part.size;
            count += 1;
        }
        assert_eq!((next, count), (fs, n));
    }
    if n <= 256 {
        check_commit_order(plan, order);
    }
}

/// Acknowledges the parts in an arbitrary order and checks the commit body lists them by offset,
/// covering the file exactly.
fn check_commit_order(plan: &PartPlan, order: &[u16]) {
    let mut left: Vec<usize> = (0..plan.len()).collect();
    let mut acked = Vec::new();
    let mut k = 0;
    while !left.is_empty() {
        let pick = order.get(k).map_or(0, |&o| usize::from(o) % left.len());
        k += 1;
        let i = left.swap_remove(pick);
        let p = plan.part(i).expect("planned");
        acked.push(UploadPart {
            part_id: format!("P{i}"),
            offset: p.offset,
            size: p.size,
            sha1: Some(Sha1Digest([i as u8; 20]).to_hex()),
        });
    }
    let op = CommitUploadSession::by_id("S1", acked, Sha1Digest([7; 20]));
    let request = op.request(&Config::new()).expect("commit request");
    let body: serde_json::Value = serde_json::from_slice(request.body()).expect("commit JSON");
    let parts = body["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), plan.len());
    let mut next = 0;
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["offset"].as_u64(), Some(next), "commit parts out of order");
        assert_eq!(p["part_id"].as_str(), Some(format!("P{i}").as_str()));
        next += p["size"].as_u64().expect("size");
    }
    assert_eq!(next, plan.file_size());
}

/// `ContentRange::from_str` of arbitrary text: no panic, and what parses prints back the same.
pub fn check_content_range_text(text: &str) {
    if let Ok(range) = ContentRange::from_str(text) {
        assert!(range.first <= range.last && range.last < range.total, "{text:?} -> {range:?}");
        assert_eq!(ContentRange::from_str(&range.to_string()), Ok(range));
        assert_eq!(ContentRange::new(range.offset(), range.size(), range.total), Ok(range));
    }
}

/// `ContentRange::new` of arbitrary numbers.
pub fn check_content_range_numbers(offset: u64, size: u64, total: u64) {
    match ContentRange::new(offset, size, total) {
        Ok(r) => {
            assert!(size > 0 && offset.checked_add(size).is_some_and(|e| e <= total));
            assert_eq!((r.offset(), r.size(), r.total), (offset, size, total));
            assert_eq!(ContentRange::from_str(&r.to_string()), Ok(r));
        }
        Err(_) => assert!(size == 0 || offset.checked_add(size).is_none_or(|e| e > total)),
    }
}

// ---- responses ---------------------------------------------------------------------------------

/// Header names a response input can pick by index (index 0xff: a literal name follows).
pub const HEADER_NAMES: [&str; 9] =
    ["retry-after", "date", "content-type", "box-request-id", "digest", "location", "content-range", "etag", "x-junk"];

/// An answer, decoded from bytes: `[op][status lo][status hi][n headers]`, then per header
/// `[name index][value len][value]` (index 0xff: `[name len][name]` first), then the body (the rest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerInput {
    pub op: u8,
    pub status: u16,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl AnswerInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut pos = 0;
        let mut next = |n: usize| {
            let start = pos.min(data.len());
            pos = (pos + n).min(data.len());
            &data[start..pos]
        };
        let op = next(1).first().copied().unwrap_or(0);
        let status = match next(2) {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => 200,
        };
        let count = next(1).first().copied().unwrap_or(0) % 16;
        let mut headers = Vec::new();
        for _ in 0..count {
            let idx = next(1).first().copied().unwrap_or(0);
            let name = if idx == 0xff {
                let len = next(1).first().copied().unwrap_or(0);
                next(usize::from(len)).to_vec()
            } else {
                HEADER_NAMES[usize::from(idx) % HEADER_NAMES.len()].as_bytes().to_vec()
            };
            let len = next(1).first().copied().unwrap_or(0);
            headers.push((name, next(usize::from(len)).to_vec()));
        }
        let body = data[pos.min(data.len())..].to_vec();
        Self { op, status, headers, body }
    }

    /// The bytes [`decode`](Self::decode) reads back as `self` (values cut to 255 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.op];
        out.extend_from_slice(&self.status.to_le_bytes());
        out.push(self.headers.len().min(15) as u8);
        for (name, value) in self.headers.iter().take(15) {
            match HEADER_NAMES.iter().position(|n| n.as_bytes() == name.as_slice()) {
                Some(i) => out.push(i as u8),
                None => {
                    out.push(0xff);
                    let name = &name[..name.len().min(255)];
                    out.push(name.len() as u8);
                    out.extend_from_slice(name);
                }
            }
            let value = &value[..value.len().min(255)];
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// The HTTP status used: any 3-digit code (http accepts 100..=999).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(100 + self.status % 900).expect("100..=999")
    }

    pub fn response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.body.clone()));
        *response.status_mut() = self.status_code();
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                response.headers_mut().append(n, v);
            }
        }
        response
    }
}

/// Every parser of Box's answers on one arbitrary answer: no panic, typed errors, and the
/// promises each makes.
pub fn responses(data: &[u8]) {
    check_answer(&AnswerInput::decode(data));
}

/// [`responses`] on a decoded answer.
pub fn check_answer(input: &AnswerInput) {
    let status = input.status_code();
    let headers = input.response().headers().clone();

    // The helpers.
    let e = api_error(input.response());
    assert_eq!(e.status, status.as_u16());
    if serde_json::from_slice::<box_upload_core::models::ClientError>(&input.body).is_err() {
        // Not JSON: the message is the start of the body, bounded.
        assert!(e.message().map_or(0, str::len) <= 200 * 3, "api_error message not bounded");
    }
    let _ = e.to_string();
    let ra = retry_after(&headers);
    if let Some(v) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        if let Ok(secs) = v.trim().parse::<u64>() {
            assert_eq!(ra, Some(Duration::from_secs(secs)));
        }
    } else {
        assert_eq!(ra, None);
    }
    for value in headers.values() {
        if let Ok(text) = value.to_str() {
            check_digest_text(text);
            check_content_range_text(text);
        }
    }
    let text = String::from_utf8_lossy(&input.body);
    check_digest_text(&text);
    check_content_range_text(&text);

    // Every operation's parser.
    let data = PartData::new(Bytes::from_static(b"abc"));
    let ops: [(RequestKind, Parser<'_>); 10] = [
        (RequestKind::UploadFile, Box::new(|r| verdict(UploadFile::new_file("0", "f.bin", 3).unwrap().parse(r)))),
        (
            RequestKind::CreateSession,
            Box::new(|r| verdict(CreateUploadSession::new("0", "f.bin", MIN_FILE_SIZE).unwrap().parse(r))),
        ),
        (
            RequestKind::CreateSessionForFile,
            Box::new(|r| verdict(CreateUploadSessionForFile::new("1", MIN_FILE_SIZE).unwrap().parse(r))),
        ),
        (RequestKind::GetSession, Box::new(|r| verdict(GetUploadSession::by_id("S1").parse(r)))),
        (
            RequestKind::UploadPart,
            Box::new(move |r| verdict(UploadFilePart::by_id("S1", 0, MIN_FILE_SIZE, data.clone()).unwrap().parse(r))),
        ),
        (RequestKind::AbortSession, Box::new(|r| verdict(DeleteUploadSession::by_id("S1").parse(r)))),
        (RequestKind::ListParts, Box::new(|r| verdict(ListUploadSessionParts::by_id("S1").parse(r)))),
        (
            RequestKind::CommitSession,
            Box::new(|r| match CommitUploadSession::by_id("S1", Vec::new(), Sha1Digest([0; 20])).parse(r) {
                Ok(CommitResponse::NotReady { retry_after: got }) => {
                    assert_eq!(got, ra);
                    Verdict::Accepted
                }
                other => verdict(other),
            }),
        ),
        (RequestKind::GetFile, Box::new(|r| verdict(GetFile::new("12345").unwrap().parse(r)))),
        (
            RequestKind::PreflightFileUpload,
            Box::new(|r| match PreflightFileUpload::new("0", "f.bin", MIN_FILE_SIZE).unwrap().parse(r) {
                Ok(PreflightCheck::NameInUse { conflicts }) => {
                    // Only Box's 409 item_name_in_use names conflicts, and only objects with an id
                    // string come out of them (a conflicts object or array alike).
                    assert_eq!(status, StatusCode::CONFLICT);
                    assert!(conflicts.len() <= input.body.len());
                    Verdict::NameInUse
                }
                other => verdict(other),
            }),
        ),
    ];
    for (kind, parse) in &ops {
        match parse(input.response()) {
            Verdict::Accepted => {
                let accepted_202 = *kind == RequestKind::CommitSession && status == StatusCode::ACCEPTED;
                assert!(status.is_success() || accepted_202, "{kind}: {status} accepted");
            }
            Verdict::NameInUse => assert_eq!(*kind, RequestKind::PreflightFileUpload),
            Verdict::Refused(err) => check_refusal(*kind, status, &err),
        }
    }

    // One operation run as a machine: retries end, the output comes once.
    let client = Client::new(fast_config(), DeveloperToken::new("tok"));
    match input.op % 6 {
        0 => run_call(&client, GetUploadSession::by_id("S1"), input),
        1 => run_call(&client, CommitUploadSession::by_id("S1", Vec::new(), Sha1Digest([0; 20])), input),
        2 => run_call(&client, DeleteUploadSession::by_id("S1"), input),
        3 => run_call(&client, GetFile::new("12345").unwrap(), input),
        4 => run_call(&client, PreflightFileUpload::new("0", "f.bin", MIN_FILE_SIZE).unwrap(), input),
        _ => run_call(&client, ListUploadSessionParts::by_id("S1").with_offset(3), input),
    }
    run_file_upload(&client, input);
}

/// A direct upload of three bytes (under each conflict policy), every request answered with
/// `input`: it ends, gives its output once, and succeeds only with a file holding our SHA-1.
fn run_file_upload(client: &Client, input: &AnswerInput) {
    let content = Bytes::from_static(b"abc");
    let policy = [OnConflict::Fail, OnConflict::Version, OnConflict::Skip][usize::from(input.op % 3)];
    let options = FileUploadOptions { on_conflict: policy, ..FileUploadOptions::default() };
    let facts = SourceFacts { size: Some(3), ..SourceFacts::default() };
    let mut m = client.file_upload(UploadRequest::new_file("0", "f.bin", 0), &facts, None, options).unwrap();
    let mut now = Instant::now();
    // A preflight, the upload, a version after a conflict, a look-up: each with its retries.
    let max_sends = 4 * (client.config().retry.max_retries as usize + 2);
    let mut sends = 0;
    for _ in 0..8 * max_sends {
        while m.poll_event().is_some() {}
        if let Some(output) = m.poll_output() {
            assert!(m.poll_output().is_none(), "output given twice");
            assert!(m.poll_transmit(now).is_none(), "a request after the output");
            if let Ok(file) = output {
                assert_eq!(file.sha1.as_deref(), Some(Sha1Digest::of(&content).to_hex().as_str()), "not our bytes");
            }
            return;
        }
        if let Some(read) = m.poll_read() {
            let start = usize::try_from(read.offset).unwrap_or(usize::MAX).min(content.len());
            let end = start.saturating_add(read.len).min(content.len());
            let part = m.part_builder(&read, Vec::new());
            m.handle_read(read.id, Ok(part.finish_with_bytes(content.slice(start..end))), now);
            continue;
        }
        match m.poll_transmit(now) {
            Some(t) => {
                sends += 1;
                assert!(sends <= max_sends, "{} sent {sends} times", t.kind);
                m.handle_response(t.id, input.response(), now);
            }
            None => {
                let at = m.poll_timeout().expect("a direct upload with nothing to send and nothing to wait for");
                assert!(at <= now + Duration::from_secs(3600), "waits an hour");
                now = now.max(at);
                m.handle_timeout(now);
            }
        }
    }
    panic!("the direct upload did not end after {sends} sends");
}

type Parser<'a> = Box<dyn Fn(Response<Bytes>) -> Verdict + 'a>;

enum Verdict {
    Accepted,
    /// A preflight check's 409 `item_name_in_use`, read as the files holding the name.
    NameInUse,
    Refused(Error),
}

fn verdict<T>(r: Result<T, Error>) -> Verdict {
    match r {
        Ok(_) => Verdict::Accepted,
        Err(e) => Verdict::Refused(e),
    }
}

fn check_refusal(kind: RequestKind, status: StatusCode, err: &Error) {
    let _ = err.to_string();
    match err {
        Error::Protocol(ProtocolError::BadJson { kind: k, status: s, .. }) => {
            assert!(status.is_success(), "{kind}: BadJson for {status}");
            assert_eq!((*k, *s), (kind, status.as_u16()));
        }
        Error::Protocol(ProtocolError::UnexpectedStatus { kind: k, status: s }) => {
            assert!(status.is_redirection() || status.is_informational(), "{kind}: UnexpectedStatus for {status}");
            assert_eq!((*k, *s), (kind, status.as_u16()));
        }
        Error::Protocol(ProtocolError::MissingField { kind: k, field: "entries" }) => {
            // A direct upload's 2xx whose `entries` hold no file.
            assert!(status.is_success(), "{kind}: MissingField for {status}");
            assert_eq!((*k, kind), (RequestKind::UploadFile, RequestKind::UploadFile));
        }
        Error::Api(e) => {
            assert!(!status.is_success() && !status.is_redirection() && !status.is_informational());
            assert_eq!((e.kind, e.status), (Some(kind), status.as_u16()));
        }
        other => panic!("{kind}: {status} gave {other:?}"),
    }
}

fn check_digest_text(text: &str) {
    if let Ok(d) = Sha1Digest::parse_header(text) {
        assert_eq!(Sha1Digest::parse_header(&d.header_value()), Ok(d));
    }
    if let Ok(d) = Sha1Digest::from_hex(text) {
        assert_eq!(Sha1Digest::from_hex(&d.to_hex()), Ok(d));
        assert!(d.to_hex().eq_ignore_ascii_case(text));
    }
}

fn fast_config() -> Config {
    let mut config = Config::new();
    config.jitter_seed = 7;
    config
}

fn run_call<O: Operation>(client: &Client, op: O, input: &AnswerInput) {
    let mut call = client.call(op);
    let mut now = Instant::now();
    let max_sends = client.config().retry.max_retries as usize + 2;
    let mut sends = 0;
    for _ in 0..4 * max_sends {
        while call.poll_event().is_some() {}
        if let Some(_output) = call.poll_output() {
            assert!(call.poll_output().is_none(), "output given twice");
            assert!(call.poll_transmit(now).is_none(), "a request after the output");
            return;
        }
        match call.poll_transmit(now) {
            Some(t) => {
                sends += 1;
                assert!(sends <= max_sends, "{} sent {sends} times", t.kind);
                assert!(call.poll_transmit(now).is_none(), "two requests in flight for one operation");
                call.handle_response(t.id, input.response(), now);
            }
            None => {
                let at = call.poll_timeout().expect("an operation with nothing to send and nothing to wait for");
                assert!(at <= now + Duration::from_secs(3600), "waits an hour");
                now = now.max(at);
                call.handle_timeout(now);
            }
        }
    }
    panic!("the operation did not end after {sends} sends");
}

// ---- big upload --------------------------------------------------------------------------------

const FILE_SIZES: [u64; 3] = [MIN_FILE_SIZE, MIN_FILE_SIZE + 1, 20_971_520];
const FILL: [u8; 2] = [0x00, 0xa5];
const SESSION_ID: &str = "S1";
const BASE: &str = "https://upload.box.com/api/2.0/files/upload_sessions";
/// Steps of adversarial input before the interpreter turns cooperative.
const MAX_ADVERSARIAL_STEPS: usize = 3000;
/// Most plans the interpreter lets the machine use (Box's own stay far below).
const MAX_FUZZ_PARTS: u64 = 64;

thread_local! {
    static BUFFERS: [Bytes; 2] = FILL.map(|b| Bytes::from(vec![b; 20_971_520 + 1]));
    static PARTS: RefCell<HashMap<(usize, usize), PartData>> = RefCell::new(HashMap::new());
    static WHOLE: RefCell<HashMap<Vec<(usize, usize)>, Sha1Digest>> = RefCell::new(HashMap::new());
}

/// `len` bytes of fill `fill` (a slice of a shared buffer; hashed once per thread).
fn part_data(fill: usize, len: usize) -> PartData {
    PARTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.entry((fill, len)).or_insert_with(|| PartData::new(BUFFERS.with(|b| b[fill].slice(0..len)))).clone()
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoints {
    None,
    Trusted,
    OtherBoxHost,
    Foreign,
    ForeignAbortOnly,
    PlainHttp,
    Garbage,
}

fn endpoints_json(e: Endpoints) -> Option<serde_json::Value> {
    let (up, rest) = match e {
        Endpoints::None => return None,
        Endpoints::Trusted => (BASE.to_owned(), BASE.to_owned()),
        Endpoints::OtherBoxHost => {
            let u = "https://upload-eu.app.box.com/api/2.0/files/upload_sessions".to_owned();
            (u.clone(), u)
        }
        Endpoints::Foreign => {
            let u = "https://evil.example.com/api/2.0/files/upload_sessions".to_owned();
            (u.clone(), u)
        }
        Endpoints::ForeignAbortOnly => (BASE.to_owned(), BASE.to_owned()),
        Endpoints::PlainHttp => {
            let u = "http://upload.box.com/api/2.0/files/upload_sessions".to_owned();
            (u.clone(), u)
        }
        Endpoints::Garbage => ("not a url".to_owned(), "::".to_owned()),
    };
    let abort = if e == Endpoints::ForeignAbortOnly {
        format!("https://evil.example.com/x/{SESSION_ID}")
    } else {
        format!("{rest}/{SESSION_ID}")
    };
    Some(serde_json::json!({
        "upload_part": format!("{up}/{SESSION_ID}"),
        "commit": format!("{rest}/{SESSION_ID}/commit"),
        "abort": abort,
        "list_parts": format!("{rest}/{SESSION_ID}/parts"),
        "status": format!("{rest}/{SESSION_ID}"),
        "log_event": format!("{rest}/{SESSION_ID}/log"),
    }))
}

fn session_json(id: &str, part_size: Option<u64>, total_parts: Option<u64>, endpoints: Endpoints) -> serde_json::Value {
    let mut s = serde_json::json!({
        "id": id,
        "type": "upload_session",
        "session_expires_at": "2031-01-01T00:00:00Z",
        "num_parts_processed": 0,
    });
    if let Some(p) = part_size {
        s["part_size"] = p.into();
    }
    if let Some(t) = total_parts {
        s["total_parts"] = t.into();
    }
    if let Some(e) = endpoints_json(endpoints) {
        s["session_endpoints"] = e;
    }
    s
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(serde_json::to_vec(body).expect("json")));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn raw_response(status: u16, body: Vec<u8>) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    r
}

fn box_error(status: u16, code: &str) -> Response<Bytes> {
    json_response(
        status,
        &serde_json::json!({"type": "error", "status": status, "code": code, "message": "fuzz", "request_id": "r1"}),
    )
}

/// A request the interpreter holds, with what it learned from it.
struct Held {
    t: Transmit,
    /// For parts: offset, size and the sha1 hex it carried.
    part: Option<(u64, u64, String)>,
}

struct Sim {
    m: BigUpload,
    now: Instant,
    file_size: u64,
    part_size: u64,
    total_parts: u64,
    endpoints: Endpoints,
    parts_in_flight: usize,
    config: Config,
    tx: Vec<Held>,
    reads: Vec<ReadRequest>,
    answered: Vec<RequestId>,
    /// Data handed for each read offset.
    handed: BTreeMap<u64, (usize, PartData)>,
    bad_read: bool,
    /// What the simulated Box holds: offset -> (size, sha1 hex).
    stored: BTreeMap<u64, (u64, String)>,
    /// Every part a 2xx answer claimed Box holds: (offset, size, sha1 hex lower-case).
    confirmed: HashSet<(u64, u64, String)>,
    commit_ok_sent: bool,
    /// The simulated Box applied a commit whose answer was then lost.
    commit_applied: bool,
    /// A 2xx answer to a lookup of the file (`GET /2.0/files/{id}`) was given.
    lookup_ok_sent: bool,
    /// Lookups sent (get file, preflight check).
    lookups: u32,
    uploads_per_offset: HashMap<u64, u32>,
    creates: u32,
    aborts: u32,
    commits: u32,
    session_created: bool,
    cancelled: Option<bool>,
    last_read_offset: Option<u64>,
    requests: usize,
    commit_digest: Option<String>,
}

/// How a [`big_upload`] run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The machine's output was the committed file.
    pub committed: bool,
    /// Its error otherwise.
    pub error: Option<String>,
    /// Requests it sent.
    pub requests: usize,
    /// Steps the interpreter took.
    pub steps: usize,
}

/// The whole big upload driven by arbitrary answers in arbitrary order, then by a cooperative Box
/// once the input runs out. Checks: no panic, the run ends within a bound once answers are
/// sane, a bounded number of requests, no token to untrusted hosts, and any commit carries exactly
/// the parts handed, each acknowledged by a 2xx answer with the right sha1, and the whole-file
/// digest.
pub fn big_upload<C: Choices>(choices: C) -> Outcome {
    let mut d = Draw::new(choices);
    let file_size = d.pick(&FILE_SIZES);
    let parts = 2 + d.below(3) as u64;
    let part_size = file_size.div_ceil(parts);
    let parts_in_flight = 1 + d.below(4);
    let endpoints = match d.u8() {
        0..=199 => Endpoints::Trusted,
        200..=219 => Endpoints::None,
        220..=229 => Endpoints::OtherBoxHost,
        230..=237 => Endpoints::Foreign,
        238..=243 => Endpoints::ForeignAbortOnly,
        244..=249 => Endpoints::PlainHttp,
        _ => Endpoints::Garbage,
    };
    let config = fast_config();
    let client = Client::new(config.clone(), DeveloperToken::new("tok"));
    // Now and then, resume a session that holds some of the parts (of fill 0) instead.
    let resume = d.u8() >= 192;
    let mut stored = BTreeMap::new();
    let m = if resume {
        let mask = d.u8();
        let plan = PartPlan::new(file_size, part_size).expect("plan");
        let mut acked = Vec::new();
        for part in plan.iter().filter(|p| mask & (1 << p.index) != 0) {
            let sha1 = part_data(0, part.size as usize).sha1().to_hex();
            stored.insert(part.offset, (part.size, sha1.clone()));
            acked.push(serde_json::json!({"part_id": "P", "offset": part.offset, "size": part.size, "sha1": sha1}));
        }
        let checkpoint: box_upload_core::Checkpoint = serde_json::from_value(serde_json::json!({
            "version": box_upload_core::CHECKPOINT_VERSION,
            "session": session_json(SESSION_ID, Some(part_size), Some(parts), endpoints),
            "target": {"kind": "new_file", "folder_id": "0", "file_name": "f.bin"},
            "file_size": file_size,
            "part_size": part_size,
            "parts": acked,
        }))
        .expect("checkpoint");
        let options = box_upload_core::ResumeOptions { parts_in_flight, ..Default::default() };
        client.resume(checkpoint, options).expect("valid checkpoint")
    } else {
        let request = UploadRequest::new_file("0", "f.bin", file_size).parts_in_flight(parts_in_flight);
        client.big_upload(request).expect("valid input")
    };
    let mut sim = Sim {
        m,
        now: Instant::now(),
        file_size,
        part_size,
        total_parts: parts,
        endpoints,
        parts_in_flight,
        config,
        tx: Vec::new(),
        reads: Vec::new(),
        answered: Vec::new(),
        handed: BTreeMap::new(),
        bad_read: false,
        stored,
        confirmed: HashSet::new(),
        commit_ok_sent: false,
        commit_applied: false,
        lookup_ok_sent: false,
        lookups: 0,
        uploads_per_offset: HashMap::new(),
        creates: 0,
        aborts: 0,
        commits: 0,
        session_created: resume,
        cancelled: None,
        last_read_offset: None,
        requests: 0,
        commit_digest: None,
    };
    let mut adversarial = 0;
    let mut cooperative = 0;
    // Generous: every part read, sent, retried 5 times with backoff, a list and a few commits.
    let bound = 100 + 16 * MAX_FUZZ_PARTS as usize;
    loop {
        sim.drain_events();
        if let Some(output) = sim.m.poll_output() {
            let error = sim.check_output(output);
            return Outcome {
                committed: error.is_none(),
                error,
                requests: sim.requests,
                steps: adversarial + cooperative,
            };
        }
        let before = sim.tx.len();
        sim.collect();
        assert!(sim.tx.len() - before <= 8 + parts_in_flight, "{} requests at once", sim.tx.len() - before);
        if d.exhausted() || adversarial >= MAX_ADVERSARIAL_STEPS {
            cooperative += 1;
            assert!(cooperative <= bound, "no output after {bound} cooperative steps");
            sim.cooperative_step();
        } else {
            adversarial += 1;
            sim.adversarial_step(&mut d);
        }
    }
}

impl Sim {
    fn drain_events(&mut self) {
        while let Some(event) = self.m.poll_event() {
            match event {
                Event::SessionCreated { session_id } => {
                    // A changed byte may make another valid id; never one that is not Box's.
                    let valid = session_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    assert!(valid && !session_id.is_empty(), "session {session_id:?} accepted");
                    self.session_created = true;
                }
                Event::Progress(p) => {
                    assert!(p.bytes_acknowledged <= p.total_bytes, "{p:?}");
                    assert!(p.bytes_read <= p.total_bytes, "{p:?}");
                    assert!(p.parts_acknowledged <= p.total_parts, "{p:?}");
                    assert_eq!(p.total_bytes, self.file_size);
                }
                Event::Retrying { delay, .. } | Event::CommitPending { delay, .. } => {
                    assert!(delay <= Duration::from_secs(3600), "waits {delay:?}");
                }
                _ => {}
            }
        }
    }

    fn collect(&mut self) {
        while let Some(read) = self.m.poll_read() {
            assert!(read.offset <= self.file_size, "{read:?}");
            assert!(read.len >= 1 && read.len as u64 <= self.file_size, "{read:?}");
            if let Some(last) = self.last_read_offset {
                assert!(read.offset > last, "reads out of order: {last} then {read:?}");
            }
            self.last_read_offset = Some(read.offset);
            self.reads.push(read);
            // The parts in flight, one read ahead, and the end-of-file probe.
            assert!(self.reads.len() <= self.parts_in_flight + 2, "more reads than parts in flight");
        }
        while let Some(t) = self.m.poll_transmit(self.now) {
            let held = self.check_transmit(t);
            self.tx.push(held);
        }
        let parts_out = self.tx.iter().filter(|h| h.t.kind == RequestKind::UploadPart).count();
        assert!(parts_out <= self.parts_in_flight, "{parts_out} parts on the wire, {} allowed", self.parts_in_flight);
    }

    fn check_transmit(&mut self, t: Transmit) -> Held {
        self.requests += 1;
        let uri = t.request.uri().clone();
        assert!(self.config.check_trusted(&uri, "fuzz").is_ok(), "{:?} sent to untrusted {uri}", t.kind);
        let auth = t.request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        assert_eq!(auth, Some("Bearer tok"));
        let mut part = None;
        match t.kind {
            RequestKind::CreateSession | RequestKind::CreateSessionForFile | RequestKind::GetSession => {
                self.creates += 1;
                // One create, retried at most five times.
                assert!(self.creates <= 6, "{} creates", self.creates);
            }
            RequestKind::UploadPart => {
                assert!(!self.bad_read, "a part sent after the source failed");
                let range = header(t.request.headers(), "content-range").expect("content-range");
                let range = ContentRange::from_str(&range).expect("a valid content-range");
                assert_eq!(range.total, self.file_size);
                let body = t.request.body();
                assert_eq!(body.len() as u64, range.size());
                let (_, handed) = self.handed.get(&range.offset()).expect("a part that was read");
                assert!(handed.len() == body.len() && handed.bytes().as_ptr() == body.as_ptr(), "not the bytes read");
                let digest = header(t.request.headers(), "digest").expect("digest");
                assert_eq!(digest, handed.sha1().header_value());
                let n = self.uploads_per_offset.entry(range.offset()).or_default();
                *n += 1;
                // One send, five retries.
                assert!(*n <= 6, "part at {} sent {n} times", range.offset());
                part = Some((range.offset(), range.size(), handed.sha1().to_hex()));
            }
            RequestKind::CommitSession => self.check_commit(&t),
            RequestKind::GetFile | RequestKind::PreflightFileUpload => {
                self.lookups += 1;
                // Only a commit is confirmed by a lookup; a preflight check and a get file, each
                // retried at most five times.
                assert!(self.commits > 0, "{:?} before any commit", t.kind);
                assert!(self.lookups <= 12, "{} lookups", self.lookups);
                assert_eq!(uri.host(), Some("api.box.com"), "a lookup sent to {uri}");
            }
            RequestKind::AbortSession => {
                self.aborts += 1;
                assert_eq!(t.request.method(), Method::DELETE);
                // One abort, retried at most five times.
                assert!(self.aborts <= 6, "{} aborts", self.aborts);
            }
            _ => {}
        }
        Held { t, part }
    }

    fn check_commit(&mut self, t: &Transmit) {
        self.commits += 1;
        assert!(!self.bad_read, "commit after the source failed");
        assert!(self.cancelled.is_none(), "commit after cancel");
        let body: serde_json::Value = serde_json::from_slice(t.request.body()).expect("commit body is JSON");
        let parts = body["parts"].as_array().expect("parts");
        let mut next = 0u64;
        let mut layout = Vec::new();
        for p in parts {
            let offset = p["offset"].as_u64().expect("offset");
            let size = p["size"].as_u64().expect("size");
            let sha1 = p["sha1"].as_str().expect("sha1").to_ascii_lowercase();
            assert_eq!(offset, next, "commit parts do not cover the file: {body}");
            let (fill, handed) = self.handed.get(&offset).expect("a committed part that was never read");
            assert_eq!(handed.len() as u64, size, "committed size is not the size read");
            assert_eq!(sha1, handed.sha1().to_hex(), "committed sha1 is not the bytes read");
            assert!(self.confirmed.contains(&(offset, size, sha1)), "part at {offset} committed without Box's ack");
            layout.push((*fill, handed.len()));
            next += size;
        }
        assert_eq!(next, self.file_size, "commit parts do not cover the file");
        let whole = WHOLE.with(|cache| {
            *cache.borrow_mut().entry(layout.clone()).or_insert_with(|| {
                let mut h = FileHasher::new();
                for (fill, len) in &layout {
                    BUFFERS.with(|b| h.update(&b[*fill][..*len]));
                }
                h.finish()
            })
        });
        assert_eq!(header(t.request.headers(), "digest"), Some(whole.header_value()), "wrong whole-file digest");
        self.commit_digest = Some(whole.to_hex());
    }

    fn check_output(&mut self, output: Result<box_upload_core::models::FileFull, Error>) -> Option<String> {
        match &output {
            Ok(file) => {
                assert!(self.commit_ok_sent || self.lookup_ok_sent, "success without a 201 commit or a lookup");
                assert!(!self.bad_read && self.cancelled.is_none());
                // A success is confirmed: the file's size and sha1 are ours, never missing.
                assert!(!file.id.is_empty());
                assert_eq!(file.size, Some(self.file_size), "{file:?}");
                let ours = self.commit_digest.as_deref().expect("a commit was checked");
                assert!(file.sha1.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(ours)), "{file:?}");
            }
            Err(e) => {
                let _ = e.to_string();
                let kept = self.cancelled == Some(true);
                // A 2xx commit answer means Box committed (and closed) the session, even when the
                // answer does not describe our file: nothing is left to abort. Nor after a commit
                // that may have been applied (its outcome looked into, or unknown).
                let looked_into = self.lookups > 0 || matches!(e, Error::CommitOutcomeUnknown { .. });
                let gone = self.commit_ok_sent || looked_into || matches!(e, Error::SessionGone { .. });
                if self.session_created && !kept && !gone {
                    assert!(self.aborts >= 1, "failed ({e}) without aborting the session");
                }
            }
        }
        assert!(self.m.poll_output().is_none(), "output given twice");
        assert!(self.m.poll_read().is_none(), "a read after the output");
        assert!(self.m.poll_transmit(self.now).is_none(), "a request after the output");
        assert!(self.m.poll_timeout().is_none(), "a timeout after the output");
        output.err().map(|e| e.to_string())
    }

    // ---- answers -----------------------------------------------------------------------------

    fn correct_read(&mut self, read: ReadRequest, fill: usize) -> Result<PartData, SourceError> {
        let avail = self.file_size.saturating_sub(read.offset).min(read.len as u64) as usize;
        let data = part_data(fill, avail);
        if avail > 0 {
            self.handed.insert(read.offset, (fill, data.clone()));
        }
        Ok(data)
    }

    fn answer_read(&mut self, index: usize, d: Option<&mut Draw<impl Choices>>) {
        let read = self.reads.remove(index);
        let data = match d {
            None => self.correct_read(read, 0),
            Some(d) => match d.u8() {
                0..=219 => {
                    let fill = d.below(2);
                    self.correct_read(read, fill)
                }
                220..=231 => {
                    // Short: the source ended early.
                    let avail = self.file_size.saturating_sub(read.offset).min(read.len as u64) as usize;
                    if avail == 0 {
                        self.correct_read(read, 0)
                    } else {
                        self.bad_read = true;
                        let cut = 1 + d.below(avail.min(1 << 20));
                        Ok(part_data(1, avail - cut.min(avail)))
                    }
                }
                232..=243 => {
                    // Long: the source has more bytes than declared.
                    self.bad_read = true;
                    let avail = self.file_size.saturating_sub(read.offset).min(read.len as u64) as usize;
                    Ok(part_data(0, avail + 1))
                }
                _ => {
                    self.bad_read = true;
                    Err(if d.u8().is_multiple_of(2) {
                        SourceError::Io("fuzz".into())
                    } else {
                        SourceError::Changed("fuzz".into())
                    })
                }
            },
        };
        self.m.handle_read(read.id, data, self.now);
    }

    fn cooperative_answer(&mut self, held: &Held) -> Response<Bytes> {
        let t = &held.t;
        match t.kind {
            RequestKind::CreateSession | RequestKind::GetSession => json_response(
                201,
                &session_json(SESSION_ID, Some(self.part_size), Some(self.total_parts), self.endpoints),
            ),
            RequestKind::UploadPart => {
                let (offset, size, sha1) = held.part.clone().expect("part");
                self.stored.insert(offset, (size, sha1.clone()));
                self.echo(offset, size, &sha1)
            }
            RequestKind::ListParts => {
                let (offset, limit) = query(t.request.uri().query().unwrap_or(""));
                let entries: Vec<(u64, (u64, String))> = self
                    .stored
                    .iter()
                    .map(|(o, s)| (*o, s.clone()))
                    .skip(offset as usize)
                    .take(limit as usize)
                    .collect();
                self.list_page(&entries, self.stored.len() as u64, offset, limit)
            }
            // A commit already applied (its answer lost): the session is gone.
            RequestKind::CommitSession if self.commit_applied => box_error(404, "not_found"),
            RequestKind::CommitSession => {
                let sha1 = header(t.request.headers(), "digest")
                    .and_then(|d| Sha1Digest::parse_header(&d).ok())
                    .map(|d| d.to_hex())
                    .unwrap_or_default();
                json_response(
                    201,
                    &serde_json::json!({"total_count": 1, "entries": [
                        {"id": "9", "type": "file", "name": "f.bin", "size": self.file_size, "sha1": sha1,
                         "etag": "1", "file_version": {"type": "file_version", "id": "2", "sha1": sha1}}
                    ]}),
                )
            }
            RequestKind::AbortSession => raw_response(204, Vec::new()),
            RequestKind::GetFile if self.commit_applied && t.request.uri().path().ends_with("/files/9") => {
                json_response(200, &self.committed_file())
            }
            RequestKind::GetFile => box_error(404, "not_found"),
            RequestKind::PreflightFileUpload if self.commit_applied => {
                // Box gives the conflicts as one object or as an array.
                let mut conflict = self.committed_file();
                if let Some(file) = conflict.as_object_mut() {
                    file.remove("size");
                }
                let conflicts = if self.lookups.is_multiple_of(2) { conflict } else { serde_json::json!([conflict]) };
                json_response(
                    409,
                    &serde_json::json!({"type": "error", "status": 409, "code": "item_name_in_use",
                        "context_info": {"conflicts": conflicts}}),
                )
            }
            RequestKind::PreflightFileUpload => {
                json_response(200, &serde_json::json!({"upload_url": "https://upload.box.com/api/2.0/files/content"}))
            }
            _ => raw_response(200, b"{}".to_vec()),
        }
    }

    /// The file a commit applied made: id 9, the whole file's size and SHA-1.
    fn committed_file(&self) -> serde_json::Value {
        let sha1 = self.commit_digest.clone().unwrap_or_default();
        serde_json::json!({"id": "9", "type": "file", "name": "f.bin", "size": self.file_size, "sha1": sha1,
            "etag": "1", "file_version": {"type": "file_version", "id": "2", "sha1": sha1}})
    }

    fn echo(&mut self, offset: u64, size: u64, sha1: &str) -> Response<Bytes> {
        json_response(
            200,
            &serde_json::json!({"part": {"part_id": format!("P{offset}"), "offset": offset, "size": size, "sha1": sha1}}),
        )
    }

    fn list_page(&mut self, entries: &[(u64, (u64, String))], total: u64, offset: u64, limit: u64) -> Response<Bytes> {
        let mut json = Vec::new();
        for (o, (size, sha1)) in entries {
            json.push(serde_json::json!({"part_id": format!("P{o}"), "offset": o, "size": size, "sha1": sha1}));
        }
        json_response(
            200,
            &serde_json::json!({"entries": json, "total_count": total, "offset": offset, "limit": limit,
                "order": [{"by": "offset", "direction": "ASC"}]}),
        )
    }

    fn adversarial_answer(&mut self, held: &Held, d: &mut Draw<impl Choices>) -> Response<Bytes> {
        let choice = d.u8();
        if choice < 170 {
            return self.cooperative_answer(held);
        }
        let kind = held.t.kind;
        match (choice - 170) % 12 {
            0 => {
                // Retryable: 429 or 5xx, with some Retry-After.
                let mut r = box_error(d.pick(&[429, 500, 502, 503, 504]), "busy");
                self.add_retry_after(&mut r, d);
                r
            }
            1 => {
                // Any status, any body.
                let status = d.pick(&[
                    100, 200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 403, 404, 405, 409, 410, 412, 416, 418,
                    429, 500, 599,
                ]);
                let mut r = raw_response(status, d.bytes(48));
                if d.u8().is_multiple_of(2) {
                    r.headers_mut().insert("location", HeaderValue::from_static("https://evil.example.com/x"));
                }
                self.add_retry_after(&mut r, d);
                r
            }
            2 => {
                // The right answer, truncated or with a byte changed.
                let right = self.cooperative_answer_quiet(held);
                let status = right.status();
                let mut body = right.into_body().to_vec();
                if !body.is_empty() {
                    let at = d.below(body.len());
                    if d.u8().is_multiple_of(2) {
                        body.truncate(at);
                    } else {
                        body[at] = d.u8();
                    }
                }
                let mut r = raw_response(status.as_u16(), body);
                r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
                r
            }
            3 => box_error(d.pick(&[400, 401, 403, 404, 409, 410, 412, 416]), "fuzz_error"),
            4 => {
                let code = d.pick(&["range_overlaps_existing_part", "parts_mismatch", "session_expired", "x"]);
                if kind == RequestKind::UploadPart && d.u8().is_multiple_of(2) {
                    // Box stored it but the answer is a conflict (the first answer was lost).
                    if let Some((o, s, sha1)) = held.part.clone() {
                        self.stored.insert(o, (s, sha1));
                    }
                }
                box_error(d.pick(&[400, 409, 416]), code)
            }
            5 if kind == RequestKind::UploadPart => {
                let (o, s, sha1) = held.part.clone().expect("part");
                match d.below(5) {
                    0 => self.echo_unconfirmed(o + 1, s, &sha1),
                    1 => self.echo_unconfirmed(o, s.saturating_sub(1), &sha1),
                    2 => self.echo_unconfirmed(o, s, &Sha1Digest([d.u8(); 20]).to_hex()),
                    3 => json_response(200, &serde_json::json!({})),
                    _ => {
                        // Upper-case hex: the same digest.
                        self.stored.insert(o, (s, sha1.clone()));
                        self.echo(o, s, &sha1.to_ascii_uppercase())
                    }
                }
            }
            6 if kind == RequestKind::ListParts => {
                let (offset, limit) = query(held.t.request.uri().query().unwrap_or(""));
                let mut entries: Vec<(u64, (u64, String))> = self
                    .stored
                    .iter()
                    .map(|(o, s)| (*o, s.clone()))
                    .skip(offset as usize)
                    .take(limit as usize)
                    .collect();
                let mut total = self.stored.len() as u64;
                match d.below(6) {
                    0 => total += 1 + d.below(3) as u64,
                    1 => total = total.saturating_sub(1),
                    2 => entries.clear(),
                    3 => {
                        if let Some(e) = entries.first().cloned() {
                            entries.push(e);
                        }
                    }
                    4 => {
                        if let Some(e) = entries.first_mut() {
                            e.1 .1 = Sha1Digest([d.u8(); 20]).to_hex();
                        }
                    }
                    _ => total = d.u64(),
                }
                self.list_page(&entries, total, offset, limit)
            }
            7 if kind == RequestKind::CommitSession => {
                let mut r = raw_response(202, Vec::new());
                self.add_retry_after(&mut r, d);
                r
            }
            8 if kind == RequestKind::CommitSession => match d.below(4) {
                0 => box_error(400, "parts_mismatch"),
                1 => json_response(201, &serde_json::json!({"entries": []})),
                2 => json_response(201, &serde_json::json!({"entries": [{"id": "9", "type": "file", "size": 1}]})),
                _ => json_response(
                    201,
                    &serde_json::json!({"entries": [{"id": "9", "type": "file", "sha1": Sha1Digest([1; 20]).to_hex()}]}),
                ),
            },
            9 if matches!(kind, RequestKind::CreateSession | RequestKind::GetSession) => {
                let fs = self.file_size;
                let ps = [
                    0,
                    1,
                    19,
                    20,
                    fs.div_ceil(MAX_FUZZ_PARTS),
                    fs / 3,
                    self.part_size - 1,
                    self.part_size + 1,
                    fs,
                    fs + 1,
                    u64::MAX / 2,
                    u64::MAX,
                ];
                let ps = if d.u8().is_multiple_of(4) { None } else { Some(d.pick(&ps)) };
                let tp = match d.below(5) {
                    0 => None,
                    1 => Some(d.u64()),
                    2 => Some(self.total_parts + 1),
                    _ => ps.filter(|p| *p > 0).map(|p| fs.div_ceil(p)),
                };
                // Plans with more parts than the interpreter's bound are not run (they are valid).
                let ps = ps.filter(|p| *p == 0 || fs.div_ceil(*p) <= MAX_FUZZ_PARTS || fs.div_ceil(*p) > MAX_PARTS);
                let id = d.pick(&[SESSION_ID, SESSION_ID, "", "../etc", "S 1"]);
                let endpoints = d.pick(&[Endpoints::Trusted, Endpoints::None, Endpoints::Foreign, Endpoints::Garbage]);
                json_response(201, &session_json(id, ps, tp, endpoints))
            }
            10 => {
                let location = HeaderValue::from_static("https://evil.example.com/steal");
                let mut r = raw_response(d.pick(&[301, 302, 303, 307, 308]), Vec::new());
                r.headers_mut().insert("location", location);
                r
            }
            _ => self.cooperative_answer(held),
        }
    }

    /// The cooperative answer without recording anything as stored or confirmed.
    fn cooperative_answer_quiet(&mut self, held: &Held) -> Response<Bytes> {
        let stored = self.stored.clone();
        let r = self.cooperative_answer(held);
        self.stored = stored;
        r
    }

    fn echo_unconfirmed(&mut self, offset: u64, size: u64, sha1: &str) -> Response<Bytes> {
        json_response(200, &serde_json::json!({"part": {"part_id": "P", "offset": offset, "size": size, "sha1": sha1}}))
    }

    fn add_retry_after(&self, r: &mut Response<Bytes>, d: &mut Draw<impl Choices>) {
        let value = match d.below(7) {
            0 => return,
            1 => "0",
            2 => "1",
            3 => "30",
            4 => "99999999999",
            5 => "soon",
            _ => {
                r.headers_mut().insert("date", HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
                "Sun, 06 Nov 1994 08:49:47 GMT"
            }
        };
        r.headers_mut().insert("retry-after", HeaderValue::from_static(value));
    }

    fn answer_transmit(&mut self, index: usize, d: Option<&mut Draw<impl Choices>>) {
        let held = self.tx.remove(index);
        let response = match d {
            None => self.cooperative_answer(&held),
            Some(d) => self.adversarial_answer(&held, d),
        };
        self.record_claims(held.t.kind, &response);
        self.answered.push(held.t.id);
        self.m.handle_response(held.t.id, response, self.now);
    }

    /// Notes what a 2xx answer claims Box holds, whatever produced it.
    fn record_claims(&mut self, kind: RequestKind, response: &Response<Bytes>) {
        if !response.status().is_success() {
            return;
        }
        let mut note = |p: UploadPart| {
            if let Some(sha1) = p.sha1 {
                self.confirmed.insert((p.offset, p.size, sha1.to_ascii_lowercase()));
            }
        };
        match kind {
            RequestKind::UploadPart => {
                if let Ok(box_upload_core::models::UploadedPart { part: Some(p) }) =
                    serde_json::from_slice(response.body())
                {
                    note(p);
                }
            }
            RequestKind::ListParts => {
                if let Ok(page) = serde_json::from_slice::<box_upload_core::models::UploadParts>(response.body()) {
                    page.entries.into_iter().for_each(note);
                }
            }
            RequestKind::CommitSession if response.status() != StatusCode::ACCEPTED => self.commit_ok_sent = true,
            RequestKind::GetFile => self.lookup_ok_sent = true,
            // Box made a session the machine can name: any failure from here on must abort it.
            RequestKind::CreateSession
                if serde_json::from_slice::<UploadSession>(response.body()).is_ok_and(|s| s.id == SESSION_ID) =>
            {
                self.session_created = true;
            }
            _ => {}
        }
    }

    fn advance_to_timeout(&mut self) {
        let at = self.m.poll_timeout().expect("stuck: nothing to send, nothing to read, nothing to wait for");
        assert!(at <= self.now + Duration::from_secs(3600), "waits more than an hour");
        self.now = self.now.max(at);
        self.m.handle_timeout(self.now);
    }

    fn cooperative_step(&mut self) {
        if !self.reads.is_empty() {
            self.answer_read(0, None::<&mut Draw<ByteChoices<'_>>>);
        } else if !self.tx.is_empty() {
            self.answer_transmit(0, None::<&mut Draw<ByteChoices<'_>>>);
        } else {
            self.advance_to_timeout();
        }
    }

    fn adversarial_step(&mut self, d: &mut Draw<impl Choices>) {
        let outstanding = self.reads.len() + self.tx.len();
        match d.u8() {
            0..=199 if outstanding > 0 => {
                let i = d.below(outstanding);
                if i < self.reads.len() {
                    self.answer_read(i, Some(d));
                } else {
                    self.answer_transmit(i - self.reads.len(), Some(d));
                }
            }
            0..=199 => self.advance_to_timeout(),
            200..=219 => {
                let step = d.pick(&[0, 1, 999, 30_000, 120_000, 900_000, 3_600_000]);
                self.now += Duration::from_millis(step);
                self.m.handle_timeout(self.now);
            }
            220..=231 if !self.tx.is_empty() => {
                let held = self.tx.remove(d.below(self.tx.len()));
                let kind = d.pick(&[
                    TransportErrorKind::Connect,
                    TransportErrorKind::Timeout,
                    TransportErrorKind::Io,
                    TransportErrorKind::BodyTooLarge,
                    TransportErrorKind::Redirect,
                    TransportErrorKind::Other,
                ]);
                if held.t.kind == RequestKind::CommitSession && d.u8().is_multiple_of(2) {
                    // Box applied the commit (it was checked) and the answer was lost.
                    self.commit_applied = true;
                }
                self.answered.push(held.t.id);
                self.m.handle_transport_error(held.t.id, TransportError::new(kind, "fuzz"), self.now);
            }
            232..=241 => {
                // An answer to a request already answered, or never sent.
                let id = if self.answered.is_empty() || d.u8().is_multiple_of(4) {
                    RequestId(1_000_000 + u64::from(d.u8()))
                } else {
                    self.answered[d.below(self.answered.len())]
                };
                let r = if d.u8().is_multiple_of(2) { raw_response(200, b"{}".to_vec()) } else { box_error(500, "x") };
                self.m.handle_response(id, r, self.now);
            }
            242..=243 => {
                let keep = d.u8().is_multiple_of(2);
                self.cancelled.get_or_insert(keep);
                self.m.cancel(keep);
            }
            244..=247 => {
                if let Some(cp) = self.m.checkpoint() {
                    let json = serde_json::to_string(&cp).expect("checkpoint serializes");
                    let back: box_upload_core::Checkpoint = serde_json::from_str(&json).expect("checkpoint parses");
                    assert_eq!(back, cp);
                }
                let _ = self.m.progress();
            }
            _ => self.cooperative_step(),
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn query(q: &str) -> (u64, u64) {
    let mut offset = 0;
    let mut limit = 1000;
    for pair in q.split('&') {
        match pair.split_once('=') {
            Some(("offset", v)) => offset = v.parse().unwrap_or(0),
            Some(("limit", v)) => limit = v.parse().unwrap_or(1000),
            _ => {}
        }
    }
    (offset, limit)
}
