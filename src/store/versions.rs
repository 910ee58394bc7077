//! Version promotion as TheRock's `promote_packages.py` names it:
//! `--src-version-type {rc,a}` (the prerelease to look for) and
//! `--dest-version {release,rc<N>,a<YYYYMMDD>}` (strip it, or put another in
//! its place): `7.13.0a20260430` becomes `7.13.0`, or `7.13.0rc1`.

use crate::error::{Error, Result};

/// The prerelease a promotion looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prerelease {
    /// `rc<N>`.
    Rc,
    /// `a<YYYYMMDD>` (a nightly).
    Alpha,
}

impl Prerelease {
    fn tag(self) -> &'static str {
        match self {
            Prerelease::Rc => "rc",
            Prerelease::Alpha => "a",
        }
    }
}

/// A version promotion: the prerelease to find, and what replaces it
/// (nothing, for a release).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionPromotion {
    from: Prerelease,
    to: String,
}

impl VersionPromotion {
    /// From the script's two flags; either may be left out (`rc` and
    /// `release`, the script's defaults), both: no promotion.
    pub fn parse(src: Option<&str>, dest: Option<&str>) -> Result<Option<VersionPromotion>> {
        if src.is_none() && dest.is_none() {
            return Ok(None);
        }
        let from = match src.unwrap_or("rc") {
            "rc" => Prerelease::Rc,
            "a" => Prerelease::Alpha,
            other => {
                return Err(Error::Usage(format!(
                    "--src-version-type {other}: expected rc or a"
                )))
            }
        };
        let dest = dest.unwrap_or("release");
        let to = if dest == "release" {
            String::new()
        } else if is_rc(dest) || is_alpha(dest) {
            dest.to_string()
        } else {
            return Err(Error::Usage(format!(
                "--dest-version {dest}: expected release, rc<N> (rc1) or a<YYYYMMDD> with a real date (a20260501)"
            )));
        };
        Ok(Some(VersionPromotion { from, to }))
    }

    /// `version` with its prerelease of the kind looked for replaced: the
    /// tag right after a digit, with its digits (`0a20260430` of
    /// `7.13.0a20260430`); `None` when it has none. Unlike the script's
    /// pattern, a tag that does not follow a digit (`abc` of `+abc123`) is
    /// not one.
    pub fn apply(&self, version: &str) -> Option<String> {
        let tag = self.from.tag();
        let bytes = version.as_bytes();
        let at = (1..version.len()).find(|&i| {
            bytes[i - 1].is_ascii_digit()
                && version[i..].starts_with(tag)
                && version[i + tag.len()..].starts_with(|c: char| c.is_ascii_digit())
        })?;
        let digits = version[at + tag.len()..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(version.len() - at - tag.len());
        let end = at + tag.len() + digits;
        Some(format!("{}{}{}", &version[..at], self.to, &version[end..]))
    }
}

fn is_rc(s: &str) -> bool {
    s.strip_prefix("rc")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `a<YYYYMMDD>` with a date the calendar has.
fn is_alpha(s: &str) -> bool {
    let Some(d) = s.strip_prefix('a') else {
        return false;
    };
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (y, m, day): (u32, u32, u32) = (
        d[..4].parse().unwrap_or(0),
        d[4..6].parse().unwrap_or(0),
        d[6..].parse().unwrap_or(0),
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotions_as_the_script_names_them() {
        let p = |s, d| VersionPromotion::parse(s, d).unwrap().unwrap();
        assert_eq!(
            p(Some("a"), None).apply("7.13.0a20260430").unwrap(),
            "7.13.0"
        );
        assert_eq!(
            p(Some("a"), Some("rc1")).apply("7.13.0a20260430").unwrap(),
            "7.13.0rc1"
        );
        // The defaults: rc to release.
        assert_eq!(
            p(None, None.or(Some("release")))
                .apply("7.10.0rc2")
                .unwrap(),
            "7.10.0"
        );
        assert_eq!(
            p(Some("rc"), Some("a20260501")).apply("7.10.0rc2").unwrap(),
            "7.10.0a20260501"
        );
        assert_eq!(
            p(Some("a"), None)
                .apply("2.10.0+rocm7.13.0a20260430")
                .unwrap(),
            "2.10.0+rocm7.13.0"
        );
        // No prerelease of that kind, or a tag that follows no digit.
        assert_eq!(p(Some("a"), None).apply("7.13.0rc1"), None);
        assert_eq!(p(Some("a"), None).apply("7.13.0.dev0+abc123"), None);
        assert_eq!(VersionPromotion::parse(None, None).unwrap(), None);
        for bad in ["rc", "a2026050", "a20260230", "a20261301", "b1", "7.13.0"] {
            assert!(
                VersionPromotion::parse(Some("a"), Some(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(VersionPromotion::parse(Some("a"), Some("a20240229")).is_ok());
        assert!(VersionPromotion::parse(Some("beta"), None).is_err());
    }
}
