#!/usr/bin/env bash
# Fuzzing of rockpack's artifact reader (decode, tar reader, flattening
# rules): the cargo-fuzz targets in fuzz/, on the stable toolchain.
#
#   tests/tools/fuzz.sh short                 CI: each target from the seed corpus, a bounded run
#   tests/tools/fuzz.sh long [SECONDS] [T...] each target (or T...) for SECONDS (default 3600),
#                                             new inputs kept in fuzz/work/T
#   tests/tools/fuzz.sh replay T FILE...      re-run inputs (a finding) in a normal build, with a backtrace
#   tests/tools/fuzz.sh seeds                 regenerate the committed seed corpus fuzz/corpus/
#
# Findings land in fuzz/artifacts/T/ (git-ignored); the short mode also
# prints them base64-encoded, so a CI log is enough to reproduce one.
# Extra libFuzzer flags: FUZZ_FLAGS='-max_len=65536 -jobs=2' tests/tools/fuzz.sh long.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(artifact two_artifacts)
# Stable rustc: cargo-fuzz needs RUSTC_BOOTSTRAP for its -Z flags, and no
# sanitizer (ASan's runtime comes with nightly only). The harness checks
# everything it cares about itself; panics, overflow checks and debug
# assertions are on.
export RUSTC_BOOTSTRAP=1
LIBFUZZER_FLAGS=(-rss_limit_mb=512 -timeout=10 -dict=fuzz/tar.dict -print_final_stats=1)

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
  cargo fuzz build --sanitizer none "$@"
}

# run TARGET CORPUS_DIR libFuzzer-flags...: new inputs go to CORPUS_DIR, the
# committed seeds are read only.
run() {
  local target=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  cargo fuzz run --sanitizer none "$target" "$dir" "fuzz/corpus/$target" -- \
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
    install_cargo_fuzz
    build
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    passed=0
    for t in "${TARGETS[@]}"; do
      echo "--- fuzz $t: ${FUZZ_RUNS:-20000} runs from fuzz/corpus/$t"
      if ! run "$t" "$work/$t" -runs="${FUZZ_RUNS:-20000}" -max_total_time=120; then
        show_findings "$t"
        echo "fuzz: $passed passed, 1 failed"
        exit 1
      fi
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
