#!/usr/bin/env bash
# ZIP archives to S3: each run packed into a directory, then into the local
# S3 server (examples/s3_server), one after the other; the objects must be
# the directory's files, byte for byte.
#  windows: a generated run of TheRock's Windows build (three families),
#           --per-target --format zip: archives that share their entries;
#  linux:   a generated Linux run (gfx94X-dcgpu, gfx110X-all) as ZIP,
#           tests/data/linux_zip.toml: one archive per target of gfx110X-all
#           and one of both families, whose links (each .so chain,
#           hardlinks) repeat bytes the archive holds: read back from its
#           body, copied inside the store.
# Prints a Markdown table: wall, CPU and peak RSS to the directory and to
# S3 (the server's CPU not counted: see others_cpu_s in the JSON), bytes
# sent against the distinct bytes, copied, in temporaries, staged.
#
#   bench/zip_s3.sh [SIZE]           SIZE: large-file content (default 2G)
#   ROCKPACK_ZIP_BIN=DIR/rockpack    that binary and DIR/examples/s3_server
#
# Scratch: about 6x SIZE under ${TMPDIR:-/tmp}, removed at the end.
set -euo pipefail

SIZE=${1:-2G}
FAMILIES='gfx110X-all;gfx1151;gfx120X-all'
BUCKET=bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$(dirname "$here")"

source "$here/release_bins.sh"
release_bins ROCKPACK_ZIP_BIN s3_server
server_bin=$examples/s3_server

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-zip-s3.XXXXXX")
root=$work/root
server_pids=()
source "$here/s3_local.sh"
cleanup() {
    stop_servers
    rm -rf "$work"
}
trap cleanup EXIT


for run in windows linux; do
    case $run in
    windows)
        gen=(--platform windows --families "$FAMILIES")
        select=(--families "$FAMILIES" --per-target --platform windows --format zip)
        ;;
    linux)
        gen=(--families 'gfx94X-dcgpu;gfx110X-all')
        select=(--set tests/data/linux_zip.toml)
        ;;
    esac
    "$rockpack" generate --dest "$work/$run" --layout kpack "${gen[@]}" \
        --large-bytes "$SIZE" >&2
    python3 "$here/measure.py" --json "$work/$run.dir.measure.json" -- \
        "$rockpack" pack -q --source "$work/$run" "${select[@]}" \
        --dest "$work/$run.dist" --summary "$work/$run.dir.json"
    mkdir -p "$root/$BUCKET"
    start_server "$run"
    python3 "$here/measure.py" --json "$work/$run.s3.measure.json" --server-pid "$server_pid" -- \
        "$rockpack" pack -q --source "$work/$run" "${select[@]}" \
        --endpoint-url "$endpoint" --retry-for 3600 \
        --dest "s3://$BUCKET/$run/" --summary "$work/$run.s3.json"
    for f in "$work/$run.dist"/*; do
        cmp "$f" "$root/$BUCKET/$run/$(basename "$f")" ||
            { echo "$run: $(basename "$f") differs from the directory's" >&2; exit 1; }
    done
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    rm -rf "${root:?}/$BUCKET" "$work/$run" "$work/$run.dist"
done

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
mib = lambda n: f"{n / 2**20:,.1f}"
print("| run | archives | to | wall s | CPU s | peak RSS MiB | distinct MiB | objects MiB"
      " | sent MiB | sent / distinct | copied MiB | temporaries MiB | staged MiB |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for run in ("windows", "linux"):
    for to in ("dir", "s3"):
        s = json.load(open(f"{w}/{run}.{to}.json"))
        m = json.load(open(f"{w}/{run}.{to}.measure.json"))
        objects = sum(t["bytes"] for t in s["tarballs"])
        u = s.get("upload") or {}
        up = [mib(u["sent_bytes"]), f"{u['sent_bytes'] / s['distinct_bytes']:.3f}x",
              mib(u["copied_bytes"]), mib(u["temporary_bytes"]), mib(u["staged_bytes"])] if u else [""] * 5
        print(f"| {run} | {len(s['tarballs'])} | {to} | {m['wall_s']:.1f} | {m['cpu_s']:.1f}"
              f" | {m['peak_rss_mib']:.0f} | {mib(s['distinct_bytes'])} | {mib(objects)} | "
              + " | ".join(up) + " |")
PY
echo "(the objects are the directory's files, byte for byte)"
