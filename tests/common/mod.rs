//! Shared helpers for the end-to-end tests: run the binary, generate runs,
//! and ask the independent Python oracle (tests/tools/trees.py).
#![allow(dead_code)]

pub mod bad_run;
pub mod golden;
pub mod tar_listing;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rockpack::fixtures::{self, FixtureSpec, Layout};

pub fn rockpack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rockpack"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run rockpack")
}

/// Runs rockpack and panics with its stderr unless it succeeds.
pub fn rockpack_ok(args: &[&str]) -> Output {
    let out = rockpack(args);
    assert!(
        out.status.success(),
        "rockpack {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `child` until it exits; after `limit` it is killed and reaped, and
/// the answer is None.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` with stdin empty and stdout and stderr going to files (so no
/// pipe can fill up), for at most `limit`. On timeout it is killed, and the
/// error is its stderr so far.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let logs = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let status = wait_within(&mut child, limit);
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout: std::fs::read(&out_path).expect("read stdout"),
            stderr,
        }),
        None => Err(String::from_utf8_lossy(&stderr).into_owned()),
    }
}

/// A child's stderr as text.
/// A rockpack child with its stderr read on a thread of its own (so a
/// chatty child never blocks on a full pipe).
pub struct Running {
    pub child: Child,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    /// Starts `cmd` with stderr piped and stdout discarded.
    pub fn start(cmd: &mut Command) -> Running {
        use std::io::Read;
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rockpack");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        Running { child, stderr }
    }

    /// Waits until `cond` holds; panics if the child exits first or
    /// `limit` passes.
    pub fn wait_until(&mut self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rockpack exited ({status}) before {what}");
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("no {what} within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the child to end (at most `limit`): its status and stderr.
    pub fn finish(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let status = wait_within(&mut self.child, limit)
            .unwrap_or_else(|| panic!("rockpack did not end within {limit:?}"));
        (status, self.stderr.join().unwrap())
    }

    /// Sends `signal` (`TERM`, `INT`); the child must exit with 1 within
    /// 30 s, saying it was interrupted by `name` (`SIGTERM`, `Ctrl-C`).
    /// Returns its stderr.
    pub fn interrupt(mut self, signal: &str, name: &str) -> String {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success());
        let limit = Duration::from_secs(60);
        let status = wait_within(&mut self.child, limit)
            .unwrap_or_else(|| panic!("rockpack did not exit within {limit:?} of {name}"));
        let stderr = self.stderr.join().unwrap();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "took {:?} to stop",
            sent.elapsed()
        );
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        stderr
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn generate(layout: Layout, families: &[&str], dir: &Path) {
    let spec = FixtureSpec {
        layout,
        families: families.iter().map(|s| s.to_string()).collect(),
        seed: 7,
        large_bytes: 0,
        sidecars: true,
        windows: false,
    };
    fixtures::generate(&spec, dir).expect("generate fixtures");
}

/// A run generated once for the test binary `binary`, kept under the
/// target's temp dir.
pub fn cached_run(binary: &str, name: &str, spec: FixtureSpec) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(binary)
        .join(name);
    let done = dir.join(".complete");
    if !done.exists() {
        // Tests run as processes of their own: each generates aside and
        // the first to finish puts its copy in place.
        let aside = dir.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&aside);
        fixtures::generate(&spec, &aside).expect("generate fixture run");
        std::fs::write(aside.join(".complete"), b"").unwrap();
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::rename(&aside, &dir);
        }
        let _ = std::fs::remove_dir_all(&aside);
    }
    dir
}

pub fn tool(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tools")
        .join(name)
}

/// Runs the oracle; panics with its message on failure.
pub fn trees(args: &[&str]) {
    let out = Command::new("python3")
        .arg(tool("trees.py"))
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "trees.py {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file name in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

/// The `.tar.gz` files in `dir`, sorted.
pub fn gz_tarballs_in(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|f| f.ends_with(".tar.gz"))
        .collect()
}

/// The `tarball_urls` output rockpack wrote to a `$GITHUB_OUTPUT` file.
pub fn tarball_urls(github_output: &Path) -> serde_json::Value {
    let gh = std::fs::read_to_string(github_output).unwrap();
    let line = gh
        .lines()
        .find(|l| l.starts_with("tarball_urls="))
        .expect("tarball_urls output");
    serde_json::from_str(&line["tarball_urls=".len()..]).unwrap()
}

/// Every file in `dir` with its bytes, sorted by name.
pub fn dir_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_in(dir)
        .into_iter()
        .map(|f| {
            let data = std::fs::read(dir.join(&f)).unwrap();
            (f, data)
        })
        .collect()
}

/// The plan as JSON, parsed.
pub fn plan_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["plan", "--json"];
    all.extend_from_slice(args);
    let out = rockpack_ok(&all);
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

/// (tarball file name, artifact paths in plan order) for each planned tarball.
pub fn planned(plan: &serde_json::Value, source: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let arts = plan["artifacts"].as_array().unwrap();
    plan["tarballs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let paths = t["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| source.join(arts[i.as_u64().unwrap() as usize]["key"].as_str().unwrap()))
                .collect();
            (t["file_name"].as_str().unwrap().to_string(), paths)
        })
        .collect()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
