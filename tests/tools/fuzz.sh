#!/usr/bin/env bash
# Fuzzing of rockpack's artifact reader (decode, tar reader, flattening
# rules): the cargo-fuzz targets in fuzz/, on the stable toolchain (no
# sanitizer, so no nightly runtime pieces and no RUSTC_BOOTSTRAP needed).
#
#   tests/tools/fuzz.sh short                 CI: each target, FUZZ_RUNS (100000) inputs from the seeds
#   tests/tools/fuzz.sh long [SECONDS] [T...] each target (or T...) for SECONDS (default 3600),
#                                             new inputs kept in fuzz/work/T
#   tests/tools/fuzz.sh replay T FILE...      re-run inputs (a finding) in a normal build, with a backtrace
#   tests/tools/fuzz.sh seeds                 regenerate the committed seed corpus fuzz/corpus/
#
# Findings land in fuzz/artifacts/T/ (git-ignored); the short mode also
# prints them base64-encoded, so a CI log is enough to reproduce one.
# Extra libFuzzer flags: FUZZ_FLAGS='-jobs=2 -workers=2' tests/tools/fuzz.sh long.
# FUZZ_SANITIZER=address adds ASan (mostly for the C decoders; about 7x
# slower), on stable through RUSTC_BOOTSTRAP; the default is none, where
# the harness's own checks, panics, overflow checks and debug assertions
# are what catches bugs.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(artifact two_artifacts)
SANITIZER=${FUZZ_SANITIZER:-none}
FUZZ_OPTS=(--sanitizer "$SANITIZER")
RSS_LIMIT=512
if [ "$SANITIZER" != none ]; then
  export RUSTC_BOOTSTRAP=1 # -Zsanitizer; the stable toolchain ships the runtimes
  FUZZ_OPTS+=(--target-dir "fuzz/target/$SANITIZER")
  RSS_LIMIT=2048
fi
LIBFUZZER_FLAGS=(-rss_limit_mb="$RSS_LIMIT" -timeout=10 -dict=fuzz/tar.dict -print_final_stats=1)

install_cargo_fuzz() {
  if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
}

build() {
  # fuzz/ is a workspace of its own, out of reach of the root's fmt check.
  cargo fmt --check --manifest-path fuzz/Cargo.toml
  # fuzz/Cargo.lock is committed: refuse to run with a stale one.
  cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
  cargo fuzz build "${FUZZ_OPTS[@]}" "$@"
}

# run TARGET CORPUS_DIR libFuzzer-flags...: new inputs go to CORPUS_DIR, the
# committed seeds are read only.
run() {
  local target=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  cargo fuzz run "${FUZZ_OPTS[@]}" "$target" "$dir" "fuzz/corpus/$target" -- \
    "${LIBFUZZER_FLAGS[@]}" ${FUZZ_FLAGS:-} "$@"
}

show_findings() {
  local target=$1 f
  for f in fuzz/artifacts/"$target"/*; do
    [ -f "$f" ] || continue
    echo "finding: $f (reproduce: base64 -d > input <<'EOF' ... EOF; tests/tools/fuzz.sh replay $target input)"
    base64 -w 76 "$f"
  done
}

mode=${1:-short}
shift || true
case "$mode" in
  short)
    # The harness, seeds and replay examples as the root crate is linted.
    cargo clippy --locked --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings
    install_cargo_fuzz
    build
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    passed=0
    for t in "${TARGETS[@]}"; do
      echo "--- fuzz $t: ${FUZZ_RUNS:-100000} inputs from fuzz/corpus/$t"
      # libFuzzer's progress lines stay in a log; shown whole on failure.
      if ! run "$t" "$work/$t" -runs="${FUZZ_RUNS:-100000}" -max_total_time=120 >"$work/$t.log" 2>&1; then
        tail -n 80 "$work/$t.log"
        show_findings "$t"
        echo "fuzz: $passed passed, 1 failed"
        exit 1
      fi
      grep -E '^(Done|stat::)' "$work/$t.log"
      passed=$((passed + 1))
    done
    echo "fuzz: $passed passed, 0 failed"
    ;;
  long)
    secs=3600
    if [[ ${1:-} =~ ^[0-9]+$ ]]; then
      secs=$1
      shift
    fi
    (($#)) || set -- "${TARGETS[@]}"
    install_cargo_fuzz
    build
    for t in "$@"; do
      echo "--- fuzz $t for ${secs}s; new inputs in fuzz/work/$t"
      run "$t" "fuzz/work/$t" -max_total_time="$secs" || {
        show_findings "$t"
        exit 1
      }
    done
    ;;
  replay)
    cargo run --locked --manifest-path fuzz/Cargo.toml --example replay -- "$@"
    ;;
  seeds)
    cargo run --locked --manifest-path fuzz/Cargo.toml --example seeds
    ;;
  *)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
