//! Samples the resident memory of the server process from `/proc/PID/status` (Linux) while a
//! load run goes on: VmRSS every 100 ms, keeping the largest, and VmHWM once at the end.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::report::ServerMemory;

const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// A running sampler; [`MemorySampler::finish`] stops it and returns the figures.
pub struct MemorySampler {
    pid: u32,
    stop: oneshot::Sender<()>,
    task: JoinHandle<(u64, u64)>,
}

impl MemorySampler {
    pub fn start(pid: u32) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        // One sample right away, so that even a very short run has one.
        let first = read_status_field(pid, "VmRSS");
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
            interval.tick().await;
            let (mut peak_kib, mut samples) = (first.unwrap_or(0), u64::from(first.is_some()));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = interval.tick() => {
                        if let Some(rss) = read_status_field(pid, "VmRSS") {
                            peak_kib = peak_kib.max(rss);
                            samples += 1;
                        }
                    }
                }
            }
            (peak_kib, samples)
        });
        Self { pid, stop, task }
    }

    pub async fn finish(self) -> ServerMemory {
        let vm_hwm_kib = read_status_field(self.pid, "VmHWM");
        let _ = self.stop.send(());
        let (peak_rss_kib, samples) = self.task.await.unwrap_or((0, 0));
        ServerMemory {
            pid: self.pid,
            peak_rss_kib,
            vm_hwm_kib,
            samples,
        }
    }
}

/// This process's own peak RSS (VmHWM), for tools that do the work themselves.
pub fn own_peak_rss_kib() -> Option<u64> {
    read_status_field(std::process::id(), "VmHWM")
}

/// A `kB` field of `/proc/PID/status`, or `None` if the process or the field is gone.
fn read_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&status, field)
}

fn parse_status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib_fields_of_proc_status() {
        let status = "Name:\theartbeat\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status_field(status, "VmRSS"), Some(102_400));
        assert_eq!(parse_status_field(status, "VmHWM"), Some(204_800));
        assert_eq!(parse_status_field(status, "VmSwap"), None);
    }

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = MemorySampler::start(std::process::id());
        let memory = sampler.finish().await;
        assert!(memory.samples >= 1);
        assert!(memory.peak_rss_kib > 0);
        assert!(memory.vm_hwm_kib.unwrap() >= memory.peak_rss_kib);
    }
}
