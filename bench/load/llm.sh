#!/usr/bin/env bash
# LLM load rig: ProxyCore's LLM stage vs the Portkey gateway (npm @portkey-ai/gateway on node), both in
# front of the same `proxycore mock` (zero latency, so only gateway overhead is measured), in one run.
# Modes: direct to the mock, ProxyCore plain proxy route, ProxyCore llm route (virtual key + metering),
# ProxyCore llm route on an exact-cache hit, Portkey. Each with a JSON and a streaming chat completion.
# Reports req/s and CPU µs per request (wrk -c16), p50/p99 and the latency ADDED over direct (wrk -c1),
# and for streams CPU µs per streamed token. See bench/load/README.md. 127.0.0.1 only.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
ORIG_ARGS=("$@")

DURATION=8        # seconds, throughput phase (-c CONNS): req/s and CPU per request
LAT_DURATION=5    # seconds, latency phase (-c 1): p50/p99 without queueing
WARMUP=1
CONNS=16
MODES="direct,plain,llm,llm-cached,portkey"
PORTKEY_VERSION=${PORTKEY_VERSION:-1.15.2}
OUT=""

usage() {
  cat <<EOF
usage: bash bench/load/llm.sh [--duration 8] [--latency-duration 5] [--warmup 1] [--connections 16]
                              [--modes direct,plain,llm,llm-cached,portkey] [--out FILE] [--quick]
  durations in seconds; --quick = 2s / 2s / 1s (result file gets a -quick suffix)
env: PROXYCORE_BIN    use this proxycore binary instead of publishing src/ProxyCore.Server
     PORTKEY_VERSION  npm version of @portkey-ai/gateway (default $PORTKEY_VERSION)
     PORTKEY_DIR      where it is npm-installed (default artifacts/portkey-gateway)
     LOAD_CLIENT_CPU / LOAD_PROXY_CPU  cores for wrk + mock / for the gateway under test (default 0 / 1)
     LOAD_KEEP_TMP=1  keep the temp dir (configs, logs, Lua scripts, raw wrk output)
EOF
}
QUICK=0
while (($#)); do
  case "$1" in
    --duration) DURATION=${2:?}; shift 2 ;;
    --latency-duration) LAT_DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --connections|-c) CONNS=${2:?}; shift 2 ;;
    --modes) MODES=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if ((QUICK)); then DURATION=2; LAT_DURATION=2; WARMUP=1; fi
for v in "$DURATION" "$LAT_DURATION" "$WARMUP" "$CONNS"; do
  [[ "$v" =~ ^[0-9]+$ ]] && ((v > 0)) || { echo "durations and --connections are positive integers, not '$v'" >&2; exit 2; }
done
IFS=',' read -ra MODE_LIST <<<"$MODES"
for m in "${MODE_LIST[@]}"; do
  case "$m" in direct|plain|llm|llm-cached|portkey) ;; *) echo "unknown mode: $m" >&2; exit 2 ;; esac
done
want() { [[ ",$MODES," == *",$1,"* ]]; }

HOST=127.0.0.1
MOCK_PORT=19110
PC_PORT=18190
PC_ADMIN=19991
PK_PORT=18787
CLIENT_CPU=${LOAD_CLIENT_CPU:-0}
PROXY_CPU=${LOAD_PROXY_CPU:-1}
PORTKEY_DIR=${PORTKEY_DIR:-$REPO/artifacts/portkey-gateway}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

