#!/usr/bin/env bash
# Whole-program benchmark of `cynex ingest pcap` against tcpdump and tshark on the same files,
# in the same run (issue 2). Prints a Markdown table for BENCHMARKS.md.
#
#   bench/ingest.sh [PACKETS=20000000] [BIG=100000000] [RUNS=3]
#
# Timed: ingest of a synthesized darknet capture (page cache warm) end to end into committed
# Parquet, fresh lake each run; median of RUNS. Peers: `tcpdump -nn -r FILE > /dev/null` (capped
# at TCPDUMP_CAP seconds; its rate is then packets printed in that time) and
# `tshark -r FILE -T fields -e ip.src -e ip.dst -e tcp.dstport` on a 1M-packet file.
# Not timed: generating the captures. Peak RSS from /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
PACKETS=${1:-20000000}
BIG=${2:-100000000}
RUNS=${3:-3}
TCPDUMP_CAP=${TCPDUMP_CAP:-120}
WORK=${BENCH_DIR:-/tmp/cynex-bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cynex/target}"
for t in tcpdump tshark /usr/bin/time; do
  command -v "$t" >/dev/null || { apt-get install -y -q tcpdump tshark time >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q tcpdump tshark time >/dev/null; }; }
done
cargo build --release -q --workspace
BIN="$CARGO_TARGET_DIR/release/cynex"
mkdir -p "$WORK"
gen() { [ -f "$WORK/$2.pcap" ] || "$BIN" gen darknet --packets "$1" --out "$WORK/$2.pcap" --seed 1 >/dev/null; }
gen "$PACKETS" main
gen 1000000 one_m
[ "$BIG" = 0 ] || gen "$BIG" big
npk() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['packets'])" "$WORK/$1.pcap.truth.json"; }
ingest_once() { # file -> "seconds rss_kib bytes_per_packet"
  rm -rf "$WORK/data"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$BIN" --data "$WORK/data" --quiet ingest pcap "$1" --sensor bench >"$WORK/out.txt"
  local bpp; bpp=$(grep -o '[0-9.]* bytes/packet' "$WORK/out.txt" | cut -d' ' -f1)
  echo "$(cat "$WORK/time.txt") $bpp"
}
N=$(npk main)
: >"$WORK/runs.txt"
for _ in $(seq "$RUNS"); do ingest_once "$WORK/main.pcap" >>"$WORK/runs.txt"; done
T=$(cut -d' ' -f1 "$WORK/runs.txt" | median)
RSS=$(cut -d' ' -f2 "$WORK/runs.txt" | sort -n | tail -1)
BPP=$(cut -d' ' -f3 "$WORK/runs.txt" | head -1)
RATE=$(python3 -c "print(f'{$N/$T/1e6:.2f}')")
# tcpdump: count the lines it prints within the cap.
start=$(date +%s.%N)
TD_LINES=$(timeout "$TCPDUMP_CAP" tcpdump -nn -r "$WORK/main.pcap" 2>/dev/null | wc -l || true)
TD_T=$(python3 -c "print(f'{$(date +%s.%N)-$start:.2f}')")
TD_RATE=$(python3 -c "print(f'{$TD_LINES/$TD_T/1e6:.3f}')")
# tshark on 1M packets.
N1=$(npk one_m)
rm -rf "$WORK/data"
/usr/bin/time -f "%e %M" -o "$WORK/t1.txt" "$BIN" --data "$WORK/data" --quiet ingest pcap "$WORK/one_m.pcap" --sensor bench >/dev/null
C1=$(cut -d' ' -f1 "$WORK/t1.txt")
/usr/bin/time -f "%e %M" -o "$WORK/ts.txt" tshark -r "$WORK/one_m.pcap" -T fields -e ip.src -e ip.dst -e tcp.dstport >/dev/null 2>&1
TS=$(cut -d' ' -f1 "$WORK/ts.txt"); TS_RSS=$(cut -d' ' -f2 "$WORK/ts.txt")
if [ "$BIG" != 0 ]; then
  NB=$(npk big)
  read -r BT BRSS BBPP < <(ingest_once "$WORK/big.pcap")
fi
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "| measure | cynex | peer | ratio |"
echo "|---|---|---|---|"
echo "| ingest $N packets (median of $RUNS) | ${T} s, ${RATE} M pkt/s, peak RSS $((RSS/1024)) MiB, ${BPP} B/pkt | tcpdump -nn -r: ${TD_LINES} pkts in ${TD_T} s = ${TD_RATE} M pkt/s (cap ${TCPDUMP_CAP} s) | $(python3 -c "print(f'{$RATE/$TD_RATE:.1f}x')") |"
echo "| ingest $N1 packets vs tshark fields | ${C1} s | tshark: ${TS} s, peak RSS $((TS_RSS/1024)) MiB | $(python3 -c "print(f'{$TS/$C1:.1f}x')") |"
[ "$BIG" = 0 ] || echo "| ingest $NB packets | ${BT} s, $(python3 -c "print(f'{$NB/$BT/1e6:.2f}')") M pkt/s, peak RSS $((BRSS/1024)) MiB, ${BBPP} B/pkt | | |"
