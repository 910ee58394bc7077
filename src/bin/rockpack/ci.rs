//! What a run leaves for CI: the `--summary` file, and in GitHub Actions
//! the `tarball_urls` output (`$GITHUB_OUTPUT`, in TheRock's shape) and a
//! table with the plan's warnings for the step summary
//! (`$GITHUB_STEP_SUMMARY`).

use std::fmt::Write as _;

use rockpack::pipeline::RunSummary;
use rockpack::plan::tarball_key;
use rockpack::report::{public_url, summary_json, totals};
use rockpack::units::human_bytes;

/// `tarball_urls` for `$GITHUB_OUTPUT`: URLs by label (the multiarch one
/// under "multiarch", as TheRock's upload step writes it), a variant's
/// under "{label}-{variant}" (`-tests` under "{label}-tests"); a tarball
/// built in several formats has its first format there and the others
/// under "{key}.{extension}" ("multiarch.tar.zst").
pub(crate) fn tarball_urls(summary: &RunSummary, endpoint: Option<&str>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for t in &summary.tarballs {
        if let Some(url) = public_url(&t.location, endpoint) {
            let mut key = tarball_key(&t.label, t.variant.as_deref());
            if map.contains_key(&key) {
                key = format!("{key}.{}", t.format.extension());
            }
            map.insert(key, serde_json::Value::String(url));
        }
    }
    serde_json::Value::Object(map)
}

/// A Markdown table for `$GITHUB_STEP_SUMMARY`, after the plan's
/// `warnings` as GitHub alerts (a log line is easy to miss; a tarball of
/// generic artifacts only should not be).
pub(crate) fn step_summary_markdown(
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
    let _ = writeln!(s, "\n{}", totals(summary));
    s
}

/// Writes the CI outputs: `--summary`, `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`;
/// `warnings` are the plan's.
pub(crate) fn write_ci_outputs(
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
