//! The rockpack command line: parses the arguments (`cli`), sets a run up
//! (`setup`), runs it through the library and writes the CI outputs (`ci`).

mod ci;
mod cli;
mod progress;
mod report;
mod run_root;
mod selection;
mod setup;
mod therock_flags;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use progress::{Display, Renderer};
use rockpack::codec::Codecs;
use rockpack::error::{Error, Result};
use rockpack::net::journal::Run;
use rockpack::net::object_copy::CopySettings;
use rockpack::net::{aws, S3Prefix};
use rockpack::pipeline::progress::Progress;
use rockpack::pipeline::{self, RunOptions};
use rockpack::source::location::Location;
use rockpack::store::names::Renames;
use rockpack::store::promote::PromoteOptions;
use rockpack::store::versions::VersionPromotion;
use rockpack::{fixtures, store};

use cli::*;
use setup::*;

/// `rockpack pack`: plans the run, sets up its destination and budget,
/// runs it and reports.
async fn pack(select: SelectArgs, args: PackArgs, display: Display) -> Result<()> {
    let source = select.source().await?;
    let plan = Arc::new(select.plan(&source, true).await?);
    let codecs = Codecs::new(&plan.formats(), &args.therock.levels(&args.level)?)?;
    let dest = destination(&select, &args, &plan)?;
    let budget = budget(&args, &plan, &codecs, dest.as_ref())?;
    tracing::debug!(?budget, "memory budget");
    let sink = sink(&select, &args, &plan, dest, &budget).await?;
    let opts = RunOptions {
        codecs,
        on_conflict: args.on_conflict,
        metadata: args.metadata()?,
        verify: select.verify,
        max_unpacked: args.max_unpacked_size,
        budget,
    };
    tracing::info!(
        "packing {} tarballs from {} artifacts at {} into {}",
        plan.tarballs.len(),
        plan.artifacts.len(),
        source.describe(),
        sink.describe()
    );
    let progress = Progress::new(&plan);
    let renderer = Renderer::start(progress.clone(), plan.clone(), display);
    let warnings = plan.warnings.clone();
    let result = pipeline::run(plan, source, sink.as_ref(), &opts, progress).await;
    renderer.finish().await;
    let summary = result?;
    eprint!("{}", report::summary_text(&summary));
    let endpoint = select.s3.endpoint();
    ci::write_ci_outputs(
        &summary,
        &warnings,
        args.summary.as_deref(),
        endpoint.as_deref(),
    )
    .map_err(|e| Error::write("writing the run summary", e))
}

/// An `s3://bucket/prefix/` argument of promote or abort-uploads.
fn s3_prefix(what: &str, url: &str) -> Result<S3Prefix> {
    match Location::parse(url)? {
        Location::S3(at) => Ok(at),
        _ => Err(Error::Usage(format!(
            "{what} {url}: expected s3://bucket/prefix/"
        ))),
    }
}

/// `rockpack promote`: copies, reports, writes the CI outputs.
async fn promote(source: &str, dest: &str, args: PromoteArgs, s3: S3Args) -> Result<()> {
    let from = s3_prefix("SRC", source)?;
    let to = s3_prefix("DEST", dest)?;
    let defaults = CopySettings::default();
    let opts = PromoteOptions {
        renames: Renames::parse(&args.renames)?.with_version(VersionPromotion::parse(
            args.src_version_type.as_deref(),
            args.dest_version.as_deref(),
        )?),
        only: args.only,
        replace: args.replace,
        dry_run: args.dry_run,
        unrecorded: args.unrecorded,
        copy: CopySettings {
            object_limit: args.copy_object_limit.unwrap_or(defaults.object_limit),
            part_size: args.copy_part_size.unwrap_or(defaults.part_size),
            retry: rockpack::net::RetryPolicy {
                max_attempts: args.retries.max(1),
                patience: std::time::Duration::from_secs(args.retry_for),
                ..Default::default()
            },
        },
    };
    let client = aws::client(&s3.options()).await?;
    let summary = store::promote::promote(&client, &from, &to, &opts).await?;
    eprint!("{}", summary.text());
    let endpoint = s3.endpoint();
    ci::write_promote_outputs(&summary, args.summary.as_deref(), endpoint.as_deref())
        .map_err(|e| Error::write("writing the promote summary", e))
}

