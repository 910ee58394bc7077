#!/usr/bin/env bash
# Self-check for tests/tools/trees.py: the oracle (flatten), the tarfile view
# (tarball), the GNU tar view (gnutar) and the directory view (dir) of the same
# tree must agree, and the error paths must fail with one `trees.py: ` line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
trees="$here/trees.py"
work="$(mktemp -d)"
trap 'chmod -R u+rwX "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

fail() { echo "trees selfcheck: FAIL: $*" >&2; exit 1; }

# expect_fail PATTERN CMD... : CMD must exit non-zero with a `trees.py: ` line
# on stderr that contains PATTERN.
expect_fail() {
    local pattern="$1"; shift
    local err="$work/err.txt"
    if "$@" >/dev/null 2>"$err"; then fail "expected failure: $*"; fi
    [ "$(wc -l <"$err")" -eq 1 ] || { cat "$err" >&2; fail "stderr is not one line: $*"; }
    grep -q '^trees\.py: ' "$err" || { cat "$err" >&2; fail "stderr lacks 'trees.py: ': $*"; }
    grep -qF -- "$pattern" "$err" || { cat "$err" >&2; fail "stderr lacks '$pattern': $*"; }
}

# ---------------------------------------------------------------- artifacts
python3 - "$work" <<'PY'
import io, os, sys, tarfile, time

out = sys.argv[1]
MT = 1700000000.123456  # fractional mtime -> every member gets a PAX record

