//! The GPU family table: which gfx targets a family name stands for.
//!
//! The built-in copy mirrors TheRock's `cmake/therock_amdgpu_targets.cmake`;
//! `--family-table FILE` reads a newer copy of that file instead.

use std::collections::BTreeMap;

use super::artifact::base_arch;

/// The TheRock commit the built-in table was taken from (its
/// `cmake/therock_amdgpu_targets.cmake`, also kept as
/// tests/data/therock_amdgpu_targets.cmake; a test checks they agree).
pub const BUILTIN_THEROCK_COMMIT: &str = "89553ce3746eda74ade42557470d25e37c91b6f0";

/// Targets TheRock builds but keeps out of its release tarballs: its
/// family matrix (`build_tools/github_actions/amdgpu_family_matrix.py`, the
/// newer version that adds them) marks `amdgcnspirv` (portable SPIR-V,
/// proposed in PR #7021) `"exclude-from-packaging": True`, so its workflow
/// never passes it to the packaging step. rockpack puts their artifacts in
/// no tarball, whatever selects them.
pub const NOT_PACKAGED: &[&str] = &["amdgcnspirv"];

/// Whether artifacts of `target` may go into a tarball (see [`NOT_PACKAGED`]).
pub fn is_packaged(target: &str) -> bool {
    !NOT_PACKAGED.contains(&base_arch(target))
}

/// target → (product name, families it belongs to, besides its own name).
const BUILTIN: &[(&str, &str, &[&str])] = &[
    ("gfx900", "Vega 10 / MI25", &["dgpu-all", "gfx900-dgpu"]),
    (
        "gfx90c",
        "AMD Renoir/Lucienne/Cezanne iGPU",
        &["igpu-all", "gfx90c-igpu"],
    ),
    (
        "gfx906",
        "Radeon VII / MI50 CDNA",
        &["dgpu-all", "gfx906-dgpu"],
    ),
    ("gfx908", "MI100 CDNA", &["dcgpu-all", "gfx908-dcgpu"]),
    ("gfx90a", "MI210/250 CDNA", &["dcgpu-all", "gfx90a-dcgpu"]),
    (
        "gfx942",
        "MI300A/MI300X CDNA",
        &["dcgpu-all", "gfx94X-all", "gfx94X-dcgpu"],
    ),
    (
        "gfx950",
        "MI350X/MI355X CDNA",
        &["dcgpu-all", "gfx950-all", "gfx950-dcgpu"],
    ),
    (
        "gfx1010",
        "AMD RX 5700",
        &["dgpu-all", "gfx101X-all", "gfx101X-dgpu"],
    ),
    (
        "gfx1011",
        "AMD Radeon Pro V520",
        &["dgpu-all", "gfx101X-all", "gfx101X-dgpu"],
    ),
    (
        "gfx1012",
        "AMD RX 5500",
        &["dgpu-all", "gfx101X-all", "gfx101X-dgpu"],
    ),
    (
        "gfx1030",
        "AMD RX 6800 / XT",
        &["dgpu-all", "gfx103X-all", "gfx103X-dgpu"],
    ),
    (
        "gfx1031",
        "AMD RX 6700 / XT",
        &["dgpu-all", "gfx103X-all", "gfx103X-dgpu"],
    ),
    (
        "gfx1032",
        "AMD RX 6600",
        &["dgpu-all", "gfx103X-all", "gfx103X-dgpu"],
    ),
    (
        "gfx1033",
        "AMD Van Gogh iGPU",
        &["igpu-all", "gfx103X-all", "gfx103X-igpu"],
    ),
    (
        "gfx1034",
        "AMD RX 6500 XT",
        &["dgpu-all", "gfx103X-all", "gfx103X-dgpu"],
    ),
    (
        "gfx1035",
        "AMD Radeon 680M Laptop iGPU",
        &["igpu-all", "gfx103X-all", "gfx103X-igpu"],
    ),
    (
        "gfx1036",
        "AMD Raphael iGPU",
        &["igpu-all", "gfx103X-all", "gfx103X-igpu"],
    ),
    (
        "gfx1100",
        "AMD RX 7900 XTX",
        &["dgpu-all", "gfx110X-all", "gfx110X-dgpu"],
    ),
    (
        "gfx1101",
        "AMD RX 7800 XT",
        &["dgpu-all", "gfx110X-all", "gfx110X-dgpu"],
    ),
    (
        "gfx1102",
        "AMD RX 7700S/Framework Laptop 16",
        &["dgpu-all", "gfx110X-all", "gfx110X-dgpu"],
    ),
    (
        "gfx1103",
        "AMD Radeon 780M Laptop iGPU",
        &["igpu-all", "gfx110X-all", "gfx110X-igpu"],
    ),
    (
        "gfx1150",
        "AMD Strix Point iGPU",
        &["igpu-all", "gfx115X-all", "gfx115X-igpu"],
    ),
    (
        "gfx1151",
        "AMD Strix Halo iGPU",
        &["igpu-all", "gfx115X-all", "gfx115X-igpu"],
    ),
    (
        "gfx1152",
        "AMD Krackan 1 iGPU",
        &["igpu-all", "gfx115X-all", "gfx115X-igpu"],
    ),
    (
        "gfx1153",
        "AMD Radeon 820M iGPU",
        &["igpu-all", "gfx115X-all", "gfx115X-igpu"],
    ),
    ("gfx1200", "AMD RX 9060 / XT", &["dgpu-all", "gfx120X-all"]),
    ("gfx1201", "AMD RX 9070 / XT", &["dgpu-all", "gfx120X-all"]),
    (
        "gfx1250",
        "AMD Instinct MI450/MI450X/MI455X CDNA",
        &["dcgpu-all", "gfx125X-all", "gfx125X-dcgpu"],
    ),
];

