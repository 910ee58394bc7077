//! The rockpack command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use rockpack::codec::{Codec, Format};
use rockpack::error::{Error, Result};
use rockpack::pipeline::{self, RunOptions};
use rockpack::plan::{build_plan, FamilyTable, MultiarchMode, Plan, PlanOptions};
use rockpack::repack::ConflictPolicy;
use rockpack::sink::{dir::DirSink, stdout::StdoutSink, Sink};
use rockpack::source::{dir::DirSource, verify::VerifyMode, Source};
use rockpack::{fixtures, report};

#[derive(Parser)]
#[command(
    name = "rockpack",
    version,
    about = "Build ROCm dist tarballs from TheRock artifacts in one streaming pass"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show which tarballs a run would build, from which artifacts (reads no archive).
    Plan {
        #[command(flatten)]
        select: SelectArgs,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the tarballs.
    Pack {
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        pack: PackArgs,
    },
    /// Write a generated sample run of artifacts (for tests, demos, benchmarks).
    #[command(hide = true)]
    Generate {
        /// Output directory.
        #[arg(long)]
        dest: PathBuf,
        /// `plain` or `kpack`.
        #[arg(long, default_value = "kpack")]
        layout: String,
        #[arg(long, default_value = "gfx94X-dcgpu;gfx110X-all")]
        families: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Approximate bytes of large-file content.
        #[arg(long, default_value_t = 0)]
        large_bytes: u64,
    },
}

#[derive(Args)]
struct SelectArgs {
    /// Directory holding the run's artifacts.
    #[arg(long)]
    source: PathBuf,
    /// GPU families, separated by ';' or ',': one tarball each.
    #[arg(long, alias = "dist-amdgpu-families", value_name = "'A;B'")]
    families: Option<String>,
    /// Extra single targets (comma-separated), one tarball each; kpack-split runs only.
    #[arg(long, value_name = "gfx942,gfx1100")]
    targets: Option<String>,
    /// Also one tarball per target of every requested family; kpack-split runs only.
    #[arg(long)]
    per_target: bool,
    #[arg(long, default_value = "linux", value_parser = ["linux", "windows"])]
    platform: String,
    /// Version string in tarball names.
    #[arg(long = "version", alias = "package-version", default_value = "0.0.0")]
    version: String,
    /// Also build the `-tests` variant of every tarball.
    #[arg(long, alias = "include-test-tarballs")]
    tests: bool,
    /// The all-families tarball: auto builds it for kpack-split runs with more than one family.
    #[arg(long, value_enum, default_value = "auto")]
    multiarch: MultiarchMode,
    /// Output compression.
    #[arg(long, value_enum, default_value = "gz")]
    format: Format,
    /// Artifact names base tarballs leave out (comma-separated).
    #[arg(long, default_value = "fftw3", value_name = "NAMES")]
    exclude_artifacts: String,
    /// Components base tarballs leave out (comma-separated).
    #[arg(long, default_value = "test", value_name = "COMPONENTS")]
    exclude_components: String,
    /// A newer TheRock cmake/therock_amdgpu_targets.cmake to read families from.
    #[arg(long, value_name = "FILE")]
    family_table: Option<PathBuf>,
}

#[derive(Args)]
struct PackArgs {
    /// Output directory, or '-' for standard output (plans of one tarball only).
    #[arg(long, alias = "output-dir")]
    dest: PathBuf,
    /// Compression level (gz: 0-9, default 6; zst: 1-22, default 3).
    #[arg(long)]
    level: Option<i32>,
    /// Compression threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// What to do when two artifacts of one tarball hold different content at one path.
    #[arg(long, value_enum, default_value = "error")]
    on_conflict: ConflictPolicy,
    /// Clamp entry mtimes to this Unix time (default: $SOURCE_DATE_EPOCH when set).
    #[arg(long, value_name = "EPOCH")]
    mtime: Option<i64>,
    /// Check artifacts against their .sha256sum sidecars.
    #[arg(long, value_enum, default_value = "auto")]
    verify: VerifyMode,
}

