//! Where the bytes live: one sparse file per upload session, renamed into place at commit.
//!
//! Layout under the data directory: `sessions/<session id>` (a file of exactly `file_size` bytes,
//! created sparse; each part is written at its offset with positioned writes as it streams in)
//! and `files/<file id>.<version id>` (committed content). Commit renames the session file, so
//! no byte is copied.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

/// The emulator's on-disk storage.
#[derive(Debug)]
pub(crate) struct Storage {
    root: PathBuf,
    /// Keeps a temporary directory alive (and removes it on drop) when no data dir was given.
    _temp: Option<tempfile::TempDir>,
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
        Ok(Storage { root, _temp: temp })
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the sparse file of a new session, `size` bytes long.
    pub(crate) fn create_session_file(&self, id: &str, size: u64) -> io::Result<(PathBuf, File)> {
        let path = self.root.join("sessions").join(id);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        file.set_len(size)?;
        Ok((path, file))
    }

    /// The path of a committed file version.
    pub(crate) fn file_path(&self, file_id: &str, version_id: &str) -> PathBuf {
        self.root.join("files").join(format!("{file_id}.{version_id}"))
    }

    /// Writes a file version directly (for files created through the library API).
    pub(crate) fn write_file(&self, file_id: &str, version_id: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.file_path(file_id, version_id);
        fs::write(&path, bytes)?;
        Ok(path)
    }
}

/// Feeds `len` bytes of `file` starting at `offset` to `hasher`, reading 1 MiB at a time into
/// `buf` (which is reused between calls).
pub(crate) fn hash_range(file: &File, offset: u64, len: u64, hasher: &mut Sha1, buf: &mut Vec<u8>) -> io::Result<()> {
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
