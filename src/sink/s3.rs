//! S3 multipart sink (being written).

use crate::error::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct S3SinkOptions {
    /// Fixed part size; otherwise chosen from the tarball's size bound.
    pub part_size: Option<u64>,
    /// Parts uploading at once, over all tarballs.
    pub parts_in_flight: usize,
    pub storage_class: Option<String>,
    /// `key=value` object tags.
    pub tags: Vec<(String, String)>,
    /// `AES256` or `aws:kms`.
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
    pub content_type: String,
}

pub struct S3Sink;

impl S3Sink {
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        opts: S3SinkOptions,
    ) -> Result<Box<dyn crate::sink::Sink>> {
        let _ = (client, bucket, prefix, opts);
        Err(Error::Usage("S3 destinations are not available yet".into()))
    }
}
