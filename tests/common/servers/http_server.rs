//! A static file server for tests: serves a directory on 127.0.0.1 behind
//! the fault-injection layer, with what resumable downloads need (strong
//! ETag, Last-Modified, `Range`, `If-Range`, 416) and generated `index.html`
//! pages for directories. It deliberately does not speak S3, so a source
//! must list it through `index.html`. Like the S3 server it runs on its own
//! thread and runtime, so tests stay plain `#[test]` functions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::faults::{self, Faults};

pub struct HttpServer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    pub addr: SocketAddr,
    pub faults: Faults,
    pub root: PathBuf,
    state: Arc<State>,
    _runtime: tokio::runtime::Runtime,
}

struct State {
    root: PathBuf,
    /// URL path → what replaces it, and when.
    on_request: Mutex<HashMap<String, Replace>>,
    /// Answer every request whole, as servers without Range support do.
    ignore_ranges: AtomicBool,
}

impl HttpServer {
    /// Serves the files below `root` (not copied: tests may change them).
    pub fn start(root: &Path) -> HttpServer {
        let (runtime, listener, addr) = faults::runtime_and_listener();
        let faults = Faults::default();
        let state = Arc::new(State {
            root: root.to_path_buf(),
            on_request: Mutex::default(),
            ignore_ranges: AtomicBool::new(false),
        });
        let st = state.clone();
        faults::serve(&runtime, listener, faults.clone(), move |req| {
            serve(st.clone(), req)
        });
        HttpServer {
            base: format!("http://{addr}"),
            addr,
            faults,
            root: root.to_path_buf(),
            state,
            _runtime: runtime,
        }
    }

    /// The URL of `path` (relative to the served root).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Ignore `Range` from now on (answer 200 with the whole file), as
    /// simple servers such as Python's http.server do.
    pub fn ignore_ranges(&self) {
        self.state.ignore_ranges.store(true, Ordering::Relaxed);
    }

    /// Replaces a file's content now (a new file, so its ETag changes).
    pub fn replace(&self, path: &str, content: &[u8]) {
        replace_file(&self.state.root.join(path.trim_start_matches('/')), content);
    }

    /// Replaces a file's content just before the `Range` request for it
    /// that follows `skip` others is answered: "the object changed while it
    /// was being downloaded", without racing the client.
    pub fn replace_on_range(&self, path: &str, skip: usize, content: Vec<u8>) {
        self.replace_on(path, skip, content, true);
    }

    /// Replaces a file's content just before the GET of it that follows
    /// `skip` others (ranged or not) is answered.
    pub fn replace_on_get(&self, path: &str, skip: usize, content: Vec<u8>) {
        self.replace_on(path, skip, content, false);
    }

    fn replace_on(&self, path: &str, skip: usize, content: Vec<u8>, ranged: bool) {
        let key = format!("/{}", path.trim_start_matches('/'));
        self.state
            .on_request
            .lock()
            .unwrap()
            .insert(key, (skip, content, ranged));
    }
}

/// (GETs still let through, content that then replaces the file just
/// before the next one is answered, whether only ranged GETs count).
type Replace = (usize, Vec<u8>, bool);

