//! The command line's arguments (clap). What they mean for the library is
//! elsewhere: `selection.rs` (plan, sources, retries), `setup.rs`
//! (destination, budget, sink and S3 settings).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::therock_flags::CompressionFlags;
use rockpack::codec::Levels;
use rockpack::plan::name_part;
use rockpack::plan::{Format, MultiarchMode};
use rockpack::repack::ConflictPolicy;
use rockpack::source::buckets::ReleaseType;
use rockpack::source::verify::VerifyMode;
use rockpack::units;

#[derive(Parser)]
#[command(
    name = "rockpack",
    version,
    about = "Build ROCm dist tarballs from TheRock artifacts in one streaming pass"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// More detail in logs (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only warnings and errors; no progress display.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Show which tarballs a run would build, from which artifacts (reads no archive).
    Plan {
        #[command(flatten)]
        select: SelectArgs,
        /// Print the plan as JSON.
        #[arg(long, conflicts_with = "print_set")]
        json: bool,
        /// Print the tarball set (TOML) this command line means, to start a --set file from.
        #[arg(long)]
        print_set: bool,
    },
    /// Show the artifacts at a source, grouped by name, component and target.
    List {
        #[command(flatten)]
        select: SelectArgs,
        /// Print the listing as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the tarballs.
    Pack {
        #[command(flatten)]
        select: Box<SelectArgs>,
        #[command(flatten)]
        pack: Box<PackArgs>,
    },
    /// Copy tarballs and their sidecars from one S3 prefix to another inside
    /// S3 (a run's tarballs to a release location), renaming their version if
    /// asked; all or nothing.
    Promote {
        /// Where the tarballs are: s3://bucket/prefix/ (a run's tarballs/ folder).
        #[arg(value_name = "SRC")]
        source: String,
        /// Where they go: s3://bucket/prefix/.
        #[arg(value_name = "DEST")]
        dest: String,
        #[command(flatten)]
        promote: Box<PromoteArgs>,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Remove what killed runs left below an S3 prefix: incomplete multipart
    /// uploads and temporary objects; a run killed while it replaced
    /// objects is taken back from its journal (backups no journal names
    /// are listed and kept).
    AbortUploads {
        /// s3://bucket/prefix/
        #[arg(value_name = "PREFIX")]
        prefix: String,
        /// Only uploads and temporaries made longer ago than this (90m, 6h,
        /// 2d), so that a run still going keeps its own.
        #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// List them; abort nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        s3: S3Args,
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
        /// Approximate bytes of large-file content (e.g. 512M, 2G).
        #[arg(long, default_value = "0", value_parser = units::parse_size)]
        large_bytes: u64,
        /// The run of TheRock's Windows build: `linux` or `windows`.
        #[arg(long, default_value = "linux", value_parser = ["linux", "windows"])]
        platform: String,
    },
}

#[derive(Args)]
#[command(next_help_heading = "Source and selection")]
pub(crate) struct SelectArgs {
    /// Where the run's artifacts are: a directory, s3://bucket/prefix, or https://host/prefix/.
    #[arg(
        long,
        value_name = "DIR|s3://…|https://…",
        required_unless_present = "run_id"
    )]
    pub(crate) source: Option<String>,
    /// A TheRock workflow run: reads s3://{bucket}/{prefix} as TheRock resolves it.
    #[arg(long, conflicts_with = "source", value_parser = name_part::parse)]
    pub(crate) run_id: Option<String>,
    /// The repository of --run-id [default: $GITHUB_REPOSITORY, else ROCm/TheRock].
    #[arg(long, value_name = "OWNER/REPO")]
    pub(crate) run_github_repo: Option<String>,
    /// Which TheRock artifacts bucket --run-id and --upload use [default: $RELEASE_TYPE, else ci; empty: unset].
    #[arg(long, value_parser = release_type_values())]
    pub(crate) release_type: Option<String>,
    /// A TheRock bucket registry (JSON) [default: $THEROCK_S3_BUCKETS_FILE].
    #[arg(long, value_name = "FILE")]
    pub(crate) bucket_config_file: Option<PathBuf>,
    /// A tarball-set file (TOML): which tarballs to build, instead of the selection flags below.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["families", "targets", "per_target", "tests", "multiarch", "exclude_artifacts", "exclude_components"]
    )]
    pub(crate) set: Option<PathBuf>,
    /// GPU families, separated by ';' or ',': one tarball each.
    #[arg(long, alias = "dist-amdgpu-families", value_name = "'A;B'", value_parser = name_part::parse_list)]
    pub(crate) families: Option<String>,
    /// Extra single targets (comma-separated), one tarball each; kpack-split runs only.
    #[arg(long, value_name = "gfx942,gfx1100", value_parser = name_part::parse_list)]
    pub(crate) targets: Option<String>,
    /// Also one tarball per target of every requested family; kpack-split runs only.
    #[arg(long)]
    pub(crate) per_target: bool,
    #[arg(long, default_value = "linux", value_parser = ["linux", "windows"])]
    pub(crate) platform: String,
    /// Version string in tarball names.
    #[arg(long = "version", alias = "package-version", default_value = "0.0.0", value_parser = name_part::parse)]
    pub(crate) version: String,
    /// Also build the `-tests` variant of every tarball.
    #[arg(long, alias = "include-test-tarballs")]
    pub(crate) tests: bool,
    /// The all-families tarball: auto builds it for kpack-split runs, as TheRock does.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) multiarch: MultiarchMode,
    /// Output format: gz, zst, zip (ZIP archives, for Windows), or several
    /// (gz,zst) from one pass.
    #[arg(long, value_enum, default_value = "gz", value_delimiter = ',')]
    pub(crate) format: Vec<Format>,
    /// Artifact names base tarballs leave out (comma-separated).
    #[arg(long, default_value = "fftw3", value_name = "NAMES")]
    pub(crate) exclude_artifacts: String,
    /// Components base tarballs leave out (comma-separated).
    #[arg(long, default_value = "test", value_name = "COMPONENTS")]
    pub(crate) exclude_components: String,
    /// A newer TheRock cmake/therock_amdgpu_targets.cmake to read families from.
    #[arg(long, value_name = "FILE")]
    pub(crate) family_table: Option<PathBuf>,
    /// Check artifacts against their .sha256sum sidecars.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) verify: VerifyMode,
    /// Seconds a download may deliver nothing before it is dropped and resumed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) stall_timeout: u64,
    /// Tries in a row without progress before a request (a download, an
    /// upload's part, copy, start or completion) gives up; it also keeps
    /// trying until it has failed for --retry-for seconds.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub(crate) retries: u32,
    /// Seconds a failing request keeps trying (with backoff up to 20 s)
    /// before it gives up, whatever --retries says: S3's bad minutes are
    /// waited out.
    #[arg(long, value_name = "SECS", default_value_t = rockpack::net::retry::DEFAULT_PATIENCE.as_secs())]
    pub(crate) retry_for: u64,
    /// Ranged GETs in flight for one large artifact (1: one stream each);
    /// as many as its download buffer (from --memory) holds ranges of --range-size.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) range_connections: usize,
    /// Bytes per ranged GET of a large artifact.
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = units::parse_size)]
    pub(crate) range_size: u64,
    /// Build only these tarballs of the plan (repeatable): a label (family,
    /// target, group, multiarch) with all its tarballs, `{label}-{variant}`
    /// (`{label}-tests`), or a tarball's name.
    #[arg(long, value_name = "LABEL")]
    pub(crate) only: Vec<String>,
    // Last: the flags after a flattened group take its help heading.
    #[command(flatten)]
    pub(crate) s3: S3Args,
}

