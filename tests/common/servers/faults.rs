//! Fault injection for the test servers: a hyper service wrapper that,
//! by rule, answers with an error status, drops the connection after N body
//! bytes, stalls, or delays, and records every request it saw.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ResBody = BoxBody<Bytes, BoxError>;

/// The runtime of a test server (its own, on two worker threads), and a
/// listener on 127.0.0.1 (any free port) with its address.
pub fn runtime_and_listener() -> (
    tokio::runtime::Runtime,
    tokio::net::TcpListener,
    std::net::SocketAddr,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (runtime, listener, addr)
}

/// Serves every connection `listener` accepts on `runtime` (HTTP/1 or 2):
/// each request goes through the fault layer `faults`, then to `inner`.
pub fn serve<F, Fut, B>(
    runtime: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    faults: Faults,
    inner: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    runtime.spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (faults, inner) = (faults.clone(), inner.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (faults, inner) = (faults.clone(), inner.clone());
                    async move { faults.handle(req, inner).await }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Answer with this status (and an S3-style XML error body).
    Status(u16),
    /// Send the real headers, then this many body bytes, then break the connection.
    DropAfter(u64),
    /// Send this many body bytes, then stall for the duration, then break.
    StallAfter(u64, Duration),
    /// Wait before handling the request normally.
    Delay(Duration),
    /// Handle the request, then wait before answering.
    DelayAnswer(Duration),
    /// Take the request whole, then hold it — whatever becomes of its
    /// client, as S3 finishes a request it has received — until a request
    /// this rule matches arrives (its own action is ignored): handle it
    /// then, before that one. Only the checking S3 front holds (see
    /// [`Hold`]); elsewhere the request is handled at once.
    Late(Box<Rule>),
}

/// What the fault layer gives a request it holds ([`Action::Late`]), in
/// its extensions: the front that reads its body takes the release from
/// it, waits for it, handles the request, then says it is done.
#[derive(Clone, Debug, Default)]
pub struct Hold(Arc<Mutex<Option<oneshot::Receiver<oneshot::Sender<()>>>>>);

impl Hold {
    /// Waits until the request may be handled; returns what to tell once
    /// it is (nothing when nobody waits for it).
    pub async fn released(&self) -> Option<oneshot::Sender<()>> {
        let rx = self.0.lock().unwrap().take()?;
        rx.await.ok()
    }
}

/// A held request, and what releases it.
#[derive(Debug)]
struct Held {
    until: Rule,
    release: oneshot::Sender<oneshot::Sender<()>>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub method: Option<Method>,
    pub path_contains: Option<String>,
    pub query_contains: Option<String>,
    /// A header that must hold this text: (name, text).
    pub header_contains: Option<(String, String)>,
    /// Matching requests let through before the rule fires.
    pub skip: usize,
    /// How many times it fires (`usize::MAX`: always).
    pub times: usize,
    pub action: Action,
}

impl Rule {
    pub fn new(action: Action) -> Rule {
        Rule {
            method: None,
            path_contains: None,
            query_contains: None,
            header_contains: None,
            skip: 0,
            times: 1,
            action,
        }
    }
    pub fn method(mut self, m: Method) -> Rule {
        self.method = Some(m);
        self
    }
    pub fn path(mut self, s: &str) -> Rule {
        self.path_contains = Some(s.to_string());
        self
    }
    pub fn query(mut self, s: &str) -> Rule {
        self.query_contains = Some(s.to_string());
        self
    }
    pub fn header_contains(mut self, name: &str, s: &str) -> Rule {
        self.header_contains = Some((name.to_string(), s.to_string()));
        self
    }
    pub fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }
    pub fn always(self) -> Rule {
        self.times(usize::MAX)
    }

    fn matches<B>(&self, req: &Request<B>) -> bool {
        self.method.as_ref().is_none_or(|m| m == req.method())
            && self
                .path_contains
                .as_ref()
                .is_none_or(|p| req.uri().path().contains(p.as_str()))
            && self
                .query_contains
                .as_ref()
                .is_none_or(|q| req.uri().query().unwrap_or("").contains(q.as_str()))
            && self.header_contains.as_ref().is_none_or(|(name, text)| {
                req.headers()
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains(text.as_str()))
            })
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: String,
    pub range: Option<String>,
    pub faulted: bool,
    /// What the rule that fired did.
    pub action: Option<Action>,
    /// Other requests for the same path being handled when it arrived
    /// (until their answer's headers).
    pub concurrent: usize,
}

