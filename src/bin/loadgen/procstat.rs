//! Linux /proc readings: a process's memory and CPU time, the machine's CPU time.

/// Clock ticks per second in /proc (USER_HZ: 100 on Linux, whatever the kernel's HZ).
const TICKS: f64 = 100.0;

/// A process's resident memory, in KiB (`VmRSS`, `VmHWM` from /proc/PID/status).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// User + system CPU seconds used so far by a process (`self` for this one).
pub fn process_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

/// The machine's CPU time so far: (busy seconds, total seconds), summed over cores.
pub fn machine_cpu_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0.0);
    Some(((total - idle) / TICKS, total / TICKS))
}

/// CPU readings taken at the start and at the end of the measured window.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    pub target: Option<f64>,
    pub own: Option<f64>,
    pub machine: Option<(f64, f64)>,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> CpuSample {
        CpuSample {
            target: pid.and_then(|p| process_cpu_secs(&p.to_string())),
            own: process_cpu_secs("self"),
            machine: machine_cpu_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let m = memory(me).expect("own /proc status");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(process_cpu_secs("self").is_some());
        let (busy, total) = machine_cpu_secs().expect("/proc/stat");
        assert!(total >= busy && total > 0.0);
    }
}
