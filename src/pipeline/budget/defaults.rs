//! What a run takes without `--memory`: sized from the machine
//! ([`default_memory`]), and the README's table of what that gives on
//! machines of several sizes ([`scale_table`]).

use super::machine::Machine;
use super::{Budget, Needs, DEFAULT_MEMORY};
use crate::codec::Codec;
use crate::plan::Format;
use crate::units::{human_bytes, GIB, MIB};

/// The share of the machine's memory a run takes by default: the rest is
/// the CI job's (its other steps, the page cache the downloads pass).
const MACHINE_SHARE: u64 = 4;

/// The most memory a run takes by default per core: with it, every core
/// has artifacts to read ahead (CORES_PER_ARTIFACT cores share one).
const PER_CORE: u64 = GIB;

/// The `--memory` a run takes without one, and why: a quarter of what
/// the machine offers, at most 1 GiB per core, at least 512 MiB (but no
/// more than half of a smaller machine's).
pub fn default_memory(m: &Machine) -> (u64, String) {
    let Some(usable) = m.memory else {
        return (
            DEFAULT_MEMORY,
            format!(
                "{} (the machine's memory is unknown)",
                human_bytes(DEFAULT_MEMORY)
            ),
        );
    };
    let quarter = usable / MACHINE_SHARE;
    let per_core = m.cores as u64 * PER_CORE;
    let (memory, why) = if per_core <= quarter {
        (per_core, format!("1 GiB per core ({} cores)", m.cores))
    } else {
        (
            quarter,
            format!("a quarter of {} ({})", human_bytes(usable), m.memory_from),
        )
    };
    if memory >= DEFAULT_MEMORY {
        return (memory / MIB * MIB, why);
    }
    let floor = DEFAULT_MEMORY.min(usable / 2) / MIB * MIB;
    (
        floor,
        format!(
            "the least a run takes by default, within half of {} ({})",
            human_bytes(usable),
            m.memory_from
        ),
    )
}

/// Machines the README's scale table shows: cores, and GiB of memory.
pub const SCALE_MACHINES: [(usize, u64); 4] = [(2, 8), (16, 64), (64, 256), (96, 384)];

/// What the defaults choose on each of [`SCALE_MACHINES`] (all of its
/// memory available, no cgroup limit; gzip level 6 to a directory), as
/// the README's Markdown table.
pub fn scale_table() -> String {
    let mut s = String::from(
        "| cores | memory | `--memory` by default | compression threads | artifacts at once | each holds ahead | decoder window |\n\
         | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n",
    );
    for (cores, gib) in SCALE_MACHINES {
        let machine = Machine {
            cores,
            cores_from: "ROCKPACK_CORES",
            memory: Some(gib * GIB),
            memory_from: "the memory available (MemAvailable)",
        };
        let (memory, why) = default_memory(&machine);
        let b = Budget::new(&Needs {
            memory,
            memory_from: why.clone(),
            jobs: None,
            artifact_jobs: None,
            cores,
            cores_from: machine.cores_from.into(),
            codecs: vec![Codec::new(Format::Gzip, None).expect("gzip 6")],
            part_sizes: Vec::new(),
        })
        .expect("the default budget fits");
        s += &format!(
            "| {cores} | {gib} GiB | {} ({}) | {} | {} | {} | {} |\n",
            human_bytes(memory),
            why.split(" (").next().unwrap_or(&why),
            b.jobs,
            b.artifact_jobs,
            if b.pending > 0 {
                human_bytes(b.pending)
            } else {
                "—".into()
            },
            human_bytes(1 << b.window_log_max),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(memory: u64, cores: usize) -> Needs {
        Needs {
            memory,
            memory_from: "--memory".into(),
            jobs: None,
            artifact_jobs: None,
            cores,
            cores_from: "a test".into(),
            codecs: vec![Codec::new(Format::Gzip, None).unwrap()],
            part_sizes: Vec::new(),
        }
    }

    fn machine(cores: usize, memory: u64, from: &'static str) -> Machine {
        Machine {
            cores,
            cores_from: "ROCKPACK_CORES",
            memory: Some(memory),
            memory_from: from,
        }
    }

    #[test]
    fn defaults_fit_the_machine() {
        let avail = "the memory available (MemAvailable)";
        let pick = |cores, memory| {
            let (m, why) = default_memory(&machine(cores, memory, avail));
            (m, why, Budget::new(&needs(m, cores)).unwrap())
        };
        // (cores, memory) -> (--memory, threads, artifacts at once)
        for (cores, gib, memory, jobs, readers) in [
            (2, 8, 2 * GIB, 2, 1),
            (16, 64, 16 * GIB, 16, 8),
            (64, 256, 64 * GIB, 64, 32),
            (96, 384, 96 * GIB, 96, 48),
        ] {
            let (m, why, b) = pick(cores, gib * GIB);
            assert_eq!(
                (m, b.jobs, b.artifact_jobs),
                (memory, jobs, readers),
                "{why}"
            );
        }
        // A 2-core 4 GiB machine: a quarter, 1 GiB.
        let (m, why, _) = pick(2, 4 * GIB);
        assert_eq!(m, GIB, "{why}");
        assert!(why.starts_with("a quarter of 4.0 GiB"), "{why}");
        // A small machine: 512 MiB, within half of it.
        assert_eq!(pick(2, 1536 * MIB).0, 512 * MIB);
        assert_eq!(pick(1, 640 * MIB).0, 320 * MIB);
        // A cgroup limit below the machine's memory (see `machine::usable`):
        // 64 cores in 8 GiB take a quarter of the limit; with windows
        // budgeted as archives declare them, 18 artifacts at once, each
        // holding at least 40 MiB ahead of its turn.
        let (m, why) = default_memory(&machine(64, 8 * GIB, "the cgroup's memory limit"));
        assert_eq!(m, 2 * GIB);
        assert!(why.contains("the cgroup's memory limit"), "{why}");
        let b = Budget::new(&needs(m, 64)).unwrap();
        assert_eq!(b.artifact_jobs, 18, "{b:?}");
        assert!(b.pending >= 40 * MIB, "{b:?}");
        // A quarter of the budget left to the shares.
        assert!(b.held_output >= 40 * MIB, "{b:?}");
        // Unknown memory: the least default.
        let unknown = Machine {
            memory: None,
            ..machine(64, 0, avail)
        };
        assert_eq!(default_memory(&unknown).0, DEFAULT_MEMORY);
    }

    #[test]
    fn the_scale_table_is_the_budget() {
        let t = scale_table();
        assert!(
            t.contains("| 64 | 256 GiB | 64.0 GiB (1 GiB per core) | 64 | 32 |"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 2 + SCALE_MACHINES.len());
    }
}
