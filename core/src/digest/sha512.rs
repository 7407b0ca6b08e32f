//! SHA-512 digests of parts, for Box's upload-session plan (`sha512` in hex).

use super::DigestError;
use sha2::{Digest as _, Sha512};
use std::fmt;

/// A SHA-512 digest, as the plan of an upload session names a part.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha512Digest(pub [u8; 64]);

impl Sha512Digest {
    /// The SHA-512 of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha512::digest(bytes).into())
    }

    /// Lower-case hex (128 digits), as the plan writes `sha512` fields.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(128);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        s
    }

    /// Parses 128 hex digits, either case.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        let bytes = hex.as_bytes();
        if bytes.len() != 128 {
            return Err(DigestError::BadHex);
        }
        let mut out = [0u8; 64];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or(DigestError::BadHex)?;
            let lo = (pair[1] as char).to_digit(16).ok_or(DigestError::BadHex)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Self(out))
    }
}

impl fmt::Debug for Sha512Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha512Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha512Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An incremental SHA-512 of one part, fed as the part is read.
#[derive(Clone, Default)]
pub struct PartSha512 {
    state: Sha512,
}

impl PartSha512 {
    /// A hasher with nothing fed yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the part.
    pub fn update(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
    }

    /// The digest of everything fed.
    #[must_use]
    pub fn finish(self) -> Sha512Digest {
        Sha512Digest(self.state.finalize().into())
    }
}

impl fmt::Debug for PartSha512 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartSha512")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_and_hex_round_trip() {
        // SHA-512("abc"), FIPS 180-2 appendix C.
        let abc = Sha512Digest::of(b"abc");
        assert!(abc.to_hex().starts_with("ddaf35a193617aba"), "{abc}");
        assert!(abc.to_hex().ends_with("a54ca49f"), "{abc}");
        assert_eq!(Sha512Digest::from_hex(&abc.to_hex().to_uppercase()), Ok(abc));
        let mut inc = PartSha512::new();
        inc.update(b"a");
        inc.update(b"bc");
        assert_eq!(inc.finish(), abc);
        assert_eq!(Sha512Digest::from_hex("abc"), Err(DigestError::BadHex));
        assert_eq!(Sha512Digest::from_hex(&"g".repeat(128)), Err(DigestError::BadHex));
    }
}
