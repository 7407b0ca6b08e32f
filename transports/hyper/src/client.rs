//! The async client: a [`box_upload_core::Client`] and a pooled hyper client. Its methods are
//! the shared surface (`box_upload_driver::client_surface!`), async.

use crate::driver::drive;
use crate::transport::Transport;
use crate::Error;
use box_upload_core::{Machine, PartData};
use box_upload_driver::{OpenSource, Settings, UploadOptions, Wire};
use bytes::Bytes;

/// Box's chunked-upload API over tokio and hyper: every operation, and the whole big upload.
/// Build one with [`Client::builder`].
///
/// Cheap to clone: clones share the connection pool and the token cache. Dropping a method's
/// future stops the run (every request in flight is aborted) but leaves the session open on
/// Box: cancel with a [`CancelToken`](crate::CancelToken) to have it aborted, or kept on purpose
/// for a resume.
#[derive(Clone, Debug)]
pub struct Client {
    core: box_upload_core::Client,
    transport: Transport,
    parts_in_flight: Option<usize>,
}

/// Builds a [`Client`] (the same builder as every transport's).
pub type ClientBuilder = box_upload_driver::ClientBuilder<Hyper>;

/// The hyper transport, as the [`ClientBuilder`] knows it.
#[derive(Debug)]
pub enum Hyper {}

impl Wire for Hyper {
    type Client = Client;

    fn build(settings: Settings) -> Result<Client, Error> {
        let core = settings.core_client()?;
        let parts_in_flight = settings.parts_in_flight();
        let transport = Transport::new(&settings)?;
        Ok(Client { core, transport, parts_in_flight })
    }
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    box_upload_driver::client_surface!({async} {.await});

    async fn drive_run<M>(
        &self,
        machine: &mut M,
        source: Option<OpenSource>,
        options: UploadOptions,
    ) -> Result<M::Output, Error>
    where
        M: Machine + Send,
        M::Output: Send,
    {
        drive(&self.transport, machine, source, options).await
    }

    /// Hashes a part off the runtime.
    async fn part_data(bytes: Bytes) -> Result<PartData, Error> {
        tokio::task::spawn_blocking(move || PartData::new(bytes))
            .await
            .map_err(|e| Error::Internal(format!("the hash task failed: {e}")))
    }
}
