//! The blocking client: the core's client plus one shared ureq agent. Its methods are the shared
//! surface (`box_upload_driver::client_surface!`), blocking.

use crate::driver::drive;
use crate::transport::Agent;
use crate::Error;
use box_upload_core::{Machine, PartData};
use box_upload_driver::{OpenSource, Settings, UploadOptions, Wire};
use bytes::Bytes;
use std::fmt;

/// Sends Box's chunked-upload requests with ureq, blocking the calling thread. Build one with
/// [`Client::builder`].
///
/// Cheap to clone: clones share the connection pool and the token cache. Every method runs a
/// core machine to completion on the calling thread, with worker threads for the requests and
/// the shared reading thread for the source.
#[derive(Clone)]
pub struct Client {
    core: box_upload_core::Client,
    agent: Agent,
    parts_in_flight: Option<usize>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("core", &self.core)
            .field("parts_in_flight", &self.parts_in_flight)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] (the same builder as every transport's).
pub type ClientBuilder = box_upload_driver::ClientBuilder<Ureq>;

/// The ureq transport, as the [`ClientBuilder`] knows it.
#[derive(Debug)]
pub enum Ureq {}

impl Wire for Ureq {
    type Client = Client;

    fn build(settings: Settings) -> Result<Client, Error> {
        let core = settings.core_client()?;
        Ok(Client { core, agent: Agent::new(&settings), parts_in_flight: settings.parts_in_flight() })
    }
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client around an existing core client and ureq agent. The agent must not follow
    /// redirects and must return every status as a response (`max_redirects(0)`,
    /// `http_status_as_error(false)`).
    #[must_use]
    pub fn from_parts(core: box_upload_core::Client, agent: ureq::Agent) -> Self {
        Self { core, agent: Agent { agent, expect_continue: true }, parts_in_flight: None }
    }

    /// The shared ureq agent.
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent.agent
    }

    box_upload_driver::client_surface!({} {});

    fn drive_run<M>(&self, machine: &mut M, source: Option<OpenSource>, options: UploadOptions) -> Result<M::Output, Error>
    where
        M: Machine + Send,
        M::Output: Send,
    {
        let workers = self.parts_in_flight.unwrap_or(box_upload_core::DEFAULT_PARTS_IN_FLIGHT).saturating_add(2);
        drive(&self.agent, workers, machine, source, options)
    }

    fn part_data(bytes: Bytes) -> Result<PartData, Error> {
        Ok(PartData::new(bytes))
    }
}
