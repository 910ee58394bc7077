//! An S3 prefix of artifacts (`s3://bucket/prefix/`, or a TheRock run
//! resolved by `--run-id`): listed with paginated ListObjectsV2, read with
//! ranged GetObject through [`fetch::download`], so a body dropped mid-way
//! resumes from the byte where it stopped, pinned to the object's ETag.
//!
//! The client (credentials, region, endpoint, anonymous access) comes from
//! [`crate::net::aws::client`]; the SDK's own retries of whole requests stay as
//! configured there, and everything after the response headers (the body) is
//! fetch.rs's business.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use futures_util::StreamExt;

use super::fetch::{self, Ranged, RangedGet, Ranges};
use super::{collect, ByteStream, Listing, Source};
use crate::error::{Error, Kind, Result};
use crate::net::aws::{error_text, is_transient, status};
use crate::net::{with_retries, RequestError, RetryPolicy, S3Prefix};
use crate::plan::SourceArtifact;

/// Artifacts under an S3 prefix, listed with ListObjectsV2 and read with
/// ranged GetObject.
pub struct S3Source {
    at: S3Prefix,
    policy: RetryPolicy,
    ranges: Ranges,
    getter: Arc<S3Getter>,
}

impl S3Source {
    /// The source as main.rs uses it (behind `dyn Source`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        client: aws_sdk_s3::Client,
        at: S3Prefix,
        policy: RetryPolicy,
        ranges: Ranges,
    ) -> Result<Arc<dyn Source>> {
        if at.bucket.is_empty() {
            return Err(Error::Usage("an S3 source needs a bucket name".into()));
        }
        let getter = Arc::new(S3Getter {
            client,
            bucket: at.bucket.clone(),
        });
        Ok(Arc::new(S3Source {
            at,
            policy,
            ranges,
            getter,
        }))
    }
}

#[async_trait]
impl Source for S3Source {
    fn describe(&self) -> String {
        self.at.url()
    }

    async fn list(&self) -> Result<Listing> {
        let list_prefix = self.at.below();
        let mut req = self.getter.client.list_objects_v2().bucket(&self.at.bucket);
        if !list_prefix.is_empty() {
            req = req.prefix(&list_prefix);
        }
        let mut pages = req.into_paginator().send();
        let mut entries: Vec<(String, u64)> = Vec::new();
        let mut page_count = 0usize;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                Error::failed(
                    Kind::Remote,
                    format!("listing {}: {}", self.describe(), error_text(&e)),
                )
            })?;
            page_count += 1;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(rel) = key.strip_prefix(list_prefix.as_str()) else {
                    continue;
                };
                // "Directory" markers some tools create are not objects.
                if rel.is_empty() || rel.ends_with('/') {
                    continue;
                }
                let size = object.size().unwrap_or(0).max(0) as u64;
                entries.push((rel.to_string(), size));
            }
        }
        tracing::debug!(
            source = %self.describe(),
            objects = entries.len(),
            pages = page_count,
            "listed"
        );
        if entries.is_empty() {
            // S3 has no directories: a mistyped bucket prefix or run id
            // looks like an empty one.
            return Err(Error::Selection(format!(
                "nothing is stored under {} (no object has this prefix)",
                self.describe()
            )));
        }
        entries.sort();
        Ok(collect(&entries))
    }

    async fn open(&self, artifact: &SourceArtifact, buffer: usize) -> Result<ByteStream> {
        let key = self.at.key(&artifact.key);
        let what = self.at.object_url(&key);
        let getter: Arc<dyn RangedGet> = self.getter.clone();
        Ok(fetch::download(
            getter,
            key,
            Some(artifact.size),
            self.policy.clone(),
            self.ranges,
            buffer,
            what,
        ))
    }

    async fn read_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let full = self.at.key(key);
        let url = self.at.object_url(&full);
        let read = with_retries(&self.policy, &url, || async {
            let out = match self.getter.get_object(&full, 0, None, None).await {
                Ok(out) => out,
                Err(e) if is_no_such_key(&e) => return Ok(None),
                Err(e) => return Err(classify(&e)),
            };
            let too_large =
                |len: String| RequestError::Fatal(format!("larger than {limit} bytes{len}"));
            if let Some(len) = out.content_length() {
                if len.max(0) as u64 > limit {
                    return Err(too_large(format!(" ({len})")));
                }
            }
            let mut body = out.body;
            let mut buf = Vec::new();
            while let Some(chunk) = body.next().await {
                // A broken body is retried as a whole.
                let chunk = chunk.map_err(|e| {
                    RequestError::Retry(format!("broken body: {}", DisplayErrorContext(&e)))
                })?;
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > limit {
                    return Err(too_large(String::new()));
                }
            }
            Ok(Some(buf))
        })
        .await;
        read.map_err(|e| e.into_error(&url))
    }
}

/// Ranged GetObject for [`fetch::download`].
struct S3Getter {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Getter {
    async fn get_object(
        &self,
        key: &str,
        from: u64,
        end: Option<u64>,
        validator: Option<&str>,
    ) -> Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(range) = fetch::range_header(from, end) {
            req = req.range(range);
        }
        if let Some(etag) = validator {
            req = req.if_match(etag);
        }
        req.send().await
    }
}

#[async_trait]
impl RangedGet for S3Getter {
    async fn get(
        &self,
        key: &str,
        from: u64,
        end: Option<u64>,
        validator: Option<&str>,
    ) -> Result<Ranged, RequestError> {
        let out = self
            .get_object(key, from, end, validator)
            .await
            .map_err(|e| classify(&e))?;
        let range = out.content_range().and_then(fetch::parse_content_range);
        let body_end = match range {
            Some((start, stop, _)) if start == from => Some(stop),
            // A server that ignores Range hands back byte 0 again.
            _ if from > 0 => {
                return Err(RequestError::Fatal(format!(
                    "asked for bytes from {from} on, the server answered with Content-Range {:?}",
                    out.content_range()
                )))
            }
            _ => None,
        };
        let validator = out.e_tag().map(String::from);
        let body = futures_util::stream::unfold(out.body, |mut body| async move {
            let item = body.next().await?;
            Some((
                item.map_err(|e| io::Error::other(DisplayErrorContext(&e).to_string())),
                body,
            ))
        })
        .boxed();
        Ok(Ranged {
            body,
            end: body_end,
            validator,
        })
    }
}

fn is_no_such_key(e: &SdkError<GetObjectError, HttpResponse>) -> bool {
    match e.code() {
        Some(code) => code == "NoSuchKey",
        None => status(e) == Some(404),
    }
}

/// Retry, changed or fatal, with a message naming the S3 error code.
fn classify(e: &SdkError<GetObjectError, HttpResponse>) -> RequestError {
    let text = error_text(e);
    if e.code() == Some("PreconditionFailed") || status(e) == Some(412) {
        RequestError::Changed(text)
    } else if is_transient(e) {
        RequestError::Retry(text)
    } else {
        RequestError::Fatal(text)
    }
}
