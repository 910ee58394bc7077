//! A small S3-compatible server for benchmarks and demos: s3s-fs serving a
//! directory on 127.0.0.1, with fixed credentials.
//!
//! ```sh
//! cargo run --release --example s3_server -- --root /tmp/s3 --bucket bench
//! ```
//!
//! s3s-fs keeps bucket `B` as the directory `ROOT/B` and object `K` as the
//! file `ROOT/B/K`, so objects can be put in place by copying files there
//! (`bench/e2e.sh` does that, and writes each object's
//! `.bucket-….object-….internal.json` with its ETag so that GetObject does
//! not hash the whole file on every request).
//!
//! Signed requests must use [`ACCESS_KEY`] / [`SECRET_KEY`] (any region).
//! With `--anonymous`, unsigned requests may do everything too (read, list,
//! put, multipart): the plain-way baseline of the benchmark uses them with
//! Python's standard library alone.
//!
//! With `--throttle RATE`, every connection sends at most RATE bytes per
//! second (as one connection to S3 gets a fraction of what S3 serves), so
//! benchmarks can show what parallel ranged GETs gain.
//!
//! UploadPartCopy and CompleteMultipartUpload are the server's own
//! (`quick.rs`: the same files and answers, blocking threads and 1 MiB
//! buffers), so that at release size the server keeps up with the client
//! it serves on the same two cores.
//!
//! On start it prints one line, `http://127.0.0.1:PORT`, to stdout (and to
//! `--port-file` when given), then serves until SIGINT or SIGTERM.

mod quick;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS_KEY: &str = "rockpack-bench-key";
pub const SECRET_KEY: &str = "rockpack-bench-secret";

const USAGE: &str =
    "usage: s3_server --root DIR [--port N] [--bucket NAME]... [--anonymous] [--port-file FILE] [--throttle RATE]

  --root DIR        where s3s-fs keeps buckets (directories) and objects (files); created if missing
  --port N          port on 127.0.0.1 (default 0: any free port)
  --bucket NAME     create this bucket (repeatable)
  --anonymous       let unsigned requests do everything, not only signed ones
  --port-file FILE  also write the endpoint URL here once listening
  --throttle RATE   send at most RATE bytes per second on each connection (e.g. 16M)

credentials: AWS_ACCESS_KEY_ID=rockpack-bench-key AWS_SECRET_ACCESS_KEY=rockpack-bench-secret";

struct Args {
    root: PathBuf,
    port: u16,
    buckets: Vec<String>,
    anonymous: bool,
    port_file: Option<PathBuf>,
    /// Bytes per second each connection may send.
    throttle: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut root = None;
    let mut port = 0;
    let mut buckets = Vec::new();
    let mut anonymous = false;
    let mut port_file = None;
    let mut throttle = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(value("--root")?)),
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--bucket" => buckets.push(value("--bucket")?),
            "--anonymous" => anonymous = true,
            "--port-file" => port_file = Some(PathBuf::from(value("--port-file")?)),
            "--throttle" => {
                let rate = rockpack::units::parse_size(&value("--throttle")?)
                    .map_err(|e| format!("--throttle: {e}"))?;
                throttle = Some(rate.max(1));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        port,
        buckets,
        anonymous,
        port_file,
        throttle,
    })
}

/// Unsigned requests may do anything; signed ones were checked by the auth
/// provider already.
struct AllowAll;

#[async_trait::async_trait]
impl s3s::access::S3Access for AllowAll {
    async fn check(&self, _cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        Ok(())
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("s3_server: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    for b in &args.buckets {
        std::fs::create_dir_all(args.root.join(b)).expect("creating a bucket directory");
    }
    std::fs::create_dir_all(&args.root).expect("creating --root");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve(args));
}

async fn serve(args: Args) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .expect("binding 127.0.0.1");
    let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
    let fs = quick::Quick::new(&args.root).expect("s3s-fs root");
    let mut b = S3ServiceBuilder::new(fs);
    b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    if args.anonymous {
        // s3s accepts unsigned requests only through an access policy when
        // an auth provider is set (and rejects signed ones without one).
        b.set_access(AllowAll);
    }
    let service = b.build();

    if let Some(p) = &args.port_file {
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, format!("{endpoint}\n")).expect("writing --port-file");
        std::fs::rename(&tmp, p).expect("writing --port-file");
    }
    println!("{endpoint}");
    let _ = std::io::stdout().flush();

    let throttle = args.throttle;
    let accept = async {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            let service = service.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let service = service.clone();
                    async move {
                        match hyper::service::Service::call(&service, req).await {
                            Ok(resp) => Ok::<_, std::convert::Infallible>(resp),
                            Err(e) => Ok(hyper::Response::builder()
                                .status(500)
                                .body(s3s::Body::from(format!("{e:?}")))
                                .expect("response")),
                        }
                    }
                });
                let socket = Paced::new(socket, throttle);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    };
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    };
    tokio::select! {
        _ = accept => {},
        _ = stop => {},
    }
}

/// A connection that sends at most `rate` bytes per second (None: as fast
/// as it can), reads unpaced.
struct Paced<S> {
    inner: S,
    rate: Option<u64>,
    /// When the next bytes may go out; an idle connection earns no credit.
    next: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Paced<S> {
    fn new(inner: S, rate: Option<u64>) -> Self {
        Paced {
            inner,
            rate,
            next: tokio::time::Instant::now(),
            sleep: None,
        }
    }
}

/// Bytes written at once when paced: small enough to keep the rate smooth.
const PACE_STEP: usize = 16 << 10;

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let Some(rate) = self.rate else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            if self.next <= tokio::time::Instant::now() {
                break;
            }
            self.sleep = Some(Box::pin(tokio::time::sleep_until(self.next)));
        }
        let n = buf.len().min(PACE_STEP);
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        let now = tokio::time::Instant::now();
        self.next = self.next.max(now) + Duration::from_secs_f64(written as f64 / rate as f64);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
