# Helpers shared by the bench/ scripts (sourced, not run).

# Median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# full_lake DIR PACKETS: a lake in DIR/data holding a `cynex gen darknet` day of PACKETS packets
# (seed 3) ingested as sensor `bench`, with the capture's truth in DIR/cap.pcap.truth.json; built
# once (DIR/ready marks it complete), reused by bench/analyze.sh and bench/serve.sh. Needs $BIN.
full_lake() {
  local dir=$1 packets=$2
  if [ ! -f "$dir/ready" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    "$BIN" gen darknet --packets "$packets" --out "$dir/cap.pcap" --seed 3 >/dev/null
    "$BIN" --data "$dir/data" --quiet ingest pcap "$dir/cap.pcap" --sensor bench >/dev/null
    rm -f "$dir/cap.pcap"
    touch "$dir/ready"
  fi
}

# wait_healthz PORT TRIES: wait up to TRIES × 0.1 s for `cynex serve` on PORT to answer.
wait_healthz() {
  for _ in $(seq "$2"); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done
}
