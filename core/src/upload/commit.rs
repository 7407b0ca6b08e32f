//! The commit: sending it with every part and the whole-file digest, what its answers mean (202
//! waited out within `commit_timeout`, a transient `parts_mismatch` retried a few times), and the
//! check that the committed file is the one uploaded.
//!
//! [`CommitRetries`] is the one commit policy: the big upload and
//! [`CommitAndWait`](crate::CommitAndWait) both answer Box through it.

use super::{sha1_matches, BigUpload, Endpoint, Job};
use crate::dispatch::Dispatcher;
use crate::error::{Error, ProtocolError};
use crate::machine::{Event, RequestKind};
use crate::models::{FileFull, Files};
use crate::operations::{parse_commit, CommitResponse, CommitUploadSession};
use bytes::Bytes;
use http::Response;
use std::collections::VecDeque;
use std::time::Instant;

/// The state of one run of commits: when the first went out, how many were sent, how many
/// `parts_mismatch` answers were retried. Bounds come from the client's
/// [`RetryPolicy`](crate::RetryPolicy): `commit_timeout`, `max_retry_after`, the backoff, and
/// `parts_mismatch_retries`.
#[derive(Debug, Default)]
pub(crate) struct CommitRetries {
    started: Option<Instant>,
    commits: u32,
    mismatch_retries: u32,
}

/// What to do after a commit's final answer.
#[derive(Debug)]
pub(crate) enum CommitNext {
    /// Box committed: these are the files.
    Committed(Files),
    /// Send the commit again, not before this instant.
    Again(Instant),
}

impl CommitRetries {
    /// Starts the `commit_timeout` clock at `now`, if no commit started it yet.
    pub(crate) fn start_clock(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// Counts one more commit sent.
    pub(crate) fn count(&mut self) {
        self.commits += 1;
    }

    /// Box's final answer (retries of 429 and 5xx already done by the dispatcher) to the
    /// commit, at `now`: the files, when to commit again (an event says why), or the error that
    /// ends the run.
    pub(crate) fn on_answer<J: Clone>(
        &mut self,
        response: Response<Bytes>,
        now: Instant,
        dispatch: &mut Dispatcher<J>,
        events: &mut VecDeque<Event>,
    ) -> Result<CommitNext, Error> {
        let headers = response.headers().clone();
        match parse_commit(response) {
            Ok(CommitResponse::Committed(files)) => Ok(CommitNext::Committed(files)),
            Ok(CommitResponse::NotReady { retry_after }) => {
                let policy = dispatch.config().retry.clone();
                let delay = match retry_after {
                    Some(d) => d.min(policy.max_retry_after),
                    None => policy.backoff(self.commits, dispatch.jitter()),
                };
                let started = self.started.unwrap_or(now);
                let waited = now.saturating_duration_since(started);
                if waited + delay > policy.commit_timeout {
                    return Err(Error::CommitTimeout { attempts: self.commits, waited });
                }
                events.push_back(Event::CommitPending { attempts: self.commits, delay });
                Ok(CommitNext::Again(now + delay))
            }
            Err(e) if e.box_code() == Some("parts_mismatch") => {
                let policy = dispatch.config().retry.clone();
                if self.mismatch_retries >= policy.parts_mismatch_retries {
                    return Err(e);
                }
                self.mismatch_retries += 1;
                let delay = dispatch.retry_delay(&headers, self.mismatch_retries);
                events.push_back(Event::Retrying {
                    kind: RequestKind::CommitSession,
                    attempt: self.mismatch_retries,
                    delay,
                    reason: "Box answered parts_mismatch".into(),
                });
                Ok(CommitNext::Again(now + delay))
            }
            Err(e) => Err(e),
        }
    }
}

impl BigUpload {
    pub(super) fn commit(&mut self, now: Instant, not_before: Option<Instant>) {
        let Some(digest) = self.digest else { return };
        self.commit_retries.start_clock(now);
        let session = match self.session_ref(Endpoint::Commit) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let mut op = CommitUploadSession::new(session, self.acked_parts(), digest);
        op.if_match = self.settings.if_match.clone();
        op.if_none_match = self.settings.if_none_match.clone();
        op.attributes = self.settings.commit_attributes.clone();
        self.commit_retries.count();
        self.submit(Job::Commit, &op, not_before);
    }

    pub(super) fn on_commit_answer(&mut self, response: Response<Bytes>, now: Instant) {
        match self.commit_retries.on_answer(response, now, &mut self.dispatch, &mut self.events) {
            Ok(CommitNext::Committed(files)) => {
                let result = self.check_committed(files.entries.into_iter().next());
                self.finish(result);
            }
            Ok(CommitNext::Again(at)) => self.commit(now, Some(at)),
            Err(e) => self.fail(e),
        }
    }

    fn check_committed(&self, file: Option<FileFull>) -> Result<FileFull, Error> {
        let file = file.ok_or(ProtocolError::MissingField { kind: RequestKind::CommitSession, field: "entries[0]" })?;
        if file.id.is_empty() {
            return Err(ProtocolError::MissingField { kind: RequestKind::CommitSession, field: "entries[0].id" }.into());
        }
        if let Some(size) = file.size {
            if size != self.settings.file_size {
                return Err(ProtocolError::CommitMismatch(format!(
                    "Box reports {size} bytes, we uploaded {}",
                    self.settings.file_size
                ))
                .into());
            }
        }
        if let (Some(sha1), Some(ours)) = (file.sha1.as_deref(), self.digest) {
            if !sha1_matches(Some(sha1), ours) {
                return Err(
                    ProtocolError::CommitMismatch(format!("Box reports sha1 {sha1}, we uploaded {ours}")).into()
                );
            }
        }
        Ok(file)
    }
}
