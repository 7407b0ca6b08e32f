//! Machines for working on an upload session by hand (the CLI's `session parts --all` and
//! `session commit`): every part of a session, listed page by page, and a commit that waits out
//! Box's 202 answers. Both run on the engine [`Call`](crate::Call) uses, so they have the
//! client's token handling and retries; their paging and commit rules are the big upload's own.

use crate::call::{machine_via_run, Run, StepCx, Steps};
use crate::error::{Error, InputError};
use crate::machine::RequestKind;
use crate::models::{Files, Order, UploadParts};
use crate::operations::{
    CommitUploadSession, ExtraHeaders, ListUploadSessionParts, Operation, SessionRef, MAX_LIST_LIMIT,
};
use crate::planner::MAX_PARTS;
use crate::upload::{CommitNext, CommitRetries, Confirm, ConfirmNext, Expected, ListOutcome, Lister, UploadTarget};
use crate::{Client, Config};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use std::time::Instant;

/// Every part of an upload session, as one [`UploadParts`]: the entries in the order Box listed
/// them, `total_count` their number, `offset` 0 and `limit` the page size used.
///
/// It pages with the big upload's rules, so a lying or broken Box ends the listing with a
/// [`ProtocolError`](crate::ProtocolError) instead of paging forever: every page has a
/// `total_count`, the same on every page and at most [`with_max_parts`](Self::with_max_parts)
/// (default [`MAX_PARTS`]); a page holds at most the limit; the pages never hold more than
/// `total_count`; an empty page before the total is reached is an error; and no page is asked for
/// past Box's largest offset ([`MAX_LIST_OFFSET`](crate::operations::MAX_LIST_OFFSET)), so a
/// listing that would need one fails
/// ([`ProtocolError::ListOffsetTooLarge`](crate::ProtocolError::ListOffsetTooLarge)) as soon as
/// that is known. At most `MAX_LIST_OFFSET + 1` pages are asked for, whatever Box answers.
///
/// Made by [`Client::list_all_parts`], [`by_id`](Self::by_id) or [`by_url`](Self::by_url); the
/// `with_*` methods apply until the machine is first polled.
///
/// ```
/// use box_upload_core::{bytes::Bytes, http, Client, Config, DeveloperToken, ListAllParts, Machine};
/// use std::time::Instant;
///
/// let client = Client::new(Config::new(), DeveloperToken::new("token"));
/// let mut list = ListAllParts::by_id(&client, "F971964745A5CD0C001BBE4E58196BFD")
///     .with_limit(2)?
///     .with_max_parts(3); // the session's total_parts
/// let now = Instant::now();
/// let pages = [
///     (0, r#"{"entries":[{"part_id":"A","offset":0,"size":8},{"part_id":"B","offset":8,"size":8}],"total_count":3}"#),
///     (2, r#"{"entries":[{"part_id":"C","offset":16,"size":4}],"total_count":3}"#),
/// ];
/// for (offset, page) in pages {
///     let t = list.poll_transmit(now).expect("a page to ask for");
///     assert!(t.request.uri().to_string().ends_with(&format!("/parts?offset={offset}&limit=2")));
///     // Send it with any HTTP client; here, Box's answer is made up.
///     let answer = http::Response::builder().status(200).body(Bytes::from_static(page.as_bytes()))?;
///     list.handle_response(t.id, answer, now);
/// }
/// let parts = list.poll_output().expect("finished")?;
/// let offsets: Vec<u64> = parts.entries.iter().map(|p| p.offset).collect();
/// assert_eq!(offsets, [0, 8, 16]);
/// assert_eq!((parts.total_count, parts.offset), (Some(3), Some(0)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ListAllParts {
    run: Run<ListSteps>,
}

#[derive(Debug)]
struct ListSteps {
    session: SessionRef,
    limit: u64,
    max_parts: u64,
    headers: ExtraHeaders,
    lister: Lister,
    /// The page asked for last.
    page: ListUploadSessionParts,
    order: Option<Vec<Order>>,
}

