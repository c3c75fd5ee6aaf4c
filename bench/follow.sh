#!/usr/bin/env bash
# Memory of `cynex ingest eve --follow` over days of input (issue 3). A writer appends DAYS days of
# `cynex gen eve` events (EVENTS_PER_DAY a day, timestamps spread over each day) to a live
# eve.json in slices of SLICE bytes (cutting lines anywhere, as a writer does), and rotates it at
# each day's end like logrotate (rename to eve.json.N, new eve.json). The follower polls every
# POLL_MS, so each slice is a pass that commits. Every second the follower's RSS is sampled with
# the lake's commit count; the table shows RSS at five points of the run and its peak. At the end the lake must hold
# every event once (count, and distinct (day, line): each day's file has lines 1..EVENTS_PER_DAY
# with times inside that day, whatever name the file had when each line was read).
#
#   bench/follow.sh [DAYS=7] [EVENTS_PER_DAY=300000] [POLL_MS=20] [SLICE=262144]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DAYS=${1:-7}
PER_DAY=${2:-300000}
POLL_MS=${3:-20}
SLICE=${4:-262144}
WORK=${BENCH_DIR:-/tmp/cynex-bench}/follow
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --workspace
  BIN="$CARGO_TARGET_DIR/release/cynex"
fi
mkdir -p "$WORK/gen"
rm -rf "$WORK/live" "$WORK/data" "$WORK/rss.txt"
mkdir -p "$WORK/live"
for d in $(seq 0 $((DAYS - 1))); do
  f="$WORK/gen/day-$d-$PER_DAY.json"
  start=$(date -u -d "2026-11-01 +$d days" +%Y-%m-%dT00:00:00Z)
  [ -f "$f" ] || "$BIN" gen eve --events "$PER_DAY" --start "$start" --duration 1d --seed "$((d + 1))" --out "$f" >/dev/null
done

LIVE="$WORK/live/eve.json"
: >"$LIVE"
"$BIN" --data "$WORK/data" --quiet ingest eve "$LIVE" --sensor follow --follow --poll-ms "$POLL_MS" --idle-exit 10 \
  >"$WORK/follower.txt" 2>&1 &
FOLLOWER=$!
# Each sample: seconds since start, commits so far, RSS (KiB).
sample() {
  local rss commits
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$FOLLOWER/status" 2>/dev/null || echo 0)
  # (set -e would end the sampler while the lake does not exist yet)
  commits=$({ find "$WORK/data/lake/_commits" -name '*.json' ! -name '*.checkpoint.json' 2>/dev/null || true; } | wc -l)
  echo "$SECONDS $commits $rss" >>"$WORK/rss.txt"
}
( while kill -0 "$FOLLOWER" 2>/dev/null; do sample; sleep 1; done ) &
SAMPLER=$!
T0=$(date +%s.%N)
for d in $(seq 0 $((DAYS - 1))); do
  f="$WORK/gen/day-$d-$PER_DAY.json"
  size=$(stat -c %s "$f")
  for ((off = 0; off < size; off += SLICE)); do
    dd if="$f" bs="$SLICE" skip="$off" count="$SLICE" iflag=skip_bytes,count_bytes status=none >>"$LIVE"
    sleep 0.01
  done
  # Rotate: the follower finishes eve.json.N under its new name and starts on the new file.
  mv "$LIVE" "$LIVE.$((d + 1))"
  : >"$LIVE"
done
wait "$FOLLOWER"
T1=$(date +%s.%N)
kill "$SAMPLER" 2>/dev/null || true
WROTE=$((DAYS * PER_DAY))
read -r N DISTINCT < <("$BIN" --data "$WORK/data" query --format csv \
  "SELECT count(*), count(DISTINCT CAST(date_trunc('day', time) AS VARCHAR) || ':' || CAST(line AS VARCHAR)) FROM events" | tail -1 | tr ',' ' ')
COMMITS=$(find "$WORK/data/lake/_commits" -name '*.json' ! -name '*.checkpoint.json' | wc -l)
FILES=$("$BIN" --data "$WORK/data" lake stats --format csv | awk -F, '$1 == "events" {print $2}')
echo "| measure | value |"
echo "|---|---|"
echo "| days of input | $DAYS ($PER_DAY events/day, $(du -shc "$WORK"/gen/day-*-"$PER_DAY".json | tail -1 | cut -f1)) |"
echo "| wall time | $(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.0f s", b-a}') |"
echo "| events written / in lake / distinct places | $WROTE / $N / $DISTINCT |"
echo "| commits (passes that read something) | $COMMITS |"
echo "| events Parquet files live at the end (after the follower's merges) | $FILES |"
n=$(wc -l <"$WORK/rss.txt")
awk -v n="$n" 'NR==1 || NR==int(n/4) || NR==int(n/2) || NR==int(3*n/4) || NR==n-1 {
  printf "| RSS at sample %d of %d (%d commits) | %.0f MiB |\n", NR, n, $2, $3/1024 }' "$WORK/rss.txt"
awk '{ if ($3 > m) m = $3 } END { printf "| peak RSS | %.0f MiB |\n", m/1024 }' "$WORK/rss.txt"
[ "$N" = "$WROTE" ] && [ "$DISTINCT" = "$WROTE" ] || { echo "follow bench: lake does not match the input" >&2; exit 1; }
