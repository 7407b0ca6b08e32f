//! The plan of an upload session (`POST /2.0/files/upload_sessions/{id}/plan`): which of the
//! parts asked about the emulator holds already.
//!
//! The rule: a part is a **hit** when the session is for a new version of a file, that file's
//! current version has its content stored (not `--discard-content`), the part lies inside it,
//! and the bytes of that version at the part's offset and size have the SHA-512 asked about.
//! Every other part is a **miss**. A part the session holds already is a hit with its own
//! `part_id`.
//!
//! What happens to hits depends on the [`PlanMode`]: by default each hit is added to the session
//! as a stored part (its bytes copied from the earlier version, a new `part_id`, listed by list
//! parts and committed like an uploaded part); with [`PlanMode::HitsNotAdded`] the answer is the
//! same but nothing is added, so a client must find the hits missing from the listing and upload
//! them; with [`PlanMode::Off`] the route answers 404 and `session_endpoints` has no `plan`, as a
//! Box without the plan would.
//!
//! A request must name 1 to 1000 parts, each once, each on the session's grid (offset a multiple
//! of `part_size`, size what the grid gives there) with a 128-hex-digit `sha512`; anything else
//! is 400 `bad_request`.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use box_upload_core::{FileHasher, PartSha512, Sha512Digest};
use bytes::Bytes;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::sessions::{Session, Target};
use super::storage::Stored;
use super::Shared;
use crate::body::hex;

/// How the emulator answers the plan of an upload session (see the module docs for the rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlanMode {
    /// Hits are added to the session as stored parts (the default).
    #[default]
    AddHits,
    /// Hits are answered but not added to the session: list parts shows only uploaded parts.
    HitsNotAdded,
    /// No plan: 404, and no `plan` URL in `session_endpoints`.
    Off,
}

/// The most parts one plan request may name.
const MAX_PLAN_PARTS: usize = 1000;

/// The session's JSON, without the `plan` endpoint when the plan is off.
pub(crate) fn session_json(shared: &Shared, session: &Session) -> Value {
    let mut value = session.to_json(&shared.endpoint_base());
    if shared.config.plan_mode == PlanMode::Off {
        if let Some(endpoints) = value.get_mut("session_endpoints").and_then(Value::as_object_mut) {
            endpoints.remove("plan");
        }
    }
    value
}

struct Asked {
    offset: u64,
    size: u64,
    sha512: String,
    digest: Sha512Digest,
}

/// Answers a plan request's JSON body for `session`.
pub(crate) async fn answer(shared: &Arc<Shared>, session: Arc<Session>, body: &Value) -> Result<Value, ApiError> {
    let asked = parse_parts(&session, body)?;
    let previous = match &session.target {
        Target::NewVersion { file_id, .. } => shared.store.file(file_id).and_then(|f| match f.stored {
            Stored::Path(path) => Some((path, f.size)),
            Stored::Discarded => None,
        }),
        Target::NewFile { .. } => None,
    };
    let mode = shared.config.plan_mode;
    let for_task = Arc::clone(shared);
    let session_id = session.id.clone();
    let (hits, misses) = tokio::task::spawn_blocking(move || classify(&for_task, &session, &asked, previous, mode))
        .await
        .map_err(|_| ApiError::new(500, "internal_server_error", "plan task failed"))?
        .map_err(|e| ApiError::new(500, "internal_server_error", format!("storage error: {e}")))?;
    Ok(json!({"upload_session_id": session_id, "hits": hits, "misses": misses}))
}

fn parse_parts(session: &Session, body: &Value) -> Result<Vec<Asked>, ApiError> {
    let Some(parts) = body.get("parts").and_then(Value::as_array) else {
        return Err(ApiError::bad_request("parts is required: an array of {offset, size, sha512}"));
    };
    if parts.is_empty() || parts.len() > MAX_PLAN_PARTS {
        return Err(ApiError::bad_request(format!("parts must hold 1 to {MAX_PLAN_PARTS} entries")));
    }
    let mut seen = std::collections::HashSet::new();
    let mut asked = Vec::with_capacity(parts.len());
    for part in parts {
        let offset = part.get("offset").and_then(Value::as_u64);
        let size = part.get("size").and_then(Value::as_u64);
        let sha512 = part.get("sha512").and_then(Value::as_str);
        let (Some(offset), Some(size), Some(sha512)) = (offset, size, sha512) else {
            return Err(ApiError::bad_request("each part needs offset, size and sha512"));
        };
        let on_grid = offset % session.part_size == 0
            && offset < session.file_size
            && size == session.part_size.min(session.file_size - offset);
        if !on_grid {
            return Err(ApiError::bad_request("a part is not on the session's grid")
                .context(json!({"offset": offset, "size": size, "part_size": session.part_size})));
        }
        let Ok(digest) = Sha512Digest::from_hex(sha512) else {
            return Err(ApiError::bad_request("sha512 must be 128 hex digits").context(json!({"offset": offset})));
        };
        if !seen.insert(offset) {
            return Err(ApiError::bad_request("a part is named twice").context(json!({"offset": offset})));
        }
        asked.push(Asked { offset, size, sha512: sha512.to_owned(), digest });
    }
    Ok(asked)
}

