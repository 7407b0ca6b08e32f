//! A simulated Box and a simulated driver for state-machine tests: no sockets, no sleeping; time
//! jumps to the machine's next deadline when nothing else can happen.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use box_upload_core::bytes::Bytes;
use box_upload_core::http::{Method, Response, StatusCode};
use box_upload_core::{Event, Machine, PartData, RequestKind, Sha1Digest, SourceError, Transmit, TransportError};
use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

pub const BASE: &str = "https://upload.box.com/api";

/// One request as the simulated Box saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub kind: RequestKind,
    pub method: Method,
    pub uri: String,
    pub headers: box_upload_core::http::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Seen {
    /// The request of `t` as the simulated Box sees it at `now`.
    pub fn of(t: Transmit, now: Instant) -> Self {
        let (parts, body) = t.request.into_parts();
        Seen { kind: t.kind, method: parts.method, uri: parts.uri.to_string(), headers: parts.headers, body, at: now }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What a hook decides for one request.
pub enum Answer {
    /// Let the simulated Box answer.
    Normal,
    /// Answer this instead (Box does nothing).
    Respond(Response<Bytes>),
    /// Let Box process it, then lose the answer (transport error).
    ProcessThenFail,
    /// Fail in the transport without Box seeing it.
    Fail,
}

pub type Hook = Box<dyn FnMut(&Seen, &mut FakeBox) -> Answer>;

pub struct StoredPart {
    pub part_id: String,
    pub size: u64,
    pub sha1: Sha1Digest,
    pub bytes: Bytes,
}

pub struct FakeBox {
    pub part_size: u64,
    pub file_size: u64,
    pub session_id: String,
    pub session_exists: bool,
    pub parts: BTreeMap<u64, StoredPart>,
    pub committed: Option<Vec<u8>>,
    pub aborted: bool,
    pub seen: Vec<Seen>,
    pub endpoints_base: String,
    pub hooks: Vec<Hook>,
    pub tokens_issued: u32,
    pub valid_token: String,
    /// The file the last commit made (Box's File JSON), served by get file and the preflight
    /// check.
    pub file: Option<serde_json::Value>,
    /// The preflight check's `context_info.conflicts` as an array (else one object).
    pub conflicts_array: bool,
}

impl FakeBox {
    pub fn new(part_size: u64) -> Self {
        Self {
            part_size,
            file_size: 0,
            session_id: "F971964745A5CD0C001BBE4E58196BFD".into(),
            session_exists: false,
            parts: BTreeMap::new(),
            committed: None,
            aborted: false,
            seen: Vec::new(),
            endpoints_base: BASE.into(),
            hooks: Vec::new(),
            tokens_issued: 0,
            valid_token: "tok".into(),
            file: None,
            conflicts_array: false,
        }
    }

    pub fn hook(mut self, h: impl FnMut(&Seen, &mut FakeBox) -> Answer + 'static) -> Self {
        self.hooks.push(Box::new(h));
        self
    }

    pub fn count(&self, kind: RequestKind) -> usize {
        self.seen.iter().filter(|s| s.kind == kind).count()
    }

    pub fn session_json(&self) -> serde_json::Value {
        let total = self.file_size.div_ceil(self.part_size);
        let b = format!("{}/2.0/files/upload_sessions/{}", self.endpoints_base, self.session_id);
        serde_json::json!({
            "id": self.session_id, "type": "upload_session",
            "session_expires_at": "2026-12-01T00:00:00Z",
            "part_size": self.part_size, "total_parts": total, "num_parts_processed": self.parts.len(),
            "session_endpoints": {
                "upload_part": b, "commit": format!("{b}/commit"), "abort": b,
                "list_parts": format!("{b}/parts"), "status": b, "log_event": format!("{b}/log"),
            }
        })
    }

    fn answer(&mut self, seen: &Seen) -> Response<Bytes> {
        let auth = seen.header("authorization").unwrap_or_default().to_owned();
        if seen.kind == RequestKind::Token {
            self.tokens_issued += 1;
            self.valid_token = format!("ccg-{}", self.tokens_issued);
            return json(
                200,
                serde_json::json!({"access_token": self.valid_token, "expires_in": 3600, "token_type": "bearer"}),
            );
        }
        if auth != format!("Bearer {}", self.valid_token) {
            return error(401, "unauthorized", "bad token");
        }
        let path = seen.uri.split('?').next().unwrap_or_default().to_owned();
        match (seen.method.clone(), seen.kind) {
            (Method::POST, RequestKind::CreateSession | RequestKind::CreateSessionForFile) => {
                let body = seen.json();
                self.file_size = body["file_size"].as_u64().unwrap();
                self.session_exists = true;
                json(201, self.session_json())
            }
            (Method::GET, RequestKind::GetFile) => match &self.file {
                Some(file) if path.ends_with(&format!("/2.0/files/{}", file["id"].as_str().unwrap_or_default())) => {
                    json(200, file.clone())
                }
                _ => error(404, "not_found", "no file"),
            },
            (Method::OPTIONS, RequestKind::PreflightFileUpload) => match &self.file {
                Some(file) if file["name"] == seen.json()["name"] => {
                    // Box's FileConflict: the mini file, no size.
                    let mut conflict = file.clone();
                    conflict.as_object_mut().unwrap().remove("size");
                    let conflicts = if self.conflicts_array { serde_json::json!([conflict]) } else { conflict };
                    json(
                        409,
                        serde_json::json!({"type": "error", "status": 409, "code": "item_name_in_use",
                            "message": "Item with the same name already exists", "context_info": {"conflicts": conflicts}}),
                    )
                }
                _ => json(200, serde_json::json!({"upload_url": "https://upload.box.com/api/2.0/files/content"})),
            },
            _ if !self.session_exists || !path.contains(&self.session_id) => error(404, "not_found", "no session"),
            (Method::GET, RequestKind::GetSession) => json(200, self.session_json()),
            (Method::PUT, RequestKind::UploadPart) => {
                let range: box_upload_core::ContentRange = seen.header("content-range").unwrap().parse().unwrap();
                let digest = Sha1Digest::parse_header(seen.header("digest").unwrap()).unwrap();
                let actual = Sha1Digest::of(&seen.body);
                if digest != actual {
                    return error(412, "precondition_failed", "digest");
                }
                if !range.offset().is_multiple_of(self.part_size) || range.size() != seen.body.len() as u64 {
                    return error(416, "requested_range_not_satisfiable", "range");
                }
                if self.parts.contains_key(&range.offset()) {
                    return error(416, "range_overlaps_existing_part", "overlap");
                }
                let part_id = format!("{:08X}", range.offset() / self.part_size + 0x1000);
                self.parts.insert(
                    range.offset(),
                    StoredPart { part_id: part_id.clone(), size: range.size(), sha1: actual, bytes: seen.body.clone() },
                );
                json(
                    200,
                    serde_json::json!({"part": {"part_id": part_id, "offset": range.offset(), "size": range.size(), "sha1": actual.to_hex()}}),
                )
            }
            (Method::GET, RequestKind::ListParts) => {
                let q = seen.uri.split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default();
                let get = |k: &str| {
                    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}="))).and_then(|v| v.parse::<usize>().ok())
                };
                let offset = get("offset").unwrap_or(0);
                let limit = get("limit").unwrap_or(100);
                let entries: Vec<_> = self.parts.iter().skip(offset).take(limit).map(|(o, p)| {
                    serde_json::json!({"part_id": p.part_id, "offset": o, "size": p.size, "sha1": p.sha1.to_hex()})
                }).collect();
                json(
                    200,
                    serde_json::json!({"entries": entries, "limit": limit, "offset": offset, "total_count": self.parts.len(), "order": [{"by": "offset", "direction": "ASC"}]}),
                )
            }
            (Method::POST, RequestKind::CommitSession) => {
                let digest = Sha1Digest::parse_header(seen.header("digest").unwrap()).unwrap();
                let mut whole = Vec::with_capacity(self.file_size as usize);
                for p in self.parts.values() {
                    whole.extend_from_slice(&p.bytes);
                }
                let body = seen.json();
                let listed = body["parts"].as_array().unwrap().len();
                if listed != self.parts.len() {
                    return error(400, "parts_mismatch", "parts");
                }
                if Sha1Digest::of(&whole) != digest {
                    return error(400, "digest_mismatch", "digest");
                }
                let sha = Sha1Digest::of(&whole).to_hex();
                let size = whole.len();
                self.committed = Some(whole);
                self.session_exists = false;
                let file = serde_json::json!({"id": "12345", "type": "file", "etag": "1", "name": "f.bin", "size": size, "sha1": sha,
                    "file_version": {"type": "file_version", "id": "999", "sha1": sha}, "parent": {"type": "folder", "id": "0"}});
                self.file = Some(file.clone());
                json(201, serde_json::json!({"entries": [file], "total_count": 1}))
            }
            (Method::DELETE, RequestKind::AbortSession) => {
                self.aborted = true;
                self.session_exists = false;
                Response::builder().status(204).body(Bytes::new()).unwrap()
            }
            _ => error(405, "method_not_allowed", "?"),
        }
    }

    /// What happens to one request: Ok(answer) or Err(transport error).
    pub fn handle(&mut self, seen: Seen) -> Result<Response<Bytes>, TransportError> {
        self.seen.push(seen.clone());
        let mut hooks = std::mem::take(&mut self.hooks);
        let mut decision = Answer::Normal;
        for h in hooks.iter_mut() {
            decision = h(&seen, self);
            if !matches!(decision, Answer::Normal) {
                break;
            }
        }
        self.hooks = hooks;
        match decision {
            Answer::Normal => Ok(self.answer(&seen)),
            Answer::Respond(r) => Ok(r),
            Answer::ProcessThenFail => {
                let _ = self.answer(&seen);
                Err(TransportError::new(box_upload_core::TransportErrorKind::Io, "connection reset"))
            }
            Answer::Fail => Err(TransportError::new(box_upload_core::TransportErrorKind::Io, "connection reset")),
        }
    }
}

pub fn json(status: u16, v: serde_json::Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(serde_json::to_vec(&v).unwrap()))
        .unwrap()
}

