//! SHA-1 digests and the `Digest: sha=<base64>` header value Box uses for parts and commits.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use std::fmt;

mod lanes;
mod sha512;
use lanes::Sha1State;
pub use sha512::{PartSha512, Sha512Digest};

/// A SHA-1 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha1Digest(pub [u8; 20]);

impl Sha1Digest {
    /// The SHA-1 of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha1::digest(bytes).into())
    }

    /// The value of a `Digest` header: `sha=<base64>`.
    #[must_use]
    pub fn header_value(&self) -> String {
        format!("sha={}", STANDARD.encode(self.0))
    }

    /// Lower-case hex, as Box writes `sha1` fields.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        s
    }

    /// Parses 40 hex digits, either case.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return Err(DigestError::BadHex);
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or(DigestError::BadHex)?;
            let lo = (pair[1] as char).to_digit(16).ok_or(DigestError::BadHex)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Self(out))
    }

    /// Parses a `Digest` header value. Accepts `sha=` and `SHA=` and ignores other algorithms listed
    /// beside it (`sha=...,md5=...`).
    pub fn parse_header(value: &str) -> Result<Self, DigestError> {
        for item in value.split(',') {
            let item = item.trim();
            if let Some((alg, b64)) = item.split_once('=') {
                if alg.trim().eq_ignore_ascii_case("sha") {
                    let raw = STANDARD.decode(b64.trim()).map_err(|_| DigestError::BadBase64)?;
                    let arr: [u8; 20] = raw.try_into().map_err(|_| DigestError::WrongLength)?;
                    return Ok(Self(arr));
                }
            }
        }
        Err(DigestError::NoSha)
    }
}

impl fmt::Debug for Sha1Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha1Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A `Digest` header value or hex SHA-1 that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// No `sha=` item in the header.
    #[error("digest has no sha= value")]
    NoSha,
    /// The base64 part is not base64.
    #[error("digest is not valid base64")]
    BadBase64,
    /// The digest is not 20 bytes.
    #[error("digest is not 20 bytes long")]
    WrongLength,
    /// The hex string is not 40 hex digits (128 for a SHA-512).
    #[error("digest is not the right number of hex digits")]
    BadHex,
}

/// An incremental SHA-1 over the whole file, fed in offset order.
#[derive(Clone, Default)]
pub struct FileHasher {
    state: Sha1State,
}

impl FileHasher {
    /// A hasher with nothing fed yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
    }

    /// Feeds the same bytes to `self` and `other` in one pass: on a CPU with SHA-NI, when both are
    /// at the same offset within a 64-byte block (e.g. a part's hasher and the whole file's at a
    /// part boundary), this costs about 1.6 times one [`update`](Self::update) instead of 2.
    ///
    /// ```
    /// use box_upload_core::{FileHasher, Sha1Digest};
    /// let (mut part, mut file) = (FileHasher::new(), FileHasher::new());
    /// file.update(b"earlier parts ");
    /// part.update_pair(&mut file, b"this part");
    /// assert_eq!(part.finish(), Sha1Digest::of(b"this part"));
    /// assert_eq!(file.finish(), Sha1Digest::of(b"earlier parts this part"));
    /// ```
    pub fn update_pair(&mut self, other: &mut FileHasher, bytes: &[u8]) {
        Sha1State::update_pair(&mut self.state, &mut other.state, bytes);
    }

    /// How many bytes have been fed.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.state.len()
    }

    /// Whether nothing has been fed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of everything fed.
    #[must_use]
    pub fn finish(self) -> Sha1Digest {
        Sha1Digest(self.state.finish())
    }
}

impl fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileHasher").field("bytes", &self.len()).finish()
    }
}
