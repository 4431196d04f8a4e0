#!/usr/bin/env bash
# Streaming rig: a 1 GiB download and a 1 GiB upload through ProxyCore and through nginx
# (proxy_buffering off / proxy_request_buffering off), in one run, plus the same transfers straight
# to the upstream (the ceiling the rig can show). Reports throughput, proxy CPU per GiB and the
# proxy's peak RSS (VmHWM). See bench/load/README.md. Loopback only, ephemeral ports.
#
# Upstreams (the same for both peers):
#   download: nginx serving a 1 GiB sparse file (truncate -s) with sendfile, GET /big
#   upload:   `proxycore mock` POST /sink, which reads the whole body before it answers {"bytes":N},
#             so the client's 200 means every byte went through, and N is checked.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
ORIG_ARGS=("$@")

RUNS=3
SIZE=1073741824
OUT=""
PIN=1

usage() {
  cat <<EOF
usage: bash bench/load/stream.sh [--runs 3] [--size BYTES] [--no-pin] [--out FILE]
  --runs N     transfers per peer and direction, interleaved nginx/proxycore; the best is reported
  --size B     bytes per transfer (default 1 GiB)
  --no-pin     don't pin (default: proxies on CPU \$LOAD_PROXY_CPU=1, curl and upstreams on \$LOAD_CLIENT_CPU=0)
env: PROXYCORE_BIN  use this proxycore binary (default: publish src/ProxyCore.Server to artifacts/proxycore)
EOF
}
while (($#)); do
  case "$1" in
    --runs) RUNS=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$RUNS" "$SIZE"; do [[ "$v" =~ ^[0-9]+$ ]] && ((v > 0)) || { echo "bad number: $v" >&2; exit 2; }; done
for tool in nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y nginx curl python3)" >&2; exit 2; }
done

