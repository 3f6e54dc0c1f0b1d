//! The one tokio runtime all I/O runs on, entered with the GIL released.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::Python;
use tokio::runtime::Runtime;

/// The runtime and the process it was built in.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

fn runtime() -> Arc<Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, runtime)) = slot.as_ref() {
        if *owner == pid {
            return runtime.clone();
        }
    }
    // A forked child inherits the parent's runtime without its worker threads:
    // build a fresh one, and leak the inherited one, since dropping it would
    // wait for threads that do not exist here.
    if let Some((_, inherited)) = slot.take() {
        std::mem::forget(inherited);
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("dagster-remote-store-io")
            .build()
            .expect("cannot start the I/O runtime"),
    );
    *slot = Some((pid, runtime.clone()));
    runtime
}

/// The shared runtime, for work that outlives one Python call.
pub fn handle() -> tokio::runtime::Handle {
    runtime().handle().clone()
}

/// Runs `future` to completion on the shared runtime with the GIL released,
/// so other Python threads run while this one waits on storage.
pub fn block_on<F>(py: Python<'_>, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime();
    py.detach(|| runtime.block_on(future))
}
