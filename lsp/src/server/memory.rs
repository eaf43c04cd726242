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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if tracing::enabled!(tracing::Level::DEBUG) {
        // SAFETY: `mallinfo2` only reads the allocator's counters.
        let info = unsafe { libc::mallinfo2() };
        tracing::debug!(in_use_mb = info.uordblks >> 20, mapped_mb = info.hblkhd >> 20, free_mb = info.fordblks >> 20, arena_mb = info.arena >> 20, "heap after trimming");
    }
}
