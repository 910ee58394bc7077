# Sourced by the benchmarks that run a release build of rockpack and of
# some of its examples. Run from the repository.

# release_bins VAR EXAMPLE...: with $VAR set, the rockpack binary it names
# and the examples beside it (DIR/examples/NAME); else a fresh release
# build of rockpack and the examples. Sets rockpack and examples (the
# examples' directory); each must be an executable.
release_bins() {
    local var=$1 b target
    shift
    if [[ -n ${!var:-} ]]; then
        rockpack=$(realpath "${!var}")
        examples=$(dirname "$rockpack")/examples
        echo "not building: $rockpack" >&2
    else
        echo "building (release): rockpack${*:+ and the examples $*}" >&2
        cargo build --release --locked --bin rockpack "${@/#/--example=}" >&2
        target=$(cargo metadata --format-version 1 --no-deps |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
        rockpack=$target/release/rockpack
        examples=$target/release/examples
    fi
    for b in "$rockpack" "${@/#/$examples/}"; do
        [[ -x $b ]] || { echo "$var: $b is not an executable" >&2; exit 1; }
    done
}
