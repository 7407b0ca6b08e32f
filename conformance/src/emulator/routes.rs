//! HTTP routing: turns requests into model operations and model results into Box answers.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::auth::{parse_form, percent_decode};
use super::errors::ApiError;
use super::faults::{EchoField, FaultAction, FaultPlan, Op};
use super::request_log::{Pending, RequestOutcome};
use super::sessions::{CommitAttributes, CommitConditions, PartRecord, Target};
use super::storage::Stored;
use super::{Shared, MAX_LIST_LIMIT, MAX_LIST_OFFSET};
use crate::body::{self, hex, read_limited, ResBody};

/// The handler failed in a way that must close the connection without an answer (a fault, or
/// the client went away mid-body). Hyper drops the connection when a service returns an error.
#[derive(Debug)]
pub(crate) struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by the emulator")
    }
}

impl std::error::Error for Cut {}

/// How a handler can fail.
enum Fail {
    Api(ApiError),
    Cut,
    /// Handled (a commit applied), and a fault withholds the answer: closed like `Cut`.
    Withheld,
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

type Handled = Result<Response<ResBody>, Fail>;

/// A parsed route.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Token,
    CreateSession,
    CreateVersion(String),
    GetSession(String),
    UploadPart(String),
    Abort(String),
    ListParts(String),
    Commit(String),
    /// The plan of a session (`POST .../plan`).
    Plan(String),
    LogEvent(String),
    FileInfo(String),
    FileContent(String),
    /// A preflight check: of a new file (`None`) or of a new version of this file.
    Preflight(Option<String>),
    /// A direct upload: of a new file (`None`) or of a new version of this file.
    UploadFile(Option<String>),
    MethodNotAllowed(Op),
    NotFound,
}

impl Route {
    fn op(&self) -> Op {
        match self {
            Route::Token => Op::Token,
            Route::CreateSession | Route::CreateVersion(_) => Op::CreateSession,
            Route::GetSession(_) => Op::GetSession,
            Route::UploadPart(_) => Op::UploadPart,
            Route::Abort(_) => Op::Abort,
            Route::ListParts(_) => Op::ListParts,
            Route::Commit(_) => Op::Commit,
            Route::Plan(_) => Op::Plan,
            Route::FileInfo(_) | Route::FileContent(_) => Op::File,
            Route::Preflight(_) => Op::Preflight,
            Route::UploadFile(_) => Op::UploadFile,
            Route::MethodNotAllowed(op) => *op,
            Route::LogEvent(_) | Route::NotFound => Op::Other,
        }
    }
}

