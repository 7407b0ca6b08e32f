//! The async loop around a shared [`Run`]: requests run as tasks on the pooled client, the
//! checkpoint is written on the blocking pool, and the loop waits for whichever finishes first
//! or for the machine's deadline. Reads come from the shared reading thread.

use crate::{Client, Error};
use box_upload_core::{Machine, TransportError, TransportErrorKind};
use box_upload_driver::{Completion, Notify, OpenSource, Run, Step, UploadOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// Runs `machine` to its output. Dropping the future aborts every request in flight.
pub(crate) async fn drive<M: Machine + Send>(
    client: &Client,
    machine: &mut M,
    source: Option<OpenSource>,
    options: UploadOptions,
) -> Result<M::Output, Error> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Completion>();
    let notify: Notify = Arc::new(move |c| {
        let _ = tx.send(c);
    });
    let transport = &client.wire;
    let mut run = Run::new(machine, source, options, notify)?;
    let mut requests: JoinSet<Completion> = JoinSet::new();
    let mut ids = HashMap::new();
    loop {
        match run.poll(Instant::now()) {
            Step::Send(transmit) => {
                let (id, transport) = (transmit.id, transport.clone());
                let task = requests.spawn(async move { Completion::Answer(id, transport.send(transmit).await) });
                ids.insert(task.id(), id);
            }
            Step::Save(write) => {
                let written = tokio::task::spawn_blocking(move || write.write())
                    .await
                    .unwrap_or_else(|e| Err(Error::Internal(format!("the checkpoint task failed: {e}"))));
                run.saved(written);
            }
            Step::Wait(deadline) => {
                let sleep = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    Some(completion) = rx.recv() => run.complete(completion, Instant::now()),
                    Some(joined) = requests.join_next_with_id() => {
                        let completion = match joined {
                            Ok((task, completion)) => {
                                ids.remove(&task);
                                completion
                            }
                            Err(e) => {
                                let Some(id) = ids.remove(&e.id()) else {
                                    return Err(Error::Internal(format!("an unknown task failed: {e}")));
                                };
                                let message = format!("the request task failed: {e}");
                                Completion::Answer(id, Err(TransportError::new(TransportErrorKind::Other, message)))
                            }
                        };
                        run.complete(completion, Instant::now());
                    }
                    () = sleep => {}
                }
            }
            Step::Done(result) => return result,
        }
    }
}
