//! A deduplicated upload: parts planned by their SHA-512, only the misses sent.
//!
//! The order, which is right whether Box adds a plan's hits to the session or not (Box does not
//! document how hits are committed):
//! 1. the reading pass computes each part's SHA-512 beside its SHA-1s, on the same chunks while
//!    they are in cache ([`PartBuilder::with_sha512`](crate::PartBuilder::with_sha512));
//! 2. read parts wait for a plan; one plan request at a time names every part waiting (at most
//!    [`MAX_PLAN_PARTS`]);
//! 3. each hit counts as held and its bytes are let go; each miss whose bytes are held is
//!    uploaded, and each miss read ahead (below) is read again, checked against its first SHA-1,
//!    and uploaded;
//! 4. before the commit the session's parts are listed: a hit listed with our offset, size and
//!    SHA-1 is committed as listed; a hit not listed is read again and uploaded (a stream source
//!    cannot be read again: that fails with a clear error); a hit listed with other bytes fails
//!    the upload;
//! 5. the commit names the listed parts and the whole file's SHA-1, as always.
//!
//! Reading ahead. A part read while the bound of parts in flight is not reached is held, bytes
//! and all, until its plan answers (and then until Box holds it). So that reading does not stop
//! on every plan's round trip, the reader may go on past the bound, in order, one part at a
//! time: a part read *ahead* keeps only its SHA-1 and SHA-512 (the whole-file hash has its bytes
//! first) and its bytes are let go at once, so memory stays at about `parts_in_flight + 1`
//! parts. It is read ahead only while
//! - every earlier part has been read and hashed (so at most one read ahead is under way),
//! - the plans so far answered at least as many hits as misses (before the first answer: yes), so
//!   a file that mostly changed is read once, within the bound, and keeps its bytes,
//! - no miss waits to be read again, fewer than [`MAX_PLAN_PARTS`] parts wait for a plan, no plan
//!   has failed, and the source can be read again (not a stream:
//!   [`UploadRequest::source_read_once`](crate::UploadRequest::source_read_once)).
//!
//! Re-reads (misses read ahead, hits the session did not list) are read within the bound, before
//! any new part, without the SHA-512; one that reads other bytes than the first time fails the
//! upload ([`SourceError::Changed`]) before anything of it is sent.
//!
//! A plan that fails (a Box without it: 404; 400; 5xx or a transport failure after the retries;
//! an answer that does not fit the parts asked about) turns the rest into a plain upload: every
//! part waiting, and every later one, is sent (those read ahead are read again first; a part
//! read ahead when its plan failed is kept and sent, one part over the bound for a moment). A plan
//! URL on a host that is not trusted fails the upload before anything is planned.

use super::{BigUpload, Endpoint, Job, PartStatus, Phase};
use crate::digest::{Sha1Digest, Sha512Digest};
use crate::error::{Error, ProtocolError, SourceError};
use crate::models::{PlanPart, UploadPart};
use crate::operations::{Operation, PlanUploadSession, MAX_PLAN_PARTS};
use bytes::Bytes;
use http::Response;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// What deduplication did in one upload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DedupeStats {
    /// Parts named in plans.
    pub parts_planned: u64,
    /// Parts the plans answered as hits.
    pub hits: u64,
    /// Parts the plans answered as misses.
    pub misses: u64,
    /// Hits the session did not list after all, read again and uploaded.
    pub hits_uploaded: u64,
    /// Parts read ahead of the bound of parts in flight (their bytes let go) that had to be
    /// uploaded after all, read again: the plan's misses among them, and every one waiting for a
    /// plan when the plan failed.
    pub misses_reread: u64,
    /// Why the plan was given up for a plain upload, when it was.
    pub fallback: Option<String>,
}

