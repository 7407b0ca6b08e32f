//! The `Content-Range: bytes <first>-<last>/<total>` value of a part upload.

use std::fmt;
use std::str::FromStr;

/// An inclusive byte range of a file of `total` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentRange {
    /// First byte, inclusive.
    pub first: u64,
    /// Last byte, inclusive.
    pub last: u64,
    /// The whole file's size.
    pub total: u64,
}

impl ContentRange {
    /// The range of `size` bytes at `offset` in a file of `total` bytes.
    pub fn new(offset: u64, size: u64, total: u64) -> Result<Self, ContentRangeError> {
        if size == 0 {
            return Err(ContentRangeError::Empty);
        }
        let end = offset.checked_add(size).ok_or(ContentRangeError::OutOfBounds)?;
        if end > total {
            return Err(ContentRangeError::OutOfBounds);
        }
        Ok(Self { first: offset, last: end - 1, total })
    }

    /// The range's offset.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.first
    }

    /// How many bytes the range holds.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.last - self.first + 1
    }
}

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes {}-{}/{}", self.first, self.last, self.total)
    }
}

impl FromStr for ContentRange {
    type Err = ContentRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix("bytes ").ok_or(ContentRangeError::Syntax)?;
        let (range, total) = rest.split_once('/').ok_or(ContentRangeError::Syntax)?;
        let (first, last) = range.split_once('-').ok_or(ContentRangeError::Syntax)?;
        let num = |v: &str| -> Result<u64, ContentRangeError> {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ContentRangeError::Syntax);
            }
            v.parse().map_err(|_| ContentRangeError::Syntax)
        };
        let (first, last, total) = (num(first)?, num(last)?, num(total)?);
        if first > last || last >= total {
            return Err(ContentRangeError::OutOfBounds);
        }
        Ok(Self { first, last, total })
    }
}

/// A `Content-Range` that is malformed or does not fit its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentRangeError {
    /// Not of the form `bytes a-b/total`.
    #[error("content-range is not of the form `bytes <first>-<last>/<total>`")]
    Syntax,
    /// `first > last` or the range runs past the end of the file.
    #[error("content-range does not fit in the file")]
    OutOfBounds,
    /// A range of zero bytes.
    #[error("content-range would be empty")]
    Empty,
}
