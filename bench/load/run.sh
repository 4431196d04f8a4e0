#!/usr/bin/env bash
# Whole-proxy load rig: ProxyCore vs nginx, HAProxy and YARP on this machine, in one run.
# --h2: the same over HTTP/2 (h2c by prior knowledge) with h2load, ProxyCore vs nginx.
# --h2 --tls: HTTP/2 over TLS (ALPN h2, a self-signed certificate made for the run), ProxyCore vs nginx.
# Reports CPU time per request and ratios against peers measured in the same run.
# See bench/load/README.md. Everything binds to and targets 127.0.0.1 only.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
ORIG_ARGS=("$@")

# ---------------------------------------------------------------- options
PEERS=""
DURATION="10s"
CONNS=""
H2=0
TLS=0
STREAMS=8
WARMUP="3s"
QUICK=0
RATE=0
OUT=""

usage() {
  cat <<EOF
usage: bash bench/load/run.sh [--peers nginx,haproxy,yarp,proxycore,proxycore-policies] [--duration 10s]
                              [--connections 64] [--warmup 3s] [--quick] [--out FILE]
  --quick         3s smoke run (1s warm-up); result file gets a -quick suffix
  --rate N        HTTP/1.1 at a fixed N requests/s (spread over the connections) with h2load --h1 --rps instead
                  of wrk at full speed: every peer carries the same load, so p99 and CPU per request compare at
                  equal load (N must be below every peer's top rate, or the run says the rate was not reached)
  --h2            HTTP/2 (h2c, prior knowledge) with h2load instead of wrk; peers nginx,proxycore;
                  --connections defaults to 8, each with --streams (default 8) concurrent streams
  --tls           with --h2: HTTP/2 over TLS (ALPN h2) instead of h2c; both peers terminate TLS with
                  the same self-signed ECDSA P-256 certificate the script makes with openssl
peer proxycore-policies: ProxyCore with a route doing JWT auth (HS256), a rate limit (never hit),
                  retries (never needed) and one request-header transform, against the same upstream
env: PROXYCORE_BIN   use this proxycore binary instead of publishing src/ProxyCore.Server
     PROXYCORE_TRANSPORT the proxy config's "transport" block, e.g. '{"engine":"epoll"}' (default: none = CLI flags)
     LOAD_CLIENT_CPU core for wrk and the upstream (default 0)
     LOAD_PROXY_CPU  core for the proxy under test (default 1)
     LOAD_KEEP_TMP=1 keep the temp dir (configs, logs, raw wrk output) after the run
EOF
}

while (($#)); do
  case "$1" in
    --peers) PEERS=${2:?}; shift 2 ;;
    --peers=*) PEERS=${1#*=}; shift ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --connections|-c) CONNS=${2:?}; shift 2 ;;
    --connections=*) CONNS=${1#*=}; shift ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --warmup=*) WARMUP=${1#*=}; shift ;;
    --quick) QUICK=1; shift ;;
    --h2) H2=1; shift ;;
    --tls) TLS=1; shift ;;
    --streams|-m) STREAMS=${2:?}; shift 2 ;;
    --streams=*) STREAMS=${1#*=}; shift ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --rate=*) RATE=${1#*=}; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if ((QUICK)); then DURATION=3s; WARMUP=1s; fi
if ((TLS && !H2)); then echo "--tls needs --h2 (the HTTP/1.1 rig is plaintext only)" >&2; exit 2; fi
[[ "$RATE" =~ ^[0-9]+$ ]] || { echo "bad --rate $RATE" >&2; exit 2; }
if ((RATE && H2)); then echo "--rate is for the HTTP/1.1 rig" >&2; exit 2; fi
# The load generator: wrk at full speed, or h2load (HTTP/2, or HTTP/1.1 at a fixed rate).
USE_H2LOAD=$(( H2 || RATE > 0 ))
if ((H2)); then
  PEERS=${PEERS:-nginx,proxycore}; CONNS=${CONNS:-8}
else
  PEERS=${PEERS:-nginx,haproxy,yarp,proxycore,proxycore-policies}; CONNS=${CONNS:-64}
fi
[[ "$STREAMS" =~ ^[0-9]+$ ]] && ((STREAMS > 0)) || { echo "bad --streams $STREAMS" >&2; exit 2; }
# --rate: h2load paces each connection, so the total is spread over them (rounded up).
RPS_PER_CONN=$(( RATE ? (RATE + CONNS - 1) / CONNS : 0 ))

# Seconds in a wrk duration (N, Ns, Nm, Nh) - used only to bound wrk with timeout(1).
to_seconds() {
  local v=$1
  case "$v" in
    *h) echo $(( ${v%h} * 3600 )) ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo $(( ${v%s} )) ;;
    *) echo $(( v )) ;;
  esac
}
DUR_S=$(to_seconds "$DURATION") || { echo "bad --duration $DURATION" >&2; exit 2; }
WARM_S=$(to_seconds "$WARMUP") || { echo "bad --warmup $WARMUP" >&2; exit 2; }
[[ "$CONNS" =~ ^[0-9]+$ ]] && ((CONNS > 0)) || { echo "bad --connections $CONNS" >&2; exit 2; }

