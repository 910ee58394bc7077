//! Reading a listing: S3's ListObjectsV2 answer (XML) when the host speaks
//! S3, else the links of an `index.html` page. Pure parsing: the requests
//! are `transport`'s, the walk over pages `HttpSource`'s.

use std::collections::HashSet;

use quick_xml::events::Event;
use url::Url;

use crate::net::decode_key;

// ---- S3 ListObjectsV2 ----

/// (endpoint, key prefix) to try: virtual-hosted style (the host is the
/// bucket), then path-style (the first path segment is).
pub(super) fn s3_candidates(base: &Url) -> Vec<(Url, String)> {
    let path = decode_key(base.path().trim_start_matches('/'));
    let mut root = base.clone();
    root.set_path("/");
    let mut out = vec![(root.clone(), path.clone())];
    if let Some((bucket, rest)) = path.split_once('/') {
        if !bucket.is_empty() {
            let mut ep = root;
            ep.path_segments_mut()
                .expect("http URLs have paths")
                .clear()
                .push(bucket);
            out.push((ep, rest.to_string()));
        }
    }
    out
}

pub(super) fn list_url(endpoint: &Url, prefix: &str, token: Option<&str>) -> Url {
    let mut u = endpoint.clone();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("list-type", "2")
            .append_pair("prefix", prefix);
        if let Some(t) = token {
            q.append_pair("continuation-token", t);
        }
    }
    u
}

/// One ListObjectsV2 answer.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ListPage {
    pub(super) objects: Vec<(String, u64)>,
    pub(super) next: Option<String>,
}

