//! The allocator, which decides much of the server's resident memory and a good part of its
//! speed: jemalloc, for Rust and, through the `malloc` it exports, for DuckDB's C++ too.
//!
//! glibc's malloc, which both used before, gives each thread that finds the others' arenas
//! busy an arena of its own (up to eight per core) and keeps what is freed in them; after a
//! burst of wide reads or a big batch the freed memory stayed resident, and a thread trimming
//! it every 5 s only caught what was free at that instant. Capping glibc's arenas made
//! request threads wait on arena locks held by reads at the idle CPU priority (`/health`
//! stalled under wide reads). jemalloc keeps per-thread caches and an arena per core, and
//! its background threads hand freed pages back to the kernel 200 ms after they were freed
//! ([`malloc_conf`]). Measured against glibc with the trim thread (docs/benchmarks.md,
//! 2026-12-05): peak RSS while storing 1 M events 0.81 GB instead of 1.0 to 1.09 GB, the
//! processor 37 k events/s instead of 31 k, and the query phase at 10 M events 0.80 GB
//! instead of 1.03 GB.
//!
//! A tool that interposes `malloc` by preloading (heaptrack) sees nothing of this binary's
//! allocations, which its own `malloc` serves: the `system-allocator` feature builds it on the
//! system's allocator for such a profile (whose memory figures are then glibc's).

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it starts (before `main`), as the C string it looks
/// for under this name: background threads purge pages 200 ms after they were freed (its
/// default is 10 s, so a burst's memory stayed resident into the next one; at 1 s a 10 M
/// fill still held 75 to 87 MiB of freed pages, at 200 ms 30 to 45 MiB, docs/benchmarks.md
/// 2026-12-07), with no lazy (`MADV_FREE`) stage, whose pages still count as resident; one
/// arena per CPU (`percpu_arena`) instead of four, so fewer arenas each keep freed pages
/// of their own. `MALLOC_CONF` in the environment overrides them.
#[cfg(not(feature = "system-allocator"))]
#[allow(non_upper_case_globals)]
#[used]
#[export_name = "malloc_conf"]
static malloc_conf: &[u8; 79] =
    b"background_thread:true,percpu_arena:percpu,dirty_decay_ms:200,muzzy_decay_ms:0\0";

#[cfg(all(test, not(feature = "system-allocator")))]
mod tests {
    /// The options are read: background threads are off unless `malloc_conf` asks for them.
    /// A new thread is named by itself once it runs, so it is looked for for a while.
    #[test]
    fn jemalloc_runs_with_its_options() {
        let threads = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !threads().iter().any(|name| name.starts_with("jemalloc_bg")) {
            assert!(
                std::time::Instant::now() < deadline,
                "no jemalloc background thread: {:?}",
                threads()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The purge delay and the arenas per CPU are the ones `malloc_conf` asks for.
    #[test]
    fn jemalloc_purges_soon_with_an_arena_per_cpu() {
        // SAFETY: both names are jemalloc options of these types (`ssize_t`, a C string).
        let (decay, arenas) = unsafe {
            (
                tikv_jemalloc_ctl::raw::read::<isize>(b"opt.dirty_decay_ms\0").unwrap(),
                tikv_jemalloc_ctl::raw::read_str(b"opt.percpu_arena\0").unwrap(),
            )
        };
        assert_eq!(decay, 200);
        assert_eq!(arenas, b"percpu\0");
    }
}
