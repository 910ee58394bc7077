//! Flattening rules: the manifest, prefix stripping and what a member may be.

use super::tar_reader::Member;
use super::tarfmt::Kind;

/// Largest `artifact_manifest.txt` read into memory.
pub const MAX_MANIFEST: u64 = 1 << 20;

pub const MANIFEST_NAME: &[u8] = b"artifact_manifest.txt";

/// The prefixes an artifact's manifest lists.
pub struct Manifest {
    prefixes: Vec<Vec<u8>>,
}

impl Manifest {
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(text)
            .map_err(|_| "artifact_manifest.txt is not UTF-8".to_string())?;
        let mut prefixes = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r').trim_end_matches('/');
            if line.is_empty() {
                continue;
            }
            check_relative(line.as_bytes())
                .map_err(|e| format!("artifact_manifest.txt line {line:?}: {e}"))?;
            prefixes.push(line.as_bytes().to_vec());
        }
        if prefixes.is_empty() {
            return Err("artifact_manifest.txt lists no path prefixes".into());
        }
        Ok(Manifest { prefixes })
    }

    /// The member's path with its prefix stripped; `Ok(None)` for a prefix
    /// directory itself, which is not stored. The first matching prefix in
    /// manifest order wins, as in TheRock's own flattening.
    pub fn strip<'a>(&self, path: &'a [u8]) -> Result<Option<&'a [u8]>, String> {
        for p in &self.prefixes {
            if path == p.as_slice() {
                return Ok(None);
            }
            if path.len() > p.len() && path.starts_with(p) && path[p.len()] == b'/' {
                let rest = &path[p.len() + 1..];
                return if rest.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(rest))
                };
            }
        }
        Err("not under any prefix listed in artifact_manifest.txt".into())
    }
}

/// A relative path of plain components: no leading '/', no empty, '.' or
/// '..' components, no NUL.
pub fn check_relative(path: &[u8]) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path[0] == b'/' {
        return Err("absolute path".into());
    }
    if path.contains(&0) {
        return Err("NUL byte in path".into());
    }
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b".." => return Err("path has a '..' component".into()),
            b"." | b"" => return Err("path has an empty or '.' component".into()),
            _ => {}
        }
    }
    Ok(())
}

/// The member kinds rockpack carries; anything else is refused.
pub fn kind_of(m: &Member) -> Result<Kind, String> {
    match m.typeflag {
        b'0' | 0 | b'7' => Ok(Kind::File),
        b'1' => Ok(Kind::Hardlink),
        b'2' => Ok(Kind::Symlink),
        b'5' => Ok(Kind::Dir),
        _ => Err(format!("unsupported member type: {}", m.type_name())),
    }
}

/// Mode bits kept in the output: permissions and sticky, never set-id bits
/// (tarballs get extracted as root into system prefixes).
pub fn output_mode(mode: u32) -> u32 {
    mode & 0o1777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_first_matching_prefix() {
        let m = Manifest::parse(b"a/stage\nb/stage/\n\n").unwrap();
        assert_eq!(m.strip(b"a/stage/lib/x").unwrap(), Some(&b"lib/x"[..]));
        assert_eq!(m.strip(b"b/stage/bin").unwrap(), Some(&b"bin"[..]));
        assert_eq!(m.strip(b"a/stage").unwrap(), None);
        assert!(m.strip(b"a/stagex/y").is_err());
        assert!(m.strip(b"c/y").is_err());
        assert!(Manifest::parse(b"\n").is_err());
        assert!(Manifest::parse(b"../x\n").is_err());
    }

    #[test]
    fn relative_paths_only() {
        assert!(check_relative(b"lib/x").is_ok());
        assert!(check_relative(b"/etc/passwd").is_err());
        assert!(check_relative(b"lib/../../x").is_err());
        assert!(check_relative(b"lib//x").is_err());
    }
}
