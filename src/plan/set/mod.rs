//! Tarball sets: which tarballs a run builds, described as data.
//!
//! A set is a list of tarball kinds (`[[tarball]]` tables of a TOML file),
//! each with what it covers (families, targets, named groups; one tarball
//! per entry, per target, or one for all), what it leaves out (components,
//! artifacts, paths), its name template, formats and sidecar. The command
//! line's selection flags are one such set ([`super::preset`]); a file is
//! read by [`TarballSet::parse`] and printed back by [`TarballSet::to_toml`].

mod parse;
mod print;

use std::fmt;
use std::sync::Arc;

use super::{FamilyTable, Format};

/// Where a part of a set comes from, for messages: a line of a set file,
/// or a flag of the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line (1-based) of a set file.
    Line {
        /// The file as the user named it.
        file: Arc<str>,
        /// 1-based.
        line: usize,
    },
    /// A command-line flag (`--families`, `--targets`, `--per-target`).
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line { file, line } => write!(f, "{file}:{line}"),
            Origin::Flag(flag) => write!(f, "{flag}"),
        }
    }
}

/// A name in `each`, `union`, `each-target` or a group: a family, a target
/// or a group.
#[derive(Clone, Debug)]
pub struct Entry {
    /// As written.
    pub name: String,
    /// Where it was written.
    pub origin: Origin,
}

/// A named group of entries (`[groups]`).
#[derive(Clone, Debug)]
pub struct Group {
    /// The group's name, usable as an entry.
    pub name: String,
    /// Families, targets or other groups.
    pub members: Vec<Entry>,
    /// Where it was defined.
    pub origin: Origin,
}

/// What one `[[tarball]]` table covers.
#[derive(Clone, Debug)]
pub enum Cover {
    /// One tarball per entry; `{label}` is the entry.
    Each(Vec<Entry>),
    /// One tarball for all entries together, named by `label`.
    Union {
        /// `{label}` of the tarball.
        label: String,
        /// What it covers.
        entries: Vec<Entry>,
    },
    /// One tarball per single target of the entries that the run has
    /// device code for; `{label}` is the target.
    EachTarget(Vec<Entry>),
}

impl Cover {
    /// The entries, whichever the kind.
    pub fn entries(&self) -> &[Entry] {
        match self {
            Cover::Each(e) | Cover::EachTarget(e) => e,
            Cover::Union { entries, .. } => entries,
        }
    }
}

/// The checksum file published next to a tarball.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sidecar {
    /// `NAME.sha256sum` (TheRock's).
    Sha256sum,
    /// `NAME.sha256` (RFC0013's draft).
    Sha256,
    /// None.
    None,
}

impl Sidecar {
    /// Every kind, in the order messages list them.
    pub const ALL: [Sidecar; 3] = [Sidecar::Sha256sum, Sidecar::Sha256, Sidecar::None];

    /// Parses a set file's `sidecar` value.
    pub fn parse(s: &str) -> Option<Sidecar> {
        Sidecar::ALL.into_iter().find(|k| k.name() == s)
    }

    /// As a set file writes it.
    pub fn name(self) -> &'static str {
        match self {
            Sidecar::Sha256sum => "sha256sum",
            Sidecar::Sha256 => "sha256",
            Sidecar::None => "none",
        }
    }

    /// The sidecar's file name for the tarball `file_name`, if any. Both
    /// kinds hold `<hex>  <name>`, as sha256sum writes it.
    pub fn file_name(self, file_name: &str) -> Option<String> {
        match self {
            Sidecar::None => None,
            kind => Some(format!("{file_name}.{}", kind.name())),
        }
    }
}