/// How to reach S3, for sources and destinations alike.
#[derive(Args)]
#[command(next_help_heading = "S3 access")]
pub(crate) struct S3Args {
    /// An S3-compatible endpoint, with path-style addressing (also AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Anonymous requests, for public buckets.
    #[arg(long)]
    pub(crate) no_sign_request: bool,
    /// AWS region (default: the standard chain, else us-east-2).
    #[arg(long)]
    pub(crate) region: Option<String>,
}

#[derive(Args)]
#[command(next_help_heading = "Output and packing")]
pub(crate) struct PackArgs {
    /// A directory, s3://bucket/prefix/, or '-' for standard output (plans of one tarball only).
    #[arg(
        long,
        alias = "output-dir",
        value_name = "DIR|s3://…|-",
        required_unless_present = "upload"
    )]
    pub(crate) dest: Option<String>,
    /// Upload to {run prefix}/tarballs/ of the run doing the packing (--upload-run-id), as TheRock's upload_tarballs.py does.
    #[arg(long)]
    pub(crate) upload: bool,
    /// The run --upload writes to [default: $GITHUB_RUN_ID in $GITHUB_REPOSITORY, else --run-id].
    #[arg(long, requires = "upload", value_name = "RUN_ID", value_parser = name_part::parse)]
    pub(crate) upload_run_id: Option<String>,
    /// Compression level (gz, zip: 0-9, default 6; zst: 1-22, default 3):
    /// one for every format, or per format (gz=9,zst=19).
    #[arg(long, value_name = "N|FORMAT=N,…", value_parser = Levels::parse, default_value = "", hide_default_value = true)]
    pub(crate) level: Levels,
    /// Compression threads (default: all cores, as many as --memory allows).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Artifacts decoded and repacked at once, a thread each (default: one per 2 cores, as many as --memory allows, each holding at least 40 MiB ahead). The output is the same for any number.
    #[arg(long, value_name = "N")]
    pub(crate) artifact_jobs: Option<usize>,
    /// Bytes an artifact read ahead of its turn may hold (tests: small values exercise the switch to reading it live).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, hide = true)]
    pub(crate) artifact_pending: Option<u64>,
    /// Memory budget for buffers, read-ahead and compression (e.g. 512M, 2G; default: a quarter of the memory the machine or its cgroup offers, at most 1 GiB per core, at least 512M).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub(crate) memory: Option<u64>,
    /// What to do when two artifacts of one tarball hold different content at one path.
    #[arg(long, value_enum, default_value = "error")]
    pub(crate) on_conflict: ConflictPolicy,
    /// Clamp entry mtimes to this Unix time (default: $SOURCE_DATE_EPOCH when set).
    #[arg(long, value_name = "EPOCH")]
    pub(crate) mtime: Option<i64>,
    /// Keep each member's own mode (less set-id and world-write bits) instead of TheRock's: files 0644 plus their execute bits, directories 0755.
    #[arg(long)]
    pub(crate) keep_modes: bool,
    /// S3 multipart part size (default: from the size bound, at least 5 MiB).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub(crate) part_size: Option<u64>,
    /// Send every byte of every tarball to S3, instead of copying the ranges other tarballs of the run hold inside S3 (UploadPartCopy).
    #[arg(long)]
    pub(crate) no_server_copy: bool,
    /// Size of the parts long copied ranges are cut into (tests: small values exercise several).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, hide = true)]
    pub(crate) copy_part_size: Option<u64>,
    /// S3 storage class of uploaded tarballs.
    #[arg(long)]
    pub(crate) storage_class: Option<String>,
    /// S3 server-side encryption: AES256 or aws:kms.
    #[arg(long, value_name = "ALGORITHM")]
    pub(crate) sse: Option<String>,
    /// KMS key for --sse aws:kms.
    #[arg(long, value_name = "KEY_ID")]
    pub(crate) sse_kms_key_id: Option<String>,
    /// Object tag of uploaded tarballs (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    /// Stop when one artifact decompresses to more than this many bytes.
    #[arg(long, value_name = "SIZE", default_value = "256G", value_parser = units::parse_size)]
    pub(crate) max_unpacked_size: u64,
    /// Write a JSON summary (keys, URLs, sizes, sha256, timings) here.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) therock: CompressionFlags,
}

