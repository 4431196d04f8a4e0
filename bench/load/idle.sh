#!/usr/bin/env bash
# Idle-connection memory: N (10,000) keep-alive client connections, each did one GET through the
# proxy and then stays open and idle. Reports RSS per idle connection ((RSS with N open - RSS
# before) / N) for ProxyCore and for nginx, measured one after the other in the same run.
# See bench/load/README.md. Loopback only, ephemeral ports.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
ORIG_ARGS=("$@")

CONNS=10000
SETTLE=3
OUT=""
PEERS="nginx,proxycore"

usage() {
  cat <<EOF
usage: bash bench/load/idle.sh [--connections 10000] [--settle 3] [--peers nginx,proxycore] [--out FILE]
  --settle S   seconds to wait after the last answer before RSS is read (idle buffers returned)
env: PROXYCORE_BIN  use this proxycore binary (default: publish src/ProxyCore.Server to artifacts/proxycore)
     PROXY_ENV      extra environment for ProxyCore only, e.g. "DOTNET_GCgen0size=0x400000"
EOF
}
while (($#)); do
  case "$1" in
    --connections|-c) CONNS=${2:?}; shift 2 ;;
    --settle) SETTLE=${2:?}; shift 2 ;;
    --peers) PEERS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$CONNS" =~ ^[0-9]+$ ]] && ((CONNS > 0)) || { echo "bad --connections $CONNS" >&2; exit 2; }
for tool in nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y nginx curl python3)" >&2; exit 2; }
done
log() { printf '[idle %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Every process started below inherits this: the client holds N sockets, the proxy N + upstreams.
NOFILE=$((CONNS + 4096))
if (($(ulimit -Hn) < NOFILE)); then ulimit -Hn "$NOFILE" 2>/dev/null || { echo "ulimit -n hard limit $(ulimit -Hn) < $NOFILE (run as root or lower --connections)" >&2; exit 2; }; fi
ulimit -Sn "$NOFILE"

BIN=${PROXYCORE_BIN:-}
if [[ -z "$BIN" ]]; then
  log "publishing src/ProxyCore.Server (Native AOT) to artifacts/proxycore"
  timeout 900 dotnet publish "$REPO/src/ProxyCore.Server" -c Release -o "$REPO/artifacts/proxycore" >/dev/null
  BIN="$REPO/artifacts/proxycore/proxycore"
fi
[[ -x "$BIN" ]] || { echo "not executable: $BIN" >&2; exit 2; }

TMP=$(mktemp -d /tmp/proxycore-idle.XXXXXX)
PIDS=()
cleanup() {
  local p
  exec 3>&- 2>/dev/null || true
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
    scgi_temp_path tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;'
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
worker_rlimit_nofile $NOFILE;
pid nginx.pid;
error_log error.log warn;
events { worker_connections $((CONNS + 2048)); }
http {
$nginx_common
    upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
# maxConnections above N (its default, 10000, would refuse the last ones); keepAliveTimeout long
# enough that nothing closes while RSS is read.
cat >"$TMP/proxy.json" <<EOF
{
  "listeners": [{ "address": "127.0.0.1:$PC_PORT", "protocols": ["http1"] }],
  "admin": { "address": "127.0.0.1:$ADMIN_PORT" },
  "limits": { "maxConnections": $((CONNS + 512)), "keepAliveTimeout": "300s" },
  "routes": [{ "id": "default", "match": { "path": "/", "pathType": "prefix" }, "cluster": "default" }],
  "clusters": [{ "id": "default", "destinations": [{ "address": "http://127.0.0.1:$UP_PORT" }] }]
}
EOF

nginx -p "$TMP/up/" -c "$TMP/up/nginx.conf" -e "$TMP/up/error.log" -g 'daemon off;' &
PIDS+=($!)

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
wait_200() {
  local code=""
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)
    [[ "$code" == 200 ]] && return 0
    sleep 0.1
  done
  log "no answer from $1 (last ${code:-none})"; exit 1
}
wait_200 "http://127.0.0.1:$UP_PORT/"

declare -A BEFORE=() AFTER=() PER=() NOTE=()
ALLOC0="" ALLOC1="" GCS=""
alloc_bytes() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^dotnet_gc_allocated_bytes_total/ { print $2 }'; }
measure() { # peer port pid-to-measure
  local peer=$1 port=$2 pid=$3 line before after check
  wait_200 "http://127.0.0.1:$port/"
  # Warm-up: a few hundred connections opened and closed, so code pages, pools and the upstream
  # connections exist before the baseline and the delta is the idle connections' own.
  python3 - "$port" <<'PY'
import socket, sys
port = int(sys.argv[1])
for _ in range(300):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    while s.recv(65536):
        pass
    s.close()
PY
  sleep 1
  [[ $peer == proxycore ]] && ALLOC0=$(alloc_bytes)
  before=$(rss_kb "$pid")
  coproc CLIENT { exec python3 "$SCRIPT_DIR/idle_client.py" --port "$port" --connections "$CONNS" 2>&1; }
  local cpid=$CLIENT_PID
  read -r -t 180 line <&"${CLIENT[0]}" || { log "$peer: client gave no answer"; exit 1; }
  [[ $line == "ready $CONNS" ]] || { log "$peer: client: $line"; exit 1; }
  sleep "$SETTLE"
  after=$(rss_kb "$pid")
  if [[ $peer == proxycore ]]; then
    ALLOC1=$(alloc_bytes)
    GCS=$(curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -F'[{}"]' '/^dotnet_gc_collections_total/ { printf "%sgen%s %s", sep, $3, $5; sep=", " }' | sed 's/  */ /g')
  fi
  echo check >&"${CLIENT[1]}"
  read -r -t 60 check <&"${CLIENT[0]}" || check="no answer to check"
  echo quit >&"${CLIENT[1]}"
  timeout 30 tail --pid="$cpid" -f /dev/null || kill "$cpid" 2>/dev/null || true
  BEFORE[$peer]=$before AFTER[$peer]=$after NOTE[$peer]=$check
  PER[$peer]=$(awk -v a="$after" -v b="$before" -v n="$CONNS" 'BEGIN { printf "%.2f", (a-b)*1024/n/1024 }')
  log "$peer: RSS $before kB -> $after kB with $CONNS idle connections ($check): ${PER[$peer]} KiB each"
}

IFS=',' read -ra PEER_LIST <<<"$PEERS"
for peer in "${PEER_LIST[@]}"; do
  case "$peer" in
    nginx)
      nginx -p "$TMP/ng/" -c "$TMP/ng/nginx.conf" -e "$TMP/ng/error.log" -g 'daemon off;' &
      ng=$!; PIDS+=("$ng"); sleep 0.5
      # The worker holds the connections; the master's RSS does not move.
      measure nginx "$NGINX_PORT" "$(pgrep -P "$ng" | head -1)"
      kill "$ng"; timeout 10 tail --pid="$ng" -f /dev/null || true ;;
    proxycore)
      # shellcheck disable=SC2086 # PROXY_ENV is a list of VAR=VALUE words
      env ${PROXY_ENV:-} "$BIN" --config "$TMP/proxy.json" --quiet >"$TMP/proxy.log" 2>&1 &
      pc=$!; PIDS+=("$pc")
      measure proxycore "$PC_PORT" "$pc"
      kill "$pc"; timeout 10 tail --pid="$pc" -f /dev/null || true ;;
    *) echo "unknown peer $peer" >&2; exit 2 ;;
  esac
