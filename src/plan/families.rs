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
    /// arguments, then the multi-value keywords FAMILY and
    /// EXCLUDE_TARGET_PROJECTS; anything before the first keyword is ignored.
    pub fn parse_cmake(text: &str) -> Result<Self, String> {
        let mut t = FamilyTable::default();
        let clean: String = text
            .lines()
            .map(strip_comment)
            .collect::<Vec<_>>()
            .join("\n");
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
            if is_definition || args.first().map(|a| a.starts_with("gfx")) != Some(true) {
                continue;
            }
            let target = args[0].clone();
            let mut families = Vec::new();
            let mut in_family = false;
            for a in args.iter().skip(2) {
                match a.as_str() {
                    "FAMILY" => in_family = true,
                    "EXCLUDE_TARGET_PROJECTS" => in_family = false,
                    f if in_family => families.push(f.to_string()),
                    _ => {}
                }
            }
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
    /// [`BUILTIN_THEROCK_COMMIT`] (the copy under tests/data), read the way
    /// `--family-table` reads it.
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
