//! Where the bytes of a big upload come from: a file (positioned reads, checked for changes), a
//! stream (read once, in order), or bytes in memory.

use crate::Error;
use box_upload_core::{
    FileFingerprint, PartBuffers, PartBuilder, PartData, ReadId, ReadRequest, SourceError, HASH_CHUNK,
};
use bytes::Bytes;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The bytes to upload. Only the ranges the core asks for are read, so a file is never held in
/// memory whole.
pub struct Source(Inner);

enum Inner {
    File(PathBuf),
    Reader(Box<dyn AsyncRead + Unpin + Send>),
    Bytes(Bytes),
}

impl Source {
    /// A file, read with positioned reads on a blocking thread. Its size and modification time are
    /// recorded when the upload starts and checked on every read: if they change, the upload
    /// fails with [`SourceError::Changed`] and nothing is committed.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(Inner::File(path.into()))
    }

    /// A stream, read once from its start, in order. Its size must be given in the request.
    pub fn reader(reader: impl AsyncRead + Unpin + Send + 'static) -> Self {
        Self(Inner::Reader(Box::new(reader)))
    }

    /// Bytes in memory (parts are views of them, not copies).
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self(Inner::Bytes(bytes.into()))
    }

    /// Opens the source; `buffers` part buffers are kept for reuse (parts in flight + 1).
    pub(crate) async fn open(self, buffers: usize) -> Result<OpenSource, Error> {
        let pool = PartBuffers::new(buffers);
        match self.0 {
            Inner::File(path) => {
                let opened = tokio::task::spawn_blocking(move || OpenFile::open(path, pool))
                    .await
                    .map_err(|e| Error::Internal(format!("opening the source: {e}")))??;
                Ok(OpenSource::File(Arc::new(opened)))
            }
            Inner::Reader(reader) => Ok(OpenSource::Reader(ReaderState { reader: Some(reader), position: 0, pool })),
            Inner::Bytes(bytes) => Ok(OpenSource::Bytes(bytes)),
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::File(p) => f.debug_tuple("Source::File").field(p).finish(),
            Inner::Reader(_) => f.write_str("Source::Reader(..)"),
            Inner::Bytes(b) => f.debug_struct("Source::Bytes").field("len", &b.len()).finish(),
        }
    }
}

/// What a file looked like when the upload started.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    size: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileState {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        }
    }
}

#[derive(Debug)]
pub(crate) struct OpenFile {
    file: std::fs::File,
    path: PathBuf,
    state: FileState,
    pool: PartBuffers,
}

impl OpenFile {
    fn open(path: PathBuf, pool: PartBuffers) -> Result<Self, Error> {
        let err = |source| Error::SourceOpen { path: path.clone(), source };
        let file = std::fs::File::open(&path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
        }
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        Ok(Self { file, path, state: FileState::of(&meta), pool })
    }

    /// Path, size and modification time: a resume is refused when this differs.
    fn fingerprint(&self) -> String {
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        FileFingerprint::new(path.display().to_string(), self.state.size, self.state.modified).to_string()
    }