fn split_list(s: &str, seps: &[char]) -> Vec<String> {
    s.split(|c| seps.contains(&c))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl SelectArgs {
    fn options(&self) -> PlanOptions {
        PlanOptions {
            families: self
                .families
                .as_deref()
                .map(|f| split_list(f, &[';', ',']))
                .unwrap_or_default(),
            targets: self
                .targets
                .as_deref()
                .map(|t| split_list(t, &[';', ',']))
                .unwrap_or_default(),
            per_target: self.per_target,
            platform: self.platform.clone(),
            version: self.version.clone(),
            tests: self.tests,
            multiarch: self.multiarch,
            format: self.format,
            exclude_artifacts: split_list(&self.exclude_artifacts, &[',', ';']),
            exclude_components: split_list(&self.exclude_components, &[',', ';']),
        }
    }

    fn table(&self) -> Result<FamilyTable> {
        match &self.family_table {
            None => Ok(FamilyTable::builtin()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                FamilyTable::parse_cmake(&text)
                    .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))
            }
        }
    }

    /// Lists the source and builds the plan; `peek` allows reading
    /// base_lib_generic to find the run manifest.
    async fn plan(&self, source: &Arc<dyn Source>, peek: bool) -> Result<Plan> {
        let listed = source.list().await?;
        let opts = self.options();
        let needs_kpack =
            opts.multiarch == MultiarchMode::Auto || opts.per_target || !opts.targets.is_empty();
        let kpack = if needs_kpack {
            pipeline::detect_kpack(source, &listed, peek).await?
        } else {
            None
        };
        build_plan(listed, &opts, &self.table()?, kpack)
    }

    fn source(&self) -> Result<Arc<dyn Source>> {
        if !self.source.is_dir() {
            return Err(Error::Usage(format!(
                "--source {}: not a directory",
                self.source.display()
            )));
        }
        Ok(Arc::new(DirSource::new(&self.source)))
    }
}

async fn pack(select: SelectArgs, args: PackArgs) -> Result<()> {
    let source = select.source()?;
    let plan = Arc::new(select.plan(&source, true).await?);
    let codec = Codec::new(plan.format, args.level)?;
    let to_stdout = args.dest.as_os_str() == "-";
    if to_stdout && plan.tarballs.len() != 1 {
        return Err(Error::Usage(format!(
            "--dest - needs a plan of exactly one tarball, and this one has {}: {}",
            plan.tarballs.len(),
            plan.tarballs
                .iter()
                .map(|t| t.file_name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let sink: Box<dyn Sink> = if to_stdout {
        Box::new(StdoutSink)
    } else {
        Box::new(DirSink::new(&args.dest))
    };
    let mtime_clamp =
        match args.mtime {
            Some(m) => Some(m),
            None => match std::env::var("SOURCE_DATE_EPOCH") {
                Ok(v) if !v.trim().is_empty() => Some(v.trim().parse().map_err(|_| {
                    Error::Usage(format!("SOURCE_DATE_EPOCH={v:?} is not a number"))
                })?),
                _ => None,
            },
        };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    let opts = RunOptions {
        codec,
        jobs,
        on_conflict: args.on_conflict,
        mtime_clamp,
        verify: args.verify,
    };
    tracing::info!(
        "packing {} tarballs from {} artifacts at {} into {}",
        plan.tarballs.len(),
        plan.artifacts.len(),
        source.describe(),
        sink.describe()
    );
    let summary = pipeline::run(plan, source, sink.as_ref(), &opts).await?;
    eprint!("{}", report::summary_text(&summary));
    Ok(())
}

async fn main_async(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Plan { select, json } => {
            let source = select.source()?;
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
        Command::Pack { select, pack: args } => pack(select, args).await,
        Command::Generate {
            dest,
            layout,
            families,
            seed,
            large_bytes,
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
            };
            let made = fixtures::generate(&spec, &dest)
                .map_err(|e| Error::io(format!("generating into {}", dest.display()), e))?;
            eprintln!("wrote {} artifacts to {}", made.len(), dest.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROCKPACK_LOG")
                .unwrap_or_else(|_| "rockpack=info".into()),
        )
        .with_target(false)
        .without_time()
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(main_async(cli));
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rockpack: error: {e}");
            e.exit_code()
        }
    };
    // Do not wait for blocking threads still reading an aborted source.
    rt.shutdown_background();
    ExitCode::from(code as u8)
}
