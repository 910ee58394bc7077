#!/usr/bin/env bash
# Several artifacts at once (--artifact-jobs), side by side with the binary
# before it, on one generated kpack run (three families, --tests: 8
# tarballs) read from a local directory:
#
#  1. The serial work (--summary's cpu_seconds) for gzip level 6 and zstd
#     level 3: before (one decode thread and one repack thread for the run:
#     serial = decode + repack), after with one artifact at a time (the
#     default on two cores, where it is the same), and after with N at once
#     and a budget that lets each hold its artifact ahead of its turn; then
#     compress / serial, how many compression threads the run could keep
#     busy.
#  2. Wall time on this machine, before and after, default settings,
#     alternating ROUNDS times (the faster round counts): all tarballs (gz,
#     zst) into a directory, and the near-the-limit runs of README's table
#     (the largest tarball to standard output at --jobs 1 and 2).
#
#   bench/parallel.sh [SIZE] [ROUNDS]     default 2G, 2
#   ROCKPACK_BEFORE=path   the binary before (default: built from git rev
#                          $BEFORE_REV in a worktree, in this target dir)
#   ROCKPACK_AFTER=path    the binary after (default: cargo build --release)
#   ROCKPACK_AT_ONCE="8 6G"  N and --memory of the N-at-once rows
#
# Needs: cargo, git, python3 (standard library). Scratch: about 2x SIZE
# under ${TMPDIR:-/tmp}, removed at the end. Prints a Markdown report.
set -euo pipefail

SIZE=${1:-2G}
ROUNDS=${2:-2}
BEFORE_REV=2482500
FAMILIES='gfx94X-dcgpu;gfx110X-all;gfx120X-all'
read -r AT_ONCE AT_ONCE_MEMORY <<<"${ROCKPACK_AT_ONCE:-8 6G}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-parallel.XXXXXX")
cleanup() {
    git worktree remove --force "$work/before-src" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
before=${ROCKPACK_BEFORE:-}
if [[ -z $before ]]; then
    git worktree add --detach "$work/before-src" "$BEFORE_REV" >&2
    (cd "$work/before-src" && CARGO_TARGET_DIR=$target cargo build --release --locked --bin rockpack >&2)
    cp "$target/release/rockpack" "$work/rockpack-before"
    before=$work/rockpack-before
fi
after=${ROCKPACK_AFTER:-}
if [[ -z $after ]]; then
    cargo build --release --locked --bin rockpack >&2
    after=$target/release/rockpack
fi

"$after" generate --dest "$work/run" --layout kpack --families "$FAMILIES" \
    --large-bytes "$SIZE" >&2

pack() { # BIN NAME ARGS...
    local bin=$1 name=$2
    shift 2
    rm -rf "$work/out"
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" pack -q --source "$work/run" --families "$FAMILIES" --tests \
        --summary "$work/$name.json" "$@" 2>/dev/null
    t1=$(date +%s.%N)
    echo "$name $(python3 -c "print($t1 - $t0)")" >>"$work/walls"
    rm -rf "$work/out"
}

# Each case before, then after, then the next: the two sides of a ratio run
# seconds apart.
for round in $(seq "$ROUNDS"); do
    for fmt in gz zst; do
        for side in before after; do
            bin=$before
            [[ $side == after ]] && bin=$after
            pack "$bin" "$side-$fmt.$round" --format "$fmt" --dest "$work/out"
        done
        for jobs in 1 2; do
            for side in before after; do
                bin=$before
                [[ $side == after ]] && bin=$after
                pack "$bin" "$side-$fmt-largest-j$jobs.$round" --format "$fmt" \
                    --only multiarch-tests --jobs "$jobs" --dest - >/dev/null
            done
        done
        pack "$after" "at-once-$fmt.$round" --format "$fmt" --dest "$work/out" \
            --artifact-jobs "$AT_ONCE" --memory "$AT_ONCE_MEMORY"
    done
done

python3 - "$work" "$ROUNDS" "$SIZE" "$AT_ONCE" "$AT_ONCE_MEMORY" <<'EOF'
import json, sys
work, rounds, size, n, memory = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
walls = {}
for line in open(f"{work}/walls"):
    name, secs = line.split()
    base, r = name.rsplit(".", 1)
    walls.setdefault(base, []).append(float(secs))

def summary(base):
    runs = [json.load(open(f"{work}/{base}.{r}.json")) for r in range(1, rounds + 1)]
    return min(runs, key=lambda s: s["seconds"])

print(f"Serial work, {size} run (3 families, --tests, 8 tarballs), CPU seconds (faster of {rounds} rounds):\n")
print("| format | binary | artifacts at once | decode | repack | fan-out | largest digest | serial | compress | compress / serial |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for fmt, name in (("gz", "gzip 6"), ("zst", "zstd 3")):
    for label, base, at_once in (
        ("before", f"before-{fmt}", "1"),
        ("after", f"after-{fmt}", "1"),
        ("after", f"at-once-{fmt}", f"{n} (--memory {memory})"),
    ):
        c = summary(base)["cpu_seconds"]
        serial = c.get("serial", c["decode"] + c["repack"])
        opt = lambda k: f"{c[k]:.2f}" if k in c else "n/a"
        print(f"| {name} | {label} | {at_once} | {c['decode']:.2f} | {c['repack']:.2f} | "
              f"{opt('fanout')} | {opt('largest_checksum')} | "
              f"{serial:.4f} | {c['compress']:.2f} | {c['compress'] / serial:,.0f} |")

print(f"\nWall seconds on this machine, default settings (each of {rounds} rounds; after / before of the faster):\n")
print("| run | before | after | after / before |")
print("| --- | ---: | ---: | ---: |")
rows = [
    ("gzip, all 8 tarballs", "gz"), ("zstd, all 8 tarballs", "zst"),
    ("gzip, largest to stdout, --jobs 1", "gz-largest-j1"), ("gzip, largest to stdout, --jobs 2", "gz-largest-j2"),
    ("zstd, largest to stdout, --jobs 1", "zst-largest-j1"), ("zstd, largest to stdout, --jobs 2", "zst-largest-j2"),
]
for label, key in rows:
    b, a = walls[f"before-{key}"], walls[f"after-{key}"]
    fmt_ = lambda xs: " / ".join(f"{x:.2f}" for x in xs)
    print(f"| {label} | {fmt_(b)} | {fmt_(a)} | {min(a) / min(b):.3f}x |")
for fmt in ("gz", "zst"):
    print(f"\n{n} at once, {fmt}: wall {fmt_(walls[f'at-once-{fmt}'])} s.", end="")
print()
EOF
