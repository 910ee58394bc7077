//! Links in a ZIP archive: Windows' extractors know files and directories
//! only, so a symbolic link or a hardlink is stored as the file it leads
//! to, under the link's name (what Info-ZIP's `zip` does unless told
//! `-y`). The file's data is not compressed again: the entry repeats the
//! bytes the archive already holds for it, behind a local header of its
//! own, at the archive's end, once every file the link might lead to is
//! known. A link to a directory, out of the archive, to nothing the
//! archive holds, or round in a loop is refused, naming its artifact and
//! member.

use std::collections::VecDeque;

use super::zip::CentralEntry;
use crate::error::{Error, Kind};

/// More links than this on one path is taken for a loop (Linux allows 40).
const MAX_HOPS: usize = 40;

/// A link met in an archive's tar stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipLink {
    /// Its name in the archive (no `./`).
    pub name: String,
    /// A symlink's target as written (relative to the link's directory);
    /// a hardlink's, a path from the archive's root.
    pub target: String,
    /// A hardlink (`true`) or a symbolic link.
    pub hard: bool,
    /// The artifact it came from, for messages.
    pub artifact: String,
    /// Its path in the repacked stream (`./lib/…`), for messages.
    pub member: String,
}

impl ZipLink {
    /// "symlink" or "hardlink".
    pub fn kind(&self) -> &'static str {
        if self.hard {
            "hardlink"
        } else {
            "symlink"
        }
    }

    /// The run's error for this link, naming its artifact and member and
    /// saying `why`.
    pub fn refused(&self, why: &str) -> Error {
        Error::artifact_kind(
            Kind::Conflict,
            &self.artifact,
            Some(self.member.as_bytes()),
            format!("a {} to {:?}: {why}", self.kind(), self.target),
        )
    }
}

/// What an archive holds under a path.
pub enum Found<'a> {
    /// A file: the entry a link to it repeats.
    File(&'a CentralEntry),
    /// A directory.
    Dir,
    /// Another link, followed.
    Link(&'a ZipLink),
}

/// The file `link` leads to, looking paths up (without a trailing `/`)
/// with `find`; or why it leads to none.
pub fn resolve<'a>(
    link: &ZipLink,
    find: &dyn Fn(&str) -> Option<Found<'a>>,
) -> Result<&'a CentralEntry, String> {
    // The directory reached so far and the components still to walk.
    let mut at: Vec<String> = Vec::new();
    let mut rest: VecDeque<String> = VecDeque::new();
    start(link, &mut at, &mut rest)?;
    let mut hops = 0;
    while let Some(c) = rest.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                if at.pop().is_none() {
                    return Err(outside(link));
                }
                continue;
            }
            _ => at.push(c),
        }
        let path = at.join("/");
        let last = rest.iter().all(|c| c.is_empty() || c == ".");
        match find(&path) {
            Some(Found::Link(next)) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!(
                        "more than {MAX_HOPS} links on the way to it: a loop ({path} is one of them)"
                    ));
                }
                // The link's own target replaces it on the path.
                at.pop();
                let mut more = VecDeque::new();
                start(next, &mut at, &mut more)?;
                more.extend(rest.drain(..));
                rest = more;
            }
            Some(Found::File(entry)) if last => return Ok(entry),
            Some(Found::File(_)) => {
                return Err(format!("{path} is a file, not a directory on its way"))
            }
            Some(Found::Dir) if last => return Err(format!("{path} is a directory")),
            None if last => return Err(format!("the archive holds nothing at {path}")),
            // A directory on the way (listed or not).
            Some(Found::Dir) | None => {}
        }
    }
    // It ended on `.` or `..`: at a directory.
    if at.is_empty() {
        Err("it leads to the archive's root, a directory".to_string())
    } else {
        Err(format!("{} is a directory", at.join("/")))
    }
}

/// Where walking `link`'s target starts (`at`): a symlink's directory,
/// or the root for a hardlink; its components go in front of `rest`.
fn start(link: &ZipLink, at: &mut Vec<String>, rest: &mut VecDeque<String>) -> Result<(), String> {
    at.clear();
    let target = if link.hard {
        link.target.trim_start_matches("./")
    } else {
        if link.target.starts_with('/') {
            return Err(outside(link));
        }
        let dir = link.name.rsplit_once('/').map_or("", |(dir, _)| dir);
        at.extend(dir.split('/').filter(|c| !c.is_empty()).map(String::from));
        &link.target
    };
    for c in target.split('/').rev() {
        rest.push_front(c.to_string());
    }
    Ok(())
}

