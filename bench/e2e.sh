#!/usr/bin/env bash
# End-to-end benchmark: rockpack against the plain way (download, extract,
# flatten, tar czf, upload; TheRock's build_tarballs.py) on the same
# generated kpack run, S3 to S3 through a local s3s-fs server on 127.0.0.1.
#
#   bench/e2e.sh [SIZE]        SIZE: bytes of large-file content to generate,
#                              e.g. 512M, 1G (default), 2G
#
# Needs: cargo, bash, python3 (standard library), GNU tar, zstd, xz, gzip.
# Scratch space: a work dir under ${TMPDIR:-/tmp}, removed at the end; about
# 11x SIZE of free disk at the peak (measured at 2G: the plain way's eight
# flattened trees 4.7x, its tarballs 1.8x, the server's copies of inputs and
# of both sides' outputs 4x, in /dev/shm instead when it has room).
# Prints a Markdown table; also leaves it in ${TMPDIR:-/tmp}/rockpack-e2e-SIZE.md.
# ROCKPACK_E2E_KEEP=1 keeps the work dir; ROCKPACK_E2E_PLAIN=0 skips the plain
# way (rockpack alone, e.g. to check that its peak RSS stays flat at 8G);
# ROCKPACK_E2E_MEMORY="192M 1G" adds a rockpack run per --memory budget.
# ROCKPACK_E2E_THROTTLE=16M adds runs of the largest tarball (zstd) from a
# second server instance whose connections each send at most 16 MiB/s, read
# with one GET per artifact (--range-connections 1) and with parallel ranged
# GETs (the default), alternated twice.
set -euo pipefail

SIZE_ARG=${1:-1G}
FAMILIES='gfx94X-dcgpu;gfx110X-all;gfx120X-all'
BUCKET=bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

size=$(python3 "$here/e2e_util.py" size "$SIZE_ARG")
say() { printf '\n== %s\n' "$*" >&2; }

say "building (release): rockpack, the s3_server and codec_alone examples"
cargo build --release --locked --bin rockpack --example s3_server --example codec_alone >&2
target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
rockpack=$target/release/rockpack
server_bin=$target/release/examples/s3_server
codec_bin=$target/release/examples/codec_alone
jobs=$(nproc)

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-e2e.XXXXXX")
root=
server_pids=()
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${ROCKPACK_E2E_KEEP:-} == 1 ]]; then
        echo "kept $work${root:+ and $root}" >&2
    else
        rm -rf "$work"
        [[ -n ${root:-} && $root == /dev/shm/* ]] && rm -rf "$root"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=$((size * 11 / 1024))
avail=$(df -Pk "$work" | awk 'NR==2 {print $4}')
if ((avail < need)); then
    echo "warning: ${avail} KiB free under $work; this size may need about ${need} KiB" >&2
fi

say "generating a kpack run with $SIZE_ARG ($size bytes) of large files"
# The server's storage stands in for S3's, which is not on the runner: it is
# kept in memory (tmpfs) when /dev/shm has room for about 5x SIZE, so the
# server's writes do not compete with the plain way's for the disk.
# ROCKPACK_E2E_SERVER_ON_DISK=1 keeps it in the work dir.
shm_need=$((size * 5 / 1024))
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
    --families "$FAMILIES" --large-bytes "$size"
python3 "$here/e2e_util.py" seed "$root" "$BUCKET" run
du -sh "$root/$BUCKET/run" >&2

# start_server NAME [ARGS...]: starts an S3 server on $root with ARGS; sets
# server_pid and endpoint.
start_server() {
    local name=$1
    shift
    "$server_bin" --root "$root" --bucket "$BUCKET" --anonymous "$@" \
        --port-file "$work/$name.endpoint" >"$work/$name.out" 2>"$work/$name.log" &
    server_pid=$!
    server_pids+=("$server_pid")
    for _ in $(seq 100); do
        [[ -s $work/$name.endpoint ]] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    endpoint=$(cat "$work/$name.endpoint")
    echo "listening on $endpoint" >&2
}

say "starting the S3 server"
start_server server

export AWS_ACCESS_KEY_ID=rockpack-bench-key
export AWS_SECRET_ACCESS_KEY=rockpack-bench-secret
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

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

if [[ ${ROCKPACK_E2E_PLAIN:-1} != 0 ]]; then
    say "plain way: download, extract and flatten, tar czf, upload"
    python3 "$here/measure.py" --json "$work/plain.json" --server-pid "$server_pid" -- \
        python3 "$here/plain_way.py" --endpoint "$endpoint" --bucket "$BUCKET" --prefix run \
        --plan "$work/plan.json" --work "$work/plain" --dest-prefix out-plain/ \
        --phases "$work/phases.json"

    say "checking: the largest tarball, rockpack's against the plain way's"
    python3 "$here/e2e_util.py" check "$root/$BUCKET/out-rockpack/$largest_name" \
        "$root/$BUCKET/out-plain/$largest_name" | tee "$work/check.txt" >&2 || true
fi

say "report"
report=${TMPDIR:-/tmp}/rockpack-e2e-$SIZE_ARG.md
python3 "$here/e2e_util.py" report \
    --rockpack "$work/rockpack.json" --plain "$work/plain.json" \
    --largest "$work/largest.json" --largest-bytes "$largest_bytes" \
    --largest-zst "$work/largest-zst.json" --largest-zst-summary "$work/largest-zst-summary.json" --limits "$work/limits.json" "${budgets[@]}" "${ranges[@]}" \
    --phases "$work/phases.json" --summary "$work/summary.json" --plan "$work/plan.json" \
    --rockpack-out "$root/$BUCKET/out-rockpack" --plain-out "$root/$BUCKET/out-plain" \
    --check "$work/check.txt" --server-storage "$storage" \
    --size-label "$SIZE_ARG" --command "$([[ ${ROCKPACK_E2E_PLAIN:-1} == 0 ]] && printf 'ROCKPACK_E2E_PLAIN=0 ')$([[ -n ${ROCKPACK_E2E_THROTTLE:-} ]] && printf 'ROCKPACK_E2E_THROTTLE=%s ' "$ROCKPACK_E2E_THROTTLE")bench/e2e.sh $SIZE_ARG" --throttle "${ROCKPACK_E2E_THROTTLE:-}" --out "$report"
echo "(also in $report)" >&2