fn classify(method: &Method, path: &str) -> Route {
    if path == "/oauth2/token" {
        return if method == Method::POST { Route::Token } else { Route::MethodNotAllowed(Op::Token) };
    }
    // The upload host's layout (`https://upload.box.com/api/2.0/...`) and the API host's
    // (`https://api.box.com/2.0/...`), both on this one origin.
    let Some(rest) = path.strip_prefix("/api/2.0/").or_else(|| path.strip_prefix("/2.0/")) else {
        return Route::NotFound;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let m = method.clone();
    match segs.as_slice() {
        ["files", "upload_sessions"] => match m {
            Method::POST => Route::CreateSession,
            _ => Route::MethodNotAllowed(Op::CreateSession),
        },
        ["files", "upload_sessions", id] => match m {
            Method::GET => Route::GetSession((*id).to_string()),
            Method::PUT => Route::UploadPart((*id).to_string()),
            Method::DELETE => Route::Abort((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::GetSession),
        },
        ["files", "upload_sessions", id, "parts"] => match m {
            Method::GET => Route::ListParts((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::ListParts),
        },
        ["files", "upload_sessions", id, "commit"] => match m {
            Method::POST => Route::Commit((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::Commit),
        },
        ["files", "upload_sessions", id, "plan"] => match m {
            Method::POST => Route::Plan((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::Plan),
        },
        ["files", "upload_sessions", id, "log"] => match m {
            Method::POST => Route::LogEvent((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::Other),
        },
        ["files", id, "upload_sessions"] => match m {
            Method::POST => Route::CreateVersion((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::CreateSession),
        },
        ["files", "content"] => match m {
            Method::OPTIONS => Route::Preflight(None),
            Method::POST => Route::UploadFile(None),
            _ => Route::MethodNotAllowed(Op::Preflight),
        },
        ["files", id] => match m {
            Method::GET => Route::FileInfo((*id).to_string()),
            _ => Route::MethodNotAllowed(Op::File),
        },
        ["files", id, "content"] => match m {
            Method::GET => Route::FileContent((*id).to_string()),
            Method::OPTIONS => Route::Preflight(Some((*id).to_string())),
            Method::POST => Route::UploadFile(Some((*id).to_string())),
            _ => Route::MethodNotAllowed(Op::File),
        },
        _ => Route::NotFound,
    }
}

/// Serves one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ResBody>, Cut> {
    let route = classify(req.method(), req.uri().path());
    let op = route.op();
    shared.counters.request(op);
    // Reports the request when dropped: at the end of this function, or earlier if the
    // connection goes away and hyper drops this future.
    let mut logged = shared.observer.as_ref().map(|o| Pending::start(o, op, &req));
    let request_id = shared.store.random_hex(15).to_ascii_lowercase();
    let mut plan = shared.faults.plan(op);
    let faulted = plan.delay.is_some()
        || plan.early.is_some()
        || plan.drop_answer
        || plan.commit_answer_lost
        || plan.wrong_echo.is_some()
        || plan.total_count_delta != 0;
    if faulted {
        shared.counters.fault();
    }
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    let drop_answer = plan.drop_answer;
    let result = match early_fault(&mut plan, op, &request_id) {
        Some(r) => {
            // Read what the client is sending before answering, as a server that keeps the
            // connection does: otherwise the client may see a broken pipe instead of the answer.
            drain(req.into_body(), DRAIN_LIMIT).await;
            r
        }
        None => dispatch(&shared, route, req, &plan).await,
    };
    let (answer, outcome) = match result {
        Ok(_) | Err(Fail::Api(_)) if drop_answer => (Err(Cut), RequestOutcome::Withheld),
        Err(Fail::Withheld) => (Err(Cut), RequestOutcome::Withheld),
        Err(Fail::Cut) => (Err(Cut), RequestOutcome::Closed),
        Ok(mut res) => {
            add_request_id(&mut res, &request_id);
            let status = res.status().as_u16();
            (Ok(res), RequestOutcome::Answered(status))
        }
        Err(Fail::Api(e)) => {
            let mut res = e.into_response(&request_id);
            add_request_id(&mut res, &request_id);
            let status = res.status().as_u16();
            (Ok(res), RequestOutcome::Answered(status))
        }
    };
    if let Some(pending) = logged.as_mut() {
        pending.end(outcome);
    }
    answer
}

/// The most of a request body read and dropped before an injected answer (a part is at most a few
/// tens of MiB; past this the connection is closed instead).
const DRAIN_LIMIT: usize = 256 << 20;

async fn drain(mut body: Incoming, limit: usize) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, Bytes::len);
        if seen > limit {
            break;
        }
    }
}

fn add_request_id(res: &mut Response<ResBody>, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        res.headers_mut().insert("box-request-id", v);
    }
}

/// Faults that answer before any normal handling. Leaves in `plan` those the handlers apply.
fn early_fault(plan: &mut FaultPlan, op: Op, request_id: &str) -> Option<Handled> {
    let action = plan.early.take()?;
    let r = match action {
        FaultAction::Status { status, retry_after } => {
            let code = match status {
                429 => "rate_limit_exceeded",
                500 => "internal_server_error",
                502 => "bad_gateway",
                503 => "unavailable",
                504 => "gateway_timeout",
                401 => "unauthorized",
                _ => "injected_fault",
            };
            let mut e = ApiError::new(status, code, format!("Injected fault: status {status}"));
            if let Some(s) = retry_after {
                e = e.header(header::RETRY_AFTER, &s.to_string());
            }
            let _ = request_id;
            Err(Fail::Api(e))
        }
        FaultAction::Redirect { location } => {
            let mut res = Response::new(body::empty());
            *res.status_mut() = StatusCode::FOUND;
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Ok(res)
        }
        FaultAction::HugeBody { len } => Ok(huge_body(len)),
        FaultAction::CutBody if op != Op::UploadPart => Err(Fail::Cut),
        other => {
            // Applied by the handler (cut mid-part, 202 commit, parts mismatch).
            plan.early = Some(other);
            return None;
        }
    };
    Some(r)
}

/// A 200 answer whose JSON array never closes: `{"entries":[{},{},...`.
fn huge_body(len: u64) -> Response<ResBody> {
    static CHUNK: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let chunk = CHUNK.get_or_init(|| Bytes::from("{\"part_id\":\"00000000\"},".repeat(2979))).clone();
    let (tx, body) = body::channel(4);
    tokio::spawn(async move {
        let head = Bytes::from_static(b"{\"entries\":[");
        let mut sent = head.len() as u64;
        if tx.send(Ok(head)).await.is_err() {
            return;
        }
        while sent < len {
            let n = usize::try_from((len - sent).min(chunk.len() as u64)).unwrap_or(chunk.len());
            if tx.send(Ok(chunk.slice(..n))).await.is_err() {
                return;
            }
            sent += n as u64;
        }
    });
    let mut res = Response::new(body);
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

async fn dispatch(shared: &Arc<Shared>, route: Route, req: Request<Incoming>, plan: &FaultPlan) -> Handled {
    if route == Route::Token {
        return token(shared, req).await;
    }
    if let Route::NotFound = route {
        return Err(ApiError::not_found("Not Found").into());
    }
    if let Err(e) = shared.auth.check(req.headers(), shared.store.clock.now()) {
        drain(req.into_body(), DRAIN_LIMIT).await;
        return Err(e.into());
    }
    match route {
        Route::CreateSession => create_session(shared, req, None).await,
        Route::CreateVersion(file_id) => create_session(shared, req, Some(file_id)).await,
        Route::GetSession(id) => {
            let session = shared.store.session(&id)?;
            Ok(json_response(StatusCode::OK, &super::plan::session_json(shared, &session)))
        }
        Route::UploadPart(id) => upload_part(shared, req, &id, plan).await,
        Route::Abort(id) => {
            shared.store.abort(&id)?;
            let mut res = Response::new(body::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            Ok(res)
        }
        Route::ListParts(id) => list_parts(shared, &req, &id, plan),
        Route::Commit(id) => commit(shared, req, &id, plan).await,
        Route::Plan(id) => {
            let session = shared.store.session(&id)?;
            if shared.config.plan_mode == super::PlanMode::Off {
                drain(req.into_body(), DRAIN_LIMIT).await;
                return Err(ApiError::not_found("Not Found").into());
            }
            let body = read_json(shared, req).await?;
            Ok(json_response(StatusCode::OK, &super::plan::answer(shared, session, &body).await?))
        }
        Route::LogEvent(id) => {
            shared.store.session(&id)?;
            let mut res = Response::new(body::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            Ok(res)
        }
        Route::FileInfo(id) => {
            let file = shared.store.file(&id).ok_or_else(|| ApiError::not_found("Not Found"))?;
            let full = shared.store.file_full_json(&file);
            let fields = query_pairs(req.uri().query()).into_iter().find(|(k, _)| k == "fields").map(|(_, v)| v);
            Ok(json_response(StatusCode::OK, &select_fields(full, fields.as_deref())))
        }
        Route::Preflight(file_id) => preflight(shared, req, file_id).await,
        Route::UploadFile(file_id) => upload_file(shared, req, file_id, plan).await,
        Route::FileContent(id) => file_content(shared, &id),
        Route::MethodNotAllowed(_) => Err(ApiError::new(405, "method_not_allowed", "Method Not Allowed").into()),
        Route::Token | Route::NotFound => Err(ApiError::not_found("Not Found").into()),
    }
}

/// Box's `fields=a,b`: those fields of a file, plus the mini file's (`type`, `id`, `etag`,
/// `sequence_id`, `name`, `sha1`, `file_version`), which Box always answers. Fields the emulator
/// does not know are left out. No `fields`: the whole object.
fn select_fields(full: Value, fields: Option<&str>) -> Value {
    const MINI: [&str; 7] = ["type", "id", "etag", "sequence_id", "name", "sha1", "file_version"];
    let Some(fields) = fields.filter(|f| !f.trim().is_empty()) else { return full };
    let Value::Object(all) = full else { return full };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    let out: serde_json::Map<String, Value> =
        all.into_iter().filter(|(k, _)| MINI.contains(&k.as_str()) || wanted.contains(&k.as_str())).collect();
    Value::Object(out)
}

/// The preflight check (`OPTIONS /2.0/files/content` with `{name, size, parent: {id}}`, or
/// `OPTIONS /2.0/files/{id}/content` with `{name?, size?, parent?: {id}}`).
async fn preflight(shared: &Arc<Shared>, req: Request<Incoming>, file_id: Option<String>) -> Handled {
    let body = read_json_or_empty(shared, req).await?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request("The request body must be a JSON object").into());
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) if file_id.is_some() => None,
        None | Some(Value::Null) => return Err(ApiError::bad_request("name is required").into()),
        Some(Value::String(s)) => {
            super::sessions::validate_name(s)?;
            Some(s.as_str())
        }
        Some(other) => {
            return Err(ApiError::bad_request("name must be a string").context(json!({"name": other})).into())
        }
    };
    let folder_id = match obj.get("parent") {
        None | Some(Value::Null) if file_id.is_some() => None,
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("parent (an object with an id) is required").into())
        }
        Some(parent) => match parent.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Some(id.as_str()),
            _ => {
                return Err(ApiError::bad_request("parent.id must be a folder id (a string)")
                    .context(json!({"parent": parent}))
                    .into())
            }
        },
    };
    match obj.get("size") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let size = v.as_u64().ok_or_else(|| {
                ApiError::bad_request("size must be a non-negative integer").context(json!({"size": v}))
            })?;
            let max = shared.config.max_file_size;
            if size > max {
                return Err(ApiError::new(
                    403,
                    "storage_limit_exceeded",
                    format!("File size {size} exceeds the emulator's storage limit of {max} bytes"),
                )
                .into());
            }
        }
    }
    if let Some(id) = &file_id {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::not_found("Not Found").into());
        }
    }
    shared.store.preflight(file_id.as_deref(), folder_id, name)?;
    let token = shared.store.random_hex(32);
    let upload_url = match &file_id {
        None => format!("{}/2.0/files/content?upload_session_id={token}", shared.upload_base),
        Some(id) => format!("{}/2.0/files/{id}/content?upload_session_id={token}", shared.upload_base),
    };
    Ok(json_response(StatusCode::OK, &json!({"upload_url": upload_url, "upload_token": null})))
}

