//! The C allocator's behaviour, which decides much of the server's resident memory.
//!
//! glibc's malloc, which DuckDB and Rust both allocate through, gives each thread that finds
//! the others' arenas busy an arena of its own (up to eight per core) and keeps what is freed
//! in them for reuse. After a burst of wide reads on DuckDB's threads the freed memory stays
//! resident for as long as the process runs. Handing free pages back to the kernel every few
//! seconds ([`spawn_trimmer`]) keeps the resident memory near what is in use
//! (docs/benchmarks.md). Fewer arenas (`M_ARENA_MAX`) would save more, but then request
//! threads wait on arena locks held by reads at the idle CPU priority, and `/health` and
//! ingest stall under wide reads (`tests/query_isolation.rs` failed 2 runs in 6). Elsewhere
//! than glibc this does nothing.

use std::time::Duration;

/// How often free memory is handed back.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Starts a thread that hands the allocator's free pages back to the kernel every few
/// seconds, for the life of the process.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::Once;
        static STARTED: Once = Once::new();
        STARTED.call_once(|| {
            let started = std::thread::Builder::new()
                .name("heartbeat-trim".into())
                .spawn(|| loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: malloc_trim only returns the allocator's free pages to the
                    // kernel; it touches no memory in use.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                });
            if let Err(err) = started {
                tracing::warn!(error = %err, "cannot start the allocator's trim thread");
            }
        });
    }
}
