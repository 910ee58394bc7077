//! Flattening rules: the manifest, prefix stripping and what a member may be.

use super::tar_reader::Member;
use super::tarfmt::{self, Header, Kind, BLOCK};

/// Largest `artifact_manifest.txt` read into memory.
pub const MAX_MANIFEST: u64 = 1 << 20;

/// The member every artifact starts with: its path prefixes, one a line.
pub const MANIFEST_NAME: &[u8] = b"artifact_manifest.txt";

/// The prefixes an artifact's manifest lists. TheRock writes a manifest
/// with no prefix (a lone newline, or 0 bytes from its kpack splitter) for
/// a component its descriptor leaves empty: such an artifact holds nothing
/// else and contributes nothing.
pub struct Manifest {
    prefixes: Vec<Vec<u8>>,
}

impl Manifest {
    /// Reads the manifest's lines as prefixes: trailing `/` and `\r`
    /// dropped, blank lines skipped; each must be a plain relative path.
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
        Ok(Manifest { prefixes })
    }

    /// Whether the manifest lists no prefix (every member is then outside).
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
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

/// The first control character (NUL, newline, escape, DEL, ...) in `name`,
/// described. A newline is legal in a POSIX name, but line-based tools
/// split on it and PAX readers that split records on newlines misread it.
fn control_char(name: &[u8]) -> Option<String> {
    let &c = name.iter().find(|&&b| b < 0x20 || b == 0x7f)?;
    Some(if c == 0 {
        "NUL byte".into()
    } else {
        format!("control character {:?}", c as char)
    })
}

/// A relative path of plain components: no leading '/', no empty, '.' or
/// '..' components, no NUL or other control character.
pub fn check_relative(path: &[u8]) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path[0] == b'/' {
        return Err("absolute path".into());
    }
    if let Some(c) = control_char(path) {
        return Err(format!("{c} in path"));
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

/// A symlink may only point inside the tree it is extracted into: its
/// target must be relative and, resolved from the link's directory, never
/// climb above the root. Extraction as root into a system prefix would
/// otherwise let an artifact write or expose files outside it.
pub fn check_symlink_target(link_path: &[u8], target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        return Err("symlink with an empty target".into());
    }
    if let Some(c) = control_char(target) {
        return Err(format!("{c} in symlink target"));
    }
    let shown = String::from_utf8_lossy(target);
    if target[0] == b'/' {
        return Err(format!("symlink target {shown:?} is absolute; only relative targets inside the tree are allowed"));
    }
    // Only leading '..' components may climb: they climb real directories
    // (no member lies below a symlink), and every later component descends,
    // through links that themselves stay inside. So however links chain, a
    // target resolves inside the tree.
    let mut depth = link_path.split(|&b| b == b'/').count() as i64 - 1;
    let mut descended = false;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." if descended => {
                return Err(format!(
                    "symlink target {shown:?} climbs with '..' after descending; only leading '..' components are allowed"
                ));
            }
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("symlink target {shown:?} leaves the tree"));
                }
            }
            _ => descended = true,
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

/// Which mode bits the output's entries get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Modes {
    /// The modes TheRock's release step gives the tree it flattens to disk
    /// (as root, umask 022): each file is created `0666 & ~umask` and gets
    /// the member's execute bits back, each directory is made `0777 &
    /// ~umask`, so files are `0644 | (mode & 0111)` and directories `0755`
    /// whatever the artifact says.
    #[default]
    TheRock,
    /// Each member's own mode, less set-id bits and world-write (tarballs
    /// get extracted as root into system prefixes).
    Keep,
}

/// What an output entry takes from its member besides path and content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Later mtimes are written as this (Unix seconds).
    pub mtime_clamp: Option<i64>,
    /// How modes are written.
    pub modes: Modes,
}

/// Mode of a directory the flattening creates that no member describes (a
/// parent with no entry of its own, and the root): what `mkdir` gives
/// under umask 022.
const MADE_DIR: u32 = 0o755;

impl Metadata {
    /// The mtime written for a member's.
    pub fn mtime(&self, mtime: i64) -> i64 {
        match self.mtime_clamp {
            Some(c) => mtime.min(c),
            None => mtime,
        }
    }