pub fn error(status: u16, code: &str, message: &str) -> Response<Bytes> {
    json(
        status,
        serde_json::json!({"type": "error", "status": status, "code": code, "message": message, "request_id": "req-1"}),
    )
}

pub fn empty(status: u16) -> Response<Bytes> {
    Response::builder().status(StatusCode::from_u16(status).unwrap()).body(Bytes::new()).unwrap()
}

/// The deterministic source: byte `i` of the file is a function of `i`.
pub fn source_bytes(offset: u64, len: usize) -> Vec<u8> {
    // Not periodic, so no two parts share a digest.
    (offset..offset + len as u64)
        .map(|i| {
            let w = (i / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((w ^ (w >> 31)) >> ((i % 8) * 8)) as u8
        })
        .collect()
}

pub fn whole_sha1(size: u64) -> Sha1Digest {
    let mut h = box_upload_core::FileHasher::new();
    let mut off = 0;
    while off < size {
        let n = (size - off).min(8 << 20) as usize;
        h.update(&source_bytes(off, n));
        off += n as u64;
    }
    h.finish()
}

/// How the simulated driver orders answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Fifo,
    /// Newest request answered first.
    Lifo,
}

pub struct Run<T> {
    pub output: Result<T, box_upload_core::Error>,
    pub events: Vec<Event>,
    pub elapsed: Duration,
    pub transmits: usize,
    pub max_in_flight: usize,
}

