//! CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// Clock ticks per second (`getconf CLK_TCK`), and whether that was measured (`false`:
/// `getconf` failed and 100, the Linux default, is assumed).
pub fn clock_ticks_per_second() -> (u64, bool) {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0)
        .map_or((100, false), |ticks| (ticks, true))
}

/// utime + stime, in clock ticks, from the text of `/proc/<pid>/stat`.
///
/// The second field (the command name) is in parentheses and may itself contain spaces
/// and parentheses, so fields are counted from the last `)`: utime and stime are fields
/// 14 and 15 of the line, i.e. the 12th and 13th after the name.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `PF_KTHREAD` in the flags field of `/proc/<pid>/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Whether the process is a kernel thread, and its utime + stime, from `/proc/<pid>/stat`.
pub fn parse_stat_kind_and_ticks(stat: &str) -> Option<(bool, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let flags: u64 = after_name.split_whitespace().nth(6)?.parse().ok()?;
    Some((flags & PF_KTHREAD != 0, parse_stat_cpu_ticks(stat)?))
}

/// utime + stime of every user-space process but `exclude`, by pid.
pub fn scan_processes(exclude: &[u32]) -> HashMap<u32, u64> {
    let mut ticks = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // gone meanwhile
        };
        if let Some((false, cpu)) = parse_stat_kind_and_ticks(&stat) {
            ticks.insert(pid, cpu);
        }
    }
    ticks
}

/// CPU ticks the scanned processes used between two scans: a process that appeared in
/// between counts in full (it started in the window); one that exited is not seen.
pub fn ticks_between_scans(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, &now)| now.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// A `kB` field such as `VmHWM` or `VmRSS` from the text of `/proc/<pid>/status`.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name != key {
            return None;
        }
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => Some(value),
            Some(_) => None,
        }
    })
}

/// A process being measured.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pid: u32,
    ticks_per_second: u64,
}

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// utime + stime so far.
    pub cpu: Duration,
    /// Peak resident set (`VmHWM`), in KiB: since the last [`Probe::reset_peak`], or since
    /// the process started.
    pub peak_rss_kib: u64,
    /// Resident set now (`VmRSS`), in KiB.
    pub rss_kib: u64,
}

impl Probe {
    pub fn new(pid: u32, ticks_per_second: u64) -> Self {
        Probe {
            pid,
            ticks_per_second: ticks_per_second.max(1),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the process now; `None` when it is gone or unreadable.
    pub fn sample(&self) -> Option<Sample> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let ticks = parse_stat_cpu_ticks(&stat)?;
        Some(Sample {
            cpu: ticks_to_duration(ticks, self.ticks_per_second),
            peak_rss_kib: parse_status_kb(&status, "VmHWM")?,
            rss_kib: parse_status_kb(&status, "VmRSS")?,
        })
    }

    /// Resets the process's peak RSS to its current RSS (`echo 5 > /proc/PID/clear_refs`,
    /// Linux 4.0+, needs the right to write there: the same user or root). `false` when
    /// that failed and `VmHWM` still counts from the process start.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }
}

pub fn ticks_to_duration(ticks: u64, ticks_per_second: u64) -> Duration {
    let per_second = ticks_per_second.max(1);
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

/// CPU used between two samples and the peak RSS seen by the second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

impl Usage {
    pub fn between(before: &Sample, after: &Sample) -> Usage {
        Usage {
            cpu: after.cpu.saturating_sub(before.cpu),
            peak_rss_kib: after.peak_rss_kib,
        }
    }

    /// CPU seconds per 1,000 requests.
    pub fn cpu_per_1k(&self, requests: u64) -> Option<f64> {
        (requests > 0).then(|| self.cpu.as_secs_f64() * 1000.0 / requests as f64)
    }
}

/// Machine-wide CPU time from the `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTicks {
    /// user + nice + system: time charged to processes (theirs or the kernel's on their
    /// behalf), the same time `/proc/PID/stat` counts.
    pub processes: u64,
    /// irq + softirq: interrupt work no process is charged for (loopback TCP delivery runs
    /// in softirq).
    pub interrupts: u64,
    /// Time the hypervisor ran something else while this machine wanted to run.
    pub steal: u64,
}

/// The first (`cpu `, all cores) line of `/proc/stat`.
pub fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice] (guest time is
    // already part of user).
    let field = |i: usize| fields.get(i).copied();
    Some(MachineTicks {
        processes: field(0)? + field(1)? + field(2)?,
        interrupts: field(5)? + field(6)?,
        steal: field(7).unwrap_or(0),
    })
}

/// Reads `/proc/stat` now.
pub fn machine_ticks() -> Option<MachineTicks> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Machine-wide CPU time between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineUsage {
    pub processes: Duration,
    pub interrupts: Duration,
    pub steal: Duration,
}

impl MachineUsage {
    pub fn between(before: MachineTicks, after: MachineTicks, ticks_per_second: u64) -> Self {
        let delta = |a: u64, b: u64| ticks_to_duration(a.saturating_sub(b), ticks_per_second);
        MachineUsage {
            processes: delta(after.processes, before.processes),
            interrupts: delta(after.interrupts, before.interrupts),
            steal: delta(after.steal, before.steal),
        }
    }