/// `rockpack abort-uploads`: lists (and aborts) what killed runs left.
async fn abort_uploads(
    prefix: &str,
    older_than: Option<std::time::Duration>,
    dry_run: bool,
    s3: S3Args,
) -> Result<()> {
    let at = s3_prefix("PREFIX", prefix)?;
    let client = aws::client(&s3.options()).await?;
    let found = store::abort_uploads::abort_uploads(&client, &at, older_than, dry_run).await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for u in &found.uploads {
        let started = u
            .started
            .as_deref()
            .map(|t| format!(", started {t}"))
            .unwrap_or_default();
        println!(
            "{verb} s3://{}/{} (upload {}{started})",
            at.bucket, u.key, u.upload_id
        );
    }
    for t in &found.temporaries {
        println!("{verb} s3://{}/{} ({} bytes)", at.bucket, t.key, t.bytes);
    }
    for t in &found.journals {
        let done = if dry_run {
            "would take back"
        } else {
            "took back"
        };
        let name = t.key.rsplit('/').next().unwrap_or(&t.key);
        let run = if name.starts_with(Run::Pack.prefix()) {
            "pack"
        } else {
            "promote"
        };
        println!(
            "{done} the killed {run} of s3://{}/{} (its backups restored, what it created deleted)",
            at.bucket, t.key
        );
    }
    for t in &found.backups {
        println!(
            "kept s3://{}/{} (a backup no journal names: it may hold the only copy of what a killed run replaced)",
            at.bucket, t.key
        );
    }
    let mut line = format!(
        "{} {} incomplete upload(s) and {} temporary object(s) below {}",
        if dry_run { "found" } else { "removed" },
        found.uploads.len(),
        found.temporaries.len(),
        at.url()
    );
    if found.too_young > 0 {
        line.push_str(&format!(
            "; left {} younger than --older-than alone",
            found.too_young
        ));
    }
    eprintln!("{line}");
    Ok(())
}

async fn main_async(cli: Cli) -> Result<()> {
    let display = if cli.quiet {
        Display::Off
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr())
        && cli.log_format == LogFormat::Text
    {
        Display::Bars
    } else {
        Display::Log(std::time::Duration::from_secs(10))
    };
    match cli.command {
        Command::Plan {
            select,
            json,
            print_set,
        } => {
            let source = select.source().await?;
            if print_set {
                let (set, _, _) = select.tarball_set(&source, false).await?;
                let mut comment = set_comment();
                let table = select.table()?;
                let unknown = set.unknown_entries(&table);
                if !unknown.is_empty() {
                    comment.push_str(&format!(
                        "\nNot in {}: {} (a set file refuses names the table lacks;\npass --family-table with a table that has them).",
                        table.origin(),
                        unknown.join(", ")
                    ));
                }
                print!("{}", set.to_toml(&comment));
                return Ok(());
            }
            let plan = select.plan(&source, false).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).expect("plan serialises")
                );
            } else {
                print!("{}", report::plan_text(&plan, &source.describe()));
            }
            Ok(())
        }
        Command::Pack { select, pack: args } => pack(*select, *args, display).await,
        Command::List { select, json } => {
            let source = select.source().await?;
            let listing = source.list().await?;
            listing.log_skipped();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&listing.artifacts).expect("listing serialises")
                );
            } else {
                print!(
                    "{}",
                    report::listing_text(
                        &listing.artifacts,
                        listing.skipped.len(),
                        &source.describe()
                    )
                );
            }
            Ok(())
        }
        Command::Promote {
            source,
            dest,
            promote: args,
            s3,
        } => promote(&source, &dest, *args, s3).await,
        Command::AbortUploads {
            prefix,
            older_than,
            dry_run,
            s3,
        } => abort_uploads(&prefix, older_than, dry_run, s3).await,
        Command::Generate {
            dest,
            layout,
            families,
            seed,
            large_bytes,
            platform,
        } => {
            let layout = match layout.as_str() {
                "plain" => fixtures::Layout::Plain,
                "kpack" => fixtures::Layout::Kpack,
                other => {
                    return Err(Error::Usage(format!(
                        "--layout {other:?}: expected plain or kpack"
                    )))
                }
            };
            let spec = fixtures::FixtureSpec {
                layout,
                families: split_list(&families, &[';', ',']),
                seed,
                large_bytes,
                sidecars: true,
                windows: platform == "windows",
            };
            let made = fixtures::generate(&spec, &dest)
                .map_err(|e| Error::write(format!("generating into {}", dest.display()), e))?;
            eprintln!("wrote {} artifacts to {}", made.len(), dest.display());
            Ok(())
        }
    }
}

/// The comment that opens `plan --print-set`'s output: the command line
/// it came from, and how to use it.
fn set_comment() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--print-set")
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    format!(
        "The tarball set of: rockpack {}\nUse it with --set FILE instead of the selection flags (--version and\n--platform fill {{version}} and {{platform}}; --format gives formats where a table has none).",
        args.join(" ")
    )
}

/// Logs go to stderr: plain text (colours only on a terminal) or JSON lines.
/// `ROCKPACK_LOG` (an env-filter directive) overrides -v/-q.
fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROCKPACK_LOG")
        .unwrap_or_else(|_| format!("rockpack={level}").into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(main_async(cli));
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rockpack: error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("rockpack: hint: {hint}");
            }
            e.exit_code()
        }
    };
    // Do not wait for blocking threads still reading an aborted source.
    rt.shutdown_background();
    ExitCode::from(code as u8)
}
