//! The output format: a plan decision (tarball names carry its extension)
//! that the repacker (block sizes), the codec and the sinks (content type)
//! all read, so it lives with the plan, upstream of all of them.

/// Output compression: chosen with the plan (it names the tarballs) and
/// read by every later stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// gzip: one standard member, as pigz writes it.
    #[cfg_attr(feature = "cli", value(name = "gz"))]
    Gzip,
    /// zstd: a sequence of standard frames.
    #[cfg_attr(feature = "cli", value(name = "zst"))]
    Zstd,
    /// ZIP (for Windows): each file a Deflate entry, streamed with data
    /// descriptors, ZIP64 where needed.
    #[cfg_attr(feature = "cli", value(name = "zip"))]
    Zip,
}

impl Format {
    /// Every format, in the order `--format` lists them.
    pub const ALL: [Format; 3] = [Format::Gzip, Format::Zstd, Format::Zip];

    /// Parses `gz`, `zst` or `zip`, as the command line and set files write
    /// them.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s.trim())
    }

    /// `gz`, `zst` or `zip`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gz",
            Format::Zstd => "zst",
            Format::Zip => "zip",
        }
    }

    /// Whether it is a tar archive (compressed), not an archive format of
    /// its own.
    pub fn is_tar(self) -> bool {
        self != Format::Zip
    }

    /// The tarball name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Gzip => "tar.gz",
            Format::Zstd => "tar.zst",
            Format::Zip => "zip",
        }
    }

    /// Level when `--level` is not given.
    pub fn default_level(self) -> i32 {
        match self {
            Format::Gzip | Format::Zip => 6,
            Format::Zstd => 3,
        }
    }

    /// MIME type of the uploaded tarball.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Gzip => "application/gzip",
            Format::Zstd => "application/zstd",
            Format::Zip => "application/zip",
        }
    }

    /// Uncompressed bytes per block. Fixed per format (never derived from
    /// the thread count) so that output is identical whatever `--jobs` is.
    pub fn block_size(self) -> usize {
        match self {
            Format::Gzip | Format::Zip => 1 << 20,
            Format::Zstd => 4 << 20,
        }
    }

    /// How much of the previous block a block may use as history.
    pub fn dictionary_size(self) -> usize {
        match self {
            Format::Gzip | Format::Zip => 32 << 10,
            Format::Zstd => 0,
        }
    }
}
