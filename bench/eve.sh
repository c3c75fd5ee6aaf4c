#!/usr/bin/env bash
# Benchmark of `cynex ingest eve` (issue 3) against DuckDB converting the same file to Parquet,
# in the same run. Prints a Markdown table for BENCHMARKS.md.
#
#   bench/eve.sh [EVENTS=10000000] [RUNS=3]
#
# The input is `cynex gen eve` (mixed flow/dns/http/tls/alert/fileinfo/anomaly/stats lines with
# Suricata's field names; ~550 bytes/event). cynex: a fresh lake each run, timed end to end to
# committed Parquet. DuckDB: COPY (SELECT * FROM read_json_auto(file)) TO 'x.parquet'. Medians;
# peak RSS from /usr/bin/time. BIN=path overrides the release build (e.g. to check the script).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
EVENTS=${1:-10000000}
RUNS=${2:-3}
WORK=${BENCH_DIR:-/tmp/cynex-bench}/eve
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --workspace
  BIN="$CARGO_TARGET_DIR/release/cynex"
fi
mkdir -p "$WORK"
LOG="$WORK/eve-$EVENTS.json"
[ -f "$LOG" ] || "$BIN" gen eve --events "$EVENTS" --out "$LOG" --seed 7 >/dev/null
SIZE=$(stat -c %s "$LOG")

: >"$WORK/cx.txt"
for _ in $(seq "$RUNS"); do
  rm -rf "$WORK/data"
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" "$BIN" --data "$WORK/data" --quiet ingest eve "$LOG" --sensor bench >"$WORK/out.txt"
  grep -q "0 quarantined" "$WORK/out.txt" || { cat "$WORK/out.txt"; exit 1; }
  cat "$WORK/t.txt" >>"$WORK/cx.txt"
done
: >"$WORK/dd.txt"
for _ in $(seq "$RUNS"); do
  rm -f "$WORK/duck.parquet"
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" python3 -c "
import duckdb, sys
duckdb.connect().execute(\"COPY (SELECT * FROM read_json_auto('$LOG')) TO '$WORK/duck.parquet' (FORMAT parquet)\")
"
  cat "$WORK/t.txt" >>"$WORK/dd.txt"
done
CX=$(awk '{print $1}' "$WORK/cx.txt" | median)
CXM=$(awk '{print $2}' "$WORK/cx.txt" | sort -g | tail -1)
DD=$(awk '{print $1}' "$WORK/dd.txt" | median)
DDM=$(awk '{print $2}' "$WORK/dd.txt" | sort -g | tail -1)
echo "| tool | events | input | median s | events/s | peak RSS |"
echo "|---|---|---|---|---|---|"
awk -v n="$EVENTS" -v s="$SIZE" -v t="$CX" -v m="$CXM" 'BEGIN {printf "| cynex ingest eve | %d | %.2f GB | %.2f | %.0f | %.0f MiB |\n", n, s/1e9, t, n/t, m/1024}'
awk -v n="$EVENTS" -v s="$SIZE" -v t="$DD" -v m="$DDM" 'BEGIN {printf "| DuckDB read_json_auto → Parquet | %d | %.2f GB | %.2f | %.0f | %.0f MiB |\n", n, s/1e9, t, n/t, m/1024}'
awk -v a="$CX" -v b="$DD" 'BEGIN {printf "\nratio (DuckDB time / cynex time): %.2f×; machine: %s, %s cores\n", b/a, "'"$(uname -m)"'", "'"$(nproc)"'"}'