/// A direct upload (`POST /2.0/files/content`, `POST /2.0/files/{id}/content`): 201 with the new
/// file, 200 with the new version, as `Files`.
async fn upload_file(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    file_id: Option<String>,
    plan: &FaultPlan,
) -> Handled {
    if let Some(id) = &file_id {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::not_found("Not Found").into());
        }
    }
    let (parts, body) = req.into_parts();
    let body = match read_limited(body, super::direct::MAX_DIRECT_BODY).await {
        Ok(b) => b,
        Err(body::ReadError::TooLarge) => {
            return Err(ApiError::new(413, "request_entity_too_large", "Direct uploads hold at most 50 MB").into())
        }
        Err(body::ReadError::Transport(_)) => return Err(Fail::Cut),
    };
    let status = if file_id.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    let up = super::direct::parse(&parts.headers, &body, file_id)?;
    let file = shared.store.upload_direct(&up.target, &up.content, &up.attributes, up.if_match.as_deref())?;
    if plan.commit_answer_lost {
        // Stored, and the answer is lost: the client sees the connection close.
        return Err(Fail::Withheld);
    }
    Ok(json_response(status, &json!({"entries": [shared.store.file_full_json(&file)], "total_count": 1})))
}

fn json_response(status: StatusCode, value: &Value) -> Response<ResBody> {
    let mut res = Response::new(body::full(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Reads and parses a JSON request body, bounded by the configured limit.
async fn read_json(shared: &Shared, req: Request<Incoming>) -> Result<Value, Fail> {
    let bytes = match read_limited(req.into_body(), shared.config.max_json_body).await {
        Ok(b) => b,
        Err(body::ReadError::TooLarge) => {
            return Err(ApiError::new(413, "request_entity_too_large", "The request body is too large").into())
        }
        Err(body::ReadError::Transport(_)) => return Err(Fail::Cut),
    };
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")).into())
}

/// As [`read_json`], but an empty body reads as `{}`.
async fn read_json_or_empty(shared: &Shared, req: Request<Incoming>) -> Result<Value, Fail> {
    let bytes = match read_limited(req.into_body(), shared.config.max_json_body).await {
        Ok(b) => b,
        Err(body::ReadError::TooLarge) => {
            return Err(ApiError::new(413, "request_entity_too_large", "The request body is too large").into())
        }
        Err(body::ReadError::Transport(_)) => return Err(Fail::Cut),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")).into())
}

async fn token(shared: &Arc<Shared>, req: Request<Incoming>) -> Handled {
    let bytes = match read_limited(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(body::ReadError::TooLarge) => {
            return Err(ApiError::new(413, "request_entity_too_large", "Too large").into())
        }
        Err(body::ReadError::Transport(_)) => return Err(Fail::Cut),
    };
    let Some(form) = parse_form(&bytes) else {
        let body = json!({"error": "invalid_request", "error_description": "The body is not form-encoded"});
        return Ok(json_response(StatusCode::BAD_REQUEST, &body));
    };
    let token = shared.store.random_hex(32).to_ascii_lowercase();
    match shared.auth.issue(&form, shared.store.clock.now(), token) {
        Ok(v) => Ok(json_response(StatusCode::OK, &v)),
        Err(e) => Ok(json_response(e.status, &e.body)),
    }
}

fn field_file_size(body: &Value, min: u64, max: u64) -> Result<u64, ApiError> {
    match body.get("file_size") {
        None | Some(Value::Null) => Err(ApiError::new(400, "missing_file_size", "File size is required")),
        Some(v) => {
            let size = v.as_u64().ok_or_else(|| {
                ApiError::new(400, "invalid_file_size", "File size must be a non-negative integer")
                    .context(json!({"file_size": v}))
            })?;
            if size < min {
                return Err(ApiError::new(
                    400,
                    "file_size_too_small",
                    format!("File size {size} is less than minimum allowed for this API: {min}"),
                ));
            }
            if size > max {
                return Err(ApiError::new(
                    403,
                    "storage_limit_exceeded",
                    format!("File size {size} exceeds the emulator's storage limit of {max} bytes"),
                ));
            }
            Ok(size)
        }
    }
}

async fn create_session(shared: &Arc<Shared>, req: Request<Incoming>, file_id: Option<String>) -> Handled {
    let body = read_json(shared, req).await?;
    if !body.is_object() {
        return Err(ApiError::bad_request("The request body must be a JSON object").into());
    }
    let min = shared.config.min_file_size;
    let target = match file_id {
        None => {
            let folder_id = match body.get("folder_id") {
                None | Some(Value::Null) => {
                    return Err(ApiError::new(400, "missing_destination", "A destination folder is required").into())
                }
                Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
                Some(other) => {
                    return Err(ApiError::new(400, "invalid_folder_id", "Invalid folder id")
                        .context(json!({"folder_id": other}))
                        .into())
                }
            };
            let file_size = field_file_size(&body, min, shared.config.max_file_size)?;
            let name = match body.get("file_name") {
                None | Some(Value::Null) => {
                    return Err(ApiError::new(400, "missing_file_name", "A file name is required").into())
                }
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(ApiError::new(400, "item_name_invalid", "Item name invalid")
                        .context(json!({"file_name": other}))
                        .into())
                }
            };
            super::sessions::validate_name(&name)?;
            (Target::NewFile { folder_id, name }, file_size)
        }
        Some(file_id) => {
            if file_id.is_empty() || !file_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::not_found("Not Found").into());
            }
            let file_size = field_file_size(&body, min, shared.config.max_file_size)?;
            let name = match body.get("file_name") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => {
                    super::sessions::validate_name(s)?;
                    Some(s.clone())
                }
                Some(other) => {
                    return Err(ApiError::new(400, "item_name_invalid", "Item name invalid")
                        .context(json!({"file_name": other}))
                        .into())
                }
            };
            (Target::NewVersion { file_id, name }, file_size)
        }
    };
    let (target, file_size) = target;
    let part_size = shared.config.part_size.for_size(file_size);
    let session = shared.store.create_session(target, file_size, part_size, shared.config.session_lifetime)?;
    Ok(json_response(StatusCode::CREATED, &super::plan::session_json(shared, &session)))
}