fn replace_file(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("replacing");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

type Resp = Response<Frames>;

async fn serve(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, "GET and HEAD only"),
    };
    let url_path = rockpack::net::decode_key(req.uri().path());
    if !url_path.starts_with('/') || url_path.split('/').any(|s| s == ".." || s == ".") {
        return text(StatusCode::BAD_REQUEST, "bad path");
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (mut range, if_range) = (header("range"), header("if-range"));
    let mut fs_path = state.root.join(&url_path[1..]);
    if !head {
        let mut pending = state.on_request.lock().unwrap();
        match pending.get_mut(&url_path) {
            Some((_, _, true)) if range.is_none() => {}
            Some((0, _, _)) => {
                let (_, content, _) = pending.remove(&url_path).unwrap();
                replace_file(&fs_path, &content);
            }
            Some((skip, _, _)) => *skip -= 1,
            None => {}
        }
    }
    let Ok(meta) = tokio::fs::metadata(&fs_path).await else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if meta.is_dir() {
        if !url_path.ends_with('/') {
            let query = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            return Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header("location", format!("{url_path}/{query}"))
                .body(Frames::new(Bytes::new()))
                .unwrap();
        }
        let index = fs_path.join("index.html");
        if !index.is_file() {
            let page = index_page(&url_path, &fs_path);
            return Response::builder()
                .header("content-type", "text/html; charset=utf-8")
                .header("content-length", page.len())
                .body(Frames::new(if head { Bytes::new() } else { page.into() }))
                .unwrap();
        }
        fs_path = index;
    }
    // Metadata and bytes from one open file, so a concurrent replace
    // cannot pair one version's ETag with another's bytes.
    let Ok((meta, data)) = read_file(&fs_path).await else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let len = data.len() as u64;
    let ranges = !state.ignore_ranges.load(Ordering::Relaxed);
    if !ranges {
        range = None;
    }
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let mtime_ns = mtime
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    // Strong, and new for every new file (replace renames one into place).
    let etag = format!("\"{:x}-{:x}-{:x}\"", len, mtime_ns, meta.ino());
    let last_modified = http_date(mtime);
    let range_applies = match &if_range {
        None => true,
        Some(v) => v == &etag || v == &last_modified,
    };
    let (status, from, to) = match range.as_deref().and_then(|r| parse_range(r, len)) {
        Some(Ok((a, b))) if range_applies => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(Err(())) if range_applies => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header("content-range", format!("bytes */{len}"))
                .body(Frames::new(Bytes::new()))
                .unwrap();
        }
        _ => (StatusCode::OK, 0, len),
    };
    let mut resp = Response::builder()
        .status(status)
        .header("etag", &etag)
        .header("last-modified", &last_modified)
        .header("accept-ranges", if ranges { "bytes" } else { "none" })
        .header("content-type", "application/octet-stream")
        .header("content-length", to - from);
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header("content-range", format!("bytes {from}-{}/{len}", to - 1));
    }
    let body = if head {
        Bytes::new()
    } else {
        data.slice(from as usize..to as usize)
    };
    resp.body(Frames::new(body)).unwrap()
}

async fn read_file(path: &Path) -> std::io::Result<(std::fs::Metadata, Bytes)> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let meta = f.metadata().await?;
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut data).await?;
    Ok((meta, data.into()))
}

fn text(status: StatusCode, msg: &str) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Frames::new(Bytes::from(format!("{msg}\n"))))
        .unwrap()
}

/// A body sent in small frames, yielding between them so the connection
/// flushes each one: bytes before an injected drop really reach the client
/// (up to the frame the drop cuts), as on a real network.
pub struct Frames {
    data: Bytes,
    paused: bool,
}

const FRAME: usize = 16 << 10;

impl Frames {
    fn new(data: impl Into<Bytes>) -> Frames {
        Frames {
            data: data.into(),
            paused: false,
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        if self.paused {
            self.paused = false;
            let n = self.data.len().min(FRAME);
            return Poll::Ready(Some(Ok(Frame::data(self.data.split_to(n)))));
        }
        self.paused = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.len() as u64)
    }
}

/// `bytes=A-B`, `bytes=A-`, `bytes=-N` as the half-open [from, to); Err for
/// an unsatisfiable range; None for anything else (served whole).
fn parse_range(v: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (n > 0 && len > 0).then(|| (len - n.min(len), len))
    } else {
        let from: u64 = a.parse().ok()?;
        let to = if b.is_empty() {
            len
        } else {
            let last: u64 = b.parse().ok()?;
            if last < from {
                return None;
            }
            (last + 1).min(len)
        };
        (from < len).then_some((from, to))
    };
    Some(r.ok_or(()))
}

/// A listing of `dir` as web servers write one: `../` first, then every
/// entry as a relative link, directories with a trailing '/'.
fn index_page(url_path: &str, dir: &Path) -> String {
    let mut entries: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    (e.file_name().to_string_lossy().into_owned(), is_dir)
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let title = escape_html(url_path);
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><title>Index of {title}</title></head>\n\
         <body><h1>Index of {title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
    );
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        s.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            escape_html(&encode_path(&name)),
            escape_html(&name)
        ));
    }
    s.push_str("</ul></body></html>\n");
    s
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
