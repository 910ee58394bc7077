#!/usr/bin/env python3
"""trees.py - independent oracle for rockpack's integration tests.

Standard library only (Python 3.11); shells out to `zstd` and GNU `tar`.

Commands
  flatten [--on-conflict error|last-wins] [--extract-to DIR] [--keep-modes]
          [--exclude-path PATTERN]... --out OUT.json ARTIFACT...
      Flatten artifact archives (.tar.zst / .tar.xz, written by Python's
      tarfile) the way DESIGN.md describes and write the expected tree.
      Modes are those TheRock's flatten gives on disk as root (umask 022):
      files 0644 plus the member's execute bits, directories 0755, the
      root 0755; every directory a member is in exists (0755 when no
      member describes it). --keep-modes: each member's own mode less
      set-id and world-write bits (mode & 0o1775) instead.
      --extract-to DIR also materialises that tree on disk ("the plain way").
      --exclude-path PATTERN (repeatable, in order) leaves out entries whose
      flattened path the gitignore-style patterns exclude, decided per entry
      as it is added: an excluded entry never enters the tree (so it cannot
      conflict). A kept hardlink whose target is excluded is an error. See
      "Exclude patterns" below.
  tarball [--duplicates error|merge] --out OUT.json TARBALL
      Describe a produced tarball (.tar.gz / .tar.zst / .tar) read with
      tarfile, without extracting. Checks: names are `./...` (or the `.`
      root), no absolute names, no `..`, uid/gid 0, no path twice (unless
      --duplicates merge: directories keep the first mode, other entries:
      the later one wins, as extraction would), hardlink targets earlier.
  tarball ... --no-root, flatten ... --no-root: leave the `.` root entry
      out of the description (to compare with a ZIP archive, which has none).
  zip --out OUT.json ARCHIVE
      Describe a produced ZIP archive read with zipfile: every entry's data
      read (so its CRC-32 checked), modes from the Unix external attributes.
      Checks: names relative, forward slashes, no `./` prefix, no `..`, no
      name twice, directories end with `/` and carry S_IFDIR, files S_IFREG,
      every directory a member is in listed, zipfile.testzip() clean.
  gnutar --out OUT.json TARBALL
      Extract with GNU tar into a fresh temporary directory and describe it.
  dir --out OUT.json DIR
      Describe an existing directory (symlinks are not followed).
  table-facts --commit ID CMAKE
      Print a TheRock family table's facts (each call's target, product
      name, options and FAMILY list) as tests/data/therock_amdgpu_targets.cmake
      keeps them.
  compare A.json B.json
      Exit 0 if identical, else print a short diff (<= 50 lines) and exit 1.
  select --table CMAKE --families 'A;B' [--include-tests] [--platform P]
         [--version V] --out OUT.json RUN_DIR
      Which artifacts of a run directory go into which tarball, the way
      TheRock's release step chooses them (packaging/archives/build_tarballs.py
      calling artifact_manager.py fetch --expand-family-to-targets): per
      family "generic", the family name and its targets from the family table
      (CMAKE, TheRock's cmake/therock_amdgpu_targets.cmake), matched by base
      arch; base tarballs leave out the test component and fftw3; a multiarch
      tarball when base_lib_generic's therock_manifest.json says
      KPACK_SPLIT_ARTIFACTS; families that share a package owner
      (gfx1250-strict is gfx1250's; xnack/sramecc suffixes dropped) make one
      tarball named after the owner. Writes {tarball file name: [artifact paths]}.
  set --table CMAKE --set SET.toml [--format gz|zst|zip] [--platform P]
      [--version V] --out OUT.json RUN_DIR
      Which artifacts of a run directory go into each tarball of a
      tarball-set file (independently of rockpack). Writes
      {tarball file name: {"artifacts": [paths, sorted], "exclude_paths":
      [patterns as given], "sidecar": sidecar file name or null}}.
      The set file (TOML; unknown keys are errors):
        [groups]  NAME = [members]   member: a family, a target or a group
        [[tarball]]
        name = "..."        {label} {version} {platform}; {{ and }} literal;
                            ".tar.gz" / ".tar.zst" is appended per format
        each = [entries]    one tarball per entry (label: the entry; a group
                            is one tarball for all its members), or
        union = [entries]   + label = "...": one tarball for all, or
        each-target = [entries]   one tarball per target of the entries (in
                            order, de-duplicated; label: the target), skipping
                            targets without a non-generic artifact in the run
                            of the target's base arch
        generic = true      false: no artifacts whose target is "generic"
        components / exclude-components / artifacts / exclude-artifacts
        exclude-paths = [patterns]   (checked, passed through)
        formats = ["gz", "zst"]      default: [--format] (default gz)
        sidecar = "sha256sum" | "sha256" | "none"   NAME.sha256sum (default)
        variant = "..."     ignored
      An entry is a group (the union of its members, recursively), else a
      name of the family table (a family, a target, or e.g. dgpu-all):
      wanted = the name and its targets. An artifact (.tar.zst over .tar.xz)
      is in a tarball if its target is generic and generic is true, or its
      target is not generic and its base arch is the base arch of a wanted
      name; and it passes the component/artifact filters (nothing else is
      left out). Errors: an unknown name, a group including itself, a
      tarball selecting nothing, one file name twice, each + union, label
      without union, union without label, an unknown key/format/sidecar/
      component, a bad exclude pattern, an each-target with no target built.

Exclude patterns (gitignore-style; exactly the Rust `ignore` crate's
Gitignore::matched_path_or_any_parents with its globset globs):
  `#...`, blank, a bare `!` or `/`: no-op. Trailing unescaped spaces are
  dropped. `!` negates (re-includes); a backslash before a leading `!` or
  `#` makes it literal. A leading `/`, or a `/` anywhere but at the end,
  anchors the pattern at the root; otherwise it matches the basename at any
  depth. A trailing `/`: directories only. `*` any run of characters but
  `/`; `?` one character (byte) but `/`; `[...]` a class (ranges, `!`/`^`
  negation, `[:alpha:]` and the other POSIX names; never matches `/`; a `[`
  without `]` is literal; a backslash inside is literal); a backslash makes
  the next character literal; a leading `**/` matches 0+ leading
  directories; a trailing `/**` everything inside (1+ components); `/**/`
  0+ directories; any other `**` is like `*`. Braces `{` `}` are refused.
  Deciding a path: the LAST pattern matching the path itself (as a
  directory if it is one) decides: excluded unless it is a negation.
  Without a match, its ancestors are tried nearest first, as directories,
  down to the empty path (the root: so `*/` excludes top-level files too,
  as the crate does); the first one matched decides the same way. Nothing
  matched: kept. Matching is case-sensitive.

Tree description (JSON object, sorted keys, indent=1), path -> entry:
  {"type": "dir", "mode": "0755"}
  {"type": "file", "mode": "0644", "sha256": "...", "size": N
   [, "link_group": "<lexicographically smallest path of its hardlink group>"]}
  {"type": "symlink", "mode": "0777", "target": "..."}
Paths are relative, without `./` and without trailing `/`; the root is
"." (a tarball without a root entry has none).

Every error is one line on stderr starting with `trees.py: `; exit status 1
(2 for usage errors).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
import tempfile
import tomllib

PROG = "trees.py"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b"


class Fail(Exception):
    """An error reported as one line and exit status 1."""


# ---------------------------------------------------------------------------
# small helpers


def mode_str(mode: int) -> str:
    return format(mode & 0o7777, "04o")


def sniff(path: str) -> str:
    """Return 'zstd', 'xz', 'gzip' or 'tar' from the file's magic bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise Fail(f"cannot read {path}: {e.strerror}") from None
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return "tar"


