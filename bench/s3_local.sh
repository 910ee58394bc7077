# Sourced by the benchmarks that upload to the local S3 server
# (examples/s3_server). Needs server_bin, root, BUCKET, work and a
# server_pids array (their cleanup kills what it holds).

# start_server NAME [ARGS...]: starts an S3 server on $root with ARGS; sets
# server_pid and endpoint.
start_server() {
    local name=$1
    shift
    "$server_bin" --root "$root" --bucket "$BUCKET" --anonymous "$@" \
        --port-file "$work/$name.endpoint" >"$work/$name.out" 2>"$work/$name.log" &
    server_pid=$!
    server_pids+=("$server_pid")
    for _ in $(seq 100); do
        [[ -s $work/$name.endpoint ]] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    endpoint=$(cat "$work/$name.endpoint")
    echo "listening on $endpoint" >&2
}

# stop_servers: stops every server started.
stop_servers() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# The server's credentials, and none of the machine's AWS settings.
export AWS_ACCESS_KEY_ID=rockpack-bench-key
export AWS_SECRET_ACCESS_KEY=rockpack-bench-secret
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
