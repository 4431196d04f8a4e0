#!/usr/bin/env bash
# Start-up: time from exec of the Native AOT binary to its first proxied 200 (GET / through the
# proxy to an nginx upstream), median of --runs runs, with nginx as a proxy measured the same way
# in the same run; and the binary's size. See bench/load/README.md. Loopback, ephemeral ports.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
ORIG_ARGS=("$@")

RUNS=10
OUT=""
usage() {
  cat <<EOF
usage: bash bench/load/startup.sh [--runs 10] [--out FILE]
env: PROXYCORE_BIN  use this proxycore binary (default: publish src/ProxyCore.Server to artifacts/proxycore)
EOF
}
while (($#)); do
  case "$1" in
    --runs) RUNS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$RUNS" =~ ^[0-9]+$ ]] && ((RUNS > 0)) || { echo "bad --runs $RUNS" >&2; exit 2; }
for tool in nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y nginx curl python3)" >&2; exit 2; }
done
log() { printf '[startup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BIN=${PROXYCORE_BIN:-}
if [[ -z "$BIN" ]]; then
  log "publishing src/ProxyCore.Server (Native AOT) to artifacts/proxycore"
  timeout 900 dotnet publish "$REPO/src/ProxyCore.Server" -c Release -o "$REPO/artifacts/proxycore" >/dev/null
  BIN="$REPO/artifacts/proxycore/proxycore"
fi
[[ -x "$BIN" ]] || { echo "not executable: $BIN" >&2; exit 2; }

TMP=$(mktemp -d /tmp/proxycore-startup.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

read -r UP_PORT NGINX_PORT PC_PORT ADMIN_PORT < <(python3 -c '
import socket
ss=[socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')

mkdir -p "$TMP/up/tmp" "$TMP/ng/tmp"
nginx_common='
    access_log off;
    server_tokens off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;'
cat >"$TMP/up/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
$nginx_common
    server {
        listen 127.0.0.1:$UP_PORT;
        location / { return 200 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; }
    }
}
EOF
cat >"$TMP/ng/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
$nginx_common
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { proxy_pass http://127.0.0.1:$UP_PORT; }
    }
}
EOF
# The config a real deployment starts from (listener, admin, one route), not the CLI shortcut,
# so config load and validation are part of the figure. Admin on an ephemeral port, never 9901.
cat >"$TMP/proxy.json" <<EOF
{
  "listeners": [{ "address": "127.0.0.1:$PC_PORT", "protocols": ["http1"] }],
  "admin": { "address": "127.0.0.1:$ADMIN_PORT" },
  "routes": [{ "id": "default", "match": { "path": "/", "pathType": "prefix" }, "cluster": "default" }],
  "clusters": [{ "id": "default", "destinations": [{ "address": "http://127.0.0.1:$UP_PORT" }] }]
}
EOF

nginx -p "$TMP/up/" -c "$TMP/up/nginx.conf" -e "$TMP/up/error.log" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 1 100); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$UP_PORT/" || true) == 200 ]] && break
  sleep 0.1
done

# One untimed run of each first, so both start from a warm page cache (the binary's pages),
# as they would on any restart of a deployed proxy.
python3 "$SCRIPT_DIR/startup_probe.py" --port "$PC_PORT" --runs 1 -- "$BIN" --config "$TMP/proxy.json" --quiet >/dev/null
python3 "$SCRIPT_DIR/startup_probe.py" --port "$NGINX_PORT" --runs 1 -- \
  nginx -p "$TMP/ng/" -c "$TMP/ng/nginx.conf" -e "$TMP/ng/error.log" -g 'daemon off;' >/dev/null

log "proxycore: $RUNS runs"
PC_OUT=$(python3 "$SCRIPT_DIR/startup_probe.py" --port "$PC_PORT" --runs "$RUNS" -- "$BIN" --config "$TMP/proxy.json" --quiet)
log "nginx: $RUNS runs"
NG_OUT=$(python3 "$SCRIPT_DIR/startup_probe.py" --port "$NGINX_PORT" --runs "$RUNS" -- \
  nginx -p "$TMP/ng/" -c "$TMP/ng/nginx.conf" -e "$TMP/ng/error.log" -g 'daemon off;')

stats() { awk '/^median/ { printf "%s | %s | %s | %s", $2, $4, $6, $8 }' <<<"$1"; }
runs() { awk '/^run/ { printf "%s%s", sep, $3; sep=", " }' <<<"$1"; }
SIZE=$(stat -c %s "$BIN")

SHA=$(git -C "$REPO" rev-parse --short HEAD)
DIRTY=$(git -C "$REPO" diff --quiet HEAD -- src bench 2>/dev/null && echo "" || echo "-dirty")
OUT=${OUT:-$REPO/perf-results/$(date -u +%Y-%m-%d)-startup-$SHA$DIRTY.md}
{
  echo "# Start-up to first proxied 200 — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- commit: $SHA$DIRTY"
  echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load avg at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`bash bench/load/startup.sh ${ORIG_ARGS[*]}\`$( [[ -n ${PROXYCORE_BIN:-} ]] && echo " (PROXYCORE_BIN=$PROXYCORE_BIN)")"
  echo "- from spawn (bench/load/startup_probe.py, monotonic clock) to the first complete \`200\` for \`GET /\` proxied to an nginx upstream, polling every 0.5 ms; ProxyCore from a config file (listener, admin, one route); $(nginx -v 2>&1) with one worker; one untimed run of each first (warm page cache)"
  echo
  echo "| peer | median ms | min ms | max ms | CPU ms by then (median) | runs (ms) |"
  echo "|---|---|---|---|---|---|"
  echo "| proxycore | $(stats "$PC_OUT") | $(runs "$PC_OUT") |"
  echo "| nginx | $(stats "$NG_OUT") | $(runs "$NG_OUT") |"
  echo
  echo "Binary: \`$(basename "$BIN")\` $SIZE bytes ($(awk -v s="$SIZE" 'BEGIN { printf "%.1f", s/1048576 }') MiB)."
} | tee "$OUT"
log "wrote $OUT"