/// Parses `bytes <first>-<last>/<total>`.
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (first, last, total) = (num(first)?, num(last)?, num(total)?);
    (first <= last && last < total).then_some((first, last, total))
}

/// Parses `Digest: sha=<base64>` (other algorithms in a list are ignored).
pub(crate) fn parse_digest(headers: &HeaderMap) -> Result<[u8; 20], ApiError> {
    let Some(value) = headers.get("digest") else {
        return Err(
            ApiError::new(400, "missing_digest", "The Digest header is required").context(json!({"header": "Digest"}))
        );
    };
    let bad = || {
        ApiError::new(400, "invalid_digest", "The Digest header must be sha=<base64 of the 20-byte SHA-1>")
            .context(json!({"header": "Digest"}))
    };
    let text = value.to_str().map_err(|_| bad())?;
    for item in text.split(',') {
        let Some((alg, b64)) = item.trim().split_once('=') else { continue };
        if alg.trim().eq_ignore_ascii_case("sha") {
            let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| bad())?;
            return <[u8; 20]>::try_from(raw.as_slice()).map_err(|_| bad());
        }
    }
    Err(bad())
}

async fn upload_part(shared: &Arc<Shared>, req: Request<Incoming>, id: &str, plan: &FaultPlan) -> Handled {
    let session = shared.store.session(id)?;
    let headers = req.headers();
    let range_header = headers
        .get(header::CONTENT_RANGE)
        .ok_or_else(|| ApiError::bad_range("The Content-Range header is required"))?;
    let (first, last, total) = range_header
        .to_str()
        .ok()
        .and_then(parse_content_range)
        .ok_or_else(|| ApiError::bad_range("Content-Range must be bytes <first>-<last>/<total>"))?;
    let size = last - first + 1;
    let ctx = json!({"range": {"first": first, "last": last, "total": total}, "part_size": session.part_size, "file_size": session.file_size});
    if total != session.file_size {
        return Err(ApiError::bad_range("The total in Content-Range does not match the session's file size")
            .context(ctx)
            .into());
    }
    if first % session.part_size != 0 {
        return Err(ApiError::bad_range("The part does not start at a multiple of the part size").context(ctx).into());
    }
    let is_last = last == total - 1;
    if size > session.part_size || (!is_last && size != session.part_size) {
        return Err(ApiError::bad_range(
            "The part size must equal the session's part size (only the last part may be shorter)",
        )
        .context(ctx)
        .into());
    }
    let digest = parse_digest(headers)?;
    if let Some(cl) = headers.get(header::CONTENT_LENGTH) {
        let cl: Option<u64> = cl.to_str().ok().and_then(|s| s.parse().ok());
        if cl != Some(size) {
            return Err(ApiError::bad_request("Content-Length does not match Content-Range").context(ctx).into());
        }
    }
    let reservation = session.reserve(first, size)?;
    let cut_at = matches!(plan.early, Some(FaultAction::CutBody)).then_some(size / 2);
    // Frames a session keeps in memory are hashed once whole (below), paired with the whole-file
    // hash when the part continues it; frames written to a file are hashed as they come.
    let held = session.data.holds_frames();
    let mut hasher = Sha1::new();
    let mut received = 0u64;
    let mut frames = Vec::new();
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(Fail::Cut) };
        let Ok(data) = frame.into_data() else { continue };
        if received + data.len() as u64 > size {
            return Err(ApiError::bad_range("The body is longer than the Content-Range").context(ctx).into());
        }
        session
            .data
            .write_frame(&mut frames, first, received, &data)
            .map_err(|e| ApiError::new(500, "internal_server_error", format!("storage error: {e}")))?;
        if !held {
            hasher.update(&data);
        }
        received += data.len() as u64;
        shared.counters.received(data.len() as u64);
        if cut_at.is_some_and(|c| received >= c) {
            return Err(Fail::Cut);
        }
    }
    if received != size {
        return Err(ApiError::bad_request("The body is shorter than the Content-Range").context(ctx).into());
    }
    let (actual, carried): ([u8; 20], _) =
        if held { session.hash_frames(first, &frames) } else { (hasher.finalize().into(), None) };
    if actual != digest {
        return Err(ApiError::new(
            412,
            "precondition_failed",
            "The SHA-1 in the Digest header does not match the part",
        )
        .context(json!({"expected_sha1": hex(&digest), "actual_sha1": hex(&actual)}))
        .into());
    }
    let part_id = shared.store.random_hex(8);
    let part = session.store_verified(reservation, part_id, hex(&actual), frames, carried)?;
    shared.counters.part_stored();
    let for_hash = Arc::clone(&session);
    tokio::task::spawn_blocking(move || {
        // Errors surface again (and are answered) when a commit finishes the hash.
        let _ = for_hash.advance_prefix();
    });
    let mut echo = part.to_json();
    match plan.wrong_echo {
        Some(EchoField::Sha1) => echo["sha1"] = json!(hex(&Sha1::digest(part.sha1.as_bytes()))),
        Some(EchoField::Offset) => echo["offset"] = json!(part.offset + session.part_size),
        Some(EchoField::Size) => echo["size"] = json!(part.size.saturating_sub(1)),
        None => {}
    }
    Ok(json_response(StatusCode::OK, &json!({"part": echo})))
}