def build(name, manifest, members):
    """members: (name, kind, arg, mode); kind in dir/file/sym/link/fifo."""
    path = os.path.join(out, name)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        def add(ti, data=None):
            ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = 1001, 1001, "builder", "builder", MT
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        m = "\n".join(manifest).encode() + b"\n"
        ti = tarfile.TarInfo("artifact_manifest.txt"); ti.size = len(m); ti.mode = 0o644
        add(ti, m)
        for n, kind, arg, mode in members:
            ti = tarfile.TarInfo(n); ti.mode = mode
            if kind == "dir":
                ti.type = tarfile.DIRTYPE; add(ti)
            elif kind == "file":
                ti.size = len(arg); add(ti, arg)
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE; ti.linkname = arg; add(ti)
            elif kind == "link":
                ti.type = tarfile.LNKTYPE; ti.linkname = arg; add(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE; add(ti)
    return path

long_dir = "deep/" + "/".join(["d%02d_abcdefghij" % i for i in range(8)])  # > 100 bytes
B = "math-libs/BLAS/hipBLAS/stage"
C = "core/clr/stage"

# a: two nested prefixes, symlink chain, hardlink, long path, space, read-only dir
build("blas_lib_generic.tar", [B, C], [
    (f"{B}/lib", "dir", None, 0o755),
    (f"{B}/lib/libhipblas.so.1.2", "file", b"\x7fELF hipblas\n" * 50, 0o755),
    (f"{B}/lib/libhipblas.so.1", "sym", "libhipblas.so.1.2", 0o777),
    (f"{B}/lib/libhipblas.so", "sym", "libhipblas.so.1", 0o777),
    (f"{B}/lib/hipblas-hardlink.so", "link", f"{B}/lib/libhipblas.so.1.2", 0o755),
    (f"{B}/share", "dir", None, 0o750),
    (f"{B}/share/doc with space.txt", "file", b"hello world\n", 0o644),
    (f"{B}/share/ro", "dir", None, 0o555),
    (f"{B}/share/ro/readonly.txt", "file", b"read only\n", 0o444),
    (f"{C}/bin", "dir", None, 0o755),
    (f"{C}/bin/hipcc", "file", b"#!/bin/sh\necho hipcc\n", 0o755),
    (f"{C}/bin/dangling", "sym", "../nowhere/at all", 0o777),
    (f"{C}/lib", "dir", None, 0o755),
    (f"{C}/lib/common.txt", "file", b"shared content\n", 0o644),
] + [(f"{C}/" + "/".join(long_dir.split("/")[: i + 1]), "dir", None, 0o755)
     for i in range(1, len(long_dir.split("/")))] + [  # "deep" has no entry of its own
    (f"{C}/{long_dir}/a_rather_long_file_name_to_push_past_the_ustar_limit.txt", "file", b"long\n", 0o600),
    (f"{C}/{long_dir}/hardlink_with_a_long_name_too.txt", "link",
     f"{C}/{long_dir}/a_rather_long_file_name_to_push_past_the_ustar_limit.txt", 0o600),
])

# b: merges into lib (different dir mode: the first one is kept), repeats an
# identical file (harmless), adds its own files
build("core_dev_generic.tar", ["core/hip/stage"], [
    ("core/hip/stage/lib", "dir", None, 0o700),
    ("core/hip/stage/lib/common.txt", "file", b"shared content\n", 0o644),
    ("core/hip/stage/lib/libamdhip64.so.6", "file", b"amdhip\n" * 10, 0o755),
    ("core/hip/stage/include", "dir", None, 0o755),
    ("core/hip/stage/include/hip.h", "file", b"#pragma once\n", 0o644),
])

# c: conflicts with a (different content at lib/common.txt)
build("other_lib_generic.tar", ["other/stage"], [
    ("other/stage/lib", "dir", None, 0o755),
    ("other/stage/lib/common.txt", "file", b"DIFFERENT content\n", 0o644),
])

# broken artifacts
build("bad_outside_generic.tar", ["x/stage"], [
    ("x/stage/ok.txt", "file", b"ok\n", 0o644),
    ("y/stage/outside.txt", "file", b"no\n", 0o644),
])
build("bad_dotdot_generic.tar", ["x/stage"], [("x/stage/../escape.txt", "file", b"no\n", 0o644)])
build("bad_fifo_generic.tar", ["x/stage"], [("x/stage/fifo", "fifo", None, 0o644)])
build("bad_link_generic.tar", ["x/stage"], [
    ("x/stage/early", "link", "x/stage/later", 0o644),
    ("x/stage/later", "file", b"later\n", 0o644),
])
with tarfile.open(os.path.join(out, "bad_nomanifest_generic.tar"), "w", format=tarfile.PAX_FORMAT) as tf:
    ti = tarfile.TarInfo("x/stage/file"); ti.size = 1; tf.addfile(ti, io.BytesIO(b"x"))

# TheRock's empty components: a manifest of a lone newline, or of 0 bytes
# (its kpack splitter); nothing else. A member after one is outside.
build("rand_run_generic.tar", [], [])
with tarfile.open(os.path.join(out, "rand_lib_gfx942.tar"), "w", format=tarfile.PAX_FORMAT) as tf:
    ti = tarfile.TarInfo("artifact_manifest.txt"); ti.size = 0; tf.addfile(ti, io.BytesIO(b""))
build("bad_afterempty_generic.tar", [], [("x/stage/file", "file", b"x\n", 0o644)])

# A run directory for `select`: TheRock's names, a kpack-split manifest in
# base_lib_generic, a stale .tar.xz twin, an xnack-suffixed target, a test
# component, fftw3, and files that are not artifacts.
run = os.path.join(out, "run")
os.makedirs(os.path.join(run, "logs", "math-libs", "gfx94X-dcgpu"))
man = b'{"flags": {"KPACK_SPLIT_ARTIFACTS": true}}\n'
build("run/base_lib_generic.tar", ["base/stage"], [
    ("base/stage/share", "dir", None, 0o755),
    ("base/stage/share/therock", "dir", None, 0o755),
    ("base/stage/share/therock/therock_manifest.json", "file", man, 0o644),
])
for name in ["base_run_generic.tar", "fftw3_lib_generic.tar", "blas_lib_gfx942.tar",
             "blas_lib_gfx942:xnack+.tar", "blas_test_gfx942.tar", "blas_lib_gfx1100.tar",
             "blas_lib_gfx1201.tar", "blas_blob_generic.tar", "logs/math-libs/gfx94X-dcgpu/ccache_logs.tar"]:
    stem = os.path.basename(name).split(".")[0]
    build(os.path.join("run", name), [f"{stem}/stage"], [(f"{stem}/stage/{stem}.txt", "file", b"x\n", 0o644)])
with open(os.path.join(out, "table.cmake"), "w") as f:
    f.write('function(therock_add_amdgpu_target gfx_target product_name)\nendfunction()\n'
            'therock_add_amdgpu_target(gfx942 "MI300" FAMILY dcgpu-all gfx94X-dcgpu)\n'
            'therock_add_amdgpu_target(gfx1100 "RX 7900" FAMILY dgpu-all gfx110X-all # comment\n'
            '  EXCLUDE_TARGET_PROJECTS hipBLASLt)\n'
            'therock_add_amdgpu_target(gfx1201 "RX 9070" FAMILY dgpu-all gfx120X-all)\n')

# A run directory and a family table for `set`: a .tar.xz twin, a nested
# artifact, an xnack-suffixed target, targets without artifacts (gfx950,
# gfx1101), an artifact of a target outside the table, files that are not
# artifacts (unknown component, no artifact name).
srun = os.path.join(out, "setrun")
os.makedirs(os.path.join(srun, "sub", "dir"))
for name in ["core_lib_generic.tar", "core_dev_generic.tar", "core_test_generic.tar",
             "core_run_generic.tar", "fftw3_lib_generic.tar", "blas_lib_gfx942.tar",
             "blas_lib_gfx942:xnack+.tar", "blas_test_gfx942.tar", "blas_dbg_gfx942.tar",
             "blas_lib_gfx1100.tar", "blas_dev_gfx1100.tar", "sub/dir/blas_lib_gfx1201.tar",
             "blas_lib_gfx1151.tar", "rand_lib_gfx1151.tar", "sub/blas_lib_gfx90a.tar",
             "notes_txt_generic.tar", "README.tar"]:
    stem = os.path.basename(name).split(".")[0]
    build(os.path.join("setrun", name), [f"{stem}/stage"], [(f"{stem}/stage/{stem}.txt", "file", b"x\n", 0o644)])
with open(os.path.join(out, "set_table.cmake"), "w") as f:
    f.write('therock_add_amdgpu_target(gfx942 "MI300" FAMILY dcgpu-all gfx94X-dcgpu)\n'
            'therock_add_amdgpu_target(gfx950 "MI355" FAMILY dcgpu-all gfx950-dcgpu)\n'
            'therock_add_amdgpu_target(gfx1100 "RX 7900" FAMILY dgpu-all gfx110X-all)\n'
            'therock_add_amdgpu_target(gfx1101 "RX 7800" FAMILY dgpu-all gfx110X-all)\n'
            'therock_add_amdgpu_target(gfx1201 "RX 9070" FAMILY dgpu-all gfx120X-all)\n'
            'therock_add_amdgpu_target(gfx1151 "Strix Halo" FAMILY igpu-all)\n')
PY

cd "$work"
zstd -q --rm blas_lib_generic.tar
xz -q core_dev_generic.tar            # an .tar.xz input too
for f in other_lib_generic bad_outside_generic bad_dotdot_generic bad_fifo_generic \
         bad_link_generic bad_nomanifest_generic rand_run_generic rand_lib_gfx942 \
         bad_afterempty_generic; do
    zstd -q --rm "$f.tar"
done
find run -name '*.tar' ! -name 'base_run_generic.tar' -exec zstd -q --rm {} \;
cp run/base_run_generic.tar run/base_run_generic.tar.bak && xz -q run/base_run_generic.tar
mv run/base_run_generic.tar.bak run/base_run_generic.tar && zstd -q --rm run/base_run_generic.tar
cp setrun/core_run_generic.tar setrun/core_run_generic.tar.bak && xz -q setrun/core_run_generic.tar
mv setrun/core_run_generic.tar.bak setrun/core_run_generic.tar
find setrun -name '*.tar' -exec zstd -q --rm {} \;
arts=(blas_lib_generic.tar.zst core_dev_generic.tar.xz)
long_file="deep/$(printf 'd%02d_abcdefghij/' 0 1 2 3 4 5 6 7)a_rather_long_file_name_to_push_past_the_ustar_limit.txt"

# ------------------------------------------------------- the four views agree
python3 "$trees" flatten --extract-to "$work/plain" --out oracle.json "${arts[@]}"
tar czf plain.tar.gz -C "$work/plain" --owner=0 --group=0 --numeric-owner --sort=name .
tar cf - -C "$work/plain" --owner=0 --group=0 --numeric-owner --format=pax . | zstd -q -o plain.tar.zst

python3 "$trees" dir --out dir.json "$work/plain"
python3 "$trees" tarball --out tarball.json plain.tar.gz
python3 "$trees" gnutar --out gnutar.json plain.tar.gz
python3 "$trees" tarball --out tarball-zst.json plain.tar.zst
python3 "$trees" gnutar --out gnutar-zst.json plain.tar.zst
for j in dir tarball gnutar tarball-zst gnutar-zst; do
    python3 "$trees" compare oracle.json "$j.json" || fail "oracle.json != $j.json"
done

# spot checks on the oracle's content
python3 - oracle.json "$long_file" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
long_file = sys.argv[2]
def chk(c, msg):
    if not c: raise SystemExit(f"trees selfcheck: FAIL: {msg}")
chk(t["lib"] == {"type": "dir", "mode": "0755"}, "first directory mode kept")
chk(t["lib/libhipblas.so"] == {"type": "symlink", "mode": "0777", "target": "libhipblas.so.1"}, "symlink")
chk(t["."] == {"type": "dir", "mode": "0755"}, "the root")
chk(t["bin/dangling"]["target"] == "../nowhere/at all", "dangling symlink kept verbatim")
chk(t["lib/hipblas-hardlink.so"]["link_group"] == "lib/hipblas-hardlink.so", "link group = smallest path")
chk(t["lib/libhipblas.so.1.2"]["link_group"] == "lib/hipblas-hardlink.so", "link group on target")
chk(t["lib/libhipblas.so.1.2"]["mode"] == "0755" and t["lib/libhipblas.so.1.2"]["size"] == 650, "file entry")
chk("link_group" not in t["lib/common.txt"], "single file has no link group")
chk(t["share/doc with space.txt"]["mode"] == "0644", "space in name")
chk(t["share/ro"]["mode"] == "0755" and t["share"]["mode"] == "0755", "TheRock's directory modes")
chk(t["share/ro/readonly.txt"]["mode"] == "0644", "TheRock's file modes: 0444 -> 0644")
chk(t[long_file]["mode"] == "0644", "TheRock's file modes: 0600 -> 0644")
chk(t["deep"]["mode"] == "0755", "a parent without an entry of its own")
chk(any(len(p) > 100 for p in t), "long path present")
chk(sum(1 for v in t.values() if v.get("link_group")) == 4, "two hardlink groups of two")
chk(not any(p.startswith(("./", "/")) or p.endswith("/") for p in t), "path form")
PY

# --keep-modes: the members' own modes, less set-id and world-write
python3 "$trees" flatten --keep-modes --extract-to "$work/plain-keep" --out keep.json "${arts[@]}"
tar czf plain-keep.tar.gz -C "$work/plain-keep" --owner=0 --group=0 --numeric-owner .
python3 "$trees" gnutar --out gnutar-keep.json plain-keep.tar.gz
python3 "$trees" compare keep.json gnutar-keep.json || fail "keep.json != gnutar-keep.json"
python3 - keep.json "$long_file" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
chk = lambda c, msg: c or sys.exit(f"trees selfcheck: FAIL: {msg}")
chk(t["share/ro"]["mode"] == "0555" and t["share"]["mode"] == "0750", "kept dir modes")
chk(t["share/ro/readonly.txt"]["mode"] == "0444" and t[sys.argv[2]]["mode"] == "0600", "kept file modes")
chk(t["deep"]["mode"] == "0755" and t["."]["mode"] == "0755", "made directories")
PY

# compare reports a difference
python3 - tarball.json changed.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["lib/common.txt"]["mode"] = "0600"
del t["bin/hipcc"]
t["extra"] = {"type": "dir", "mode": "0755"}
json.dump(t, open(sys.argv[2], "w"), sort_keys=True, indent=1)
PY
if python3 "$trees" compare oracle.json changed.json >diff.txt; then fail "compare missed a difference"; fi
grep -q '^- bin/hipcc' diff.txt && grep -q '^+ extra' diff.txt && grep -q '^~ lib/common.txt' diff.txt \
    || { cat diff.txt; fail "compare output"; }

# --------------------------------------------------------------- conflicts
expect_fail "lib/common.txt" python3 "$trees" flatten --out c.json "${arts[@]}" other_lib_generic.tar.zst
expect_fail "other_lib_generic.tar.zst" python3 "$trees" flatten --out c.json "${arts[@]}" other_lib_generic.tar.zst
python3 "$trees" flatten --on-conflict last-wins --out lw.json "${arts[@]}" other_lib_generic.tar.zst
python3 - lw.json <<'PY'
import hashlib, json, sys
t = json.load(open(sys.argv[1]))
assert t["lib/common.txt"]["sha256"] == hashlib.sha256(b"DIFFERENT content\n").hexdigest(), "last-wins"
PY

# ------------------------------------------------------------- bad artifacts
expect_fail "y/stage/outside.txt" python3 "$trees" flatten --out x.json bad_outside_generic.tar.zst
expect_fail "bad_outside_generic" python3 "$trees" flatten --out x.json bad_outside_generic.tar.zst
expect_fail ".." python3 "$trees" flatten --out x.json bad_dotdot_generic.tar.zst
expect_fail "fifo" python3 "$trees" flatten --out x.json bad_fifo_generic.tar.zst
expect_fail "x/stage/early" python3 "$trees" flatten --out x.json bad_link_generic.tar.zst
expect_fail "artifact_manifest.txt" python3 "$trees" flatten --out x.json bad_nomanifest_generic.tar.zst
mkdir -p notempty && touch notempty/f
expect_fail "not empty" python3 "$trees" flatten --extract-to notempty --out x.json "${arts[@]}"

# ------------------------------------------------------- empty manifests
python3 "$trees" flatten --out empty.json rand_run_generic.tar.zst rand_lib_gfx942.tar.zst
[ "$(tr -d ' \n' <empty.json)" = '{".":{"mode":"0755","type":"dir"}}' ] || { cat empty.json; fail "empty manifests contribute nothing"; }
python3 "$trees" flatten --out with-empty.json "${arts[@]}" rand_run_generic.tar.zst
python3 "$trees" compare oracle.json with-empty.json || fail "an empty artifact changed the tree"
expect_fail "not under any manifest prefix" python3 "$trees" flatten --out x.json bad_afterempty_generic.tar.zst

# ------------------------------------------------------------------ table
# Newer tables' keywords: an option, lists after FAMILY, a keyword the
# reader does not know: only FAMILY's values are families; table-facts keeps
# the facts and parses back to the same table.
cat > newer.cmake <<'CM'
function(therock_add_amdgpu_target gfx_target product_name)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "HW_INDEPENDENT" "" "FAMILY;EXCLUDE_TARGET_PROJECTS")
endfunction()
therock_add_amdgpu_target(gfx942 "MI300" FAMILY dcgpu-all gfx94X-dcgpu # note
  EXCLUDE_TARGET_PROJECTS rocWMMA)
