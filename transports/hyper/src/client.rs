//! The async client: a [`box_upload_core::Client`] and a pooled hyper client. The struct, its
//! builder and its methods are the shared ones (`box_upload_driver::client!`), async; this file
//! adds where a part is hashed (the loop is `driver::drive`).

use crate::transport::Transport;
use crate::Error;
use box_upload_core::PartData;
use bytes::Bytes;

box_upload_driver::client!(
    /// Box's chunked-upload API over tokio and hyper: every operation, and the whole big upload.
    /// Build one with [`Client::builder`].
    ///
    /// Cheap to clone: clones share the connection pool and the token cache. Dropping a method's
    /// future stops the run (every request in flight is aborted) but leaves the session open on
    /// Box: cancel with a [`CancelToken`](crate::CancelToken) to have it aborted, or kept on
    /// purpose for a resume.
    Hyper,
    Transport,
    {async} {.await}
);

impl Client {
    /// Hashes a part off the runtime.
    async fn part_data(bytes: Bytes) -> Result<PartData, Error> {
        tokio::task::spawn_blocking(move || PartData::new(bytes))
            .await
            .map_err(|e| Error::Internal(format!("the hash task failed: {e}")))
    }
}