/// Query parameters, percent-decoded.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn list_parts(shared: &Arc<Shared>, req: &Request<Incoming>, id: &str, plan: &FaultPlan) -> Handled {
    let session = shared.store.session(id)?;
    let mut offset = 0u64;
    // Box's default `limit`.
    let mut limit = 100u64;
    for (k, v) in query_pairs(req.uri().query()) {
        let n: Option<u64> = v.parse().ok();
        match k.as_str() {
            "offset" => {
                offset = n.ok_or_else(|| {
                    ApiError::bad_request("offset must be a non-negative integer").context(json!({"offset": v}))
                })?;
            }
            "limit" => {
                limit = n.filter(|l| *l > 0).ok_or_else(|| {
                    ApiError::bad_request("limit must be a positive integer").context(json!({"limit": v}))
                })?;
            }
            _ => {}
        }
    }
    if limit > MAX_LIST_LIMIT {
        return Err(ApiError::bad_request(format!("limit must not exceed {MAX_LIST_LIMIT}"))
            .context(json!({"limit": limit}))
            .into());
    }
    if offset > MAX_LIST_OFFSET {
        return Err(ApiError::bad_request(format!("offset must not exceed {MAX_LIST_OFFSET}"))
            .context(json!({"offset": offset}))
            .into());
    }
    // The emulator's page size: a page may hold fewer entries than asked for.
    let limit = limit.min(shared.config.list_page_size);
    let parts = session.parts();
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(parts.len());
    let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX)).min(parts.len());
    let entries: Vec<Value> = parts[start..end].iter().map(PartRecord::to_json).collect();
    let total = (parts.len() as i64).saturating_add(plan.total_count_delta).max(0);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "entries": entries,
            "limit": limit,
            "offset": offset,
            "order": [{"by": "offset", "direction": "ASC"}],
            "total_count": total,
        }),
    ))
}

