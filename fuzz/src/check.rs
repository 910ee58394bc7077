//! The properties a run must have. Each failed check panics with what it
//! saw, which libFuzzer reports as a crash.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use rockpack::repack::flatten::{Manifest, Metadata, Modes, MANIFEST_NAME};
use rockpack::repack::tar_reader::TarReader;
use rockpack::repack::tarfmt::Kind as FileKind;
use rockpack::repack::ConflictPolicy;
use rockpack::Error;

/// A refusal: an artifact error or a conflict, naming `artifact`, on one
/// line (a newline in it could forge log lines or CI workflow commands).
pub fn refusal(e: &Error, artifact: &str) {
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Artifact(_) | Error::Conflict(_)),
        "refused with an error of the wrong kind: {e:?}"
    );
    if let Error::Artifact(a) = e {
        assert_eq!(
            a.artifact, artifact,
            "the error names another artifact: {msg}"
        );
    }
    assert!(
        msg.contains(artifact),
        "the error does not name {artifact}: {msg}"
    );
    assert!(
        !msg.chars().any(char::is_control),
        "control character in the error message: {msg:?}"
    );
}

/// One member of a tarball, as a reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Without the leading `./`, and without a directory's trailing `/`.
    pub path: Vec<u8>,
    pub typeflag: u8,
    pub link: Vec<u8>,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub data: Vec<u8>,
}

/// Reads a tarball rockpack wrote with rockpack's own reader and with the
/// tar crate, checks that they agree and that the tarball keeps every
/// promise of README's "What rockpack refuses"; returns its entries.
pub fn tarball(bytes: &[u8], policy: ConflictPolicy, meta: Metadata) -> Vec<Entry> {
    // For a look at a finding: `ROCKPACK_FUZZ_DUMP=out.tar cargo run --example replay ...`.
    if let Some(path) = std::env::var_os("ROCKPACK_FUZZ_DUMP") {
        std::fs::write(path, bytes).expect("write ROCKPACK_FUZZ_DUMP");
    }
    let ours = read_ours(bytes)
        .unwrap_or_else(|e| panic!("rockpack's own reader refuses a tarball rockpack wrote: {e}"));
    let theirs = read_tar_crate(bytes, true)
        .unwrap_or_else(|e| panic!("the tar crate refuses a tarball rockpack wrote: {e}"));
    assert_eq!(
        ours.len(),
        theirs.len(),
        "the readers see different numbers of members:\nrockpack: {ours:?}\ntar crate: {theirs:?}"
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o, t, "the readers disagree about a member");
    }
    properties(&ours, policy, meta);
    ours
}

fn read_ours(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut r = TarReader::new(bytes);
    let mut out = Vec::new();
    while let Some(m) = r.next_member().map_err(|e| format!("{e:?}"))? {
        let mut data = vec![0u8; m.size as usize];
        let mut got = 0;
        while got < data.len() {
            got += r
                .read_data(&mut data[got..])
                .map_err(|e| format!("{e:?}"))?;
        }
        let path = m
            .path
            .strip_prefix(b"./")
            .ok_or_else(|| format!("member {:?} does not start with ./", m.path))?
            .to_vec();
        out.push(Entry {
            path,
            typeflag: m.typeflag,
            link: m.link,
            size: m.size,
            mode: m.mode,
            mtime: m.mtime,
            data,
        });
    }
    Ok(out)
}

/// Every member as the tar crate reads it. With `output`, also checks the
/// owner fields rockpack normalises and strips the leading `./`.
fn read_tar_crate(bytes: &[u8], output: bool) -> Result<Vec<Entry>, String> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let h = e.header().clone();
        let typeflag = h.entry_type().as_byte();
        let mut path = e.path_bytes().into_owned();
        let mut link = e
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        // GNU long names are C strings; the tar crate keeps all but one of
        // their trailing NULs (rockpack drops them, as GNU tar does).
        for name in [&mut path, &mut link] {
            while name.last() == Some(&0) {
                name.pop();
            }
        }
        if typeflag == b'5' {
            while path.len() > 1 && path.ends_with(b"/") {
                path.pop();
            }
        }
        if output {
            path = path
                .strip_prefix(b"./")
                .ok_or_else(|| format!("member {path:?} does not start with ./"))?
                .to_vec();
            let uid = h.uid().map_err(|e| e.to_string())?;
            let gid = h.gid().map_err(|e| e.to_string())?;
            assert_eq!((uid, gid), (0, 0), "owner of {path:?} is not 0/0");
            assert_eq!(
                (h.username_bytes(), h.groupname_bytes()),
                (Some(&b"root"[..]), Some(&b"root"[..])),
                "owner names of {path:?} are not root"
            );
        }
        let mode = h.mode().map_err(|e| e.to_string())?;
        let mut mtime = h.mtime().map_err(|e| e.to_string())? as i64;
        if let Some(exts) = e.pax_extensions().map_err(|e| e.to_string())? {
            for x in exts {
                let x = x.map_err(|e| e.to_string())?;
                if x.key_bytes() == b"mtime" {
                    let v = std::str::from_utf8(x.value_bytes()).map_err(|e| e.to_string())?;
                    mtime = v.parse::<f64>().map_err(|e| e.to_string())?.floor() as i64;
                }
            }
        }
        let size = e.size();
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(|e| e.to_string())?;
        out.push(Entry {
            path,
            typeflag,
            link,
            size,
            mode,
            mtime,
            data,
        });
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Hardlink,
    Symlink,
    Dir,
}

