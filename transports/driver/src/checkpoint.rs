//! Checkpoint files: read, and replaced atomically (a temporary file beside the target, created
//! exclusively, fsync, rename, fsync of the directory), so a crash leaves the old checkpoint or
//! the new one, never half of one.

use crate::Error;
use box_upload_core::Checkpoint;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Reads a checkpoint file written by an upload.
pub fn load_checkpoint(path: impl AsRef<Path>) -> Result<Checkpoint, Error> {
    let path = path.as_ref();
    let text = fs::read(path).map_err(|source| Error::Checkpoint { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::CheckpointFormat { path: path.to_path_buf(), detail: e.to_string() })
}

/// Writes `checkpoint` to `path` atomically. The temporary file has an unpredictable name, is
/// created exclusively (never through a file or symlink already there) and readable by its owner
/// only (mode 0600 on Unix): a checkpoint names the session, which is not for other users.
pub fn save_checkpoint(path: impl AsRef<Path>, checkpoint: &Checkpoint) -> Result<(), Error> {
    let path = path.as_ref();
    let bytes = serde_json::to_vec_pretty(checkpoint)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), source: io::Error::other(e) })?;
    write_atomic(path, &bytes).map_err(|source| Error::Checkpoint { path: path.to_path_buf(), source })
}

/// A checkpoint to write: what a run hands its driver when the checkpoint changed, so that an
/// async driver can write it where blocking is allowed.
#[derive(Debug)]
#[must_use = "write it, then hand the result back to the run"]
pub struct CheckpointWrite {
    pub(crate) path: PathBuf,
    pub(crate) checkpoint: Checkpoint,
}

impl CheckpointWrite {
    /// Writes the checkpoint (blocking: file I/O and fsync).
    pub fn write(self) -> Result<(), Error> {
        save_checkpoint(&self.path, &self.checkpoint)
    }
}

/// The lock that keeps one checkpoint to one run at a time: an advisory lock (`flock` on Unix,
/// `LockFileEx` on Windows) on a file beside the checkpoint, `.NAME.lock`, held for the run. The
/// kernel drops it when the process dies, so a killed run never leaves a stale lock.
#[derive(Debug)]
pub(crate) struct CheckpointLock {
    _file: File,
    path: PathBuf,
}

impl CheckpointLock {
    /// Takes the lock of `checkpoint`, or says who holds it.
    pub(crate) fn acquire(checkpoint: &Path) -> Result<Self, Error> {
        let err = |source| Error::Checkpoint { path: checkpoint.to_path_buf(), source };
        let name = checkpoint
            .file_name()
            .ok_or_else(|| err(io::Error::new(io::ErrorKind::InvalidInput, "the checkpoint path has no file name")))?;
        let dir = checkpoint.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
        let path = dir.join(format!(".{}.lock", name.to_string_lossy()));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(err)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(Error::CheckpointInUse { path: checkpoint.to_path_buf(), lock: path })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
        }
    }

    /// Releases the lock and removes its file (the checkpoint is done with).
    pub(crate) fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the checkpoint path has no file name"))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    let (tmp, mut file) = create_temporary(dir, &name.to_string_lossy())?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        // The rename itself is durable only once the directory is synced.
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file beside the target, with a name nobody can guess, created exclusively.
fn create_temporary(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", unpredictable()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// 64 bits from the standard library's randomly keyed hasher, the time and the process id.
fn unpredictable() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(t.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use box_upload_core::models::{UploadPart, UploadSession};
    use box_upload_core::{UploadTarget, CHECKPOINT_VERSION};

    fn checkpoint(parts: usize) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            session: UploadSession { id: "ABC".into(), part_size: Some(8), ..Default::default() },
            target: UploadTarget::NewFile { folder_id: "0".into(), file_name: "a.bin".into() },
            file_size: 20_000_000,
            part_size: 8,
            source_fingerprint: Some("file:/x:size=1:mtime=2".into()),
            if_match: None,
            if_none_match: None,
            commit_attributes: None,
            parts: (0..parts)
                .map(|i| UploadPart { part_id: format!("P{i}"), offset: i as u64 * 8, size: 8, sha1: None })
                .collect(),
        }
    }

    #[test]
    fn checkpoints_are_replaced_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.json");
        save_checkpoint(&path, &checkpoint(1)).unwrap();
        save_checkpoint(&path, &checkpoint(3)).unwrap();
        assert_eq!(load_checkpoint(&path).unwrap(), checkpoint(3));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("upload.json")], "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn temporary_names_are_not_predictable() {
        let a = unpredictable();
        let b = unpredictable();
        assert_ne!(a, b);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        // Whatever name the writer picks, an existing entry is never opened: create_new refuses it.
        let planted = dir.path().join(".upload.json.0000000000000000.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        assert_eq!(options.open(&planted).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        save_checkpoint(dir.path().join("upload.json"), &checkpoint(1)).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn one_checkpoint_is_locked_to_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.json");
        let first = CheckpointLock::acquire(&path).unwrap();
        assert!(matches!(CheckpointLock::acquire(&path), Err(Error::CheckpointInUse { .. })));
        drop(first);
        let again = CheckpointLock::acquire(&path).unwrap();
        again.remove();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "the lock file is removed");
    }

    #[test]
    fn a_bad_checkpoint_file_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load_checkpoint(&path), Err(Error::CheckpointFormat { .. })));
        assert!(matches!(load_checkpoint(dir.path().join("missing.json")), Err(Error::Checkpoint { .. })));
        assert!(matches!(
            save_checkpoint(dir.path().join("no/such/dir/x.json"), &checkpoint(0)),
            Err(Error::Checkpoint { .. })
        ));
    }
}
