#!/usr/bin/env bash
# End-to-end benchmark: rockpack against the plain way (download, extract,
# flatten, tar czf, upload; TheRock's former build_tools/build_tarballs.py,
# bench/plain_way.py) and against TheRock's current method (the same, but
# each tree streamed as `tar cf -` into zlib-ng's threaded gzip writer at
# level 9, 8 threads per tarball, several tarballs at once, largest first;
# build_tools/packaging/archives/build_tarballs.py, bench/therock_way.py),
# on the same generated kpack run, S3 to S3 through a local s3s-fs server on
# 127.0.0.1. rockpack runs at gzip level 6 (its default; the plain way's
# tar czf uses gzip's 6 too) and, for the row beside TheRock's method, at
# --level 9.
#
#   bench/e2e.sh [SIZE]        SIZE: bytes of large-file content to generate,
#                              e.g. 512M, 1G (default), 2G
#   ROCKPACK_E2E_FAMILIES=16 bench/e2e.sh [SIZE]
#                              the layout of TheRock's release: its 16
#                              families, 34 tarballs (each family and
#                              multiarch, each also -tests)
#
# Needs: cargo (unless ROCKPACK_E2E_BIN), bash, python3 (standard library;
# and venv + pip: zlib-ng is installed from PyPI into a throwaway venv in the
# work dir for TheRock's method), GNU tar, zstd, xz, gzip.
# Scratch space: a work dir under ${TMPDIR:-/tmp}, removed at the end. Without
# TheRock's method about 11x SIZE of free disk at the peak (measured at 2G,
# three families: the plain way's eight flattened trees 4.7x, its tarballs
# 1.8x, the server's copies of inputs and of both sides' outputs 4x, in
# /dev/shm instead when it has room). With it about 15x (estimated: its
# trees and tarballs reuse the space of the plain way's, removed once those
# are uploaded, and the server keeps two more sets of outputs, rockpack
# --level 9's and its own, about 1.8x each; /dev/shm is used when it has 8x).
# With 16 families about the same (estimated from the generator's weights):
# SIZE is the run's large-file content whatever the families, and each
# target's share is in four trees (its family's, family-tests, multiarch,
# multiarch-tests) however many families there are; plus the small files,
# a few MiB per tree, which dominate at tiny sizes (at 8M the plain way
# wrote 73 MiB with three families, 145 MiB with 16).
# Prints a Markdown table; also leaves it in ${TMPDIR:-/tmp}/rockpack-e2e-SIZE.md
# (rockpack-e2e-SIZE-N-families.md with ROCKPACK_E2E_FAMILIES).
# ROCKPACK_E2E_KEEP=1 keeps the work dir (and the trees and tarballs of
# both the plain way and TheRock's method: about 6.5x SIZE more disk);
# ROCKPACK_E2E_PLAIN=0 skips the plain way and TheRock's method (rockpack
# alone, e.g. to check that its peak RSS stays flat at 8G);
# ROCKPACK_E2E_THEROCK=0 skips TheRock's method and rockpack's --level 9 run;
# ROCKPACK_E2E_THEROCK_WORKERS=N compresses N tarballs at once in TheRock's
# method (default as TheRock: max(1, cores / 9 rounded down));
# ROCKPACK_E2E_FAMILIES=16 packs TheRock's release families (see above), or
# ROCKPACK_E2E_FAMILIES='gfx94X-dcgpu;gfx1151' the families given (names
# from tests/data/therock_amdgpu_targets.cmake); either way the run is
# generated with per-target artifacts for every target of those families,
# and every family packed with --tests.
# ROCKPACK_E2E_MEMORY="192M 1G" adds a rockpack run per --memory budget.
# ROCKPACK_E2E_BEFORE=path/to/rockpack adds a run of that binary (an earlier
# build) right after rockpack's, the same command, and checks that it
# published the same bytes: "after / before" side by side in one run;
# with ROCKPACK_E2E_BEFORE_DIFFERS=1 (a change that changes the bytes, e.g.
# their order) it only reports what the binary before sent and copied.
# ROCKPACK_E2E_OVER=1 adds a run into a prefix that holds the same tarball
# names with other bytes (a set packed at --level 1 first): what
# backing up the replaced tarballs before the final burst costs.
# ROCKPACK_E2E_AT_ONCE="8 6G" adds a run with --artifact-jobs 8 --memory 6G.
# ROCKPACK_E2E_THROTTLE=16M adds runs of the largest tarball (zstd) from a
# second server instance whose connections each send at most 16 MiB/s, read
# with one GET per artifact (--range-connections 1) and with parallel ranged
# GETs (the default), alternated twice.
# ROCKPACK_E2E_BIN=DIR/rockpack uses that binary, and DIR/examples/s3_server
# and DIR/examples/codec_alone, instead of building them (release); e.g.
# target/debug/rockpack for a quick check of the script itself (a debug
# build's numbers mean nothing).
set -euo pipefail