IFS=',' read -ra PEER_LIST <<<"$PEERS"
for p in "${PEER_LIST[@]}"; do
  case "$p" in nginx|haproxy|yarp|proxycore|proxycore-policies) ;; *) echo "unknown peer: $p" >&2; exit 2 ;; esac
  if ((H2)) && [[ "$p" != nginx && "$p" != proxycore ]]; then echo "--h2 runs nginx and proxycore only, not $p" >&2; exit 2; fi
done
want() { [[ ",$PEERS," == *",$1,"* ]]; }

HOST=127.0.0.1
UPSTREAM_PORT=19000
UPSTREAM_URL="http://$HOST:$UPSTREAM_PORT"
declare -A PORT=([nginx]=18081 [haproxy]=18082 [yarp]=18083 [proxycore]=18084 [proxycore-policies]=18085)
ADMIN_URL="http://$HOST:9901/metrics"
BODY_LEN=64
CLIENT_CPU=${LOAD_CLIENT_CPU:-0}
PROXY_CPU=${LOAD_PROXY_CPU:-1}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '[load %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/proxycore-load.XXXXXX)
STARTED=()          # pids of everything we started (each the root of its process tree)
MADE_POLICY_RC=0

descendants() {     # all descendant pids of $1, depth first
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$c"
    descendants "$c"
  done
}