/// The deduplication state of a big upload.
#[derive(Debug, Default)]
pub(super) struct Dedupe {
    /// Off once a plan failed: the rest is a plain upload.
    active: bool,
    /// Read parts waiting for a plan: index and SHA-512.
    waiting: Vec<(usize, Sha512Digest)>,
    /// The plan in flight: the request (to check its answer) and the parts it names.
    planning: Option<(PlanUploadSession, Vec<usize>)>,
    /// Hits not yet seen in a listing, with our SHA-1 of each.
    unconfirmed: BTreeSet<usize>,
    /// Parts read ahead (their bytes let go), waiting for a plan or for its answer: their SHA-1.
    let_go: HashMap<usize, Sha1Digest>,
    /// Parts to read again and upload (hits the session did not list, misses read ahead), with
    /// the SHA-1 they had and why.
    reread: VecDeque<usize>,
    rereading: HashMap<usize, (Sha1Digest, Reread)>,
    stats: DedupeStats,
}

/// Why a part is read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reread {
    /// A hit the session did not list.
    Hit,
    /// A part read ahead whose bytes are needed after all (a miss, or a failed plan).
    Ahead,
}

impl Dedupe {
    pub(super) fn new() -> Self {
        Self { active: true, ..Self::default() }
    }

    /// Whether reads should compute the SHA-512 (only while plans are still to be made).
    pub(super) fn wants_sha512(&self) -> bool {
        self.active
    }

    /// Whether `index` is a hit not confirmed by a listing yet (kept out of checkpoints: a
    /// resume must not take it as held).
    pub(super) fn is_unconfirmed(&self, index: usize) -> bool {
        self.unconfirmed.contains(&index)
    }

    pub(super) fn stats(&self) -> DedupeStats {
        self.stats.clone()
    }

    /// Whether `index` is to be read again (its read needs no SHA-512).
    pub(super) fn is_reread(&self, index: usize) -> bool {
        self.rereading.contains_key(&index)
    }

    /// Queues `index` to be read again, checked against `sha1`.
    fn queue_reread(&mut self, index: usize, sha1: Sha1Digest, why: Reread) {
        self.rereading.insert(index, (sha1, why));
        self.reread.push_back(index);
    }
}

impl BigUpload {
    /// What deduplication did, for an upload made with
    /// [`UploadRequest::dedupe`](crate::UploadRequest::dedupe).
    #[must_use]
    pub fn dedupe_stats(&self) -> Option<DedupeStats> {
        self.dedupe.as_ref().map(Dedupe::stats)
    }

    /// A part just read: held for a plan (`true`) or to be sent now (`false`). A part read again
    /// because Box did not keep its hit must have the bytes it had.
    pub(super) fn hold_for_plan(&mut self, index: usize, data: &crate::machine::PartData) -> Result<bool, Error> {
        let Some(dedupe) = self.dedupe.as_mut() else { return Ok(false) };
        if let Some((sha1, why)) = dedupe.rereading.remove(&index) {
            if sha1 != data.sha1() {
                let offset = self.plan.and_then(|p| p.part(index)).map_or(0, |p| p.offset);
                return Err(
                    SourceError::Changed(format!("the part at offset {offset} changed between two reads")).into()
                );
            }
            match why {
                Reread::Hit => dedupe.stats.hits_uploaded += 1,
                Reread::Ahead => dedupe.stats.misses_reread += 1,
            }
            return Ok(false);
        }
        if !dedupe.active {
            return Ok(false);
        }
        // A driver that did not use the machine's builder: hash here.
        let sha512 = data.sha512().unwrap_or_else(|| Sha512Digest::of(data.bytes()));
        dedupe.waiting.push((index, sha512));
        Ok(true)
    }

    /// Whether the next part may be read ahead of the bound of parts in flight (the rule is in
    /// the module's doc).
    pub(super) fn may_read_ahead(&self) -> bool {
        let Some(dedupe) = &self.dedupe else { return false };
        self.settings.read_ahead
            && dedupe.active
            && self.hashed_upto == self.next_read
            && dedupe.stats.hits >= dedupe.stats.misses
            && dedupe.reread.is_empty()
            && dedupe.waiting.len() < MAX_PLAN_PARTS
    }

