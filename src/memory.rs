//! How the C allocator hands memory back. glibc's malloc raises its mmap
//! and trim thresholds as the program frees large blocks (up to 32 MiB and
//! 64 MiB), after which freed memory stays in the heap. freshd's large
//! blocks come in bursts (the config text and parse, the first refresh
//! wave, a reload) and are then freed for good, so fixed thresholds keep
//! such a block out of the heap and let the heap shrink after it: at 1,000
//! accounts and 10,000 jobs about 3 MiB (7 %) less resident memory,
//! measured with `examples/bench.rs`; nothing measurable at idle.
//!
//! The daemon also returns freed heap once after start-up and after each
//! reload (`systemd::release_free_memory`).
//!
//! One arena: glibc gives each thread that allocates an arena of its own,
//! and what the blocking pool's and zbus's short-lived threads leave there
//! stays resident after they exit. freshd allocates almost only on its one
//! runtime thread, so sharing costs no contention; in keyring mode it saves
//! about 130 KiB at idle (examples/bench.rs, `keyring`).

/// The fixed thresholds: glibc's own starting values, kept from rising.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const THRESHOLD: libc::c_int = 128 * 1024;

/// Fixes glibc's mmap and trim thresholds and its arenas to one (see the
/// module doc). Call first
/// thing in `main`, before other threads exist.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt has no safe wrapper")]
pub fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it takes no pointers,
    // and both values are in the range glibc accepts for these parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Other C libraries keep their own policies.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}
