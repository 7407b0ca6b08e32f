//! The blocking client: the core's client plus one shared ureq agent. The struct, its builder
//! and its methods are the shared ones (`box_upload_driver::client!`), blocking; this file adds
//! the client around an agent of the caller's (the loop is `driver::drive`).

use crate::transport::Agent;
use crate::Error;
use box_upload_core::PartData;
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
    /// `http_status_as_error(false)`); its own proxy and TLS settings apply to every request.
    #[must_use]
    pub fn from_parts(core: box_upload_core::Client, agent: ureq::Agent) -> Self {
        let wire = Agent {
            agent,
            expect_continue: false,
            proxies: std::sync::Arc::new(box_upload_driver::ProxyRules::direct()),
            proxied: std::sync::Arc::default(),
            settings: None,
        };
        Self { core, wire, parts_in_flight: None, chunked_from: box_upload_core::DEFAULT_CHUNKED_FROM }
    }

    /// The shared ureq agent.
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
        &self.wire.agent
    }

    fn part_data(bytes: Bytes) -> Result<PartData, Error> {
        Ok(PartData::new(bytes))
    }
}
