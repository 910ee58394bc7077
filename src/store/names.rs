//! Tarball names as a store holds them: which objects at a prefix are
//! tarballs (and which their sidecars), the label and variant their names
//! carry (TheRock's `therock-dist-{platform}-{label}[-tests]-{version}`, and
//! `therock-dist-{bundle}-{platform}-…` for the bundles its HPC release
//! model adds beside the core one, e.g. `core+hpc`),
//! what `--only` picks among them and what `--rename` makes of them.

use super::versions::VersionPromotion;
use crate::error::{Error, Result};
use crate::plan::{tarball_key, Format};

/// Sidecar suffixes a tarball may have beside it, in preference order.
pub const SIDECAR_SUFFIXES: [&str; 2] = [".sha256sum", ".sha256"];

/// A tarball found in a store, as its name describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarballName {
    /// The object's name below the prefix.
    pub file_name: String,
    /// Its compression, from the extension.
    pub format: Format,
    /// The family, target or group its name carries (the whole name
    /// without extension when it is not named as TheRock names tarballs).
    pub label: String,
    /// `tests` for a `-tests` tarball.
    pub variant: Option<String>,
    /// The bundle a name carries before its platform (`core+hpc` of
    /// `therock-dist-core+hpc-linux-…`); `None` for the core tarballs.
    pub bundle: Option<String>,
}

impl TarballName {
    /// A tarball if `file_name` ends with a tarball extension.
    pub fn parse(file_name: &str) -> Option<TarballName> {
        let (format, stem) = Format::ALL.into_iter().find_map(|f| {
            file_name
                .strip_suffix(f.extension())
                .and_then(|s| s.strip_suffix('.'))
                .filter(|s| !s.is_empty())
                .map(|s| (f, s))
        })?;
        let (bundle, key) = match therock_key(stem) {
            Some((bundle, key)) => (bundle, key),
            None => (None, stem),
        };
        let (label, variant) = match key.strip_suffix("-tests") {
            Some(label) if !label.is_empty() => (label, Some("tests".to_string())),
            _ => (key, None),
        };
        Some(TarballName {
            file_name: file_name.to_string(),
            format,
            label: label.to_string(),
            variant,
            bundle: bundle.map(str::to_string),
        })
    }

    /// `{label}` or `{label}-{variant}`, as CI outputs key it; a bundle's
    /// tarball is keyed `{bundle}-…` (beside the core one of its label).
    pub fn key(&self) -> String {
        let key = tarball_key(&self.label, self.variant.as_deref());
        match &self.bundle {
            Some(b) => format!("{b}-{key}"),
            None => key,
        }
    }

    /// Whether `--only name` picks it: its key or its name, or its label
    /// (the label alone picks the core tarball, not a bundle's).
    pub fn named_by(&self, name: &str) -> bool {
        (self.bundle.is_none() && name == self.label)
            || name == self.key()
            || name == self.file_name
    }
}

/// The platforms TheRock names tarballs for.
const PLATFORMS: [&str; 2] = ["linux", "windows"];

/// The bundle, if any, and `{label}[-tests]` of
/// `therock-dist-[{bundle}-]{platform}-{label}[-tests]-{version}` (the
/// version's first character is a digit). A first part that is not a
/// platform, followed by one that is, is a bundle; otherwise the first part
/// is the platform, whatever it says.
fn therock_key(stem: &str) -> Option<(Option<&str>, &str)> {
    let rest = stem.strip_prefix("therock-dist-")?;
    let (first, after) = rest.split_once('-')?;
    let (bundle, rest) = match after.split_once('-') {
        Some((platform, rest)) if !PLATFORMS.contains(&first) && PLATFORMS.contains(&platform) => {
            (Some(first), rest)
        }
        _ => (None, after),
    };
    let (key, version) = rest.rsplit_once('-')?;
    (version.starts_with(|c: char| c.is_ascii_digit()) && !key.is_empty()).then_some((bundle, key))
}

/// What `--rename OLD=NEW` pairs do to names: every `-`-separated part of a
/// name's stem that equals an OLD becomes its NEW (`7.13.0rc1=7.13.0` turns
/// `…-gfx110X-all-7.13.0rc1.tar.gz` into `…-gfx110X-all-7.13.0.tar.gz`).
/// A version promotion (`--src-version-type`, `--dest-version`) then
/// rewrites the version of every name TheRock's way.
#[derive(Clone, Debug, Default)]
pub struct Renames {
    pairs: Vec<(String, String)>,
    version: Option<VersionPromotion>,
}

