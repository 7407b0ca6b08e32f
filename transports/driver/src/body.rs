//! A direct upload's body streamed from its source: the multipart head, the source's bytes a
//! bounded chunk at a time (a file through positioned reads, checked for changes before the
//! first and after the last), and the tail. The run attaches a [`SourceReader`] to each request
//! that carries a [`SourceBody`]; the transport turns it into its body type.

use crate::source::BodySource;
use box_upload_core::{SourceBody, HASH_CHUNK};
use bytes::Bytes;
use std::io::{self, Read};
use std::sync::Arc;

/// What a transport needs to send a request whose body comes from the source: put in the
/// request's extensions by [`Run::poll`](crate::Run::poll). Cheap to clone; each send (a retry
/// too) makes a fresh [`reader`](Self::reader) from the start of the body.
#[derive(Clone)]
pub struct SourceReader {
    source: Arc<BodySource>,
    body: SourceBody,
}

impl std::fmt::Debug for SourceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceReader").field("len", &self.body.total_len()).finish_non_exhaustive()
    }
}

impl SourceReader {
    pub(crate) fn new(source: Arc<BodySource>, body: SourceBody) -> Self {
        Self { source, body }
    }

    /// The body's whole length (its `Content-Length`).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.body.total_len()
    }

    /// Whether the body is empty (never, for a multipart body).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body from its first byte, a chunk at a time.
    #[must_use]
    pub fn reader(&self) -> BodyReader {
        BodyReader { source: Arc::clone(&self.source), body: self.body.clone(), at: 0, chunk: Bytes::new() }
    }
}

/// The body of one send, as [`Read`] or as [`next_chunk`](Self::next_chunk)s of at most 256 KiB.
/// A source that changed, or that ends early, is an I/O error: the send fails, and the run's
/// check before the next send stops the upload.
pub struct BodyReader {
    source: Arc<BodySource>,
    body: SourceBody,
    /// Bytes of the body handed out so far.
    at: u64,
    /// What is left of the chunk being read through [`Read`].
    chunk: Bytes,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader").field("at", &self.at).field("len", &self.body.total_len()).finish()
    }
}

impl BodyReader {
    /// The next chunk of the body; `None` at its end.
    pub fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let head = self.body.head.len() as u64;
        let file_end = head + self.body.len;
        let total = self.body.total_len();
        if self.at >= total {
            return Ok(None);
        }
        let chunk = if self.at < head {
            self.body.head.slice(usize::try_from(self.at).unwrap_or(0)..)
        } else if self.at < file_end {
            let offset = self.body.offset + (self.at - head);
            let len = usize::try_from(file_end - self.at).unwrap_or(HASH_CHUNK).min(HASH_CHUNK);
            let first = self.at == head;
            let last = self.at + len as u64 == file_end;
            let bytes = self.source.read(offset, len, first, last)?;
            if bytes.len() != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the source ended at offset {}, before its declared size", offset + bytes.len() as u64),
                ));
            }
            bytes
        } else {
            self.body.tail.slice(usize::try_from(self.at - file_end).unwrap_or(0)..)
        };
        self.at += chunk.len() as u64;
        Ok(Some(chunk))
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.chunk.is_empty() {
            match self.next_chunk()? {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