therock_add_amdgpu_target(amdgcnspirv "SPIR-V" FAMILY gpu-generic HW_INDEPENDENT
  INCOMPATIBLE_TARGET_PROJECTS MIOpen hipBLASLt)
therock_add_amdgpu_target(gfx1250-strict "strict" FAMILY gfx125X-strict NEW_KEYWORD_X proj)
CM
python3 "$trees" table-facts --commit abc newer.cmake > facts.cmake
python3 - newer.cmake facts.cmake "$trees" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("trees", sys.argv[3])
trees = importlib.util.module_from_spec(spec); spec.loader.exec_module(trees)
want = {"gfx942": ["gfx942"], "dcgpu-all": ["gfx942"], "gfx94X-dcgpu": ["gfx942"],
        "amdgcnspirv": ["amdgcnspirv"], "gpu-generic": ["amdgcnspirv"],
        "gfx1250-strict": ["gfx1250-strict"], "gfx125X-strict": ["gfx1250-strict"]}
for path in sys.argv[1:3]:
    got = trees.family_table(path)
    if got != want:
        sys.exit(f"{path}: {got}")
facts = open(sys.argv[2]).read()
assert 'therock_add_amdgpu_target(amdgcnspirv "SPIR-V" HW_INDEPENDENT FAMILY gpu-generic)' in facts, facts
assert "MIOpen" not in facts and "rocWMMA" not in facts, facts
got = trees.by_owner(["gfx1250-strict", "gfx1151", "gfx1250", "gfx942:xnack+", "gfx1250-strict"])
assert got == [("gfx1250", ["gfx1250-strict", "gfx1250"]), ("gfx1151", ["gfx1151"]),
               ("gfx942", ["gfx942:xnack+"])], got
