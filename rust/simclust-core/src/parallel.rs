//! Owned rayon pools (never rayon's global pool) and the [`Control`] handle
//! that lets a caller cancel a long computation and watch its progress.
//!
//! The pool size is the `n_threads` argument, else `SIMCLUST_NUM_THREADS`,
//! else the number of available cores. Pools are cached per size. A pool
//! built before a `fork()` has no worker threads in the child; the cache
//! remembers the process id that built it and builds afresh in a child.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::ThreadPool;

use crate::error::{Error, Result};

/// Environment variable read for the default thread count.
pub const NUM_THREADS_ENV: &str = "SIMCLUST_NUM_THREADS";

struct PoolCache {
    pid: u32,
    pools: HashMap<usize, Arc<ThreadPool>>,
}

fn cache() -> &'static Mutex<PoolCache> {
    static CACHE: OnceLock<Mutex<PoolCache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(PoolCache {
            pid: std::process::id(),
            pools: HashMap::new(),
        })
    })
}

/// The number of cores this process may use (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The most threads one pool may have: `max(256, 4 x cores)`. More threads
/// than that only add contention (and thousands never finish starting).
pub fn max_threads() -> usize {
    (4 * available_cores()).max(256)
}

/// The thread count used when the caller gives none: `SIMCLUST_NUM_THREADS`
/// if set, else the number of available cores.
///
/// A set but invalid `SIMCLUST_NUM_THREADS` (not an integer, `0`, negative,
/// above [`max_threads`]) is an error naming the variable, never ignored.
pub fn default_num_threads() -> Result<usize> {
    match std::env::var(NUM_THREADS_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(available_cores()),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Parameter(format!(
            "{NUM_THREADS_ENV} must be a positive integer, got a value that is not text"
        ))),
        Ok(v) if v.trim().is_empty() => Ok(available_cores()),
        Ok(v) => match v.trim().parse::<i128>() {
            Ok(n) => check_threads(n, NUM_THREADS_ENV),
            Err(_) => Err(Error::Parameter(format!(
                "{NUM_THREADS_ENV} must be a positive integer, got {v:?}"
            ))),
        },
    }
}

/// `n` as a thread count, or an error naming `what` when it is not in
/// `1..=max_threads()`.
fn check_threads(n: i128, what: &str) -> Result<usize> {
    let cap = max_threads();
    if n < 1 {
        return Err(Error::Parameter(format!(
            "{what} must be a positive integer, got {n}"
        )));
    }
    if n > cap as i128 {
        return Err(Error::Parameter(format!(
            "{what} = {n} is more than the {cap} threads simclust allows \
             (4 x the {} cores, at least 256)",
            available_cores()
        )));
    }
    Ok(n as usize)
}

/// Resolves a requested thread count (`None` = [`default_num_threads`]).
///
/// `Some(0)` and counts above [`max_threads`] are errors.
///
/// ```
/// use simclust_core::parallel::{max_threads, resolve_threads};
/// assert_eq!(resolve_threads(Some(3)), Ok(3));
/// assert!(resolve_threads(Some(0)).is_err());
/// assert!(resolve_threads(Some(max_threads() + 1)).is_err());
/// ```
pub fn resolve_threads(n_threads: Option<usize>) -> Result<usize> {
    match n_threads {
        None => default_num_threads(),
        Some(n) => check_threads(n as i128, "n_threads"),
    }
}

/// The cached pool with `n_threads` workers (`None` = default size).
///
/// Every kernel starts here, so this is also where an invalid
/// `SIMCLUST_SIMD` setting is reported.
pub fn pool(n_threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    crate::simd::check_setting()?;
    let n = resolve_threads(n_threads)?;
    let mut guard = cache()
        .lock()
        .map_err(|_| Error::ThreadPool("pool cache lock poisoned".into()))?;
    let pid = std::process::id();
    if guard.pid != pid {
        // Forked child: the parent's worker threads do not exist here. The old
        // pools cannot be joined safely, so they are leaked, not dropped.
        for (_, p) in guard.pools.drain() {
            std::mem::forget(p);
        }
        guard.pid = pid;
    }
    if let Some(p) = guard.pools.get(&n) {
        return Ok(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("simclust-{i}"))
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))?;
    let p = Arc::new(p);
    guard.pools.insert(n, Arc::clone(&p));
    Ok(p)
}

/// Shared between a running kernel and its caller: a cancel flag the kernel
/// polls between blocks, and a progress counter it advances.
#[derive(Debug, Default)]
pub struct Control {
    cancelled: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
}

impl Control {
    /// A fresh control: not cancelled, no progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the kernel to stop at its next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once cancelled; kernels call it between blocks.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Declares the amount of work (in kernel-defined units, e.g. tiles).
    pub fn set_total(&self, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    /// Records `units` of finished work.
    pub fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::Relaxed);
    }

    /// `(done, total)` units so far.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_cached_per_size() -> Result<()> {
        let a = pool(Some(2))?;
        let b = pool(Some(2))?;
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.current_num_threads(), 2);
        assert!(pool(Some(0)).is_err());
        assert!(pool(Some(max_threads() + 1)).is_err());
        Ok(())
    }

    #[test]
    fn control_cancels() {
        let c = Control::new();
        assert!(c.check().is_ok());
        c.set_total(4);
        c.advance(1);
        assert_eq!(c.progress(), (1, 4));
        c.cancel();
        assert_eq!(c.check(), Err(Error::Interrupted));
    }
}
