//! Shows the pipeline's progress counters: a bar per tarball on a terminal
//! (indicatif), or a one-line log every few seconds when stderr is not a
//! terminal.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use rockpack::pipeline::progress::Progress;
use rockpack::plan::Plan;
use rockpack::units::human_bytes;

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
