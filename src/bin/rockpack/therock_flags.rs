//! The compression flags of TheRock's `build_tarballs.py` (since its PR
//! #7670), accepted so that a workflow passing them runs rockpack as is.
//! The level is the one that means something to rockpack; the others size
//! TheRock's own scheme (a zlib-ng writer per tarball, tarballs side by
//! side), which rockpack's one pass replaces, and are logged as such.

use clap::Args;
use rockpack::codec::Levels;
use rockpack::error::{Error, Result};
use rockpack::plan::Format;

/// `--compression-backend`'s values, as the script names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// zlib-ng's threaded gzip writer (the script's default).
    #[value(name = "zlib-ng")]
    ZlibNg,
    /// `tar cfz`: the system gzip at its default level, 6.
    #[value(name = "system-gzip")]
    SystemGzip,
}

/// The script's compression flags.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "TheRock's build_tarballs.py compression flags")]
pub(crate) struct CompressionFlags {
    /// The script's gzip writer. rockpack writes gzip itself (one standard member); system-gzip means gzip's own level, 6, whatever --compression-level says.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub(crate) compression_backend: Option<Backend>,
    /// The gzip level, 0-9: the same as --level N for gz (the script's default is 9; rockpack's is 6, see the README).
    #[arg(long, value_name = "0-9", value_parser = clap::value_parser!(i32).range(0..=9))]
    pub(crate) compression_level: Option<i32>,
    /// Threads per tarball in the script. rockpack's compression threads serve every tarball at once (--jobs): accepted, changes nothing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) compression_threads: Option<u32>,
    /// Tarballs the script compresses at once. rockpack builds every tarball in one pass: accepted, changes nothing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) compress_workers: Option<u32>,
}

impl CompressionFlags {
    /// `--level` with the script's flags applied: the gzip level they
    /// mean, if any (a usage error if `--level` says another), and a log
    /// line for each flag that changes nothing.
    pub(crate) fn levels(&self, level: &Levels) -> Result<Levels> {
        if let Some(n) = self.compression_threads {
            tracing::info!(
                "--compression-threads {n}: rockpack's compression threads serve every tarball at once (--jobs); nothing to set"
            );
        }
        if let Some(n) = self.compress_workers {
            tracing::info!(
                "--compress-workers {n}: rockpack builds every tarball in one pass; nothing to set"
            );
        }
        let gz = match (self.compression_backend, self.compression_level) {
            (Some(Backend::SystemGzip), given) => {
                if let Some(n) = given.filter(|&n| n != 6) {
                    tracing::info!(
                        "--compression-level {n}: the system-gzip backend compresses at gzip's level, 6, as TheRock's script does"
                    );
                }
                Some(6)
            }
            (backend, given) => {
                if backend == Some(Backend::ZlibNg) {
                    tracing::info!(
                        "--compression-backend zlib-ng: rockpack writes gzip itself (one standard member)"
                    );
                }
                given
            }
        };
        let Some(gz) = gz else {
            return Ok(level.clone());
        };
        match level.of(Format::Gzip) {
            Some(l) if l != gz => Err(Error::Usage(format!(
                "--level gives gzip level {l}, TheRock's compression flags level {gz}: give one"
            ))),
            _ => Ok(level.with(Format::Gzip, gz)),
        }
    }
}
