#!/usr/bin/env bash
# Syscalls and CPU time per proxied HTTP/1.1 request, ProxyCore alone (no peers), on loopback.
# Starts `proxycore mock` and a proxy in front of it on free ephemeral ports (never 8080/9901),
# drives it with h2load --h1 (keep-alive GET /bytes/64), and prints:
#   - CPU µs/request (user, sys, total) from /proc/<pid>/stat deltas over each of --runs runs, and the min;
#   - syscalls/request by type from `strace -c -f -p <pid>` over one more run (strace slows the proxy
#     down a lot, so it never overlaps a CPU run; the counts, not the times, are what it is for).
# Bounded (timeouts on every wait) and cleans up after itself. See bench/load/README.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

TRANSPORT='{}'
REQUESTS=100000
STRACE_REQUESTS=20000
CONNS=16
RUNS=3
LABEL=""
NO_STRACE=0
PIN=0

usage() {
  cat <<EOF
usage: bash bench/load/syscalls.sh [--transport JSON] [--requests 100000] [--strace-requests 20000]
                                   [--connections 16] [--runs 3] [--label NAME] [--no-strace] [--pin]
  --transport JSON  the config's "transport" block, e.g. '{"engine":"epoll"}' (default: {} = defaults)
  --pin             as run.sh does: proxy on CPU \$LOAD_PROXY_CPU (1), mock and h2load on \$LOAD_CLIENT_CPU (0);
                    the runtime then sees one processor (one epoll reactor, one socket engine thread)
env: PROXYCORE_BIN  use this proxycore binary (default: publish src/ProxyCore.Server to artifacts/proxycore)
     PROXY_ENV      extra environment for the proxy only, e.g. "DOTNET_GCgen0size=0x4000000"
EOF
}

while (($#)); do
  case "$1" in
    --transport) TRANSPORT=${2:?}; shift 2 ;;
    --requests) REQUESTS=${2:?}; shift 2 ;;
    --strace-requests) STRACE_REQUESTS=${2:?}; shift 2 ;;
    --connections|-c) CONNS=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --label) LABEL=${2:?}; shift 2 ;;
    --no-strace) NO_STRACE=1; shift ;;
    --pin) PIN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$REQUESTS" "$STRACE_REQUESTS" "$CONNS" "$RUNS"; do
  [[ "$v" =~ ^[0-9]+$ ]] && ((v > 0)) || { echo "bad number: $v" >&2; exit 2; }
done
for tool in h2load curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y nghttp2-client curl python3)" >&2; exit 2; }
done
((NO_STRACE)) || command -v strace >/dev/null || { echo "needs strace (or --no-strace)" >&2; exit 2; }

