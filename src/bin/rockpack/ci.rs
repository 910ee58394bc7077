//! What a run (or a promote) leaves for CI: the `--summary` file, and in GitHub Actions
//! the `tarball_urls` output (`$GITHUB_OUTPUT`, in TheRock's shape) and a
//! table with the plan's warnings for the step summary
//! (`$GITHUB_STEP_SUMMARY`).

use std::fmt::Write as _;

use crate::report::{public_url, summary_json, totals};
use rockpack::pipeline::RunSummary;
use rockpack::plan::{tarball_key, Format};
use rockpack::store::promote::PromoteSummary;
use rockpack::units::human_bytes;

/// `tarball_urls` for `$GITHUB_OUTPUT`: URLs by label (the multiarch one
/// under "multiarch", as TheRock's upload step writes it), a variant's
/// under "{label}-{variant}" (`-tests` under "{label}-tests"); a tarball
/// built in several formats has its first format there and the others
/// under "{key}.{extension}" ("multiarch.tar.zst"). Each tarball is
/// `(key, format, location)`.
pub(crate) fn tarball_urls<'a>(
    tarballs: impl IntoIterator<Item = (String, Format, &'a str)>,
    endpoint: Option<&str>,
) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (mut key, format, location) in tarballs {
        if let Some(url) = public_url(location, endpoint) {
            if map.contains_key(&key) {
                key = format!("{key}.{}", format.extension());
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
    if let Some(path) = summary_file {
        let mut json = summary_json(summary, endpoint);
        json["warnings"] = serde_json::json!(warnings);
        write_json(path, &json)?;
    }
    append(
        "GITHUB_OUTPUT",
        &format!(
            "tarball_urls={}\n",
            tarball_urls(
                summary.tarballs.iter().map(|t| (
                    tarball_key(&t.label, t.variant.as_deref()),
                    t.format,
                    t.location.as_str()
                )),
                endpoint
            )
        ),
    )?;
    append(
        "GITHUB_STEP_SUMMARY",
        &step_summary_markdown(summary, warnings, endpoint),
    )?;
    Ok(())
}

/// Writes the CI outputs of a promote: `--summary`, `$GITHUB_OUTPUT`'s
/// `tarball_urls` (the promoted tarballs' new URLs, keyed as `pack` keys
/// them), `$GITHUB_STEP_SUMMARY`. A dry run writes only the summary.
pub(crate) fn write_promote_outputs(
    summary: &PromoteSummary,
    summary_file: Option<&std::path::Path>,
    endpoint: Option<&str>,
) -> std::io::Result<()> {
    if let Some(path) = summary_file {
        write_json(path, &summary.json(|l| public_url(l, endpoint)))?;
    }
    if summary.dry_run {
        return Ok(());
    }
    let urls = tarball_urls(
        summary
            .tarballs
            .iter()
            .map(|p| (p.name.key(), p.name.format, p.location.as_str())),
        endpoint,
    );
    append("GITHUB_OUTPUT", &format!("tarball_urls={urls}\n"))?;
    let mut md = String::from(
        "### rockpack promote\n\n| tarball | size | from | checked |\n| --- | ---: | --- | --- |\n",
    );
    for p in &summary.tarballs {
        let name = match public_url(&p.location, endpoint) {
            Some(url) => format!("[{}]({url})", p.name.file_name),
            None => p.name.file_name.clone(),
        };
        let _ = writeln!(
            md,
            "| {name} | {} | `{}` | {} |",
            human_bytes(p.source.size),
            p.source.url(),
            p.checked.unwrap_or("already there")
        );
    }
    let _ = writeln!(md, "\n{} to {}", summary.source, summary.dest);
    append("GITHUB_STEP_SUMMARY", &md)
}

/// A JSON file, pretty, with a final newline.
fn write_json(path: &std::path::Path, json: &serde_json::Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(json).expect("JSON");
    std::fs::write(path, text + "\n")
}

/// Appends `text` to the file the environment variable `var` names, if set.
fn append(var: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(text.as_bytes())?;
    }
    Ok(())
}
