//! One place that builds the S3 client for sources and sinks: the standard
//! AWS credential chain and region, `--endpoint-url` (or `AWS_ENDPOINT_URL`)
//! with path-style addressing for S3-compatible servers, and anonymous
//! access with `--no-sign-request` or when no credentials exist; and what
//! S3 errors mean (worth another try or not) and say, for both; and how
//! the multipart uploads a failed run started are aborted, for the sink and
//! promote alike.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Error, Kind, Result};
use crate::net::in_flight::{InFlight, Started};
use crate::net::RequestError;

/// How to reach S3: what `--endpoint-url`, `--region` and
/// `--no-sign-request` say.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// An S3-compatible endpoint, addressed path-style; else
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint_url: Option<String>,
    /// Else the standard chain's region, else `us-east-2`.
    pub region: Option<String>,
    /// Anonymous (unsigned) requests even when credentials exist.
    pub no_sign_request: bool,
}

/// TheRock's buckets live here; used when nothing else names a region.
const DEFAULT_REGION: &str = "us-east-2";

/// The S3 client for `opts`; anonymous when asked or when the credential
/// chain finds nothing.
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

/// Error codes another try will not fix.
const FATAL_CODES: &[&str] = &[
    "NoSuchKey",
    "NoSuchBucket",
    "NoSuchUpload",
    "AccessDenied",
    "InvalidRange",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "AllAccessDisabled",
    "InvalidObjectState",
    "NotImplemented",
];

/// Error codes worth another try, whatever their HTTP status.
const RETRY_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    // The body was damaged on the way: sending it again fixes it.
    "BadDigest",
];

/// The HTTP status of a failed request, when an answer came back.
pub fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Whether another try of the same request may succeed: throttling,
/// server errors and transport failures, not refusals.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or("");
            let status = status(e).unwrap_or(0);
            !FATAL_CODES.contains(&code)
                && status != 501
                && (RETRY_CODES.contains(&code) || status >= 500 || matches!(status, 408 | 429))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    }
}

/// `Code: message (HTTP status)` for service errors; the cause chain,
/// `outer: inner: …`, for the rest.
pub fn error_text<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(_) = e {
        let status = status(e)
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        match (e.code(), e.message().filter(|m| !m.is_empty())) {
            (Some(c), Some(m)) => return format!("{c}: {m}{status}"),
            (Some(c), None) => return format!("{c}{status}"),
            (None, _) if !status.is_empty() => return format!("{}{status}", error_chain(e)),
            (None, _) => {}
        }
    }
    error_chain(e)
}

/// An error and its sources, repeats left out.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// A failed S3 request as rockpack reports it: `{op} {url}: {answer}`.
pub fn s3_error<E>(op: &str, url: &str, e: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::failed(Kind::Remote, format!("{op} {url}: {}", error_text(e)))
}

/// A failed try of a request retried by [`crate::net::with_retries`]:
/// another try if it may succeed, else fatal.
pub fn request_error<E>(e: &SdkError<E, HttpResponse>) -> RequestError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if is_transient(e) {
        RequestError::Retry(error_text(e))
    } else {
        RequestError::Fatal(error_text(e))
    }
}

/// The upload id of a CreateMultipartUpload answer for `url`.
pub fn upload_id(
    out: &aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput,
    url: &str,
) -> Result<String> {
    out.upload_id()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::failed(
                Kind::Remote,
                format!("CreateMultipartUpload {url}: the answer has no upload id"),
            )
        })
}

/// Deletes `bucket/key` (S3 answers a key that is not there as deleted).
pub async fn delete_object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<()> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| s3_error("DeleteObject", &format!("s3://{bucket}/{key}"), &e))?;
    Ok(())
}

/// Aborts the multipart upload `upload_id` of `bucket/key`; one that is
/// gone already (completed or aborted by someone else) counts as aborted.
pub async fn abort_upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<()> {
    let aborted = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    match aborted {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
        Err(e) => Err(s3_error(
            &format!("AbortMultipartUpload (upload {upload_id})"),
            &format!("s3://{bucket}/{key}"),
            &e,
        )),
    }
}

/// Aborts the uploads `in_flight` started in `bucket` whose key `wanted`
/// picks and that were not ended, once no request is under way (at most
/// `grace`): by id where the answer brought one back, and, for a key whose
/// request to start one failed or stayed unanswered, every upload of that
/// key the server lists. Returns what could not be aborted. A server that
/// cannot list uploads gets a warning (`rockpack abort-uploads` clears
/// what it may hold).
pub async fn abort_started(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    in_flight: &InFlight,
    grace: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Vec<Error> {
    let Started {
        mut uploads,
        unsure,
    } = in_flight.take_started(grace, wanted).await;
    for key in unsure {
        let listed = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(&key)
            .send()
            .await;
        match listed {
            Ok(page) => {
                let found: Vec<(String, String)> = page
                    .uploads()
                    .iter()
                    .filter(|u| u.key() == Some(key.as_str()))
                    .filter_map(|u| u.upload_id())
                    .filter(|id| !uploads.iter().any(|(_, known)| known == id))
                    .map(|id| (key.clone(), id.to_string()))
                    .collect();
                uploads.extend(found);
            }
            Err(e) => tracing::warn!(
                "{}; an upload the server may have started is left to `rockpack abort-uploads`",
                s3_error("ListMultipartUploads", &format!("s3://{bucket}/{key}"), &e)
            ),
        }
    }
    let mut left = Vec::new();
    for (key, upload_id) in uploads {
        match abort_upload(client, bucket, &key, &upload_id).await {
            Ok(()) => tracing::debug!(%key, %upload_id, "multipart upload aborted"),
            Err(e) => left.push(e),
        }
    }
    left
}

/// Whether a failed request may still have taken effect: no clean answer
/// came back, or (after the SDK's own retries) the upload is gone, which an
/// earlier try that completed it explains.
pub fn may_have_happened<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(_) => e.code() == Some("NoSuchUpload"),
        _ => true,
    }
}