PY

# ------------------------------------------------------------------ select
python3 "$trees" select --table table.cmake --families 'gfx94X-dcgpu;gfx110X-all' \
    --include-tests --version 7.0 --out select.json run
python3 - select.json <<'PY'
import json, os, sys
got = {k: [os.path.basename(p) for p in v] for k, v in json.load(open(sys.argv[1])).items()}
base = ["base_lib_generic.tar.zst", "base_run_generic.tar.zst"]
want = {
    "therock-dist-linux-gfx94X-dcgpu-7.0.tar.gz":
        base + ["blas_lib_gfx942.tar.zst", "blas_lib_gfx942:xnack+.tar.zst"],
    "therock-dist-linux-gfx94X-dcgpu-tests-7.0.tar.gz":
        base + ["blas_lib_gfx942.tar.zst", "blas_lib_gfx942:xnack+.tar.zst",
                "blas_test_gfx942.tar.zst", "fftw3_lib_generic.tar.zst"],
    "therock-dist-linux-gfx110X-all-7.0.tar.gz": base + ["blas_lib_gfx1100.tar.zst"],
    "therock-dist-linux-gfx110X-all-tests-7.0.tar.gz":
        base + ["blas_lib_gfx1100.tar.zst", "fftw3_lib_generic.tar.zst"],
    "therock-dist-linux-multiarch-7.0.tar.gz":
        base + ["blas_lib_gfx1100.tar.zst", "blas_lib_gfx942.tar.zst", "blas_lib_gfx942:xnack+.tar.zst"],
    "therock-dist-linux-multiarch-tests-7.0.tar.gz":
        base + ["blas_lib_gfx1100.tar.zst", "blas_lib_gfx942.tar.zst", "blas_lib_gfx942:xnack+.tar.zst",
                "blas_test_gfx942.tar.zst", "fftw3_lib_generic.tar.zst"],
}
got = {k: sorted(v) for k, v in got.items()}
want = {k: sorted(v) for k, v in want.items()}
if got != want:
    raise SystemExit(f"trees selfcheck: FAIL: select\n got  {got}\n want {want}")