impl Seen {
    /// The bytes a `Range: bytes=A-B` request asked for, as [A, B + 1).
    pub fn closed_range(&self) -> Option<(u64, u64)> {
        let (a, b) = self
            .range
            .as_deref()?
            .strip_prefix("bytes=")?
            .split_once('-')?;
        Some((a.parse().ok()?, b.parse::<u64>().ok()? + 1))
    }
}

/// Checks that `gets` (the GETs of one object of `size` bytes) read it as
/// ranges of `range_size`: every GET asked for a closed range, and the
/// first GET of each range (the others resumed it: same end, later start)
/// tile the object in order. Returns the ranges, in order.
pub fn assert_read_in_ranges(gets: &[Seen], size: u64, range_size: u64) -> Vec<(u64, u64)> {
    let mut firsts: Vec<(u64, u64)> = Vec::new();
    for g in gets {
        let (from, end) = g
            .closed_range()
            .unwrap_or_else(|| panic!("not a closed range: {g:?} in {gets:#?}"));
        match firsts.iter_mut().find(|(_, e)| *e == end) {
            Some(first) => assert!(from > first.0, "{gets:#?}"),
            None => firsts.push((from, end)),
        }
    }
    firsts.sort();
    let want: Vec<(u64, u64)> = (0..size)
        .step_by(range_size as usize)
        .map(|a| (a, (a + range_size).min(size)))
        .collect();
    assert_eq!(firsts, want, "{gets:#?}");
    firsts
}

/// Checks that of `gets` (the GETs of one object read in ranges) exactly
/// one was cut (`DropAfter(n)`), in a range after the first, and that it
/// was resumed once: to the same end, from where it stopped.
pub fn assert_one_range_resumed(gets: &[Seen], n: u64) {
    let cut: Vec<(u64, u64)> = gets
        .iter()
        .filter(|g| matches!(g.action, Some(Action::DropAfter(m)) if m == n))
        .filter_map(Seen::closed_range)
        .collect();
    assert_eq!(cut.len(), 1, "{gets:#?}");
    let (from, end) = cut[0];
    assert!(from > 0, "{gets:#?}");
    let resumed: Vec<u64> = gets
        .iter()
        .filter_map(Seen::closed_range)
        .filter(|&(a, e)| e == end && a != from)
        .map(|(a, _)| a)
        .collect();
    assert_eq!(resumed.len(), 1, "{gets:#?}");
    assert!(resumed[0] > from && resumed[0] <= from + n, "{gets:#?}");
}

#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests between arrival and their answer's headers, by path.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    /// Requests held until another comes ([`Action::Late`]).
    held: Arc<Mutex<Vec<Held>>>,
}

/// Counts a request as in flight under a key (its path, its upload)
/// while it lives.
pub struct InFlight {
    paths: Arc<Mutex<HashMap<String, usize>>>,
    path: String,
}

impl InFlight {
    /// Counts a request under `path` in; returns it with the count of the
    /// others.
    pub fn start(paths: &Arc<Mutex<HashMap<String, usize>>>, path: &str) -> (InFlight, usize) {
        let mut map = paths.lock().unwrap();
        let n = map.entry(path.to_string()).or_default();
        *n += 1;
        let others = *n - 1;
        let guard = InFlight {
            paths: paths.clone(),
            path: path.to_string(),
        };
        (guard, others)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = self.paths.lock().unwrap().get_mut(&self.path) {
            *n -= 1;
        }
    }
}

impl Faults {
    pub fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    /// Requests whose rule fired.
    pub fn fired(&self) -> usize {
        self.seen().iter().filter(|s| s.faulted).count()
    }

