//! Where the bytes of a big upload come from: a file (positioned reads, checked for changes), a
//! stream (read once, in order), or bytes in memory. Read on the reading thread only.

use crate::Error;
use box_upload_core::{FileFingerprint, PartBuffers, PartBuilder, PartData, SourceError, SourceFacts, HASH_CHUNK};
use bytes::Bytes;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::SystemTime;

/// The bytes to upload. Only the ranges the core asks for are read, so a file is never held in
/// memory whole.
///
/// - [`Source::file`]: positioned reads. The file's size, modification time, status-change time
///   (ctime, which no user program can set back) and identity (device and inode) are recorded
///   when the upload starts and checked, through the open handle and through the path, before
///   and after every read (including the last read at the end of the file that the core
///   makes), and once more before each commit is sent, when every read is done. Any change
///   fails the upload with [`SourceError::Changed`], so a file rewritten during the upload
///   (even in place with its mtime restored, as `rsync --inplace` or `cp -p` do) is never
///   committed.
/// - [`Source::reader`]: a stream, read once from its start, in order.
/// - [`Source::bytes`]: bytes in memory; parts are views of them, not copies.
pub struct Source(Inner);

enum Inner {
    File(PathBuf),
    Reader(Box<dyn Read + Send>),
    Bytes(Bytes),
}

impl Source {
    /// The same bytes as a source that can be read again: a stream of `size` bytes is read
    /// into memory when `size` is at most `limit` (more or fewer bytes than `size` are refused);
    /// files and bytes stay as they are.
    pub(crate) fn rereadable(self, size: u64, limit: u64) -> Result<Self, Error> {
        let Inner::Reader(mut reader) = self.0 else { return Ok(self) };
        if size > limit {
            return Ok(Self(Inner::Reader(reader)));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let read = (&mut reader).take(size.saturating_add(1)).read_to_end(&mut bytes);
        read.map_err(|e| Error::Core(SourceError::Io(format!("stream: {e}")).into()))?;
        let got = bytes.len() as u64;
        if got > size {
            return Err(Error::Core(SourceError::RanLong { file_size: size }.into()));
        }
        if got < size {
            return Err(Error::Core(SourceError::EndedEarly { offset: 0, expected: size, got }.into()));
        }
        Ok(Self(Inner::Bytes(Bytes::from(bytes))))
    }

    /// A file. It is opened when the upload starts; a file that cannot be opened (or is not a
    /// regular file) fails the upload with [`Error::SourceOpen`] before anything is sent.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(Inner::File(path.into()))
    }

    /// A stream, read once from its start, in order, on the reading thread. Its size must be
    /// given in the request. (An async stream can be bridged, e.g. with tokio-util's
    /// `SyncIoBridge`.)
    pub fn reader(reader: impl Read + Send + 'static) -> Self {
        Self(Inner::Reader(Box::new(reader)))
    }

    /// Bytes in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self(Inner::Bytes(bytes.into()))
    }

    /// Opens the source for an upload; `buffers` part buffers are kept for reuse.
    pub(crate) fn open(self, buffers: usize) -> Result<OpenSource, Error> {
        let pool = PartBuffers::new(buffers);
        let inner = match self.0 {
            Inner::File(path) => Open::File(OpenFile::open(path)?),
            Inner::Reader(reader) => Open::Reader { reader, position: 0 },
            Inner::Bytes(bytes) => Open::Bytes(bytes),
        };
        Ok(OpenSource { inner, pool })
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

impl From<Bytes> for Source {
    fn from(bytes: Bytes) -> Self {
        Self::bytes(bytes)
    }
}

impl From<Vec<u8>> for Source {
    fn from(bytes: Vec<u8>) -> Self {
        Self::bytes(bytes)
    }
}

/// What a file looked like when the upload started: everything a rewrite changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    size: u64,
    modified: Option<SystemTime>,
    /// Status-change time, seconds and nanoseconds: set by the kernel on every write.
    #[cfg(unix)]
    changed: (i64, i64),
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
            changed: (meta.ctime(), meta.ctime_nsec()),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        }
    }

    /// What differs from `then`, in words.
    fn differences(&self, then: &FileState) -> Vec<String> {
        let mut out = Vec::new();
        if self.size != then.size {
            out.push(format!("size {} -> {}", then.size, self.size));
        }
        if self.modified != then.modified {
            out.push(format!("modified {:?} -> {:?}", then.modified, self.modified));
        }
        #[cfg(unix)]
        {
            if self.changed != then.changed {
                out.push("status changed (ctime moved: written or replaced)".into());
            }
            if self.inode != then.inode {
                out.push("replaced by another file".into());
            }
        }
        out
    }
}