/// Family name → its gfx targets, in declaration order.
#[derive(Clone, Debug, Default)]
pub struct FamilyTable {
    families: BTreeMap<String, Vec<String>>,
    targets: Vec<String>,
    /// Which table this is, for messages: warnings about stale or unknown
    /// names must say which table was consulted.
    origin: String,
}

impl FamilyTable {
    /// The table rockpack ships, taken from TheRock at [`BUILTIN_THEROCK_COMMIT`].
    pub fn builtin() -> Self {
        let mut t = FamilyTable {
            origin: format!(
                "the built-in family table (TheRock {})",
                &BUILTIN_THEROCK_COMMIT[..12]
            ),
            ..FamilyTable::default()
        };
        for (target, _, families) in BUILTIN {
            t.add_target(target, families.iter().copied());
        }
        t
    }

    /// Names where this table came from (e.g. the `--family-table` path),
    /// for messages.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// Which table this is, as messages name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Parses the `therock_add_amdgpu_target(...)` calls of TheRock's CMake
    /// file the way `cmake_parse_arguments` reads them: two positional
    /// arguments (the target, any name: `gfx942`, `amdgcnspirv`,
    /// `gfx12-generic`), then keywords — those the file's own definition of
    /// the function declares ([`Keywords::declared_in`]), else the newest
    /// rockpack knows. Anything before the first keyword is ignored; only
    /// FAMILY's values name families. A token shaped like a keyword that is
    /// not one ends the list it follows, with a warning: a newer file must
    /// not have project names read as families.
    pub fn parse_cmake(text: &str) -> Result<Self, String> {
        let mut t = FamilyTable::default();
        let clean: String = text
            .lines()
            .map(strip_comment)
            .collect::<Vec<_>>()
            .join("\n");
        let keywords = Keywords::declared_in(&clean).unwrap_or_default();
        let needle = "therock_add_amdgpu_target(";
        let mut rest = clean.as_str();
        while let Some(at) = rest.find(needle) {
            // Skip the function definition itself.
            let before = &rest[..at];
            let is_definition = before.trim_end().ends_with("function(");
            rest = &rest[at + needle.len()..];
            let end = rest
                .find(')')
                .ok_or_else(|| "unterminated therock_add_amdgpu_target(".to_string())?;
            let args = tokenize(&rest[..end]);
            rest = &rest[end + 1..];
            // A call through a variable (`${target}`) declares nothing we
            // can read.
            if is_definition || args.len() < 2 || args[0].contains('$') {
                continue;
            }
            let target = args[0].clone();
            let families = keywords.families(&target, &args[2..]);
            t.add_target(&target, families.iter().map(String::as_str));
        }
        if t.targets.is_empty() {
            return Err("no therock_add_amdgpu_target(...) calls found".into());
        }
        t.origin = "a parsed family table".into();
        Ok(t)
    }

