//! Where the bytes live: in a data directory (the default), or nowhere once verified.
//!
//! - Directory: `sessions/<session id>` is a sparse file of exactly `file_size` bytes, each part
//!   written at its offset as it streams in; commit renames it to `files/<file id>.<version id>`,
//!   so no byte is copied. For files of any size.
//! - Discard: a part keeps the body frames it arrived in (no copy) only until the whole-file
//!   SHA-1 has them; committed versions keep their size and SHA-1 but no content. Every digest is
//!   still checked. For benchmarks on a small machine, where the page-cache writes and re-reads
//!   of the directory storage take CPU from the client being measured. (Keeping every frame in
//!   memory instead was measured slower than the directory on tmpfs: each retained frame pins
//!   hyper's read buffer, so every read lands in freshly faulted pages.)

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use box_upload_core::FileHasher;
use bytes::Bytes;

/// The emulator's storage.
#[derive(Debug)]
pub(crate) enum Storage {
    Dir {
        root: PathBuf,
        /// Keeps a temporary directory alive (and removes it on drop) when no data dir was given.
        _temp: Option<tempfile::TempDir>,
    },
    Discard,
}

/// Where a committed file version lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    Path(PathBuf),
    /// Verified, then let go.
    Discarded,
}

/// A session's bytes.
#[derive(Debug)]
pub(crate) enum SessionData {
    File {
        file: File,
        path: PathBuf,
    },
    /// The frames of each held part the whole-file hash has not reached yet, by offset.
    Pending(Mutex<BTreeMap<u64, Vec<Bytes>>>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Storage {
    /// Uses `dir` (created if needed) or, when `None`, a fresh temporary directory.
    pub(crate) fn new(dir: Option<&Path>) -> io::Result<Self> {
        let (root, temp) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new().prefix("box-upload-emulator-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        fs::create_dir_all(root.join("sessions"))?;
        fs::create_dir_all(root.join("files"))?;
        Ok(Storage::Dir { root, _temp: temp })
    }

    /// Keeps no content: see the module docs.
    pub(crate) fn discard() -> Self {
        Storage::Discard
    }

    /// The data directory (`None` when content is discarded).
    pub(crate) fn root(&self) -> Option<&Path> {
        match self {
            Storage::Dir { root, .. } => Some(root),
            Storage::Discard => None,
        }
    }

    /// The storage of a new session of `size` bytes.
    pub(crate) fn create_session(&self, id: &str, size: u64) -> io::Result<SessionData> {
        match self {
            Storage::Dir { root, .. } => {
                let path = root.join("sessions").join(id);
                let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
                file.set_len(size)?;
                Ok(SessionData::File { file, path })
            }
            Storage::Discard => Ok(SessionData::Pending(Mutex::new(BTreeMap::new()))),
        }
    }

    /// Stores a file version directly (for files created through the library API).
    pub(crate) fn write_file(&self, file_id: &str, version_id: &str, bytes: &[u8]) -> io::Result<Stored> {
        match self {
            Storage::Dir { root, .. } => {
                let path = file_path(root, file_id, version_id);
                fs::write(&path, bytes)?;
                Ok(Stored::Path(path))
            }
            Storage::Discard => Ok(Stored::Discarded),
        }
    }

    /// Turns a session's bytes into a file version.
    pub(crate) fn commit(&self, data: &SessionData, file_id: &str, version_id: &str) -> io::Result<Stored> {
        match (self, data) {
            (Storage::Dir { root, .. }, SessionData::File { path, .. }) => {
                let to = file_path(root, file_id, version_id);
                fs::rename(path, &to)?;
                Ok(Stored::Path(to))
            }
            (Storage::Discard, SessionData::Pending(parts)) => {
                lock(parts).clear();
                Ok(Stored::Discarded)
            }
            _ => Err(io::Error::other("a session's data does not match the storage")),
        }
    }

    /// Forgets a file version (replaced by a newer one).
    pub(crate) fn remove_file(stored: &Stored) {
        if let Stored::Path(path) = stored {
            let _ = fs::remove_file(path);
        }
    }
}

fn file_path(root: &Path, file_id: &str, version_id: &str) -> PathBuf {
    root.join("files").join(format!("{file_id}.{version_id}"))
}

impl SessionData {
    /// Takes one body frame of the part at `part_offset`, `at` bytes into the part. Without a
    /// file, the frame waits in `frames` for [`keep_part`](Self::keep_part).
    pub(crate) fn write_frame(
        &self,
        frames: &mut Vec<Bytes>,
        part_offset: u64,
        at: u64,
        data: &Bytes,
    ) -> io::Result<()> {
        match self {
            SessionData::File { file, .. } => file.write_all_at(data, part_offset + at),
            SessionData::Pending(_) => {
                frames.push(data.clone());
                Ok(())
            }
        }
    }

    /// Whether parts are held as their body frames (rather than written to a file).
    pub(crate) fn holds_frames(&self) -> bool {
        matches!(self, SessionData::Pending(_))
    }

    /// Keeps a verified part's frames until the whole-file hash has them (the file, when there is
    /// one, has them already).
    pub(crate) fn keep_part(&self, part_offset: u64, frames: Vec<Bytes>) {
        if let SessionData::Pending(parts) = self {
            lock(parts).insert(part_offset, frames);
        }
    }

    /// Deletes the session's bytes (abort, expiry).
    pub(crate) fn discard(&self) {
        match self {
            SessionData::File { path, .. } => {
                let _ = fs::remove_file(path);
            }
            SessionData::Pending(parts) => lock(parts).clear(),
        }
    }

    /// Feeds the `len` bytes of the part at `offset` to `hasher`, once: pending frames are let go.
    /// `buf` is reused between calls.
    pub(crate) fn hash_part(
        &self,
        offset: u64,
        len: u64,
        hasher: &mut FileHasher,
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        match self {
            SessionData::File { file, .. } => hash_range(file, offset, len, hasher, buf),
            SessionData::Pending(parts) => {
                let frames = lock(parts).remove(&offset).unwrap_or_default();
                let held: u64 = frames.iter().map(|f| f.len() as u64).sum();
                if held != len {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a part's frames are short"));
                }
                for frame in &frames {
                    hash_prefetched(frame, |chunk| hasher.update(chunk));
                }
                Ok(())
            }
        }
    }
}

/// Hands `data` to `hash` 64 KiB at a time, first loading one byte of each cache line of the next
/// chunk. Those loads are independent, so the core keeps many cache misses in flight at once,
/// where SHA-1's serial rounds would wait for each line in turn: on data not in cache this costs
/// about as much as hashing data that is (`cargo bench -p box-upload-core --bench sha1_cache`, `cold` vs `cold_touch`).
pub(crate) fn hash_prefetched(data: &[u8], mut hash: impl FnMut(&[u8])) {
    const CHUNK: usize = 64 * 1024;
    let touch = |chunk: &[u8]| chunk.iter().step_by(64).fold(0u8, |acc, &b| acc ^ b);
    let mut chunks = data.chunks(CHUNK).peekable();
    let mut sink = chunks.peek().map_or(0, |c| touch(c));
    while let Some(chunk) = chunks.next() {
        if let Some(next) = chunks.peek() {
            sink ^= touch(next);
        }
        hash(chunk);
    }
    std::hint::black_box(sink);
}

/// Feeds `len` bytes of `file` starting at `offset` to `hasher`, reading 1 MiB at a time into
/// `buf` (which is reused between calls).
fn hash_range(file: &File, offset: u64, len: u64, hasher: &mut FileHasher, buf: &mut Vec<u8>) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    if buf.len() < CHUNK {
        buf.resize(CHUNK, 0);
    }
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from((len - done).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = file.read_at(&mut buf[..want], offset + done)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "session file is short"));
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Reads a stored file version whole.
pub(crate) fn read_all(stored: &Stored) -> io::Result<Vec<u8>> {
    match stored {
        Stored::Path(path) => fs::read(path),
        Stored::Discarded => Err(io::Error::new(io::ErrorKind::NotFound, "the emulator discards content")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    #[test]
    fn prefetched_hash_is_the_hash() {
        for len in [0, 1, 63, 64 * 1024, 64 * 1024 + 1, 300_001] {
            let data: Vec<u8> = (0..len).map(|i| (i * 13 % 256) as u8).collect();
            let mut h = Sha1::new();
            hash_prefetched(&data, |chunk| h.update(chunk));
            assert_eq!(h.finalize(), Sha1::digest(&data), "len {len}");
        }
    }

    #[test]
    fn discarding_session_hashes_frames_in_order_then_lets_them_go() {
        let storage = Storage::discard();
        let data = storage.create_session("S", 10).unwrap();
        // Parts arrive out of order, in frames.
        data.keep_part(6, vec![Bytes::from_static(b"gh"), Bytes::from_static(b"ij")]);
        data.keep_part(0, vec![Bytes::from_static(b"abc"), Bytes::from_static(b"def")]);
        let (mut h, mut buf) = (FileHasher::new(), Vec::new());
        data.hash_part(0, 6, &mut h, &mut buf).unwrap();
        data.hash_part(6, 4, &mut h, &mut buf).unwrap();
        assert_eq!(h.finish().0, <[u8; 20]>::from(Sha1::digest(b"abcdefghij")));
        let SessionData::Pending(parts) = &data else { panic!("not pending") };
        assert!(lock(parts).is_empty(), "hashed frames are let go");
        assert!(data.hash_part(0, 6, &mut FileHasher::new(), &mut buf).is_err(), "a part is hashed once");
        data.keep_part(0, vec![Bytes::from_static(b"abc")]);
        assert!(data.hash_part(0, 4, &mut FileHasher::new(), &mut buf).is_err(), "a length mismatch is an error");
        let stored = storage.commit(&data, "1", "2").unwrap();
        assert_eq!(stored, Stored::Discarded);
        assert!(read_all(&stored).is_err());
    }
}
