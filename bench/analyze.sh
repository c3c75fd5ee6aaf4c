#!/usr/bin/env bash
# Benchmark of `cynex analyze` (issue 4), with DuckDB running the scan-event aggregation as SQL
# over the same Parquet files in the same run. Prints a Markdown table for BENCHMARKS.md.
#
#   bench/analyze.sh [PACKETS=100000000] [HOUR_PACKETS=54000000] [RUNS=3]
#
# Full: a capture of PACKETS over one day is ingested once (not timed), then
# `cynex analyze --rebuild --flush` is timed RUNS times (median; peak RSS from /usr/bin/time).
# DuckDB: sessionise (source, port, traffic type) with the same 624 s inactivity gap by window
# functions, count packets and approximate unique destinations, keep events with >= 10 uniques
# and >= 10 pps global rate — the scan-event part of the analysis only.
# Incremental: a lake holding the previous hour at the same rate (the steady state of a telescope:
# the saved state is that of a full hour), analysed; then one new hour of HOUR_PACKETS (15,000
# packets/s x 3600 s = 54 M, NICTER's rate) is ingested and `cynex analyze` timed; DuckDB then runs
# the same scan-event SQL over that hour's files alone, and a query that only reads their 17
# analysis columns (what any analysis of the hour spends before doing anything).
# PREV_PACKETS=… sets the previous hour's size (before 2026-12-06 it was a quarter of the hour).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
PACKETS=${1:-100000000}
HOUR=${2:-54000000}
RUNS=${3:-3}
PREV=${PREV_PACKETS:-$HOUR}
WORK=${BENCH_DIR:-/tmp/cynex-bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
cargo build --release -q --workspace
BIN="$CARGO_TARGET_DIR/release/cynex"
mkdir -p "$WORK"

# --- full analysis -------------------------------------------------------------------------
FULL="$WORK/full-$PACKETS"
full_lake "$FULL" "$PACKETS"
N=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['packets'])" "$FULL/cap.pcap.truth.json")
: >"$WORK/an.txt"
for _ in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" "$BIN" --data "$FULL/data" analyze --rebuild --flush --dark 198.18.0.0/20 >"$WORK/an-out.txt"
  cat "$WORK/t.txt" >>"$WORK/an.txt"
done
T=$(cut -d' ' -f1 "$WORK/an.txt" | median)
RSS=$(cut -d' ' -f2 "$WORK/an.txt" | sort -n | tail -1)
SUMMARY=$(sed -n 2p "$WORK/an-out.txt")
: >"$WORK/duck.txt"
for _ in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" python3 bench/scan_events_duckdb.py "$FULL/data/lake/packets" >"$WORK/duck-out.txt"
  cat "$WORK/t.txt" >>"$WORK/duck.txt"
done
DT=$(cut -d' ' -f1 "$WORK/duck.txt" | median)
DRSS=$(cut -d' ' -f2 "$WORK/duck.txt" | sort -n | tail -1)
DEV=$(cat "$WORK/duck-out.txt")

# --- incremental: one new hour -------------------------------------------------------------
INC="$WORK/inc-$PREV-$HOUR"
# The new hour's start; its files are the lake's partition of that date and hour.
HOUR_START=2026-11-01T11:00:00Z
HOUR_FILES="sensor=bench/date=${HOUR_START:0:10}/hour=${HOUR_START:11:2}/*.parquet"
if [ ! -f "$INC/ready" ]; then
  rm -rf "$INC"; mkdir -p "$INC"
  "$BIN" gen darknet --packets "$PREV" --duration 1h --start 2026-11-01T10:00:00Z --out "$INC/prev.pcap" --seed 4 >/dev/null
  "$BIN" gen darknet --packets "$HOUR" --duration 1h --start "$HOUR_START" --out "$INC/hour.pcap" --seed 5 >/dev/null
  touch "$INC/ready"
fi
NH=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['packets'])" "$INC/hour.pcap.truth.json")
: >"$WORK/inc.txt"; : >"$WORK/hduck.txt"; : >"$WORK/hread.txt"
for _ in $(seq "$RUNS"); do
  rm -rf "$INC/data"
  "$BIN" --data "$INC/data" --quiet ingest pcap "$INC/prev.pcap" --sensor bench >/dev/null
  "$BIN" --data "$INC/data" analyze --dark 198.18.0.0/20 >/dev/null
  "$BIN" --data "$INC/data" --quiet ingest pcap "$INC/hour.pcap" --sensor bench >/dev/null
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" "$BIN" --data "$INC/data" analyze >/dev/null
  cat "$WORK/t.txt" >>"$WORK/inc.txt"
  # DuckDB over the new hour's files only: its scan-event SQL, and merely reading the 17 columns.
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" python3 bench/scan_events_duckdb.py "$INC/data/lake/packets" "$HOUR_FILES" >"$WORK/hduck-out.txt"
  cat "$WORK/t.txt" >>"$WORK/hduck.txt"
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" python3 bench/scan_events_duckdb.py "$INC/data/lake/packets" "$HOUR_FILES" --read-only >/dev/null
  cat "$WORK/t.txt" >>"$WORK/hread.txt"
done
IT=$(cut -d' ' -f1 "$WORK/inc.txt" | median)
IRSS=$(cut -d' ' -f2 "$WORK/inc.txt" | sort -n | tail -1)
HDT=$(cut -d' ' -f1 "$WORK/hduck.txt" | median)
HDRSS=$(cut -d' ' -f2 "$WORK/hduck.txt" | sort -n | tail -1)
HRT=$(cut -d' ' -f1 "$WORK/hread.txt" | median)

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $CPU, $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F)"
echo
echo "| run | packets | time (median of $RUNS) | rate | peak RSS |"
echo "|---|---:|---:|---:|---:|"
python3 - "$N" "$T" "$RSS" "$DT" "$DRSS" "$NH" "$IT" "$IRSS" "$HDT" "$HDRSS" "$HRT" <<'PY'
import sys
n, t, rss, dt, drss, nh, it, irss, hdt, hdrss, hrt = sys.argv[1:]
n, t, dt, nh, it, hdt, hrt = int(n), float(t), float(dt), int(nh), float(it), float(hdt), float(hrt)
print(f"| cynex analyze, full (scan events, tools, backscatter, surges, stats) | {n:,} | {t:.1f} s | {n/t/1e6:.2f} M pkt/s | {int(rss)//1024} MiB |")
print(f"| DuckDB, scan-event aggregation only (SQL, same Parquet) | {n:,} | {dt:.1f} s | {n/dt/1e6:.2f} M pkt/s | {int(drss)//1024} MiB |")
print(f"| cynex analyze, incremental: one new hour | {nh:,} | {it:.2f} s | {nh/it/1e6:.2f} M pkt/s | {int(irss)//1024} MiB |")
print(f"| DuckDB, scan-event aggregation of that hour only | {nh:,} | {hdt:.2f} s | {nh/hdt/1e6:.2f} M pkt/s | {int(hdrss)//1024} MiB |")
print(f"| DuckDB, only reading that hour's 17 columns (a floor) | {nh:,} | {hrt:.2f} s | {nh/hrt/1e6:.2f} M pkt/s | |")
print()
print(f"cynex / DuckDB time ratio: {dt/t:.2f}x (cynex does all detectors; DuckDB only scan events)")
print(f"incremental hour: {hdt/it:.2f}x DuckDB's scan events of the hour; reading alone takes DuckDB {hrt:.2f} s")
PY
echo "cynex: $SUMMARY"
echo "duckdb: $DEV"