impl ListSteps {
    fn next_page(&self) -> ListUploadSessionParts {
        let mut page = self.lister.page(self.session.clone());
        page.headers = self.headers.clone();
        page
    }
}

impl Steps for ListSteps {
    type Output = UploadParts;

    fn first(&mut self, config: &Config) -> Result<(RequestKind, Request<Bytes>), Error> {
        self.lister = Lister::new(self.limit, self.max_parts);
        self.page = self.next_page();
        Ok((self.page.kind(), self.page.request(config)?))
    }

    fn answered(&mut self, response: Response<Bytes>, cx: &mut StepCx<'_>) -> Option<Result<UploadParts, Error>> {
        let page = match self.page.parse(response) {
            Ok(page) => page,
            Err(e) => return Some(Err(e)),
        };
        if self.order.is_none() {
            self.order.clone_from(&page.order);
        }
        match self.lister.add_page(page) {
            Err(e) => Some(Err(e.into())),
            Ok(ListOutcome::More) => {
                self.page = self.next_page();
                let config = cx.dispatch.config().clone();
                match self.page.request(&config) {
                    Ok(request) => {
                        cx.submit(self.page.kind(), request, None);
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Ok(ListOutcome::Done(entries)) => Some(Ok(UploadParts {
                total_count: Some(entries.len() as u64),
                entries,
                limit: Some(self.lister.limit()),
                offset: Some(0),
                order: self.order.take(),
            })),
        }
    }
}

impl ListAllParts {
    /// Lists every part of `session` (by id, or at its `session_endpoints.list_parts` URL),
    /// 1000 per page, expecting at most [`MAX_PARTS`].
    pub fn new(client: &Client, session: SessionRef) -> Self {
        let lister = Lister::new(MAX_LIST_LIMIT, MAX_PARTS);
        let page = lister.page(session.clone());
        let steps = ListSteps {
            session,
            limit: MAX_LIST_LIMIT,
            max_parts: MAX_PARTS,
            headers: ExtraHeaders::default(),
            lister,
            page,
            order: None,
        };
        Self { run: Run::new(client, steps) }
    }

    /// Lists every part of the session with this id.
    pub fn by_id(client: &Client, session_id: impl Into<String>) -> Self {
        Self::new(client, SessionRef::Id(session_id.into()))
    }

    /// Lists every part at this URL (the session's `session_endpoints.list_parts`).
    pub fn by_url(client: &Client, url: impl Into<String>) -> Self {
        Self::new(client, SessionRef::Url(url.into()))
    }

    /// Asks for `limit` parts per page (default and at most 1000; 0 is taken as 1).
    pub fn with_limit(mut self, limit: u64) -> Result<Self, InputError> {
        if limit > MAX_LIST_LIMIT {
            return Err(InputError::LimitTooLarge(limit));
        }
        if let Some(steps) = self.run.steps_before_start() {
            steps.limit = limit;
        }
        Ok(self)
    }

    /// Refuses a listing whose `total_count` is over `max_parts`: pass the session's
    /// `total_parts` when known (default [`MAX_PARTS`]).
    #[must_use]
    pub fn with_max_parts(mut self, max_parts: u64) -> Self {
        if let Some(steps) = self.run.steps_before_start() {
            steps.max_parts = max_parts;
        }
        self
    }

    /// Adds a header to every page's request (e.g. `X-Box-UA`, a tracing id).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let Some(steps) = self.run.steps_before_start() {
            steps.headers.0.append(name, value);
        }
        self
    }

    /// The session listed.
    #[must_use]
    pub fn session(&self) -> &SessionRef {
        &self.run.steps().session
    }
}

machine_via_run!([] ListAllParts, UploadParts);

/// A commit that waits out Box's 202 ("not every part is processed yet") answers, as the big
/// upload's commit does and with the same code: each 202 is answered with
/// [`Event::CommitPending`](crate::Event::CommitPending) and the commit is sent again after Box's
/// `Retry-After` (cut to the policy's `max_retry_after`) or, without one, the policy's backoff.
/// Once the next wait would end past [`RetryPolicy::commit_timeout`](crate::RetryPolicy) from the
/// first commit, the run fails with [`Error::CommitTimeout`]. A `parts_mismatch` answer is sent
/// again up to `parts_mismatch_retries` times (with [`Event::Retrying`](crate::Event::Retrying)),
/// like the big upload's. The waits are deadlines of [`poll_timeout`](crate::Machine::poll_timeout):
/// the machine reads no clock.
///
/// The committed file is checked as the big upload checks it: its `size` must be the sum of the
/// parts' sizes and its `sha1` the commit's digest ([`ProtocolError::CommitMismatch`](crate::ProtocolError::CommitMismatch)
/// otherwise), and a 201 without either is confirmed by getting the file it names
/// (`GET /2.0/files/{id}` on the API host). A commit that went unanswered and whose resend Box
/// refuses (404, 409 or 412) can only be looked into when the machine knows the session's file:
/// give it with [`with_target`](Self::with_target). Without it (the CLI's `session commit`,
/// which is given only the session) the run ends in
/// [`Error::CommitOutcomeUnknown`] rather than in a success nothing confirmed.
///
/// Made by [`Client::commit_and_wait`]. Its output is what Box's 201 carries, or, when the file
/// had to be looked up, the file as the lookup gives it
/// ([`CONFIRM_FIELDS`](crate::CONFIRM_FIELDS)), in a `Files` of one entry.
///
/// ```
/// use box_upload_core::{bytes::Bytes, http, Client, Config, DeveloperToken, Event, Machine, Sha1Digest};
/// use box_upload_core::operations::CommitUploadSession;
/// use std::time::{Duration, Instant};
///
/// let client = Client::new(Config::new(), DeveloperToken::new("token"));
/// let op = CommitUploadSession::by_id("F971964745A5CD0C001BBE4E58196BFD", Vec::new(), Sha1Digest([0; 20]));
/// let mut commit = client.commit_and_wait(op);
/// let start = Instant::now();
///
/// let t = commit.poll_transmit(start).expect("the commit");
/// let not_ready = http::Response::builder().status(202).header("retry-after", "5").body(Bytes::new())?;
/// commit.handle_response(t.id, not_ready, start);
/// assert_eq!(commit.poll_event(), Some(Event::CommitPending { attempts: 1, delay: Duration::from_secs(5) }));
/// // Nothing is sent before Box's Retry-After.
/// assert!(commit.poll_transmit(start).is_none());
/// let later = commit.poll_timeout().expect("a deadline");
/// assert_eq!(later, start + Duration::from_secs(5));
///
/// commit.handle_timeout(later);
/// let t = commit.poll_transmit(later).expect("the commit, again");
/// let done = http::Response::builder().status(201).body(Bytes::from_static(
///     br#"{"entries":[{"id":"12345","type":"file","size":0,"sha1":"0000000000000000000000000000000000000000"}],"total_count":1}"#,
/// ))?;
/// commit.handle_response(t.id, done, later);
/// let files = commit.poll_output().expect("finished")?;
/// assert_eq!(files.entries[0].id, "12345");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CommitAndWait {
    run: Run<CommitSteps>,
}

