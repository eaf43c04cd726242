//! Handing memory back to the system after a big transient job. A re-index builds the whole
//! workspace's fingerprints, and glibc's allocator keeps the freed pages in its arenas, so a
//! long-running server would stay at the scan's peak forever. `malloc_trim` releases them.

/// Returns free heap pages to the system (glibc only; a no-op elsewhere).
#[allow(unsafe_code)]
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages at the top of glibc's heaps and arenas
    // to the kernel; it takes no pointers and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
