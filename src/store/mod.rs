//! What rockpack does inside S3 with objects already stored, downloading
//! and sending nothing: [`promote`] copies a run's tarballs (and sidecars)
//! to a release location, renaming their version if asked, all or nothing;
//! [`abort_uploads`] clears what a killed pack or promote left, and takes
//! it back from its journal. [`names`] reads tarball names. How one object
//! is copied, and how a change is taken back, live in [`crate::net`]: the
//! S3 sink uses them too.

pub mod abort_uploads;
pub mod names;
pub mod promote;
pub mod versions;
