//! Values that become one part of a file name, an S3 key or a GitHub
//! output (a version, a family or target, a run id, a renamed part): one
//! rule, checked where each value enters, so that no name can climb out of
//! its directory or break the line of its checksum file.

/// Why `value` cannot be one part of a name, if it cannot: it is empty,
/// `.` or `..`, or holds `/`, `\` or a control character.
pub fn refusal(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("it is empty".into());
    }
    if value == "." || value == ".." {
        return Some(format!("{value:?} is not a name"));
    }
    if value.contains(['/', '\\']) {
        return Some(format!("{value:?} holds a path separator ('/' or '\\')"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Some(format!("{value:?} holds the control character {c:?}"));
    }
    None
}

/// A clap value parser: `value`, if it can be one part of a name.
pub fn parse(value: &str) -> Result<String, String> {
    match refusal(value) {
        None => Ok(value.to_string()),
        Some(why) => Err(format!("a part of tarball and key names: {why}")),
    }
}

/// A clap value parser for a list (items separated by `;` or `,`, empty
/// items ignored): `value`, if every item can be one part of a name.
pub fn parse_list(value: &str) -> Result<String, String> {
    for item in value
        .split([';', ','])
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        if let Some(why) = refusal(item) {
            return Err(format!("each item is a part of tarball names: {why}"));
        }
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(
            "each item is a part of tarball names: the list holds a control character".into(),
        );
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_part() {
        for ok in [
            "7.13.0",
            "7.13.0rc1",
            "gfx94X-dcgpu",
            "12345678",
            "core+hpc",
            "a..b",
        ] {
            assert_eq!(refusal(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../x",
            "a/b",
            "a\\b",
            "7\n1",
            "x\u{7f}",
            "tab\there",
        ] {
            assert!(refusal(bad).is_some(), "{bad:?}");
        }
        assert!(parse("../../x").unwrap_err().contains("path separator"));
        assert!(parse("7\n1").unwrap_err().contains("control character"));
        assert!(parse_list("gfx94X-dcgpu; gfx110X-all,").is_ok());
        assert!(parse_list("gfx94X-dcgpu;../x").is_err());
        assert!(parse_list("gfx94X-dcgpu;..").is_err());
    }
}
