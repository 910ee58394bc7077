//! Writing a set back as a set file (`plan --print-set`), so users start
//! from what their command line means.

use std::fmt::Write as _;

use super::{Cover, Entry, Sidecar, TarballSet};

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quote).collect();
    format!("[{}]", items.join(", "))
}

fn names(entries: &[Entry]) -> String {
    list(entries.iter().map(|e| e.name.as_str()))
}

impl TarballSet {
    /// The set as a TOML set file that [`TarballSet::parse`] reads back to
    /// the same set; `comment` opens it (one `# ` line per line).
    pub fn to_toml(&self, comment: &str) -> String {
        let mut s = String::new();
        for line in comment.lines() {
            let _ = writeln!(s, "# {line}");
        }
        if !self.groups.is_empty() {
            s.push_str("\n[groups]\n");
            for g in &self.groups {
                let _ = writeln!(s, "{} = {}", quote(&g.name), names(&g.members));
            }
        }
        for t in &self.tarballs {
            s.push_str("\n[[tarball]]\n");
            let _ = writeln!(s, "name = {}", quote(&t.name));
            if let Some(v) = &t.variant {
                let _ = writeln!(s, "variant = {}", quote(v));
            }
            match &t.cover {
                Cover::Each(e) => {
                    let _ = writeln!(s, "each = {}", names(e));
                }
                Cover::Union { label, entries } => {
                    let _ = writeln!(s, "union = {}", names(entries));
                    let _ = writeln!(s, "label = {}", quote(label));
                }
                Cover::EachTarget(e) => {
                    let _ = writeln!(s, "each-target = {}", names(e));
                }
            }
            if !t.generic {
                s.push_str("generic = false\n");
            }
            let lists: [(&str, Option<&Vec<String>>); 5] = [
                ("components", t.components.as_ref()),
                ("exclude-components", Some(&t.exclude_components)),
                ("artifacts", t.artifacts.as_ref()),
                ("exclude-artifacts", Some(&t.exclude_artifacts)),
                ("exclude-paths", Some(&t.exclude_paths)),
            ];
            for (key, value) in lists {
                match value {
                    Some(v) if !v.is_empty() || key == "components" || key == "artifacts" => {
                        let _ = writeln!(s, "{key} = {}", list(v.iter().map(String::as_str)));
                    }
                    _ => {}
                }
            }
            if let Some(f) = &t.formats {
                let _ = writeln!(s, "formats = {}", list(f.iter().map(|f| f.name())));
            }
            if t.sidecar != Sidecar::Sha256sum {
                let _ = writeln!(s, "sidecar = {}", quote(t.sidecar.name()));
            }
        }
        s
    }
}
