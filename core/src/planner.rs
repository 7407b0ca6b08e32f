//! Splits a file into the parts a session asks for.
//!
//! The plan comes from the session's `part_size`, never from an assumed 8 MiB: every part starts at
//! a multiple of `part_size` and is `part_size` long, except the last, which may be shorter.

use crate::content_range::ContentRange;
use crate::models::UploadSession;

/// The smallest file Box accepts in an upload session.
pub const MIN_FILE_SIZE: u64 = 20_000_000;

/// The most parts a plan may hold: what Box's list-parts paging can reach (`offset` at most 10,000,
/// pages of at most 1,000), since the upload lists every part before committing. Box raises
/// `part_size` for big files, so real sessions stay far below; a hostile `part_size` is refused
/// before anything is allocated for it.
pub const MAX_PARTS: u64 = 11_000;

/// The parts of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    file_size: u64,
    part_size: u64,
    parts: u64,
}

/// One part of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlannedPart {
    /// The part's position, from 0.
    pub index: usize,
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

impl PlannedPart {
    /// The part's `Content-Range` in a file of `file_size` bytes.
    pub fn content_range(&self, file_size: u64) -> ContentRange {
        ContentRange { first: self.offset, last: self.offset + self.size - 1, total: file_size }
    }
}

impl PartPlan {
    /// Plans `file_size` bytes in parts of `part_size`.
    pub fn new(file_size: u64, part_size: u64) -> Result<Self, PlanError> {
        if file_size == 0 {
            return Err(PlanError::EmptyFile);
        }
        if part_size == 0 {
            return Err(PlanError::ZeroPartSize);
        }
        let parts = file_size.div_ceil(part_size);
        if parts > MAX_PARTS {
            return Err(PlanError::TooManyParts { parts });
        }
        Ok(Self { file_size, part_size, parts })
    }

    /// Plans a file for a session, checking what the session promises: `part_size > 0`, a
    /// `total_parts`, and `part_size × total_parts ≥ file_size`.
    pub fn for_session(file_size: u64, session: &UploadSession) -> Result<Self, PlanError> {
        let part_size = session.part_size.ok_or(PlanError::MissingPartSize)?;
        let total_parts = session.total_parts.ok_or(PlanError::MissingTotalParts)?;
        let plan = Self::new(file_size, part_size)?;
        let capacity = part_size.saturating_mul(total_parts);
        if capacity < file_size {
            return Err(PlanError::SessionTooSmall { part_size, total_parts, file_size });
        }
        if total_parts != plan.parts {
            return Err(PlanError::TotalPartsMismatch { total_parts, planned: plan.parts });
        }
        Ok(plan)
    }

    /// The file size.
    #[must_use]
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The part size.
    #[must_use]
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// How many parts.
    #[must_use]
    pub fn len(&self) -> usize {
        // Bounded by MAX_PARTS, so it fits.
        self.parts as usize
    }

    /// Whether the plan has no parts (never, for a valid plan).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts == 0
    }

    /// Part `index`, if there is one.
    #[must_use]
    pub fn part(&self, index: usize) -> Option<PlannedPart> {
        let i = index as u64;
        if i >= self.parts {
            return None;
        }
        let offset = i * self.part_size;
        let size = self.part_size.min(self.file_size - offset);
        Some(PlannedPart { index, offset, size })
    }

    /// The part that starts at `offset`, if one does.
    #[must_use]
    pub fn part_at(&self, offset: u64) -> Option<PlannedPart> {
        if !offset.is_multiple_of(self.part_size) {
            return None;
        }
        usize::try_from(offset / self.part_size).ok().and_then(|i| self.part(i))
    }

    /// Every part, in file order.
    pub fn iter(&self) -> impl Iterator<Item = PlannedPart> + '_ {
        (0..self.len()).filter_map(|i| self.part(i))
    }
}

/// A session whose numbers cannot describe the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A file of zero bytes.
    #[error("the file is empty")]
    EmptyFile,
    /// `part_size` of zero.
    #[error("the session's part_size is 0")]
    ZeroPartSize,
    /// The session has no `part_size`.
    #[error("the session has no part_size")]
    MissingPartSize,
    /// The session has no `total_parts`.
    #[error("the session has no total_parts")]
    MissingTotalParts,
    /// More parts than any real session has.
    #[error("the plan would have {parts} parts, more than {MAX_PARTS}")]
    TooManyParts {
        /// How many parts it would take.
        parts: u64,
    },
    /// `part_size × total_parts` is less than the file.
    #[error("the session holds {total_parts} parts of {part_size} bytes, less than the file's {file_size} bytes")]
    SessionTooSmall {
        /// The session's part size.
        part_size: u64,
        /// The session's part count.
        total_parts: u64,
        /// The file size.
        file_size: u64,
    },
    /// `total_parts` is not the number of `part_size` parts the file needs.
    #[error("the session says total_parts = {total_parts}, but the file needs {planned} parts of part_size")]
    TotalPartsMismatch {
        /// What the session says.
        total_parts: u64,
        /// What the plan needs.
        planned: u64,
    },
}