/// The proper ancestors of `path`, shortest first.
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &path[..i])
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// README's promises, member by member, in archive order (which is the
/// order extraction happens in).
fn properties(entries: &[Entry], policy: ConflictPolicy, meta: Metadata) {
    let mut kinds: HashMap<&[u8], Kind> = HashMap::new();
    // Paths that were a symlink, file or hardlink at some point.
    let mut not_dirs: HashSet<&[u8]> = HashSet::new();
    // Paths extraction has made a directory: directory members and the
    // ancestors of every member.
    let mut dirs: HashSet<&[u8]> = HashSet::new();
    for e in entries {
        let p = show(&e.path);
        plain_relative(&e.path).unwrap_or_else(|why| panic!("member {p}: {why}"));
        let kind = match e.typeflag {
            b'0' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'5' => Kind::Dir,
            t => panic!("member {p} has type {:?}", t as char),
        };
        let mode_ok = match (kind, meta.modes) {
            (Kind::Symlink, _) => e.mode == 0o777,
            (Kind::Dir, Modes::TheRock) => e.mode == 0o755,
            (_, Modes::TheRock) => e.mode & !0o111 == 0o644,
            (_, Modes::Keep) => e.mode & !0o1775 == 0,
        };
        assert!(
            mode_ok,
            "member {p} ({kind:?}) has mode {:o}: not as {:?} writes it",
            e.mode, meta.modes
        );
        if let Some(c) = meta.mtime_clamp {
            assert!(
                e.mtime <= c,
                "member {p}: mtime {} after the clamp",
                e.mtime
            );
        }
        if kind != Kind::File {
            assert_eq!(e.size, 0, "member {p}: a {kind:?} with data");
        }
        for a in ancestors(&e.path) {
            assert!(
                !not_dirs.contains(a),
                "member {p} runs through {}, which is a {:?} earlier in the tarball",
                show(a),
                kinds.get(a)
            );
        }
        if let Some(&was) = kinds.get(e.path.as_slice()) {
            assert_eq!(was, kind, "member {p} changes kind");
            assert!(
                policy == ConflictPolicy::LastWins && kind != Kind::Dir,
                "member {p} ({kind:?}) is in the tarball twice"
            );
        }
        if kind != Kind::Dir {
            assert!(
                !dirs.contains(e.path.as_slice()),
                "member {p} ({kind:?}) is at a path extraction made a directory earlier"
            );
        }
        match kind {
            Kind::Hardlink => {
                let target = e
                    .link
                    .strip_prefix(b"./")
                    .unwrap_or_else(|| panic!("hardlink {p}: target {} lacks ./", show(&e.link)));
                assert!(
                    matches!(kinds.get(target), Some(Kind::File | Kind::Hardlink)),
                    "hardlink {p}: target {} is not an earlier file ({:?})",
                    show(target),
                    kinds.get(target)
                );
            }
            Kind::Symlink => {
                assert!(!e.link.is_empty(), "symlink {p}: empty target");
                assert!(
                    !e.link.starts_with(b"/"),
                    "symlink {p}: absolute target {}",
                    show(&e.link)
                );
                assert!(
                    !has_control(&e.link),
                    "symlink {p}: control character in target"
                );
            }
            Kind::File | Kind::Dir => {}
        }
        kinds.insert(&e.path, kind);
        if kind == Kind::Dir {
            dirs.insert(&e.path);
        } else {
            not_dirs.insert(&e.path);
        }
        for a in ancestors(&e.path) {
            dirs.insert(a);
        }
    }
    // Every directory a member is in has an entry of its own: before it,
    // or at the tarball's end (one only some tarballs of its artifact
    // still needed).
    for e in entries {
        for a in ancestors(&e.path) {
            assert!(
                kinds.get(a) == Some(&Kind::Dir),
                "member {}: its directory {} has no entry",
                show(&e.path),
                show(a)
            );
        }
    }
    // Kinds never change, so the extracted tree is `kinds`: resolve every
    // symlink in it.
    let links: HashMap<&[u8], &[u8]> = entries
        .iter()
        .filter(|e| e.typeflag == b'2')
        .map(|e| (e.path.as_slice(), e.link.as_slice()))
        .collect();
    for (path, target) in &links {
        stays_inside(path, target, &links)
            .unwrap_or_else(|why| panic!("symlink {} -> {}: {why}", show(path), show(target)));
    }
}