fn accepted(retry_after: Option<u64>) -> Response<ResBody> {
    let mut res = Response::new(body::empty());
    *res.status_mut() = StatusCode::ACCEPTED;
    if let Some(s) = retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

fn parse_commit_parts(body: &Value) -> Result<Vec<PartRecord>, ApiError> {
    let list = body
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("parts (an array of upload parts) is required"))?;
    list.iter()
        .map(|p| {
            let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
            let n = |k: &str| p.get(k).and_then(Value::as_u64);
            match (s("part_id"), n("offset"), n("size"), s("sha1")) {
                (Some(part_id), Some(offset), Some(size), Some(sha1)) => Ok(PartRecord { part_id, offset, size, sha1 }),
                _ => Err(ApiError::bad_request(
                    "each part needs part_id (string), offset, size (integers) and sha1 (string)",
                )
                .context(json!({"part": p}))),
            }
        })
        .collect()
}

/// The commit body's optional `attributes` (`content_created_at`, `content_modified_at`, RFC 3339;
/// other attributes are ignored). The dates are kept as sent and answered as sent.
fn parse_commit_attributes(body: &Value) -> Result<CommitAttributes, ApiError> {
    let attrs = match body.get("attributes") {
        None | Some(Value::Null) => return Ok(CommitAttributes::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ApiError::bad_request("attributes must be an object").context(json!({"attributes": other})))
        }
    };
    let date = |key: &str| -> Result<Option<String>, ApiError> {
        match attrs.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if is_rfc3339(s) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::bad_request(format!("attributes.{key} must be an RFC 3339 date-time"))
                .context(json!({key: other}))),
        }
    };
    Ok(CommitAttributes {
        content_created_at: date("content_created_at")?,
        content_modified_at: date("content_modified_at")?,
    })
}

