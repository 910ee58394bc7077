//! What a run tells its user: the plan, and the final summary table.

use std::fmt::Write as _;

use crate::pipeline::RunSummary;
use crate::plan::Plan;

/// Human-readable sizes in binary units.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The plan: each tarball with its artifacts in order and its input size.
pub fn plan_text(plan: &Plan, source: &str) -> String {
    let mut s = String::new();
    let kpack = match plan.kpack_split {
        Some(true) => "kpack-split",
        Some(false) => "not kpack-split",
        None => "kpack split unknown (no manifests/therock_manifest.json)",
    };
    let total: u64 = plan.artifacts.iter().map(|a| a.size).sum();
    let _ = writeln!(
        s,
        "source {source}: {} artifacts selected, {} ({kpack})",
        plan.artifacts.len(),
        human_bytes(total)
    );
    for t in &plan.tarballs {
        let _ = writeln!(
            s,
            "\n{}  ({} artifacts, {} in)",
            t.file_name,
            t.artifacts.len(),
            human_bytes(t.input_bytes)
        );
        for &i in &t.artifacts {
            let a = &plan.artifacts[i];
            let _ = writeln!(
                s,
                "  {:<60} {:>10}",
                a.name.file_name(),
                human_bytes(a.size)
            );
        }
    }
    s
}

/// The final table: tarball, size, ratio, sha256 and time.
pub fn summary_text(summary: &RunSummary) -> String {
    let mut s = String::new();
    let width = summary
        .tarballs
        .iter()
        .map(|t| t.file_name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        s,
        "{:<width$}  {:>10}  {:>6}  {:<64}  {:>7}",
        "tarball", "size", "ratio", "sha256", "time"
    );
    for t in &summary.tarballs {
        let ratio = if t.content_bytes > 0 {
            t.bytes as f64 / t.content_bytes as f64
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "{:<width$}  {:>10}  {:>6.3}  {}  {:>6.1}s",
            t.file_name,
            human_bytes(t.bytes),
            ratio,
            t.sha256,
            t.seconds
        );
    }
    let _ = writeln!(
        s,
        "{} tarballs from {} artifacts ({} in) in {:.1}s",
        summary.tarballs.len(),
        summary.artifacts,
        human_bytes(summary.input_bytes),
        summary.seconds
    );
    s
}