PY
expect_fail "no therock_add_amdgpu_target" python3 "$trees" select --table oracle.json --families x --out x.json run

# ----------------------------------------------------------- exclude-paths
# The pattern semantics, table-driven: (patterns, path, is_dir) -> excluded?
python3 - "$trees" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("trees", sys.argv[1])
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)
F, D = False, True
cases = [
    # `*` and `?` never cross `/`
    (["lib/*.so"], "lib/libx.so", F, True),
    (["lib/*.so"], "lib/sub/libx.so", F, False),
    (["lib/*"], "lib/sub/libx.so", F, True),        # via the ancestor lib/sub
    (["a?b"], "axb", F, True),
    (["a?b"], "a/b", F, False),
    (["a*b"], "a/b", F, False),
    # no slash: the basename at any depth; an inner slash anchors
    (["*.so"], "libx.so", F, True),
    (["*.so"], "lib/deep/libx.so", F, True),
    (["x"], "a/b/x", F, True),
    (["a/b"], "a/b", F, True),
    (["a/b"], "x/a/b", F, False),
    # a leading slash anchors at the root
    (["/x"], "x", F, True),
    (["/x"], "a/x", F, False),
    (["/*.c"], "x.c", F, True),
    (["/*.c"], "d/x.c", F, False),
    # trailing /**: everything inside, not the directory itself
    (["a/**"], "a", D, False),
    (["a/**"], "a/b", F, True),
    (["a/**"], "a/b/c/d", F, True),
    (["a/**"], "ab/c", F, False),
    # leading **/: any directory, including none
    (["**/x"], "x", F, True),
    (["**/x"], "p/q/x", F, True),
    (["**/x"], "p/xx", F, False),
    (["**/x/y"], "p/x/y", F, True),
    (["**/x/y"], "x/p/y", F, False),
    # /**/: zero or more directories
    (["a/**/b"], "a/b", F, True),
    (["a/**/b"], "a/x/b", F, True),
    (["a/**/b"], "a/x/y/b", F, True),
    (["a/**/b"], "a/xb", F, False),
    (["a/**/b"], "x/a/b", F, False),
    # any other ** acts like *
    (["a**b"], "axyb", F, True),
    (["a**b"], "a/b", F, False),
    # trailing /: directories only (a file of that name is kept), and a
    # directory pattern excludes everything below it
    (["d/"], "d", F, False),
    (["d/"], "d", D, True),
    (["d/"], "p/d", D, True),
    (["d/"], "p/d/f", F, True),
    (["share/doc"], "share/doc/a/b/c.txt", F, True),
    (["share/doc"], "share/docs/c.txt", F, False),
    # negation: the last matching pattern wins
    (["*.txt", "!keep.txt"], "a/keep.txt", F, False),
    (["*.txt", "!keep.txt"], "a/other.txt", F, True),
    (["!keep.txt", "*.txt"], "keep.txt", F, True),
    # the path's own match beats an ancestor's; the nearest ancestor first
    (["doc/", "!doc/keep"], "doc/keep", F, False),
    (["doc/", "!doc/keep"], "doc/other", F, True),
    (["a/", "!a/b/"], "a/b/c", F, False),
    (["a/", "!a/b/"], "a/c/d", F, True),
    (["!a/b/", "a/"], "a/b/c", F, False),          # a/b decides (nearest), a not asked
    # character classes
    (["file[a-c].txt"], "fileb.txt", F, True),
    (["file[a-c].txt"], "filed.txt", F, False),
    (["[!a]x"], "bx", F, True),
    (["[!a]x"], "ax", F, False),
    (["[^a]x"], "bx", F, True),
    (["x[/]y"], "x/y", F, False),                  # a class never matches /
    (["x[!a]y"], "x/y", F, False),
    (["[]]"], "]", F, True),
    (["[[:digit:]]"], "7", F, True),
    (["[abc"], "[abc", F, True),                   # unclosed: literal
    # escapes, comments, blank
    ([r"\!x"], "!x", F, True),
    ([r"\#x"], "#x", F, True),
    ([r"\*"], "*", F, True),
    ([r"\*"], "a", F, False),
    (["#x"], "#x", F, False),
    (["", "   "], "x", F, False),
    (["x  "], "x", F, True),                       # trailing spaces dropped
    ([], "x", F, False),
    # the crate also asks the root (the empty path) as a directory
    (["*/"], "top.txt", F, True),
]
bad = [(p, path, d, want) for p, path, d, want in cases if T.Excluder(p).excluded(path, d) != want]
if bad:
    raise SystemExit("trees selfcheck: FAIL: exclude-paths\n" + "\n".join(
        f"  patterns {p} path {path!r} dir {d}: want excluded={w}" for p, path, d, w in bad))
