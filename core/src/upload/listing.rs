//! Following list-parts pages to the end, without trusting `total_count` blindly.

use crate::error::ProtocolError;
use crate::models::{UploadPart, UploadParts};

/// What one more page gave.
#[derive(Debug)]
pub(super) enum ListOutcome {
    /// Ask for the next page.
    More,
    /// Every part, as listed.
    Done(Vec<UploadPart>),
}

/// Collects the pages of one listing.
#[derive(Debug)]
pub(super) struct Lister {
    limit: u64,
    max_parts: u64,
    collected: Vec<UploadPart>,
    total: Option<u64>,
}

impl Lister {
    /// A listing of a session that can hold at most `max_parts` parts, `limit` per page.
    pub(super) fn new(limit: u64, max_parts: u64) -> Self {
        Self { limit: limit.clamp(1, crate::operations::MAX_LIST_LIMIT), max_parts, collected: Vec::new(), total: None }
    }

    pub(super) fn next_offset(&self) -> u64 {
        self.collected.len() as u64
    }

    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    pub(super) fn add_page(&mut self, page: UploadParts) -> Result<ListOutcome, ProtocolError> {
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
        Ok(ListOutcome::More)
    }
}
