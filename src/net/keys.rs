//! Object keys in URLs: how a key is percent-encoded into a URL path (and
//! decoded back) or an `x-amz-copy-source`, how tags are encoded into the
//! `x-amz-tagging` query string, and where in S3 a prefix is. Always compiled: the report and the
//! fixtures quote keys too, with or without the `net` feature.

/// Everything but RFC 3986 unreserved characters is escaped in a key
/// (Python's `urllib.parse.quote`, as TheRock quotes URLs: `+` is `%2B`).
const KEY_ESCAPES: &percent_encoding::AsciiSet = &COMPONENT_ESCAPES.remove(b'/');

/// Everything but RFC 3986 unreserved characters, `/` included.
const COMPONENT_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An S3 prefix: a bucket and the keys below a key prefix. The one
/// description of "where in S3" that `--source`, `--dest`, the S3 source,
/// the S3 sink, promote and abort-uploads share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Prefix {
    /// The bucket's name.
    pub bucket: String,
    /// No slash at either end; empty: the whole bucket. Keys below it
    /// start with `{prefix}/`.
    pub prefix: String,
}

impl S3Prefix {
    /// `prefix` below `bucket`, slashes at its ends dropped.
    pub fn new(bucket: impl Into<String>, prefix: &str) -> S3Prefix {
        S3Prefix {
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The key of `name` below the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// What every key below starts with (`{prefix}/`, or nothing): what a
    /// listing asks for.
    pub fn below(&self) -> String {
        self.key("")
    }

    /// The prefix `sub` below this one.
    pub fn join(&self, sub: &str) -> S3Prefix {
        S3Prefix::new(self.bucket.clone(), &self.key(sub.trim_matches('/')))
    }

    /// `s3://bucket/prefix/`.
    pub fn url(&self) -> String {
        self.object_url(&self.below())
    }

    /// `s3://bucket/key` of a key in the prefix's bucket.
    pub fn object_url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// Percent-encodes an object key for a URL path, keeping '/'.
pub fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, KEY_ESCAPES).to_string()
}

/// Decodes a percent-encoded URL path (invalid escapes are kept as is).
pub fn decode_key(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// RFC 3986 percent-encoding of everything but unreserved characters (a
/// query-string key or value: `/` is escaped too).
fn encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT_ESCAPES).to_string()
}

/// The `x-amz-copy-source` of `bucket/key`: the bucket, then the key
/// percent-encoded as in a URL path.
pub fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", encode_key(key))
}

/// Tags as the `x-amz-tagging` query string (`k=v&k2=v2`, each key and
/// value percent-encoded); `None` for no tags.
pub fn tagging_query<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let pairs: Vec<String> = tags
        .into_iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_urls() {
        let key = "sub dir/foo_lib_gfx942:xnack+.tar.zst";
        let enc = encode_key(key);
        assert_eq!(enc, "sub%20dir/foo_lib_gfx942%3Axnack%2B.tar.zst");
        assert_eq!(decode_key(&enc), key);
        assert_eq!(decode_key("100%"), "100%");
    }

    #[test]
    fn prefixes_make_keys_and_urls() {
        let p = S3Prefix::new("b", "/12345-linux/tarballs/");
        assert_eq!(p.prefix, "12345-linux/tarballs");
        assert_eq!(p.key("x.tar.gz"), "12345-linux/tarballs/x.tar.gz");
        assert_eq!(p.below(), "12345-linux/tarballs/");
        assert_eq!(p.url(), "s3://b/12345-linux/tarballs/");
        assert_eq!(p.object_url("k"), "s3://b/k");
        let top = S3Prefix::new("b", "");
        assert_eq!(top.key("x"), "x");
        assert_eq!(top.below(), "");
        assert_eq!(top.url(), "s3://b/");
        assert_eq!(top.join("run/").join(""), S3Prefix::new("b", "run"));
        assert_eq!(p.join("sub").url(), "s3://b/12345-linux/tarballs/sub/");
    }

    #[test]
    fn copy_sources_and_tagging_queries() {
        assert_eq!(copy_source("b", "run/x y+.tar.gz"), "b/run/x%20y%2B.tar.gz");
        assert_eq!(
            tagging_query([("stage", "release candidate"), ("a=b", "c&d")]),
            Some("stage=release%20candidate&a%3Db=c%26d".to_string())
        );
        assert_eq!(tagging_query([]), None);
    }

    #[test]
    fn components_escape_all_but_unreserved() {
        assert_eq!(encode_component("x=y/z é"), "x%3Dy%2Fz%20%C3%A9");
        assert_eq!(encode_component("aZ0-._~"), "aZ0-._~");
        assert_eq!(encode_component(""), "");
    }
}
