//! What rockpack does inside S3 with objects already stored, downloading
//! and sending nothing: [`promote`] copies a run's tarballs (and sidecars)
//! to a release location, renaming their version if asked, all or nothing;
//! [`abort_uploads`] clears the multipart uploads a killed run left.
//! [`names`] reads tarball names; `object_copy` copies one object (in parts
//! above 5 GiB) and checks the copy; `undo` takes a failed promote back,
//! and [`journal`] a killed one (from what it wrote down first).

pub mod abort_uploads;
pub mod journal;
pub mod names;
pub mod object_copy;
pub mod promote;
mod undo;
