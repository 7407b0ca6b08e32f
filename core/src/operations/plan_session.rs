//! `POST /2.0/files/upload_sessions/{id}/plan` (or `session_endpoints.plan`): which of a
//! session's parts Box already holds (box-openapi #616).
//!
//! The answer is checked against the parts asked about, so a caller never acts on a hit or a
//! miss it did not ask for: every part asked about is a hit or a miss exactly once, with the
//! offset, size and SHA-512 sent, and every hit names a `part_id` of Box's form.

use super::{check_id, json_request, with_headers, ExtraHeaders, Operation, SessionRef};
use crate::digest::Sha512Digest;
use crate::error::{Error, InputError, ProtocolError};
use crate::models::{PlanHit, PlanPart, UploadSessionPlan};
use crate::response::parse_json;
use crate::{Config, RequestKind};
use bytes::Bytes;
use http::{Method, Request, Response};
use std::collections::HashMap;

/// The most parts one plan request asks about. Box publishes no limit; this is the size of its
/// largest page of parts, and keeps the answer small (about 250 bytes a part).
pub const MAX_PLAN_PARTS: usize = 1000;

/// Asks Box which of these parts it already holds (the plan of an upload session).
#[derive(Clone, Debug)]
pub struct PlanUploadSession {
    /// The session.
    pub session: SessionRef,
    /// The parts asked about: offset, size and SHA-512 of each, on the session's grid.
    pub parts: Vec<PlanPart>,
    pub(crate) headers: ExtraHeaders,
}

impl PlanUploadSession {
    /// Plans the session with this id.
    pub fn by_id(session_id: impl Into<String>, parts: Vec<PlanPart>) -> Result<Self, InputError> {
        Self::new(SessionRef::Id(session_id.into()), parts)
    }

    /// Plans at this URL (the session's `session_endpoints.plan`).
    pub fn by_url(url: impl Into<String>, parts: Vec<PlanPart>) -> Result<Self, InputError> {
        Self::new(SessionRef::Url(url.into()), parts)
    }

    /// Plans `session`: 1 to [`MAX_PLAN_PARTS`] parts, each offset once, each `sha512` 128 hex
    /// digits.
    pub fn new(session: SessionRef, parts: Vec<PlanPart>) -> Result<Self, InputError> {
        if parts.is_empty() || parts.len() > MAX_PLAN_PARTS {
            return Err(InputError::PlanParts { count: parts.len() });
        }
        let mut seen = std::collections::HashSet::new();
        for part in &parts {
            if Sha512Digest::from_hex(&part.sha512).is_err() || !seen.insert(part.offset) {
                return Err(InputError::PlanParts { count: parts.len() });
            }
        }
        Ok(Self { session, parts, headers: ExtraHeaders::default() })
    }
}

with_headers!(PlanUploadSession);

impl Operation for PlanUploadSession {
    type Output = UploadSessionPlan;

    fn kind(&self) -> RequestKind {
        RequestKind::PlanSession
    }

    fn request(&self, config: &Config) -> Result<Request<Bytes>, Error> {
        let uri = self.session.url(config, "/plan")?;
        let mut request = json_request(Method::POST, uri, &serde_json::json!({ "parts": self.parts }))?;
        self.headers.apply(&mut request);
        Ok(request)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadSessionPlan, Error> {
        let plan: UploadSessionPlan = parse_json(self.kind(), response)?;
        check_plan(&self.session, &self.parts, &plan)?;
        Ok(plan)
    }
}

fn bad(detail: String) -> Error {
    ProtocolError::BadPlan { detail }.into()
}

/// Every part asked about is a hit or a miss exactly once, as sent; nothing else is in the plan.
fn check_plan(session: &SessionRef, asked: &[PlanPart], plan: &UploadSessionPlan) -> Result<(), Error> {
    if let (SessionRef::Id(id), Some(theirs)) = (session, plan.upload_session_id.as_deref()) {
        if theirs != id {
            return Err(bad(format!("it is for session {:?}, not {id}", clip(theirs))));
        }
    }
    let mut pending: HashMap<u64, &PlanPart> = asked.iter().map(|p| (p.offset, p)).collect();
    let answered = plan.hits.iter().map(PlanHit::part).chain(plan.misses.iter().cloned());
    for (i, part) in answered.enumerate() {
        let what = if i < plan.hits.len() { "hit" } else { "miss" };
        let Some(ours) = pending.remove(&part.offset) else {
            let why = if asked.iter().any(|p| p.offset == part.offset) { "twice" } else { "but was not asked about" };
            return Err(bad(format!("{what} at offset {} is answered {why}", part.offset)));
        };
        if part.size != ours.size {
            return Err(bad(format!("{what} at offset {} has size {}, we sent {}", part.offset, part.size, ours.size)));
        }
        let same = Sha512Digest::from_hex(&part.sha512).ok() == Sha512Digest::from_hex(&ours.sha512).ok();
        if !same {
            return Err(bad(format!("{what} at offset {} has sha512 {:?}, not ours", part.offset, clip(&part.sha512))));
        }
    }
    if let Some(offset) = pending.keys().min() {
        return Err(bad(format!("the part at offset {offset} is neither a hit nor a miss")));
    }
    for hit in &plan.hits {
        if check_id("part_id", &hit.part_id).is_err() {
            return Err(bad(format!("hit at offset {} has part_id {:?}", hit.offset, clip(&hit.part_id))));
        }
    }
    Ok(())
}

fn clip(s: &str) -> String {
    s.chars().take(140).collect()
}