    /// A part read ahead: it waits for a plan with its digests only, its bytes let go once the
    /// whole-file hash has them (`None`); or, when plans are over (one failed while it was read),
    /// its bytes are given back (`Some`), to be held and sent like any part's.
    pub(super) fn keep_digests(
        &mut self,
        index: usize,
        data: crate::machine::PartData,
    ) -> Option<crate::machine::PartData> {
        let Some(dedupe) = self.dedupe.as_mut().filter(|d| d.active) else { return Some(data) };
        let sha512 = data.sha512().unwrap_or_else(|| Sha512Digest::of(data.bytes()));
        dedupe.waiting.push((index, sha512));
        dedupe.let_go.insert(index, data.sha1());
        self.parts[index].data = Some(data);
        // Every earlier part is hashed (a read ahead is offered only then): this one is now.
        self.advance_hash();
        let slot = &mut self.parts[index];
        if slot.hashed {
            slot.data = None;
        } else {
            // Not reached; if it were, the part is held like one read within the bound.
            self.holding += 1;
            if let Some(dedupe) = self.dedupe.as_mut() {
                dedupe.let_go.remove(&index);
            }
        }
        None
    }

    /// Sends a plan of the parts waiting, when none is in flight.
    pub(super) fn flush_plan(&mut self) {
        if self.is_over() {
            return;
        }
        let Some(plan) = self.plan else { return };
        let Some(dedupe) = self.dedupe.as_mut() else { return };
        if !dedupe.active || dedupe.planning.is_some() || dedupe.waiting.is_empty() {
            return;
        }
        let take = dedupe.waiting.len().min(MAX_PLAN_PARTS);
        let batch: Vec<(usize, Sha512Digest)> = dedupe.waiting.drain(..take).collect();
        let parts: Vec<PlanPart> = batch
            .iter()
            .filter_map(|(i, sha512)| {
                plan.part(*i).map(|p| PlanPart { offset: p.offset, size: p.size, sha512: sha512.to_hex() })
            })
            .collect();
        let indexes: Vec<usize> = batch.into_iter().map(|(i, _)| i).collect();
        let session = match self.session_ref(Endpoint::Plan) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        match PlanUploadSession::new(session, parts) {
            Ok(op) => {
                self.submit(Job::Plan, &op, None);
                if let Some(dedupe) = self.dedupe.as_mut() {
                    dedupe.stats.parts_planned += indexes.len() as u64;
                    dedupe.planning = Some((op, indexes));
                }
            }
            Err(e) => self.fall_back(&Error::from(e), indexes),
        }
    }

    pub(super) fn on_plan_answer(&mut self, response: Response<Bytes>, now: std::time::Instant) {
        let Some((op, indexes)) = self.dedupe.as_mut().and_then(|d| d.planning.take()) else { return };
        let answer = match op.parse(response) {
            Ok(answer) => answer,
            Err(e) => return self.fall_back(&e, indexes),
        };
        let Some(plan) = self.plan else { return };
        // The answer fits the parts asked about (checked by `parse`): each is a hit or a miss.
        let hit_ids: HashMap<u64, String> = answer.hits.into_iter().map(|h| (h.offset, h.part_id)).collect();
        for index in indexes {
            let Some(planned) = plan.part(index) else { continue };
            let Some(dedupe) = self.dedupe.as_mut() else { return };
            // A part read ahead has only its digests; the others have their bytes.
            let held = self.parts[index].data.as_ref().map(crate::machine::PartData::sha1);
            let ahead = dedupe.let_go.remove(&index);
            let Some(sha1) = held.or(ahead) else {
                let detail = format!("the part at offset {} has neither its bytes nor its SHA-1", planned.offset);
                return self.fail(SourceError::Io(detail).into());
            };
            match hit_ids.get(&planned.offset) {
                Some(part_id) => {
                    let part = UploadPart {
                        part_id: part_id.clone(),
                        offset: planned.offset,
                        size: planned.size,
                        sha1: Some(sha1.to_hex()),
                    };
                    dedupe.stats.hits += 1;
                    dedupe.unconfirmed.insert(index);
                    self.ack(index, part);
                }
                None if held.is_some() => {
                    dedupe.stats.misses += 1;
                    self.send_part(index);
                }
                None => {
                    dedupe.stats.misses += 1;
                    dedupe.queue_reread(index, sha1, Reread::Ahead);
                }
            }
        }
        self.flush_plan();
        // The last hits may complete the upload.
        self.maybe_verify(now);
    }

