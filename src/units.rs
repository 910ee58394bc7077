//! Sizes and how they are written: one place for the binary units, the
//! size parser the CLI takes (`512M`, `2G`) and the three ways a size is
//! shown to the user, so messages agree with each other and no module
//! keeps its own `MIB`.

/// 1 KiB.
pub const KIB: u64 = 1 << 10;
/// 1 MiB.
pub const MIB: u64 = 1 << 20;
/// 1 GiB.
pub const GIB: u64 = 1 << 30;
/// 1 TiB.
pub const TIB: u64 = 1 << 40;

/// Human-readable sizes in binary units, for progress, plans and
/// summaries: "512 B", "128.0 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Whole MiB, rounded up: "80 MiB". For memory a run needs, where rounding
/// down would ask for too little.
pub fn whole_mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(MIB))
}

/// A size in the largest unit (up to GiB) that holds it exactly: 2^27 is
/// "128 MiB". For limits, which are powers of two and read best whole.
pub fn exact_bytes(bytes: u64) -> String {
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} B")
}

/// Parses a byte count with an optional binary suffix: `512M`, `1.5G`,
/// `64MiB`, `4096`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ => {
            return Err(format!(
                "{text:?}: expected a size such as 4096, 512M or 2G"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 4096, 512M or 2G"))?;
    let bytes = value * scale as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("{text:?}: out of range"));
    }
    Ok(bytes as u64)
}

/// Parses a duration: a number with `s`, `m`, `h` or `d` (`90m`, `2h`,
/// `7d`), or seconds alone.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: expected a duration such as 90m, 6h or 2d"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 90m, 6h or 2d"))?;
    n.checked_mul(scale)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration(" 2d "), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "2w", "1.5h", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(" 2 gb "), Ok(2 << 30));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn sizes_format() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(128 * MIB), "128.0 MiB");
        assert_eq!(human_bytes(3 * GIB / 2), "1.5 GiB");
        assert_eq!(whole_mib(80 * MIB), "80 MiB");
        assert_eq!(whole_mib(80 * MIB + 1), "81 MiB");
        // Powers of two, as the decoder's window limits are written.
        assert_eq!(exact_bytes(1 << 23), "8 MiB");
        assert_eq!(exact_bytes(1 << 27), "128 MiB");
        assert_eq!(exact_bytes(1 << 30), "1 GiB");
        assert_eq!(exact_bytes(1 << 15), "32 KiB");
    }
}