impl Renames {
    /// Parses `OLD=NEW` pairs; neither side may be empty or hold `/` or `-`.
    pub fn parse(pairs: &[String]) -> Result<Renames> {
        let pairs = pairs
            .iter()
            .map(|p| {
                let (old, new) = p
                    .split_once('=')
                    .ok_or_else(|| Error::Usage(format!("--rename {p:?}: expected OLD=NEW")))?;
                for side in [old, new] {
                    let why = crate::plan::name_part::refusal(side).or_else(|| {
                        side.contains('-').then(|| format!("{side:?} holds '-'"))
                    });
                    if let Some(why) = why {
                        return Err(Error::Usage(format!(
                            "--rename {p:?}: each side is one part of a name (a version such as 7.13.0rc1): {why}"
                        )));
                    }
                }
                Ok((old.to_string(), new.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Renames {
            pairs,
            version: None,
        })
    }

    /// The same, then `version` applied to every TheRock-named tarball.
    pub fn with_version(mut self, version: Option<VersionPromotion>) -> Renames {
        self.version = version;
        self
    }

    /// Whether nothing renames.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.version.is_none()
    }

    /// `name` with every part an OLD renamed; a tarball's extension (and a
    /// sidecar's after it) is kept as it is.
    pub fn apply(&self, name: &str) -> String {
        if self.is_empty() {
            return name.to_string();
        }
        let (stem, ext) = split_extension(name);
        let parts: Vec<&str> = stem
            .split('-')
            .map(|part| {
                self.pairs
                    .iter()
                    .find(|(old, _)| old == part)
                    .map_or(part, |(_, new)| new.as_str())
            })
            .collect();
        let stem = parts.join("-");
        let stem = match &self.version {
            Some(v) if therock_key(&stem).is_some() => match stem.rsplit_once('-') {
                Some((head, version)) => match v.apply(version) {
                    Some(new) => format!("{head}-{new}"),
                    None => stem,
                },
                None => stem,
            },
            _ => stem,
        };
        format!("{stem}{ext}")
    }

    /// The OLD sides that change none of `names` (most likely typos), and
    /// `--dest-version` when the promotion changes none of them.
    pub fn unused<'a>(&'a self, names: &[&str]) -> Vec<&'a str> {
        let mut unused: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(old, _)| {
                !names
                    .iter()
                    .any(|n| split_extension(n).0.split('-').any(|p| p == old))
            })
            .map(|(old, _)| old.as_str())
            .collect();
        if self.version.is_some() {
            let only_version = Renames {
                pairs: Vec::new(),
                version: self.version.clone(),
            };
            if names.iter().all(|n| only_version.apply(n) == *n) {
                unused.push("--dest-version");
            }
        }
        unused
    }
}

