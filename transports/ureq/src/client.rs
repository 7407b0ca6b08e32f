//! The blocking client: the core's client plus one shared ureq agent. The struct, its builder
//! and its methods are the shared ones (`box_upload_driver::client!`), blocking; this file adds
//! how a run is driven and the client around an agent of the caller's.

use crate::driver::drive;
use crate::transport::Agent;
use crate::Error;
use box_upload_core::{Machine, PartData, DEFAULT_PARTS_IN_FLIGHT};
use box_upload_driver::{OpenSource, UploadOptions};
use bytes::Bytes;

box_upload_driver::client!(
    /// Sends Box's chunked-upload requests with ureq, blocking the calling thread. Build one with
    /// [`Client::builder`].
    ///
    /// Cheap to clone: clones share the connection pool and the token cache. Every method runs a
    /// core machine to completion on the calling thread, with worker threads for the requests and
    /// the shared reading thread for the source.
    Ureq,
    Agent,
    {} {}
);

impl Client {
    /// A client around an existing core client and ureq agent. The agent must not follow
    /// redirects and must return every status as a response (`max_redirects(0)`,
    /// `http_status_as_error(false)`).
    #[must_use]
    pub fn from_parts(core: box_upload_core::Client, agent: ureq::Agent) -> Self {
        Self { core, wire: Agent { agent, expect_continue: true }, parts_in_flight: None }
    }

    /// The shared ureq agent.
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
        &self.wire.agent
    }

    fn drive_run<M>(
        &self,
        machine: &mut M,
        source: Option<OpenSource>,
        options: UploadOptions,
    ) -> Result<M::Output, Error>
    where
        M: Machine + Send,
        M::Output: Send,
    {
        // A worker per part in flight, one for the session's other requests, one spare.
        let workers = self.parts_in_flight.unwrap_or(DEFAULT_PARTS_IN_FLIGHT).saturating_add(2);
        drive(&self.wire, workers, machine, source, options)
    }

    fn part_data(bytes: Bytes) -> Result<PartData, Error> {
        Ok(PartData::new(bytes))
    }
}
