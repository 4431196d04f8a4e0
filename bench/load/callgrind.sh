#!/usr/bin/env bash
# User-space instructions per proxied HTTP/1.1 request, counted by callgrind: repeatable to ~0.1% where
# CPU time on this machine moves ±20% between runs, so it decides small hot-path changes.
# ProxyCore (AOT binary) in front of an nginx upstream answering 64 bytes; h2load --h1 -c16 sends a
# warm-up with instrumentation off, then the measured requests. Loopback only.
# The words `nginx` and `haproxy` in place of a binary count those peers (bench/load/nginx-proxy.conf with one
# worker and no master process; bench/load/haproxy.cfg, one thread) the same way, so the figures share one run.
# usage: bash bench/load/callgrind.sh [--requests 10000] [--warmup 5000] BINARY|nginx|haproxy [...]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQS=10000; WARM=5000; BINS=()
while (($#)); do
  case "$1" in
    --requests) REQS=${2:?}; shift 2 ;;
    --warmup) WARM=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) BINS+=("$1"); shift ;;
  esac
done
((${#BINS[@]})) || { echo "usage: bash bench/load/callgrind.sh BINARY [BINARY...]" >&2; exit 2; }
for tool in valgrind callgrind_control callgrind_annotate nginx h2load curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y valgrind nginx nghttp2-client curl)" >&2; exit 2; }
done
for bin in "${BINS[@]}"; do
  if [[ "$bin" == haproxy ]]; then command -v haproxy >/dev/null || { echo "needs haproxy (apt-get install -y haproxy)" >&2; exit 2; }
  elif [[ "$bin" != nginx && ! -x "$bin" ]]; then echo "not executable: $bin" >&2; exit 2; fi
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for bin in "${BINS[@]}"; do
  work=$(mktemp -d); mkdir -p "$work/up/tmp"
  up_port=$(free_port); px_port=$(free_port)
  sed "s/127.0.0.1:19000/127.0.0.1:$up_port/" "$SCRIPT_DIR/upstream-nginx.conf" >"$work/up.conf"
  nginx -p "$work/up/" -c "$work/up.conf" -e "$work/up/error.log" -g 'daemon off;' & up=$!
  if [[ "$bin" == nginx ]]; then
    mkdir -p "$work/px/tmp"
    sed -e "s/127.0.0.1:19000/127.0.0.1:$up_port/" -e "s/127.0.0.1:18081/127.0.0.1:$px_port/" \
      -e 's/^worker_processes 1;/worker_processes 1;\nmaster_process off;/' "$SCRIPT_DIR/nginx-proxy.conf" >"$work/px.conf"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
      nginx -p "$work/px/" -c "$work/px.conf" -e "$work/px/error.log" -g 'daemon off;' >"$work/proxy.log" 2>&1 & px=$!
  elif [[ "$bin" == haproxy ]]; then
    sed -e "s/127.0.0.1:19000/127.0.0.1:$up_port/" -e "s/127.0.0.1:18082/127.0.0.1:$px_port/" "$SCRIPT_DIR/haproxy.cfg" >"$work/px.cfg"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
      haproxy -db -f "$work/px.cfg" >"$work/proxy.log" 2>&1 & px=$!
  else
    # valgrind cannot read the AOT build's separate .dbg file (it gives up on the whole run): hide it.
    dbg="${bin}.dbg"
    if [[ -f "$dbg" ]]; then mv "$dbg" "$dbg.hidden"; trap 'mv "$dbg.hidden" "$dbg" 2>/dev/null' EXIT; fi
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
      "$bin" --listen "127.0.0.1:$px_port" --upstream "http://127.0.0.1:$up_port" --admin off >"$work/proxy.log" 2>&1 & px=$!
  fi
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$px_port/" && break; sleep 0.2; done
  h2load --h1 -c16 -n"$WARM" "http://127.0.0.1:$px_port/" >/dev/null
  callgrind_control -i on "$px" >/dev/null 2>&1
  done_line=$(h2load --h1 -c16 -n"$REQS" "http://127.0.0.1:$px_port/" | grep -E '^requests:' || true)
  callgrind_control -i off "$px" >/dev/null 2>&1
  callgrind_control -d "$px" >/dev/null 2>&1
  sleep 1
  kill "$px" "$up" 2>/dev/null || true; wait "$px" "$up" 2>/dev/null || true
  if [[ "$bin" != nginx && "$bin" != haproxy && -f "$dbg.hidden" ]]; then mv "$dbg.hidden" "$dbg"; trap - EXIT; fi
  total=0
  for f in "$work"/cg.out*; do
    t=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' || true)
    [[ "$t" =~ ^[0-9]+$ ]] && total=$((total + t))
  done
  echo "$bin: $((total / REQS)) instructions per request ($REQS requests; h2load: $done_line)"
  rm -rf "$work"
done
