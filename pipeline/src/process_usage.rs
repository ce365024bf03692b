//! What this process has cost so far, from /proc: CPU time and peak resident memory. In
//! `wattcast local` every workload is a task of one process, so this is the pipeline's total.

/// CPU time and peak memory of the process.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProcessUsage {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: i64,
}

/// /proc reports CPU times in USER_HZ ticks, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Parses `/proc/<pid>/stat` and `/proc/<pid>/status` text.
pub fn parse(stat: &str, status: &str) -> Option<ProcessUsage> {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3, so utime (14) and stime (15) are the 12th and 13th after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let peak_kib: i64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(ProcessUsage {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        peak_rss_bytes: peak_kib * 1024,
    })
}

/// Exposes this process's CPU time and peak memory on every scrape, as
/// `process_cpu_seconds_total` and `process_peak_resident_memory_bytes` (how the cluster measures
/// each workload).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCollector;

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Some(usage) = current() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(usage.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time of the process",
            None,
            cpu.metric_type(),
        )?)?;
        let memory = ConstGauge::new(usage.peak_rss_bytes);
        memory.encode(encoder.encode_descriptor(
            "process_peak_resident_memory_bytes",
            "Peak resident memory of the process",
            None,
            memory.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Resets the process's peak resident memory to its current size (Linux `clear_refs` 5), so a
/// later [`current`] reports the peak since now; false when the kernel does not allow it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

impl ProcessUsage {
    /// The CPU used since `earlier`, with this reading's peak memory.
    pub fn since(self, earlier: ProcessUsage) -> ProcessUsage {
        ProcessUsage {
            cpu_seconds: (self.cpu_seconds - earlier.cpu_seconds).max(0.0),
            peak_rss_bytes: self.peak_rss_bytes,
        }
    }

    /// Peak resident memory in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// This process's usage (None where /proc is not available).
pub fn current() -> Option<ProcessUsage> {
    read("self")
}

/// The usage of process `pid` (None once it has exited, or where /proc is not available).
pub fn of(pid: u32) -> Option<ProcessUsage> {
    read(&pid.to_string())
}

fn read(process: &str) -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    parse(&stat, &status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_peak_memory_come_from_the_right_fields() {
        let stat = "4242 (wattcast (local)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 1000000 500";
        let status = "Name:\twattcast\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  100000 kB\n";
        let usage = parse(stat, status).expect("parses");
        assert_eq!(usage.cpu_seconds, 3.25);
        assert_eq!(usage.peak_rss_bytes, 204_800 * 1024);
        assert_eq!(parse("garbage", status), None);
        let later = ProcessUsage {
            cpu_seconds: 5.0,
            peak_rss_bytes: 7,
        };
        assert_eq!(
            later.since(usage),
            ProcessUsage {
                cpu_seconds: 1.75,
                peak_rss_bytes: 7
            }
        );
    }

    #[test]
    fn this_process_has_used_something_and_its_metrics_say_so() {
        let usage = current().expect("/proc is there on Linux");
        assert!(usage.peak_rss_bytes > 0);
        let by_pid = of(std::process::id()).expect("our own /proc entry");
        assert!(by_pid.peak_rss_mib() > 0.0, "{by_pid:?}");
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("# TYPE process_cpu_seconds counter"), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_peak_resident_memory_bytes "), "{text}");
    }
}