fn has_control(name: &[u8]) -> bool {
    name.iter().any(|&b| b < 0x20 || b == 0x7f)
}

/// No leading `/`, no empty, `.` or `..` component, no NUL or other
/// control character.
fn plain_relative(path: &[u8]) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if has_control(path) {
        return Err("control character in path".into());
    }
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." {
            return Err(format!("component {}", show(c)));
        }
    }
    Ok(())
}

/// Resolves the symlink `path -> target` in the extracted tree, following
/// every symlink it meets on the way, as the kernel would; an error when a
/// `..` climbs above the root. Names the tree does not have count as
/// directories (the strictest reading); a loop is not an escape.
fn stays_inside(path: &[u8], target: &[u8], links: &HashMap<&[u8], &[u8]>) -> Result<(), String> {
    let mut stack: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    stack.pop();
    let mut todo: Vec<&[u8]> = target.split(|&b| b == b'/').rev().collect();
    let mut expansions = 0;
    while let Some(c) = todo.pop() {
        match c {
            b"" | b"." => {}
            b".." => {
                if stack.pop().is_none() {
                    return Err("resolves above the root of the tree".into());
                }
            }
            name => {
                stack.push(name);
                let here = stack.join(&b'/');
                if let Some(t) = links.get(here.as_slice()) {
                    expansions += 1;
                    if expansions > 64 {
                        return Ok(()); // ELOOP
                    }
                    if t.starts_with(b"/") {
                        return Err(format!("runs through the absolute symlink {}", show(&here)));
                    }
                    stack.pop();
                    todo.extend(t.split(|&b| b == b'/').rev());
                }
            }
        }
    }
    Ok(())
}

/// For one accepted artifact: the members rockpack wrote are the members
/// the tar crate reads in the input (the manifest and prefix directories
/// left out, prefixes stripped), as sets: duplicates of a path may be
/// merged.
pub fn same_as_input(input: &[u8], output: &[Entry], meta: Metadata) {
    let Ok(members) = read_tar_crate(input, false) else {
        // The tar crate refuses what rockpack accepted: it is stricter
        // about some things (e.g. numeric fields); nothing to compare.
        return;
    };
    let Some((first, rest)) = members.split_first() else {
        panic!("rockpack accepted an archive in which the tar crate sees no member");
    };
    assert_eq!(
        first.path,
        MANIFEST_NAME,
        "rockpack accepted an archive whose first member is {} to the tar crate",
        show(&first.path)
    );
    let manifest = Manifest::parse(&first.data).expect("a manifest rockpack accepted");
    let key = |e: &Entry| -> (Vec<u8>, u8, Vec<u8>, Vec<u8>, u32) {
        let typeflag = match e.typeflag {
            0 | b'7' => b'0',
            t => t,
        };
        // Modes of directories and links are not compared: of duplicates,
        // only the first is written.
        let mode = if typeflag == b'0' {
            meta.mode(FileKind::File, e.mode)
        } else {
            0
        };
        (
            e.path.clone(),
            typeflag,
            e.link.clone(),
            e.data.clone(),
            mode,
        )
    };
    let mut want = HashSet::new();
    for m in rest {
        let rel = manifest
            .strip(&m.path)
            .unwrap_or_else(|e| panic!("rockpack accepted member {}: {e}", show(&m.path)));
        let Some(rel) = rel else { continue };
        let mut e = m.clone();
        e.path = rel.to_vec();
        if !matches!(e.typeflag, b'1' | b'2') {
            e.link.clear(); // a link field on anything else is not carried
        }

        if e.typeflag == b'1' {
            let t =
                manifest.strip(&e.link).ok().flatten().unwrap_or_else(|| {
                    panic!("rockpack accepted hardlink target {}", show(&e.link))
                });
            e.link = [b"./", t].concat();
        }
        // The directories it is in, entries of their own or not.
        for a in ancestors(&e.path) {
            want.insert((a.to_vec(), b'5', Vec::new(), Vec::new(), 0));
        }
        want.insert(key(&e));
    }
    let got: HashSet<_> = output.iter().map(key).collect();
    if want != got {
        let list = |a: &HashSet<_>, b: &HashSet<_>| -> Vec<String> {
            a.difference(b)
                .map(|(p, t, l, d, m): &(Vec<u8>, u8, Vec<u8>, Vec<u8>, u32)| {
                    format!(
                        "{} {:?} -> {} ({} bytes, mode {m:o})",
                        show(p),
                        *t as char,
                        show(l),
                        d.len()
                    )
                })
                .collect()
        };
        let (missing, extra) = (list(&want, &got), list(&got, &want));
        panic!(
            "the tarball differs from the input as the tar crate reads it:\nnot in the tarball: {missing:?}\nnot in the input: {extra:?}"
        );
    }
}
