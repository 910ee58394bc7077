//! A run's root in TheRock's buckets, logged as TheRock logs it.

use rockpack::error::Result;
use rockpack::source::buckets::{Buckets, RunRef};
use rockpack::source::location::Location;

/// A run's root, logged with what decided it (TheRock logs the same).
pub(crate) fn run_root(buckets: &Buckets, run: &RunRef, what: &str) -> Result<Location> {
    let root = buckets.run_root(run)?;
    tracing::info!(
        "{what} run {} of {} (release type {}{}): {}",
        run.run_id,
        run.github_repo,
        buckets.release_type.name(),
        if buckets.is_pr_from_fork {
            ", pull request from a fork"
        } else {
            ""
        },
        root.describe()
    );
    Ok(root)
}
