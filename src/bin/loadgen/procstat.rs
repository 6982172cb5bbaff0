//! Linux /proc readings: a process's memory and CPU time, the machine's CPU time.

use std::collections::HashMap;

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

/// CPU seconds used so far by every process on the machine, by PID, with its command
/// name (`comm`).
pub fn all_processes_cpu_secs() -> HashMap<u32, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        if let Some(cpu) = process_cpu_secs(&pid.to_string()) {
            out.insert(pid, (comm, cpu));
        }
    }
    out
}

/// Kernel threads grouped by kind (`kworker/u8:1-ext4-rsv-conversion` → `kworker`).
fn command_group(comm: &str) -> &str {
    for kind in ["kworker", "ksoftirqd", "migration", "rcu_", "irq/"] {
        if comm.starts_with(kind) {
            return kind.trim_end_matches(['_', '/']);
        }
    }
    comm
}

/// CPU cores used per command name between two [`all_processes_cpu_secs`] readings
/// `secs` apart, largest first (processes that exited in between are not seen).
pub fn cores_by_command(
    before: &HashMap<u32, (String, f64)>,
    after: &HashMap<u32, (String, f64)>,
    secs: f64,
) -> Vec<(String, f64)> {
    let mut by: HashMap<&str, f64> = HashMap::new();
    for (pid, (comm, cpu)) in after {
        // A process seen at both ends keeps its PID (kernel workers rename themselves as
        // they take up other work, so the name alone would not do).
        let start = before.get(pid).map_or(0.0, |(_, c)| *c);
        *by.entry(command_group(comm)).or_default() += (cpu - start).max(0.0);
    }
    let mut v: Vec<(String, f64)> = by
        .into_iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(c, s)| (c.to_owned(), s / secs.max(1e-3)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
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
#[derive(Clone, Debug, Default)]
pub struct CpuSample {
    pub target: Option<f64>,
    pub own: Option<f64>,
    pub machine: Option<(f64, f64)>,
    pub processes: HashMap<u32, (String, f64)>,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> CpuSample {
        CpuSample {
            target: pid.and_then(|p| process_cpu_secs(&p.to_string())),
            own: process_cpu_secs("self"),
            machine: machine_cpu_secs(),
            processes: all_processes_cpu_secs(),
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
        let all = all_processes_cpu_secs();
        assert!(all.contains_key(&me));
        let mut later = all.clone();
        later.get_mut(&me).expect("self").1 += 0.5;
        let by = cores_by_command(&all, &later, 1.0);
        assert_eq!(by.len(), 1);
        assert!((by[0].1 - 0.5).abs() < 1e-9);
    }
}