#[derive(Args)]
#[command(next_help_heading = "Promotion")]
pub(crate) struct PromoteArgs {
    /// Rename a '-'-separated part of every name, sidecars rewritten to match
    /// (repeatable): --rename 7.13.0rc1=7.13.0.
    #[arg(long = "rename", value_name = "OLD=NEW")]
    pub(crate) renames: Vec<String>,
    /// The prerelease to promote, as TheRock's promote_packages.py names it: rc (rc<N>) or a (a<YYYYMMDD>) [default with --dest-version: rc].
    #[arg(long, value_name = "rc|a", value_parser = ["rc", "a"])]
    pub(crate) src_version_type: Option<String>,
    /// What replaces it in every TheRock tarball name's version: release (nothing: 7.13.0a20260430 -> 7.13.0), rc<N> or a<YYYYMMDD> [default with --src-version-type: release].
    #[arg(long, value_name = "release|rcN|aYYYYMMDD")]
    pub(crate) dest_version: Option<String>,
    /// Promote only these tarballs (repeatable): a label with all its
    /// tarballs, `{label}-tests`, or a tarball's name.
    #[arg(long, value_name = "LABEL")]
    pub(crate) only: Vec<String>,
    /// Overwrite destination tarballs that hold other bytes (restored if the
    /// promote fails); without it they stop the promote before any change.
    #[arg(long)]
    pub(crate) replace: bool,
    /// Show what would be copied; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Tries in a row before a request gives up (it also keeps trying
    /// for --retry-for seconds).
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub(crate) retries: u32,
    /// Seconds a failing request keeps trying before it gives up.
    #[arg(long, value_name = "SECS", default_value_t = rockpack::net::retry::DEFAULT_PATIENCE.as_secs())]
    pub(crate) retry_for: u64,
    /// Promote tarballs no rockpack set record (rockpack-set.*.json) at SRC
    /// vouches for (written by another tool); without it an incomplete or
    /// mixed set stops the promote before any change.
    #[arg(long)]
    pub(crate) unrecorded: bool,
    /// Write a JSON summary (sources, keys, URLs, sizes, checksums) here.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
    /// Objects larger than this are copied in parts (tests: small values exercise it).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, hide = true)]
    pub(crate) copy_object_limit: Option<u64>,
    /// The size of those parts.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, hide = true)]
    pub(crate) copy_part_size: Option<u64>,
}

/// `--release-type`'s values: TheRock's release types, and a hidden empty
/// one (a workflow input left blank), which means unset.
pub(crate) fn release_type_values() -> clap::builder::PossibleValuesParser {
    let hidden_empty = clap::builder::PossibleValue::new("").hide(true);
    let names = ReleaseType::ALL
        .iter()
        .map(|t| clap::builder::PossibleValue::new(t.name()));
    clap::builder::PossibleValuesParser::new(std::iter::once(hidden_empty).chain(names))
}

pub(crate) fn split_list(s: &str, seps: &[char]) -> Vec<String> {
    s.split(|c| seps.contains(&c))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