    fn add_target<'a>(&mut self, target: &'a str, families: impl Iterator<Item = &'a str>) {
        self.targets.push(target.to_string());
        for fam in std::iter::once(target).chain(families) {
            let list = self.families.entry(fam.to_string()).or_default();
            if !list.iter().any(|t| t == target) {
                list.push(target.to_string());
            }
        }
    }

    /// The gfx targets of `family` (a target name is a family of itself).
    pub fn targets_of(&self, family: &str) -> Option<&[String]> {
        self.families.get(family).map(Vec::as_slice)
    }

    /// Every family name, targets included, sorted.
    pub fn family_names(&self) -> impl Iterator<Item = &str> {
        self.families.keys().map(String::as_str)
    }

    /// Whether `name` is declared as a gfx target.
    pub fn is_target(&self, name: &str) -> bool {
        self.targets.iter().any(|t| t == name)
    }

    /// Whether some family of this table selects artifacts of `target`: it
    /// is a family name, or its base arch (`gfx942` of `gfx942:xnack+`) is
    /// a declared target. A run's target this fails for means a stale table.
    pub fn knows(&self, target: &str) -> bool {
        self.families.contains_key(target) || self.is_target(base_arch(target))
    }
}

/// The keywords of `therock_add_amdgpu_target`, as its definition hands
/// them to `cmake_parse_arguments`: options (no value), one-value and
/// multi-value keywords.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Keywords {
    options: Vec<String>,
    one: Vec<String>,
    multi: Vec<String>,
}

impl Default for Keywords {
    /// The newest rockpack knows: TheRock's `main` (FAMILY,
    /// EXCLUDE_TARGET_PROJECTS), the `amdgcnspirv` change (HW_INDEPENDENT,
    /// INCOMPATIBLE_TARGET_PROJECTS) and what open pull requests propose
    /// (PLATFORM_INDEPENDENT, DISABLE_TARGET_PROJECTS).
    fn default() -> Self {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        Keywords {
            options: v(&["HW_INDEPENDENT", "PLATFORM_INDEPENDENT"]),
            one: Vec::new(),
            multi: v(&[
                "FAMILY",
                "EXCLUDE_TARGET_PROJECTS",
                "INCOMPATIBLE_TARGET_PROJECTS",
                "DISABLE_TARGET_PROJECTS",
            ]),
        }
    }
}

impl Keywords {
    /// The keywords the `function(therock_add_amdgpu_target …)` in `text`
    /// declares (`cmake_parse_arguments(PARSE_ARGV 2 ARG "<options>"
    /// "<one>" "<multi>")`), if it has that definition.
    fn declared_in(text: &str) -> Option<Keywords> {
        let def = text.find("function(therock_add_amdgpu_target")?;
        let body = &text[def..];
        let body = &body[..body.find("endfunction(").unwrap_or(body.len())];
        let call = body.find("cmake_parse_arguments(")?;
        let args = &body[call + "cmake_parse_arguments(".len()..];
        let args = tokenize(&args[..args.find(')')?]);
        // PARSE_ARGV N PREFIX, or PREFIX alone, then the three lists.
        let lists = match args.first().map(String::as_str) {
            Some("PARSE_ARGV") => args.get(3..6)?,
            _ => args.get(1..4)?,
        };
        let split = |s: &String| -> Vec<String> {
            s.split(';')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        };
        Some(Keywords {
            options: split(&lists[0]),
            one: split(&lists[1]),
            multi: split(&lists[2]),
        })
    }

    fn is_keyword(&self, token: &str) -> bool {
        [&self.options, &self.one, &self.multi]
            .iter()
            .any(|list| list.iter().any(|k| k == token))
    }

    /// FAMILY's values among `args` (what follows the target and its
    /// product name), read as `cmake_parse_arguments` reads them; an
    /// undeclared token shaped like a keyword ends the list it follows.
    fn families(&self, target: &str, args: &[String]) -> Vec<String> {
        let mut families = Vec::new();
        // The multi-value keyword whose list is being read, if any.
        let mut list: Option<&str> = None;
        let mut one_value = false;
        for a in args {
            if one_value {
                one_value = false;
                continue;
            }
            if self.is_keyword(a) {
                list = self.multi.iter().any(|k| k == a).then_some(a.as_str());
                one_value = self.one.iter().any(|k| k == a);
                continue;
            }
            if looks_like_keyword(a) {
                tracing::warn!(
                    "therock_add_amdgpu_target({target} …): {a} is not a keyword this table's definition declares; it ends the list before it"
                );
                list = None;
                continue;
            }
            if list == Some("FAMILY") {
                families.push(a.clone());
            }
        }
        families
    }
}

