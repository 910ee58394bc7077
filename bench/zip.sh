#!/usr/bin/env bash
# What ZIP costs: a generated run of TheRock's Windows build (three
# families, --tests: 8 archives) packed into a directory with --format gz
# and --format zip at the same level, side by side (ROUNDS alternating
# rounds, the faster of each kept): wall and CPU time, compression CPU,
# output bytes. Then the multiarch-tests tree (extracted from its tar.gz)
# zipped by Info-ZIP (`zip -r -6`) and 7-Zip (`7zz a -tzip -mx=6`), where
# installed, for size and time against rockpack's archive.
#
#   bench/zip.sh [SIZE] [ROUNDS]      SIZE: large-file content (default 2G)
#   ROCKPACK_ZIP_BIN=path/to/rockpack use that binary instead of building
#
# Needs: cargo (unless ROCKPACK_ZIP_BIN), python3; zip and 7zz (or 7z) for
# their rows. Scratch: about 3x SIZE under ${TMPDIR:-/tmp}, removed at the
# end. Prints a Markdown report.
set -euo pipefail

SIZE=${1:-2G}
ROUNDS=${2:-2}
FAMILIES='gfx110X-all;gfx1151;gfx120X-all'
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$(dirname "$here")"

if [[ -n ${ROCKPACK_ZIP_BIN:-} ]]; then
    rockpack=$(realpath "$ROCKPACK_ZIP_BIN")
else
    cargo build --release --locked --bin rockpack >&2
    target=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    rockpack=$target/release/rockpack
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-zip.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$rockpack" generate --dest "$work/run" --layout kpack --platform windows \
    --families "$FAMILIES" --large-bytes "$SIZE" >&2

for round in $(seq "$ROUNDS"); do
    for fmt in gz zip; do
        out=$work/out-$fmt
        rm -rf "$out"
        python3 "$here/measure.py" --json "$work/$fmt.$round.measure.json" -- \
            "$rockpack" pack -q --source "$work/run" --families "$FAMILIES" --tests \
            --platform windows --format "$fmt" --level 6 --dest "$out" \
            --summary "$work/$fmt.$round.json" 2>/dev/null
        [[ $round == "$ROUNDS" ]] || rm -rf "$out"
    done
done

# The largest archive's tree, zipped by the usual tools.
big=$(ls -S "$work/out-gz"/*.tar.gz | head -1)
mkdir "$work/tree"
tar xzf "$big" -C "$work/tree"
tools=()
if command -v zip >/dev/null; then
    python3 "$here/measure.py" --json "$work/infozip.measure.json" -- \
        sh -c "cd '$work/tree' && zip -q -r -6 '$work/infozip.zip' ."
    tools+=(infozip)
fi
sevenzip=$(command -v 7zz || command -v 7z || true)
if [[ -n $sevenzip ]]; then
    python3 "$here/measure.py" --json "$work/7zip.measure.json" -- \
        sh -c "cd '$work/tree' && '$sevenzip' a -bd -tzip -mx=6 '$work/7zip.zip' . >/dev/null"
    tools+=(7zip)
fi

python3 - "$work" "$ROUNDS" "$SIZE" "$(basename "$big")" "${tools[@]}" <<'EOF'
import json, os, sys
work, rounds, size, big, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
def run(fmt):
    runs = []
    for r in range(1, rounds + 1):
        m = json.load(open(f"{work}/{fmt}.{r}.measure.json"))
        s = json.load(open(f"{work}/{fmt}.{r}.json"))
        runs.append((m, s))
    # The faster round: the machine is shared and noisy.
    return min(runs, key=lambda ms: ms[0]["wall_s"])
mib = lambda b: b / (1 << 20)
rows = {f: run(f) for f in ("gz", "zip")}
print(f"{size} of large-file content, a Windows run of three families, --tests (8 archives), best of {rounds} alternating rounds:\n")
print("| --format | wall s | CPU s | compress CPU s | peak RSS MiB | output MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for f, (m, s) in rows.items():
    out = sum(t["bytes"] for t in s["tarballs"])
    print(f"| {f} | {m['wall_s']:.1f} | {m['cpu_s']:.1f} | {s['cpu_seconds']['compress']:.1f} | "
          f"{m['peak_rss_mib']:.0f} | {mib(out):,.1f} |")
(gm, gs), (zm, zs) = rows["gz"], rows["zip"]
print(f"\nzip / gz: CPU {zm['cpu_s'] / gm['cpu_s']:.3f}x, compression CPU "
      f"{zs['cpu_seconds']['compress'] / gs['cpu_seconds']['compress']:.3f}x, wall "
      f"{zm['wall_s'] / gm['wall_s']:.3f}x.\n")
name = big.replace(".tar.gz", ".zip")
ours = os.path.getsize(f"{work}/out-zip/{name}")
tgz = os.path.getsize(f"{work}/out-gz/{big}")
print(f"The largest archive ({name}), its tree extracted and zipped again:\n")
print("| archive | MiB | against rockpack's | wall s | CPU s |")
print("| --- | ---: | ---: | ---: | ---: |")
print(f"| rockpack `--format zip` (level 6) | {mib(ours):,.1f} | 1.000x | | |")
print(f"| rockpack `--format gz` (level 6) | {mib(tgz):,.1f} | {tgz / ours:.3f}x | | |")
labels = {"infozip": "Info-ZIP `zip -r -6`", "7zip": "7-Zip `a -tzip -mx=6`"}
for t in tools:
    m = json.load(open(f"{work}/{t}.measure.json"))
    n = os.path.getsize(f"{work}/{t}.zip")
    print(f"| {labels[t]} | {mib(n):,.1f} | {n / ours:.3f}x | {m['wall_s']:.1f} | {m['cpu_s']:.1f} |")
EOF