    /// The mode written for a member of `kind` whose own mode is `mode`.
    /// Symlinks are 0777 either way: what Linux gives every link and what
    /// tar records for one (extraction ignores it).
    pub fn mode(&self, kind: Kind, mode: u32) -> u32 {
        match (self.modes, kind) {
            (_, Kind::Symlink) => 0o777,
            (Modes::TheRock, Kind::Dir) => MADE_DIR,
            (Modes::TheRock, Kind::File | Kind::Hardlink) => 0o644 | (mode & 0o111),
            (Modes::Keep, _) => mode & 0o1775,
        }
    }

    /// The header of an output entry at `path` for a member of `kind`
    /// whose own mode and mtime are `mode` and `mtime`: the mode rule and
    /// the clamp applied, owner 0/0 (`root`).
    pub fn header<'a>(
        &self,
        path: &'a [u8],
        kind: Kind,
        mode: u32,
        size: u64,
        mtime: i64,
        link: &'a [u8],
    ) -> Header<'a> {
        Header {
            path,
            kind,
            mode: self.mode(kind, mode),
            size,
            mtime: self.mtime(mtime),
            link,
            uid: 0,
            gid: 0,
            uname: "root",
            gname: "root",
        }
    }

    /// The header of a directory the flattening makes that no member
    /// describes: a member's parent (its mtime is the member's) or the root.
    /// Its mode is `mkdir`'s in either mode rule.
    pub fn made_dir<'a>(&self, path: &'a [u8], mtime: i64) -> Header<'a> {
        self.header(path, Kind::Dir, MADE_DIR, 0, mtime, b"")
    }

    /// The tar header of `./`, the root directory every tarball opens
    /// with, as `tar cf - .` writes it: extracting sets the destination's
    /// mode (and mtime: the clamp, or 0 without one, so that output stays
    /// the same from run to run).
    pub fn root_entry(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BLOCK);
        let mtime = self.mtime_clamp.unwrap_or(0);
        tarfmt::write_header(&mut out, &self.made_dir(b"./", mtime), &[]);
        out
    }
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
        for empty in [&b"\n"[..], b"", b"\r\n\n"] {
            let m = Manifest::parse(empty).unwrap();
            assert!(m.is_empty());
            assert!(m.strip(b"lib/x").is_err());
        }
        assert!(Manifest::parse(b"../x\n").is_err());
    }

    #[test]
    fn symlinks_stay_in_the_tree() {
        assert!(check_symlink_target(b"lib/libfoo.so", b"libfoo.so.1").is_ok());
        assert!(check_symlink_target(b"lib/cmake/x", b"../../bin/tool").is_ok());
        assert!(check_symlink_target(b"lib/x", b"../../etc/passwd").is_err());
        assert!(check_symlink_target(b"x", b"..").is_err());
        assert!(check_symlink_target(b"lib/x", b"/etc/passwd").is_err());
        assert!(check_symlink_target(b"a/b/c", b"d/../../../e").is_err());
        assert!(check_symlink_target(b"a/b/c", b"./d/../../e").is_err());
        assert!(check_symlink_target(b"lib/out", b"up/..").is_err());
        assert!(check_symlink_target(b"a/b/c", b"../d/e").is_ok());
    }

    #[test]
    fn relative_paths_only() {
        assert!(check_relative(b"lib/x").is_ok());
        assert!(check_relative(b"/etc/passwd").is_err());
        assert!(check_relative(b"lib/../../x").is_err());
        assert!(check_relative(b"lib//x").is_err());
        assert!(check_relative(b"lib/a\nb")
            .unwrap_err()
            .contains("control character '\\n'"));
        assert!(check_relative(b"lib/a\x1b[2J").is_err());
        assert!(check_relative(b"lib/a\x7f").is_err());
        assert!(check_relative("lib/Überblick.md".as_bytes()).is_ok());
        assert!(check_relative(b"lib/Release Notes.txt").is_ok());
        assert!(check_symlink_target(b"lib/x", b"y\n").is_err());
    }
}
