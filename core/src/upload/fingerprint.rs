//! The one fingerprint format every driver writes into checkpoints, so a checkpoint made through
//! one transport (or the CLI) resumes through another, and the file can be found again.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What identifies a source file in a checkpoint: size, modification time and absolute path.
/// Written as `file/1 size=<bytes> mtime=<secs>.<nanos> path=<path>` (the path last, so it may
/// hold anything but a line break), and parsed back by [`FromStr`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFingerprint {
    /// The file's absolute path, as the driver resolved it.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time since the Unix epoch, when the file system gives one.
    pub modified: Option<Duration>,
}

impl FileFingerprint {
    /// The fingerprint of a file at `path` of `size` bytes last modified at `modified`.
    pub fn new(path: impl Into<String>, size: u64, modified: Option<SystemTime>) -> Self {
        let modified = modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok());
        Self { path: path.into(), size, modified }
    }
}

impl fmt::Display for FileFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file/1 size={} mtime=", self.size)?;
        match self.modified {
            Some(d) => write!(f, "{}.{:09}", d.as_secs(), d.subsec_nanos())?,
            None => f.write_str("unknown")?,
        }
        write!(f, " path={}", self.path)
    }
}

/// A string that is not a [`FileFingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a file fingerprint (file/1 size=.. mtime=.. path=..)")]
pub struct FingerprintError;

impl FromStr for FileFingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("file/1 size=").ok_or(FingerprintError)?;
        let (size, rest) = rest.split_once(" mtime=").ok_or(FingerprintError)?;
        let (mtime, path) = rest.split_once(" path=").ok_or(FingerprintError)?;
        let size = size.parse().map_err(|_| FingerprintError)?;
        let modified = match mtime {
            "unknown" => None,
            m => {
                let (secs, nanos) = m.split_once('.').ok_or(FingerprintError)?;
                let secs = secs.parse().map_err(|_| FingerprintError)?;
                let nanos: u32 = nanos.parse().map_err(|_| FingerprintError)?;
                if nanos >= 1_000_000_000 {
                    return Err(FingerprintError);
                }
                Some(Duration::new(secs, nanos))
            }
        };
        Ok(Self { path: path.to_owned(), size, modified })
    }
}
