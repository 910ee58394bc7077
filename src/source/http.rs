//! HTTP(S) source (being written).

use crate::error::{Error, Result};
use crate::source::fetch::RetryPolicy;

pub struct HttpSource;

impl HttpSource {
    pub fn new(base: url::Url, policy: RetryPolicy) -> Result<std::sync::Arc<dyn crate::source::Source>> {
        let _ = (base, policy);
        Err(Error::Usage("HTTP sources are not available yet".into()))
    }
}
