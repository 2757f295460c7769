//! One helper for every long call: run the core without the GIL, keep
//! Ctrl-C working, report progress, and never let a panic cross the FFI.

use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;
use simclust_core::{Control, Result as CoreResult};

use crate::errors::{internal, to_pyerr};

/// How often the waiting thread wakes to check signals and report progress.
const POLL: Duration = Duration::from_millis(100);

/// Runs `f` on a worker thread while this thread waits without the GIL.
///
/// Every `POLL` it re-attaches to check for signals (a `KeyboardInterrupt`
/// cancels the [`Control`], the kernel stops at its next block, and the
/// exception propagates) and calls `progress(done, total)` if given.
pub(crate) fn run_detached<T, F>(
    py: Python<'_>,
    what: &str,
    progress: Option<&Bound<'_, PyAny>>,
    f: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Control) -> CoreResult<T> + Send,
{
    let ctl = Control::new();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<()>();
        let ctl_ref = &ctl;
        let worker = s.spawn(move || {
            let out = f(ctl_ref);
            let _ = tx.send(());
            out
        });
        let mut rx = rx;
        loop {
            // The receiver is Send but not Sync: move it in and back out.
            let (waited, back) = py.detach(move || (rx.recv_timeout(POLL), rx));
            rx = back;
            if !matches!(waited, Err(mpsc::RecvTimeoutError::Timeout)) {
                break;
            }
            let polled = py.check_signals().and_then(|()| match progress {
                Some(cb) => cb.call1(ctl.progress()).map(|_| ()),
                None => Ok(()),
            });
            if let Err(e) = polled {
                ctl.cancel();
                let _ = py.detach(|| worker.join());
                return Err(e);
            }
        }
        let out = py.detach(|| {
            let out = worker.join();
            crate::pages::trim_heap();
            out
        });
        let out = out.map_err(|_| internal(what))?;
        if let Some(cb) = progress {
            let (_, total) = ctl.progress();
            cb.call1((total, total))?;
        }
        out.map_err(to_pyerr)
    })
}