/// `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or `±HH:MM`.
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return false;
    }
    if !((at(10, b'T') || at(10, b't')) && digits(11..13) && at(13, b':') && digits(14..16) && at(16, b':')) {
        return false;
    }
    if !digits(17..19) {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let rest = &b[i..];
    let in_range =
        |v: &[u8], max: u32| std::str::from_utf8(v).ok().and_then(|t| t.parse::<u32>().ok()).is_some_and(|n| n <= max);
    let fields_ok = in_range(&b[5..7], 12)
        && in_range(&b[8..10], 31)
        && in_range(&b[11..13], 23)
        && in_range(&b[14..16], 59)
        && in_range(&b[17..19], 60);
    let zone_ok = match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && in_range(&[*h1, *h2], 23)
                && in_range(&[*m1, *m2], 59)
        }
        _ => false,
    };
    fields_ok && zone_ok
}

async fn commit(shared: &Arc<Shared>, req: Request<Incoming>, id: &str, plan: &FaultPlan) -> Handled {
    let session = shared.store.session(id)?;
    let digest = parse_digest(req.headers())?;
    let header_str =
        |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let cond =
        CommitConditions { if_match: header_str(header::IF_MATCH), if_none_match: header_str(header::IF_NONE_MATCH) };
    let body = read_json(shared, req).await?;
    let parts = parse_commit_parts(&body)?;
    let attrs = parse_commit_attributes(&body)?;
    match &plan.early {
        Some(FaultAction::CommitPending { retry_after }) => return Ok(accepted(*retry_after)),
        Some(FaultAction::PartsMismatch) => {
            return Err(ApiError::new(
                400,
                "parts_mismatch",
                "The parts in the request do not match the parts uploaded to the session (injected)",
            )
            .into())
        }
        _ => {}
    }
    if shared.store.check_parts(&session, &parts)? {
        return Ok(accepted(Some(1)));
    }
    let for_hash = Arc::clone(&session);
    let whole = tokio::task::spawn_blocking(move || for_hash.whole_sha1())
        .await
        .map_err(|_| ApiError::new(500, "internal_server_error", "hashing task failed"))?
        .map_err(|e| ApiError::new(500, "internal_server_error", format!("storage error: {e}")))?;
    let Some(whole) = whole else {
        return Ok(accepted(Some(1)));
    };
    if whole != digest {
        return Err(ApiError::new(400, "digest_mismatch", "The SHA-1 in the Digest header does not match the file")
            .context(json!({"expected_sha1": hex(&digest), "actual_sha1": hex(&whole)}))
            .into());
    }
    let file = shared.store.commit(&session, &cond, &attrs)?;
    shared.counters.commit();
    if plan.commit_answer_lost {
        // Applied, and the answer is lost: the client sees the connection close.
        return Err(Fail::Withheld);
    }
    Ok(json_response(StatusCode::CREATED, &json!({"entries": [shared.store.file_full_json(&file)], "total_count": 1})))
}

