"""Scan events (Merit ORION darknet-events style) as SQL in DuckDB over the lake's Parquet files:
per (source, destination port, traffic type), a new event after 624 s without a packet; events
with >= 10 unique destinations and >= 10 packets/s global rate (dark block /20) are kept.
Prints the number of events and their total packets.

    scan_events_duckdb.py ROOT [GLOB=**/*.parquet] [--read-only]

GLOB picks files under ROOT (bench/analyze.sh's incremental case passes the new hour's
directory). --read-only instead decodes the 17 columns `cynex analyze` reads and sums them: the
time any analysis of those files spends just reading them (a floor for the incremental hour)."""
import sys

import duckdb

args = [a for a in sys.argv[1:] if not a.startswith("--")]
root = args[0]
files = f"{root}/{args[1] if len(args) > 1 else '**/*.parquet'}"
con = duckdb.connect()
con.execute("SET threads TO 2")
if "--read-only" in sys.argv:
    # The columns of cynex_analysis::engine::COLUMNS; sums so none is skipped.
    cols = ["ip_version", "src_ip4", "dst_ip4", "proto", "ttl", "dst_port", "src_port", "tcp_flags", "tcp_seq",
            "tcp_window", "tcp_wscale", "icmp_type", "inner_dst_ip4", "frame_len", "fp", "tags"]
    sums = ", ".join(f"sum({c})" for c in cols)
    row = con.execute(f"SELECT count(*), max(ts), {sums} FROM read_parquet('{files}', hive_partitioning = true)").fetchone()
    print(f"{row[0]} rows read (17 columns)")
    sys.exit(0)
sql = f"""
WITH p AS (
  SELECT epoch_us(ts) AS t, src_ip4 AS src, dst_ip4 AS dst,
         CASE WHEN proto IN (6, 17) THEN dst_port ELSE 0 END AS port,
         CASE WHEN proto = 6 THEN
                CASE WHEN tcp_flags & 4 <> 0 THEN 3 WHEN tcp_flags & 18 = 2 THEN 0 WHEN tcp_flags & 18 = 18 THEN 1
                     WHEN tcp_flags & 1 <> 0 THEN 4 WHEN tcp_flags & 16 <> 0 THEN 2 ELSE 5 END
              WHEN proto = 17 THEN 6
              WHEN proto = 1 THEN CASE icmp_type WHEN 8 THEN 7 WHEN 0 THEN 8 WHEN 3 THEN 9 WHEN 11 THEN 10 ELSE 11 END
              ELSE 12 END AS traffic
  FROM read_parquet('{files}', hive_partitioning = true)
  WHERE ip_version = 4 AND src_ip4 IS NOT NULL AND tags & 5 = 0
),
g AS (
  SELECT *, CASE WHEN t - lag(t) OVER w > 624000000 THEN 1 ELSE 0 END AS brk
  FROM p WINDOW w AS (PARTITION BY src, port, traffic ORDER BY t)
),
e AS (
  SELECT *, sum(brk) OVER (PARTITION BY src, port, traffic ORDER BY t ROWS UNBOUNDED PRECEDING) AS ev FROM g
),
agg AS (
  SELECT src, port, traffic, ev, count(*) AS packets, approx_count_distinct(dst) AS uniques,
         approx_count_distinct(dst >> 8) AS u24, min(t) AS first, max(t) AS last
  FROM e GROUP BY ALL
)
SELECT count(*), sum(packets) FROM agg
WHERE uniques >= 10 AND packets * (4294967296.0 / 4096) / greatest((last - first) / 1e6, 1.0) >= 10
"""
n, pk = con.execute(sql).fetchone()
print(f"{n} scan events, {pk} packets")