for p in (["a{b,c}"], ["x}"], ["[z-a]"], ["x\\"]):
    try:
        T.Excluder(p)
    except T.Fail:
        continue
    raise SystemExit(f"trees selfcheck: FAIL: exclude-paths {p} accepted")
PY

# ... and applied by flatten, per entry
python3 "$trees" flatten --out excl.json --exclude-path '*.so' --exclude-path '/deep/**' \
    --exclude-path 'share/' --exclude-path '!share/ro/' --exclude-path include "${arts[@]}"
python3 - oracle.json excl.json <<'PY'
import json, sys
full, got = (json.load(open(p)) for p in sys.argv[1:3])
gone = {"lib/libhipblas.so", "lib/hipblas-hardlink.so", "share", "share/doc with space.txt",
        "include", "include/hip.h"} | {p for p in full if p.startswith("deep")}
want = {p: dict(v) for p, v in full.items() if p not in gone}
del want["lib/libhipblas.so.1.2"]["link_group"]    # its hardlink partner is gone
if got != want:
    raise SystemExit(f"trees selfcheck: FAIL: flatten --exclude-path\n"
                     f" only got {sorted(set(got) - set(want))}\n only want {sorted(set(want) - set(got))}")
# deep has no entry of its own: made for members below it, which are all left out
assert "share" not in got and "share/ro/readonly.txt" in got and "lib/libhipblas.so.1" in got
PY
# an excluded entry cannot conflict
python3 "$trees" flatten --exclude-path /lib/common.txt --out x.json "${arts[@]}" other_lib_generic.tar.zst
# a kept hardlink whose target is excluded; braces
expect_fail "blas_lib_generic.tar.zst: hardlink 'lib/hipblas-hardlink.so' -> 'lib/libhipblas.so.1.2': the target is excluded by exclude-paths and the link is not" \
    python3 "$trees" flatten --exclude-path lib/libhipblas.so.1.2 --out x.json "${arts[@]}"
python3 "$trees" flatten --exclude-path 'lib/*hipblas*.so*' --out x.json "${arts[@]}"   # both: fine
expect_fail "braces are not gitignore syntax" \
    python3 "$trees" flatten --exclude-path 'lib/{a,b}' --out x.json "${arts[@]}"

# --------------------------------------------------------------------- set
cat >good-set.toml <<'TOML'
[groups]
radeon = ["gfx110X-all", "gfx120X-all", "apu"]   # a group in a group
apu = ["gfx1151"]

