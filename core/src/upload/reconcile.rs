//! Settling a part Box refused as overlapping (409, or 416 `range_overlaps_existing_part`): its
//! answer was lost after Box stored it, so the stored part is looked up and adopted if it is
//! ours, while other parts are still being stored.
//!
//! A part whose sends all failed at the transport after its request may have reached Box is
//! looked up the same way before the run gives up on it: a server that answers a retried part
//! early (416 before reading the body) and closes can make that answer unreadable, so the
//! client sees only a broken connection, every time, for a part Box holds.
//!
//! A full listing cannot be trusted then: Box lists in offset order, so every part stored below
//! the page being read shifts the entries up and `total_count` grows between pages. So only the
//! list positions the refused part can hold are read ([`Probe`]): at least as many parts as we
//! hold acknowledged below it precede it, and at most as many as the plan has below it (parts
//! are `part_size` apart and Box refuses overlaps). Parts stored meanwhile only move it up, never
//! past the last of those positions. New parts go on being sent during the look-up.
//!
//! Bounds, whatever Box answers: a probe reads at most `last - first + 1` positions (every page
//! must hold an entry, or the part is absent), which is at most the parts in flight in a run of
//! ours; no page is asked for past Box's largest offset ([`MAX_LIST_OFFSET`]); and each
//! part is probed at most once, since a probe ends with the part adopted or the run failed. A
//! part is adopted only when the entry at its offset has its size and the SHA-1 of the bytes we
//! sent. `total_count` is not used. An adopted part makes the run list the session before its
//! commit, with nothing in flight, strictly (see `listing`).

use super::{sha1_matches, BigUpload, Endpoint, Job, PartStatus};
use crate::error::{Error, ProtocolError};
use crate::machine::{Event, PartData, RequestKind};
use crate::models::{UploadPart, UploadParts};
use crate::operations::{ListUploadSessionParts, SessionRef, MAX_LIST_LIMIT, MAX_LIST_OFFSET};
use bytes::Bytes;
use http::Response;
use std::time::Instant;

/// The look-up of one refused part: the list positions it can hold, and how far it has read.
#[derive(Debug)]
pub(crate) struct Probe {
    /// The part's index in the plan.
    index: usize,
    /// The part's offset in the file.
    offset: u64,
    /// The first position it can hold (where the look-up started).
    first: u64,
    /// Where the next page starts.
    next: u64,
    /// The last position it can hold.
    last: u64,
    /// Parts per page asked for at most (1..=1000).
    page_limit: u64,
    /// The `limit` of the page asked for last.
    asked: u64,
}

impl Probe {
    /// A look-up of the part `index` at `offset` in the positions `first..=last`, at most
    /// `page_limit` per page. A window that starts past Box's largest offset starts there
    /// instead (one page of 1000 from there still reaches the positions a plan can have).
    pub(crate) fn new(index: usize, offset: u64, first: u64, last: u64, page_limit: u64) -> Self {
        let first = first.min(last).min(MAX_LIST_OFFSET);
        let page_limit = page_limit.clamp(1, MAX_LIST_LIMIT);
        Self { index, offset, first, next: first, last, page_limit, asked: 0 }
    }

    /// The part looked for.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The request for the next page of `session`; fails when it would start past
    /// [`MAX_LIST_OFFSET`].
    pub(crate) fn page(&mut self, session: SessionRef) -> Result<ListUploadSessionParts, ProtocolError> {
        if self.next > MAX_LIST_OFFSET {
            return Err(ProtocolError::ListOffsetTooLarge {
                total_count: self.last + 1,
                limit: self.page_limit,
                offset: self.next,
                max_offset: MAX_LIST_OFFSET,
            });
        }
        self.asked = (self.last - self.next + 1).min(self.page_limit);
        Ok(ListUploadSessionParts {
            session,
            offset: Some(self.next),
            limit: Some(self.asked),
            headers: Default::default(),
        })
    }

    /// Checks the size of the page asked for last, before its entries are looked at.
    pub(crate) fn check_page(&self, page: &UploadParts) -> Result<(), ProtocolError> {
        if page.entries.len() as u64 > self.asked {
            return Err(ProtocolError::PartsListMismatch(format!(
                "a page holds {} entries, more than the limit of {}",
                page.entries.len(),
                self.asked
            )));
        }
        Ok(())
    }