log() { printf '[llm %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- process handling (as run.sh)
WORK=$(mktemp -d /tmp/proxycore-llmload.XXXXXX)
STARTED=()
descendants() { local c; for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done; }
alive_any() { local p; for p; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
stop_tree() {
  local root=$1 i all=("$1")
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
  if [[ "${LOAD_KEEP_TMP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start() { local name=$1; shift; "$@" >"$WORK/$name.log" 2>&1 & LAST_PID=$!; STARTED+=("$LAST_PID"); }

for tool in wrk curl taskset pgrep jq; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install -y wrk curl util-linux procps jq)"; exit 1; }
done
NPROC=$(nproc)
PIN_PROXY=(taskset -c "$PROXY_CPU"); PIN_CLIENT=(taskset -c "$CLIENT_CPU")
if ((NPROC < 2)); then log "WARNING: one CPU, no pinning"; PIN_PROXY=(); PIN_CLIENT=(); fi
CLK_TCK=$(getconf CLK_TCK)

# ticks PID...: "utime stime" summed over the processes (clock ticks, all threads), from /proc/PID/stat.
ticks() {
  local u=0 s=0 p line rest f
  for p; do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${line##*) }
    read -ra f <<<"$rest"
    u=$((u + f[11])); s=$((s + f[12]))
  done
  echo "$u $s"
}
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "?" }'
}
port_busy() { curl -s -o /dev/null --max-time 1 "http://$HOST:$1/"; }
for port in $MOCK_PORT $PC_PORT $PC_ADMIN $PK_PORT; do
  if port_busy "$port"; then log "something already answers on 127.0.0.1:$port; stop it first"; exit 1; fi
done

# ---------------------------------------------------------------- builds
declare -A INVALID VER
PC_BIN=${PROXYCORE_BIN:-}
if [[ -z "$PC_BIN" ]]; then
  PC_BIN="$REPO/artifacts/proxycore/proxycore"
  log "publishing ProxyCore (Native AOT) to artifacts/proxycore"
  timeout 1500 dotnet publish "$REPO/src/ProxyCore.Server" -c Release -o "$REPO/artifacts/proxycore" -nologo >"$WORK/proxycore-build.log" 2>&1 ||
    { grep -E 'error' "$WORK/proxycore-build.log" | sort -u | tail -n 10 >&2; log "publish failed"; exit 1; }
fi
[[ -x "$PC_BIN" ]] || { log "no executable at $PC_BIN"; exit 1; }
VER[proxycore]="$(timeout 5 "$PC_BIN" --version | head -n 1) (Native AOT)"

PK_MAIN="$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
if want portkey; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    INVALID[portkey]="node/npm not installed (apt-get install -y nodejs npm)"
  else
    installed=$(jq -r .version "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json" 2>/dev/null || true)
    if [[ "$installed" != "$PORTKEY_VERSION" ]]; then
      log "npm install @portkey-ai/gateway@$PORTKEY_VERSION into $PORTKEY_DIR"
      mkdir -p "$PORTKEY_DIR"
      if ! timeout 600 npm install --prefix "$PORTKEY_DIR" --no-audit --no-fund --loglevel=error "@portkey-ai/gateway@$PORTKEY_VERSION" >"$WORK/npm.log" 2>&1; then
        INVALID[portkey]="npm install @portkey-ai/gateway@$PORTKEY_VERSION failed: $(grep -m1 -E 'ERR|error' "$WORK/npm.log" || tail -n 1 "$WORK/npm.log")"
      fi
    fi
    [[ -n "${INVALID[portkey]:-}" || -f "$PK_MAIN" ]] || INVALID[portkey]="installed, but no $PK_MAIN"
  fi
  VER[portkey]="@portkey-ai/gateway $(jq -r .version "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json" 2>/dev/null || echo '?') on node $(node -v 2>/dev/null || echo '?')"
fi
VER[wrk]=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)

# ---------------------------------------------------------------- the mock
start mock "${PIN_CLIENT[@]}" "$PC_BIN" mock --listen "$HOST:$MOCK_PORT" --quiet
MOCK_PID=$LAST_PID
# The question: 100 one-letter words, so the mock's echoed answer is a stream of about 110 deltas.
QUESTION=$(awk 'BEGIN { for (i = 0; i < 100; i++) printf "%s%c", (i ? " " : ""), 97 + i % 26 }')
body() { jq -cn --arg q "$QUESTION" --argjson stream "$1" '{model: "gpt-4o-mini", messages: [{role: "user", content: $q}]} + (if $stream then {stream: true} else {} end)'; }
body false >"$WORK/body-json.json"; body true >"$WORK/body-stream.json"
for ((i = 0; i < 50; i++)); do
  curl -s -o /dev/null --max-time 1 -X POST -H 'content-type: application/json' --data-binary @"$WORK/body-json.json" "http://$HOST:$MOCK_PORT/v1/chat/completions" && break
  kill -0 "$MOCK_PID" 2>/dev/null || { tail -n 20 "$WORK/mock.log" >&2; exit 1; }
  sleep 0.2
done
TOKENS=$(curl -s --max-time 2 -X POST -H 'content-type: application/json' --data-binary @"$WORK/body-json.json" "http://$HOST:$MOCK_PORT/v1/chat/completions" | jq -r .usage.completion_tokens)
DELTAS=$(curl -sN --max-time 5 -X POST -H 'content-type: application/json' --data-binary @"$WORK/body-stream.json" "http://$HOST:$MOCK_PORT/v1/chat/completions" | grep -c '"content":' || true)
[[ "$TOKENS" =~ ^[0-9]+$ ]] && ((TOKENS > 0)) || { log "mock gave no usage.completion_tokens"; exit 1; }
log "mock on :$MOCK_PORT (pid $MOCK_PID): $TOKENS completion tokens a response, $DELTAS content deltas a stream"

# ---------------------------------------------------------------- ProxyCore: one process, three routes
VKEY="pc-bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
cat >"$WORK/proxycore.json" <<EOF
{
  "listeners": [ { "address": "$HOST:$PC_PORT" } ],
  "admin": { "address": "$HOST:$PC_ADMIN" },
  "routes": [
    { "id": "plain", "match": { "path": "/plain/" }, "cluster": "mock" },
    { "id": "llm", "match": { "path": "/llm/" }, "cluster": "mock",
      "llm": { "providers": [ { "name": "mock", "type": "openai", "cluster": "mock", "apiKey": "env:LLMBENCH_PROVIDER_KEY" } ],
               "keys": [ { "name": "bench", "key": "env:LLMBENCH_VKEY", "requestsPerMinute": 100000000, "tokensPerMinute": 2000000000 } ],
               "pricing": { "gpt-4o-mini": { "inputPer1M": 0.15, "outputPer1M": 0.60 } } } },
    { "id": "cached", "match": { "path": "/cached/" }, "cluster": "mock",
      "llm": { "providers": [ { "name": "mock", "type": "openai", "cluster": "mock", "apiKey": "env:LLMBENCH_PROVIDER_KEY" } ],
               "keys": [ { "name": "bench", "key": "env:LLMBENCH_VKEY", "requestsPerMinute": 100000000, "tokensPerMinute": 2000000000 } ],
               "pricing": { "gpt-4o-mini": { "inputPer1M": 0.15, "outputPer1M": 0.60 } },
               "cache": { "exact": { "ttl": "1h" }, "maxBytes": "16MB" } } }
  ],
  "clusters": [ { "id": "mock", "destinations": [ { "address": "http://$HOST:$MOCK_PORT" } ] } ]
}
EOF
PC_PID=""
if want plain || want llm || want llm-cached; then
  LLMBENCH_PROVIDER_KEY=sk-provider-bench LLMBENCH_VKEY=$VKEY start proxycore "${PIN_PROXY[@]}" "$PC_BIN" --config "$WORK/proxycore.json" --quiet
  PC_PID=$LAST_PID
  for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null --max-time 1 "http://$HOST:$PC_ADMIN/metrics" && break
    kill -0 "$PC_PID" 2>/dev/null || { tail -n 20 "$WORK/proxycore.log" >&2; exit 1; }
    sleep 0.2
  done
  log "proxycore on :$PC_PORT (pid $PC_PID)"
fi

# ---------------------------------------------------------------- per-mode request shape
declare -A URL PID_OF HEADERS
URL[direct]="http://$HOST:$MOCK_PORT/v1/chat/completions";        PID_OF[direct]=$MOCK_PID
URL[plain]="http://$HOST:$PC_PORT/plain/v1/chat/completions";     PID_OF[plain]=$PC_PID
URL[llm]="http://$HOST:$PC_PORT/llm/v1/chat/completions";         PID_OF[llm]=$PC_PID
URL[llm-cached]="http://$HOST:$PC_PORT/cached/v1/chat/completions"; PID_OF[llm-cached]=$PC_PID
URL[portkey]="http://$HOST:$PK_PORT/v1/chat/completions"
HEADERS[direct]="Authorization: Bearer sk-provider-bench"
HEADERS[plain]="Authorization: Bearer sk-provider-bench"
HEADERS[llm]="Authorization: Bearer $VKEY"
HEADERS[llm-cached]="Authorization: Bearer $VKEY"
HEADERS[portkey]=$'Authorization: Bearer sk-provider-bench\nx-portkey-provider: openai\nx-portkey-custom-host: '"http://$HOST:$MOCK_PORT/v1"

lua_for() {   # lua_for MODE KIND -> path of a wrk script posting that body with those headers
  local f="$WORK/$1-$2.lua" h
  {
    echo 'wrk.method = "POST"'
    printf 'wrk.body = [==[%s]==]\n' "$(cat "$WORK/body-$2.json")"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    while IFS= read -r h; do
      [[ -n "$h" ]] && printf 'wrk.headers["%s"] = "%s"\n' "${h%%: *}" "${h#*: }"
    done <<<"${HEADERS[$1]}"
  } >"$f"
  echo "$f"
}
curl_headers() { local h; CURL_H=(); while IFS= read -r h; do [[ -n "$h" ]] && CURL_H+=(-H "$h"); done <<<"${HEADERS[$1]}"; }

# check MODE KIND: one request through the gateway must answer 200 with the mock's answer (and the
# stream must end with [DONE]); for llm-cached the answer must come from the cache on the second try.
check() {
  local mode=$1 kind=$2 out="$WORK/check-$1-$2" code
  curl_headers "$mode"
  code=$(curl -sN --max-time 10 -D "$out.head" -o "$out.body" -w '%{http_code}' -X POST -H 'content-type: application/json' "${CURL_H[@]}" \
    --data-binary @"$WORK/body-$kind.json" "${URL[$mode]}" || true)
  [[ "$code" == 200 ]] || { echo "status $code: $(head -c 300 "$out.body")"; return 1; }
  if [[ "$kind" == json ]]; then
    grep -q 'Mock answer' "$out.body" || { echo "no mock answer in the body"; return 1; }
  else
    # A stream carries the answer in pieces, the first one "Mock".
    grep -q '"content":"Mock' "$out.body" || { echo "no mock answer in the stream"; return 1; }
    grep -q 'data: \[DONE\]' "$out.body" || { echo "stream without [DONE]"; return 1; }
    local n; n=$(grep -c '"content":' "$out.body" || true)
    # A cached replay may pack the answer into fewer events; a live stream must pass every delta.
    [[ "$mode" == llm-cached ]] || ((n >= DELTAS)) || { echo "stream had $n content events, the mock sends $DELTAS"; return 1; }
  fi
  if [[ "$mode" == llm-cached ]]; then
    curl -sN --max-time 10 -D "$out.head2" -o /dev/null -X POST -H 'content-type: application/json' "${CURL_H[@]}" --data-binary @"$WORK/body-$kind.json" "${URL[$mode]}"
    grep -qi '^proxycore-cache: hit-exact' "$out.head2" || { echo "second request was not an exact-cache hit: $(grep -i proxycore-cache "$out.head2" | tr -d '\r')"; return 1; }
  fi
  if [[ "$mode" == llm || "$mode" == llm-cached ]]; then
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -H 'Authorization: Bearer wrong-key' \
      --data-binary @"$WORK/body-$kind.json" "${URL[$mode]}" || true)
    [[ "$code" == 401 ]] || { echo "an unknown virtual key got $code, not 401"; return 1; }
  fi
  return 0
}

declare -A RPS CPU USR SYS P50 P99 REQS
# measure MODE KIND: warm-up, throughput run (CPU deltas of the gateway's process tree), latency run.
measure() {
  local mode=$1 kind=$2 key="$1/$2" lua pids t0 t1 raw du ds n
  local why
  if ! why=$(check "$mode" "$kind"); then INVALID[$key]="check failed: $why"; log "$key: ${INVALID[$key]}"; return 0; fi
  lua=$(lua_for "$mode" "$kind")
  timeout $((WARMUP + 20)) "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$lua" "${URL[$mode]}" >/dev/null 2>&1 || true
  mapfile -t pids < <(echo "${PID_OF[$mode]}"; descendants "${PID_OF[$mode]}")
  t0=$(ticks "${pids[@]}")
  raw="$WORK/wrk-$mode-$kind.txt"
  timeout $((DURATION + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$lua" "${URL[$mode]}" >"$raw" 2>&1 || true
  t1=$(ticks "${pids[@]}")
  timeout $((LAT_DURATION + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c1 -d"${LAT_DURATION}s" --latency -s "$lua" "${URL[$mode]}" >"$raw.c1" 2>&1 || true
  for f in "$raw" "$raw.c1"; do
    if grep -qE 'Non-2xx|Socket errors' "$f" || ! grep -q 'Requests/sec' "$f"; then
      INVALID[$key]="wrk: $(grep -E 'Non-2xx|Socket errors' "$f" | tr -s ' ' | paste -sd';' || echo 'no result')"
    fi
  done
  n=$(awk '/requests in/ { print $1; exit }' "$raw")
  RPS[$key]=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$raw")
  read -r du ds <<<"$(awk -v a="$t0" -v b="$t1" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[1] - x[1], y[2] - x[2] }')"
  if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 0)); then
    USR[$key]=$(awk -v t="$du" -v n="$n" -v k="$CLK_TCK" 'BEGIN { printf "%.1f", t / k / n * 1e6 }')
    SYS[$key]=$(awk -v t="$ds" -v n="$n" -v k="$CLK_TCK" 'BEGIN { printf "%.1f", t / k / n * 1e6 }')
    CPU[$key]=$(awk -v t="$((du + ds))" -v n="$n" -v k="$CLK_TCK" 'BEGIN { printf "%.1f", t / k / n * 1e6 }')
  fi
  P50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$raw.c1")")
  P99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$raw.c1")")
  log "$key: ${RPS[$key]:-?} req/s, ${CPU[$key]:-?} µs CPU/req, p50 ${P50[$key]} ms p99 ${P99[$key]} ms (c1)"
}

for mode in "${MODE_LIST[@]}"; do
  if [[ "$mode" == portkey ]]; then
    [[ -z "${INVALID[portkey]:-}" ]] || { INVALID[portkey/json]=${INVALID[portkey]}; INVALID[portkey/stream]=${INVALID[portkey]}; continue; }
    # Headless (no demo console or live log stream), production mode: its leanest documented setup.
    NODE_ENV=production start portkey "${PIN_PROXY[@]}" node "$PK_MAIN" --port=$PK_PORT --headless
    PK_PID=$LAST_PID; PID_OF[portkey]=$PK_PID
    for ((i = 0; i < 100; i++)); do
      curl -s -o /dev/null --max-time 1 "http://$HOST:$PK_PORT/" && break
      kill -0 "$PK_PID" 2>/dev/null || break
      sleep 0.2
    done
    if ! kill -0 "$PK_PID" 2>/dev/null; then
      INVALID[portkey/json]="node exited: $(tail -n 3 "$WORK/portkey.log" | tr '\n' ' ')"; INVALID[portkey/stream]=${INVALID[portkey/json]}; continue
    fi
    log "portkey on :$PK_PORT (pid $PK_PID)"
  fi
  measure "$mode" json
  measure "$mode" stream
  if [[ "$mode" == portkey ]]; then stop_tree "$PK_PID"; fi
done

# Metering happened: the llm routes' token counters in /metrics.
METER=""
if [[ -n "$PC_PID" ]]; then
  METER=$(curl -s --max-time 2 "http://$HOST:$PC_ADMIN/metrics" | grep -E '^proxycore_llm_(tokens|cost_usd|cache)_total' | head -n 12 || true)
fi

# ---------------------------------------------------------------- report
sha=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo nogit)
dirty=""; [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty="-dirty"
suffix=""; ((QUICK)) && suffix="-quick"
OUT=${OUT:-$REPO/perf-results/$(date -u +%F)-llm-vs-portkey-$sha$dirty$suffix.md}
cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
added() { [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }' || echo ""; }
ratio() { [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }' || echo ""; }
{
  echo "# LLM gateway overhead: ProxyCore vs Portkey, same mock, one run — $(date -u +'%F %H:%M') UTC"
  echo
  echo "- commit: $sha$dirty"
  echo "- machine: $cpu_model, nproc $NPROC, kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  envs=""; [[ -n "${PROXYCORE_BIN:-}" ]] && envs+="PROXYCORE_BIN=$PROXYCORE_BIN "; [[ "$PORTKEY_DIR" != "$REPO/artifacts/portkey-gateway" ]] && envs+="PORTKEY_DIR=$PORTKEY_DIR "
  echo "- command: \`${envs}flock /tmp/proxycore-bench.lock bash bench/load/llm.sh ${ORIG_ARGS[*]}\`"
  echo "- versions: ProxyCore ${VER[proxycore]}; ${VER[portkey]:-Portkey not run}; wrk ${VER[wrk]}"
  echo "- upstream: \`proxycore mock\` on CPU $CLIENT_CPU (zero latency, no pacing), answering a 100-word question with $TOKENS completion tokens ($DELTAS streamed content deltas)"
  echo "- load: wrk -t1 on CPU $CLIENT_CPU, POST bodies from a Lua script; throughput: -c$CONNS for ${DURATION}s after a ${WARMUP}s warm-up; latency: -c1 for ${LAT_DURATION}s (no queueing); gateway under test alone on CPU $PROXY_CPU"
  echo "- modes: direct = wrk to the mock; plain = ProxyCore route without \`llm\`; llm = \`llm\` route with a virtual key (401 for a wrong one, checked), provider key swapped in, usage metered and priced; llm-cached = the same plus \`cache.exact\`, every request an exact hit (header checked); portkey = \`node start-server.js --headless\`, NODE_ENV=production, headers \`x-portkey-provider: openai\`, \`x-portkey-custom-host: http://127.0.0.1:$MOCK_PORT/v1\`"
  echo
  echo "| mode | body | req/s (c$CONNS) | CPU µs/req | user µs | sys µs | CPU µs/token | CPU ÷ Portkey | p50 ms (c1) | p99 ms (c1) | added p50 ms | added p99 ms | valid |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for mode in "${MODE_LIST[@]}"; do
    for kind in json stream; do
      k="$mode/$kind"
      pt=""; [[ "$kind" == stream && "${CPU[$k]:-}" =~ ^[0-9.]+$ ]] && pt=$(awk -v c="${CPU[$k]}" -v t="$TOKENS" 'BEGIN { printf "%.2f", c / t }')
      a50=""; a99=""; [[ "$mode" != direct ]] && { a50=$(added "${P50[$k]:-}" "${P50[direct/$kind]:-}"); a99=$(added "${P99[$k]:-}" "${P99[direct/$kind]:-}"); }
      rp=""; [[ "$mode" != portkey ]] && rp=$(ratio "${CPU[$k]:-}" "${CPU[portkey/$kind]:-}")
      echo "| $mode | $kind | ${RPS[$k]:-} | ${CPU[$k]:-} | ${USR[$k]:-} | ${SYS[$k]:-} | $pt | $rp | ${P50[$k]:-} | ${P99[$k]:-} | $a50 | $a99 | ${INVALID[$k]:-yes} |"
    done
  done
  echo
  echo "CPU is the process under test only (the mock's own for \`direct\`; node's whole tree for Portkey), from /proc/PID/stat"
  echo "utime+stime over the throughput run ÷ requests (ticks of 1/$CLK_TCK s). CPU µs/token = CPU µs/req ÷ $TOKENS tokens."
  echo "Added = this row's c1 percentile − direct's, same body."
  echo
  echo "## ProxyCore metering after the run"
  echo
  echo '```'
  echo "${METER:-(no llm metrics read)}"
  echo '```'
  echo
  echo "<details><summary>raw wrk output</summary>"
  echo
  for f in "$WORK"/wrk-*.txt "$WORK"/wrk-*.txt.c1; do
    [[ -f "$f" ]] || continue
    echo "### $(basename "$f")"; echo '```'; cat "$f"; echo '```'
  done
  echo "</details>"
} >"$OUT"
log "wrote $OUT"
sed -n '/^| mode/,/^$/p' "$OUT"
