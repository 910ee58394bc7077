//! What a `pack` run's flags set up before it starts: where the tarballs
//! go (a directory, stdout, S3, or TheRock's run folder), the memory
//! budget, the sink and its S3 settings, and the tarballs' metadata rules.

use rockpack::codec::Codecs;
use rockpack::error::{Error, Result};
use rockpack::net::aws;
use rockpack::pipeline::budget::machine::Machine;
use rockpack::pipeline::budget::{default_memory, Budget, Needs};
use rockpack::plan::Plan;
use rockpack::sink::s3::{base_part_size, check_part_size, S3Sink};
use rockpack::sink::{dir::DirSink, stdout::StdoutSink, Sink};
use rockpack::source::buckets::{CiEnv, RunRef};
use rockpack::source::location::Location;
use rockpack::units::human_bytes;

use crate::cli::{PackArgs, S3Args, SelectArgs};
use crate::run_root::run_root;
use rockpack::net::RetryPolicy;
use rockpack::repack::flatten::{Metadata, Modes};
use rockpack::sink::s3::S3SinkOptions;

/// Where the tarballs go: --dest (None: standard output), or with --upload
/// the tarballs/ folder of the packing run's root.
pub(crate) fn destination(
    select: &SelectArgs,
    args: &PackArgs,
    plan: &Plan,
) -> Result<Option<Location>> {
    Ok(Some(match (&args.dest, args.upload) {
        (Some(_), true) => {
            return Err(Error::Usage(
                "--upload and --dest exclude each other".into(),
            ))
        }
        (Some(d), false) if d == "-" => {
            if plan.tarballs.len() != 1 {
                let names: Vec<&str> = plan.tarballs.iter().map(|t| t.file_name.as_str()).collect();
                return Err(Error::Usage(format!(
                    "--dest - needs a plan of exactly one tarball, and this one has {}: {}",
                    names.len(),
                    names.join(", ")
                )));
            }
            return Ok(None);
        }
        (Some(d), false) => Location::parse(d)?,
        (None, _) => {
            let env = CiEnv::from_process();
            let source = select.run_ref(&env)?;
            let run = RunRef::upload(
                args.upload_run_id.as_deref(),
                source.as_ref(),
                &select.platform,
                &env,
            )?;
            run_root(&select.buckets(&env)?, &run, "uploading to")?.join("tarballs")
        }
    }))
}

/// The run's budget: S3 destinations buffer a part per tarball.
pub(crate) fn budget(
    args: &PackArgs,
    plan: &Plan,
    codecs: &Codecs,
    dest: Option<&Location>,
) -> Result<Budget> {
    if let Some(p) = args.part_size {
        check_part_size(p)?;
    }
    let part_sizes = match dest {
        Some(Location::S3(_)) => plan
            .tarballs
            .iter()
            .map(|t| {
                args.part_size
                    .unwrap_or_else(|| base_part_size(t.size_bound()))
            })
            .collect(),
        _ => Vec::new(),
    };
    let machine = Machine::detect()?;
    let (memory, memory_from) = match args.memory {
        Some(m) => (m, "--memory".to_string()),
        None => default_memory(&machine),
    };
    if args.jobs == Some(0) {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    if args.artifact_jobs == Some(0) {
        return Err(Error::Usage("--artifact-jobs must be at least 1".into()));
    }
    let mut budget = Budget::new(&Needs {
        memory,
        memory_from,
        jobs: args.jobs,
        artifact_jobs: args.artifact_jobs,
        cores: machine.cores,
        cores_from: machine.cores_from.to_string(),
        codecs: codecs.all().to_vec(),
        part_sizes,
    })?;
    if let Some(p) = args.artifact_pending {
        budget.pending = budget.pending.min(p);
    }
    tracing::info!(
        "memory {} ({}); {} compression thread(s), {} artifact(s) at once, for {} cores ({})",
        human_bytes(budget.memory),
        budget.memory_from,
        budget.jobs,
        budget.artifact_jobs,
        budget.cores,
        budget.cores_from
    );
    Ok(budget)
}

/// The sink of `dest`. A plan of one tarball has nothing to copy from: its
/// S3 sink does not ask the server whether it copies.
pub(crate) async fn sink(
    select: &SelectArgs,
    args: &PackArgs,
    plan: &Plan,
    dest: Option<Location>,
    budget: &Budget,
) -> Result<Box<dyn Sink>> {
    match dest {
        None => Ok(Box::new(StdoutSink)),
        Some(Location::Dir(dir)) => Ok(Box::new(DirSink::new(dir))),
        Some(Location::S3(at)) => {
            let client = aws::client(&select.s3.options()).await?;
            let mut options = args.s3_sink_options(budget, select.retry_policy())?;
            options.no_server_copy |= plan.tarballs.len() < 2;
            S3Sink::new(client, at, options)
        }
        Some(Location::Http(u)) => Err(Error::Usage(format!(
            "--dest {u}: HTTP destinations are not supported; use s3:// or a directory"
        ))),
    }
}

impl S3Args {
    /// The endpoint public URLs are made for: `--endpoint-url`, else
    /// `AWS_ENDPOINT_URL`, else none (AWS).
    pub(crate) fn endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
    }

    pub(crate) fn options(&self) -> aws::S3Options {
        aws::S3Options {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            no_sign_request: self.no_sign_request,
        }
    }
}

impl PackArgs {
    pub(crate) fn s3_sink_options(
        &self,
        budget: &Budget,
        retry: RetryPolicy,
    ) -> Result<S3SinkOptions> {
        let tags = self
            .tags
            .iter()
            .map(|t| {
                t.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| Error::Usage(format!("--tag {t:?}: expected KEY=VALUE")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(S3SinkOptions {
            part_size: self.part_size,
            upload_bytes: budget.upload_bytes,
            held_runs: Some(budget.held_runs),
            storage_class: self.storage_class.clone(),
            tags,
            sse: self.sse.clone(),
            sse_kms_key_id: self.sse_kms_key_id.clone(),
            no_server_copy: self.no_server_copy,
            copy_part_size: self.copy_part_size.unwrap_or(0),
            retry,
        })
    }

    /// How entries' mtimes and modes are written.
    pub(crate) fn metadata(&self) -> Result<Metadata> {
        Ok(Metadata {
            mtime_clamp: self.mtime_clamp()?,
            modes: if self.keep_modes {
                Modes::Keep
            } else {
                Modes::TheRock
            },
        })
    }

    fn mtime_clamp(&self) -> Result<Option<i64>> {
        if self.mtime.is_some() {
            return Ok(self.mtime);
        }
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::Usage(format!("SOURCE_DATE_EPOCH={v:?} is not a number"))),
            _ => Ok(None),
        }
    }
}
