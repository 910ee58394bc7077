//! What the selection and source flags mean for the library: plan
//! options, the family table, the tarball set and plan, TheRock's buckets,
//! the source and its retries.

use std::sync::Arc;

use crate::cli::{split_list, SelectArgs};
use crate::run_root::run_root;
use rockpack::error::{Error, Result};
use rockpack::kpack;
use rockpack::net::aws;
use rockpack::net::RetryPolicy;
use rockpack::plan::{plan_set, preset, FamilyTable, Plan, PlanOptions, TarballSet};
use rockpack::source::buckets::{Buckets, CiEnv, ReleaseType, RunRef};
use rockpack::source::fetch::Ranges;
use rockpack::source::location::Location;
use rockpack::source::{dir::DirSource, http::HttpSource, s3::S3Source, Listing, Source};

impl SelectArgs {
    pub(crate) fn options(&self) -> PlanOptions {
        let list = |v: &Option<String>| {
            v.as_deref()
                .map(|f| split_list(f, &[';', ',']))
                .unwrap_or_default()
        };
        PlanOptions {
            families: list(&self.families),
            targets: list(&self.targets),
            per_target: self.per_target,
            platform: self.platform.clone(),
            version: self.version.clone(),
            tests: self.tests,
            multiarch: self.multiarch,
            formats: self.format.clone(),
            exclude_artifacts: split_list(&self.exclude_artifacts, &[',', ';']),
            exclude_components: split_list(&self.exclude_components, &[',', ';']),
        }
    }

    pub(crate) fn table(&self) -> Result<FamilyTable> {
        match &self.family_table {
            None => Ok(FamilyTable::builtin()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                FamilyTable::parse_cmake(&text)
                    .map(|t| t.with_origin(format!("the family table {}", p.display())))
                    .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))
            }
        }
    }

    /// Lists the source and builds the plan; `peek` allows reading
    /// base_lib_generic to find the run manifest.
    pub(crate) async fn plan(&self, source: &Arc<dyn Source>, peek: bool) -> Result<Plan> {
        let (set, listing, kpack) = self.tarball_set(source, peek).await?;
        let opts = self.options();
        plan_set(
            listing.artifacts,
            &set,
            opts.naming(),
            &self.table()?,
            kpack,
        )?
        .only(&self.only)
    }

    /// The tarball set: `--set`'s file, else the one the selection flags
    /// mean for this run; with the source's listing and kpack flag.
    pub(crate) async fn tarball_set(
        &self,
        source: &Arc<dyn Source>,
        peek: bool,
    ) -> Result<(TarballSet, Listing, Option<bool>)> {
        let table = self.table()?;
        // A set file's mistakes are found before the source is read.
        let from_file = match &self.set {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                Some(TarballSet::parse(
                    &text,
                    &path.display().to_string(),
                    &table,
                )?)
            }
            None => None,
        };
        let listing = source.list().await?;
        listing.log_skipped();
        let opts = self.options();
        match from_file {
            // A set does not depend on it: only what is published, for the plan's text.
            Some(set) => {
                let kpack = kpack::detect(source, &listing, false).await?;
                Ok((set, listing, kpack))
            }
            None => {
                let kpack = if kpack::needed(&opts) {
                    kpack::detect(source, &listing, peek).await?
                } else {
                    None
                };
                let set = preset(&opts, &listing.artifacts, &table, kpack)?;
                Ok((set, listing, kpack))
            }
        }
    }

    /// The --run-id run, if any.
    pub(crate) fn run_ref(&self, env: &CiEnv) -> Result<Option<RunRef>> {
        self.run_id
            .as_deref()
            .map(|id| RunRef::source(id, self.run_github_repo.as_deref(), &self.platform, env))
            .transpose()
    }

    /// How --run-id and --upload find TheRock's buckets in this environment.
    pub(crate) fn buckets(&self, env: &CiEnv) -> Result<Buckets> {
        let release_type = self
            .release_type
            .as_deref()
            .filter(|t| !t.is_empty())
            .and_then(ReleaseType::parse);
        Buckets::resolve(release_type, self.bucket_config_file.as_deref(), env)
    }

    pub(crate) fn location(&self) -> Result<Location> {
        let env = CiEnv::from_process();
        match (&self.source, self.run_ref(&env)?) {
            (Some(s), _) => Location::parse(s),
            (None, Some(run)) => run_root(&self.buckets(&env)?, &run, "reading"),
            (None, None) => Err(Error::Usage("pass --source or --run-id".into())),
        }
    }

    /// How hard every request of the run tries (`--retries`,
    /// `--retry-for`, `--stall-timeout`).
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.retries.max(1),
            stall_timeout: std::time::Duration::from_secs(self.stall_timeout.max(1)),
            patience: std::time::Duration::from_secs(self.retry_for),
            ..RetryPolicy::default()
        }
    }

    pub(crate) async fn source(&self) -> Result<Arc<dyn Source>> {
        let policy = self.retry_policy();
        let ranges = Ranges {
            connections: self.range_connections.max(1),
            size: self.range_size.clamp(1, u32::MAX.into()) as usize,
        };
        match self.location()? {
            Location::Dir(dir) => {
                if !dir.is_dir() {
                    return Err(Error::Usage(format!(
                        "--source {}: not a directory",
                        dir.display()
                    )));
                }
                Ok(Arc::new(DirSource::new(dir)))
            }
            Location::S3(at) => {
                let client = aws::client(&self.s3.options()).await?;
                S3Source::new(client, at, policy, ranges)
            }
            Location::Http(url) => HttpSource::new(url, policy, ranges),
        }
    }
}