SIZE_ARG=${1:-1G}
FAMILIES='gfx94X-dcgpu;gfx110X-all;gfx120X-all'
# TheRock's release families: the DIST_AMDGPU_FAMILIES of the example in
# TheRock's build_tools/packaging/archives/README.md (its rockrel release
# run), 16 families, 34 tarballs with the -tests ones.
RELEASE_FAMILIES='gfx94X-dcgpu;gfx110X-all;gfx1151;gfx120X-all;gfx90a;gfx950-dcgpu;gfx900;gfx90c;gfx906;gfx908;gfx101X-dgpu;gfx103X-all;gfx1150;gfx1152;gfx1153;gfx125X-dcgpu'
ZLIB_NG=zlib-ng==1.1.0
BUCKET=bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

size=$(python3 "$here/e2e_util.py" size "$SIZE_ARG")
say() { printf '\n== %s\n' "$*" >&2; }

plain=1 therock=1
[[ ${ROCKPACK_E2E_PLAIN:-1} == 0 ]] && plain=0 therock=0
[[ ${ROCKPACK_E2E_THEROCK:-1} == 0 ]] && therock=0
gen_families=$FAMILIES
case ${ROCKPACK_E2E_FAMILIES:-} in
'') ;;
16) FAMILIES=$RELEASE_FAMILIES ;;
*) FAMILIES=$ROCKPACK_E2E_FAMILIES ;;
esac
if [[ -n ${ROCKPACK_E2E_FAMILIES:-} ]]; then
    # rockpack generate knows the targets of a few families only; give it
    # the targets themselves (each target is a family of its own name).
    gen_families=$(python3 "$here/e2e_util.py" targets "$FAMILIES" \
        --table "$repo/tests/data/therock_amdgpu_targets.cmake")
fi

