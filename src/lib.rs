#![warn(missing_docs)]
//! rockpack: builds ROCm "dist" tarballs from a build run's artifact
//! archives in one streaming pass.
//!
//! The folders follow the data: [`plan`] decides what goes where,
//! [`source`] yields artifact bytes, [`repack`] decodes and flattens them
//! into tar blocks, [`codec`] compresses blocks into segments and frames
//! tarballs, [`sink`] stores them, and [`pipeline`] drives a run;
//! [`store`] works on what runs stored, inside S3 (promote, abort-uploads).
//! [`kpack`] finds whether a run is kpack-split before it is planned.
//! Below them all: [`error`], [`units`] (sizes), [`net`] (what sources and
//! sinks share on the network), [`budget`] (`--memory`), [`machine`]
//! (cores and memory, or `ROCKPACK_CORES`), [`object_crc`]
//! (the CRCs S3 keeps of an object) and [`signals`] (Ctrl-C and SIGTERM).

pub mod codec;
pub mod cpu_time;
pub mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod kpack;
pub mod net;
pub mod object_crc;
pub mod pipeline;
pub mod plan;
pub mod repack;
pub mod signals;
pub mod sink;
pub mod source;
#[cfg(feature = "net")]
pub mod store;
pub mod units;

/// The tests' one tar-listing helper (tests/common), for unit tests too.
#[cfg(test)]
#[path = "../tests/common/tar_listing.rs"]
pub(crate) mod tar_listing;

pub use error::{Error, Result};