/// Upper-case letters, digits and `_`, starting with a letter: how CMake
/// keywords are spelled (project names are not: `hipBLASLt`, `rccl`).
fn looks_like_keyword(token: &str) -> bool {
    token.len() > 2
        && token.starts_with(|c: char| c.is_ascii_uppercase())
        && token
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn strip_comment(line: &str) -> &str {
    // A '#' inside a quoted string is not a comment.
    let mut in_quote = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '#' if !in_quote => return &line[..i],
            _ => {}
        }
    }
    line
}

fn tokenize(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                s.push(c);
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
function(therock_add_amdgpu_target gfx_target product_name)
endfunction()
# gfx94X family
therock_add_amdgpu_target(gfx942 "MI300A/MI300X CDNA" FAMILY dcgpu-all gfx94X-all gfx94X-dcgpu)
therock_add_amdgpu_target(gfx1035 "AMD Radeon 680M Laptop iGPU" igpu-all FAMILY gfx103X-all gfx103X-igpu
  EXCLUDE_TARGET_PROJECTS
    hipBLASLt # https://example/issues/1062
)
therock_add_amdgpu_target(gfx1100 "AMD RX 7900 XTX" FAMILY dgpu-all gfx110X-all gfx110X-dgpu
  EXCLUDE_TARGET_PROJECTS hipSPARSELt)
therock_add_amdgpu_target(gfx1101 "AMD RX 7800 XT" FAMILY dgpu-all gfx110X-all gfx110X-dgpu)
"#;

    /// A newer table: the keywords its own definition declares, a target
    /// that is not `gfx…`, an option, a keyword it does not declare.
    const NEWER: &str = r#"
function(therock_add_amdgpu_target gfx_target product_name)
  cmake_parse_arguments(PARSE_ARGV 2 ARG
    "HW_INDEPENDENT"
    ""
    "FAMILY;EXCLUDE_TARGET_PROJECTS;INCOMPATIBLE_TARGET_PROJECTS"
  )
  foreach(_family "${gfx_target}" ${ARG_FAMILY})
  endforeach()
endfunction()
therock_add_amdgpu_target(gfx942 "MI300A/MI300X CDNA" FAMILY dcgpu-all gfx94X-all gfx94X-dcgpu)
therock_add_amdgpu_target(gfx1250 "MI450" FAMILY dcgpu-all gfx125X-all
  INCOMPATIBLE_TARGET_PROJECTS rocWMMA)
therock_add_amdgpu_target(gfx1250-strict "MI450 strict" FAMILY gfx125X-strict
  DISABLE_TARGET_PROJECTS hipBLASLt)
therock_add_amdgpu_target(gfx12-generic "RDNA4 generic ISA" FAMILY gpu-generic-isa)
therock_add_amdgpu_target(amdgcnspirv "AMDGPU portable SPIR-V" FAMILY gpu-generic
  HW_INDEPENDENT
  INCOMPATIBLE_TARGET_PROJECTS
    MIOpen
    hipBLASLt
)
"#;

    #[test]
    fn newer_tables_are_read_by_their_own_keywords() {
        assert_eq!(
            Keywords::declared_in(NEWER).unwrap(),
            Keywords {
                options: vec!["HW_INDEPENDENT".into()],
                one: vec![],
                multi: vec![
                    "FAMILY".into(),
                    "EXCLUDE_TARGET_PROJECTS".into(),
                    "INCOMPATIBLE_TARGET_PROJECTS".into()
                ],
            }
        );
        let t = FamilyTable::parse_cmake(NEWER).unwrap();
        assert_eq!(t.targets_of("amdgcnspirv").unwrap(), ["amdgcnspirv"]);
        assert_eq!(t.targets_of("gpu-generic-isa").unwrap(), ["gfx12-generic"]);
        assert_eq!(t.targets_of("gfx125X-all").unwrap(), ["gfx1250"]);
        assert_eq!(t.targets_of("gfx125X-strict").unwrap(), ["gfx1250-strict"]);
        // Project names are never families: after a declared list keyword,
        // and after one this file does not declare.
        for project in ["rocWMMA", "MIOpen", "hipBLASLt", "HW_INDEPENDENT"] {
            assert!(t.targets_of(project).is_none(), "{project}");
        }
        assert_eq!(t.targets_of("dcgpu-all").unwrap(), ["gfx942", "gfx1250"]);
        // Without a definition in the file: the keywords rockpack knows.
        let calls = &NEWER[NEWER.find("endfunction()").unwrap() + "endfunction()".len()..];
        assert!(Keywords::declared_in(calls).is_none());
        let t = FamilyTable::parse_cmake(calls).unwrap();
        assert!(t.targets_of("hipBLASLt").is_none());
    }

    #[test]
    fn parses_cmake_like_cmake() {
        let t = FamilyTable::parse_cmake(SAMPLE).unwrap();
        assert_eq!(t.targets_of("gfx110X-all").unwrap(), ["gfx1100", "gfx1101"]);
        assert_eq!(t.targets_of("gfx942").unwrap(), ["gfx942"]);
        assert!(t.targets_of("igpu-all").is_none());
        assert!(t.targets_of("hipBLASLt").is_none());
        assert!(t.is_target("gfx1035"));
    }

    /// The built-in table is exactly TheRock's file at
    /// [`BUILTIN_THEROCK_COMMIT`] (its facts, restated under tests/data),
    /// read the way `--family-table` reads it.
    #[test]
    fn builtin_equals_therock_file() {
        let text = include_str!("../../tests/data/therock_amdgpu_targets.cmake");
        assert!(
            text.contains(BUILTIN_THEROCK_COMMIT),
            "commit named in the copy"
        );
        let parsed = FamilyTable::parse_cmake(text).unwrap();
        let builtin = FamilyTable::builtin();
        assert_eq!(builtin.targets, parsed.targets);
        assert_eq!(builtin.families, parsed.families);
    }

    #[test]
    fn builtin_has_current_families() {
        let t = FamilyTable::builtin();
        assert_eq!(t.targets_of("gfx94X-dcgpu").unwrap(), ["gfx942"]);
        assert_eq!(t.targets_of("gfx120X-all").unwrap(), ["gfx1200", "gfx1201"]);
        assert_eq!(
            t.targets_of("dcgpu-all").unwrap(),
            ["gfx908", "gfx90a", "gfx942", "gfx950", "gfx1250"]
        );
        // gfx1031/1033/1034 joined gfx103X-all; gfx1035 is an iGPU again.
        assert_eq!(
            t.targets_of("gfx103X-all").unwrap(),
            ["gfx1030", "gfx1031", "gfx1032", "gfx1033", "gfx1034", "gfx1035", "gfx1036"]
        );
        assert_eq!(
            t.targets_of("gfx103X-dgpu").unwrap(),
            ["gfx1030", "gfx1031", "gfx1032", "gfx1034"]
        );
        assert_eq!(
            t.targets_of("igpu-all").unwrap(),
            [
                "gfx90c", "gfx1033", "gfx1035", "gfx1036", "gfx1103", "gfx1150", "gfx1151",
                "gfx1152", "gfx1153"
            ]
        );
        assert_eq!(t.targets_of("gfx900-dgpu").unwrap(), ["gfx900"]);
        assert_eq!(t.targets_of("gfx90c-igpu").unwrap(), ["gfx90c"]);
        assert_eq!(t.targets_of("gfx906-dgpu").unwrap(), ["gfx906"]);
        assert_eq!(t.targets_of("gfx908-dcgpu").unwrap(), ["gfx908"]);
        assert_eq!(t.targets_of("gfx90a-dcgpu").unwrap(), ["gfx90a"]);
        assert_eq!(t.targets_of("gfx125X-dcgpu").unwrap(), ["gfx1250"]);
        // Release matrices pass single targets as families.
        for target in ["gfx900", "gfx90c", "gfx1151", "gfx1250"] {
            assert_eq!(t.targets_of(target).unwrap(), [target]);
        }
        // The gfx90X-* families are gone.
        assert!(t.family_names().all(|f| !f.starts_with("gfx90X")));
    }

    #[test]
    fn knows_families_targets_and_suffixed_targets() {
        let t = FamilyTable::builtin();
        for known in [
            "gfx942",
            "gfx942:xnack+",
            "gfx94X-dcgpu",
            "gfx1031",
            "gfx1250",
        ] {
            assert!(t.knows(known), "{known}");
        }
        for unknown in ["gfx1099", "gfx1099:xnack-", "gfx90X-all"] {
            assert!(!t.knows(unknown), "{unknown}");
        }
        let old = FamilyTable::parse_cmake(SAMPLE).unwrap();
        assert!(!old.knows("gfx1031"));
        assert!(!old.knows("gfx125X-dcgpu"));
        assert!(t.origin().contains(&BUILTIN_THEROCK_COMMIT[..12]));
    }
}