# rockpack, with the s3_server and codec_alone examples.
source "$here/release_bins.sh"
release_bins ROCKPACK_E2E_BIN s3_server codec_alone
server_bin=$examples/s3_server
codec_bin=$examples/codec_alone
jobs=$(nproc)

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-e2e.XXXXXX")
root=
server_pids=()
# start_server, stop_servers and the server's credentials.
source "$here/s3_local.sh"
cleanup() {
    stop_servers
    if [[ ${ROCKPACK_E2E_KEEP:-} == 1 ]]; then
        echo "kept $work${root:+ and $root}" >&2
    else
        rm -rf "$work"
        [[ -n ${root:-} && $root == /dev/shm/* ]] && rm -rf "$root"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=$((size * (therock ? 15 : 11) / 1024))
avail=$(df -Pk "$work" | awk 'NR==2 {print $4}')
if ((avail < need)); then
    echo "warning: ${avail} KiB free under $work; this size may need about ${need} KiB" >&2
fi

if ((therock)); then
    say "installing $ZLIB_NG for TheRock's method (a venv in the work dir)"
    venv=$work/venv
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --only-binary :all: "$ZLIB_NG" >&2
fi

say "generating a kpack run with $SIZE_ARG ($size bytes) of large files"
# The server's storage stands in for S3's, which is not on the runner: it is
# kept in memory (tmpfs) when /dev/shm has room for about 5x SIZE (8x with
# TheRock's method and rockpack's level-9 outputs), so the server's writes do
# not compete with the plain way's for the disk.
# ROCKPACK_E2E_SERVER_ON_DISK=1 keeps it in the work dir.
shm_need=$((size * (therock ? 8 : 5) / 1024))
if [[ ${ROCKPACK_E2E_SERVER_ON_DISK:-} != 1 && -d /dev/shm ]] &&
    (($(df -Pk /dev/shm | awk 'NR==2 {print $4}') > shm_need)); then
    root=$(mktemp -d /dev/shm/rockpack-e2e-s3.XXXXXX)
    storage="tmpfs ($root)"
else
    root=$work/s3
    storage="disk ($root)"
fi
mkdir -p "$root/$BUCKET"
echo "S3 server storage: $storage" >&2
"$rockpack" generate --dest "$root/$BUCKET/run" --layout kpack \
    --families "$gen_families" --large-bytes "$size"
python3 "$here/e2e_util.py" seed "$root" "$BUCKET" run
du -sh "$root/$BUCKET/run" >&2

say "starting the S3 server"
start_server server

select_args=(--source "s3://$BUCKET/run" --endpoint-url "$endpoint"
    --families "$FAMILIES" --tests)
"$rockpack" plan "${select_args[@]}" --json >"$work/plan.json"
python3 - "$work/plan.json" >&2 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
print(f"plan: {len(p['artifacts'])} artifacts, {len(p['tarballs'])} tarballs: "
      + ", ".join(t["file_name"] for t in p["tarballs"]))
EOF
sync

say "rockpack: S3 -> S3"
python3 "$here/measure.py" --json "$work/rockpack.json" --server-pid "$server_pid" \
    --stderr "$work/rockpack.log" -- \
    "$rockpack" pack "${select_args[@]}" --dest "s3://$BUCKET/out-rockpack/" \
    --summary "$work/summary.json"
tail -n 12 "$work/rockpack.log" >&2

extra=()
if [[ -n ${ROCKPACK_E2E_BEFORE:-} ]]; then
    say "the binary before ($ROCKPACK_E2E_BEFORE): S3 -> S3"
    python3 "$here/measure.py" --json "$work/before.json" --server-pid "$server_pid" \
        --stderr "$work/before.log" -- \
        "$ROCKPACK_E2E_BEFORE" pack "${select_args[@]}" --dest "s3://$BUCKET/out-before/" \
        --summary "$work/summary-before.json"
    python3 - "$work/summary.json" "$work/summary-before.json" "${ROCKPACK_E2E_BEFORE_DIFFERS:-0}" <<'EOF2'
import json, sys
digests = lambda p: {t["file_name"]: t["sha256"] for t in json.load(open(p))["tarballs"]}
after, before = digests(sys.argv[1]), digests(sys.argv[2])
if sys.argv[3] == "1":
    assert after.keys() == before.keys(), f"the binary before published other tarballs"
    print(f"the binary before published the same {len(after)} names (other bytes, as expected)", file=sys.stderr)
else:
    assert after == before, f"the binary before published other bytes: {after} vs {before}"
    print(f"the binary before published the same {len(after)} tarballs", file=sys.stderr)
EOF2
    extra+=(--before "$work/before.json" --before-summary "$work/summary-before.json")
    rm -rf "${root:?}/$BUCKET/out-before"
fi
if [[ ${ROCKPACK_E2E_OVER:-} == 1 ]]; then
    say "rockpack over a prefix holding the same names with other bytes: S3 -> S3"
    "$rockpack" -q pack "${select_args[@]}" --level 1 --dest "s3://$BUCKET/out-over/"
    python3 "$here/measure.py" --json "$work/over.json" --server-pid "$server_pid" \
        --stderr "$work/over.log" -- \
        "$rockpack" pack "${select_args[@]}" --dest "s3://$BUCKET/out-over/" \
        --summary "$work/summary-over.json"
    extra+=(--over "$work/over.json" --over-summary "$work/summary-over.json")
    rm -rf "${root:?}/$BUCKET/out-over"
fi
if [[ -n ${ROCKPACK_E2E_AT_ONCE:-} ]]; then
    read -r at_once at_once_memory <<<"$ROCKPACK_E2E_AT_ONCE"
    say "rockpack --artifact-jobs $at_once --memory $at_once_memory: S3 -> S3"
    python3 "$here/measure.py" --json "$work/at-once.json" --server-pid "$server_pid" \
        --stderr "$work/at-once.log" -- \
        "$rockpack" pack "${select_args[@]}" --dest "s3://$BUCKET/out-at-once/" \
        --artifact-jobs "$at_once" --memory "$at_once_memory" --summary "$work/summary-at-once.json"
    extra+=(--at-once "--artifact-jobs $at_once --memory $at_once_memory=$work/at-once.json"
        --at-once-summary "$work/summary-at-once.json")
    rm -rf "${root:?}/$BUCKET/out-at-once"
fi

budgets=()
for m in ${ROCKPACK_E2E_MEMORY:-}; do
    say "rockpack with --memory $m: S3 -> S3"
    python3 "$here/measure.py" --json "$work/memory-$m.json" --server-pid "$server_pid" \
        --stderr "$work/memory-$m.log" -- \
        "$rockpack" pack "${select_args[@]}" --dest "s3://$BUCKET/out-memory-$m/" --memory "$m"
    budgets+=(--budget "$m=$work/memory-$m.json")
    rm -rf "${root:?}/$BUCKET/out-memory-$m"
done

say "rockpack: the largest tarball alone, to /dev/null"
python3 "$here/measure.py" --json "$work/largest.json" --server-pid "$server_pid" \
    --stdout /dev/null --stderr "$work/largest.log" -- \
    "$rockpack" pack "${select_args[@]}" --only multiarch-tests --dest -
largest_bytes=$(python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
print(max(t["bytes"] for t in s["tarballs"]))' "$work/summary.json")
largest_name=$(python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
print(max(s["tarballs"], key=lambda t: t["bytes"])["file_name"])' "$work/summary.json")
sync

say "rockpack: the largest tarball alone as zstd, to /dev/null"
python3 "$here/measure.py" --json "$work/largest-zst.json" --server-pid "$server_pid" \
    --stdout /dev/null --stderr "$work/largest-zst.log" -- \
    "$rockpack" pack "${select_args[@]}" --only multiarch-tests --format zst --dest - \
    --summary "$work/largest-zst-summary.json"

say "near the limit: the codec alone on the same tar bytes, from memory; gzip -6 and zstd -3 sizes"
# The largest tarball holds every artifact once: its tar bytes are the
# run's unique bytes.
gzip -dc "$root/$BUCKET/out-rockpack/$largest_name" >"$work/unique.tar"
"$codec_bin" "$work/unique.tar" --format gz --level 6 --jobs "$jobs" >"$work/codec-gz.json"
"$codec_bin" "$work/unique.tar" --format zst --level 3 --jobs "$jobs" >"$work/codec-zst.json"
gzip_bytes=$(gzip -6 -c "$work/unique.tar" | wc -c)
zstd_bytes=$(zstd -3 -T1 -q -c "$work/unique.tar" | wc -c)
python3 - "$work" "$gzip_bytes" "$zstd_bytes" "$largest_bytes" >"$work/limits.json" <<'EOF2'
import json, os, sys
work, gz, zs, rp_gz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(json.dumps({
    "codec_gz": json.load(open(f"{work}/codec-gz.json")),
    "codec_zst": json.load(open(f"{work}/codec-zst.json")),
    "gzip6_bytes": gz, "zstd3_bytes": zs,
    "rockpack_gz_bytes": rp_gz,
    "rockpack_zst_bytes": json.load(open(f"{work}/largest-zst-summary.json"))["tarballs"][0]["bytes"],
}))
EOF2
rm -f "$work/unique.tar"

ranges=()
if [[ -n ${ROCKPACK_E2E_THROTTLE:-} ]]; then
    main_endpoint=$endpoint main_pid=$server_pid
    say "the largest tarball (zstd) from a server sending ${ROCKPACK_E2E_THROTTLE}/s per connection"
    start_server throttled --throttle "$ROCKPACK_E2E_THROTTLE"
    throttled_args=("${select_args[@]}")
    throttled_args[3]=$endpoint # --endpoint-url
    for i in 1 2; do
        for c in 1 4; do
            python3 "$here/measure.py" --json "$work/ranges-$c-$i.json" --server-pid "$server_pid" \
                --stdout /dev/null --stderr "$work/ranges-$c-$i.log" -- \
                "$rockpack" pack "${throttled_args[@]}" --only multiarch-tests --format zst \
                --dest - --range-connections "$c"
            ranges+=(--ranges "$c=$work/ranges-$c-$i.json")
        done
    done
    endpoint=$main_endpoint server_pid=$main_pid
fi

if ((plain)); then
    say "plain way: download, extract and flatten, tar czf, upload"
    python3 "$here/measure.py" --json "$work/plain.json" --server-pid "$server_pid" -- \
        python3 "$here/plain_way.py" --endpoint "$endpoint" --bucket "$BUCKET" --prefix run \
        --plan "$work/plan.json" --work "$work/plain" --dest-prefix out-plain/ \
        --phases "$work/phases.json"
    # Its trees and tarballs are on the server now: give their disk space
    # to TheRock's method.
    [[ ${ROCKPACK_E2E_KEEP:-} == 1 ]] || rm -rf "$work/plain"

    say "checking: the largest tarball, rockpack's against the plain way's"
    python3 "$here/e2e_util.py" check "$root/$BUCKET/out-rockpack/$largest_name" \
        "$root/$BUCKET/out-plain/$largest_name" | tee "$work/check.txt" >&2 || true
fi

therock_args=()
if ((therock)); then
    say "rockpack --level 9: S3 -> S3"
    sync
    python3 "$here/measure.py" --json "$work/rockpack-9.json" --server-pid "$server_pid" \
        --stderr "$work/rockpack-9.log" -- \
        "$rockpack" pack "${select_args[@]}" --dest "s3://$BUCKET/out-rockpack-9/" --level 9 \
        --summary "$work/summary-9.json"
    tail -n 3 "$work/rockpack-9.log" >&2

    say "TheRock's method: download, extract and flatten, tar cf - | zlib-ng level 9 (8 threads), upload"
    workers=()
    [[ -n ${ROCKPACK_E2E_THEROCK_WORKERS:-} ]] && workers=(--workers "$ROCKPACK_E2E_THEROCK_WORKERS")
    sync
    python3 "$here/measure.py" --json "$work/therock.json" --server-pid "$server_pid" -- \
        "$venv/bin/python" "$here/therock_way.py" --endpoint "$endpoint" --bucket "$BUCKET" --prefix run \
        --plan "$work/plan.json" --work "$work/therock" --dest-prefix out-therock/ \
        --phases "$work/therock-phases.json" --level 9 --threads 8 "${workers[@]}"
    [[ ${ROCKPACK_E2E_KEEP:-} == 1 ]] || rm -rf "$work/therock"

    say "checking: the largest tarball, rockpack's --level 9 against TheRock's method's"
    python3 "$here/e2e_util.py" check "$root/$BUCKET/out-rockpack-9/$largest_name" \
        "$root/$BUCKET/out-therock/$largest_name" | tee "$work/therock-check.txt" >&2 || true
    therock_args=(--rockpack9 "$work/rockpack-9.json" --rockpack9-out "$root/$BUCKET/out-rockpack-9"
        --summary9 "$work/summary-9.json"
        --therock "$work/therock.json" --therock-out "$root/$BUCKET/out-therock"
        --therock-phases "$work/therock-phases.json" --therock-check "$work/therock-check.txt")
fi

say "report"
nfam=$(tr ';' '\n' <<<"$FAMILIES" | grep -c .)
report=${TMPDIR:-/tmp}/rockpack-e2e-$SIZE_ARG${ROCKPACK_E2E_FAMILIES:+-$nfam-families}.md
# The command line that reproduces this run: the options that change what
# is measured.
command=
for v in ROCKPACK_E2E_BIN ROCKPACK_E2E_PLAIN ROCKPACK_E2E_THEROCK ROCKPACK_E2E_THEROCK_WORKERS \
    ROCKPACK_E2E_FAMILIES ROCKPACK_E2E_THROTTLE ROCKPACK_E2E_BEFORE ROCKPACK_E2E_AT_ONCE ROCKPACK_E2E_OVER ROCKPACK_E2E_MEMORY; do
    [[ -n ${!v:-} ]] && command+="$v=$(printf '%q' "${!v}") "
done
command+="bench/e2e.sh $SIZE_ARG"
python3 "$here/e2e_util.py" report \
    --rockpack "$work/rockpack.json" --plain "$work/plain.json" \
    --largest "$work/largest.json" --largest-bytes "$largest_bytes" \
    --largest-zst "$work/largest-zst.json" --largest-zst-summary "$work/largest-zst-summary.json" --limits "$work/limits.json" "${budgets[@]}" "${ranges[@]}" \
    --phases "$work/phases.json" --summary "$work/summary.json" --plan "$work/plan.json" \
    --rockpack-out "$root/$BUCKET/out-rockpack" --plain-out "$root/$BUCKET/out-plain" \
    --check "$work/check.txt" --server-storage "$storage" "${therock_args[@]}" \
    --families "$FAMILIES" --binary "$rockpack" "${extra[@]}" \
    --size-label "$SIZE_ARG" --command "$command" --throttle "${ROCKPACK_E2E_THROTTLE:-}" --out "$report"
echo "(also in $report)" >&2
