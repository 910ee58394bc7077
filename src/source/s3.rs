//! S3 source (being written).

use crate::error::{Error, Result};
use crate::source::fetch::RetryPolicy;

pub struct S3Source;

impl S3Source {
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        policy: RetryPolicy,
    ) -> Result<std::sync::Arc<dyn crate::source::Source>> {
        let _ = (client, bucket, prefix, policy);
        Err(Error::Usage("S3 sources are not available yet".into()))
    }
}
