//! The network layer the sources and the S3 sink share, so neither stage
//! reaches into the other for it: how hard a request tries and how it
//! fails ([`retry`]), how object keys are quoted in URLs ([`keys`]),
//! requests that must finish however their caller ends ([`in_flight`]),
//! the one S3 client set-up and what S3 errors mean ([`aws`]), and what
//! runs leave in S3 before they are done, found and removed again
//! ([`leftovers`]: for the sink's own re-runs and for `abort-uploads`);
//! one stored object as HeadObject describes it ([`object_info`]), copying
//! it and checking the copy ([`object_copy`]), noting each change a run
//! makes before it makes it ([`changes`]), taking back the changes of a
//! failed run ([`undo`]) and of a killed one
//! from the journal it wrote first ([`journal`]): promote copies with
//! them, and the S3 sink keeps what its final burst replaces with them.
//!
//! Only what talks to S3 needs the AWS SDK, so only it sits behind the `net`
//! feature; retries and key quoting are used without it (by the download
//! engine in `source::fetch`, the report and the fixtures).

#[cfg(feature = "net")]
pub mod aws;
#[cfg(feature = "net")]
pub mod changes;
pub mod in_flight;
#[cfg(feature = "net")]
pub mod journal;
pub mod keys;
#[cfg(feature = "net")]
pub mod leftovers;
#[cfg(feature = "net")]
pub mod object_copy;
#[cfg(feature = "net")]
pub mod object_info;
pub mod retry;
#[cfg(feature = "net")]
pub mod undo;

pub use keys::{decode_key, encode_key, S3Prefix};
pub use retry::{with_retries, RequestError, RetryPolicy};