alive_any() { local p; for p; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

stop_tree() {       # TERM the tree, wait up to 5s, then KILL whatever is left
  local root=$1 i
  local all=("$root")
  mapfile -t -O 1 all < <(descendants "$root")
  kill -TERM "${all[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive_any "${all[@]}" || break; sleep 0.1; done
  kill -KILL "${all[@]}" 2>/dev/null || true
  wait "$root" 2>/dev/null || true
  local keep=() p
  for p in "${STARTED[@]}"; do [[ "$p" == "$root" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${STARTED[@]}"; do stop_tree "$p"; done
  if ((MADE_POLICY_RC)); then rm -f /usr/sbin/policy-rc.d; fi
  if [[ "${LOAD_KEEP_TMP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: run CMD in the background, output to $WORK/NAME.log, remember its pid in LAST_PID
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}

# ---------------------------------------------------------------- 1. dependencies
SUDO=""
if ((EUID != 0)); then SUDO=sudo; fi
install_deps() {
  local need=()
  command -v nginx >/dev/null || need+=(nginx)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v wrk >/dev/null || need+=(wrk)
  command -v curl >/dev/null || need+=(curl)
  ((USE_H2LOAD)) && { command -v h2load >/dev/null || need+=(nghttp2-client); }
  command -v taskset >/dev/null || need+=(util-linux)
  command -v pgrep >/dev/null || need+=(procps)
  ((${#need[@]})) || return 0
  log "installing: ${need[*]}"
  # Never let the packages start the distro services (nginx's default site listens on 0.0.0.0:80).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    MADE_POLICY_RC=1
  fi
  timeout 600 $SUDO apt-get update -qq
  # Debian 12: 'nginx' is the plain binary package (nginx-light only adds the echo module).
  if [[ " ${need[*]} " == *" nginx "* ]] && ! apt-cache show nginx >/dev/null 2>&1; then
    need=("${need[@]/#nginx/nginx-light}")
  fi
  DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if ((MADE_POLICY_RC)); then $SUDO rm -f /usr/sbin/policy-rc.d; MADE_POLICY_RC=0; fi
}
install_deps

NPROC=$(nproc)
PIN_PROXY=(taskset -c "$PROXY_CPU")
PIN_CLIENT=(taskset -c "$CLIENT_CPU")
if ((NPROC < 2)); then
  log "WARNING: only $NPROC CPU: no pinning, client and proxy share the core"
  PIN_PROXY=(); PIN_CLIENT=(); PROXY_CPU=0; CLIENT_CPU=0
elif ((PROXY_CPU >= NPROC || CLIENT_CPU >= NPROC)); then
  log "LOAD_PROXY_CPU/LOAD_CLIENT_CPU must be below nproc ($NPROC)"; exit 2
fi
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- results
declare -A RPS P50 P99 CPU USR SYS ALLOC STEADY VALID VER
set_invalid() { VALID[$1]="no: $2"; log "$1: $2"; }

# In --h2 mode every peer listens h2c only (nginx's "listen ... http2" on a plain port takes no HTTP/1.1);
# with --tls every peer listens TLS only, h2 by ALPN (the certificate is self-signed: curl -k).
SCHEME=http
CURL_PROTO=(); ((H2)) && CURL_PROTO=(--http2-prior-knowledge)
if ((TLS)); then SCHEME=https; CURL_PROTO=(--http2 -k); fi
port_busy() { curl -s -o /dev/null --max-time 1 "http://$HOST:$1/"; }
peer_scheme() { if [[ "$1" == upstream ]]; then echo http; else echo "$SCHEME"; fi; }

# wait_ready NAME PID PORT SECONDS [CURL-ARGS...]: bounded poll until GET / answers 200; fails if the process died.
wait_ready() {
  local name=$1 pid=$2 port=$3 secs=$4 i code
  shift 4
  for ((i = 0; i < secs * 5; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited early; last lines of its log:"; tail -n 20 "$WORK/$name.log" >&2 || true
      return 1
    fi
    code=$(curl -s "$@" -o /dev/null -w '%{http_code}' --max-time 1 "${PEER_HEADERS[@]}" "$(peer_scheme "$name")://$HOST:$port/" || true)
    [[ "$code" == 200 ]] && return 0
    sleep 0.2
  done
  log "$name did not answer 200 on :$port within ${secs}s (last status ${code:-none}); last lines of its log:"
  tail -n 20 "$WORK/$name.log" >&2 || true
  return 1
}

# ticks PID...: "utime stime" summed over the processes (clock ticks, all threads included).
ticks() {
  local u=0 s=0 p line rest f
  for p; do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${line##*) }           # comm may hold spaces and ')': cut after the last ')'
    read -ra f <<<"$rest"       # f[0] is field 3 (state); utime is field 14, stime field 15
    u=$((u + f[11])); s=$((s + f[12]))
  done
  echo "$u $s"
}

core_ticks() {      # "busy total" ticks of one CPU from /proc/stat
  awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}

# "allocated-bytes requests" from one scrape of ProxyCore's /metrics (dotnet_gc_allocated_bytes_total and
# proxycore_requests_total, summed over their labels; requests 0 if absent), or empty without the first.
alloc_and_requests() {
  curl -s --max-time 2 "$ADMIN_URL" 2>/dev/null |
    awk '$1 ~ /^dotnet_gc_allocated_bytes_total(\{.*\})?$/ { a += $2; n++ }
         $1 ~ /^proxycore_requests_total(\{.*\})?$/ { r += $2 }
         END { if (n) printf "%.0f %.0f\n", a, r }' || true
}
alloc_bytes() { local a r; read -r a r < <(alloc_and_requests) || true; echo "${a:-}"; }

# Allocation in steady state: two scrapes inside the run (at 1/4 and 3/4 of it), so the load generator's
# connection set-up (a few KB per accepted connection) and the scrapes before/after do not count; the
# requests between them come from the proxy's own counter. Between two readings lies about one scrape's
# own rendering (tens of KB), so a third scrape right after the second measures that and it is taken out.
# Writes "bytes requests" to $1.
steady_alloc() {
  sleep "$(awk -v d="$DUR_S" 'BEGIN { print d / 4 }')"
  local a0 r0 a1 r1 a2 _
  read -r a0 r0 < <(alloc_and_requests)
  sleep "$(awk -v d="$DUR_S" 'BEGIN { print d / 2 }')"
  read -r a1 r1 < <(alloc_and_requests)
  read -r a2 _ < <(alloc_and_requests)
  [[ -n "$a0" && -n "$a1" && -n "$a2" ]] && echo "$((a1 - a0 - (a2 - a1))) $((r1 - r0))" >"$1"
}

to_ms() {           # wrk latency "850.00us" / "1.23ms" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "?" }'
}

PEER_HEADERS=()     # curl/wrk -H arguments the peer under test needs (the policies peer's bearer token)
WRK() { timeout $(( $2 + 30 )) "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNS" -d"$1" --latency "${PEER_HEADERS[@]}" "http://$HOST:$3/"; }

# H2LOAD DURATION SECONDS PORT [LOGFILE]: h2load for a fixed time; LOGFILE gets one line per request
# ("start-µs status duration-µs"), the source of the percentiles h2load itself does not print.
H2LOAD() {
  local log=()
  [[ -n "${4:-}" ]] && log=(--log-file="$4")
  local mode=(-m"$STREAMS")
  ((RATE)) && mode=(--h1 -m1 --rps="$RPS_PER_CONN")
  timeout $(( $2 + 30 )) "${PIN_CLIENT[@]}" h2load -t1 -c"$CONNS" "${mode[@]}" -D"$2" "${log[@]}" "${PEER_HEADERS[@]}" "$SCHEME://$HOST:$3/"
}

# percentile P FILE: the P-th percentile of h2load's per-request durations, in milliseconds.
percentile() {
  awk '{ print $3 }' "$2" | sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
    if (NR == 0) { print "?"; exit } i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; if (i > NR) i = NR
    printf "%.3f", v[i] / 1000 }'
}
LOAD_DESC="wrk -t1 -c$CONNS -d$DURATION --latency"
((H2)) && LOAD_DESC="h2load -t1 -c$CONNS -m$STREAMS -D$DUR_S (h2c prior knowledge; p50/p99 from --log-file)"
((RATE)) && LOAD_DESC="h2load --h1 -t1 -c$CONNS -m1 --rps=$RPS_PER_CONN per connection (about $RATE req/s in all) -D$DUR_S (p50/p99 from --log-file)"
((TLS)) && LOAD_DESC="h2load -t1 -c$CONNS -m$STREAMS -D$DUR_S (TLS, ALPN h2, self-signed ECDSA P-256; p50/p99 from --log-file)"

# ---------------------------------------------------------------- builds
YARP_DLL="$REPO/bench/YarpPeer/bin/Release/net10.0/YarpPeer.dll"
if want yarp; then
  log "building bench/YarpPeer (dotnet build -c Release)"
  if ! timeout 900 dotnet build "$REPO/bench/YarpPeer" -c Release -nologo >"$WORK/yarp-build.log" 2>&1 || [[ ! -f "$YARP_DLL" ]]; then
    tail -n 20 "$WORK/yarp-build.log" >&2
    set_invalid yarp "build failed"
  fi
fi

PC_BIN=${PROXYCORE_BIN:-}
if want proxycore || want proxycore-policies; then
  if [[ -z "$PC_BIN" ]]; then
    PC_BIN="$REPO/artifacts/proxycore/proxycore"
    log "publishing ProxyCore (Native AOT) to artifacts/proxycore"
    if ! timeout 1500 dotnet publish "$REPO/src/ProxyCore.Server" -c Release -o "$REPO/artifacts/proxycore" -nologo >"$WORK/proxycore-build.log" 2>&1; then
      grep -E 'error|Error' "$WORK/proxycore-build.log" | sort -u | tail -n 10 >&2 || true
      set_invalid proxycore "Native AOT publish failed"
    fi
  fi
  if [[ -z "${VALID[proxycore]:-}" && ! -x "$PC_BIN" ]]; then set_invalid proxycore "no executable at $PC_BIN"; fi
  if [[ -n "${VALID[proxycore]:-}" ]]; then VALID[proxycore-policies]=${VALID[proxycore]}; fi
fi

# The policies peer: one route with JWT auth, a rate limit, a retry policy and a transform, so the
# table shows what those stages cost next to the plain route. The key, JWKS and token are made here
# (HS256, 32 random bytes); the limit is far above what wrk reaches, so every request passes every
# stage (a 429 or 401 would make the run invalid: non-2xx).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
POLICY_TOKEN=""
if want proxycore-policies; then
  openssl rand 32 >"$WORK/jwt.key"
  KEY_HEX=$(od -An -tx1 -v "$WORK/jwt.key" | tr -d ' \n')
  printf '{"keys":[{"kty":"oct","kid":"bench","alg":"HS256","k":"%s"}]}\n' "$(b64url <"$WORK/jwt.key")" >"$WORK/jwks.json"
  JWT_SIGNED="$(printf '{"alg":"HS256","typ":"JWT","kid":"bench"}' | b64url).$(printf '{"sub":"bench","iss":"load-rig","exp":4102444800}' | b64url)"
  POLICY_TOKEN="$JWT_SIGNED.$(printf '%s' "$JWT_SIGNED" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY_HEX" -binary | b64url)"
  cat >"$WORK/policies.json" <<EOF
{
  "listeners": [ { "address": "$HOST:${PORT[proxycore-policies]}", "protocols": [ "http1" ] } ],
  "admin": { "address": "$HOST:9901" },
  "routes": [ {
    "id": "policies", "match": { "path": "/" }, "cluster": "upstream",
    "auth": { "jwt": { "jwks": "$WORK/jwks.json", "issuer": "load-rig" } },
    "rateLimit": { "requestsPerSecond": 100000000, "burst": 100000000, "by": "consumer" },
    "retry": { "attempts": 2, "on": [ "connect-failure", 503 ] },
    "transforms": { "setRequestHeaders": { "x-env": "bench" } }
  } ],
  "clusters": [ { "id": "upstream", "destinations": [ { "address": "$UPSTREAM_URL" } ] } ]
}
EOF
fi

# The --tls certificate: self-signed ECDSA P-256 for 127.0.0.1/localhost, made fresh in the temp dir;
# both peers serve this same file pair (PKCS#8 key, which ProxyCore requires and nginx reads).
if ((TLS)); then
  if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$WORK/tls-key.pem" -out "$WORK/tls-cert.pem" >"$WORK/openssl.log" 2>&1; then
    cat "$WORK/openssl.log" >&2; log "openssl could not make the test certificate"; exit 1
  fi
fi

# ---------------------------------------------------------------- versions
VER[wrk]=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
VER[upstream]=$(nginx -v 2>&1 | sed 's/^nginx version: //')
want nginx && VER[nginx]=${VER[upstream]}
want haproxy && VER[haproxy]=$(haproxy -v 2>&1 | awk 'NR == 1 { print "HAProxy", $3 }')
if want yarp; then
  VER[yarp]="Yarp.ReverseProxy 2.3.0 on ASP.NET Core $(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.AspNetCore.App/ {v=$2} END {print v}') (Kestrel, workstation non-concurrent GC, JIT)"
fi
if want proxycore || want proxycore-policies; then
  if [[ -x "$PC_BIN" ]]; then
    VER[proxycore]="$(timeout 5 "$PC_BIN" --version 2>/dev/null | awk 'NR == 1' || true) ($PC_BIN, Native AOT)"
  else
    VER[proxycore]="(not built)"
  fi
  VER[proxycore-policies]="${VER[proxycore]} with one route: auth.jwt HS256, rateLimit by consumer (never hit), retry, one setRequestHeaders"
fi

# ---------------------------------------------------------------- 2. upstream
for port in "$UPSTREAM_PORT" "${PORT[@]}"; do
  if port_busy "$port"; then log "something already answers on 127.0.0.1:$port; stop it first"; exit 1; fi
done
mkdir -p "$WORK/upstream/tmp"
# The upstream shares the client core with wrk, so the proxy under test has its core to itself.
start upstream "${PIN_CLIENT[@]}" nginx -p "$WORK/upstream/" -c "$SCRIPT_DIR/upstream-nginx.conf" \
  -e "$WORK/upstream/error.log" -g 'daemon off;'
UPSTREAM_PID=$LAST_PID
wait_ready upstream "$UPSTREAM_PID" "$UPSTREAM_PORT" 10 || { log "upstream failed; giving up"; exit 1; }
body_len=$(curl -s --max-time 2 "$UPSTREAM_URL/" | wc -c)
((body_len == BODY_LEN)) || { log "upstream body is $body_len bytes, expected $BODY_LEN"; exit 1; }
log "upstream nginx on :$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# ---------------------------------------------------------------- 4. peers, one at a time
LOADAVG_NOTES=()
NOISE_NOTES=()
run_peer() {
  local name=$1 port=${PORT[$1]} pid ready_s=10
  [[ -n "${VALID[$name]:-}" ]] && return 0    # already failed (build)
  case "$name" in
    nginx)
      mkdir -p "$WORK/nginx/tmp"
      local conf="$SCRIPT_DIR/nginx-proxy.conf"
      if ((H2)); then
        # h2c by prior knowledge: nginx 1.22's "listen ... http2" on a port without ssl.
        conf="$WORK/nginx-proxy-h2.conf"
        sed -E 's/^(\s*listen 127\.0\.0\.1:[0-9]+) /\1 http2 /' "$SCRIPT_DIR/nginx-proxy.conf" >"$conf"
        grep -q ' http2 ' "$conf" || { set_invalid nginx "could not make an h2c config"; return 0; }
        if ((TLS)); then
          # h2 over TLS: "listen ... ssl http2" with the run's certificate; ALPN offers h2. TLS 1.3
          # enabled explicitly: nginx 1.22's default ssl_protocols stop at 1.2, and ProxyCore (and
          # h2load) negotiate 1.3, so both peers would otherwise pay for different record layers. The
          # suite pinned to the one ProxyCore (.NET's server order) picks with h2load: AES-256-GCM.
          sed -i -E -e 's/^(\s*listen 127\.0\.0\.1:[0-9]+) http2 /\1 ssl http2 /' \
            -e "s|^(\\s*)location / \\{|\\1ssl_certificate $WORK/tls-cert.pem;\\n\\1ssl_certificate_key $WORK/tls-key.pem;\\n\\1ssl_protocols TLSv1.2 TLSv1.3;\\n\\1ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;\\n&|" "$conf"
          grep -q ' ssl http2 ' "$conf" && grep -q 'ssl_certificate_key' "$conf" ||
            { set_invalid nginx "could not make a TLS config"; return 0; }
        fi
      fi
      start nginx "${PIN_PROXY[@]}" nginx -p "$WORK/nginx/" -c "$conf" \
        -e "$WORK/nginx/error.log" -g 'daemon off;' ;;
    haproxy)
      start haproxy "${PIN_PROXY[@]}" haproxy -db -f "$SCRIPT_DIR/haproxy.cfg" ;;
    yarp)
      ready_s=60
      start yarp "${PIN_PROXY[@]}" dotnet "$YARP_DLL" --listen "$HOST:$port" --upstream "$UPSTREAM_URL" ;;
    proxycore)
      ready_s=30
      if [[ -n "${PROXYCORE_TRANSPORT:-}" ]] || ((TLS)); then
        # The same one-route proxy as the CLI flags give, plus the transport block (no CLI flag for it)
        # and, with --tls, the listener's certificate (ALPN h2 and http/1.1; h2load asks for h2).
        local tls_block=""
        ((TLS)) && tls_block=", \"tls\": { \"certificate\": \"$WORK/tls-cert.pem\", \"key\": \"$WORK/tls-key.pem\" }"
        local transport_block=""
        [[ -n "${PROXYCORE_TRANSPORT:-}" ]] && transport_block=",
  \"transport\": $PROXYCORE_TRANSPORT"
        cat >"$WORK/proxycore.json" <<EOF
{
  "listeners": [{ "address": "$HOST:$port"$tls_block }],
  "admin": { "address": "$HOST:9901" },
  "routes": [{ "id": "default", "match": { "path": "/", "pathType": "prefix" }, "cluster": "default" }],
  "clusters": [{ "id": "default", "destinations": [{ "address": "$UPSTREAM_URL" }] }]$transport_block
}
EOF
        start proxycore "${PIN_PROXY[@]}" "$PC_BIN" --config "$WORK/proxycore.json"
      else
        start proxycore "${PIN_PROXY[@]}" "$PC_BIN" --listen "$HOST:$port" --upstream "$UPSTREAM_URL"
      fi ;;
    proxycore-policies)
      ready_s=30
      PEER_HEADERS=(-H "Authorization: Bearer $POLICY_TOKEN")
      start proxycore-policies "${PIN_PROXY[@]}" "$PC_BIN" --config "$WORK/policies.json" ;;
  esac
  pid=$LAST_PID
  log "$name started (pid $pid) on :$port"
  if ! wait_ready "$name" "$pid" "$port" "$ready_s" "${CURL_PROTO[@]}"; then
    set_invalid "$name" "did not answer on :$port"; stop_tree "$pid"; PEER_HEADERS=(); return 0
  fi
  local got
  got=$(curl -s "${CURL_PROTO[@]}" --max-time 2 "${PEER_HEADERS[@]}" "$SCHEME://$HOST:$port/" | wc -c)
  if ((got != BODY_LEN)); then
    set_invalid "$name" "body through proxy is $got bytes, expected $BODY_LEN"; stop_tree "$pid"; PEER_HEADERS=(); return 0
  fi
  if [[ "$name" == proxycore-policies ]]; then
    # The stages must really run: without the token the route answers 401.
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$HOST:$port/" || true)
    if [[ "$got" != 401 ]]; then
      set_invalid "$name" "a request without the token got $got, expected 401"; stop_tree "$pid"; PEER_HEADERS=(); return 0
    fi
  fi

  log "$name: warm-up $WARMUP"
  if ((USE_H2LOAD)); then
    H2LOAD "$WARMUP" "$WARM_S" "$port" >"$WORK/$name.warmup" 2>&1 || true
  else
    WRK "$WARMUP" "$WARM_S" "$port" >"$WORK/$name.warmup" 2>&1 || true
  fi

  # The proxy's processes: the started process and all its descendants (nginx: master + worker;
  # haproxy -db, YARP and ProxyCore: one process, all threads counted by /proc/PID/stat).
  local pids=("$pid")
  mapfile -t -O 1 pids < <(descendants "$pid")
  local a0="" a1="" u0 s0 u1 s1
  [[ "$name" == proxycore* ]] && a0=$(alloc_bytes)
  LOADAVG_NOTES+=("$name: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)")
  local pb0 pt0 pb1 pt1 cb0 ct0 cb1 ct1
  read -r pb0 pt0 < <(core_ticks "$PROXY_CPU")
  read -r cb0 ct0 < <(core_ticks "$CLIENT_CPU")
  read -r u0 s0 < <(ticks "${pids[@]}")
  log "$name: $LOAD_DESC (processes: ${pids[*]})"
  local rc=0 steady_pid=""
  rm -f "$WORK/$name.steady"
  [[ "$name" == proxycore* ]] && { steady_alloc "$WORK/$name.steady" & steady_pid=$!; }
  if ((USE_H2LOAD)); then
    H2LOAD "$DURATION" "$DUR_S" "$port" "$WORK/$name.h2log" >"$WORK/$name.wrk" 2>&1 || rc=$?
  else
    WRK "$DURATION" "$DUR_S" "$port" >"$WORK/$name.wrk" 2>&1 || rc=$?
  fi
  read -r u1 s1 < <(ticks "${pids[@]}")
  [[ -n "$steady_pid" ]] && wait "$steady_pid" 2>/dev/null
  read -r pb1 pt1 < <(core_ticks "$PROXY_CPU")
  read -r cb1 ct1 < <(core_ticks "$CLIENT_CPU")
  [[ "$name" == proxycore* ]] && a1=$(alloc_bytes)
  stop_tree "$pid"
  PEER_HEADERS=()

  local out=$WORK/$name.wrk reqs non2xx sockerr
  if ((USE_H2LOAD)); then
    # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    reqs=$(awk '/^requests:/ { gsub(/,/, ""); print $8 }' "$out")
    non2xx=$(awk '/^status codes:/ { gsub(/,/, ""); print $5 + $7 + $9 }' "$out")
    sockerr=$(awk '/^requests:/ { gsub(/,/, ""); print $10 + $12 + $14 }' "$out")
    RPS[$name]=$(awk '/^finished in/ { gsub(/,/, ""); printf "%.0f", $4 }' "$out")
    P50[$name]=$(percentile 50 "$WORK/$name.h2log")
    P99[$name]=$(percentile 99 "$WORK/$name.h2log")
  else
    reqs=$(awk '/ requests in / { print $1 }' "$out")
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$out")
    sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    RPS[$name]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  fi
  if ((rc != 0)) || [[ -z "$reqs" ]] || ((reqs == 0)); then
    set_invalid "$name" "load generator failed (exit $rc)"; cat "$out" >&2; return 0
  fi
  local du=$((u1 - u0)) ds=$((s1 - s0))
  # Noise indicators: how busy the client core was (near 100% = wrk/upstream-bound req/s), and how
  # much of the proxy core went to something not charged to the proxy (other work, unattributed irq).
  NOISE_NOTES+=("$(awk -v n="$name" -v pc="$PROXY_CPU" -v cc="$CLIENT_CPU" -v pb=$((pb1 - pb0)) -v pt=$((pt1 - pt0)) \
    -v cb=$((cb1 - cb0)) -v ct=$((ct1 - ct0)) -v me=$((du + ds)) 'BEGIN {
      printf "%s: proxy CPU %d busy %.0f%% (%.0f%% not charged to the proxy), client CPU %d busy %.0f%%",
        n, pc, pt ? 100 * pb / pt : 0, pt ? 100 * (pb - me) / pt : 0, cc, ct ? 100 * cb / ct : 0 }')")
  read -r CPU[$name] USR[$name] SYS[$name] < <(awk -v u="$du" -v s="$ds" -v t="$CLK_TCK" -v n="$reqs" \
    'BEGIN { printf "%.2f %.2f %.2f\n", (u + s) / t / n * 1e6, u / t / n * 1e6, s / t / n * 1e6 }')
  if [[ -n "$a0" && -n "$a1" ]]; then
    ALLOC[$name]=$(awk -v a="$a0" -v b="$a1" -v n="$reqs" 'BEGIN { printf "%.1f", (b - a) / n }')
    if [[ -s "$WORK/$name.steady" ]]; then
      STEADY[$name]=$(awk '$2 > 0 { printf "%.2f", $1 / $2 }' "$WORK/$name.steady")
    fi
  elif [[ "$name" == proxycore* ]]; then
    ALLOC[$name]="n/a"; log "proxycore: no dotnet_gc_allocated_bytes_total at $ADMIN_URL"
  fi
  local why=()
  [[ -n "$non2xx" && "$non2xx" != 0 ]] && why+=("$non2xx non-2xx/3xx")
  [[ -n "$sockerr" && "$sockerr" != 0 ]] && why+=("$sockerr socket errors (h2load: failed + errored + timeout)")
  if ((RATE)) && awk -v r="${RPS[$name]}" -v t="$RATE" 'BEGIN { exit !(r < 0.95 * t) }'; then
    why+=("the fixed rate was not reached (${RPS[$name]} of $RATE req/s)")
  fi
  if ((${#why[@]})); then VALID[$name]="no: ${why[*]}"; else VALID[$name]="yes"; fi
  log "$name: ${RPS[$name]} req/s, ${CPU[$name]} CPU µs/req, valid: ${VALID[$name]}"
  log "${NOISE_NOTES[-1]}"
}

for p in "${PEER_LIST[@]}"; do
  run_peer "$p"
  sleep 1     # let the core settle and TIME_WAIT sockets drain a little between peers
done
stop_tree "$UPSTREAM_PID"

# ---------------------------------------------------------------- 5. report
base=""
for p in nginx haproxy; do
  [[ "${VALID[$p]:-}" == yes ]] || continue
  if [[ -z "$base" ]] || awk -v a="${CPU[$p]}" -v b="$base" 'BEGIN { exit !(a < b) }'; then base=${CPU[$p]}; fi
done

table() {
  echo "| peer | req/s | p50 ms | p99 ms | CPU µs/req | user µs | sys µs | CPU/req ÷ min(nginx, HAProxy) | alloc B/req | steady alloc B/req | valid |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  local p ratio
  for p in "${PEER_LIST[@]}"; do
    ratio=""
    if [[ -n "$base" && -n "${CPU[$p]:-}" ]]; then
      ratio=$(awk -v a="${CPU[$p]}" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$p" "${RPS[$p]:-—}" "${P50[$p]:-—}" \
      "${P99[$p]:-—}" "${CPU[$p]:-—}" "${USR[$p]:-—}" "${SYS[$p]:-—}" "${ratio:-—}" "${ALLOC[$p]:-}" "${STEADY[$p]:-}" "${VALID[$p]:-no}"
  done
}

SHA=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo nogit)
DIRTY=""
if [[ -n "$(git -C "$REPO" status --porcelain -- . ':(exclude)perf-results' 2>/dev/null || true)" ]]; then DIRTY="-dirty"; fi
DATE=$(date -u +%Y-%m-%d)
CPU_MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | awk 'NR == 1')
MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CMD="bash bench/load/run.sh"
for a in "${ORIG_ARGS[@]}"; do
  if [[ "$a" =~ ^[A-Za-z0-9_./,:=@+-]+$ ]]; then CMD+=" $a"; else CMD+=" $(printf '%q' "$a")"; fi
done
if [[ -z "$OUT" ]]; then
  mkdir -p "$REPO/perf-results"
  SUFFIX=""; if ((QUICK)); then SUFFIX="-quick"; fi
  MODE="h$((H2 ? 2 : 1))"; ((TLS)) && MODE="h2-tls"; ((RATE)) && MODE="h1-rate$RATE"
  OUT="$REPO/perf-results/$DATE-load-$MODE-$SHA$DIRTY$SUFFIX.md"
fi
mkdir -p "$(dirname "$OUT")"

{
  if ((TLS)); then echo "# Load rig, HTTP/2 over TLS (ALPN h2): ProxyCore vs nginx"
  elif ((H2)); then echo "# Load rig, HTTP/2 (h2c): ProxyCore vs nginx"; else echo "# Load rig, HTTP/1.1: ProxyCore vs nginx, HAProxy, YARP"; fi
  echo
  echo "- date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "- commit: $SHA$DIRTY"
  echo "- machine: $CPU_MODEL, nproc $NPROC, kernel $(uname -r), memory $MEM"
  echo "- command: \`${PROXYCORE_TRANSPORT:+PROXYCORE_TRANSPORT='$PROXYCORE_TRANSPORT' }$CMD\`"
  echo "- load: $LOAD_DESC (warm-up $WARMUP), GET / → ${BODY_LEN}-byte body, keep-alive; HTTP/1.1 to the upstream"
  echo "- pinning: proxy on CPU $PROXY_CPU; wrk and the upstream nginx on CPU $CLIENT_CPU$( ((NPROC < 2)) && echo ' (NOT pinned: 1 CPU)')"
  echo "- versions: wrk ${VER[wrk]}; upstream ${VER[upstream]}$(for p in "${PEER_LIST[@]}"; do printf '; %s: %s' "$p" "${VER[$p]:-?}"; done)"
  for n in "${LOADAVG_NOTES[@]}"; do echo "- $n"; done
  for n in "${NOISE_NOTES[@]}"; do echo "- during the run, $n"; done
  echo
  table
  echo
  echo "CPU µs/req = (Δutime + Δstime of the proxy's processes) / requests; the ratio column divides by the"
  echo "lower of nginx's and HAProxy's CPU µs/req from this same run (blank if neither is valid)."
  echo
  echo "<details><summary>raw load generator output</summary>"
  echo
  for p in "${PEER_LIST[@]}"; do
    [[ -f "$WORK/$p.wrk" ]] || continue
    echo "**$p**"; echo; echo '```'; cat "$WORK/$p.wrk"; echo '```'; echo
  done
  echo "</details>"
} >"$OUT"

echo
table
echo
log "results written to $OUT"
