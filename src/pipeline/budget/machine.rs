//! What the machine offers a run: its cores and the memory it may use.
//! `ROCKPACK_CORES=N` makes a run size itself as if the machine had N
//! cores (a testing and capacity-planning aid: the memory stays the
//! machine's own).

use crate::error::{Error, Result};
use crate::units::KIB;

/// The environment variable that sets the cores a run sizes itself for.
pub const CORES_VAR: &str = "ROCKPACK_CORES";

/// Cores and memory, and where each came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Machine {
    /// Cores the run sizes its threads for.
    pub cores: usize,
    /// Where `cores` came from: `ROCKPACK_CORES`, or the cores the process
    /// may use (its CPU affinity and cgroup quota).
    pub cores_from: &'static str,
    /// Bytes of memory the run may count on: the cgroup's limit where one
    /// is set below the machine's memory, otherwise the memory available
    /// (`MemAvailable`). `None` where neither can be read.
    pub memory: Option<u64>,
    /// Where `memory` came from.
    pub memory_from: &'static str,
}

impl Machine {
    /// This machine, with `ROCKPACK_CORES` applied; a usage error if that
    /// is set to anything but a positive whole number.
    pub fn detect() -> Result<Machine> {
        let (cores, cores_from) = match std::env::var(CORES_VAR) {
            Ok(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => (n, CORES_VAR),
                _ => {
                    return Err(Error::Usage(format!(
                        "{CORES_VAR}={v}: not a number of cores (a whole number, 1 or more)"
                    )))
                }
            },
            Err(_) => (
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                "the cores this process may use",
            ),
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let limit = cgroup_limit();
        let (memory, memory_from) = usable(
            limit,
            meminfo_field(&meminfo, "MemTotal"),
            meminfo_field(&meminfo, "MemAvailable"),
        );
        Ok(Machine {
            cores,
            cores_from,
            memory,
            memory_from,
        })
    }
}

/// What a run may count on, from the cgroup's limit and `/proc/meminfo`:
/// a limit below the machine's memory wins; otherwise what is available.
pub fn usable(
    cgroup_limit: Option<u64>,
    total: Option<u64>,
    available: Option<u64>,
) -> (Option<u64>, &'static str) {
    match (cgroup_limit, total) {
        (Some(l), Some(t)) if l < t => return (Some(l), "the cgroup's memory limit"),
        (Some(l), None) => return (Some(l), "the cgroup's memory limit"),
        _ => {}
    }
    match (available, total) {
        (Some(a), _) => (Some(a), "the memory available (MemAvailable)"),
        (None, Some(t)) => (Some(t), "the machine's memory (MemTotal)"),
        (None, None) => (None, "unknown"),
    }
}

/// The memory limit of this process's cgroup (v2 `memory.max`, or v1
/// `memory.limit_in_bytes`), if one is set.
fn cgroup_limit() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let text = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))?;
    parse_limit(&text)
}

/// A cgroup limit file's value: `max` (v2) or a huge number (v1's "no
/// limit", 2^63 rounded down to a page) read as none.
fn parse_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    (n < 1 << 60).then_some(n)
}

/// A `/proc/meminfo` field (`MemTotal:  24683784 kB`), in bytes.
fn meminfo_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * KIB)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::GIB;

    #[test]
    fn meminfo_and_cgroup_files_are_read() {
        let text = "MemTotal:       24683784 kB\nMemFree:  1 kB\nMemAvailable:   20441468 kB\n";
        assert_eq!(meminfo_field(text, "MemTotal"), Some(24683784 * KIB));
        assert_eq!(meminfo_field(text, "MemAvailable"), Some(20441468 * KIB));
        assert_eq!(meminfo_field(text, "Mem"), None);
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("4294967296\n"), Some(4 * GIB));
    }

    #[test]
    fn a_cgroup_limit_below_the_machine_wins() {
        let (t, a) = (Some(256 * GIB), Some(200 * GIB));
        assert_eq!(usable(Some(8 * GIB), t, a).0, Some(8 * GIB));
        assert_eq!(usable(Some(512 * GIB), t, a).0, Some(200 * GIB));
        assert_eq!(usable(None, t, a).0, Some(200 * GIB));
        assert_eq!(usable(None, t, None).0, Some(256 * GIB));
        assert_eq!(usable(None, None, None).0, None);
    }
}
