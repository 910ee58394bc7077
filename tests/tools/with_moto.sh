#!/usr/bin/env bash
# Runs a command with a moto S3 server on 127.0.0.1 (installed in a venv),
# exporting ROCKPACK_TEST_S3_ENDPOINT for the tests; stops it afterwards.
set -euo pipefail
venv="${TMPDIR:-/tmp}/rockpack-moto"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q 'moto[server]>=5.2.5'
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$(mktemp)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
echo "moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)') on 127.0.0.1:$port"
ROCKPACK_TEST_S3_ENDPOINT="http://127.0.0.1:$port" "$@"
