#!/usr/bin/env bash
# The Python package as a user gets it: builds the wheel with maturin (from
# PyPI, in a throwaway venv), installs it into a fresh virtual environment,
# checks the installed command's version is Cargo's, and packs the shipped
# sample with it, directly and through the composite action's script
# (action/pack.sh) whose `tarball_urls` output is checked.
#
#   tests/tools/wheel.sh [PROFILE]   PROFILE: cargo profile of the wheel's
#                                    binary (default dev: CI reuses the
#                                    test build; releases use dist)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-dev}
work=$(mktemp -d "${TMPDIR:-/tmp}/rockpack-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "wheel: FAIL: $*" >&2; exit 1; }

python3 -m venv "$work/build"
"$work/build/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.7,<2'
"$work/build/bin/maturin" build --locked --profile "$profile" --out "$work/wheels" >&2
wheels=("$work"/wheels/rockpack-*.whl)
[[ ${#wheels[@]} == 1 && -f ${wheels[0]} ]] || fail "expected one wheel, got: ${wheels[*]}"
wheel=${wheels[0]}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ $(basename "$wheel") == rockpack-"$version"-* ]] || fail "$(basename "$wheel"): not version $version"

python3 -m venv "$work/user"
"$work/user/bin/pip" install --quiet --disable-pip-version-check "$wheel"
installed=$("$work/user/bin/rockpack" --version)
[[ $installed == "rockpack $version" ]] || fail "rockpack --version says '$installed', Cargo.toml $version"

check_out() { # DIR: the sample's six tarballs, each with a sidecar that holds its digest
    local n
    n=$(find "$1" -name '*.tar.gz' | wc -l)
    [[ $n == 6 ]] || fail "$1: $n tarballs, expected 6"
    (cd "$1" && sha256sum --quiet -c ./*.sha256sum) || fail "$1: sidecars do not match"
}
"$work/user/bin/rockpack" pack -q --source examples/sample-run \
    --families 'gfx94X-dcgpu;gfx110X-all' --tests --dest "$work/out"
check_out "$work/out"

# The action's step, as a workflow runs it (inputs as INPUT_* variables),
# uploading to the repository's own S3 test server (examples/s3_server/).
cargo build --locked --example s3_server >&2
server=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/s3_server
mkdir -p "$work/s3"
"$server" --root "$work/s3" --bucket releases --port-file "$work/port" >/dev/null &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
endpoint=$(cat "$work/port")
export GITHUB_OUTPUT="$work/github_output" RUNNER_TEMP="$work/runner"
mkdir -p "$RUNNER_TEMP"
AWS_ACCESS_KEY_ID=rockpack-bench-key AWS_SECRET_ACCESS_KEY=rockpack-bench-secret \
    AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint" \
    INPUT_SOURCE=examples/sample-run INPUT_FAMILIES='gfx94X-dcgpu;gfx110X-all' \
    INPUT_INCLUDE_TEST_TARBALLS=true INPUT_PLATFORM=linux INPUT_PACKAGE_VERSION=7.13.0 \
    INPUT_UPLOAD=true INPUT_DEST=s3://releases/v7.13.0 INPUT_SUMMARY="$work/summary.json" \
    INPUT_EXTRA_ARGS='--quiet --memory 256M' INPUT_PIP_SPEC="$wheel" \
    bash action/pack.sh >&2
check_out "$work/s3/releases/v7.13.0"
python3 - "$GITHUB_OUTPUT" "$work/summary.json" "$endpoint" <<'PY' || fail "action outputs"
import json, sys
out = dict(l.split("=", 1) for l in open(sys.argv[1]).read().splitlines())
assert out["summary"] == sys.argv[2], out
urls = json.loads(out["tarball_urls"])
base = f"{sys.argv[3]}/releases/v7.13.0/therock-dist-linux"
labels = ["gfx94X-dcgpu", "gfx110X-all", "multiarch", "gfx94X-dcgpu-tests",
          "gfx110X-all-tests", "multiarch-tests"]
want = {k: f"{base}-{k}-7.13.0.tar.gz" for k in labels}
assert urls == want, (urls, want)
assert len(json.load(open(sys.argv[2]))["tarballs"]) == 6
PY
echo "wheel: ok ($(basename "$wheel"), installed rockpack $version packed the sample, directly and through action/pack.sh)"
