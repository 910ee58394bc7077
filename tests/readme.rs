//! The README's CLI reference is clap's own help text, and its scale table
//! is the budget's. These tests keep them in sync; `ROCKPACK_BLESS=1 cargo
//! test --test readme -- --test-threads=1` rewrites them.

use std::process::Command;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// Each block: `<!-- help: ARGS -->`, a ```text fence with the output of
/// `rockpack ARGS`, and `<!-- /help -->`.
fn help(args: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rockpack"))
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(out.status.success(), "rockpack {args}");
    String::from_utf8(out.stdout).unwrap()
}

/// The scale table between `<!-- scale-table -->` and `<!-- /scale-table -->`
/// is what `budget::scale_table` computes (blessed like the help blocks).
#[test]
fn scale_table_is_the_budgets() {
    let text = std::fs::read_to_string(README).unwrap();
    let (open, close) = ("<!-- scale-table -->\n", "<!-- /scale-table -->");
    let start = text.find(open).expect("README has a scale table") + open.len();
    let end = start + text[start..].find(close).expect("the scale table closes");
    let want = rockpack::pipeline::budget::scale_table();
    if text[start..end] == want {
        return;
    }
    if std::env::var_os("ROCKPACK_BLESS").is_some() {
        let out = format!("{}{want}{}", &text[..start], &text[end..]);
        std::fs::write(README, out).unwrap();
        return;
    }
    panic!("README's scale table is out of date; run ROCKPACK_BLESS=1 cargo test --test readme -- --test-threads=1");
}

#[test]
fn cli_reference_matches_help() {
    let text = std::fs::read_to_string(README).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut blocks = 0;
    let mut stale = Vec::new();
    while let Some(at) = rest.find("<!-- help: ") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let args_end = from.find(" -->").expect("help marker closes");
        let args = &from["<!-- help: ".len()..args_end];
        let end = from.find("<!-- /help -->").expect("help block closes");
        let want = format!("<!-- help: {args} -->\n```text\n{}```\n", help(args));
        if from[..end] != want {
            stale.push(args.to_string());
        }
        out.push_str(&want);
        rest = &from[end..];
        blocks += 1;
    }
    out.push_str(rest);
    assert!(blocks >= 4, "README has {blocks} help blocks");
    if std::env::var_os("ROCKPACK_BLESS").is_some() {
        std::fs::write(README, out).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "README help blocks out of date: {stale:?}; run ROCKPACK_BLESS=1 cargo test --test readme -- --test-threads=1"
    );
}