[[tarball]]
name = "rocm-{label}-{version}-{platform}"
each = ["gfx94X-dcgpu", "radeon"]
exclude-components = ["test", "dbg"]
exclude-artifacts = ["fftw3"]
exclude-paths = ["share/doc/**", "bin/*-test-*"]
formats = ["gz", "zst"]

[[tarball]]
name = "rocm-tests-{label}-{version}"
union = ["radeon", "gfx94X-dcgpu"]
label = "all"
components = ["test", "run"]
sidecar = "sha256"
variant = "tests"

[[tarball]]
name = "blas-{label}{{x}}"
each-target = ["dcgpu-all", "radeon", "gfx1100"]
generic = false                     # an overlay: core is generic only
artifacts = ["blas", "core"]
exclude-components = ["dbg"]
sidecar = "none"
TOML
python3 "$trees" set --table set_table.cmake --set good-set.toml --format zst --version 7.1 \
    --out set.json setrun
python3 - set.json <<'PY'
import json, os, sys
got = json.load(open(sys.argv[1]))
for v in got.values():
    v["artifacts"] = [os.path.relpath(p, "setrun") for p in v["artifacts"]]
generic = ["core_dev_generic.tar.zst", "core_lib_generic.tar.zst", "core_run_generic.tar.zst"]
gfx94 = generic + ["blas_lib_gfx942.tar.zst", "blas_lib_gfx942:xnack+.tar.zst"]
radeon = generic + ["blas_dev_gfx1100.tar.zst", "blas_lib_gfx1100.tar.zst", "blas_lib_gfx1151.tar.zst",
                    "rand_lib_gfx1151.tar.zst", "sub/dir/blas_lib_gfx1201.tar.zst"]
ex = ["share/doc/**", "bin/*-test-*"]
want = {}
for label, arts in (("gfx94X-dcgpu", gfx94), ("radeon", radeon)):
    for ext in (".tar.gz", ".tar.zst"):
        n = f"rocm-{label}-7.1-linux{ext}"
        want[n] = {"artifacts": sorted(arts), "exclude_paths": ex, "sidecar": n + ".sha256sum"}
want["rocm-tests-all-7.1.tar.zst"] = {
    "artifacts": ["blas_test_gfx942.tar.zst", "core_run_generic.tar.zst", "core_test_generic.tar.zst"],
    "exclude_paths": [], "sidecar": "rocm-tests-all-7.1.tar.zst.sha256"}
for t, arts in (("gfx942", ["blas_lib_gfx942.tar.zst", "blas_lib_gfx942:xnack+.tar.zst", "blas_test_gfx942.tar.zst"]),
                ("gfx1100", ["blas_dev_gfx1100.tar.zst", "blas_lib_gfx1100.tar.zst"]),
                ("gfx1201", ["sub/dir/blas_lib_gfx1201.tar.zst"]),
                ("gfx1151", ["blas_lib_gfx1151.tar.zst"])):   # gfx950, gfx1101: nothing built
    want[f"blas-{t}{{x}}.tar.zst"] = {"artifacts": arts, "exclude_paths": [], "sidecar": None}
