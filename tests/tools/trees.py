#!/usr/bin/env python3
"""trees.py - independent oracle for rockpack's integration tests.

Standard library only (Python 3.11); shells out to `zstd` and GNU `tar`.

Commands
  flatten [--on-conflict error|last-wins] [--extract-to DIR] --out OUT.json ARTIFACT...
      Flatten artifact archives (.tar.zst / .tar.xz, written by Python's
      tarfile) the way DESIGN.md describes and write the expected tree.
      --extract-to DIR also materialises that tree on disk ("the plain way").
  tarball [--duplicates error|merge] --out OUT.json TARBALL
      Describe a produced tarball (.tar.gz / .tar.zst / .tar) read with
      tarfile, without extracting. Checks: names are `./...` (or the `.`
      root), no absolute names, no `..`, uid/gid 0, no path twice (unless
      --duplicates merge: directories keep the first mode, other entries:
      the later one wins, as extraction would), hardlink targets earlier.
  gnutar --out OUT.json TARBALL
      Extract with GNU tar into a fresh temporary directory and describe it.
  dir --out OUT.json DIR
      Describe an existing directory (symlinks are not followed).
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
      KPACK_SPLIT_ARTIFACTS. Writes {tarball file name: [artifact paths]}.

Tree description (JSON object, sorted keys, indent=1), path -> entry:
  {"type": "dir", "mode": "0755"}
  {"type": "file", "mode": "0644", "sha256": "...", "size": N
   [, "link_group": "<lexicographically smallest path of its hardlink group>"]}
  {"type": "symlink", "target": "..."}
Paths are relative, without `./` and without trailing `/`; the root is omitted.

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
import tempfile

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
            return self.target == other.target
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
            out[path] = {"type": "symlink", "target": e.target}
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
    "symlink" (payload target), "hardlink" (payload flattened target path).
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
                yield flat, "symlink", m.linkname
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


def cmd_flatten(args) -> int:
    tree: dict[str, Entry] = {}
    origin: dict[str, str] = {}  # path -> artifact that supplied the current entry

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

    for apath in args.artifacts:
        art = os.path.basename(apath)
        for flat, kind, payload in flatten_artifact(apath):
            if kind == "dir":
                put(flat, Entry("dir", mode=payload), art)
            elif kind == "file":
                mode, data = payload
                put(flat, Entry("file", node=Node(mode, data)), art)
            elif kind == "symlink":
                put(flat, Entry("symlink", target=payload), art)
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

    paths = sorted(tree)
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
                continue
            path = rel(m.name, "name", m.name)
            if m.isdir():
                new = Entry("dir", mode=m.mode)
            elif m.type in REG_TYPES:
                new = Entry("file", node=Node(m.mode, read_member(tf, m)))
                new.node.data = None
            elif m.issym():
                new = Entry("symlink", target=m.linkname)
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
                out[r] = {"type": "symlink", "target": os.readlink(f)}
            elif stat.S_ISREG(s.st_mode):
                digest, size = with_access(f, s, stat.S_IRUSR, lambda: sha256_file(f))
                out[r] = {"type": "file", "mode": mode_str(s.st_mode), "sha256": digest, "size": size}
                if s.st_nlink > 1:
                    inodes.setdefault((s.st_dev, s.st_ino), []).append(r)
            else:
                raise Fail(f"{f}: unsupported file type (mode {oct(s.st_mode)})")

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


def family_table(path: str) -> dict[str, list[str]]:
    """Family (and target) name -> targets, from the CMake file's
    therock_add_amdgpu_target(TARGET "product" ... FAMILY f1 f2 ...) calls."""
    with open(path, encoding="utf-8") as f:
        text = "\n".join(line.split("#", 1)[0] for line in f.read().splitlines())
    table: dict[str, list[str]] = {}
    for m in re.finditer(r"(?<![A-Za-z_(])therock_add_amdgpu_target\(([^)]*)\)", text):
        args = re.findall(r'"[^"]*"|[^\s"]+', m.group(1))
        if not args or not args[0].startswith("gfx"):
            continue
        target, fams, on = args[0], [], False
        for a in args[2:]:
            if a in ("FAMILY", "EXCLUDE_TARGET_PROJECTS"):
                on = a == "FAMILY"
            elif on:
                fams.append(a)
        for fam in [target, *fams]:
            table.setdefault(fam, [])
            if target not in table[fam]:
                table[fam].append(target)
    if not table:
        raise Fail(f"{path}: no therock_add_amdgpu_target(...) calls")
    return table


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
    labels = [(f, [f]) for f in families]
    if kpack_split(available):
        labels.append(("multiarch", families))
    for label, fams in labels:
        out[name(label, False)] = fetch(available, table, fams, *base)
        if args.include_tests:
            out[name(label, True)] = fetch(available, table, fams, *nothing)
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
    f.add_argument("--out", required=True, metavar="OUT.json")
    f.add_argument("artifacts", nargs="+", metavar="ARTIFACT")
    f.set_defaults(func=cmd_flatten)

    t = sub.add_parser("tarball", help="describe a tarball read with tarfile")
    t.add_argument("--duplicates", choices=["error", "merge"], default="error",
                   help="a path listed twice: error (default), or merge like extraction "
                        "(directories keep the first mode, otherwise the later entry wins)")
    t.add_argument("--out", required=True, metavar="OUT.json")
    t.add_argument("tarball", metavar="TARBALL")
    t.set_defaults(func=cmd_tarball)

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