    /// Processes and interrupts.
    pub fn busy(&self) -> Duration {
        self.processes + self.interrupts
    }
}

/// KiB as MiB with one decimal.
pub fn fmt_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (discoveryd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
        350 125 0 0 20 0 3 0 123456 987654321 5678 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        assert_eq!(parse_stat_cpu_ticks(STAT), Some(475));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = STAT.replace("(discoveryd)", "(tokio (runtime) x)");
        assert_eq!(parse_stat_cpu_ticks(&stat), Some(475));
    }

    #[test]
    fn truncated_or_garbage_stat_lines_give_none() {
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2 3"), None);
        assert_eq!(parse_stat_cpu_ticks("no parenthesis at all"), None);
        assert_eq!(
            parse_stat_cpu_ticks(&STAT.replace(" 350 ", " x ")),
            None,
            "a non-numeric utime"
        );
    }

    #[test]
    fn kernel_threads_are_told_apart() {
        assert_eq!(parse_stat_kind_and_ticks(STAT), Some((false, 475)));
        let kthread = STAT.replace(" 4194560 ", " 2129984 "); // 0x208040: PF_KTHREAD set
        assert_eq!(parse_stat_kind_and_ticks(&kthread), Some((true, 475)));
    }

    #[test]
    fn cpu_of_other_processes_between_two_scans() {
        let before = HashMap::from([(1, 100), (2, 50), (3, 10)]);
        // 1 used 20 ticks, 2 exited, 3 used none, 4 appeared having used 7.
        let after = HashMap::from([(1, 120), (3, 10), (4, 7)]);
        assert_eq!(ticks_between_scans(&before, &after), 27);
        let me = std::process::id();
        assert!(!scan_processes(&[me]).contains_key(&me));
        assert!(scan_processes(&[]).contains_key(&me));
    }

    #[test]
    fn status_fields_in_kib() {
        let status = "Name:\tdiscoveryd\nVmPeak:\t  812345 kB\nVmHWM:\t   45678 kB\n\
            VmRSS:\t   40000 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(45_678));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(40_000));
        assert_eq!(parse_status_kb(status, "Threads"), Some(3));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        assert_eq!(parse_status_kb("VmHWM:\t12 MB\n", "VmHWM"), None);
    }

    #[test]
    fn ticks_convert_exactly() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2_500));
        assert_eq!(ticks_to_duration(3, 1000), Duration::from_millis(3));
        assert_eq!(ticks_to_duration(7, 0), Duration::from_secs(7));
    }

    #[test]
    fn usage_between_two_samples() {
        let before = Sample {
            cpu: Duration::from_secs(1),
            peak_rss_kib: 10,
            rss_kib: 10,
        };
        let after = Sample {
            cpu: Duration::from_millis(3_500),
            peak_rss_kib: 20,
            rss_kib: 15,
        };
        let usage = Usage::between(&before, &after);
        assert_eq!(usage.cpu, Duration::from_millis(2_500));
        assert_eq!(usage.peak_rss_kib, 20);
        assert_eq!(usage.cpu_per_1k(10_000), Some(0.25));
        assert_eq!(usage.cpu_per_1k(0), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let (ticks, _) = clock_ticks_per_second();
        let sample = Probe::new(std::process::id(), ticks)
            .sample()
            .expect("/proc/self is readable");
        assert!(sample.rss_kib > 0 && sample.peak_rss_kib >= sample.rss_kib);
    }

    #[test]
    fn machine_ticks_from_proc_stat() {
        let stat = "cpu  423313 7 93644 539488 4218 11 4107 1500 0 0\n\
            cpu0 211656 3 46822 269744 2109 5 2053 750 0 0\nintr 1 2 3\n";
        let ticks = parse_machine_ticks(stat).unwrap();
        assert_eq!(ticks.processes, 423_313 + 7 + 93_644);
        assert_eq!(ticks.interrupts, 11 + 4_107);
        assert_eq!(ticks.steal, 1_500);
        assert_eq!(parse_machine_ticks("cpu  1 2 3\n"), None, "too few fields");
        assert_eq!(parse_machine_ticks("intr 1 2\n"), None);
        let later = MachineTicks {
            processes: ticks.processes + 150,
            interrupts: ticks.interrupts + 10,
            steal: ticks.steal + 2,
        };
        let usage = MachineUsage::between(ticks, later, 100);
        assert_eq!(usage.processes, Duration::from_millis(1_500));
        assert_eq!(usage.interrupts, Duration::from_millis(100));
        assert_eq!(usage.steal, Duration::from_millis(20));
        assert_eq!(usage.busy(), Duration::from_millis(1_600));
        assert!(
            machine_ticks().is_some(),
            "this machine's /proc/stat parses"
        );
    }

    #[test]
    fn mib_formatting() {
        assert_eq!(fmt_mib(1536), "1.5 MiB");
    }
}
