#!/usr/bin/env bash
# Benchmark of `cynex serve` (issue 6) over a lake of PACKETS darknet packets (one day):
#  - the overview API's answer time: the first request after start (computed from the stats,
#    port_stats and findings tables, never the raw packets) and later ones (cached until the
#    lake's next commit), median of RUNS;
#  - wrk (Debian) at CONNECTIONS connections for DURATION on the overview and on the alerts
#    endpoint of a member with alerts: requests/s, latency percentiles, errors, and the server's
#    resident memory before and after (flat = no growth with load).
#
#   bench/serve.sh [PACKETS=100000000] [CONNECTIONS=200] [DURATION=60s] [RUNS=5]
#
# The lake is the one bench/analyze.sh builds (BENCH_DIR/full-PACKETS), analysed here if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
PACKETS=${1:-100000000}
CONN=${2:-200}
DUR=${3:-60s}
RUNS=${4:-5}
WORK=${BENCH_DIR:-/tmp/cynex-bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --workspace
  BIN="$CARGO_TARGET_DIR/release/cynex"
fi
FULL="$WORK/full-$PACKETS"
D="$FULL/data"
full_lake "$FULL" "$PACKETS"
cx() { "$BIN" --data "$D" --quiet "$@"; }
[ -n "$(cx query --format csv "SELECT count(*) FROM findings" | tail -1 | tr -d 0)" ] ||
  cx analyze --rebuild --flush --dark 198.18.0.0/20 --no-alerts >/dev/null
# A member owning the busiest scanner's /24 and the largest victim's, so it has alerts.
if ! cx org list | grep -q '^bench-isp '; then
  cx org add nexus --operator >/dev/null 2>&1 || true
  S=$(cx query --format csv "SELECT ip4_str(ip4) FROM findings WHERE kind = 'scan' ORDER BY packets DESC LIMIT 1" | tail -1)
  V=$(cx query --format csv "SELECT ip4_str(ip4) FROM findings WHERE kind = 'backscatter' ORDER BY packets DESC LIMIT 1" | tail -1)
  cx org add bench-isp --prefix "${S%.*}.0/24" --prefix "${V%.*}.0/24" >/dev/null
  cx user add op --org nexus --role analyst --no-password >/dev/null
  cx user add isp --org bench-isp --role member --no-password >/dev/null
  cx alerts raise >/dev/null
fi
OP=$(cx token create op --name bench | grep ^cnx_)
ISP=$(cx token create isp --name bench | grep ^cnx_)
PORT=$((20000 + RANDOM % 20000))
"$BIN" --data "$D" serve --listen "127.0.0.1:$PORT" --no-jobs >"$WORK/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
wait_healthz "$PORT" 200
URL="http://127.0.0.1:$PORT/api/v1"
t() { curl -s -o /dev/null -w "%{time_total}\n" -H "Authorization: Bearer $1" "$2"; }
FIRST=$(t "$OP" "$URL/overview")
: >"$WORK/ov.txt"
for _ in $(seq "$RUNS"); do t "$OP" "$URL/overview" >>"$WORK/ov.txt"; sleep 1.1; done
WARM=$(median <"$WORK/ov.txt")
# Uncached answers: a different period each time (the whole day, asked with explicit bounds).
DAY=$(cx query --format csv "SELECT max(time) FROM stats WHERE sensor = 'all' AND bin = '1d'" | tail -1 | cut -c1-10)
: >"$WORK/ov-cold.txt"
for i in $(seq "$RUNS"); do
  t "$OP" "$URL/overview?from=${DAY}T00:00:0${i}Z&to=${DAY}T23:59:59Z" >>"$WORK/ov-cold.txt"
done
COLD=$(median <"$WORK/ov-cold.txt")
ALERTS=$(curl -s -H "Authorization: Bearer $ISP" "$URL/alerts" | python3 -c "import json,sys; print(len(json.load(sys.stdin)['alerts']))")
wrk_run() { wrk -t2 -c"$CONN" -d"$DUR" --latency -H "Authorization: Bearer $1" "$2"; }
RSS0=$(ps -o rss= -p $SERVE)
wrk_run "$OP" "$URL/overview" >"$WORK/wrk-overview.txt"
RSS1=$(ps -o rss= -p $SERVE)
wrk_run "$ISP" "$URL/alerts" >"$WORK/wrk-alerts.txt"
RSS2=$(ps -o rss= -p $SERVE)
summ() {
  local f=$1
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$f")
  p50=$(awk '$1=="50%" {print $2}' "$f")
  p99=$(awk '$1=="99%" {print $2}' "$f")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' "$f" | tr '\n' ' ')
  echo "$rps req/s, p50 $p50, **p99 $p99**, errors: ${errs:-none}"
}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| what | result |"
echo "|---|---|"
echo "| lake | $(cx lake stats | awk '$1=="packets" {print $3" packets rows"}') (PACKETS=$PACKETS) |"
echo "| overview, first request after start | $(python3 -c "print(f'{$FIRST*1000:.0f} ms')") |"
echo "| overview, uncached (new period), median of $RUNS | **$(python3 -c "print(f'{$COLD*1000:.0f} ms')")** |"
echo "| overview, repeated (cached until the next commit), median of $RUNS | $(python3 -c "print(f'{$WARM*1000:.1f} ms')") |"
echo "| wrk -c$CONN -d$DUR overview (operator) | $(summ "$WORK/wrk-overview.txt") |"
echo "| wrk -c$CONN -d$DUR alerts ($ALERTS alerts of a member) | $(summ "$WORK/wrk-alerts.txt") |"
echo "| server RSS before / after overview / after alerts | $((RSS0 / 1024)) / $((RSS1 / 1024)) / $((RSS2 / 1024)) MiB |"
