//! CPU priorities of the server's threads, so the cores go to the work that answers requests
//! first: the request threads at the normal priority, the processors and DuckDB's own worker
//! threads a little below ([`processor_priority`]), reads only when nothing else wants the
//! CPU ([`idle_priority`]). A read's statement runs on its idle thread, and the parts DuckDB
//! hands to its workers at theirs; the processor's writer never waits on a thread below its
//! own priority. Linux's priorities are per thread and inherited by the threads a thread
//! starts; elsewhere these are best-effort `nice` values.

/// The processors' `nice` value: between the request threads and the reads.
const PROCESSOR_NICE: i32 = 5;

/// Puts the calling thread (and the threads it starts) at the processors' priority.
pub fn processor_priority() {
    lower_priority(PROCESSOR_NICE);
}

/// Lowers the calling thread's CPU priority (Linux's `nice` is per thread, and threads it
/// starts inherit it). Best effort: a refusal leaves the thread as it is.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: setpriority with PRIO_PROCESS and who = 0 only changes the calling thread's
        // nice value; it reads and writes no memory of ours.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Makes the calling thread (and the threads it starts) run only when no thread of normal
/// priority wants the CPU: Linux's `SCHED_IDLE`, which any thread may choose for itself. A
/// request thread that wakes up takes the core from such a thread at once (a lower `nice`
/// alone still lets it finish its time slice). Elsewhere, the lowest `nice`.
pub fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler with pid 0 changes only the calling thread's policy; it
        // reads `param`, which lives until it returns.
        let refused = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0;
        if refused {
            lower_priority(19);
        }
    }
    #[cfg(not(target_os = "linux"))]
    lower_priority(19);
}
