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

/// This process's usage (None where /proc is not available).
pub fn current() -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
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
    }

    #[test]
    fn this_process_has_used_something() {
        let usage = current().expect("/proc is there on Linux");
        assert!(usage.peak_rss_bytes > 0);
    }
}
