#!/usr/bin/env bash
# Interleaved A/B of proxies under the load rig's HTTP/1.1 load, for differences smaller than the VM's drift:
# every round runs every variant once (fresh process, 2 s warm-up, then wrk -t1 -c64 for DUR seconds, default 8),
# so drift hits all alike; compare ratios within a round. The upstream nginx and wrk run on CPU 0, the proxy on CPU 1.
# usage: [DUR=6] bash bench/load/ab.sh ROUNDS VARIANT...
#   VARIANT: nginx | haproxy | NAME=PROXYCORE_BINARY@TRANSPORT_JSON   e.g. 'on=/tmp/pub/proxycore@{"batchSends":true}'
# prints one line per run: round, variant, CPU µs per request (user + sys of the proxy), req/s, p99.
set -u
ROUNDS=${1:?usage: bash bench/load/ab.sh ROUNDS VARIANT...}; shift
for tool in nginx wrk curl bc taskset; do command -v $tool >/dev/null || { echo "needs $tool (apt-get install -y nginx wrk curl bc util-linux)" >&2; exit 2; }; done
R=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd); W=$(mktemp -d); mkdir -p $W/up/tmp $W/ng/tmp
taskset -c 0 nginx -p $W/up/ -c $R/upstream-nginx.conf -e $W/up/error.log -g 'daemon off;' & UP=$!
sleep 1
tk() { local u=0 s=0; for p in $PIDS; do read -ra f <<<"$(cut -d')' -f2- /proc/$p/stat)"; u=$((u+f[11])); s=$((s+f[12])); done; echo $u $s; }
for r in $(seq 1 $ROUNDS); do
for v in "$@"; do
  name=${v%%=*}; spec=${v#*=}
  case $name in
    nginx) taskset -c 1 nginx -p $W/ng/ -c $R/nginx-proxy.conf -e $W/ng/error.log -g 'daemon off;' & P=$!; PORT=18081;;
    haproxy) taskset -c 1 haproxy -db -f $R/haproxy.cfg >/dev/null 2>&1 & P=$!; PORT=18082;;
    *) bin=${spec%%@*}; tr=${spec#*@}; PORT=18084
       cat > $W/pc.json <<J
{ "listeners": [{ "address": "127.0.0.1:18084" }], "admin": { "address": "127.0.0.1:9901" },
  "routes": [{ "id": "default", "match": { "path": "/", "pathType": "prefix" }, "cluster": "default" }],
  "clusters": [{ "id": "default", "destinations": [{ "address": "http://127.0.0.1:19000" }] }], "transport": $tr }
J
       taskset -c 1 $bin --config $W/pc.json >$W/pc.log 2>&1 & P=$!;;
  esac
  for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:$PORT/ && break; sleep 0.1; done
  taskset -c 0 wrk -t1 -c64 -d2s http://127.0.0.1:$PORT/ >/dev/null
  PIDS="$P $(pgrep -P $P | tr '\n' ' ')"
  read u0 s0 <<<"$(tk)"
  taskset -c 0 wrk -t1 -c64 -d${DUR:-8}s --latency http://127.0.0.1:$PORT/ > $W/wrk.txt
  read u1 s1 <<<"$(tk)"
  REQ=$(awk '/requests in/{print $1}' $W/wrk.txt); P99=$(awk '$1=="99%"{print $2}' $W/wrk.txt)
  echo "r$r $name cpu=$(echo "($u1-$u0+$s1-$s0)*10000/$REQ" | bc -l | cut -c1-5) usr=$(echo "($u1-$u0)*10000/$REQ" | bc -l | cut -c1-4) sys=$(echo "($s1-$s0)*10000/$REQ" | bc -l | cut -c1-5) rps=$((REQ/${DUR:-8})) p99=$P99"
  kill $P; wait $P 2>/dev/null
done; done
kill $UP; wait $UP 2>/dev/null; rm -rf $W