fn file_content(shared: &Arc<Shared>, id: &str) -> Handled {
    let info = shared.store.file(id).ok_or_else(|| ApiError::not_found("Not Found"))?;
    let (tx, body) = body::channel(4);
    match info.stored.clone() {
        Stored::Discarded => {
            return Err(ApiError::not_found("This emulator keeps no file content (--discard-content)").into());
        }
        Stored::Path(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| ApiError::new(500, "internal_server_error", format!("storage error: {e}")))?;
            tokio::task::spawn_blocking(move || {
                let mut offset = 0u64;
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    match file.read_at(&mut buf, offset) {
                        Ok(0) => return,
                        Ok(n) => {
                            buf.truncate(n);
                            offset += n as u64;
                            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
            });
        }
    }
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(parse_content_range("bytes 0-9/20"), Some((0, 9, 20)));
        assert_eq!(parse_content_range("bytes 10-19/20"), Some((10, 19, 20)));
        assert_eq!(parse_content_range("bytes 10-20/20"), None);
        assert_eq!(parse_content_range("bytes 9-8/20"), None);
        assert_eq!(parse_content_range("bytes -1-8/20"), None);
        assert_eq!(parse_content_range("bits 0-9/20"), None);
        assert_eq!(parse_content_range("bytes 0-9/*"), None);
    }

    #[test]
    fn routes() {
        assert_eq!(classify(&Method::POST, "/api/2.0/files/upload_sessions"), Route::CreateSession);
        assert_eq!(classify(&Method::POST, "/api/2.0/files/12/upload_sessions"), Route::CreateVersion("12".into()));
        assert_eq!(classify(&Method::PUT, "/api/2.0/files/upload_sessions/AB"), Route::UploadPart("AB".into()));
        assert_eq!(classify(&Method::GET, "/api/2.0/files/upload_sessions/AB/parts"), Route::ListParts("AB".into()));
        assert_eq!(classify(&Method::POST, "/oauth2/token"), Route::Token);
        assert_eq!(classify(&Method::GET, "/nope"), Route::NotFound);
        assert_eq!(classify(&Method::OPTIONS, "/api/2.0/files/content"), Route::Preflight(None));
        assert_eq!(classify(&Method::OPTIONS, "/2.0/files/content"), Route::Preflight(None));
        assert_eq!(classify(&Method::OPTIONS, "/2.0/files/12/content"), Route::Preflight(Some("12".into())));
        assert_eq!(classify(&Method::GET, "/2.0/files/12"), Route::FileInfo("12".into()));
        assert_eq!(classify(&Method::POST, "/2.0/files/content"), Route::UploadFile(None));
        assert_eq!(classify(&Method::POST, "/2.0/files/12/content"), Route::UploadFile(Some("12".into())));
        assert_eq!(classify(&Method::PUT, "/2.0/files/content"), Route::MethodNotAllowed(Op::Preflight));
    }

    #[test]
    fn rfc3339_dates() {
        for ok in ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05-08:00", "2026-01-02T03:04:05.123+05:30"] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in ["2026-01-02", "2026-13-02T03:04:05Z", "2026-01-02T03:04:05", "2026-01-02T03:04:05.Z", "yesterday"] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
