//! Runs inputs through a target's harness without libFuzzer, in a normal
//! build (full backtraces, a debugger): for reproducing a finding, or for
//! seeing what a corpus does.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example replay -- artifact FILE_OR_DIR...

use std::path::PathBuf;

use rockpack_fuzz::{fuzz_artifact, fuzz_two_artifacts, Outcome};

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    let run: fn(&[u8]) -> Outcome = match target.as_str() {
        "artifact" => fuzz_artifact,
        "two_artifacts" => fuzz_two_artifacts,
        _ => {
            eprintln!("usage: replay artifact|two_artifacts FILE_OR_DIR...");
            std::process::exit(2);
        }
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for a in args {
        let p = PathBuf::from(a);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p);
        }
    }
    let (mut accepted, mut refused) = (0, 0);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        match run(&data) {
            Outcome::Accepted => {
                accepted += 1;
                println!("accepted\t{}", f.display());
            }
            Outcome::Refused(why) => {
                refused += 1;
                println!("refused\t{}\t{why}", f.display());
            }
            Outcome::Skipped => println!("skipped\t{}", f.display()),
        }
    }
    println!(
        "{} inputs: {accepted} accepted, {refused} refused",
        files.len()
    );
}