    /// Moves past a page of `entries` entries that did not hold the part: fails when the page is
    /// empty or no position is left where the part could be.
    pub(crate) fn advance(&mut self, entries: usize) -> Result<(), ProtocolError> {
        let absent = |detail: String| ProtocolError::PartConflict {
            offset: self.offset,
            detail: format!("Box refused the part as overlapping but lists no part at its offset ({detail})"),
        };
        if entries == 0 {
            return Err(absent(format!("the page at position {} is empty", self.next)));
        }
        self.next += entries as u64;
        if self.next > self.last {
            return Err(absent(format!("not at positions {} to {}, the only ones it can hold", self.first, self.last)));
        }
        Ok(())
    }
}

impl BigUpload {
    /// A part whose retries are spent on sends that may have reached Box: looked up before the
    /// run fails with `error` (each part at most once; the dispatcher does not send it again).
    pub(super) fn on_part_unanswered(&mut self, index: usize, error: Error) {
        let Some(slot) = self.parts.get_mut(index) else { return self.fail(error) };
        if slot.status != PartStatus::Sending || slot.data.is_none() {
            return self.fail(error);
        }
        slot.status = PartStatus::Conflict;
        slot.unanswered = Some(error);
        self.start_reconcile();
    }

    /// Starts the look-up of the first part Box refused as overlapping, unless a listing runs
    /// (the next one starts when it ends).
    pub(super) fn start_reconcile(&mut self) {
        if self.probe.is_some() || self.lister.is_some() || self.is_over() {
            return;
        }
        let Some(plan) = self.plan else { return };
        let Some(index) = self.parts.iter().position(|p| p.status == PartStatus::Conflict) else { return };
        let Some(planned) = plan.part(index) else { return };
        // Box holds every part we hold acknowledged: at least those precede it.
        let first = self.parts[..index].iter().filter(|p| matches!(p.status, PartStatus::Acked(_))).count() as u64;
        self.probe = Some(Probe::new(index, planned.offset, first, index as u64, self.settings.list_page_size));
        self.submit_probe_page();
    }

    fn submit_probe_page(&mut self) {
        let session = match self.session_ref(Endpoint::ListParts) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let Some(probe) = self.probe.as_mut() else { return };
        match probe.page(session) {
            Ok(op) => self.submit(Job::Reconcile, &op, None),
            Err(e) => self.fail(e.into()),
        }
    }

    pub(super) fn on_reconcile_answer(&mut self, response: Response<Bytes>, now: Instant) {
        let page = match crate::response::parse_json::<UploadParts>(RequestKind::ListParts, response) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        let Some(probe) = self.probe.as_ref() else { return };
        let target = probe.index();
        if let Err(e) = probe.check_page(&page) {
            return self.fail(e.into());
        }
        let entries = page.entries.len();
        // Any refused part listed here is settled now, the one looked for or another.
        for entry in page.entries {
            if let Err(e) = self.settle(entry) {
                return self.fail(e);
            }
        }
        if self.parts.get(target).is_some_and(|p| p.status == PartStatus::Conflict) {
            let Some(probe) = self.probe.as_mut() else { return };
            if let Err(e) = probe.advance(entries) {
                // Not stored: the sends' own failure is what went wrong.
                let unanswered = self.parts.get_mut(target).and_then(|p| p.unanswered.take());
                return self.fail(unanswered.unwrap_or_else(|| e.into()));
            }
            return self.submit_probe_page();
        }
        self.probe = None;
        self.start_reconcile();
        self.maybe_verify(now);
    }

    /// A listed part at the offset of a part Box refused: adopted if it is ours, else the run
    /// fails. Entries at other offsets are left to the listing before the commit.
    fn settle(&mut self, stored: UploadPart) -> Result<(), Error> {
        let Some(plan) = self.plan else { return Ok(()) };
        let Some(planned) = plan.part_at(stored.offset) else { return Ok(()) };
        let slot = &self.parts[planned.index];
        if slot.status != PartStatus::Conflict {
            return Ok(());
        }
        let Some(ours) = slot.data.as_ref().map(PartData::sha1) else { return Ok(()) };
        if stored.size != planned.size || !sha1_matches(stored.sha1.as_deref(), ours) {
            return Err(ProtocolError::PartConflict {
                offset: planned.offset,
                detail: format!(
                    "the stored part has {} bytes and sha1 {}; ours has {} bytes and sha1 {}",
                    stored.size,
                    stored.sha1.as_deref().map_or("(none)".into(), |h| h.chars().take(64).collect::<String>()),
                    planned.size,
                    ours.to_hex()
                ),
            }
            .into());
        }
        self.events.push_back(Event::PartAdopted { offset: planned.offset });
        self.list_before_commit = true;
        self.ack(planned.index, stored);
        Ok(())
    }
}