/// A source the simulated driver reads from.
pub type Source = Box<dyn FnMut(u64, usize) -> Result<Vec<u8>, SourceError>>;

pub fn default_source(file_size: u64) -> Source {
    Box::new(move |offset, len| {
        let end = (offset + len as u64).min(file_size);
        Ok(source_bytes(offset, end.saturating_sub(offset) as usize))
    })
}

thread_local! {
    static READS_THROUGH_BUILDER: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Makes this thread's drives serve every read through the machine's `PartBuilder` (`Some(true)`),
/// every read through `PartData::new` (`Some(false)`), or alternate (`None`, the default).
pub fn reads_through_builder(choice: Option<bool>) {
    READS_THROUGH_BUILDER.with(|c| c.set(choice));
}

/// Runs `machine` against `fake` until it finishes. Reads are served at once; requests wait in
/// flight until the driver answers them in `order`.
pub fn drive<M: Machine>(machine: &mut M, fake: &mut FakeBox, mut source: Source, order: Order) -> Run<M::Output> {
    drive_with(machine, fake, &mut source, order, |_, _| {})
}

pub fn drive_with<M: Machine>(
    machine: &mut M,
    fake: &mut FakeBox,
    source: &mut Source,
    order: Order,
    mut on_event: impl FnMut(&Event, &mut M),
) -> Run<M::Output> {
    let start = Instant::now();
    let mut now = start;
    let mut events = Vec::new();
    let mut in_flight: VecDeque<(Transmit, Instant)> = VecDeque::new();
    let mut transmits = 0;
    let mut max_in_flight = 0;
    for _step in 0..2_000_000 {
        while let Some(e) = machine.poll_event() {
            on_event(&e, machine);
            events.push(e);
        }
        if let Some(output) = machine.poll_output() {
            while let Some(e) = machine.poll_event() {
                events.push(e);
            }
            return Run { output, events, elapsed: now - start, transmits, max_in_flight };
        }
        if let Some(r) = machine.poll_read() {
            // Every other read goes through the machine's PartBuilder (which may carry the
            // whole-file hash on), the others through PartData::new: both paths run in every test
            // (unless the test chose one with `reads_through_builder`).
            let through_builder = READS_THROUGH_BUILDER.with(Cell::get).unwrap_or(r.id.0 % 2 == 1);
            let data = source(r.offset, r.len).map(|bytes| {
                if through_builder && r.id.0 % 4 == 3 {
                    // As a driver serving bytes in memory does: no copy.
                    machine.part_builder(&r, Vec::new()).finish_with_bytes(bytes.into())
                } else if through_builder {
                    let mut part = machine.part_builder(&r, Vec::new());
                    part.set_buffer(vec![0; bytes.len()]);
                    for chunk in bytes.chunks(256 * 1024) {
                        part.unfilled()[..chunk.len()].copy_from_slice(chunk);
                        part.advance(chunk.len());
                    }
                    part.finish()
                } else {
                    PartData::new(bytes)
                }
            });
            machine.handle_read(r.id, data, now);
            continue;
        }
        while let Some(t) = machine.poll_transmit(now) {
            transmits += 1;
            in_flight.push_back((t, now));
        }
        max_in_flight = max_in_flight.max(in_flight.iter().filter(|(t, _)| t.kind == RequestKind::UploadPart).count());
        let next = match order {
            Order::Fifo => in_flight.pop_front(),
            Order::Lifo => in_flight.pop_back(),
        };
        if let Some((t, _)) = next {
            let id = t.id;
            let seen = Seen::of(t, now);
            match fake.handle(seen) {
                Ok(resp) => machine.handle_response(id, resp, now),
                Err(e) => machine.handle_transport_error(id, e, now),
            }
            continue;
        }
        match machine.poll_timeout() {
            Some(deadline) => {
                now = now.max(deadline);
                machine.handle_timeout(now);
            }
            // Nothing in flight, nothing to read, nothing scheduled: the machine is stuck.
            None => panic!(
                "machine stalled: no output, no request, no read, no timeout; last requests: {:?}",
                fake.seen.iter().rev().take(4).map(|s| (s.kind, s.uri.clone())).collect::<Vec<_>>()
            ),
        }
    }
    panic!("machine did not finish within the step bound");
}
