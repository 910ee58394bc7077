//! `exclude-paths`: gitignore-style patterns on a tarball's flattened paths.
//!
//! Matching is the `ignore` crate's (ripgrep's) gitignore: `*` and `?` stay
//! inside a path component, `**` crosses them, a pattern without an inner
//! `/` matches a name at any depth, a trailing `/` matches directories only,
//! `!` re-includes. A path is decided by the last pattern that matches it,
//! else by its nearest ancestor directory that a pattern matches, so a
//! pattern that matches a directory excludes everything under it.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// A compiled list of `exclude-paths` patterns.
#[derive(Clone, Debug)]
pub struct ExcludePaths {
    matcher: Gitignore,
}

impl ExcludePaths {
    /// Compiles `patterns`; the error names the first bad one and why.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut b = GitignoreBuilder::new(".");
        for p in patterns {
            check(p)?;
            b.add_line(None, p)
                .map_err(|e| format!("exclude-paths pattern {p:?}: {e}"))?;
        }
        let matcher = b.build().map_err(|e| format!("exclude-paths: {e}"))?;
        Ok(ExcludePaths { matcher })
    }

    /// Whether the flattened `path` (relative, without `./`) is excluded;
    /// `is_dir` for a directory entry.
    pub fn excludes(&self, path: &[u8], is_dir: bool) -> bool {
        let path = trim_slashes(path);
        if path.is_empty() {
            return false;
        }
        self.matcher
            .matched_path_or_any_parents(Path::new(std::ffi::OsStr::from_bytes(path)), is_dir)
            .is_ignore()
    }
}

fn trim_slashes(mut p: &[u8]) -> &[u8] {
    while let Some(rest) = p.strip_suffix(b"/") {
        p = rest;
    }
    p
}

/// What gitignore would read differently from what the user meant.
fn check(p: &str) -> Result<(), String> {
    let why = if p.trim().is_empty() {
        "an empty pattern matches nothing"
    } else if p.starts_with('#') {
        "a line starting with # is a comment in gitignore; write \\# for a literal #"
    } else if p.contains(['{', '}']) {
        "braces are not gitignore syntax; list each pattern"
    } else if p.ends_with(' ') && !p.ends_with("\\ ") {
        "gitignore drops trailing spaces; escape the last one as \"\\ \""
    } else if p.contains(['\n', '\r']) {
        "a pattern is one line"
    } else {
        return Ok(());
    };
    Err(format!("exclude-paths pattern {p:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(patterns: &[&str], path: &str, is_dir: bool) -> bool {
        let p: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        ExcludePaths::new(&p)
            .unwrap()
            .excludes(path.as_bytes(), is_dir)
    }

    #[test]
    fn gitignore_semantics() {
        let cases: &[(&[&str], &str, bool, bool)] = &[
            // `*` stays inside a component.
            (&["bin/*-test-*"], "bin/rocblas-test-x", false, true),
            (&["bin/*-test-*"], "bin/sub/rocblas-test-x", false, false),
            // No inner slash: a name at any depth.
            (&["*.pdb"], "lib/deep/x.pdb", false, true),
            // Anchored.
            (&["/share"], "share/doc/a", false, true),
            (&["/share"], "lib/share/a", false, false),
            (&["share/doc/**"], "share/doc/a/b.html", false, true),
            (&["share/doc/**"], "share/doc", true, false),
            (&["**/test"], "a/b/test/x", false, true),
            (&["a/**/b"], "a/b", false, true),
            (&["a/**/b"], "a/x/y/b", false, true),
            // Trailing slash: directories only (a parent counts as one).
            (&["doc/"], "share/doc", false, false),
            (&["doc/"], "share/doc", true, true),
            (&["doc/"], "share/doc/x", false, true),
            // `?`, classes.
            (&["lib/lib?.so"], "lib/liba.so", false, true),
            (&["lib/lib[a-c].so"], "lib/libd.so", false, false),
            // Negation: the last match decides.
            (&["*.txt", "!keep.txt"], "a/keep.txt", false, false),
            (&["*.txt", "!keep.txt"], "a/drop.txt", false, true),
        ];
        for (patterns, path, is_dir, want) in cases {
            assert_eq!(
                ex(patterns, path, *is_dir),
                *want,
                "{patterns:?} {path} dir={is_dir}"
            );
        }
    }

    #[test]
    fn refuses_what_gitignore_would_misread() {
        for (p, needle) in [
            ("{a,b}", "braces"),
            ("#x", "comment"),
            ("", "empty"),
            ("a ", "trailing spaces"),
        ] {
            let e = ExcludePaths::new(&[p.to_string()]).unwrap_err();
            assert!(e.contains(needle), "{p:?}: {e}");
        }
    }
}