#[derive(Debug)]
struct CommitSteps {
    op: CommitUploadSession,
    retries: CommitRetries,
    confirm: Confirm,
    /// A lookup of the confirmation is under way.
    confirming: bool,
}

impl CommitSteps {
    fn confirmed(&mut self, next: ConfirmNext, cx: &mut StepCx<'_>) -> Option<Result<Files, Error>> {
        match next {
            ConfirmNext::Send(kind, mut request) => {
                self.op.headers.apply(&mut request);
                self.confirming = true;
                cx.submit(kind, request, None);
                None
            }
            ConfirmNext::Done(result) => Some(result.map(|file| Files { entries: vec![file], total_count: Some(1) })),
        }
    }
}

impl Steps for CommitSteps {
    type Output = Files;

    fn first(&mut self, config: &Config) -> Result<(RequestKind, Request<Bytes>), Error> {
        let request = self.op.request(config)?;
        self.retries.count();
        Ok((self.op.kind(), request))
    }

    fn sent(&mut self, now: Instant) {
        self.retries.start_clock(now);
    }

    fn answered(&mut self, response: Response<Bytes>, cx: &mut StepCx<'_>) -> Option<Result<Files, Error>> {
        let config = cx.dispatch.config().clone();
        if self.confirming {
            let next = self.confirm.on_answer(response, &config);
            return self.confirmed(next, cx);
        }
        match self.retries.on_answer(response, cx.maybe_applied, cx.now, cx.dispatch, cx.events) {
            Ok(CommitNext::Committed(files)) => {
                let total_count = files.total_count;
                match self.confirm.committed(files, &config) {
                    // Box's answer as it came, the file checked.
                    ConfirmNext::Done(Ok(file)) => Some(Ok(Files { entries: vec![file], total_count })),
                    next => self.confirmed(next, cx),
                }
            }
            Ok(CommitNext::Unanswered(why)) => {
                let next = self.confirm.unanswered(why, &config);
                self.confirmed(next, cx)
            }
            Ok(CommitNext::Again(at)) => {
                let config = cx.dispatch.config().clone();
                match self.op.request(&config) {
                    Ok(request) => {
                        self.retries.count();
                        cx.submit(self.op.kind(), request, Some(at));
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Err(e) => Some(Err(e)),
        }
    }

    fn failed(&mut self, error: Error, cx: &mut StepCx<'_>) -> Option<Result<Files, Error>> {
        let config = cx.dispatch.config().clone();
        if self.confirming {
            let next = self.confirm.on_failure(&error);
            return self.confirmed(next, cx);
        }
        match CommitRetries::unanswered(&error) {
            Some(why) => {
                let next = self.confirm.unanswered(why, &config);
                self.confirmed(next, cx)
            }
            None => Some(Err(error)),
        }
    }
}

impl CommitAndWait {
    pub(crate) fn new(client: &Client, op: CommitUploadSession) -> Self {
        let expected = Expected {
            session_id: session_id(&op.session),
            sha1: op.digest,
            // The committed file is its parts, end to end.
            size: op.parts.iter().map(|p| p.size).fold(0u64, u64::saturating_add),
            target: None,
            if_match: op.if_match.clone(),
        };
        let steps =
            CommitSteps { op, retries: CommitRetries::default(), confirm: Confirm::new(expected), confirming: false };
        let mut run = Run::new(client, steps);
        run.start();
        Self { run }
    }

    /// The file the session was created for (a folder and name, or the file a version is for),
    /// so that a commit whose answer was lost can be confirmed by looking at it (see the type's
    /// docs). It is used whenever a confirmation starts, even after the first poll.
    #[must_use]
    pub fn with_target(mut self, target: UploadTarget) -> Self {
        self.run.steps_mut().confirm.set_target(target);
        self
    }

    /// The commit sent.
    #[must_use]
    pub fn operation(&self) -> &CommitUploadSession {
        &self.run.steps().op
    }
}

machine_via_run!([] CommitAndWait, Files);

/// The session's id, for messages: the id, or the path segment after `upload_sessions/` of a
/// session URL (else the whole URL).
fn session_id(session: &SessionRef) -> String {
    match session {
        SessionRef::Id(id) => id.clone(),
        SessionRef::Url(url) => url
            .split_once("upload_sessions/")
            .and_then(|(_, rest)| rest.split(['/', '?']).next())
            .filter(|id| !id.is_empty())
            .unwrap_or(url)
            .to_owned(),
    }
}
