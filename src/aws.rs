//! One place that builds the S3 client for sources and sinks: the standard
//! AWS credential chain and region, `--endpoint-url` (or `AWS_ENDPOINT_URL`)
//! with path-style addressing for S3-compatible servers, and anonymous
//! access with `--no-sign-request` or when no credentials exist.

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::Region;

use crate::error::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct S3Options {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub no_sign_request: bool,
}

/// TheRock's buckets live here; used when nothing else names a region.
const DEFAULT_REGION: &str = "us-east-2";

pub async fn client(opts: &S3Options) -> Result<aws_sdk_s3::Client> {
    let mut anonymous = opts.no_sign_request;
    if !anonymous && !has_credentials(opts).await {
        tracing::info!("no AWS credentials found; using anonymous (unsigned) requests");
        anonymous = true;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if anonymous {
        loader = loader.no_credentials();
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        b = b.region(Region::new(DEFAULT_REGION));
    }
    let endpoint = opts
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    if let Some(ep) = endpoint {
        url::Url::parse(&ep).map_err(|e| Error::Usage(format!("--endpoint-url {ep:?}: {e}")))?;
        b = b.endpoint_url(ep).force_path_style(true);
    }
    Ok(aws_sdk_s3::Client::from_conf(b.build()))
}

async fn has_credentials(opts: &S3Options) -> bool {
    use aws_credential_types::provider::ProvideCredentials;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let conf = loader.load().await;
    match conf.credentials_provider() {
        Some(p) => p.provide_credentials().await.is_ok(),
        None => false,
    }
}