    fn pick<B>(&self, req: &Request<B>, concurrent: usize) -> Option<Action> {
        let mut rules = self.rules.lock().unwrap();
        let mut chosen = None;
        for r in rules.iter_mut() {
            if r.times == 0 || !r.matches(req) {
                continue;
            }
            if r.skip > 0 {
                r.skip -= 1;
                continue;
            }
            if r.times != usize::MAX {
                r.times -= 1;
            }
            chosen = Some(r.action.clone());
            break;
        }
        let range = req
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        self.seen.lock().unwrap().push(Seen {
            method: req.method().clone(),
            uri: req.uri().to_string(),
            range,
            faulted: chosen.is_some(),
            action: chosen.clone(),
            concurrent,
        });
        chosen
    }

    /// Lets the held requests `req` releases be handled, and waits until
    /// they are.
    async fn release_held_by<B>(&self, req: &Request<B>) {
        let released: Vec<Held> = {
            let mut held = self.held.lock().unwrap();
            let (now, later) = held.drain(..).partition(|h| h.until.matches(req));
            *held = later;
            now
        };
        for h in released {
            let (done, handled) = oneshot::channel();
            if h.release.send(done).is_ok() {
                let _ = handled.await;
            }
        }
    }

    /// Handles `req` with `inner`, applying the first matching rule.
    pub async fn handle<F, Fut, B>(
        &self,
        req: Request<Incoming>,
        inner: F,
    ) -> Result<Response<ResBody>, Infallible>
    where
        F: FnOnce(Request<Incoming>) -> Fut,
        Fut: Future<Output = Response<B>>,
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let (_in_flight, concurrent) = InFlight::start(&self.in_flight, req.uri().path());
        self.release_held_by(&req).await;
        let mut req = req;
        let action = self.pick(&req, concurrent);
        if let Some(Action::Late(until)) = &action {
            let (release, wait) = oneshot::channel();
            self.held.lock().unwrap().push(Held {
                until: (**until).clone(),
                release,
            });
            req.extensions_mut()
                .insert(Hold(Arc::new(Mutex::new(Some(wait)))));
        }
        if let Some(Action::Status(code)) = action {
            let status = StatusCode::from_u16(code).unwrap();
            let code_name = if code == 503 {
                "SlowDown"
            } else {
                "InternalError"
            };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code_name}</Code><Message>injected fault</Message></Error>"
            );
            let body = Full::new(Bytes::from(xml))
                .map_err(|e: Infallible| -> BoxError { match e {} })
                .boxed();
            return Ok(Response::builder()
                .status(status)
                .header("content-type", "application/xml")
                .body(body)
                .unwrap());
        }
        if let Some(Action::Delay(d)) = action {
            tokio::time::sleep(d).await;
        }
        let resp = inner(req).await;
        if let Some(Action::DelayAnswer(d)) = action {
            tokio::time::sleep(d).await;
        }
        let (parts, body) = resp.into_parts();
        let body = body.map_err(Into::into).boxed();
        let body = match action {
            Some(Action::DropAfter(n)) => Cut {
                inner: body,
                left: n,
                stall: None,
                sleeping: None,
                flushed: false,
            }
            .boxed(),
            Some(Action::StallAfter(n, d)) => Cut {
                inner: body,
                left: n,
                stall: Some(d),
                sleeping: None,
                flushed: false,
            }
            .boxed(),
            _ => body,
        };
        Ok(Response::from_parts(parts, body))
    }
}

/// A body that ends in an error after `left` bytes (optionally after a stall).
struct Cut {
    inner: ResBody,
    left: u64,
    stall: Option<Duration>,
    sleeping: Option<Pin<Box<tokio::time::Sleep>>>,
    flushed: bool,
}

impl Body for Cut {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            // Let the connection send what came before the cut first.
            if !self.flushed {
                self.flushed = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if let Some(d) = self.stall.take() {
                self.sleeping = Some(Box::pin(tokio::time::sleep(d)));
            }
            if let Some(s) = self.sleeping.as_mut() {
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            return Poll::Ready(Some(Err("injected connection drop".into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    if data.len() as u64 > self.left {
                        data.truncate(self.left as usize);
                    }
                    self.left -= data.len() as u64;
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }
}