if got != want:
    lines = [f"  {k}:\n    got  {got.get(k)}\n    want {want.get(k)}"
             for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    raise SystemExit("trees selfcheck: FAIL: set\n" + "\n".join(lines))
PY

# set_fails PATTERN: the set file on stdin must be refused with PATTERN
set_fails() {
    cat >bad-set.toml
    expect_fail "$1" python3 "$trees" set --table set_table.cmake --set bad-set.toml --out x.json setrun
}
set_fails "unknown name 'gfx999'" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx94X-dcgpu", "gfx999"]
TOML
set_fails "unknown name 'nope'" <<'TOML'
[groups]
g = ["gfx942", "nope"]
[[tarball]]
name = "x-{label}"
each = ["gfx942"]
TOML
set_fails "includes itself" <<'TOML'
[groups]
a = ["gfx942", "b"]
b = ["gfx1100", "a"]
[[tarball]]
name = "x-{label}"
each = ["a"]
TOML
set_fails "x-gfx950-dcgpu.tar.gz selects no artifact" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx94X-dcgpu", "gfx950-dcgpu"]
generic = false
TOML
set_fails "same.tar.gz is produced twice" <<'TOML'
[[tarball]]
name = "same"
each = ["gfx942", "gfx1100"]
TOML
set_fails "x-gfx942.tar.zst is produced twice" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx942"]
formats = ["zst"]
[[tarball]]
name = "x-gfx942"
union = ["gfx942"]
label = "y"
formats = ["gz", "zst"]
TOML
set_fails "unknown key 'colour'" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx942"]
colour = "red"
TOML
set_fails "unknown key 'tarballs'" <<'TOML'
[[tarballs]]
name = "x-{label}"
each = ["gfx942"]
TOML
set_fails "each and union" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx942"]
union = ["gfx1100"]
label = "y"
TOML
set_fails "'label' is only for union" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx942"]
label = "y"
TOML
set_fails "union needs a 'label'" <<'TOML'
[[tarball]]
name = "x-{label}"
union = ["gfx942"]
TOML
set_fails "braces are not gitignore syntax" <<'TOML'
[[tarball]]
name = "x-{label}"
each = ["gfx942"]
exclude-paths = ["share/{doc,man}/**"]
TOML
set_fails "unknown field {arch}" <<'TOML'
[[tarball]]
name = "x-{arch}"
each = ["gfx942"]
TOML
set_fails "invalid TOML" <<'TOML'
[[tarball]
TOML

# ------------------------------------------------------------- bad tarballs
tar czf owned.tar.gz -C "$work/plain" --owner=1001 --group=1001 --numeric-owner .
expect_fail "owner is 1001:1001" python3 "$trees" tarball --out x.json owned.tar.gz
tar czf bare.tar.gz -C "$work/plain" --owner=0 --group=0 --numeric-owner lib
expect_fail "does not start with './'" python3 "$trees" tarball --out x.json bare.tar.gz
tar czf twice.tar.gz -C "$work/plain" --owner=0 --group=0 --numeric-owner ./bin ./bin/hipcc
expect_fail "listed twice" python3 "$trees" tarball --out x.json twice.tar.gz
python3 "$trees" tarball --duplicates merge --out merged.json twice.tar.gz
tar czf abs.tar.gz --owner=0 --group=0 --numeric-owner -P "$work/plain/bin/hipcc"
expect_fail "absolute" python3 "$trees" tarball --out x.json abs.tar.gz
expect_fail "" python3 "$trees" compare oracle.json missing.json
expect_fail "" python3 "$trees" bogus-command

# ------------------------------------------------------------- zip archives
mkdir -p "$work/zt/bin" "$work/zt/share/doc"
printf 'exe\n' >"$work/zt/bin/tool.exe"; chmod 0755 "$work/zt/bin/tool.exe"
printf 'notes\n' >"$work/zt/share/doc/README"; chmod 0644 "$work/zt/share/doc/README"
chmod 0755 "$work/zt/bin" "$work/zt/share" "$work/zt/share/doc"
tar czf zt.tar.gz -C "$work/zt" --owner=0 --group=0 --numeric-owner .
# zip_of OUT [--dot] [--no-dirs] [--stored]: the zt tree as a ZIP archive
zip_of() {
    python3 - "$work/zt" "$@" <<'PY'
import os, sys, zipfile
root, out, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
method = zipfile.ZIP_STORED if "--stored" in flags else zipfile.ZIP_DEFLATED
with zipfile.ZipFile(out, "w", method) as z:
    for dp, dns, fns in sorted(os.walk(root)):
        for n in sorted(dns + fns):
            p = os.path.join(dp, n)
            if os.path.isdir(p) and "--no-dirs" in flags:
                continue
            rel = os.path.relpath(p, root)
            if "--dot" in flags and not os.path.isdir(p):
                # write() would drop the "./"; a ZipInfo keeps the name.
                info = zipfile.ZipInfo("./" + rel)
                info.external_attr = os.stat(p).st_mode << 16
                z.writestr(info, open(p, "rb").read())
            else:
                z.write(p, rel)
PY
}
zip_of zt.zip
python3 "$trees" zip --out z.json zt.zip
python3 "$trees" tarball --no-root --out t.json zt.tar.gz
python3 "$trees" compare z.json t.json
zip_of dot.zip --dot
expect_fail "not a relative name" python3 "$trees" zip --out x.json dot.zip
zip_of nodirs.zip --no-dirs
expect_fail "is not listed" python3 "$trees" zip --out x.json nodirs.zip
zip_of crc.zip --stored
python3 - crc.zip <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
i = b.index(b"notes\n"); b[i] ^= 0x20
open(p, "wb").write(bytes(b))
PY
expect_fail "bad CRC-32" python3 "$trees" zip --out x.json crc.zip
# Links followed: a ZIP of the files the links lead to equals the tar's
# view with --follow-links, and not the plain view; a link to a directory,
# out of the tree or to nothing is refused.
ln -s tool.exe "$work/zt/bin/tool"
ln -s ../../bin/tool "$work/zt/share/doc/tool"
tar czf ztl.tar.gz -C "$work/zt" --owner=0 --group=0 --numeric-owner .
zip_of ztl.zip
python3 "$trees" zip --out zl.json ztl.zip
python3 "$trees" tarball --no-root --follow-links --out tl.json ztl.tar.gz
python3 "$trees" compare zl.json tl.json
python3 "$trees" tarball --no-root --out tp.json ztl.tar.gz
if python3 "$trees" compare zl.json tp.json >/dev/null 2>&1; then
    fail "the plain view of links equals the ZIP's"
fi
for bad in "dir:../share" "out:../../x" "none:missing"; do
    rm -f "$work/zt/bin/bad"
    ln -s "${bad#*:}" "$work/zt/bin/bad"
    tar czf bad.tar.gz -C "$work/zt" --owner=0 --group=0 --numeric-owner .
    case ${bad%%:*} in
        dir) why="leads to a directory" ;;
        out) why="leads out of the tree" ;;
        none) why="leads to nothing" ;;
    esac
    expect_fail "$why" python3 "$trees" tarball --no-root --follow-links --out x.json bad.tar.gz
done

echo "trees selfcheck: ok"
