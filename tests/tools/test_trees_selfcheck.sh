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
     for i in range(len(long_dir.split("/")))] + [
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
arts=(blas_lib_generic.tar.zst core_dev_generic.tar.xz)

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
python3 - oracle.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
def chk(c, msg):
    if not c: raise SystemExit(f"trees selfcheck: FAIL: {msg}")
chk(t["lib"] == {"type": "dir", "mode": "0755"}, "first directory mode kept")
chk(t["lib/libhipblas.so"] == {"type": "symlink", "target": "libhipblas.so.1"}, "symlink")
chk(t["bin/dangling"]["target"] == "../nowhere/at all", "dangling symlink kept verbatim")
chk(t["lib/hipblas-hardlink.so"]["link_group"] == "lib/hipblas-hardlink.so", "link group = smallest path")
chk(t["lib/libhipblas.so.1.2"]["link_group"] == "lib/hipblas-hardlink.so", "link group on target")
chk(t["lib/libhipblas.so.1.2"]["mode"] == "0755" and t["lib/libhipblas.so.1.2"]["size"] == 650, "file entry")
chk("link_group" not in t["lib/common.txt"], "single file has no link group")
chk(t["share/doc with space.txt"]["mode"] == "0644", "space in name")
chk(t["share/ro"]["mode"] == "0555" and t["share"]["mode"] == "0750", "dir modes")
chk(any(len(p) > 100 for p in t), "long path present")
chk(sum(1 for v in t.values() if v.get("link_group")) == 4, "two hardlink groups of two")
chk(not any(p.startswith(("./", "/")) or p.endswith("/") for p in t), "path form")
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
[ "$(tr -d ' \n' <empty.json)" = "{}" ] || { cat empty.json; fail "empty manifests contribute nothing"; }
python3 "$trees" flatten --out with-empty.json "${arts[@]}" rand_run_generic.tar.zst
python3 "$trees" compare oracle.json with-empty.json || fail "an empty artifact changed the tree"
expect_fail "not under any manifest prefix" python3 "$trees" flatten --out x.json bad_afterempty_generic.tar.zst

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

echo "trees selfcheck: ok"
