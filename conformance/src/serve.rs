//! The accept loop the recorder and the replay server share: HTTP/1.1 with keep-alive on a bound
//! listener, every connection stopped with the server.

use std::future::Future;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::ResBody;

/// A running accept loop.
#[derive(Debug)]
pub(crate) struct Served {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Stops accepting, ends every connection, and waits for the loop to finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Serves `listener`, answering each request with `handle(state, request)`.
pub(crate) fn serve<S, F, Fut>(listener: TcpListener, state: Arc<S>, handle: F) -> Served
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<ResBody>> + Send + 'static,
{
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop_rx.changed() => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let state = Arc::clone(&state);
            let mut stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let answer = handle(Arc::clone(&state), req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = stop_rx.changed() => {}
                }
            });
        }
    });
    Served { stop, task }
}