/// Ok(None) when the document is not a ListBucketResult (an HTML page, a
/// ListAllMyBucketsResult, an error).
pub(super) fn parse_list_page(xml: &[u8]) -> Result<Option<ListPage>, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut page = ListPage::default();
    let (mut key, mut size, mut truncated, mut rooted) =
        (None::<String>, None::<u64>, false, false);
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(_) if path.is_empty() => return Ok(None),
            Err(e) => return Err(format!("bad ListBucketResult XML: {e}")),
        };
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if rooted || name != "ListBucketResult" {
                        return Ok(None);
                    }
                    rooted = true;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(_) if path.is_empty() => return Ok(None),
            Event::Text(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                text.push_str(&format!("&{};", r.decode().map_err(|e| e.to_string())?))
            }
            Event::CData(c) => text.push_str(&quick_xml::escape::escape(
                c.decode().map_err(|e| e.to_string())?,
            )),
            Event::End(_) => {
                let value = quick_xml::escape::unescape(&text)
                    .map_err(|e| e.to_string())?
                    .into_owned();
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                match p.as_slice() {
                    [_, "Contents", "Key"] => key = Some(value),
                    [_, "Contents", "Size"] => size = value.trim().parse().ok(),
                    [_, "Contents"] => match (key.take(), size.take()) {
                        (Some(k), Some(s)) => page.objects.push((k, s)),
                        _ => return Err("a Contents entry without Key or Size".into()),
                    },
                    [_, "IsTruncated"] => truncated = value.trim() == "true",
                    [_, "NextContinuationToken"] => {
                        page.next = Some(value).filter(|t| !t.is_empty())
                    }
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !rooted {
        return Ok(None);
    }
    if !truncated {
        page.next = None;
    } else if page.next.is_none() {
        return Err("IsTruncated without a NextContinuationToken".into());
    }
    Ok(Some(page))
}

// ---- index.html ----

/// `href` values in an HTML page, entity-decoded, in page order.
fn hrefs(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("href") {
        let name_at = from + at;
        let mut i = name_at + 4;
        from = i;
        // The attribute itself, not the end of another name (data-href).
        if name_at > 0
            && (bytes[name_at - 1].is_ascii_alphanumeric()
                || matches!(bytes[name_at - 1], b'-' | b'_'))
        {
            continue;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let (start, end) = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => match html[i + 1..].find(q as char) {
                Some(n) => (i + 1, i + 1 + n),
                None => break,
            },
            Some(_) => {
                let n = html[i..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(html.len() - i);
                (i, i + n)
            }
            None => break,
        };
        out.push(decode_entities(&html[start..end]));
        from = end;
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// Links of `page` that point below `base` (same origin, no query, not
/// `base` itself), as (decoded key relative to `base`, is a directory).
pub(super) fn links_below(page: &Url, html: &str, base: &Url) -> Vec<(String, bool)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for href in hrefs(html) {
        if href.is_empty() || href.starts_with('#') || href.starts_with('?') {
            continue;
        }
        let Ok(mut u) = page.join(&href) else {
            continue;
        };
        u.set_fragment(None);
        if u.query().is_some()
            || u.scheme() != base.scheme()
            || u.host() != base.host()
            || u.port_or_known_default() != base.port_or_known_default()
        {
            continue;
        }
        let Some(rel) = u.path().strip_prefix(base.path()) else {
            continue;
        };
        let key = decode_key(rel);
        if key.is_empty()
            || key
                .split('/')
                .rev()
                .skip(1)
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            continue;
        }
        if seen.insert(key.clone()) {
            out.push((key.clone(), key.ends_with('/')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_a_truncated_list_page() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>therock-ci-artifacts</Name><Prefix>123-linux/</Prefix><KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
  <Contents><Key>123-linux/base_lib_generic.tar.zst</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>123-linux/a&amp;b_lib_gfx942:xnack+.tar.zst</Key><Size>5</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let page = parse_list_page(xml).unwrap().unwrap();
        assert_eq!(
            page.objects,
            vec![
                ("123-linux/base_lib_generic.tar.zst".to_string(), 1234),
                ("123-linux/a&b_lib_gfx942:xnack+.tar.zst".to_string(), 5)
            ]
        );
        assert_eq!(
            page.next.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
    }

    #[test]
    fn last_page_and_other_documents() {
        let last = b"<ListBucketResult><IsTruncated>false</IsTruncated>\
            <Contents><Key>p/x</Key><Size>0</Size></Contents></ListBucketResult>";
        assert_eq!(
            parse_list_page(last).unwrap(),
            Some(ListPage {
                objects: vec![("p/x".into(), 0)],
                next: None
            })
        );
        let empty =
            b"<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(parse_list_page(empty).unwrap(), Some(ListPage::default()));
        for other in [
            &b"<?xml version=\"1.0\"?><ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>"
                [..],
            b"<Error><Code>AccessDenied</Code></Error>",
            b"<!DOCTYPE html><html><body><a href=\"x\">x</a><br></body></html>",
            b"not xml at all & <",
            b"",
        ] {
            assert_eq!(
                parse_list_page(other).unwrap(),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        let bad = b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
        assert!(parse_list_page(bad).is_err());
    }

    #[test]
    fn s3_candidates_and_list_urls() {
        let c = s3_candidates(&url(
            "https://therock-ci-artifacts.s3.amazonaws.com/123-linux/",
        ));
        assert_eq!(
            c[0].0.as_str(),
            "https://therock-ci-artifacts.s3.amazonaws.com/"
        );
        assert_eq!(c[0].1, "123-linux/");
        assert_eq!(
            c[1].0.as_str(),
            "https://therock-ci-artifacts.s3.amazonaws.com/123-linux"
        );
        assert_eq!(c[1].1, "");
        let c = s3_candidates(&url("http://127.0.0.1:9000/bucket/a%20b/run/"));
        assert_eq!(c[1].0.as_str(), "http://127.0.0.1:9000/bucket");
        assert_eq!(c[1].1, "a b/run/");
        assert_eq!(
            list_url(&c[1].0, &c[1].1, Some("t/+=")).as_str(),
            "http://127.0.0.1:9000/bucket?list-type=2&prefix=a+b%2Frun%2F&continuation-token=t%2F%2B%3D"
        );
        assert_eq!(s3_candidates(&url("http://h/")).len(), 1);
    }

    #[test]
    fn extracts_links_below_the_prefix() {
        let base = url("http://127.0.0.1:8000/run/");
        let html = r#"<html><body><h1>Index of /run/</h1>
<a href="../">../</a>
<a href="?C=N;O=D">Name</a> <a href='#top'>top</a>
<A HREF="base_lib_generic.tar.zst">base_lib_generic.tar.zst</A>
<a class="x" href = "base_lib_generic.tar.zst.sha256sum">sidecar</a>
<a href="sub/">sub/</a> <a href="sub/">again</a>
<a href="/run/manifests/">manifests/</a>
<a href="/other/x.tar.zst">outside</a>
<a href="http://example.com/run/x.tar.zst">elsewhere</a>
<a href="foo_lib_gfx942%3Axnack%2B.tar.zst">encoded</a>
<a href="a&amp;b.txt">amp</a>
<a data-href="nothere">no</a>
<a href=plain.txt>unquoted</a>
</body></html>"#;
        let links = links_below(&base, html, &base);
        let want: Vec<(String, bool)> = [
            ("base_lib_generic.tar.zst", false),
            ("base_lib_generic.tar.zst.sha256sum", false),
            ("sub/", true),
            ("manifests/", true),
            ("foo_lib_gfx942:xnack+.tar.zst", false),
            ("a&b.txt", false),
            ("plain.txt", false),
        ]
        .iter()
        .map(|(k, d)| (k.to_string(), *d))
        .collect();
        assert_eq!(links, want);
        // A subdirectory's page: keys stay relative to the prefix.
        let page = url("http://127.0.0.1:8000/run/sub/");
        let links = links_below(
            &page,
            r#"<a href="../">up</a><a href="x.tar.xz">x</a>"#,
            &base,
        );
        assert_eq!(links, vec![("sub/x.tar.xz".to_string(), false)]);
    }
}
