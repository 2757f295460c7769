//! Giving the pages of a memory-mapped input back to the kernel once a
//! kernel has copied what it needs from them.
//!
//! A `.npy`/`.dat` input opened by simclust stays memory-mapped: its pages
//! are read from the file on first touch and count towards the process's
//! resident memory until the kernel reclaims them. A partitioned search
//! copies the rows into its lists and then never reads the input again; the
//! metrics' nearest-cluster search reads only the centroids. At those points
//! the input's pages are released (`madvise(MADV_DONTNEED)`), so they do not
//! sit in resident memory next to the copy. A later read faults them back
//! in from the file (from the page cache, usually).
//!
//! That is safe only for a read-only, shared mapping of a file: there the
//! kernel can always read the same bytes back. On any other memory (an
//! array numpy allocated, a private or writable mapping) `MADV_DONTNEED`
//! would zero or discard data, so [`release_if_file_mapped`] first checks
//! in `/proc/self/maps` that every byte lies in such a mapping, and does
//! nothing otherwise (or on other systems).

/// Returns the heap's free memory to the kernel. glibc keeps the memory
/// its arenas freed for reuse, and after a kernel that allocated and freed
/// gigabytes (a partition, per-thread edge buffers) several hundred
/// megabytes of it stay resident though nothing uses them (0.3 GB at the
/// peak of a 1M-row analysis). Called after every native call that ran
/// detached; does nothing on other C libraries.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of the heap back to the
    // kernel; it does not touch allocated memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Releases the whole pages inside `data` when they lie in a read-only,
/// shared file mapping; does nothing otherwise. Returns whether it
/// released them.
pub(crate) fn release_if_file_mapped(data: &[f32]) -> bool {
    FileMapped::check(data).is_some_and(|m| m.release(data))
}

/// An input found to lie in read-only shared file mappings, whose parts can
/// then be released as a kernel finishes with them (one look at the maps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileMapped {
    lo: usize,
    hi: usize,
}

impl FileMapped {
    /// `Some` when every byte of `data` lies in a read-only shared file
    /// mapping (never on other systems than Linux).
    pub(crate) fn check(data: &[f32]) -> Option<Self> {
        let lo = data.as_ptr() as usize;
        let hi = lo + std::mem::size_of_val(data);
        #[cfg(target_os = "linux")]
        {
            linux::covered(lo, hi).then_some(Self { lo, hi })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (lo, hi);
            None
        }
    }

    /// Releases the whole pages inside `part`, which must lie within the
    /// checked input (else nothing is done). Returns whether it released.
    pub(crate) fn release(&self, part: &[f32]) -> bool {
        let lo = part.as_ptr() as usize;
        let hi = lo + std::mem::size_of_val(part);
        if lo < self.lo || hi > self.hi {
            return false;
        }
        #[cfg(target_os = "linux")]
        {
            linux::release(lo, hi)
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// Page size assumed when the system does not say (x86-64, aarch64 4k).
    const DEFAULT_PAGE: usize = 4096;

    /// A line of `/proc/self/maps`: `start-end perms offset dev inode path`.
    struct Mapping {
        start: usize,
        end: usize,
        read_only_shared: bool,
        file: bool,
    }

    fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let _dev = fields.next()?;
        let inode: u64 = fields.next()?.parse().ok()?;
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            read_only_shared: perms.starts_with("r--s"),
            file: inode != 0,
        })
    }

    /// Whether `[lo, hi)` is covered by read-only shared file mappings.
    pub(super) fn covered(lo: usize, hi: usize) -> bool {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return false;
        };
        let mut at = lo;
        for m in maps.lines().filter_map(parse) {
            if m.start <= at && at < m.end {
                if !(m.read_only_shared && m.file) {
                    return false;
                }
                at = m.end;
                if at >= hi {
                    return true;
                }
            }
        }
        false
    }

    /// Releases the whole pages inside `[lo, hi)`, which [`covered`] found
    /// in read-only shared file mappings.
    pub(super) fn release(lo: usize, hi: usize) -> bool {
        // SAFETY: sysconf only reads a system constant.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => DEFAULT_PAGE,
        };
        let (first, last) = (lo.div_ceil(page) * page, hi / page * page);
        if first >= last {
            return false;
        }
        // SAFETY: `[first, last)` holds whole pages inside `[lo, hi)`, all in
        // read-only shared file mappings (checked by `covered` for the
        // borrowed input, which stays mapped while borrowed): MADV_DONTNEED
        // there only drops the page table entries, and the next read gets
        // the same bytes back from the file. No Rust reference observes a
        // change.
        unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_DONTNEED,
            ) == 0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_maps_lines() {
            let m = parse("7f00a000-7f00c000 r--s 00000000 08:01 1234   /data/x.npy")
                .expect("a maps line");
            assert_eq!(
                (m.start, m.end, m.read_only_shared, m.file),
                (0x7f00a000, 0x7f00c000, true, true)
            );
            let anon = parse("7f00c000-7f00e000 rw-p 00000000 00:00 0").expect("a maps line");
            assert!(!anon.read_only_shared && !anon.file);
        }

        #[test]
        fn heap_memory_is_never_released() {
            let v = vec![1.5_f32; 1 << 16];
            assert!(super::super::FileMapped::check(&v).is_none());
            assert!(!super::super::release_if_file_mapped(&v));
            assert!(v.iter().all(|&x| x == 1.5));
        }
    }
}