/// Hits and misses, in the order asked; hits added to the session unless the mode says not.
/// Blocking: reads the earlier version and writes the session's storage.
fn classify(
    shared: &Shared,
    session: &Arc<Session>,
    asked: &[Asked],
    previous: Option<(std::path::PathBuf, u64)>,
    mode: PlanMode,
) -> io::Result<(Vec<Value>, Vec<Value>)> {
    let (mut hits, mut misses) = (Vec::new(), Vec::new());
    let file = match &previous {
        Some((path, _)) => Some(std::fs::File::open(path)?),
        None => None,
    };
    let previous_size = previous.as_ref().map_or(0, |(_, size)| *size);
    let mut buf = Vec::new();
    let mut added = false;
    for part in asked {
        let hit = |part_id: &str| json!({"offset": part.offset, "size": part.size, "sha512": part.sha512, "part_id": part_id});
        if let Some(held) = session.parts().into_iter().find(|p| p.offset == part.offset && p.size == part.size) {
            hits.push(hit(&held.part_id));
            continue;
        }
        let Some(file) = file.as_ref().filter(|_| part.offset + part.size <= previous_size) else {
            misses.push(json!({"offset": part.offset, "size": part.size, "sha512": part.sha512}));
            continue;
        };
        // The whole-file hash is carried over a hit that continues it (parts mostly come in
        // order), so the session need not read the part back to hash it.
        let carry = if mode == PlanMode::AddHits { session.prefix_at(part.offset) } else { None };
        let Some((sha1, carried)) = read_if_same(file, part, &mut buf, carry)? else {
            misses.push(json!({"offset": part.offset, "size": part.size, "sha512": part.sha512}));
            continue;
        };
        let part_id = shared.store.random_hex(8);
        if mode == PlanMode::AddHits {
            // A range being uploaded or stored meanwhile keeps its own part: this hit is then
            // answered with a part id the session does not hold, as a Box that lost the race might.
            if let Ok(reservation) = session.reserve(part.offset, part.size) {
                let mut frames = Vec::new();
                let bytes = Bytes::from(std::mem::take(&mut buf));
                session.data.write_frame(&mut frames, part.offset, 0, &bytes)?;
                if frames.is_empty() {
                    // Written to the session's file: the buffer is ours again.
                    buf = Vec::from(bytes);
                }
                if session.store_verified(reservation, part_id.clone(), sha1, frames, carried).is_ok() {
                    added = true;
                }
            }
        }
        hits.push(hit(&part_id));
    }
    if added {
        session.advance_prefix()?;
    }
    Ok((hits, misses))
}

/// Reads the earlier version's bytes of `part` into `buf`; their SHA-1 (hex) when their SHA-512
/// is the one asked about, with `whole` (the session's whole-file hash standing at the part)
/// carried over them. The SHA-512 runs on a second thread beside the SHA-1s: a plan's parts are
/// checked about twice as fast, as a Box would not make a client wait on one core.
fn read_if_same(
    file: &std::fs::File,
    part: &Asked,
    buf: &mut Vec<u8>,
    mut whole: Option<FileHasher>,
) -> io::Result<Option<(String, Option<FileHasher>)>> {
    const CHUNK: usize = 256 * 1024;
    let len = usize::try_from(part.size).map_err(|_| io::Error::other("part too large"))?;
    buf.resize(len, 0);
    for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
        file.read_exact_at(chunk, part.offset + (i * CHUNK) as u64)?;
    }
    let bytes: &[u8] = buf;
    let (sha512, sha1) = std::thread::scope(|scope| {
        let sha512 = scope.spawn(|| {
            let mut sha512 = PartSha512::new();
            bytes.chunks(CHUNK).for_each(|chunk| sha512.update(chunk));
            sha512.finish()
        });
        let mut sha1 = FileHasher::new();
        for chunk in bytes.chunks(CHUNK) {
            match &mut whole {
                Some(whole) => sha1.update_pair(whole, chunk),
                None => sha1.update(chunk),
            }
        }
        // A thread that panicked gives a digest that matches nothing: a miss.
        (sha512.join().ok(), sha1.finish())
    });
    Ok((sha512 == Some(part.digest)).then(|| (hex(&sha1.0), whole)))
}