    /// The plan of `indexes` failed: they are sent, with every part waiting and every later one.
    pub(super) fn fall_back(&mut self, error: &Error, mut indexes: Vec<usize>) {
        let Some(dedupe) = self.dedupe.as_mut() else { return };
        dedupe.active = false;
        dedupe.stats.fallback.get_or_insert_with(|| error.to_string());
        indexes.extend(dedupe.planning.take().map(|(_, i)| i).unwrap_or_default());
        indexes.extend(dedupe.waiting.drain(..).map(|(i, _)| i));
        indexes.sort_unstable();
        for index in indexes {
            if self.parts.get(index).is_some_and(|s| s.data.is_some()) {
                self.send_part(index);
            } else if let Some(dedupe) = self.dedupe.as_mut() {
                // Read ahead: its bytes are read again (and checked) within the bound.
                if let Some(sha1) = dedupe.let_go.remove(&index) {
                    dedupe.queue_reread(index, sha1, Reread::Ahead);
                }
            }
        }
    }

    /// The listing before the commit, for the hits not confirmed yet: `Ok(true)` when every hit
    /// is listed as ours (then committed as listed), `Ok(false)` when some must be uploaded after
    /// all (they are read again; the listing is made again once they are stored).
    pub(super) fn confirm_hits(&mut self, entries: &[UploadPart]) -> Result<bool, Error> {
        let Some(plan) = self.plan else { return Ok(true) };
        let Some(dedupe) = self.dedupe.as_mut() else { return Ok(true) };
        let unconfirmed = std::mem::take(&mut dedupe.unconfirmed);
        let mut missing = Vec::new();
        for index in unconfirmed {
            let (Some(planned), PartStatus::Acked(ours)) = (plan.part(index), &self.parts[index].status) else {
                continue;
            };
            let ours = ours.clone();
            match entries.iter().find(|e| e.offset == planned.offset) {
                Some(listed) => {
                    let same_sha = matches!((listed.sha1.as_deref(), ours.sha1.as_deref()),
                        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
                    if listed.size != planned.size || !same_sha {
                        return Err(ProtocolError::PartsListMismatch(format!(
                            "the plan answered the part at offset {} as held, but the session lists size {} sha1 {} there, not ours (sha1 {})",
                            planned.offset,
                            listed.size,
                            listed.sha1.as_deref().unwrap_or("(none)"),
                            ours.sha1.as_deref().unwrap_or("(none)"),
                        ))
                        .into());
                    }
                    self.parts[index].status = PartStatus::Acked(listed.clone());
                }
                None => missing.push((index, planned.size, ours)),
            }
        }
        if missing.is_empty() {
            return Ok(true);
        }
        for (index, size, ours) in missing {
            self.parts[index].status = PartStatus::Pending;
            self.progress.parts_acknowledged -= 1;
            self.progress.bytes_acknowledged -= size;
            if let Some(dedupe) = self.dedupe.as_mut() {
                let sha1 = ours.sha1.as_deref().and_then(|h| Sha1Digest::from_hex(h).ok());
                match sha1 {
                    Some(sha1) => dedupe.queue_reread(index, sha1, Reread::Hit),
                    None => dedupe.reread.push_back(index),
                }
            }
        }
        self.phase = Phase::Uploading;
        self.emit_progress();
        Ok(false)
    }

    /// The next hit to read again, if any.
    pub(super) fn next_reread(&mut self) -> Option<usize> {
        self.dedupe.as_mut()?.reread.pop_front()
    }
}