done

SHA=$(git -C "$REPO" rev-parse --short HEAD)
DIRTY=$(git -C "$REPO" diff --quiet HEAD -- src bench 2>/dev/null && echo "" || echo "-dirty")
OUT=${OUT:-$REPO/perf-results/$(date -u +%Y-%m-%d)-idle-$SHA$DIRTY.md}
{
  echo "# $CONNS idle keep-alive client connections: RSS per connection — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- commit: $SHA$DIRTY"
  echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load avg at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`${PROXY_ENV:+PROXY_ENV='$PROXY_ENV' }bash bench/load/idle.sh ${ORIG_ARGS[*]}\`$( [[ -n ${PROXYCORE_BIN:-} ]] && echo " (PROXYCORE_BIN=$PROXYCORE_BIN)")"
  echo "- $(nginx -v 2>&1) (1 worker, keepalive 64 upstream); client bench/load/idle_client.py (one GET / per connection, 32 in flight, then idle); upstream nginx answering 64 bytes; RSS read ${SETTLE}s after the last answer, after a warm-up of 300 closed connections"
  echo
  echo "| peer | RSS before (kB) | RSS with $CONNS idle (kB) | KiB per idle connection | connections still open |"
  echo "|---|---|---|---|---|"
  for peer in "${PEER_LIST[@]}"; do
    echo "| $peer | ${BEFORE[$peer]} | ${AFTER[$peer]} | **${PER[$peer]}** | ${NOTE[$peer]} |"
  done
  if [[ -n $ALLOC0 && -n $ALLOC1 ]]; then
    echo
    awk -v a="$ALLOC0" -v b="$ALLOC1" -v n="$CONNS" -v g="$GCS" 'BEGIN { printf "ProxyCore managed allocations while the connections opened: %.0f B per connection (dotnet_gc_allocated_bytes_total); GC collections at the end: %s.\n", (b-a)/n, g }'
  fi
} | tee "$OUT"
log "wrote $OUT"
