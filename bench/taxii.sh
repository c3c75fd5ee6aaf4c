#!/usr/bin/env bash
# Benchmark of the TAXII 2.1 server (issue 5): POST ingest rate, and paging a collection 100
# objects at a time (latency per page, pages/s), cynex against the OASIS reference server
# medallion (PyPI, memory backend) serving the same objects on the same machine in the same run.
#
#   bench/taxii.sh [OBJECTS=1000000] [MEDALLION_OBJECTS=5000] [RUNS=3]
#
# MEDALLION_OBJECTS: medallion 3.0.0's memory backend takes ~14 s to answer the first request of a
# 2,000-object collection and over 300 s at 10,000 (it grows with the square of the objects), so
# 5,000 is about as many as it can hold for a benchmark. Its pages after the first are reported
# separately ("steady"), and the ratio is given both ways.
#
# cynex: `cynex serve` (release build, SQLite default store, --no-jobs), loaded through TAXII POST
# in envelopes of 1,000 indicators by one client; then every page of the 1M-object collection is
# fetched with `next`. For the comparison, a second cynex collection holds the same
# MEDALLION_OBJECTS objects medallion is given, and both are paged by the same Python client
# (bench/taxii_bench.py, one keep-alive session). Medians of RUNS paging runs. BIN overrides the
# binary. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-1000000}
M=${2:-5000}
RUNS=${3:-3}
WORK=${BENCH_DIR:-/tmp/cynex-bench}/taxii
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
python3 -c "import medallion, requests" 2>/dev/null || pip install -q medallion requests
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --workspace
  BIN="$CARGO_TARGET_DIR/release/cynex"
fi
PY=bench/taxii_bench.py
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
rm -rf "$WORK" && mkdir -p "$WORK"
D="$WORK/data"
cx() { "$BIN" --data "$D" --quiet "$@"; }
cx org add nexus --operator >/dev/null
cx org add bench-a >/dev/null
cx user add b --org bench-a --role member --no-password >/dev/null
TOKEN=$(cx token create b --name bench | grep ^cnx_)
cx intel collection-add big --title "1M objects" --read members --write members --default-tlp green >/dev/null
cx intel collection-add small --title "medallion's objects" --read members --write members --default-tlp green >/dev/null
id_of() { cx intel collections | awk -v a="$1" '$1==a {print $2}'; }
PORT=$((20000 + RANDOM % 20000))
"$BIN" --data "$D" serve --listen "127.0.0.1:$PORT" --no-jobs >"$WORK/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; kill ${MED:-0} 2>/dev/null || true' EXIT
wait_healthz "$PORT" 100
BASE="http://127.0.0.1:$PORT/taxii2/cynex/collections"
BIG="$BASE/$(id_of big)/"
SMALL="$BASE/$(id_of small)/"
POST=$(python3 $PY post "$BIG" "$TOKEN" "$N" 1000)
python3 $PY post "$SMALL" "$TOKEN" "$M" 1000 >/dev/null
RSS_SERVE=$(ps -o rss= -p $SERVE)

: >"$WORK/big.txt"
: >"$WORK/small.txt"
for _ in $(seq "$RUNS"); do
  python3 $PY page "$BIG" "bearer:$TOKEN" 100 $((N / 100 + 1)) 900 >>"$WORK/big.txt"
  python3 $PY page "$SMALL" "bearer:$TOKEN" 100 $((M / 100 + 1)) 300 >>"$WORK/small.txt"
done

# medallion with the same M objects.
MPORT=$((PORT + 1))
python3 $PY medallion-data "$WORK/medallion-data.json" "http://127.0.0.1:$MPORT" "$M" >"$WORK/med-info.json"
MURL=$(field "$(cat "$WORK/med-info.json")" collection_url)
cat >"$WORK/medallion.json" <<EOF
{"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": "$WORK/medallion-data.json"},
 "users": {"bench": "bench"}, "taxii": {"max_page_size": 100}}
EOF
medallion --host 127.0.0.1 --port "$MPORT" "$WORK/medallion.json" >"$WORK/medallion.log" 2>&1 &
MED=$!
for _ in $(seq 600); do curl -sf -u bench:bench -H "Accept: application/taxii+json;version=2.1" "http://127.0.0.1:$MPORT/taxii2/" >/dev/null && break; sleep 0.5; done
: >"$WORK/med.txt"
for _ in $(seq "$RUNS"); do
  python3 $PY page "$MURL" "basic:bench:bench" 100 $((M / 100 + 1)) 300 >>"$WORK/med.txt"
done
RSS_MED=$(ps -o rss= -p $MED)

stat_of() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
col() { while read -r l; do stat_of "$l" "$2"; done <"$1" | median; }
BIG_PPS=$(col "$WORK/big.txt" pages_per_s)
BIG_P50=$(col "$WORK/big.txt" p50_ms)
BIG_P99=$(col "$WORK/big.txt" p99_ms)
BIG_PAGES=$(col "$WORK/big.txt" pages)
SM_PPS=$(col "$WORK/small.txt" pages_per_s)
SM_P99=$(col "$WORK/small.txt" p99_ms)
SM_STEADY=$(col "$WORK/small.txt" steady_pages_per_s)
MED_PPS=$(col "$WORK/med.txt" pages_per_s)
MED_P99=$(col "$WORK/med.txt" p99_ms)
MED_PAGES=$(col "$WORK/med.txt" pages)
MED_FIRST=$(col "$WORK/med.txt" first_ms)
MED_STEADY=$(col "$WORK/med.txt" steady_pages_per_s)
MED_STEADY_P99=$(col "$WORK/med.txt" steady_p99_ms)
RATIO=$(python3 -c "print(f'{$SM_PPS / $MED_PPS:.0f}')")
RATIO_STEADY=$(python3 -c "print(f'{$SM_STEADY / $MED_STEADY:.1f}')")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| what | objects | result |"
echo "|---|---:|---|"
echo "| cynex TAXII POST (envelopes of 1,000, one client) | $N | $(printf '%.0f' "$(field "$POST" objects_per_s)") objects/s |"
echo "| cynex paging, limit 100, every page via next | $N | $BIG_PAGES pages: p50 ${BIG_P50} ms, **p99 ${BIG_P99} ms**, ${BIG_PPS} pages/s |"
echo "| cynex paging, same objects as medallion | $M | ${SM_PPS} pages/s, p99 ${SM_P99} ms |"
echo "| medallion 3.0.0 (memory backend) paging | $M | ${MED_PPS} pages/s, p99 ${MED_P99} ms ($MED_PAGES pages; first page ${MED_FIRST} ms) |"
echo "| medallion, pages after the first | $M | ${MED_STEADY} pages/s, p99 ${MED_STEADY_P99} ms |"
echo "| ratio cynex / medallion, whole walk (pages/s) | $M | **${RATIO}×** |"
echo "| ratio cynex / medallion, pages after the first | $M | **${RATIO_STEADY}×** (cynex ${SM_STEADY} pages/s) |"
echo "| resident memory after the runs | | cynex $((RSS_SERVE / 1024)) MiB (with $N objects), medallion $((RSS_MED / 1024)) MiB |"
