#!/usr/bin/env bash
# Which build profile to ship: builds rockpack with the profiles and variants
# below (each into its own target directory under target/bench-profiles, the
# variants through CARGO_PROFILE_DIST_* overrides), then packs the same
# generated kpack run with each binary, alternating, ROUNDS times, gzip and
# zstd; prints the binary sizes and the best wall and CPU seconds of each.
#
#   bench/profiles.sh [SIZE] [ROUNDS]     defaults: 512M, 3
#
# Needs: cargo, python3, GNU time (/usr/bin/time). Builds take minutes each
# on two cores.
set -euo pipefail
SIZE=${1:-512M}
ROUNDS=${2:-3}
FAMILIES='gfx94X-dcgpu;gfx110X-all;gfx120X-all'
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$(dirname "$here")"
root=$PWD/target/bench-profiles

# name | profile | overrides of the dist profile (lto, codegen-units, panic)
variants=(
    "release+debug|profiling|"
    "dist-thin|dist|thin 16 unwind"
    "dist|dist|fat 1 unwind"
    "dist-abort|dist|fat 1 abort"
)
bins=()
for v in "${variants[@]}"; do
    IFS='|' read -r name profile over <<<"$v"
    env=()
    if [[ -n $over ]]; then
        read -r lto cgu panic <<<"$over"
        env=(CARGO_PROFILE_DIST_LTO="$lto" CARGO_PROFILE_DIST_CODEGEN_UNITS="$cgu" CARGO_PROFILE_DIST_PANIC="$panic")
    fi
    start=$(date +%s)
    env "${env[@]}" cargo build --locked --profile "$profile" --bin rockpack \
        --target-dir "$root/$name" >&2
    echo "$name: built in $(($(date +%s) - start)) s" >&2
    dir=$profile
    [[ $profile == dev ]] && dir=debug
    bins+=("$name=$root/$name/$dir/rockpack")
done

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-profiles.XXXXXX")
trap 'rm -rf "$work"' EXIT
first=${bins[0]#*=}
"$first" generate --dest "$work/run" --layout kpack --families "$FAMILIES" --large-bytes "$SIZE" >&2
for round in $(seq "$ROUNDS"); do
    for fmt in gz zst; do
        for b in "${bins[@]}"; do
            name=${b%%=*} bin=${b#*=}
            /usr/bin/time -f '%e %U %S' -o "$work/$name.$fmt.$round.time" \
                "$bin" pack -q --source "$work/run" --families "$FAMILIES" --tests \
                --format "$fmt" --dest "$work/out" 2>/dev/null
            rm -rf "$work/out"
        done
    done
done
python3 - "$work" "$ROUNDS" "$SIZE" "${bins[@]}" <<'PY'
import os, sys
work, rounds, size, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print(f"| profile | binary MB | gzip wall s | gzip CPU s | zstd wall s | zstd CPU s |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for b in bins:
    name, path = b.split("=", 1)
    cells = []
    for fmt in ("gz", "zst"):
        runs = []
        for r in range(1, rounds + 1):
            e, u, s = map(float, open(f"{work}/{name}.{fmt}.{r}.time").read().split()[-3:])
            runs.append((e, u + s))
        e, c = min(runs)
        cells += [f"{e:.2f}", f"{c:.2f}"]
    print(f"| {name} | {os.path.getsize(path) / 1e6:.1f} | " + " | ".join(cells) + " |")
print(f"\nSIZE {size}, 8 tarballs (--tests) per run, best of {rounds} alternating rounds.")
PY
