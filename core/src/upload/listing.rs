//! Following list-parts pages to the end, without trusting `total_count` blindly ([`Lister`],
//! shared with [`ListAllParts`](crate::ListAllParts)), and what the big upload does with a whole
//! listing: learn the parts Box holds on resume, verify every part before the commit when some
//! part was not learnt from its own answer (a resume, a look-up, a plan's hit). Both run
//! with none of our parts in flight, so the listing is strict; a part whose answer was lost is
//! looked up while others are stored, by `reconcile`.

use super::{BigUpload, Endpoint, Job, ListPurpose, Phase};
use crate::error::{Error, ProtocolError};
use crate::machine::RequestKind;
use crate::models::{UploadPart, UploadParts};
use crate::operations::{ListUploadSessionParts, SessionRef, MAX_LIST_LIMIT, MAX_LIST_OFFSET};
use bytes::Bytes;
use http::Response;
use std::time::Instant;

/// What one more page gave.
#[derive(Debug)]
pub(crate) enum ListOutcome {
    /// Ask for the next page.
    More,
    /// Every part, as listed.
    Done(Vec<UploadPart>),
}

/// Collects the pages of one listing. Its rules: every page has a `total_count`, the same on
/// every page and at most `max_parts`; a page holds at most `limit` entries; the pages together
/// never hold more than `total_count`; an empty page before the total is reached is an error;
/// and no page is asked for past Box's largest offset ([`MAX_LIST_OFFSET`]): a listing that would
/// need one fails as soon as that is known. So a listing ends after at most
/// `MAX_LIST_OFFSET + 1` pages, whatever Box answers.
#[derive(Debug)]
pub(crate) struct Lister {
    limit: u64,
    max_parts: u64,
    collected: Vec<UploadPart>,
    total: Option<u64>,
}

impl Lister {
    /// A listing of a session that can hold at most `max_parts` parts, `limit` per page (cut to
    /// 1..=1000).
    pub(crate) fn new(limit: u64, max_parts: u64) -> Self {
        Self { limit: limit.clamp(1, MAX_LIST_LIMIT), max_parts, collected: Vec::new(), total: None }
    }

    /// Where the next page starts.
    pub(crate) fn next_offset(&self) -> u64 {
        self.collected.len() as u64
    }

    /// Parts per page.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The request for the next page of `session`.
    pub(crate) fn page(&self, session: SessionRef) -> ListUploadSessionParts {
        ListUploadSessionParts {
            session,
            offset: Some(self.next_offset()),
            limit: Some(self.limit),
            headers: Default::default(),
        }
    }

    /// Takes the page asked for last.
    pub(crate) fn add_page(&mut self, page: UploadParts) -> Result<ListOutcome, ProtocolError> {
        let total =
            page.total_count.ok_or_else(|| ProtocolError::PartsListMismatch("a page has no total_count".into()))?;
        if let Some(previous) = self.total {
            if previous != total {
                return Err(ProtocolError::PartsListMismatch(format!(
                    "total_count changed from {previous} to {total} between pages"
                )));
            }
        }
        if total > self.max_parts {
            return Err(ProtocolError::PartsListMismatch(format!(
                "total_count {total} is more than the session's {} parts",
                self.max_parts
            )));
        }
        self.total = Some(total);
        if page.entries.len() as u64 > self.limit {
            return Err(ProtocolError::PartsListMismatch(format!(
                "a page holds {} entries, more than the limit of {}",
                page.entries.len(),
                self.limit
            )));
        }
        let empty = page.entries.is_empty();
        self.collected.extend(page.entries);
        let have = self.collected.len() as u64;
        if have > total {
            return Err(ProtocolError::PartsListMismatch(format!(
                "the pages hold {have} parts, total_count says {total}"
            )));
        }
        if have == total {
            return Ok(ListOutcome::Done(std::mem::take(&mut self.collected)));
        }
        if empty {
            return Err(ProtocolError::PartsListMismatch(format!(
                "total_count says {total} parts, but the page at offset {have} is empty"
            )));
        }
        // Even if every page from here is full, the last one starts here: past Box's largest
        // offset, the listing cannot be finished.
        let last_page = have + (total - 1 - have) / self.limit * self.limit;
        if last_page > MAX_LIST_OFFSET {
            return Err(ProtocolError::ListOffsetTooLarge {
                total_count: total,
                limit: self.limit,
                offset: last_page,
                max_offset: MAX_LIST_OFFSET,
            });
        }
        Ok(ListOutcome::More)
    }
}

