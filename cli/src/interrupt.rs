//! Ctrl-C during an upload: the first stops it cleanly (the session is aborted, or kept when a
//! checkpoint file can resume it); a second one exits at once. The first press cancels the run's
//! [`CancelToken`], the one both transports watch.

use box_upload_driver::CancelToken;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set once Ctrl-C was pressed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Starts watching for Ctrl-C on a thread of its own; the first press cancels `token`.
    pub(crate) fn watch(token: CancelToken) -> Self {
        let flag = Interrupt::default();
        let seen = flag.0.clone();
        let spawned = std::thread::Builder::new().name("box-upload-ctrl-c".into()).spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() else {
                return;
            };
            runtime.block_on(async move {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                seen.store(true, Ordering::SeqCst);
                eprintln!("\nbox-upload: interrupted; stopping (Ctrl-C again to quit at once)");
                token.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            });
        });
        if spawned.is_err() {
            tracing::debug!("no Ctrl-C watcher thread");
        }
        flag
    }

    /// Whether Ctrl-C was pressed.
    pub(crate) fn fired(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
