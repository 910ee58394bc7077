#!/usr/bin/env bash
# The composite action's step (action.yml): installs rockpack with pip into
# a fresh virtual environment and runs `rockpack pack` with the flags the
# INPUT_* variables give. rockpack itself writes `tarball_urls` to
# $GITHUB_OUTPUT; this adds `summary`. CI runs it too (tests/tools/wheel.sh),
# with INPUT_PIP_SPEC set to the wheel it just built.
set -euo pipefail

action_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
input() { local v="INPUT_$1"; printf '%s' "${!v:-}"; }
truthy() { case "$(input "$1" | tr '[:upper:]' '[:lower:]')" in true | 1 | yes) return 0 ;; *) return 1 ;; esac; }

# What pip installs: pip-spec, else rockpack==rockpack-version, else this
# action's own version (its Cargo.toml).
spec=$(input PIP_SPEC)
if [[ -z $spec ]]; then
    version=$(input ROCKPACK_VERSION)
    if [[ -z $version ]]; then
        version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$action_dir/Cargo.toml" | head -n 1)
    fi
    spec="rockpack==$version"
fi
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rockpack-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
rockpack="$venv/bin/rockpack"
"$rockpack" --version

args=(pack)
add() { [[ -n $2 ]] && args+=("$1" "$2") || true; }
add --run-id "$(input RUN_ID)"
add --source "$(input SOURCE)"
add --run-github-repo "$(input RUN_GITHUB_REPO)"
add --release-type "$(input RELEASE_TYPE)"
add --dist-amdgpu-families "$(input FAMILIES)"
add --set "$(input SET)"
add --platform "$(input PLATFORM)"
add --package-version "$(input PACKAGE_VERSION)"
add --format "$(input FORMAT)"
add --dest "$(input DEST)"
if truthy INCLUDE_TEST_TARBALLS; then args+=(--include-test-tarballs); fi
if [[ -z $(input DEST) ]] && truthy UPLOAD; then args+=(--upload); fi
summary=$(input SUMMARY)
add --summary "$summary"
# Extra flags: split on whitespace, no globbing.
read -r -a extra <<<"$(input EXTRA_ARGS)"
args+=("${extra[@]}")

echo "rockpack ${args[*]}"
"$rockpack" "${args[@]}"
if [[ -n ${GITHUB_OUTPUT:-} && -n $summary ]]; then
    echo "summary=$summary" >>"$GITHUB_OUTPUT"
fi
