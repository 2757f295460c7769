//! Allocation checks: a request the machine cannot satisfy is an
//! [`Error::OutOfMemory`], never an abort of the host process.
//!
//! Rust aborts the process when an allocation fails. Kernels whose memory
//! grows with a count the caller passes (not with an input that is already
//! in memory) call [`ensure_allocatable`] with their total need first.

use crate::error::{Error, Result};

/// Checks that `bytes` can be allocated now: reserves them and frees them.
///
/// On an overcommitting system this catches requests larger than memory
/// plus swap (which would otherwise abort the process on the real
/// allocation); it cannot promise that later, smaller allocations succeed.
///
/// ```
/// use simclust_core::memory::ensure_allocatable;
/// assert!(ensure_allocatable(1 << 20, "a small buffer").is_ok());
/// assert!(ensure_allocatable(usize::MAX / 2, "a huge buffer").is_err());
/// ```
pub fn ensure_allocatable(bytes: usize, what: &str) -> Result<()> {
    let mut probe: Vec<u8> = Vec::new();
    let reserved = probe.try_reserve_exact(bytes);
    // The probe is never used: without this, an optimised build may assume
    // the allocation succeeds and remove it (measured: a release build
    // "reserved" 8 EiB), leaving the real allocation to abort the process.
    std::hint::black_box(&mut probe);
    reserved.map_err(|_| Error::OutOfMemory {
        what: what.to_string(),
        bytes: bytes as u64,
    })
}

/// `bytes` as a short human-readable size (`"12.0 GB"`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(12_000_000_000), "12.0 GB");
    }

    #[test]
    fn impossible_requests_are_errors() {
        let e = ensure_allocatable(usize::MAX / 2, "labels");
        assert!(matches!(e, Err(Error::OutOfMemory { .. })), "{e:?}");
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("labels"), "{msg}");
    }
}
