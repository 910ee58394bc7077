//! Live progress: counters the pipeline bumps as bytes flow, and a renderer
//! that shows them — a bar per tarball on a terminal (indicatif), or a
//! one-line log every few seconds when stderr is not a terminal.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::Plan;
use crate::units::human_bytes;

/// Counters shared by the pipeline (writer) and the renderer (reader).
pub struct Progress {
    /// Index of the latest artifact started (several may be read at once).
    pub current: AtomicUsize,
    /// Stored bytes read so far, per artifact.
    read: Vec<AtomicU64>,
    /// Compressed bytes written per tarball.
    pub written: Vec<AtomicU64>,
    sizes: Vec<u64>,
    started: Instant,
}

impl Progress {
    /// Counters at zero for `plan`'s artifacts and tarballs.
    pub fn new(plan: &Plan) -> Arc<Progress> {
        let sizes: Vec<u64> = plan.artifacts.iter().map(|a| a.size).collect();
        Arc::new(Progress {
            current: AtomicUsize::new(0),
            read: sizes.iter().map(|_| AtomicU64::new(0)).collect(),
            written: plan.tarballs.iter().map(|_| AtomicU64::new(0)).collect(),
            sizes,
            started: Instant::now(),
        })
    }

    /// Artifact `index` (in plan order) starts being read.
    pub(crate) fn start_artifact(&self, index: usize) {
        self.current.fetch_max(index, Ordering::Relaxed);
    }

    /// Stored bytes of artifact `a` read so far.
    fn read_of(&self, a: usize) -> u64 {
        self.read[a].load(Ordering::Relaxed).min(self.sizes[a])
    }

    /// Stored bytes read over the whole run.
    pub fn input_done(&self) -> u64 {
        (0..self.sizes.len()).map(|a| self.read_of(a)).sum()
    }

    /// Stored bytes of all the run's artifacts.
    fn input_total(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Stored bytes of `artifacts` (plan indices) read so far.
    fn input_done_of(&self, artifacts: &[usize]) -> u64 {
        artifacts.iter().map(|&a| self.read_of(a)).sum()
    }

    /// Compressed bytes written, over all tarballs.
    fn written_total(&self) -> u64 {
        self.written.iter().map(|w| w.load(Ordering::Relaxed)).sum()
    }
}

/// A reader that counts what passes as artifact `index`'s bytes read.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub progress: Arc<Progress>,
    pub index: usize,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.read[self.index].fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Bars on a terminal.
    Bars,
    /// A log line every `Duration`.
    Log(Duration),
    /// Nothing shown.
    Off,
}

/// Renders until the returned handle is dropped or `finish` is called.
pub struct Renderer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Renderer {
    /// Starts showing `progress` on a task of the current runtime.
    pub fn start(progress: Arc<Progress>, plan: Arc<Plan>, display: Display) -> Renderer {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = match display {
            Display::Off => None,
            Display::Log(every) => Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => log_line(&progress, &plan),
                        _ = &mut stopped => break,
                    }
                }
            })),
            Display::Bars => Some(tokio::spawn(async move {
                let bars = Bars::new(&plan);
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        _ = tick.tick() => bars.update(&progress, &plan),
                        _ = &mut stopped => break,
                    }
                }
                bars.update(&progress, &plan);
                bars.clear();
            })),
        };
        Renderer {
            stop: Some(stop),
            task,
        }
    }

    /// Stops the display, after drawing the bars one last time.
    pub async fn finish(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

fn rate(bytes: u64, since: Instant) -> String {
    let secs = since.elapsed().as_secs_f64().max(0.001);
    format!("{}/s", human_bytes((bytes as f64 / secs) as u64))
}

fn log_line(p: &Progress, plan: &Plan) {
    let (done, total) = (p.input_done(), p.input_total());
    let pct = if total > 0 {
        done as f64 * 100.0 / total as f64
    } else {
        100.0
    };
    let i = p.current.load(Ordering::Relaxed);
    let current = plan
        .artifacts
        .get(i)
        .map(|a| a.name.file_name())
        .unwrap_or_default();
    tracing::info!(
        "progress: {pct:.0}% ({} of {} in, {} out, {}), artifact {}/{} {current}",
        human_bytes(done),
        human_bytes(total),
        human_bytes(p.written_total()),
        rate(done, p.started),
        (i + 1).min(plan.artifacts.len()),
        plan.artifacts.len()
    );
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    per_tarball: Vec<ProgressBar>,
}

impl Bars {
    fn new(plan: &Plan) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>52} [{bar:30}] {percent:>3}% {msg}")
            .expect("template")
            .progress_chars("=> ");
        let overall = multi.add(
            ProgressBar::new(1)
                .with_style(style.clone())
                .with_prefix("all input"),
        );
        let per_tarball = plan
            .tarballs
            .iter()
            .map(|t| {
                multi.add(
                    ProgressBar::new(t.input_bytes.max(1))
                        .with_style(style.clone())
                        .with_prefix(t.file_name.clone()),
                )
            })
            .collect();
        Bars {
            multi,
            overall,
            per_tarball,
        }
    }

    fn update(&self, p: &Progress, plan: &Plan) {
        let done = p.input_done();
        self.overall.set_length(p.input_total().max(1));
        self.overall.set_position(done);
        self.overall.set_message(format!(
            "{} in, {} out, {}",
            human_bytes(done),
            human_bytes(p.written_total()),
            rate(done, p.started)
        ));
        for ((bar, t), w) in self.per_tarball.iter().zip(&plan.tarballs).zip(&p.written) {
            bar.set_position(p.input_done_of(&t.artifacts));
            bar.set_message(format!("{} out", human_bytes(w.load(Ordering::Relaxed))));
        }
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}
