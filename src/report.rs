//! What a run tells its user: the plan, and the final summary table.

use std::fmt::Write as _;

use crate::pipeline::RunSummary;
use crate::plan::Plan;
use crate::units::human_bytes;

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

/// The public https URL of an object: the bucket's AWS endpoint, or the
/// S3-compatible endpoint the run used (path style). The key is quoted as
/// TheRock quotes it (Python's `urllib.parse.quote`: `+` becomes `%2B`).
pub fn public_url(location: &str, endpoint: Option<&str>) -> Option<String> {
    let rest = location.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    let quoted = crate::net::encode_key(key);
    Some(match endpoint {
        Some(ep) => format!("{}/{bucket}/{quoted}", ep.trim_end_matches('/')),
        None => format!("https://{bucket}.s3.amazonaws.com/{quoted}"),
    })
}

/// `--summary FILE`: every tarball with key, URL, size, digest, input and timing.
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
                "tests": t.tests,
                "location": t.location,
                "url": public_url(&t.location, endpoint),
                "bytes": t.bytes,
                "sha256": t.sha256,
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
        "seconds": summary.seconds,
        // CPU seconds per stage: decode and repack are one thread each, so
        // whichever is larger bounds how many compression threads a run
        // can keep busy (compress / max(decode, repack)).
        "cpu_seconds": summary.cpu,
    })
}

/// `tarball_urls` for `$GITHUB_OUTPUT`: base tarballs' URLs by label (the
/// multiarch one under "multiarch", as TheRock's upload step writes it),
/// `-tests` variants under "{label}-tests".
pub fn tarball_urls(summary: &RunSummary, endpoint: Option<&str>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for t in &summary.tarballs {
        if let Some(url) = public_url(&t.location, endpoint) {
            let key = if t.tests {
                format!("{}-tests", t.label)
            } else {
                t.label.clone()
            };
            map.insert(key, serde_json::Value::String(url));
        }
    }
    serde_json::Value::Object(map)
}

/// A Markdown table for `$GITHUB_STEP_SUMMARY`, after the plan's
/// `warnings` as GitHub alerts (a log line is easy to miss; a tarball of
/// generic artifacts only should not be).
pub fn step_summary_markdown(
    summary: &RunSummary,
    warnings: &[String],
    endpoint: Option<&str>,
) -> String {
    let mut s = String::from("### rockpack\n\n");
    for w in warnings {
        let _ = writeln!(s, "> [!WARNING]\n> {w}\n");
    }
    s.push_str("| tarball | size | sha256 | time |\n| --- | ---: | --- | ---: |\n");
    for t in &summary.tarballs {
        let name = match public_url(&t.location, endpoint) {
            Some(url) => format!("[{}]({url})", t.file_name),
            None => t.file_name.clone(),
        };
        let _ = writeln!(
            s,
            "| {name} | {} | `{}` | {:.1}s |",
            human_bytes(t.bytes),
            t.sha256,
            t.seconds
        );
    }
    let _ = writeln!(
        s,
        "\n{} tarballs from {} artifacts ({}) in {:.1}s",
        summary.tarballs.len(),
        summary.artifacts,
        human_bytes(summary.input_bytes),
        summary.seconds
    );
    s
}

/// Writes the CI outputs: `--summary`, `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`;
/// `warnings` are the plan's.
pub fn write_ci_outputs(
    summary: &RunSummary,
    warnings: &[String],
    summary_file: Option<&std::path::Path>,
    endpoint: Option<&str>,
) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(path) = summary_file {
        let mut json = summary_json(summary, endpoint);
        json["warnings"] = serde_json::json!(warnings);
        let text = serde_json::to_string_pretty(&json).expect("JSON");
        std::fs::write(path, text + "\n")?;
    }
    let append = |var: &str, text: &str| -> std::io::Result<()> {
        if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            f.write_all(text.as_bytes())?;
        }
        Ok(())
    };
    append(
        "GITHUB_OUTPUT",
        &format!("tarball_urls={}\n", tarball_urls(summary, endpoint)),
    )?;
    append(
        "GITHUB_STEP_SUMMARY",
        &step_summary_markdown(summary, warnings, endpoint),
    )?;
    Ok(())
}

/// `rockpack list`: artifacts grouped by name, then component, then target,
/// after a line that counts them and the `skipped` files that are not
/// artifacts.
pub fn listing_text(
    artifacts: &[crate::plan::SourceArtifact],
    skipped: usize,
    source: &str,
) -> String {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&crate::plan::SourceArtifact>>> =
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
                    let xz = if a.name.compression == crate::plan::Compression::Xz {
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