log() { printf '[syscalls %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BIN=${PROXYCORE_BIN:-}
if [[ -z "$BIN" ]]; then
  log "publishing src/ProxyCore.Server (Native AOT) to artifacts/proxycore"
  dotnet publish "$REPO/src/ProxyCore.Server" -c Release -o "$REPO/artifacts/proxycore" >/dev/null
  BIN="$REPO/artifacts/proxycore/proxycore"
fi
[[ -x "$BIN" ]] || { echo "not executable: $BIN" >&2; exit 2; }

TMP=$(mktemp -d /tmp/proxycore-syscalls.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# Three free loopback ports (bound then released: a race with another process is possible but unlikely).
read -r MOCK_PORT PROXY_PORT ADMIN_PORT < <(python3 -c '
import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')

cat >"$TMP/proxy.json" <<EOF
{
  "listeners": [{ "address": "127.0.0.1:$PROXY_PORT", "protocols": ["http1"] }],
  "admin": { "address": "127.0.0.1:$ADMIN_PORT" },
  "routes": [{ "id": "default", "match": { "path": "/", "pathType": "prefix" }, "cluster": "default" }],
  "clusters": [{ "id": "default", "destinations": [{ "address": "http://127.0.0.1:$MOCK_PORT" }] }],
  "transport": $TRANSPORT
}
EOF

CLIENT_PIN=() PROXY_PIN=()
if ((PIN)); then
  CLIENT_PIN=(taskset -c "${LOAD_CLIENT_CPU:-0}")
  PROXY_PIN=(taskset -c "${LOAD_PROXY_CPU:-1}")
fi

"${CLIENT_PIN[@]}" "$BIN" mock --listen "127.0.0.1:$MOCK_PORT" --quiet >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
# shellcheck disable=SC2086 # PROXY_ENV is a list of VAR=VALUE words
"${PROXY_PIN[@]}" env ${PROXY_ENV:-} "$BIN" --config "$TMP/proxy.json" --quiet >"$TMP/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")

URL="http://127.0.0.1:$PROXY_PORT/bytes/64"
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL" || true)
  [[ "$code" == 200 ]] && break
  kill -0 "$PROXY_PID" 2>/dev/null || { log "proxy exited:"; cat "$TMP/proxy.log" >&2; exit 1; }
  sleep 0.1
done
[[ "${code:-}" == 200 ]] || { log "proxy did not answer 200 on $URL (last ${code:-none})"; cat "$TMP/proxy.log" >&2; exit 1; }

ticks() { # utime+stime of the proxy, all threads, in clock ticks: "user sys"
  local line rest f
  line=$(cat "/proc/$PROXY_PID/stat")
  rest=${line##*) }
  read -ra f <<<"$rest"
  echo "${f[11]} ${f[12]}"
}

drive() { # drive N -> prints h2load's "succeeded" count
  local n=$1 out
  out=$("${CLIENT_PIN[@]}" timeout 300 h2load --h1 -n "$n" -c "$CONNS" -m 1 "$URL" 2>&1) || { log "h2load failed:"; echo "$out" >&2; exit 1; }
  echo "$out" >>"$TMP/h2load.log"
  awk '/^requests:/ {print $8}' <<<"$out"
}

HZ=$(getconf CLK_TCK)
log "proxy pid $PROXY_PID$( ((PIN)) && echo " (pinned)") on :$PROXY_PORT (admin :$ADMIN_PORT), mock on :$MOCK_PORT, transport $TRANSPORT ${PROXY_ENV:+env $PROXY_ENV}"
drive 5000 >/dev/null # warm-up: connections pooled, caches hot

echo "### ${LABEL:-transport $TRANSPORT}${PROXY_ENV:+ ($PROXY_ENV)}$( ((PIN)) && echo ", pinned")"
echo
echo "CPU per request, $REQUESTS requests × $RUNS runs, $CONNS connections (h2load --h1):"
echo
echo "| run | load avg (1m) before | ok | user µs/req | sys µs/req | total µs/req |"
echo "|---|---|---|---|---|---|"
best=""
for r in $(seq 1 "$RUNS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  read -r u0 s0 < <(ticks)
  ok=$(drive "$REQUESTS")
  read -r u1 s1 < <(ticks)
  row=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$REQUESTS" -v hz="$HZ" \
    'BEGIN { printf "%.1f %.1f %.1f", u*1e6/hz/n, s*1e6/hz/n, (u+s)*1e6/hz/n }')
  read -r uu ss tt <<<"$row"
  echo "| $r | $load | $ok | $uu | $ss | $tt |"
  if [[ -z "$best" ]] || awk -v a="$tt" -v b="${best##* }" 'BEGIN { exit !(a < b) }'; then best="$uu $ss $tt"; fi
done
read -r uu ss tt <<<"$best"
echo "| **min** | | | $uu | $ss | **$tt** |"
echo

if ((!NO_STRACE)); then
  load=$(cut -d' ' -f1 /proc/loadavg)
  timeout 600 strace -c -f -q -p "$PROXY_PID" -o "$TMP/strace.txt" 2>"$TMP/strace.err" &
  STRACE_PID=$!
  PIDS+=("$STRACE_PID")
  sleep 1 # let strace attach every thread
  ok=$(drive "$STRACE_REQUESTS")
  kill -INT "$STRACE_PID" 2>/dev/null || true
  timeout 30 tail --pid="$STRACE_PID" -f /dev/null || true
  echo "Syscalls per request (strace -c -f over $STRACE_REQUESTS requests, $ok ok; load avg before $load):"
  echo
  echo "| syscall | calls/req | errors/req |"
  echo "|---|---|---|"
  awk -v n="$STRACE_REQUESTS" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 {
      name = $NF; calls = $4; errors = (NF == 6) ? $5 : 0
      if (name == "total") { total = calls; terr = errors; next }
      if (calls / n >= 0.005) printf "| %s | %.2f | %.2f |\n", name, calls / n, errors / n
    }
    END { printf "| **total** | **%.2f** | %.2f |\n", total / n, terr / n }' "$TMP/strace.txt" | sort -t'|' -k3 -rn | awk '/total/ { t = $0; next } { print } END { print t }'
  echo
fi
