//! The network layer the sources and the S3 sink share, so neither stage
//! reaches into the other for it: how hard a request tries and how it
//! fails ([`retry`]), how object keys are quoted in URLs ([`keys`]),
//! requests that must finish however their caller ends ([`in_flight`]),
//! the one S3 client set-up and what S3 errors mean ([`aws`]), and what
//! runs leave in S3 before they are done, found and removed again
//! ([`leftovers`]: for the sink's own re-runs and for `abort-uploads`).
//!
//! Only [`aws`] needs the AWS SDK, so only it sits behind the `net`
//! feature; retries and key quoting are used without it (by the download
//! engine in `source::fetch`, the report and the fixtures).

#[cfg(feature = "net")]
pub mod aws;
pub mod in_flight;
pub mod keys;
#[cfg(feature = "net")]
pub mod leftovers;
pub mod retry;

pub use keys::{decode_key, encode_key, S3Prefix};
pub use retry::{with_retries, RequestError, RetryPolicy};
