//! The reading thread: serves the machine's reads from the source, one at a time, in order, each
//! into the machine's builder (so a read carries the whole-file hash on), and reports each back
//! through the run's completion callback. The same thread for every transport: reading and
//! hashing are blocking work, and a plain thread keeps them off any async runtime.

use crate::run::{Completion, Notify};
use crate::source::OpenSource;
use crate::Error;
use box_upload_core::{PartBuilder, ReadRequest, SourceError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Sender};

/// The handle of a reading thread. Dropping it lets the thread finish the read it holds and stop;
/// nobody waits for it, so a run can end while a stream is blocked in a read.
pub(crate) struct ReadingThread {
    jobs: Sender<(ReadRequest, PartBuilder)>,
}

impl ReadingThread {
    pub(crate) fn spawn(mut source: OpenSource, notify: Notify) -> Result<Self, Error> {
        let (jobs, rx) = mpsc::channel::<(ReadRequest, PartBuilder)>();
        // The thread logs into the caller's subscriber, under the caller's span.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let parent = tracing::Span::current();
        std::thread::Builder::new()
            .name("box-upload-read".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _in = parent.enter();
                    while let Ok((read, part)) = rx.recv() {
                        let data = catch_unwind(AssertUnwindSafe(|| source.read(read.offset, read.len, part)))
                            .unwrap_or_else(|_| Err(SourceError::Io("reading the source panicked".into())));
                        notify(Completion::Read(read.id, data));
                    }
                });
            })
            .map_err(|e| Error::Internal(format!("cannot start the reading thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Hands `read` to the thread; `false` when the thread is gone.
    pub(crate) fn send(&self, read: ReadRequest, part: PartBuilder) -> bool {
        self.jobs.send((read, part)).is_ok()
    }
}