pub(crate) struct OpenFile {
    file: File,
    path: PathBuf,
    state: FileState,
    /// The birth time, where the platform knows it.
    created: Option<SystemTime>,
}

impl OpenFile {
    fn open(path: PathBuf) -> Result<Self, Error> {
        let err = |source| Error::SourceOpen { path: path.clone(), source };
        let file = File::open(&path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Err(err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")));
        }
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        Ok(Self { file, path, state: FileState::of(&meta), created: meta.created().ok() })
    }

    /// The file through the open handle and by its path must still be what it was.
    fn check(&self) -> Result<(), SourceError> {
        let now = self.file.metadata().map_err(|e| SourceError::Io(format!("{}: {e}", self.path.display())))?;
        let by_path = std::fs::metadata(&self.path)
            .map_err(|e| SourceError::Changed(format!("{} cannot be inspected any more: {e}", self.path.display())))?;
        for (what, meta) in [("open file", now), ("path", by_path)] {
            let differences = FileState::of(&meta).differences(&self.state);
            if !differences.is_empty() {
                return Err(SourceError::Changed(format!(
                    "{} ({what}) changed during the upload: {}",
                    self.path.display(),
                    differences.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The same file, through a handle of its own, for a check from another thread.
    fn try_clone(&self) -> Option<Self> {
        Some(Self {
            file: self.file.try_clone().ok()?,
            path: self.path.clone(),
            state: self.state.clone(),
            created: self.created,
        })
    }

    fn read(&self, offset: u64, len: usize, part: PartBuilder, pool: &PartBuffers) -> Result<PartData, SourceError> {
        self.check()?;
        let part = fill(|buf, filled| read_at(&self.file, buf, offset + filled as u64), len, part, pool)
            .map_err(|e| SourceError::Io(format!("{} at offset {offset}: {e}", self.path.display())))?;
        self.check()?;
        Ok(part)
    }
}

enum Open {
    File(OpenFile),
    Reader { reader: Box<dyn Read + Send>, position: u64 },
    Bytes(Bytes),
}

/// A source ready to serve reads (on the reading thread).
pub struct OpenSource {
    inner: Open,
    pool: PartBuffers,
}

impl fmt::Debug for OpenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Open::File(file) => f.debug_struct("OpenSource::File").field("path", &file.path).finish(),
            Open::Reader { position, .. } => f.debug_struct("OpenSource::Reader").field("position", position).finish(),
            Open::Bytes(b) => f.debug_struct("OpenSource::Bytes").field("len", &b.len()).finish(),
        }
    }
}

impl OpenSource {
    /// Its size (files and bytes know it) and, for a file, the fingerprint a checkpoint keeps.
    #[must_use]
    pub fn facts(&self) -> SourceFacts {
        match &self.inner {
            Open::File(f) => SourceFacts {
                size: Some(f.state.size),
                fingerprint: Some(
                    FileFingerprint::new(f.path.display().to_string(), f.state.size, f.state.modified).to_string(),
                ),
                read_once: false,
            },
            Open::Reader { .. } => SourceFacts { read_once: true, ..SourceFacts::default() },
            Open::Bytes(b) => SourceFacts { size: Some(b.len() as u64), fingerprint: None, read_once: false },
        }
    }

    /// The file's canonical path, for a file.
    #[must_use]
    pub fn path(&self) -> Option<&std::path::Path> {
        match &self.inner {
            Open::File(f) => Some(&f.path),
            _ => None,
        }
    }

    /// When the source was last modified and when it was made, where known (files only).
    #[must_use]
    pub fn times(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        match &self.inner {
            Open::File(f) => (f.state.modified, f.created),
            _ => (None, None),
        }
    }

    /// Whether the source can be read again from its start (files and bytes; not streams).
    #[must_use]
    pub fn can_reread(&self) -> bool {
        !matches!(self.inner, Open::Reader { .. })
    }

    /// What a direct upload's body is streamed from (through a handle of its own, for a file):
    /// `None` for a stream, which can be read only once.
    pub(crate) fn body_source(&self) -> Option<BodySource> {
        match &self.inner {
            Open::File(f) => f.try_clone().map(BodySource::File),
            Open::Bytes(b) => Some(BodySource::Bytes(b.clone())),
            Open::Reader { .. } => None,
        }
    }

    /// For a file, the check a run makes before each commit (on its own thread: the source
    /// itself is on the reading thread by then). `None` for streams and bytes, which cannot
    /// change, and if the file's handle cannot be duplicated.
    pub(crate) fn commit_check(&self) -> Option<CommitCheck> {
        match &self.inner {
            Open::File(f) => f.try_clone().map(CommitCheck),
            _ => None,
        }
    }

    /// Reads `len` bytes at `offset` (fewer only where the source ends) into `part`, the
    /// machine's builder for this read, 256 KiB at a time, each chunk hashed while in cache.
    pub(crate) fn read(&mut self, offset: u64, len: usize, part: PartBuilder) -> Result<PartData, SourceError> {
        let pool = &self.pool;
        match &mut self.inner {
            Open::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(len).min(b.len());
                Ok(part.finish_with_bytes(b.slice(start..end)))
            }
            Open::Reader { reader, position } => {
                if offset != *position {
                    return Err(SourceError::Io(format!(
                        "a stream can only be read in order: asked for offset {offset}, at {position}"
                    )));
                }
                let at = *position;
                let part = fill(|buf, _| reader.read(buf), len, part, pool)
                    .map_err(|e| SourceError::Io(format!("stream at offset {at}: {e}")))?;
                *position += part.len() as u64;
                Ok(part)
            }
            Open::File(file) => file.read(offset, len, part, pool),
        }
    }
}

/// The source a direct upload's body is read from, on the transport's side.
pub(crate) enum BodySource {
    File(OpenFile),
    Bytes(Bytes),
}

impl BodySource {
    /// `len` bytes at `offset` (fewer where the source ends); a file is checked for changes
    /// before the read when `check_before`, and after it when `check_after`.
    pub(crate) fn read(&self, offset: u64, len: usize, check_before: bool, check_after: bool) -> io::Result<Bytes> {
        match self {
            BodySource::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                Ok(b.slice(start..start.saturating_add(len).min(b.len())))
            }
            BodySource::File(f) => {
                let changed = |e: SourceError| io::Error::other(e.to_string());
                if check_before {
                    f.check().map_err(changed)?;
                }
                let mut buf = vec![0u8; len];
                let mut filled = 0;
                while filled < len {
                    match read_at(&f.file, &mut buf[filled..], offset + filled as u64) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(filled);
                if check_after {
                    f.check().map_err(changed)?;
                }
                Ok(Bytes::from(buf))
            }
        }
    }
}

/// Checks that a file source is still what it was when the upload started, as every read does:
/// what was read is committed only if the file has not changed since.
pub(crate) struct CommitCheck(OpenFile);

impl CommitCheck {
    pub(crate) fn check(&self) -> Result<(), SourceError> {
        self.0.check()
    }
}

/// Fills `part` with up to `len` bytes (fewer only where the source ends), a chunk at a time.
/// `read` gets the buffer to fill and how many bytes of the part are already read.
fn fill(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Write as _;

    fn read_all(source: &mut OpenSource, offset: u64, len: usize) -> Result<PartData, SourceError> {
        source.read(offset, len, PartBuilder::new(Vec::new()))
    }

    #[test]
    fn a_file_is_read_by_range_and_its_facts_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut source = Source::file(&path).open(2).unwrap();
        let facts = source.facts();
        assert_eq!(facts.size, Some(10));
        assert!(facts.fingerprint.unwrap().contains("a.bin"));
        assert_eq!(&read_all(&mut source, 3, 4).unwrap().bytes()[..], b"3456");
        assert_eq!(&read_all(&mut source, 8, 4).unwrap().bytes()[..], b"89");
    }

    #[test]
    fn an_in_place_rewrite_with_the_mtime_restored_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut source = Source::file(&path).open(2).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(b"X").unwrap();
        f.set_modified(before).unwrap();
        drop(f);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before, "mtime restored");
        let e = read_all(&mut source, 0, 4).unwrap_err();
        assert!(matches!(e, SourceError::Changed(_)), "{e:?}");
    }

    #[test]
    fn a_stream_is_read_in_order_only() {
        let mut source = Source::reader(&b"abcdef"[..]).open(2).unwrap();
        assert_eq!(source.facts(), SourceFacts { read_once: true, ..SourceFacts::default() });
        assert_eq!(&read_all(&mut source, 0, 4).unwrap().bytes()[..], b"abcd");
        assert!(read_all(&mut source, 0, 4).is_err());
        assert_eq!(&read_all(&mut source, 4, 4).unwrap().bytes()[..], b"ef");
    }

    #[test]
    fn a_directory_is_not_a_source() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Source::file(dir.path()).open(1), Err(Error::SourceOpen { .. })));
    }
}
