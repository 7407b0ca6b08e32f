//! The commit: sending it with every part and the whole-file digest, what its answers mean (202
//! waited out within `commit_timeout`, a transient `parts_mismatch` retried a few times, a
//! refusal after an unanswered commit looked into), and the check that the committed file is the
//! one uploaded (in `confirm`).
//!
//! [`CommitRetries`] is the one commit policy: the big upload and
//! [`CommitAndWait`](crate::CommitAndWait) both answer Box through it.

use super::confirm::{Confirm, ConfirmNext, Expected};
use super::{BigUpload, Endpoint, Job};
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::machine::{Event, RequestKind};
use crate::models::Files;
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
    /// A commit went unanswered (transport failure or 5xx), so Box may have applied it.
    maybe_applied: bool,
}

/// What to do after a commit's final answer.
#[derive(Debug)]
pub(crate) enum CommitNext {
    /// Box committed: these are the files.
    Committed(Files),
    /// Send the commit again, not before this instant.
    Again(Instant),
    /// Box refused a commit after an earlier one went unanswered: the earlier one may have been
    /// applied (the session is then gone, the name taken, the etag moved on). Look at the file;
    /// the text says what was seen.
    Unanswered(String),
}

/// Statuses that a commit sent again after an applied one can get: 404 (the session is gone),
/// 409 (the name is taken, by our own file) and 412 (`If-Match`: the etag moved on).
const AFTER_APPLIED: [u16; 3] = [404, 409, 412];

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
    /// commit, at `now`: the files, when to commit again (an event says why), a refusal to look
    /// into (`maybe_applied`: an earlier send of this commit went unanswered), or the error that
    /// ends the run.
    pub(crate) fn on_answer<J: Clone>(
        &mut self,
        response: Response<Bytes>,
        maybe_applied: bool,
        now: Instant,
        dispatch: &mut Dispatcher<J>,
        events: &mut VecDeque<Event>,
    ) -> Result<CommitNext, Error> {
        self.maybe_applied |= maybe_applied;
        let headers = response.headers().clone();
        let status = response.status().as_u16();
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
            Err(e) if self.maybe_applied && AFTER_APPLIED.contains(&status) => Ok(CommitNext::Unanswered(format!(
                "a commit went unanswered (connection lost or 5xx), then Box answered the commit sent again: {e}"
            ))),
            Err(e) => Err(e),
        }
    }

    /// A commit that failed without a final answer ([`Error::Transport`] after the retries): it
    /// may have been applied, so the file is looked at (the text says what was seen).
    pub(crate) fn unanswered(error: &Error) -> Option<String> {
        match error {
            Error::Transport { kind: RequestKind::CommitSession, .. } => {
                Some(format!("the commit got no answer ({error})"))
            }
            _ => None,
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

    pub(super) fn on_commit_answer(&mut self, response: Response<Bytes>, maybe_applied: bool, now: Instant) {
        let next = self.commit_retries.on_answer(response, maybe_applied, now, &mut self.dispatch, &mut self.events);
        let config = self.dispatch.config().clone();
        match next {
            Ok(CommitNext::Committed(files)) => {
                let next = self.confirm().committed(files, &config);
                self.on_confirm(next);
            }
            Ok(CommitNext::Again(at)) => self.commit(now, Some(at)),
            Ok(CommitNext::Unanswered(why)) => {
                let next = self.confirm().unanswered(why, &config);
                self.on_confirm(next);
            }
            Err(e) => self.fail(e),
        }
    }

    /// The commit failed without a final answer: a transport failure is looked into, since
    /// Box may have applied it.
    pub(super) fn on_commit_failure(&mut self, error: Error) {
        match CommitRetries::unanswered(&error) {
            Some(why) => {
                let config = self.dispatch.config().clone();
                let next = self.confirm().unanswered(why, &config);
                self.on_confirm(next);
            }
            None => self.fail(error),
        }
    }

    pub(super) fn on_confirm_answer(&mut self, response: Response<Bytes>) {
        let config = self.dispatch.config().clone();
        let next = match self.confirm.as_mut() {
            Some(confirm) => confirm.on_answer(response, &config),
            None => return,
        };
        self.on_confirm(next);
    }

    pub(super) fn on_confirm_failure(&mut self, error: &Error) {
        let next = match self.confirm.as_mut() {
            Some(confirm) => confirm.on_failure(error),
            None => return,
        };
        self.on_confirm(next);
    }

    /// The confirmation of this upload's commit (made on first use).
    fn confirm(&mut self) -> &mut Confirm {
        let expected = Expected {
            session_id: self.session.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            sha1: self.digest.unwrap_or(crate::digest::Sha1Digest([0; 20])),
            size: self.settings.file_size,
            target: Some(self.settings.target.clone()),
            if_match: self.settings.if_match.clone(),
        };
        self.confirm.get_or_insert_with(|| Confirm::new(expected))
    }

    fn on_confirm(&mut self, next: ConfirmNext) {
        match next {
            ConfirmNext::Send(kind, mut request) => {
                self.add_headers(&mut request);
                self.dispatch.submit(Job::Confirm, kind, request, None);
            }
            // Not `fail`: after a commit there is nothing to abort (the session is committed or
            // gone, or whether it is cannot be told and it is left for the caller to check).
            ConfirmNext::Done(result) => self.finish(result),
        }
    }
}
