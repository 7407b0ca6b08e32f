//! Where the bytes of an upload come from: a file (positioned reads), a reader (read once, in
//! order) or bytes in memory.

use crate::Error;
use box_upload_core::{FileFingerprint, PartBuffers, PartBuilder, PartData, SourceError, HASH_CHUNK};
use bytes::Bytes;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The bytes to upload.
///
/// - [`Source::file`] reads with positioned reads (`read_at`), never holding more than the parts
///   the core asks for. It records the file's size and modification time when opened and checks
///   them after every read, including the final read at the end of the file that the core makes
///   before it commits: a change fails the upload with [`SourceError::Changed`], so a file
///   modified during the upload is never committed.
/// - [`Source::reader`] reads a stream once, in order (the core asks for ranges in offset order).
/// - [`Source::bytes`] uploads bytes already in memory, without copying them.
pub struct Source {
    inner: Inner,
}

enum Inner {
    File { file: File, path: PathBuf, len: u64, modified: Option<SystemTime> },
    Reader { reader: Box<dyn Read + Send>, position: u64 },
    Bytes(Bytes),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::File { path, len, .. } => {
                f.debug_struct("Source::File").field("path", path).field("len", len).finish()
            }
            Inner::Reader { position, .. } => f.debug_struct("Source::Reader").field("position", position).finish(),
            Inner::Bytes(b) => f.debug_struct("Source::Bytes").field("len", &b.len()).finish(),
        }
    }
}

impl Source {
    /// Opens the file at `path` and records its size and modification time.
    pub fn file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let open_error = |source| Error::SourceOpen { path: path.clone(), source };
        let file = File::open(&path).map_err(open_error)?;
        let meta = file.metadata().map_err(open_error)?;
        if !meta.is_file() {
            return Err(open_error(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")));
        }
        Ok(Self { inner: Inner::File { file, len: meta.len(), modified: meta.modified().ok(), path } })
    }

    /// A stream, read once from its start, in order. Its length is not known in advance: the
    /// upload's declared size is checked against what it gives.
    pub fn reader(reader: impl Read + Send + 'static) -> Self {
        Self { inner: Inner::Reader { reader: Box::new(reader), position: 0 } }
    }

    /// Bytes in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self { inner: Inner::Bytes(bytes.into()) }
    }

    /// The source's length, when known (files and bytes).
    #[must_use]
    pub fn len(&self) -> Option<u64> {
        match &self.inner {
            Inner::File { len, .. } => Some(*len),
            Inner::Reader { .. } => None,
            Inner::Bytes(b) => Some(b.len() as u64),
        }
    }

    /// Whether the source is known to be empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// A fingerprint for checkpoints: the canonical path, size and modification time of a file
    /// (a resume from another file, or from this one changed, is refused). `None` for readers and
    /// bytes, which carry no identity.
    #[must_use]
    pub fn fingerprint(&self) -> Option<String> {
        match &self.inner {
            Inner::File { path, len, modified, .. } => {
                let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                Some(FileFingerprint::new(canonical.display().to_string(), *len, *modified).to_string())
            }
            _ => None,
        }
    }

    /// Reads `len` bytes at `offset` (fewer only at the end) and hashes them.
    /// `part` is the machine's builder for this read (see `Machine::part_builder`); files and
    /// streams fill it.
    pub(crate) fn read_part(
        &mut self,
        offset: u64,
        len: usize,
        part: PartBuilder,
        pool: &PartBuffers,
    ) -> Result<PartData, SourceError> {
        match &mut self.inner {
            Inner::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(len).min(b.len());
                Ok(part.finish_with_bytes(b.slice(start..end)))
            }
            Inner::Reader { reader, position } => {
                if offset != *position {
                    return Err(SourceError::Io(format!(
                        "a stream can only be read in order: asked for offset {offset}, at {position}"
                    )));
                }
                let part =
                    read_hashed(|b, _| reader.read(b), len, part, pool).map_err(|e| SourceError::Io(e.to_string()))?;
                *position += part.len() as u64;
                Ok(part)
            }
            Inner::File { file, path, len: size, modified } => {
                let part = read_hashed(|b, filled| read_at(file, b, offset + filled as u64), len, part, pool)
                    .map_err(|e| SourceError::Io(format!("{}: {e}", path.display())))?;
                check_unchanged(file, path, *size, *modified)?;
                Ok(part)
            }
        }
    }
}

/// Reads up to `len` bytes (fewer only where the source ends), 256 KiB at a time, each chunk hashed
/// as soon as it is read, while it is still in the CPU cache. `read` gets the buffer to fill and
/// how many bytes of the part are already read.
fn read_hashed(
    mut read: impl FnMut(&mut [u8], usize) -> io::Result<usize>,
    len: usize,
    mut part: PartBuilder,
    pool: &PartBuffers,
) -> io::Result<PartData> {
    part.set_buffer(pool.take(len));
    while part.filled() < len {
        let filled = part.filled();
        let chunk = part.unfilled();
        let n = chunk.len().min(HASH_CHUNK);
        match read(&mut chunk[..n], filled) {
            Ok(0) => break,
            Ok(n) => part.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(part.finish_with(|buf| pool.wrap(buf)))
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

fn check_unchanged(file: &File, path: &Path, size: u64, modified: Option<SystemTime>) -> Result<(), SourceError> {
    let meta = file.metadata().map_err(|e| SourceError::Io(format!("{}: {e}", path.display())))?;
    if meta.len() != size {
        return Err(SourceError::Changed(format!(
            "{} had {size} bytes when the upload started and has {} now",
            path.display(),
            meta.len()
        )));
    }
    if meta.modified().ok() != modified {
        return Err(SourceError::Changed(format!("{} was modified during the upload", path.display())));
    }
    Ok(())
}
