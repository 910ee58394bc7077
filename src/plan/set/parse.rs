//! Reading a set file: TOML, checked key by key, every error naming the
//! file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::{check_template, Cover, Entry, Group, Origin, Sidecar, TarballSet, TarballSpec};
use crate::error::{Error, Result};
use crate::plan::artifact::COMPONENTS;
use crate::plan::exclude::ExcludePaths;
use crate::plan::{name_part, FamilyTable, Format};

type Names = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    #[serde(default)]
    groups: BTreeMap<Spanned<String>, Names>,
    #[serde(default)]
    tarball: Vec<Spanned<RawTarball>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarball {
    name: Spanned<String>,
    each: Option<Names>,
    union: Option<Names>,
    each_target: Option<Names>,
    label: Option<Spanned<String>>,
    variant: Option<Spanned<String>>,
    generic: Option<bool>,
    components: Option<Names>,
    exclude_components: Option<Names>,
    artifacts: Option<Names>,
    exclude_artifacts: Option<Names>,
    exclude_paths: Option<Names>,
    formats: Option<Names>,
    sidecar: Option<Spanned<String>>,
}

/// Byte offsets to lines, and errors that carry them.
struct Source<'a> {
    file: Arc<str>,
    text: &'a str,
}

impl Source<'_> {
    fn origin(&self, span: Range<usize>) -> Origin {
        let at = span.start.min(self.text.len());
        Origin::Line {
            file: self.file.clone(),
            line: self.text[..at].matches('\n').count() + 1,
        }
    }

    fn err(&self, span: Range<usize>, msg: impl fmt::Display) -> Error {
        Error::Usage(format!("{}: {msg}", self.origin(span)))
    }

    fn entries(&self, names: &Names) -> Vec<Entry> {
        names
            .get_ref()
            .iter()
            .map(|n| Entry {
                name: n.get_ref().trim().to_string(),
                origin: self.origin(n.span()),
            })
            .collect()
    }

    /// A list of plain words (component, artifact names): non-empty, each
    /// allowed by `check`.
    fn words(
        &self,
        key: &str,
        names: &Option<Names>,
        check: impl Fn(&str) -> std::result::Result<(), String>,
    ) -> Result<Option<Vec<String>>> {
        let Some(names) = names else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for n in names.get_ref() {
            let w = n.get_ref().trim();
            if w.is_empty() {
                return Err(self.err(n.span(), format!("{key}: an empty name")));
            }
            check(w).map_err(|why| self.err(n.span(), format!("{key}: {why}")))?;
            out.push(w.to_string());
        }
        Ok(Some(out))
    }
}

impl TarballSet {
    /// Reads a set file's text; `file` names it in messages. Every name an
    /// entry or group uses must be a group, or a family or target of
    /// `table`.
    pub fn parse(text: &str, file: &str, table: &FamilyTable) -> Result<TarballSet> {
        let src = Source {
            file: Arc::from(file),
            text,
        };
        let raw: RawSet = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            match e.span() {
                Some(span) => src.err(span, msg),
                None => Error::Usage(format!("{file}: {msg}")),
            }
        })?;
        let mut groups = Vec::new();
        for (name, members) in &raw.groups {
            let n = name.get_ref().trim();
            if n.is_empty() {
                return Err(src.err(name.span(), "a group needs a name"));
            }
            // A group is the {label} of the tarballs an `each` makes of it.
            if let Some(why) = name_part::refusal(n) {
                return Err(src.err(
                    name.span(),
                    format!("group name: not a part of a tarball name: {why}"),
                ));
            }
            if table.targets_of(n).is_some() {
                return Err(src.err(
                    name.span(),
                    format!(
                        "group {n:?} has the name of a family or target of {}",
                        table.origin()
                    ),
                ));
            }
            groups.push(Group {
                name: n.to_string(),
                members: src.entries(members),
                origin: src.origin(name.span()),
            });
        }
        // Groups are BTreeMap-sorted by name; keep file order for messages.
        groups.sort_by_key(|g| match &g.origin {
            Origin::Line { line, .. } => *line,
            Origin::Flag(_) => 0,
        });
        let mut set = TarballSet {
            groups,
            tarballs: Vec::new(),
            lenient: false,
        };
        for g in &set.groups {
            check_group(&set, g, &mut vec![g.name.as_str()])?;
            for m in &g.members {
                check_entry(&set, m, table)?;
            }
        }
        if raw.tarball.is_empty() {
            return Err(Error::Usage(format!(
                "{file}: no [[tarball]] table: a set needs at least one"
            )));
        }
        for t in &raw.tarball {
            let spec = tarball(&src, t)?;
            for e in spec.cover.entries() {
                check_entry(&set, e, table)?;
            }
            set.tarballs.push(spec);
        }
        Ok(set)
    }
}

