#!/usr/bin/env bash
# `cynex intel publish` of an analysed lake (issue 5's publishing, run by every round of `cynex
# serve`): the first publish (everything new), then RUNS publishes with nothing changed (what
# each round does while no analysis added findings). Prints a Markdown table for BENCHMARKS.md.
#
#   bench/publish.sh DATA [RUNS=3]
#
# DATA is an analysed data directory, such as the incremental lake bench/analyze.sh leaves in
# $BENCH_DIR/inc-*/data. It is copied first (the metadata store of the copy is removed, so the
# first publish starts from an empty hub); set BIN to compare builds.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SRC=${1:?an analysed data directory}
RUNS=${2:-3}
WORK=${BENCH_DIR:-/tmp/cynex-bench}/publish
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --workspace
  BIN="$CARGO_TARGET_DIR/release/cynex"
fi
rm -rf "$WORK"; mkdir -p "$WORK"
cp -r "$SRC" "$WORK/data"
rm -f "$WORK/data"/cynex.db*
/usr/bin/time -f "%e %M" -o "$WORK/first.txt" "$BIN" --data "$WORK/data" --quiet intel publish >"$WORK/first-out.txt"
: >"$WORK/again.txt"
for _ in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$WORK/t.txt" "$BIN" --data "$WORK/data" --quiet intel publish >"$WORK/again-out.txt"
  cat "$WORK/t.txt" >>"$WORK/again.txt"
done
FT=$(cut -d' ' -f1 "$WORK/first.txt")
AT=$(cut -d' ' -f1 "$WORK/again.txt" | median)
RSS=$(cut -d' ' -f2 "$WORK/first.txt" "$WORK/again.txt" | sort -n | tail -1)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $CPU, $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F)"
echo
echo "| publish | time | peak RSS |"
echo "|---|---:|---:|"
echo "| first (empty hub) | $FT s | $((RSS / 1024)) MiB |"
echo "| again, nothing changed (median of $RUNS) | $AT s | |"
echo
echo "first: $(tail -1 "$WORK/first-out.txt")"
echo "again: $(tail -1 "$WORK/again-out.txt")"
