//! Object keys in URLs: how a key is percent-encoded into a URL path (and
//! decoded back), and how an S3 tag's key or value is encoded into the
//! `x-amz-tagging` query string. Always compiled: the report and the
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

/// The key of `name` below `prefix` (no slash at either end; empty: the
/// bucket's top).
pub fn key_below(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
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
pub fn encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT_ESCAPES).to_string()
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
    fn keys_below_prefixes() {
        assert_eq!(key_below("", "x.tar.gz"), "x.tar.gz");
        assert_eq!(
            key_below("12345-linux/tarballs", "x"),
            "12345-linux/tarballs/x"
        );
    }

    #[test]
    fn components_escape_all_but_unreserved() {
        assert_eq!(encode_component("x=y/z é"), "x%3Dy%2Fz%20%C3%A9");
        assert_eq!(encode_component("aZ0-._~"), "aZ0-._~");
        assert_eq!(encode_component(""), "");
    }
}