fn tarball(src: &Source<'_>, t: &Spanned<RawTarball>) -> Result<TarballSpec> {
    let at = t.span();
    let r = t.get_ref();
    check_template(r.name.get_ref()).map_err(|e| src.err(r.name.span(), e))?;
    let cover = match (&r.each, &r.union, &r.each_target) {
        (Some(e), None, None) => Cover::Each(src.entries(e)),
        (None, Some(u), None) => {
            let label = r.label.as_ref().ok_or_else(|| {
                src.err(
                    u.span(),
                    "a union needs a label (label = \"...\"): it is the tarball's {label}",
                )
            })?;
            let l = label.get_ref().trim();
            if let Some(why) = name_part::refusal(l) {
                return Err(src.err(
                    label.span(),
                    format!("label: not a part of a tarball name: {why}"),
                ));
            }
            Cover::Union {
                label: l.to_string(),
                entries: src.entries(u),
            }
        }
        (None, None, Some(e)) => Cover::EachTarget(src.entries(e)),
        (None, None, None) => {
            return Err(src.err(
                at,
                "a [[tarball]] needs each = [...], union = [...] or each-target = [...]",
            ))
        }
        _ => {
            return Err(src.err(
                at,
                "each, union and each-target exclude each other: one tarball per entry, one for all, or one per target",
            ))
        }
    };
    if let (Some(label), false) = (&r.label, matches!(cover, Cover::Union { .. })) {
        return Err(src.err(
            label.span(),
            "label is for a union: with each/each-target, {label} is the entry",
        ));
    }
    for (key, list) in [
        ("each", &r.each),
        ("union", &r.union),
        ("each-target", &r.each_target),
    ] {
        if let Some(l) = list {
            if l.get_ref().is_empty() {
                return Err(src.err(l.span(), format!("{key} is empty: it covers nothing")));
            }
        }
    }
    let component = |c: &str| {
        if COMPONENTS.contains(&c) {
            Ok(())
        } else {
            Err(format!(
                "unknown component {c:?}; components are {}",
                COMPONENTS.join(", ")
            ))
        }
    };
    let artifact = |a: &str| {
        if a.contains(['_', '/']) {
            Err(format!(
                "{a:?} is not an artifact name (the part of the file name before the first '_')"
            ))
        } else {
            Ok(())
        }
    };
    // Patterns are kept as written (a leading space is part of a gitignore
    // pattern), each checked on its own line.
    let mut exclude_paths = Vec::new();
    for p in r.exclude_paths.iter().flat_map(|l| l.get_ref()) {
        ExcludePaths::new(std::slice::from_ref(p.get_ref())).map_err(|e| src.err(p.span(), e))?;
        exclude_paths.push(p.get_ref().clone());
    }
    let formats = match &r.formats {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for f in list.get_ref() {
                let format = Format::parse(f.get_ref()).ok_or_else(|| {
                    src.err(
                        f.span(),
                        format!("unknown format {:?}; formats are gz, zst, zip", f.get_ref()),
                    )
                })?;
                if out.contains(&format) {
                    return Err(src.err(f.span(), format!("format {:?} listed twice", f.get_ref())));
                }
                out.push(format);
            }
            if out.is_empty() {
                return Err(src.err(
                    list.span(),
                    "formats is empty: the tarball would not be built",
                ));
            }
            Some(out)
        }
    };
    let sidecar = match &r.sidecar {
        None => Sidecar::Sha256sum,
        Some(s) => Sidecar::parse(s.get_ref()).ok_or_else(|| {
            src.err(
                s.span(),
                format!(
                    "unknown sidecar {:?}; sidecars are {}",
                    s.get_ref(),
                    Sidecar::ALL.map(Sidecar::name).join(", ")
                ),
            )
        })?,
    };
    let variant = match &r.variant {
        None => None,
        Some(v) => {
            let w = v.get_ref().trim();
            if w.is_empty() || w.contains(['/', '\\']) || w.chars().any(char::is_whitespace) {
                return Err(src.err(v.span(), format!("variant {w:?}: one word, no '/'")));
            }
            Some(w.to_string())
        }
    };
    Ok(TarballSpec {
        origin: src.origin(at),
        name: r.name.get_ref().clone(),
        variant,
        cover,
        generic: r.generic.unwrap_or(true),
        components: src.words("components", &r.components, component)?,
        exclude_components: src
            .words("exclude-components", &r.exclude_components, component)?
            .unwrap_or_default(),
        artifacts: src.words("artifacts", &r.artifacts, artifact)?,
        exclude_artifacts: src
            .words("exclude-artifacts", &r.exclude_artifacts, artifact)?
            .unwrap_or_default(),
        exclude_paths,
        formats,
        sidecar,
    })
}

/// An entry must be a group, a family or a target of the table.
fn check_entry(set: &TarballSet, e: &Entry, table: &FamilyTable) -> Result<()> {
    if e.name.is_empty() {
        return Err(Error::Usage(format!("{}: an empty name", e.origin)));
    }
    if set.knows(&e.name, table) {
        return Ok(());
    }
    let groups: Vec<&str> = set.groups.iter().map(|g| g.name.as_str()).collect();
    Err(Error::Usage(format!(
        "{}: {:?} is not a group of this file ({}) nor a family or target of {}; families: {}",
        e.origin,
        e.name,
        if groups.is_empty() {
            "it has none".to_string()
        } else {
            groups.join(", ")
        },
        table.origin(),
        table
            .family_names()
            .filter(|f| !table.is_target(f))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// A group may not include itself, directly or through other groups.
fn check_group<'a>(set: &'a TarballSet, g: &'a Group, path: &mut Vec<&'a str>) -> Result<()> {
    for m in &g.members {
        if let Some(inner) = set.group(&m.name) {
            if path.contains(&inner.name.as_str()) {
                path.push(&inner.name);
                return Err(Error::Usage(format!(
                    "{}: group {:?} includes itself ({})",
                    m.origin,
                    path[0],
                    path.join(" → ")
                )));
            }
            path.push(&inner.name);
            check_group(set, inner, path)?;
            path.pop();
        }
    }
    Ok(())
}
