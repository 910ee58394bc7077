//! What a run tells its user: the plan, and the final summary table.

use std::fmt::Write as _;

use rockpack::pipeline::RunSummary;
use rockpack::plan::Plan;
use rockpack::units::human_bytes;

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
        if !t.exclude_paths.is_empty() {
            let _ = writeln!(s, "  leaves out paths: {}", t.exclude_paths.join(" "));
        }
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
    let _ = writeln!(s, "{}", totals(summary));
    if let Some(u) = &summary.upload {
        let _ = writeln!(s, "{}", upload_text(u, summary.distinct_bytes));
    }
    s
}

/// What an uploading sink sent, against the run's distinct bytes.
pub fn upload_text(u: &rockpack::sink::UploadStats, distinct: u64) -> String {
    let ratio = if distinct > 0 {
        u.sent_bytes as f64 / distinct as f64
    } else {
        0.0
    };
    let mut s = format!(
        "sent {} ({ratio:.3}x the run's {} of distinct bytes), copied {} inside the store",
        human_bytes(u.sent_bytes),
        human_bytes(distinct),
        human_bytes(u.copied_bytes)
    );
    if !u.server_copy {
        s.push_str(" (server-side copy off)");
    }
    if u.read_back_bytes > 0 {
        let _ = write!(s, ", {} read back", human_bytes(u.read_back_bytes));
    }
    if u.backed_up_bytes > 0 {
        let _ = write!(
            s,
            ", {} of what it replaced backed up until the set was sealed",
            human_bytes(u.backed_up_bytes)
        );
    }
    s
}

/// The run in one line: tarballs, artifacts, bytes read, wall time.
pub fn totals(summary: &RunSummary) -> String {
    format!(
        "{} tarballs from {} artifacts ({} in) in {:.1}s",
        summary.tarballs.len(),
        summary.artifacts,
        human_bytes(summary.input_bytes),
        summary.seconds
    )
}

/// The public https URL of an object: the bucket's AWS endpoint, or the
/// S3-compatible endpoint the run used (path style). The key is quoted as
/// TheRock quotes it (Python's `urllib.parse.quote`: `+` becomes `%2B`).
pub fn public_url(location: &str, endpoint: Option<&str>) -> Option<String> {
    let rest = location.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    let quoted = rockpack::net::encode_key(key);
    Some(match endpoint {
        Some(ep) => format!("{}/{bucket}/{quoted}", ep.trim_end_matches('/')),
        None => format!("https://{bucket}.s3.amazonaws.com/{quoted}"),
    })
}

/// `--summary FILE`: every tarball with key, URL, size, digests (SHA-256,
/// and the checksum S3 keeps), input and timing; the run's distinct bytes
/// and what an S3 sink sent and copied.
pub fn summary_json(summary: &RunSummary, endpoint: Option<&str>) -> serde_json::Value {
    let tarballs: Vec<serde_json::Value> = summary
        .tarballs
        .iter()
        .map(|t| {
            let (bucket, key) = t
                .location
                .strip_prefix("s3://")
                .and_then(|r| r.split_once('/'))
                .unzip();
            serde_json::json!({
                "file_name": t.file_name,
                "bucket": bucket,
                "key": key,
                "label": t.label,
                "variant": t.variant,
                "tests": t.variant.as_deref() == Some("tests"),
                "format": t.format.name(),
                "sidecar": t.sidecar,
                "location": t.location,
                "url": public_url(&t.location, endpoint),
                "bytes": t.bytes,
                "sha256": t.sha256,
                "checksum": t.checksum,
                // S3: bytes sent and copied for it, the ranges it is made of.
                "assembled": t.assembled,
                "content_bytes": t.content_bytes,
                "input_bytes": t.input_bytes,
                "artifacts": t.artifacts,
                "seconds": t.seconds,
            })
        })
        .collect();
    serde_json::json!({
        "tarballs": tarballs,
        "artifacts": summary.artifacts,
        "input_bytes": summary.input_bytes,
        "distinct_bytes": summary.distinct_bytes,
        "upload": summary.upload,
        "seconds": summary.seconds,
        // Seconds between the first and the last final name written.
        "publish_window": summary.publish_window,
        // CPU seconds per stage; `serial` is the longest chain that runs
        // one thing at a time, so compress / serial is how many
        // compression threads the run could keep busy.
        "cpu_seconds": summary.cpu,
        "budget": summary.budget,
        // Artifacts too large to hold ahead of their turn: read twice.
        "artifacts_read_twice": summary.artifacts_read_twice,
    })
}

/// `rockpack list`: artifacts grouped by name, then component, then target,
/// after a line that counts them and the `skipped` files that are not
/// artifacts.
pub fn listing_text(
    artifacts: &[rockpack::plan::SourceArtifact],
    skipped: usize,
    source: &str,
) -> String {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&rockpack::plan::SourceArtifact>>> =
        BTreeMap::new();
    for a in artifacts {
        groups
            .entry(a.name.name.as_str())
            .or_default()
            .entry(a.name.component.as_str())
            .or_default()
            .push(a);
    }
    let total: u64 = artifacts.iter().map(|a| a.size).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "source {source}: {} artifacts, {}; {skipped} other files skipped (-v lists them)",
        artifacts.len(),
        human_bytes(total)
    );
    for (name, comps) in &groups {
        let size: u64 = comps.values().flatten().map(|a| a.size).sum();
        let _ = writeln!(s, "\n{name}  ({})", human_bytes(size));
        for (comp, list) in comps {
            let targets: Vec<String> = list
                .iter()
                .map(|a| {
                    let xz = if a.name.compression == rockpack::plan::Compression::Xz {
                        " [xz]"
                    } else {
                        ""
                    };
                    format!("{}{xz} {}", a.name.target, human_bytes(a.size))
                })
                .collect();
            let _ = writeln!(s, "  {comp:<5} {}", targets.join(", "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_quote_like_therock() {
        assert_eq!(
            public_url("s3://b/123-linux/tarballs/therock-dist-linux-multiarch-7.0.0rc1+abc.tar.gz", None).unwrap(),
            "https://b.s3.amazonaws.com/123-linux/tarballs/therock-dist-linux-multiarch-7.0.0rc1%2Babc.tar.gz"
        );
        assert_eq!(
            public_url("s3://b/k.tar.gz", Some("http://127.0.0.1:9000/")).unwrap(),
            "http://127.0.0.1:9000/b/k.tar.gz"
        );
        assert!(public_url("/tmp/x.tar.gz", None).is_none());
    }
}