impl BigUpload {
    pub(super) fn start_list(&mut self, purpose: ListPurpose) {
        if self.lister.is_some() || self.probe.is_some() {
            return;
        }
        let Some(plan) = self.plan else { return };
        let lister = Lister::new(self.settings.list_page_size, plan.len() as u64);
        self.lister = Some((lister, purpose));
        self.submit_list_page();
    }

    fn submit_list_page(&mut self) {
        let Some((lister, _)) = &self.lister else { return };
        let session = match self.session_ref(Endpoint::ListParts) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let op = lister.page(session);
        self.submit(Job::List, &op, None);
    }

    pub(super) fn on_list_answer(&mut self, response: Response<Bytes>, now: Instant) {
        let page = match crate::response::parse_json::<crate::models::UploadParts>(RequestKind::ListParts, response) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        let Some((lister, purpose)) = self.lister.as_mut() else { return };
        let purpose = *purpose;
        match lister.add_page(page) {
            Err(e) => self.fail(e.into()),
            Ok(ListOutcome::More) => self.submit_list_page(),
            Ok(ListOutcome::Done(entries)) => {
                self.lister = None;
                if purpose == ListPurpose::Verify {
                    // A deduplicated upload's hits are committed as listed, or uploaded after all.
                    match self.confirm_hits(&entries) {
                        Err(e) => return self.fail(e),
                        Ok(false) => return,
                        Ok(true) => {}
                    }
                }
                let result = match purpose {
                    ListPurpose::Resume => self.adopt_resumed(entries),
                    ListPurpose::Verify => self.verify(entries),
                };
                if let Err(e) = result {
                    return self.fail(e);
                }
                match purpose {
                    ListPurpose::Resume => self.phase = Phase::Uploading,
                    ListPurpose::Verify => self.commit(now, None),
                }
            }
        }
    }

    fn verify(&mut self, entries: Vec<UploadPart>) -> Result<(), Error> {
        let ours = self.acked_parts();
        if entries.len() != ours.len() {
            return Err(ProtocolError::PartsListMismatch(format!(
                "Box lists {} parts, we uploaded {}",
                entries.len(),
                ours.len()
            ))
            .into());
        }
        let mut listed: Vec<&UploadPart> = entries.iter().collect();
        listed.sort_by_key(|p| p.offset);
        for (theirs, ours) in listed.iter().zip(&ours) {
            let same_sha = match (theirs.sha1.as_deref(), ours.sha1.as_deref()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            if theirs.offset != ours.offset || theirs.size != ours.size || !same_sha {
                return Err(ProtocolError::PartsListMismatch(format!(
                    "Box lists offset {} size {} sha1 {}, we uploaded offset {} size {} sha1 {}",
                    theirs.offset,
                    theirs.size,
                    theirs.sha1.as_deref().unwrap_or("(none)"),
                    ours.offset,
                    ours.size,
                    ours.sha1.as_deref().unwrap_or("(none)")
                ))
                .into());
            }
        }
        Ok(())
    }

    /// When every part is acknowledged, the source is known to end where it should and the digest
    /// is complete: commit, after listing the parts to check them when some part Box holds was
    /// not learnt from its own answer (see `list_before_commit`).
    pub(super) fn maybe_verify(&mut self, now: Instant) {
        if self.phase != Phase::Uploading || self.lister.is_some() || self.probe.is_some() || self.is_over() {
            return;
        }
        let all_acked = self.progress.parts_acknowledged == self.parts.len() as u64;
        if all_acked && self.eof_checked == Some(true) && self.digest.is_some() {
            self.phase = Phase::Committing;
            if self.list_before_commit {
                self.start_list(ListPurpose::Verify);
            } else {
                self.commit(now, None);
            }
        }
    }
}
