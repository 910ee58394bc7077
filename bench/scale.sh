#!/usr/bin/env bash
# Release size on this machine: one generated kpack run shaped like a real
# release (three families, --tests: 8 tarballs; SIZE of large-file content,
# so that the largest per-target and generic artifacts decode to GBs and
# multiarch-tests holds all of it), packed at default settings
#
#  1. from a directory to a directory (gzip 6): wall, CPU per stage, peak
#     RSS against the budget it chose, bytes written to disk beyond the
#     tarballs themselves (temporary disk: must be 0);
#  2. from the local S3 server (examples/s3_server) to it, upload once:
#     the same, and bytes sent, copied into the tarballs, into temporary
#     objects and from staging names, against the distinct compressed bytes
#     and the bytes of the tarballs assembled by copies;
#  3. to a directory again as a 64-core runner would (ROCKPACK_CORES=64 and
#     --memory 4G), for each codec of LEVELS: compress / serial, the
#     tarballs byte-identical to runs 1 and 2 (for gzip 6), and a projected
#     wall time on 16, 64 and 96 cores (formula in the report).
#
#   bench/scale.sh [SIZE]          default 16G
#   ROCKPACK_SCALE_LEVELS="gz:6 gz:9 zst:3"   codecs of step 3 (default)
#   ROCKPACK_SCALE_BIN=DIR/rockpack  that binary and DIR/examples/s3_server
#                                  instead of building them (release)
#   ROCKPACK_SCALE_KEEP=1          keep the work dir
#   ROCKPACK_SCALE_S3=0            skip step 2 (the server keeps every
#                                  tarball and its staging copy: about 2x
#                                  the gzip output of disk at the peak;
#                                  49 GB above the start at 16G, the run
#                                  included)
#
# Needs: cargo (unless ROCKPACK_SCALE_BIN), python3 (standard library).
# Scratch: the run (~0.37x SIZE), the directory outputs (~1.1x SIZE as
# gzip), and for step 2 the server's tarballs and staging copies (~2x the
# gzip output at the peak), under ${TMPDIR:-/tmp}. A failed step
# prints the end of its log; the work dir is then kept.
# Prints a Markdown report; also leaves it in ${TMPDIR:-/tmp}/rockpack-scale-SIZE.md.
set -euo pipefail

SIZE=${1:-16G}
LEVELS=${ROCKPACK_SCALE_LEVELS:-gz:6 gz:9 zst:3}
FAMILIES='gfx94X-dcgpu;gfx110X-all;gfx120X-all'
BUCKET=scale
report_dir=${TMPDIR:-/tmp}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"
say() { printf '\n== %s\n' "$*" >&2; }

source "$here/release_bins.sh"
release_bins ROCKPACK_SCALE_BIN s3_server
server_bin=$examples/s3_server

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-scale.XXXXXX")
server_pid=
failed=0
cleanup() {
    [[ -n $server_pid ]] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
    if [[ ${ROCKPACK_SCALE_KEEP:-} == 1 || $failed == 1 ]]; then
        echo "kept $work (the run and the logs)" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
# measured NAME CMD...: runs CMD under measure.py as $work/NAME.json; on a
# failure prints the end of its log and stops.
measured() {
    local name=$1
    shift
    if ! python3 "$here/measure.py" --json "$work/$name.json" --stderr "$work/$name.log" "$@"; then
        failed=1
        echo "step $name failed; the end of its log:" >&2
        tail -n 20 "$work/$name.log" >&2
        df -h "$work" >&2
        exit 1
    fi
}

root=$work/s3
run=$root/$BUCKET/run
mkdir -p "$root/$BUCKET" "$work/tmp"
say "generating $SIZE of large-file content"
"$rockpack" -q generate --dest "$run" --layout kpack --families "$FAMILIES" --large-bytes "$SIZE"
python3 "$here/e2e_util.py" seed "$root" "$BUCKET" run
du -sh "$run" >&2
select=(--families "$FAMILIES" --tests)
# Nothing may be written under TMPDIR.
export TMPDIR=$work/tmp

say "1. directory -> directory, defaults"
measured dir -- \
    "$rockpack" pack --source "$run" "${select[@]}" --dest "$work/out-dir" \
    --summary "$work/dir-summary.json"
rm -rf "$work/out-dir"

s3_args=()
if [[ ${ROCKPACK_SCALE_S3:-1} != 0 ]]; then
say "2. S3 -> S3, defaults (upload once)"
"$server_bin" --root "$root" --bucket "$BUCKET" --anonymous \
    --port-file "$work/endpoint" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
    [[ -s $work/endpoint ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
endpoint=$(cat "$work/endpoint")
export AWS_ACCESS_KEY_ID=rockpack-bench-key AWS_SECRET_ACCESS_KEY=rockpack-bench-secret
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
# While the local server completes a multipart upload of GBs it writes the
# object through its disk and hashes it, and answers nothing else on this
# machine's two cores for minutes: part requests time out and are tried
# again (seen at 16G; rockpack's default patience, --retry-for 120 s, ran
# out). The retries are counted in the log; S3 does not stall like this.
measured s3 --server-pid "$server_pid" -- \
    "$rockpack" pack --source "s3://$BUCKET/run" --endpoint-url "$endpoint" "${select[@]}" \
    --retry-for 3600 --dest "s3://$BUCKET/out/" --summary "$work/s3-summary.json"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
rm -rf "${root:?}/$BUCKET/out"
s3_args=(--s3 "$work/s3")
fi

runs=()
for lv in $LEVELS; do
    fmt=${lv%%:*} level=${lv##*:}
    say "3. as 64 cores with --memory 4G: $fmt level $level"
    measured "c64-$fmt$level" -- \
        env ROCKPACK_CORES=64 "$rockpack" pack --source "$run" "${select[@]}" \
        --format "$fmt" --level "$level" --memory 4G --dest "$work/out-64" \
        --summary "$work/c64-$fmt$level-summary.json"
    rm -rf "$work/out-64"
    runs+=("$fmt:$level=$work/c64-$fmt$level")
done

leftover=$(find "$work/tmp" -mindepth 1 | wc -l)
python3 "$here/scale_report.py" --size "$SIZE" --dir "$work/dir" "${s3_args[@]}" \
    --tmp-leftovers "$leftover" "${runs[@]}" | tee "$report_dir/rockpack-scale-$SIZE.md"