/// One `[[tarball]]` table: a kind of tarball.
#[derive(Clone, Debug)]
pub struct TarballSpec {
    /// Where the table starts.
    pub origin: Origin,
    /// The name template: `{label}`, `{version}`, `{platform}`; the
    /// format's extension is appended.
    pub name: String,
    /// A short word for this kind (`tests`), so that `--only {label}-{variant}`
    /// names it and CI outputs key it.
    pub variant: Option<String>,
    /// What it covers.
    pub cover: Cover,
    /// Whether generic artifacts are in (false: an overlay).
    pub generic: bool,
    /// Only these components, when given.
    pub components: Option<Vec<String>>,
    /// Components left out.
    pub exclude_components: Vec<String>,
    /// Only these artifact names, when given.
    pub artifacts: Option<Vec<String>>,
    /// Artifact names left out.
    pub exclude_artifacts: Vec<String>,
    /// gitignore-style patterns of flattened paths left out.
    pub exclude_paths: Vec<String>,
    /// Its formats; `None`: the run's default (`--format`).
    pub formats: Option<Vec<Format>>,
    /// Its checksum file.
    pub sidecar: Sidecar,
}

impl TarballSpec {
    /// Whether an artifact of this name and component passes the
    /// component and artifact filters.
    pub fn keeps(&self, name: &str, component: &str) -> bool {
        let has = |v: &[String], s: &str| v.iter().any(|x| x == s);
        self.components.as_deref().is_none_or(|c| has(c, component))
            && !has(&self.exclude_components, component)
            && self.artifacts.as_deref().is_none_or(|a| has(a, name))
            && !has(&self.exclude_artifacts, name)
    }

    /// The tarball's name for `label` (no extension).
    pub fn render_name(&self, label: &str, version: &str, platform: &str) -> String {
        render(&self.name, |field| match field {
            "label" => label,
            "version" => version,
            "platform" => platform,
            _ => unreachable!("fields are checked when the set is read"),
        })
    }
}

/// A whole set: groups and tarball kinds, in file order.
#[derive(Clone, Debug)]
pub struct TarballSet {
    /// Named groups.
    pub groups: Vec<Group>,
    /// The `[[tarball]]` tables.
    pub tarballs: Vec<TarballSpec>,
    /// Names the family table lacks stand for themselves, with a warning
    /// (the command line, as TheRock's fetch treats them); a set file
    /// refuses them.
    pub lenient: bool,
}

impl TarballSet {
    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Whether `name` may be an entry: a group of this set, or a family or
    /// target of `table`.
    pub fn knows(&self, name: &str, table: &FamilyTable) -> bool {
        self.group(name).is_some() || table.targets_of(name).is_some() || table.knows(name)
    }

    /// The entries of its tarballs that [`TarballSet::knows`] does not,
    /// each once: what a set file would refuse (the command line lets
    /// them stand for themselves).
    pub fn unknown_entries(&self, table: &FamilyTable) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in &self.tarballs {
            for e in t.cover.entries() {
                if !self.knows(&e.name, table) && !out.contains(&e.name.as_str()) {
                    out.push(&e.name);
                }
            }
        }
        out
    }
}

/// The fields a name template may use.
pub const TEMPLATE_FIELDS: &[&str] = &["label", "version", "platform"];

/// Fills `{field}`s of a checked template; `{{` and `}}` are braces.
fn render<'a>(template: &str, value: impl Fn(&str) -> &'a str) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else {
            let end = tail.find('}').expect("checked template");
            out.push_str(value(&tail[1..end]));
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Checks a name template: known fields, paired braces, no `/`.
fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    if t.is_empty() {
        return Err("the name is empty".into());
    }
    if crate::plan::name_part::refusal(t).is_some() {
        return Err(format!(
            "name {t:?}: a tarball name is a file name (no '/', '\\' or control characters, not '.' or '..')"
        ));
    }
    while let Some(i) = rest.find(['{', '}']) {
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!(
                "name {t:?}: a lone '}}' (write '}}}}' for a brace)"
            ));
        }
        let Some(end) = tail.find('}') else {
            return Err(format!("name {t:?}: '{{' without its '}}'"));
        };
        let field = &tail[1..end];
        if !TEMPLATE_FIELDS.contains(&field) {
            return Err(format!(
                "name {t:?}: unknown field {{{field}}}; the fields are {}",
                TEMPLATE_FIELDS
                    .iter()
                    .map(|f| format!("{{{f}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &tail[end + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests;