/// A name's stem and its tarball (and sidecar) extension: the first
/// `.tar.`, or a `.zip` that ends the name or is followed by a sidecar's
/// extension, and what follows; the whole name when it has none.
fn split_extension(name: &str) -> (&str, &str) {
    if let Some(i) = name.find(".tar.") {
        return name.split_at(i);
    }
    let zip = name.match_indices(".zip").map(|(i, _)| i).find(|&i| {
        let rest = &name[i + 4..];
        rest.is_empty() || rest.starts_with('.')
    });
    match zip {
        Some(i) => name.split_at(i),
        None => (name, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn therock_names_give_label_and_variant() {
        let t =
            TarballName::parse("therock-dist-linux-gfx94X-dcgpu-tests-7.13.0rc1.tar.gz").unwrap();
        assert_eq!(t.format, Format::Gzip);
        assert_eq!(
            (t.label.as_str(), t.variant.as_deref()),
            ("gfx94X-dcgpu", Some("tests"))
        );
        assert_eq!(t.key(), "gfx94X-dcgpu-tests");
        assert!(t.named_by("gfx94X-dcgpu") && t.named_by("gfx94X-dcgpu-tests"));
        assert!(!t.named_by("gfx94X"));
        let m =
            TarballName::parse("therock-dist-windows-multiarch-7.13.0a20260501.tar.zst").unwrap();
        assert_eq!((m.label.as_str(), m.variant), ("multiarch", None));
        assert_eq!(m.format, Format::Zstd);
        // A bundle of TheRock's HPC release model beside the core tarball
        // of the same family: the family alone picks the core one.
        let h = TarballName::parse("therock-dist-core+hpc-linux-gfx94X-dcgpu-tests-7.13.0.tar.gz")
            .unwrap();
        assert_eq!(
            (h.bundle.as_deref(), h.label.as_str(), h.variant.as_deref()),
            (Some("core+hpc"), "gfx94X-dcgpu", Some("tests"))
        );
        assert_eq!(h.key(), "core+hpc-gfx94X-dcgpu-tests");
        assert!(h.named_by("core+hpc-gfx94X-dcgpu-tests"));
        assert!(!h.named_by("gfx94X-dcgpu") && !h.named_by("gfx94X-dcgpu-tests"));
        assert!(t.bundle.is_none());
        // A platform TheRock does not name is still the platform.
        let x = TarballName::parse("therock-dist-macos-gfx942-1.0.tar.gz").unwrap();
        assert_eq!((x.bundle, x.label.as_str()), (None, "gfx942"));
        // Another shape: the whole stem is its label.
        let o = TarballName::parse("my-build-gfx942.tar.gz").unwrap();
        assert_eq!(o.label, "my-build-gfx942");
        for not in [
            "x.tar.gz.sha256sum",
            "x.tar.xz",
            ".tar.gz",
            "index.html",
            "tar.gz",
        ] {
            assert_eq!(TarballName::parse(not), None, "{not}");
        }
    }

    #[test]
    fn renames_change_whole_parts_only() {
        let r = Renames::parse(&["7.13.0rc1=7.13.0".into()]).unwrap();
        assert_eq!(
            r.apply("therock-dist-linux-gfx110X-all-7.13.0rc1.tar.gz"),
            "therock-dist-linux-gfx110X-all-7.13.0.tar.gz"
        );
        assert_eq!(
            r.apply("therock-dist-linux-gfx110X-all-7.13.0rc1.tar.gz.sha256sum"),
            "therock-dist-linux-gfx110X-all-7.13.0.tar.gz.sha256sum"
        );
        // A nightly promoted to a release candidate, TheRock's way.
        let v = Renames::default()
            .with_version(VersionPromotion::parse(Some("a"), Some("rc1")).unwrap());
        assert_eq!(
            v.apply("therock-dist-core+hpc-linux-gfx94X-dcgpu-7.13.0a20260430.tar.gz.sha256sum"),
            "therock-dist-core+hpc-linux-gfx94X-dcgpu-7.13.0rc1.tar.gz.sha256sum"
        );
        // Only TheRock's names have a version to promote.
        assert_eq!(
            v.apply("my-build-7.13.0a20260430.tar.gz"),
            "my-build-7.13.0a20260430.tar.gz"
        );
        assert_eq!(
            v.unused(&["therock-dist-linux-gfx942-7.13.0rc2.tar.gz"]),
            ["--dest-version"]
        );
        // ZIP archives (and their sidecars) likewise.
        assert_eq!(
            r.apply("therock-dist-windows-gfx1151-7.13.0rc1.zip.sha256sum"),
            "therock-dist-windows-gfx1151-7.13.0.zip.sha256sum"
        );
        assert_eq!(
            v.apply("therock-dist-windows-multiarch-7.13.0a20260430.zip"),
            "therock-dist-windows-multiarch-7.13.0rc1.zip"
        );
        let z = TarballName::parse("therock-dist-windows-gfx1151-7.13.0.zip").unwrap();
        assert_eq!(z.format, Format::Zip);
        // Not a part of its own: left alone.
        assert_eq!(r.apply("x-7.13.0rc12.tar.gz"), "x-7.13.0rc12.tar.gz");
        assert_eq!(r.unused(&["x-7.13.0rc12.tar.gz"]), vec!["7.13.0rc1"]);
        assert!(r.unused(&["a-7.13.0rc1.tar.zst"]).is_empty());
        for bad in ["7.13.0rc1", "=7", "7=", "a-b=c", "a=b/c"] {
            assert!(Renames::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