fn outside(link: &ZipLink) -> String {
    format!("{} leads out of the archive", link.target)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::codec::zip::{EntryMeta, Method};

    fn file(name: &str) -> CentralEntry {
        CentralEntry {
            meta: EntryMeta {
                name: name.to_string(),
                is_dir: false,
                mode: 0o755,
                mtime: 0,
            },
            method: Method::Deflated,
            crc: 1,
            compressed: 2,
            uncompressed: 3,
            offset: 4,
        }
    }

    fn sym(name: &str, target: &str) -> ZipLink {
        ZipLink {
            name: name.to_string(),
            target: target.to_string(),
            hard: false,
            artifact: "a_lib_generic.tar.zst".to_string(),
            member: format!("./{name}"),
        }
    }

    enum Held {
        File(CentralEntry),
        Dir,
        Link(ZipLink),
    }

    struct Archive(HashMap<String, Held>);

    impl Archive {
        fn new(items: Vec<(&str, Held)>) -> Archive {
            Archive(items.into_iter().map(|(p, h)| (p.to_string(), h)).collect())
        }

        fn resolve(&self, link: &ZipLink) -> Result<String, String> {
            let find = |p: &str| {
                self.0.get(p).map(|h| match h {
                    Held::File(e) => Found::File(e),
                    Held::Dir => Found::Dir,
                    Held::Link(l) => Found::Link(l),
                })
            };
            resolve(link, &find).map(|e| e.meta.name.clone())
        }
    }

    fn lib() -> Archive {
        Archive::new(vec![
            ("lib", Held::Dir),
            (
                "lib/libfoo.so.1.2.3",
                Held::File(file("lib/libfoo.so.1.2.3")),
            ),
            (
                "lib/libfoo.so.1",
                Held::Link(sym("lib/libfoo.so.1", "libfoo.so.1.2.3")),
            ),
            (
                "lib/libfoo.so",
                Held::Link(sym("lib/libfoo.so", "libfoo.so.1")),
            ),
            ("lib64", Held::Link(sym("lib64", "lib"))),
            ("bin", Held::Dir),
            ("loop/a", Held::Link(sym("loop/a", "b"))),
            ("loop/b", Held::Link(sym("loop/b", "./a"))),
        ])
    }

    #[test]
    fn a_chain_leads_to_its_file() {
        let a = lib();
        for (name, target) in [
            ("lib/libfoo.so", "libfoo.so.1"),
            ("bin/foo", "../lib/libfoo.so"),
            ("bin/foo", "../lib64/libfoo.so"),
            ("bin/foo", ".././lib//libfoo.so.1.2.3"),
            ("foo", "bin/../lib/libfoo.so"),
        ] {
            assert_eq!(
                a.resolve(&sym(name, target)).as_deref(),
                Ok("lib/libfoo.so.1.2.3"),
                "{name} -> {target}"
            );
        }
        let hard = ZipLink {
            hard: true,
            ..sym("bin/foo", "./lib/libfoo.so.1.2.3")
        };
        assert_eq!(a.resolve(&hard).as_deref(), Ok("lib/libfoo.so.1.2.3"));
    }

    #[test]
    fn what_leads_to_no_file_is_refused_with_why() {
        let a = lib();
        for (name, target, why) in [
            ("bin/x", "../lib", "is a directory"),
            ("bin/x", "../lib64", "is a directory"),
            ("bin/x", "..", "root"),
            ("bin/x", ".", "bin is a directory"),
            ("bin/x", "../lib/libfoo.so.1.2.3/..", "not a directory"),
            ("bin/x", "../lib/..", "root"),
            ("bin/x", "/usr/lib/libc.so", "out of the archive"),
            ("bin/x", "../../etc/passwd", "out of the archive"),
            (
                "bin/x",
                "../lib/libbar.so",
                "holds nothing at lib/libbar.so",
            ),
            ("bin/x", "../lib/libfoo.so/x", "not a directory"),
            ("bin/x", "../loop/a", "a loop"),
        ] {
            let got = a.resolve(&sym(name, target));
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{name} -> {target}: {got:?}"
            );
        }
    }
}