log() { printf '[stream %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BIN=${PROXYCORE_BIN:-}
if [[ -z "$BIN" ]]; then
  log "publishing src/ProxyCore.Server (Native AOT) to artifacts/proxycore"
  timeout 900 dotnet publish "$REPO/src/ProxyCore.Server" -c Release -o "$REPO/artifacts/proxycore" >/dev/null
  BIN="$REPO/artifacts/proxycore/proxycore"
fi
[[ -x "$BIN" ]] || { echo "not executable: $BIN" >&2; exit 2; }

TMP=$(mktemp -d /tmp/proxycore-stream.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

read -r UP_PORT MOCK_PORT NGINX_PORT PC_PORT ADMIN_PORT < <(python3 -c '
import socket
ss=[socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')

CLIENT_PIN=() PROXY_PIN=()
if ((PIN)); then
  CLIENT_PIN=(taskset -c "${LOAD_CLIENT_CPU:-0}")
  PROXY_PIN=(taskset -c "${LOAD_PROXY_CPU:-1}")
fi

mkdir -p "$TMP/www" "$TMP/up/tmp" "$TMP/ng/tmp"
chmod 755 "$TMP" "$TMP/www"   # nginx workers started by root run as nobody: the file must be readable to them
truncate -s "$SIZE" "$TMP/www/big"   # sparse: no disk, served from the page cache's zero pages
truncate -s "$SIZE" "$TMP/upload.bin"
chmod 644 "$TMP/www/big"

nginx_common='
    access_log off;
    server_tokens off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    keepalive_timeout 300s;'

cat >"$TMP/up/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
$nginx_common
    sendfile on;
    server {
        listen 127.0.0.1:$UP_PORT;
        root $TMP/www;
        location / { }
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
    upstream files { server 127.0.0.1:$UP_PORT; keepalive 8; }
    upstream sink  { server 127.0.0.1:$MOCK_PORT; keepalive 8; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /big  { proxy_pass http://files; proxy_buffering off; }
        location /sink { proxy_pass http://sink; proxy_request_buffering off; client_max_body_size 0; }
    }
}
EOF

cat >"$TMP/proxy.json" <<EOF
{
  "listeners": [{ "address": "127.0.0.1:$PC_PORT", "protocols": ["http1"] }],
  "admin": { "address": "127.0.0.1:$ADMIN_PORT" },
  "limits": { "maxRequestBodyBytes": 0 },
  "routes": [
    { "id": "big",  "match": { "path": "/big",  "pathType": "prefix" }, "cluster": "files" },
    { "id": "sink", "match": { "path": "/sink", "pathType": "prefix" }, "cluster": "sink" }
  ],
  "clusters": [
    { "id": "files", "destinations": [{ "address": "http://127.0.0.1:$UP_PORT" }] },
    { "id": "sink",  "destinations": [{ "address": "http://127.0.0.1:$MOCK_PORT" }] }
  ]
}
EOF

"${CLIENT_PIN[@]}" nginx -p "$TMP/up/" -c "$TMP/up/nginx.conf" -e "$TMP/up/error.log" -g 'daemon off;' &
PIDS+=($!)
"${CLIENT_PIN[@]}" "$BIN" mock --listen "127.0.0.1:$MOCK_PORT" --quiet >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
"${PROXY_PIN[@]}" nginx -p "$TMP/ng/" -c "$TMP/ng/nginx.conf" -e "$TMP/ng/error.log" -g 'daemon off;' &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
"${PROXY_PIN[@]}" "$BIN" --config "$TMP/proxy.json" --quiet >"$TMP/proxy.log" 2>&1 &
PC_PID=$!
PIDS+=("$PC_PID")

wait_200() { # url
  local code=""
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -r 0-0 -w '%{http_code}' --max-time 1 "$1" || true)
    [[ "$code" == 200 || "$code" == 206 ]] && return 0
    sleep 0.1
  done
  log "no answer from $1 (last ${code:-none})"; cat "$TMP/proxy.log" "$TMP/ng/error.log" >&2 || true; exit 1
}
wait_200 "http://127.0.0.1:$UP_PORT/big"
wait_200 "http://127.0.0.1:$NGINX_PORT/big"
wait_200 "http://127.0.0.1:$PC_PORT/big"
wait_200 "http://127.0.0.1:$MOCK_PORT/"

# nginx's worker is the child of the master; CPU is summed over master and worker.
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
declare -A PEER_PIDS=([direct]="" [nginx]="$NGINX_PID $NGINX_WORKER" [proxycore]="$PC_PID")
declare -A BASE=([direct]="http://127.0.0.1" [nginx]="http://127.0.0.1:$NGINX_PORT" [proxycore]="http://127.0.0.1:$PC_PORT")

HZ=$(getconf CLK_TCK)
ticks() { # total utime+stime of the given pids
  local t=0 p line rest f
  for p; do
    line=$(cat "/proc/$p/stat"); rest=${line##*) }; read -ra f <<<"$rest"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

PC_HWM0=$(hwm_kb "$PC_PID")
PC_RSS0=$(rss_kb "$PC_PID")

# One transfer: peer dir -> "MB/s cpu_s_per_GiB"
transfer() {
  local peer=$1 dir=$2 url out speed size t0 t1 pids=${PEER_PIDS[$1]}
  if [[ $dir == down ]]; then
    if [[ $peer == direct ]]; then url="http://127.0.0.1:$UP_PORT/big"; else url="${BASE[$peer]}/big"; fi
    t0=$( [[ -n $pids ]] && ticks $pids || echo 0)
    out=$("${CLIENT_PIN[@]}" timeout 300 curl -sS -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "$url")
    t1=$( [[ -n $pids ]] && ticks $pids || echo 0)
    read -r code size speed <<<"$out"
    [[ $code == 200 && $size == "$SIZE" ]] || { log "$peer download: bad answer: $out"; exit 1; }
  else
    if [[ $peer == direct ]]; then url="http://127.0.0.1:$MOCK_PORT/sink"; else url="${BASE[$peer]}/sink"; fi
    t0=$( [[ -n $pids ]] && ticks $pids || echo 0)
    # -T streams the file (--data-binary @file would read 1 GiB into curl first); -X POST keeps it a POST.
    out=$("${CLIENT_PIN[@]}" timeout 300 curl -sS -X POST -T "$TMP/upload.bin" -H 'Expect:' -o "$TMP/sink.out" \
      -w '%{http_code} %{size_upload} %{speed_upload}' "$url")
    t1=$( [[ -n $pids ]] && ticks $pids || echo 0)
    read -r code size speed <<<"$out"
    [[ $code == 200 && $size == "$SIZE" ]] && grep -q "\"bytes\":$SIZE" "$TMP/sink.out" \
      || { log "$peer upload: bad answer: $out $(cat "$TMP/sink.out")"; exit 1; }
  fi
  awk -v s="$speed" -v d=$((t1 - t0)) -v hz="$HZ" -v n="$SIZE" 'BEGIN { printf "%.0f %.2f", s/1048576, d/hz/(n/1073741824) }'
}

declare -A BEST_MBS=() BEST_CPU=() ALL=()
for r in $(seq 1 "$RUNS"); do
  for dir in down up; do
    for peer in direct nginx proxycore; do
      res=$(transfer "$peer" "$dir")
      read -r mbs cpu <<<"$res"
      log "run $r $dir $peer: $mbs MiB/s, ${cpu} CPU s/GiB"
      ALL[$peer.$dir]+="$mbs "
      if [[ -z ${BEST_MBS[$peer.$dir]:-} ]] || ((mbs > BEST_MBS[$peer.$dir])); then BEST_MBS[$peer.$dir]=$mbs; fi
      if [[ -z ${BEST_CPU[$peer.$dir]:-} ]] || awk -v a="$cpu" -v b="${BEST_CPU[$peer.$dir]}" 'BEGIN { exit !(a < b) }'; then BEST_CPU[$peer.$dir]=$cpu; fi
    done
  done
done

PC_HWM=$(hwm_kb "$PC_PID")
PC_RSS=$(rss_kb "$PC_PID")
NG_HWM=$(hwm_kb "$NGINX_WORKER")

SHA=$(git -C "$REPO" rev-parse --short HEAD)
DIRTY=$(git -C "$REPO" diff --quiet HEAD -- src bench 2>/dev/null && echo "" || echo "-dirty")
OUT=${OUT:-$REPO/perf-results/$(date -u +%Y-%m-%d)-stream-$SHA$DIRTY.md}
{
  echo "# Streaming 1 GiB through the proxy: ProxyCore vs nginx — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- commit: $SHA$DIRTY"
  echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load avg at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`bash bench/load/stream.sh ${ORIG_ARGS[*]}\`$( [[ -n ${PROXYCORE_BIN:-} ]] && echo " (PROXYCORE_BIN=$PROXYCORE_BIN)")"
  echo "- $(nginx -v 2>&1); transfers of $SIZE bytes with curl ($(curl --version | head -1 | cut -d' ' -f1-2)); $RUNS runs each, interleaved; $( ((PIN)) && echo "proxies pinned to CPU ${LOAD_PROXY_CPU:-1}, curl and upstreams to CPU ${LOAD_CLIENT_CPU:-0}" || echo "unpinned")"
  echo "- download: upstream nginx (sendfile) serving a sparse file; nginx peer \`proxy_buffering off\`. Upload: \`curl -X POST -T file\` to \`proxycore mock\` /sink (reads the whole body, answers its length, checked); nginx peer \`proxy_request_buffering off; client_max_body_size 0\`; ProxyCore \`limits.maxRequestBodyBytes: 0\`"
  echo
  echo "| path | download MiB/s (best; all) | download CPU s/GiB | upload MiB/s (best; all) | upload CPU s/GiB |"
  echo "|---|---|---|---|---|"
  for peer in direct nginx proxycore; do
    echo "| $peer | ${BEST_MBS[$peer.down]} (${ALL[$peer.down]% }) | $( [[ $peer == direct ]] && echo — || echo "${BEST_CPU[$peer.down]}") | ${BEST_MBS[$peer.up]} (${ALL[$peer.up]% }) | $( [[ $peer == direct ]] && echo — || echo "${BEST_CPU[$peer.up]}") |"
  done
  echo
  awk -v pd="${BEST_MBS[proxycore.down]}" -v nd="${BEST_MBS[nginx.down]}" -v pu="${BEST_MBS[proxycore.up]}" -v nu="${BEST_MBS[nginx.up]}" \
    'BEGIN { printf "ProxyCore ÷ nginx throughput: download %.2f×, upload %.2f×\n", pd/nd, pu/nu }'
  echo
  echo "Peak RSS (VmHWM): ProxyCore $((PC_HWM / 1024)) MB ($PC_HWM kB; $((PC_HWM0 / 1024)) MB before the transfers, VmRSS $((PC_RSS0 / 1024)) → $((PC_RSS / 1024)) MB); nginx worker $((NG_HWM / 1024)) MB ($NG_HWM kB)."
} | tee "$OUT"
log "wrote $OUT"