def decompressed_bytes(path: str) -> bytes:
    """The whole decompressed tar stream of `path` (inputs are small)."""
    kind = sniff(path)
    if kind == "zstd":
        proc = subprocess.run(
            ["zstd", "-dc", "--", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().replace("\n", " | ")
            raise Fail(f"{path}: zstd -dc failed (status {proc.returncode}): {msg}")
        return proc.stdout
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if kind == "xz":
            return lzma.decompress(raw)
        if kind == "gzip":
            return gzip.decompress(raw)
        return raw
    except (OSError, lzma.LZMAError, EOFError, gzip.BadGzipFile) as e:
        raise Fail(f"{path}: cannot decompress ({kind}): {e}") from None


def open_tar(path: str) -> tarfile.TarFile:
    data = decompressed_bytes(path)
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as e:
        raise Fail(f"{path}: not a readable tar archive: {e}") from None


def read_member(tf: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
    f = tf.extractfile(m)
    if f is None:
        return b""
    data = f.read()
    if len(data) != m.size:
        raise Fail(f"member {m.name!r}: short read ({len(data)} of {m.size} bytes)")
    return data


def bad_components(path: str) -> str | None:
    """Why a relative path is not acceptable, or None."""
    if path.startswith("/"):
        return "absolute name"
    parts = path.split("/")
    if ".." in parts:
        return "'..' component"
    if "" in parts or "." in parts:
        return "empty or '.' component"
    return None


REG_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
TYPE_NAMES = {
    tarfile.REGTYPE: "regular file",
    tarfile.AREGTYPE: "regular file",
    tarfile.CONTTYPE: "contiguous file",
    tarfile.LNKTYPE: "hardlink",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.DIRTYPE: "directory",
    tarfile.FIFOTYPE: "fifo",
    tarfile.GNUTYPE_SPARSE: "sparse file",
}


def type_name(m: tarfile.TarInfo) -> str:
    return TYPE_NAMES.get(m.type, f"type {m.type!r}")


# ---------------------------------------------------------------------------
# the in-memory tree


class Node:
    """A file's inode: shared by all hardlinked names."""

    __slots__ = ("mode", "sha256", "size", "data")

    def __init__(self, mode: int, data: bytes | None, sha256: str | None = None, size: int | None = None):
        self.mode = mode & 0o7777
        self.data = data
        self.sha256 = sha256 if sha256 is not None else hashlib.sha256(data).hexdigest()
        self.size = size if size is not None else len(data)


class Entry:
    __slots__ = ("type", "mode", "target", "node")

    def __init__(self, type_: str, mode: int = 0, target: str | None = None, node: Node | None = None):
        self.type = type_  # "dir" | "file" | "symlink"
        self.mode = mode & 0o7777
        self.target = target
        self.node = node

    def same(self, other: "Entry") -> bool:
        """Identical type + content + mode (symlinks: the target)."""
        if self.type != other.type:
            return False
        if self.type == "dir":
            return True
        if self.type == "symlink":
            return (self.target, self.mode) == (other.target, other.mode)
        a, b = self.node, other.node
        return (a.sha256, a.size, a.mode) == (b.sha256, b.size, b.mode)

    def describe(self) -> str:
        if self.type == "dir":
            return f"dir {mode_str(self.mode)}"
        if self.type == "symlink":
            return f"symlink -> {self.target}"
        return f"file {mode_str(self.node.mode)} size {self.node.size} sha256 {self.node.sha256[:12]}"


def tree_to_json(tree: dict[str, Entry]) -> dict:
    groups: dict[int, list[str]] = {}
    for path, e in tree.items():
        if e.type == "file":
            groups.setdefault(id(e.node), []).append(path)
    out = {}
    for path, e in tree.items():
        if e.type == "dir":
            out[path] = {"type": "dir", "mode": mode_str(e.mode)}
        elif e.type == "symlink":
            out[path] = {"type": "symlink", "mode": mode_str(e.mode), "target": e.target}
        else:
            d = {"type": "file", "mode": mode_str(e.node.mode), "sha256": e.node.sha256, "size": e.node.size}
            members = groups[id(e.node)]
            if len(members) > 1:
                d["link_group"] = min(members)
            out[path] = d
    return out


def write_json(obj: dict, out: str) -> None:
    text = json.dumps(obj, sort_keys=True, indent=1) + "\n"
    if out == "-":
        sys.stdout.write(text)
        return
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise Fail(f"cannot write {out}: {e.strerror}") from None


# ---------------------------------------------------------------------------
# exclude-paths: gitignore-style patterns, decided the way the `ignore` crate's
# Gitignore::matched_path_or_any_parents does (globs compiled like globset with
# literal_separator and backslash_escape, case-sensitive, unclosed `[` literal).


_POSIX_CLASSES = {
    "alnum": [("0", "9"), ("A", "Z"), ("a", "z")],
    "alpha": [("A", "Z"), ("a", "z")],
    "blank": [("\t", "\t"), (" ", " ")],
    "cntrl": [("\x00", "\x1f"), ("\x7f", "\x7f")],
    "digit": [("0", "9")],
    "graph": [("!", "~")],
    "lower": [("a", "z")],
    "print": [(" ", "~")],
    "punct": [("!", "/"), (":", "@"), ("[", "`"), ("{", "~")],
    "space": [("\t", "\r"), (" ", " ")],
    "upper": [("A", "Z")],
    "xdigit": [("0", "9"), ("A", "F"), ("a", "f")],
}


class _GlobParser:
    """globset's glob parser (no alternates: braces are refused earlier).
    Tokens: ("lit", c) ("any",) ("star",) ("rprefix",) ("rsuffix",) ("rzom",)
    ("class", negated, [(lo, hi), ...])."""

    def __init__(self, glob: str, original: str):
        self.glob, self.original = glob, original
        self.pos, self.prev, self.cur = 0, None, None
        self.toks: list[tuple] = []
        self.unclosed = False

    def error(self, why: str) -> Fail:
        return Fail(f"exclude-path {self.original!r}: {why}")

    def bump(self) -> str | None:
        self.prev = self.cur
        if self.pos < len(self.glob):
            self.cur = self.glob[self.pos]
            self.pos += 1
        else:
            self.cur = None
        return self.cur

    def peek(self) -> str | None:
        return self.glob[self.pos] if self.pos < len(self.glob) else None

    def parse(self) -> list[tuple]:
        while (c := self.bump()) is not None:
            if c == "?":
                self.toks.append(("any",))
            elif c == "*":
                self.star()
            elif c == "[" and not self.unclosed:
                self.cls()
            elif c == "\\":
                nxt = self.bump()
                if nxt is None:
                    raise self.error("dangling '\\'")
                self.toks.append(("lit", nxt))
            else:
                self.toks.append(("lit", c))
        return self.toks

    def star(self) -> None:
        prev = self.prev
        two = [("star",), ("star",)]
        if self.peek() != "*":
            self.toks.append(("star",))
            return
        self.bump()
        if not self.toks:
            if self.peek() not in (None, "/"):
                self.toks += two
            else:
                self.toks.append(("rprefix",))
                self.bump()
            return
        if prev != "/":
            self.toks += two
            return
        nxt = self.peek()
        if nxt is None:
            self.bump()
            suffix = True
        elif nxt == "/":
            self.bump()
            suffix = False
        else:
            self.toks += two
            return
        last = self.toks.pop()  # the literal '/' (or a recursive token)
        if last in (("rprefix",), ("rsuffix",)):
            self.toks.append(last)
        else:
            self.toks.append(("rsuffix",) if suffix else ("rzom",))

    def cls(self) -> None:
        saved = (self.pos, self.prev, self.cur)
        ranges: list[list[str]] = []
        negated = self.peek() in ("!", "^")
        if negated:
            self.bump()
        first, in_range = True, False

        def extend_last(c: str) -> None:
            ranges[-1][1] = c
            if ranges[-1][1] < ranges[-1][0]:
                raise self.error(f"invalid range; {ranges[-1][0]!r} > {c!r}")

        while True:
            c = self.bump()
            if c is None:  # unclosed: the '[' is a literal
                self.pos, self.prev, self.cur = saved
                self.unclosed = True
                self.toks.append(("lit", "["))
                return
            if c == "]":
                if not first:
                    break
                ranges.append(["]", "]"])
            elif c == "-":
                if first:
                    ranges.append(["-", "-"])
                elif in_range:
                    extend_last("-")
                    in_range = False
                else:
                    in_range = True
            elif c == "[" and not in_range and self.peek() == ":":
                posix = self.posix_class()
                ranges.extend([list(r) for r in posix] if posix is not None else [["[", "["]])
                in_range = False
            else:
                if in_range:
                    extend_last(c)
                else:
                    ranges.append([c, c])
                in_range = False
            first = False
        if in_range:
            ranges.append(["-", "-"])
        self.toks.append(("class", negated, [tuple(r) for r in ranges]))

    def posix_class(self):
        """`[:name:]` inside a class; None (state restored unless the
        `:name:]` form was complete) when not a known class."""
        saved = (self.pos, self.prev, self.cur)
        self.bump()  # ':'
        name = ""
        while True:
            c = self.bump()
            if c == ":" and self.peek() == "]":
                self.bump()
                return _POSIX_CLASSES.get(name)
            if c is not None and "a" <= c <= "z" and len(name) < 8:
                name += c
                continue
            self.pos, self.prev, self.cur = saved
            return None


def _re_bytes(c: str) -> str:
    """A character as a (bytes) regex literal, byte by byte like globset."""
    out = []
    for b in c.encode("utf-8", "surrogateescape"):
        out.append(re.escape(chr(b)) if b < 0x80 else f"\\x{b:02x}")
    return "".join(out)


def _tokens_regex(toks: list[tuple]) -> str:
    if toks == [("rprefix",)]:
        return ".*"
    out = []
    for t in toks:
        kind = t[0]
        if kind == "lit":
            out.append(_re_bytes(t[1]))
        elif kind == "any":
            out.append("[^/]")
        elif kind == "star":
            out.append("[^/]*")
        elif kind == "rprefix":
            out.append("(?:/?|.*/)")
        elif kind == "rsuffix":
            out.append("/.*")
        elif kind == "rzom":
            out.append("(?:/|/.*/)")
        else:  # class: never matches '/'
            negated, ranges = t[1], t[2]
            if not negated:
                kept = []
                for lo, hi in ranges:
                    if lo > "/" or hi < "/":
                        kept.append((lo, hi))
                    elif lo == "/" and hi == "/":
                        pass
                    elif lo == "/":
                        kept.append(("0", hi))
                    elif hi == "/":
                        kept.append((lo, "."))
                    else:
                        kept += [(lo, "."), ("0", hi)]
                ranges = kept
            if not ranges:
                out.append("[^\\x00-\\xff]")
                continue
            body = "".join(_re_bytes(lo) if lo == hi else f"{_re_bytes(lo)}-{_re_bytes(hi)}"
                           for lo, hi in ranges)
            out.append(f"[^/{body}]" if negated else f"[{body}]")
    return "".join(out)


class ExcludeRule:
    __slots__ = ("original", "negate", "dir_only", "regex")

    def __init__(self, original: str, negate: bool, dir_only: bool, regex: re.Pattern):
        self.original, self.negate, self.dir_only, self.regex = original, negate, dir_only, regex


def _trim_trailing_spaces(line: str) -> str:
    """Drop trailing unescaped spaces (not tabs); a dangling `\\` keeps all."""
    i, last_space = 0, None
    while i < len(line):
        if line[i] == "\\":
            if i + 1 >= len(line):
                return line
            i += 2
            last_space = None
        elif line[i] == " ":
            if last_space is None:
                last_space = i
            i += 1
        else:
            last_space = None
            i += 1
    return line[:last_space] if last_space is not None else line


def compile_exclude(pattern: str) -> ExcludeRule | None:
    """One exclude-paths pattern, or None for a no-op (`#...`, blank, a bare
    `!` or `/`)."""
    if "{" in pattern or "}" in pattern:
        raise Fail(f"exclude-path {pattern!r}: braces are not gitignore syntax")
    line = pattern
    if line.startswith("#"):
        return None
    line = _trim_trailing_spaces(line)
    if not line:
        return None
    negate = anchored = False
    if line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    else:
        if line.startswith("!"):
            negate, line = True, line[1:]
        if line.startswith("/"):
            anchored, line = True, line[1:]
    if not line:
        return None
    dir_only = False
    if line.endswith("/"):
        dir_only, line = True, line[:-1]
        if line.endswith("\\"):
            line = line[:-1]
    actual = line
    if not anchored and "/" not in line and not (actual.startswith("**/") or actual == "**"):
        actual = "**/" + actual
    if actual.endswith("/**"):
        actual += "/*"
    toks = _GlobParser(actual, pattern).parse()
    return ExcludeRule(pattern, negate, dir_only, re.compile(_tokens_regex(toks).encode("latin-1"), re.DOTALL))


class Excluder:
    """The exclude-paths of a flatten: decides each flattened path."""

    def __init__(self, patterns: list[str]):
        self.rules = [r for r in (compile_exclude(p) for p in patterns) if r is not None]

    def _decide(self, path: str, is_dir: bool) -> ExcludeRule | None:
        data = path.encode("utf-8", "surrogateescape")
        for rule in reversed(self.rules):
            if (is_dir or not rule.dir_only) and rule.regex.fullmatch(data):
                return rule
        return None

    def excluded(self, path: str, is_dir: bool) -> bool:
        """The path itself, then its ancestors nearest first (as directories),
        down to the empty path (the root); the first with a match decides,
        by its last matching pattern."""
        if not self.rules:
            return False
        rule = self._decide(path, is_dir)
        while rule is None and path:
            path = path.rsplit("/", 1)[0] if "/" in path else ""
            rule = self._decide(path, True)
        return rule is not None and not rule.negate


# ---------------------------------------------------------------------------
# flatten (the oracle)


def strip_prefix(name: str, prefixes: list[str]) -> tuple[str, str] | None:
    """(prefix, flattened path) for the first prefix `name` lies under."""
    for p in prefixes:
        if name.startswith(p + "/"):
            return p, name[len(p) + 1 :]
    return None


def flatten_artifact(path: str):
    """Yield (flat_path, kind, payload) for one artifact, in archive order.

    kind: "dir" (payload mode), "file" (payload (mode, bytes)),
    "symlink" (payload (mode, target)), "hardlink" (payload flattened target
    path). Modes are the members' own.
    """
    art = os.path.basename(path)
    tf = open_tar(path)

    def err(member: str, why: str) -> Fail:
        return Fail(f"artifact {art}: member {member!r}: {why}")

    with tf:
        members = iter(tf)
        try:
            first = next(members)
        except StopIteration:
            raise Fail(f"artifact {art}: empty archive (no artifact_manifest.txt)") from None
        if first.name != "artifact_manifest.txt" or first.type not in REG_TYPES:
            raise err(first.name, "first member must be the regular file artifact_manifest.txt")
        text = read_member(tf, first).decode("utf-8", errors="surrogateescape")
        prefixes = []
        for line in text.split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            p = line.rstrip("/")
            why = bad_components(p) if p else "empty prefix"
            if why:
                raise Fail(f"artifact {art}: bad manifest prefix {line!r}: {why}")
            prefixes.append(p)
        # No prefix (a lone newline, or 0 bytes): TheRock's writer for an empty
        # component. The artifact contributes nothing; any member is outside.

        seen_files: set[str] = set()  # in-archive names of regular files / hardlinks
        for m in members:
            name = m.name.rstrip("/") if m.isdir() else m.name
            if name.startswith("/"):
                raise err(m.name, "absolute name")
            if ".." in name.split("/"):
                raise err(m.name, "'..' component")
            if m.type not in REG_TYPES and m.type not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
                raise err(m.name, f"unsupported member type: {type_name(m)}")
            if name in prefixes:
                if m.isdir():
                    continue
                raise err(m.name, f"{type_name(m)} named exactly like a prefix")
            hit = strip_prefix(name, prefixes)
            if hit is None:
                raise err(m.name, "not under any manifest prefix")
            flat = hit[1]
            why = bad_components(flat)
            if why:
                raise err(m.name, why)
            if m.isdir():
                yield flat, "dir", m.mode
            elif m.type in REG_TYPES:
                seen_files.add(name)
                yield flat, "file", (m.mode, read_member(tf, m))
            elif m.issym():
                yield flat, "symlink", (m.mode, m.linkname)
            else:  # hardlink
                target = m.linkname
                if target.startswith("/") or ".." in target.split("/"):
                    raise err(m.name, f"bad hardlink target {target!r}")
                thit = strip_prefix(target, prefixes)
                if thit is None:
                    raise err(m.name, f"hardlink target {target!r} not under any manifest prefix")
                if target not in seen_files:
                    raise err(m.name, f"hardlink target {target!r} is not an earlier regular file of this archive")
                seen_files.add(name)
                yield flat, "hardlink", thit[1]


MADE_DIR = 0o755  # mkdir as root, umask 022: the root, and parents no member describes


def written_mode(kind: str, mode: int, keep: bool) -> int:
    """The mode the tarball gets for a member of `kind` with `mode`."""
    if kind == "symlink":
        return 0o777  # what Linux gives every link
    if keep:
        return mode & 0o1775
    if kind == "dir":
        return 0o755
    return 0o644 | (mode & 0o111)  # created 0666 & ~022, execute bits restored


def cmd_flatten(args) -> int:
    tree: dict[str, Entry] = {".": Entry("dir", mode=MADE_DIR)}
    origin: dict[str, str] = {".": "(root)"}  # path -> artifact that supplied the current entry
    excluder = Excluder(args.exclude_path)

    def make_parents(path: str, art: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            if anc not in tree and not excluder.excluded(anc, True):
                tree[anc] = Entry("dir", mode=MADE_DIR)
                origin[anc] = art

    def check_parents(path: str, art: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            e = tree.get(anc)
            if e is not None and e.type != "dir":
                raise Fail(
                    f"path {path!r} in artifact {art}: parent {anc!r} is a {e.type} "
                    f"(from artifact {origin[anc]})"
                )

    def put(path: str, new: Entry, art: str) -> None:
        check_parents(path, art)
        make_parents(path, art)
        old = tree.get(path)
        if old is None:
            tree[path] = new
            origin[path] = art
            return
        if old.type == "dir" and new.type == "dir":
            return  # directories merge; the first mode is kept
        if old.same(new):
            return  # harmless duplicate; the first one stays
        if args.on_conflict == "error":
            raise Fail(
                f"conflict at {path!r}: artifact {origin[path]} has {old.describe()}, "
                f"artifact {art} has {new.describe()}"
            )
        # last-wins: the later entry replaces the earlier one
        if old.type == "dir":
            pre = path + "/"
            for p in [p for p in tree if p.startswith(pre)]:
                del tree[p]
                del origin[p]
        tree[path] = new
        origin[path] = art

    keep = args.keep_modes
    for apath in args.artifacts:
        art = os.path.basename(apath)
        for flat, kind, payload in flatten_artifact(apath):
            if excluder.excluded(flat, kind == "dir"):
                continue  # never enters the tree (so it cannot conflict)
            if kind == "hardlink" and excluder.excluded(payload, False):
                raise Fail(
                    f"{art}: hardlink {flat!r} -> {payload!r}: the target is excluded "
                    f"by exclude-paths and the link is not"
                )
            if kind == "dir":
                put(flat, Entry("dir", mode=written_mode(kind, payload, keep)), art)
            elif kind == "file":
                mode, data = payload
                put(flat, Entry("file", node=Node(written_mode(kind, mode, keep), data)), art)
            elif kind == "symlink":
                mode, target = payload
                put(flat, Entry("symlink", mode=written_mode(kind, mode, keep), target=target), art)
            else:
                # The target appeared earlier in this archive; link to whatever
                # that path holds now (as extracting the tarball would).
                tgt = tree.get(payload)
                if tgt is None or tgt.type != "file":
                    raise Fail(
                        f"artifact {art}: hardlink {flat!r}: target {payload!r} is "
                        f"{'absent' if tgt is None else 'a ' + tgt.type} in the flattened tree"
                    )
                put(flat, Entry("file", node=tgt.node), art)

    if args.extract_to:
        extract_tree(tree, args.extract_to)
    if args.no_root:
        tree.pop(".", None)
    write_json(tree_to_json(tree), args.out)
    return 0


def extract_tree(tree: dict[str, Entry], dest: str) -> None:
    if os.path.lexists(dest):
        if not os.path.isdir(dest) or os.path.islink(dest):
            raise Fail(f"--extract-to {dest}: exists and is not a directory")
        if os.listdir(dest):
            raise Fail(f"--extract-to {dest}: directory is not empty")
    else:
        os.makedirs(dest)

    def full(p: str) -> str:
        return os.path.join(dest, p)

    paths = sorted(p for p in tree if p != ".")
    dirs = [p for p in paths if tree[p].type == "dir"]
    for p in dirs:
        os.makedirs(full(p), mode=0o755, exist_ok=True)
        os.chmod(full(p), 0o700)  # writable while filling; final mode later
    written: dict[int, str] = {}
    for p in paths:
        e = tree[p]
        if e.type == "dir":
            continue
        parent = os.path.dirname(full(p))
        os.makedirs(parent, exist_ok=True)
        if e.type == "symlink":
            os.symlink(e.target, full(p))
            continue
        first = written.get(id(e.node))
        if first is not None:
            os.link(full(first), full(p))
            continue
        with open(full(p), "wb") as f:
            f.write(e.node.data)
        os.chmod(full(p), e.node.mode)
        written[id(e.node)] = p
    for p in sorted(dirs, key=lambda p: (-p.count("/"), p)):
        os.chmod(full(p), tree[p].mode)
    os.chmod(dest, tree["."].mode)


# ---------------------------------------------------------------------------
# tarball (read a produced tarball with tarfile, no extraction)


def cmd_tarball(args) -> int:
    tpath = args.tarball
    tf = open_tar(tpath)
    tree: dict[str, Entry] = {}

    def err(member: str, why: str) -> Fail:
        return Fail(f"{os.path.basename(tpath)}: member {member!r}: {why}")

    def rel(name: str, what: str, member: str) -> str:
        if name.startswith("/"):
            raise err(member, f"absolute {what}")
        if ".." in name.split("/"):
            raise err(member, f"'..' component in {what}")
        if not name.startswith("./"):
            raise err(member, f"{what} does not start with './'")
        p = name[2:].rstrip("/")
        why = bad_components(p) if p else f"empty {what}"
        if why:
            raise err(member, f"{what}: {why}")
        return p

    with tf:
        for m in tf:
            if m.uid != 0 or m.gid != 0:
                raise err(m.name, f"owner is {m.uid}:{m.gid}, expected 0:0")
            if m.name in (".", "./"):
                if not m.isdir():
                    raise err(m.name, f"root entry is a {type_name(m)}")
                if "." in tree and args.duplicates == "error":
                    raise err(m.name, "the root is listed twice")
                tree.setdefault(".", Entry("dir", mode=m.mode))
                continue
            path = rel(m.name, "name", m.name)
            if m.isdir():
                new = Entry("dir", mode=m.mode)
            elif m.type in REG_TYPES:
                new = Entry("file", node=Node(m.mode, read_member(tf, m)))
                new.node.data = None
            elif m.issym():
                new = Entry("symlink", mode=m.mode, target=m.linkname)
            elif m.islnk():
                tp = rel(m.linkname, "hardlink target", m.name)
                tgt = tree.get(tp)
                if tgt is None or tgt.type != "file":
                    raise err(m.name, f"hardlink target {m.linkname!r} is not an earlier file")
                new = Entry("file", node=tgt.node)
            else:
                raise err(m.name, f"unsupported member type: {type_name(m)}")
            parts = path.split("/")
            for i in range(1, len(parts)):
                anc = tree.get("/".join(parts[:i]))
                if anc is not None and anc.type != "dir":
                    raise err(m.name, f"parent {'/'.join(parts[:i])!r} is a {anc.type}")
            old = tree.get(path)
            if old is not None:
                if args.duplicates == "error":
                    raise err(m.name, f"path {path!r} is listed twice")
                if old.type == "dir" and new.type == "dir":
                    continue
                if old.type == "dir":
                    pre = path + "/"
                    for p in [p for p in tree if p.startswith(pre)]:
                        del tree[p]
            tree[path] = new
    if args.follow_links:
        follow_links(tree, lambda path, why: err(path, why))
    if args.no_root:
        tree.pop(".", None)
    write_json(tree_to_json(tree), args.out)
    return 0


def follow_links(tree: dict[str, Entry], err) -> None:
    """Replaces each symlink with the file it leads to, as `zip` without
    `-y` stores it: the links are made on disk (files as empty stand-ins)
    and the kernel resolves them. A link to a directory, out of the tree,
    to nothing or round a loop raises `err(path, why)`. Every file then
    stands alone (a ZIP archive has no hardlinks either)."""
    with tempfile.TemporaryDirectory() as root:
        root = os.path.realpath(root)
        for path in sorted(tree):
            if path == ".":
                continue
            e = tree[path]
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if e.type == "dir":
                os.makedirs(full, exist_ok=True)
            elif e.type == "symlink":
                os.symlink(e.target, full)
            else:
                open(full, "wb").close()
        for path, e in list(tree.items()):
            if e.type != "symlink":
                continue
            real = os.path.realpath(os.path.join(root, path))
            if not real.startswith(root + os.sep):
                raise err(path, f"symlink to {e.target!r} leads out of the tree")
            if not os.path.lexists(real):
                raise err(path, f"symlink to {e.target!r} leads to nothing")
            if os.path.isdir(real):
                raise err(path, f"symlink to {e.target!r} leads to a directory")
            found = tree.get(os.path.relpath(real, root))
            if found is None or found.type != "file":
                raise err(path, f"symlink to {e.target!r} leads to no file of the tree")
            tree[path] = Entry("file", node=found.node)
    for e in tree.values():
        if e.type == "file":
            n = e.node
            e.node = Node(n.mode, None, sha256=n.sha256, size=n.size)


def cmd_zip(args) -> int:
    zpath = args.archive
    tree: dict[str, Entry] = {}

    def err(name: str, why: str) -> Fail:
        return Fail(f"{os.path.basename(zpath)}: entry {name!r}: {why}")

    with zipfile.ZipFile(zpath) as zf:
        bad = zf.testzip()
        if bad is not None:
            raise err(bad, "bad CRC-32")
        for i in zf.infolist():
            name = i.filename
            if name.startswith("/") or name.startswith("./") or "\\" in name:
                raise err(name, "not a relative name with forward slashes")
            path = name.rstrip("/")
            why = bad_components(path) if path else "empty name"
            if why:
                raise err(name, why)
            if path in tree:
                raise err(name, "listed twice")
            mode = i.external_attr >> 16
            if i.is_dir():
                if not stat.S_ISDIR(mode):
                    raise err(name, f"a directory whose attributes say {oct(mode)}")
                tree[path] = Entry("dir", mode=mode)
            else:
                if not stat.S_ISREG(mode):
                    raise err(name, f"a file whose attributes say {oct(mode)}")
                tree[path] = Entry("file", node=Node(mode & 0o7777, zf.read(i)))
                tree[path].node.data = None
    for path in tree:
        parts = path.split("/")
        for k in range(1, len(parts)):
            anc = tree.get("/".join(parts[:k]))
            if anc is None:
                raise err(path, f"its directory {'/'.join(parts[:k])!r} is not listed")
            if anc.type != "dir":
                raise err(path, f"parent {'/'.join(parts[:k])!r} is a {anc.type}")
    write_json(tree_to_json(tree), args.out)
    return 0


# ---------------------------------------------------------------------------
# dir / gnutar (describe a directory on disk)


def sha256_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    return h.hexdigest(), n


def describe_dir(root: str, fix_perms: bool = False) -> dict:
    """Describe `root`. With fix_perms, temporarily grant the owner read (and
    search) access to unreadable entries; the recorded mode is the original."""
    if not os.path.isdir(root) or os.path.islink(root):
        raise Fail(f"{root}: not a directory")
    out: dict[str, dict] = {}
    inodes: dict[tuple[int, int], list[str]] = {}

    def with_access(full: str, st: os.stat_result, need: int, fn):
        if fix_perms and (st.st_mode & need) != need:
            os.chmod(full, stat.S_IMODE(st.st_mode) | need)
            try:
                return fn()
            finally:
                os.chmod(full, stat.S_IMODE(st.st_mode))
        return fn()

    def walk(full: str, rel: str) -> None:
        st = os.lstat(full)
        names = with_access(full, st, stat.S_IRUSR | stat.S_IXUSR, lambda: sorted(os.listdir(full)))
        for name in names:
            f = os.path.join(full, name)
            r = f"{rel}/{name}" if rel else name
            s = os.lstat(f)
            if stat.S_ISDIR(s.st_mode):
                out[r] = {"type": "dir", "mode": mode_str(s.st_mode)}
                walk(f, r)
            elif stat.S_ISLNK(s.st_mode):
                out[r] = {"type": "symlink", "mode": mode_str(s.st_mode), "target": os.readlink(f)}
            elif stat.S_ISREG(s.st_mode):
                digest, size = with_access(f, s, stat.S_IRUSR, lambda: sha256_file(f))
                out[r] = {"type": "file", "mode": mode_str(s.st_mode), "sha256": digest, "size": size}
                if s.st_nlink > 1:
                    inodes.setdefault((s.st_dev, s.st_ino), []).append(r)
            else:
                raise Fail(f"{f}: unsupported file type (mode {oct(s.st_mode)})")

    out["."] = {"type": "dir", "mode": mode_str(os.lstat(root).st_mode)}
    try:
        walk(root, "")
    except OSError as e:
        raise Fail(f"cannot read {e.filename or root}: {e.strerror}") from None
    for paths in inodes.values():
        if len(paths) > 1:
            g = min(paths)
            for p in paths:
                out[p]["link_group"] = g
    return out


def cmd_dir(args) -> int:
    write_json(describe_dir(args.dir), args.out)
    return 0


def rmtree_forcefully(path: str) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                try:
                    os.chmod(full, 0o700)
                except OSError:
                    pass
    shutil.rmtree(path, ignore_errors=True)


def cmd_gnutar(args) -> int:
    tpath = args.tarball
    kind = sniff(tpath)
    flags = {"zstd": ["--zstd"], "gzip": ["-z"], "xz": ["-J"], "tar": []}[kind]
    tmp = tempfile.mkdtemp(prefix="trees-gnutar-")
    try:
        os.chmod(tmp, 0o700)
        cmd = ["tar", "-x", *flags, "-f", os.path.abspath(tpath), "-C", tmp,
               "--same-permissions", "--numeric-owner", "--delay-directory-restore"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().replace("\n", " | ")
            raise Fail(f"{tpath}: GNU tar extraction failed (status {proc.returncode}): {msg}")
        desc = describe_dir(tmp, fix_perms=True)
    finally:
        rmtree_forcefully(tmp)
    write_json(desc, args.out)
    return 0


# ---------------------------------------------------------------------------
# compare


def load_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except OSError as e:
        raise Fail(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise Fail(f"{path}: invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise Fail(f"{path}: not a JSON object")
    return obj


def cmd_compare(args) -> int:
    a, b = load_json(args.a), load_json(args.b)
    if a == b:
        return 0
    lines = []
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    differ = sorted(p for p in set(a) & set(b) if a[p] != b[p])
    lines.append(
        f"trees differ: {len(only_a)} only in {args.a}, {len(only_b)} only in {args.b}, "
        f"{len(differ)} differing"
    )
    enc = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    for p in only_a:
        lines.append(f"- {p}: {enc(a[p])}")
    for p in only_b:
        lines.append(f"+ {p}: {enc(b[p])}")
    for p in differ:
        lines.append(f"~ {p}:")
        lines.append(f"    A {enc(a[p])}")
        lines.append(f"    B {enc(b[p])}")
    limit = 50
    if len(lines) > limit:
        rest = len(lines) - (limit - 1)
        lines = lines[: limit - 1] + [f"... ({rest} more lines)"]
    print("\n".join(lines))
    return 1


# ---------------------------------------------------------------------------
# select: TheRock's choice of artifacts


ARTIFACT_RE = re.compile(r"^([^_]+)_([^_]+)_([^_]+)\.tar\.(zst|xz)$")
COMPONENTS = ["lib", "run", "dev", "dbg", "doc", "test"]


# The keywords of therock_add_amdgpu_target's calls, in TheRock's newest
# table and its open pull requests: options take no value; the others take
# a list that ends at the next keyword. Only FAMILY's values are families.
TABLE_OPTIONS = ("HW_INDEPENDENT", "PLATFORM_INDEPENDENT")
TABLE_LISTS = ("FAMILY", "EXCLUDE_TARGET_PROJECTS", "INCOMPATIBLE_TARGET_PROJECTS",
               "DISABLE_TARGET_PROJECTS")


def table_calls(path: str) -> list[tuple[str, str, list[str], list[str]]]:
    """(target, product name, families, options) of each
    therock_add_amdgpu_target(TARGET "product" KEYWORD ...) call of a CMake
    family table, in file order (the function's own definition skipped)."""
    with open(path, encoding="utf-8") as f:
        text = "\n".join(line.split("#", 1)[0] for line in f.read().splitlines())
    calls = []
    for m in re.finditer(r"(?<![A-Za-z_(])therock_add_amdgpu_target\(([^)]*)\)", text):
        args = re.findall(r'"[^"]*"|[^\s"]+', m.group(1))
        if len(args) < 2 or "$" in args[0] or text[:m.start()].rstrip().endswith("function("):
            continue
        fams, opts, on = [], [], None
        for a in args[2:]:
            if a in TABLE_OPTIONS:
                opts.append(a)
                on = None
            elif a in TABLE_LISTS:
                on = a
            elif re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", a):
                on = None  # a keyword this reader does not know ends the list
            elif on == "FAMILY":
                fams.append(a)
        calls.append((args[0], args[1].strip('"'), fams, opts))
    if not calls:
        raise Fail(f"{path}: no therock_add_amdgpu_target(...) calls")
    return calls


def family_table(path: str) -> dict[str, list[str]]:
    """Family (and target) name -> targets, from the CMake file's
    therock_add_amdgpu_target calls: each target is a family of itself."""
    table: dict[str, list[str]] = {}
    for target, _, fams, _ in table_calls(path):
        for fam in [target, *fams]:
            table.setdefault(fam, [])
            if target not in table[fam]:
                table[fam].append(target)
    return table


def cmd_table_facts(args) -> int:
    """Restates a TheRock family table as its facts alone, in the calls' own
    syntax: what tests/data/therock_amdgpu_targets.cmake holds."""
    out = [
        "# rockpack test data: the facts of TheRock's GPU family table (each target's",
        "# product name, families and options) as its cmake/therock_amdgpu_targets.cmake",
        f"# declares them at TheRock commit {args.commit},",
        "# restated in the calls' own syntax so that --family-table, tests/tools/trees.py",
        "# and bench/ read it as they read TheRock's file. Written by",
        "# `tests/tools/trees.py table-facts` (not a copy of TheRock's file: no project",
        "# lists, comments or functions). src/plan/families.rs checks that the built-in",
        "# table equals this file's parse. To update: run table-facts on the newer file",
        "# with its commit, then change the built-in table and its commit to match.",
    ]
    for target, product, fams, opts in table_calls(args.table):
        words = [target, f'"{product}"', *opts] + (["FAMILY", *fams] if fams else [])
        out.append(f"therock_add_amdgpu_target({' '.join(words)})")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def base_arch(target: str) -> str:
    return target.split(":")[0] or target


def run_artifacts(run_dir: str) -> dict[str, str]:
    """Artifact file name -> path, for files named like artifacts at any
    depth (TheRock lists a run prefix recursively by basename)."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(run_dir):
        dirs.sort()
        for name in sorted(files):
            m = ARTIFACT_RE.match(name)
            if m and m.group(2) in COMPONENTS:
                found.setdefault(name, os.path.join(root, name))
    return found


def fetch(available: dict[str, str], table: dict[str, list[str]], families: list[str],
          exclude_components: set[str], exclude_artifacts: set[str]) -> list[str]:
    """artifact_manager.py fetch --expand-family-to-targets: generic, the
    family names and their targets; base-arch match; .tar.zst over .tar.xz."""
    wanted = {"generic", *families}
    for fam in families:
        wanted.update(table.get(fam, []))
    bases = {base_arch(t) for t in wanted}
    chosen: dict[tuple[str, str, str], str] = {}
    for name in sorted(available, key=lambda n: (n.rsplit(".tar", 1)[0], not n.endswith(".tar.zst"))):
        a, comp, target, _ = ARTIFACT_RE.match(name).groups()
        if comp in exclude_components or a in exclude_artifacts:
            continue
        if base_arch(target) not in bases:
            continue
        chosen.setdefault((a, comp, target), name)
    return sorted(available[n] for n in chosen.values())


def kpack_split(available: dict[str, str]) -> bool:
    """KPACK_SPLIT_ARTIFACTS from share/therock/therock_manifest.json in
    base_lib_generic, where build_tarballs.py reads it after flattening."""
    path = available.get("base_lib_generic.tar.zst") or available.get("base_lib_generic.tar.xz")
    if path is None:
        return False
    for flat, kind, payload in flatten_artifact(path):
        if flat == "share/therock/therock_manifest.json" and kind == "file":
            return bool(json.loads(payload[1]).get("flags", {}).get("KPACK_SPLIT_ARTIFACTS", False))
    return False


# TheRock's package ownership (its SDK's package_metadata.py, schema 1): a
# variant target whose payloads ship in another's tarball; xnack / sramecc
# feature suffixes do not change the owner.
SHARED_OWNERS = {"gfx1250-strict": "gfx1250"}
FEATURE_SUFFIXES = re.compile(r"([:-](xnack|sramecc)[+-])+$")


def owner_of(name: str) -> str:
    bare = FEATURE_SUFFIXES.sub("", name)
    return SHARED_OWNERS.get(bare, bare)


def by_owner(families: list[str]) -> list[tuple[str, list[str]]]:
    """One tarball per owner (build_tarballs.py since TheRock PR #8328),
    owners in order of first appearance, each with its families in order."""
    groups: dict[str, list[str]] = {}
    for f in families:
        members = groups.setdefault(owner_of(f), [])
        if f not in members:
            members.append(f)
    return list(groups.items())


def cmd_select(args) -> int:
    table = family_table(args.table)
    families = [f.strip() for f in args.families.split(";") if f.strip()]
    if not families:
        raise Fail("no families")
    available = run_artifacts(args.run_dir)
    base = ({"test"}, {"fftw3"})
    nothing: tuple[set[str], set[str]] = (set(), set())
    name = lambda label, tests: (
        f"therock-dist-{args.platform}-{label}{'-tests' if tests else ''}-{args.version}.tar.gz")
    out: dict[str, list[str]] = {}
    labels = by_owner(families)
    if kpack_split(available):
        labels.append(("multiarch", families))
    for label, fams in labels:
        out[name(label, False)] = fetch(available, table, fams, *base)
        if args.include_tests:
            out[name(label, True)] = fetch(available, table, fams, *nothing)
    write_json(out, args.out)
    return 0


# ---------------------------------------------------------------------------
# set: the tarballs of a tarball-set file


SET_TOP_KEYS = {"groups", "tarball"}
SET_TARBALL_KEYS = {"name", "each", "union", "each-target", "label", "generic", "components",
                    "exclude-components", "artifacts", "exclude-artifacts", "exclude-paths",
                    "formats", "sidecar", "variant"}
SET_FORMATS = {"gz": ".tar.gz", "zst": ".tar.zst", "zip": ".zip"}
SET_SIDECARS = {"sha256sum": ".sha256sum", "sha256": ".sha256", "none": None}


def expand_name(template: str, fields: dict[str, str], where: str) -> str:
    """`{label}` `{version}` `{platform}`; `{{` and `}}` are literal braces."""
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if template.startswith("{{", i) or template.startswith("}}", i):
            out.append(c)
            i += 2
        elif c == "{":
            end = template.find("}", i)
            if end < 0:
                raise Fail(f"{where}: name {template!r}: unclosed '{{'")
            field = template[i + 1 : end]
            if field not in fields:
                raise Fail(f"{where}: name {template!r}: unknown field {{{field}}} "
                           f"(known: {', '.join('{' + k + '}' for k in fields)})")
            out.append(fields[field])
            i = end + 1
        elif c == "}":
            raise Fail(f"{where}: name {template!r}: single '}}' (write '}}}}')")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def cmd_set(args) -> int:
    table = family_table(args.table)
    try:
        with open(args.set_file, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise Fail(f"cannot read {args.set_file}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise Fail(f"{args.set_file}: invalid TOML: {e}") from None
    src = os.path.basename(args.set_file)
    for key in doc:
        if key not in SET_TOP_KEYS:
            raise Fail(f"{src}: unknown key {key!r} (known: {', '.join(sorted(SET_TOP_KEYS))})")

    def str_list(value, where: str, allow_empty: bool = False) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Fail(f"{where}: expected a list of strings")
        if not value and not allow_empty:
            raise Fail(f"{where}: empty list")
        return value

    groups = doc.get("groups", {})
    if not isinstance(groups, dict):
        raise Fail(f"{src}: [groups] must be a table")
    for g, members in groups.items():
        str_list(members, f"{src}: group {g!r}")

    def names(entry: str, where: str, stack: tuple[str, ...] = ()) -> list[str]:
        """The family-table names an entry stands for, in order."""
        if entry in groups:
            if entry in stack:
                raise Fail(f"{src}: group {entry!r} includes itself "
                           f"({' -> '.join(stack[stack.index(entry):] + (entry,))})")
            out: list[str] = []
            for m in groups[entry]:
                for n in names(m, f"group {entry!r}", stack + (entry,)):
                    if n not in out:
                        out.append(n)
            return out
        if entry in table:
            return [entry]
        raise Fail(f"{src}: {where}: unknown name {entry!r} (not a group, family or target)")

    for g in groups:
        names(g, f"group {g!r}")

    def targets(ns: list[str]) -> list[str]:
        out: list[str] = []
        for n in ns:
            for t in table[n]:
                if t not in out:
                    out.append(t)
        return out

    tarballs = doc.get("tarball")
    if tarballs is None:
        raise Fail(f"{src}: no [[tarball]]")
    if not isinstance(tarballs, list) or not all(isinstance(t, dict) for t in tarballs):
        raise Fail(f"{src}: tarball must be an array of tables ([[tarball]])")
    if not tarballs:
        raise Fail(f"{src}: no [[tarball]]")

    available = run_artifacts(args.run_dir)
    parsed = {n: ARTIFACT_RE.match(n).groups()[:3] for n in available}
    # .tar.zst wins over .tar.xz for one name/component/target (as fetch does)
    chosen: dict[tuple[str, str, str], str] = {}
    for n in sorted(available, key=lambda n: (n.rsplit(".tar", 1)[0], not n.endswith(".tar.zst"))):
        chosen.setdefault(parsed[n], n)
    built_bases = {base_arch(t) for (_, _, t) in chosen if t != "generic"}

    out: dict[str, dict] = {}
    for i, tb in enumerate(tarballs, 1):
        where = f"{src}: [[tarball]] #{i}"
        for key in tb:
            if key not in SET_TARBALL_KEYS:
                raise Fail(f"{where}: unknown key {key!r}")
        name = tb.get("name")
        if not isinstance(name, str) or not name:
            raise Fail(f"{where}: 'name' (a non-empty string) is required")
        where = f"{src}: [[tarball]] {name!r}"
        modes = [k for k in ("each", "union", "each-target") if k in tb]
        if len(modes) != 1:
            raise Fail(f"{where}: needs exactly one of each, union, each-target"
                       + (f" (has {' and '.join(modes)})" if modes else ""))
        mode = modes[0]
        entries = str_list(tb[mode], f"{where}: {mode}")
        if "label" in tb and mode != "union":
            raise Fail(f"{where}: 'label' is only for union")
        if mode == "union" and not isinstance(tb.get("label"), str):
            raise Fail(f"{where}: union needs a 'label' (a string)")
        generic = tb.get("generic", True)
        if not isinstance(generic, bool):
            raise Fail(f"{where}: 'generic' must be true or false")
        filt: dict[str, set[str] | None] = {}
        for key in ("components", "exclude-components", "artifacts", "exclude-artifacts"):
            empty_ok = key.startswith("exclude-")
            filt[key] = set(str_list(tb[key], f"{where}: {key}", empty_ok)) if key in tb else None
        for key in ("components", "exclude-components"):
            bad = sorted((filt[key] or set()) - set(COMPONENTS))
            if bad:
                raise Fail(f"{where}: {key}: unknown component {bad[0]!r} (known: {', '.join(COMPONENTS)})")
        excludes = str_list(tb.get("exclude-paths", []), f"{where}: exclude-paths", allow_empty=True)
        for p in excludes:
            compile_exclude(p)  # refuse bad patterns here already
        formats = str_list(tb.get("formats", [args.format]), f"{where}: formats")
        for fm in formats:
            if fm not in SET_FORMATS:
                raise Fail(f"{where}: unknown format {fm!r} (known: gz, zst)")
        sidecar = tb.get("sidecar", "sha256sum")
        if not isinstance(sidecar, str) or sidecar not in SET_SIDECARS:
            raise Fail(f"{where}: unknown sidecar {sidecar!r} (known: sha256sum, sha256, none)")
        if "variant" in tb and not isinstance(tb["variant"], str):
            raise Fail(f"{where}: 'variant' must be a string")

        in_tb = f"[[tarball]] {name!r}: {mode}"
        if mode == "each":
            units = [(e, names(e, in_tb)) for e in entries]
        elif mode == "union":
            ns: list[str] = []
            for e in entries:
                ns += [n for n in names(e, in_tb) if n not in ns]
            units = [(tb["label"], ns)]
        else:
            ts = targets([n for e in entries for n in names(e, in_tb)])
            units = [(t, [t]) for t in ts if base_arch(t) in built_bases]
            if not units:
                raise Fail(f"{where}: each-target: no target of {', '.join(entries)} "
                           f"has an artifact in the run")

        for label, ns in units:
            bases = {base_arch(n) for n in ns + targets(ns)}
            picked = []
            for (a, comp, target), fname in chosen.items():
                if target == "generic":
                    if not generic:
                        continue
                elif base_arch(target) not in bases:
                    continue
                if filt["components"] is not None and comp not in filt["components"]:
                    continue
                if filt["exclude-components"] and comp in filt["exclude-components"]:
                    continue
                if filt["artifacts"] is not None and a not in filt["artifacts"]:
                    continue
                if filt["exclude-artifacts"] and a in filt["exclude-artifacts"]:
                    continue
                picked.append(available[fname])
            fields = {"label": label, "version": args.version, "platform": args.platform}
            stem = expand_name(name, fields, where)
            if not stem or "/" in stem:
                raise Fail(f"{where}: file name {stem!r} is empty or contains '/'")
            for fm in formats:
                fname = stem + SET_FORMATS[fm]
                if not picked:
                    raise Fail(f"{where}: tarball {fname} selects no artifact")
                if fname in out:
                    raise Fail(f"{where}: tarball {fname} is produced twice")
                ext = SET_SIDECARS[sidecar]
                out[fname] = {"artifacts": sorted(picked), "exclude_paths": list(excludes),
                              "sidecar": fname + ext if ext else None}
    write_json(out, args.out)
    return 0


# ---------------------------------------------------------------------------
# CLI


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other error
        sys.stderr.write(f"{PROG}: {message.splitlines()[0] if message else 'usage error'} (see --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Independent oracle for rockpack's tarball trees.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    f = sub.add_parser("flatten", help="flatten artifacts into the expected tree")
    f.add_argument("--on-conflict", choices=["error", "last-wins"], default="error")
    f.add_argument("--extract-to", metavar="DIR")
    f.add_argument("--keep-modes", action="store_true",
                   help="members' own modes less set-id and world-write (rockpack --keep-modes)")
    f.add_argument("--exclude-path", action="append", default=[], metavar="PATTERN",
                   help="leave out flattened paths matching this gitignore-style pattern "
                        "(repeatable; later patterns win; `!` re-includes)")
    f.add_argument("--no-root", action="store_true",
                   help="leave the root entry out (to compare with a ZIP archive)")
    f.add_argument("--out", required=True, metavar="OUT.json")
    f.add_argument("artifacts", nargs="+", metavar="ARTIFACT")
    f.set_defaults(func=cmd_flatten)

    t = sub.add_parser("tarball", help="describe a tarball read with tarfile")
    t.add_argument("--duplicates", choices=["error", "merge"], default="error",
                   help="a path listed twice: error (default), or merge like extraction "
                        "(directories keep the first mode, otherwise the later entry wins)")
    t.add_argument("--no-root", action="store_true",
                   help="leave the root entry out (to compare with a ZIP archive)")
    t.add_argument("--follow-links", action="store_true",
                   help="each symlink as the file it leads to (to compare with a ZIP archive)")
    t.add_argument("--out", required=True, metavar="OUT.json")
    t.add_argument("tarball", metavar="TARBALL")
    t.set_defaults(func=cmd_tarball)

    z = sub.add_parser("zip", help="describe a ZIP archive read with zipfile")
    z.add_argument("--out", required=True, metavar="OUT.json")
    z.add_argument("archive", metavar="ARCHIVE")
    z.set_defaults(func=cmd_zip)

    g = sub.add_parser("gnutar", help="extract with GNU tar and describe the result")
    g.add_argument("--out", required=True, metavar="OUT.json")
    g.add_argument("tarball", metavar="TARBALL")
    g.set_defaults(func=cmd_gnutar)

    d = sub.add_parser("dir", help="describe a directory")
    d.add_argument("--out", required=True, metavar="OUT.json")
    d.add_argument("dir", metavar="DIR")
    d.set_defaults(func=cmd_dir)

    sel = sub.add_parser("select", help="choose each tarball's artifacts as TheRock does")
    sel.add_argument("--table", required=True, metavar="CMAKE")
    sel.add_argument("--families", required=True, metavar="A;B")
    sel.add_argument("--include-tests", action="store_true")
    sel.add_argument("--platform", default="linux")
    sel.add_argument("--version", default="0.0.0")
    sel.add_argument("--out", required=True, metavar="OUT.json")
    sel.add_argument("run_dir", metavar="RUN_DIR")
    sel.set_defaults(func=cmd_select)

    st = sub.add_parser("set", help="each tarball's artifacts from a tarball-set file")
    st.add_argument("--table", required=True, metavar="CMAKE")
    st.add_argument("--set", required=True, dest="set_file", metavar="SET.toml")
    st.add_argument("--format", choices=sorted(SET_FORMATS), default="gz",
                    help="the format of tarballs without 'formats' (default gz)")
    st.add_argument("--platform", default="linux")
    st.add_argument("--version", default="0.0.0")
    st.add_argument("--out", required=True, metavar="OUT.json")
    st.add_argument("run_dir", metavar="RUN_DIR")
    st.set_defaults(func=cmd_set)

    tf = sub.add_parser("table-facts", help="restate a TheRock family table as its facts")
    tf.add_argument("--commit", required=True, help="the TheRock commit the table is from")
    tf.add_argument("table", metavar="CMAKE")
    tf.set_defaults(func=cmd_table_facts)

    c = sub.add_parser("compare", help="compare two tree descriptions")
    c.add_argument("a", metavar="A.json")
    c.add_argument("b", metavar="B.json")
    c.set_defaults(func=cmd_compare)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Fail as e:
        msg = str(e)
    except (OSError, tarfile.TarError, ValueError) as e:
        msg = f"{type(e).__name__}: {e}"
    sys.stderr.write(f"{PROG}: {msg.replace(chr(10), ' | ')}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
