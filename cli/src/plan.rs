//! `box-upload session plan`: which parts of a file Box holds already, from the SHA-512 of each
//! part on the session's grid.

use crate::failure::{io_failure, Exit, Failure};
use crate::output::print_json;
use box_upload_core::models::{PlanPart, UploadSessionPlan};
use box_upload_core::operations::{GetUploadSession, PlanUploadSession, SessionRef as Session, MAX_PLAN_PARTS};
use box_upload_core::{PartSha512, HASH_CHUNK};
use std::io::Read;
use std::path::Path;

/// Plans `session` for the file at `path`: each part's SHA-512, at most 1000 parts a request,
/// the answers merged into one plan. The part size is `part_size`, else the session's (asked
/// for by id; a session URL needs `--part-size`).
pub(crate) fn session_plan(
    backend: &crate::backend::Backend,
    session: Session,
    path: &Path,
    part_size: Option<u64>,
) -> Result<(), Failure> {
    let failed = |f: Failure| f.context("session plan failed");
    let part_size = match (part_size, &session) {
        (Some(size), _) => size,
        (None, Session::Id(id)) => {
            let s = backend.run(GetUploadSession::by_id(id)).map_err(failed)?;
            s.part_size.ok_or_else(|| Failure::new(Exit::Api, "session plan failed: the session has no part_size"))?
        }
        (None, Session::Url(_)) => {
            return Err(Failure::new(Exit::Usage, "session plan by URL needs --part-size (the session's part_size)"))
        }
    };
    if part_size == 0 {
        return Err(Failure::new(Exit::Usage, "--part-size must be at least 1"));
    }
    let parts = part_digests(path, part_size)?;
    let mut merged = UploadSessionPlan::default();
    for batch in parts.chunks(MAX_PLAN_PARTS) {
        let op = PlanUploadSession::new(session.clone(), batch.to_vec())?;
        let plan = backend.run(op).map_err(failed)?;
        merged.upload_session_id = merged.upload_session_id.or(plan.upload_session_id);
        merged.hits.extend(plan.hits);
        merged.misses.extend(plan.misses);
    }
    print_json(&merged)
}

/// Offset, size and SHA-512 of every part of the file, `part_size` bytes each but the last.
fn part_digests(path: &Path, part_size: u64) -> Result<Vec<PlanPart>, Failure> {
    let mut file = std::fs::File::open(path).map_err(|e| io_failure("cannot open", path, &e))?;
    let mut parts = Vec::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let (mut offset, mut in_part, mut hasher) = (0u64, 0u64, PartSha512::new());
    loop {
        let want = usize::try_from((part_size - in_part).min(HASH_CHUNK as u64)).unwrap_or(HASH_CHUNK);
        let n = file.read(&mut buf[..want]).map_err(|e| io_failure("cannot read", path, &e))?;
        if n > 0 {
            hasher.update(&buf[..n]);
            in_part += n as u64;
        }
        if in_part == part_size || (n == 0 && in_part > 0) {
            let sha512 = std::mem::take(&mut hasher).finish().to_hex();
            parts.push(PlanPart { offset, size: in_part, sha512 });
            offset += in_part;
            in_part = 0;
        }
        if n == 0 {
            break;
        }
    }
    if parts.is_empty() {
        return Err(Failure::new(Exit::Usage, format!("{} is empty: there is nothing to plan", path.display())));
    }
    Ok(parts)
}