    /// The file through the open handle and by its path must still be what it was.
    fn check(&self) -> Result<(), SourceError> {
        let now = self.file.metadata().map_err(|e| SourceError::Io(e.to_string()))?;
        let by_path = std::fs::metadata(&self.path)
            .map_err(|e| SourceError::Changed(format!("{} cannot be inspected any more: {e}", self.path.display())))?;
        for (what, state) in [("open file", FileState::of(&now)), ("path", FileState::of(&by_path))] {
            if state != self.state {
                return Err(SourceError::Changed(format!(
                    "{} ({what}): size {} -> {}, modified {:?} -> {:?}",
                    self.path.display(),
                    self.state.size,
                    state.size,
                    self.state.modified,
                    state.modified
                )));
            }
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` (fewer at the end), then checks the file did not change.
    fn read(&self, offset: u64, len: usize, mut part: PartBuilder) -> Result<PartData, SourceError> {
        // A chunk at a time, each hashed as soon as it is read, while it is in the CPU cache.
        self.check()?;
        part.set_buffer(self.pool.take(len));
        while part.filled() < len {
            let at = offset + part.filled() as u64;
            let chunk = part.unfilled();
            let n = chunk.len().min(HASH_CHUNK);
            match read_at(&self.file, &mut chunk[..n], at) {
                Ok(0) => break,
                Ok(n) => part.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SourceError::Io(format!("{} at offset {}: {e}", self.path.display(), offset))),
            }
        }
        self.check()?;
        Ok(part.finish_with(|buf| self.pool.wrap(buf)))
    }
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

pub(crate) struct ReaderState {
    reader: Option<Box<dyn AsyncRead + Unpin + Send>>,
    position: u64,
    pool: PartBuffers,
}

/// A source ready to serve reads.
pub(crate) enum OpenSource {
    File(Arc<OpenFile>),
    Reader(ReaderState),
    Bytes(Bytes),
}

/// A finished read: the bytes (hashed) and, for a stream, the stream back.
pub(crate) struct ReadDone {
    pub(crate) id: ReadId,
    pub(crate) data: Result<PartData, SourceError>,
    pub(crate) reader: Option<(Box<dyn AsyncRead + Unpin + Send>, u64)>,
}

/// The future of one read, to run as a task.
pub(crate) type ReadTask = std::pin::Pin<Box<dyn std::future::Future<Output = ReadDone> + Send>>;

impl OpenSource {
    /// The size, when the source knows it.
    pub(crate) fn size(&self) -> Option<u64> {
        match self {
            OpenSource::File(f) => Some(f.state.size),
            OpenSource::Reader(_) => None,
            OpenSource::Bytes(b) => Some(b.len() as u64),
        }
    }

    /// A fingerprint for checkpoints (files only).
    pub(crate) fn fingerprint(&self) -> Option<String> {
        match self {
            OpenSource::File(f) => Some(f.fingerprint()),
            _ => None,
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            OpenSource::File(f) => Some(&f.path),
            _ => None,
        }
    }

    /// A stream is read by one task at a time; while it is out, further reads wait.
    pub(crate) fn busy(&self) -> bool {
        matches!(self, OpenSource::Reader(ReaderState { reader: None, .. }))
    }

    /// Gives a stream back after a read.
    pub(crate) fn give_back(&mut self, reader: Box<dyn AsyncRead + Unpin + Send>, position: u64) {
        if let OpenSource::Reader(state) = self {
            state.reader = Some(reader);
            state.position = position;
        }
    }

    /// The task that serves `read` into `part`, the machine's builder for it (see
    /// `Machine::part_builder`): the bytes are read and hashed off the driver loop. For a stream,
    /// call only when not [`busy`](Self::busy).
    pub(crate) fn read(&mut self, read: ReadRequest, mut part: PartBuilder) -> ReadTask {
        let ReadRequest { id, offset, len } = read;
        match self {
            OpenSource::File(file) => {
                let file = Arc::clone(file);
                Box::pin(async move {
                    let data = tokio::task::spawn_blocking(move || file.read(offset, len, part))
                        .await
                        .unwrap_or_else(|e| Err(SourceError::Io(format!("the read task failed: {e}"))));
                    ReadDone { id, data, reader: None }
                })
            }
            OpenSource::Bytes(bytes) => {
                let bytes = bytes.clone();
                Box::pin(async move {
                    let data = tokio::task::spawn_blocking(move || {
                        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
                        let end = start.saturating_add(len).min(bytes.len());
                        part.finish_with_bytes(bytes.slice(start..end))
                    })
                    .await
                    .map_err(|e| SourceError::Io(format!("the hash task failed: {e}")));
                    ReadDone { id, data, reader: None }
                })
            }
            OpenSource::Reader(state) => {
                let position = state.position;
                let pool = state.pool.clone();
                let Some(mut reader) = state.reader.take() else {
                    return Box::pin(async move {
                        ReadDone {
                            id,
                            data: Err(SourceError::Io("the stream is already being read".into())),
                            reader: None,
                        }
                    });
                };
                Box::pin(async move {
                    if offset != position {
                        let data = Err(SourceError::Io(format!(
                            "a stream can only be read in order: asked for offset {offset}, at {position}"
                        )));
                        return ReadDone { id, data, reader: Some((reader, position)) };
                    }
                    // Each chunk is hashed (both passes, when the builder carries the whole-file
                    // hash) as it arrives: a small, bounded step on the runtime.
                    part.set_buffer(pool.take(len));
                    let mut failure = None;
                    while part.filled() < len {
                        let filled = part.filled();
                        let chunk = part.unfilled();
                        let n = chunk.len().min(HASH_CHUNK);
                        match reader.read(&mut chunk[..n]).await {
                            Ok(0) => break,
                            Ok(n) => part.advance(n),
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                failure = Some(SourceError::Io(format!(
                                    "stream at offset {}: {e}",
                                    position + filled as u64
                                )));
                                break;
                            }
                        }
                    }
                    let next = position + part.filled() as u64;
                    let data = match failure {
                        Some(e) => Err(e),
                        None => Ok(part.finish_with(|buf| pool.wrap(buf))),
                    };
                    ReadDone { id, data, reader: Some((reader, next)) }
                })
            }
        }
    }
}
