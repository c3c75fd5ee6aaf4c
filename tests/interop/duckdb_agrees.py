#!/usr/bin/env python3
"""DuckDB and `cynex query` give identical answers over the same lake.

usage: duckdb_agrees.py CYNEX_BIN DATA_DIR

Each query is written once against a table named `packets`; for DuckDB the name is replaced by
read_parquet over the lake's Hive-partitioned files (DuckDB infers `date` as DATE and `hour` as
an integer, as cynex declares them). Exit 0 when every result matches, 1 with a diff otherwise.
"""
import json
import subprocess
import sys

import duckdb

QUERIES = [
    # Top destination ports of TCP SYN scans, with unique sources.
    """SELECT dst_port, count(*) AS packets, count(DISTINCT src_ip4) AS sources
       FROM packets WHERE proto = 6 AND tcp_flags = 2
       GROUP BY dst_port ORDER BY packets DESC, dst_port LIMIT 10""",
    # Hourly series with backscatter counted from the tag bits.
    """SELECT hour, count(*) AS packets, count(DISTINCT src_ip4) AS sources,
              sum(CASE WHEN (tags & 1) > 0 THEN 1 ELSE 0 END) AS backscatter,
              min(ttl) AS min_ttl, max(ip_len) AS max_len
       FROM packets GROUP BY hour ORDER BY hour""",
    # Mirai-fingerprinted sources with at least 3 matching packets.
    """SELECT src_ip4, count(*) AS n, count(DISTINCT dst_ip4) AS dsts, min(dst_port) AS lo, max(dst_port) AS hi
       FROM packets WHERE (fp & 4) > 0
       GROUP BY src_ip4 HAVING count(*) >= 3 ORDER BY n DESC, src_ip4 LIMIT 20""",
    # Partition filters on date and hour, and per-protocol sizes.
    """SELECT proto, count(*) AS n, sum(ip_len) AS bytes, avg(ttl) AS avg_ttl
       FROM packets WHERE date = DATE '2026-11-01' AND hour BETWEEN 1 AND 3
       GROUP BY proto ORDER BY proto""",
    # Backscatter repliers, with ICMP errors' quoted inner destinations.
    """SELECT src_ip4, count(*) AS n, count(DISTINCT dst_ip4) AS dsts, count(DISTINCT inner_dst_ip4) AS inner_dsts,
              min(ts) AS first, max(ts) AS last
       FROM packets WHERE (tags & 1) > 0
       GROUP BY src_ip4 ORDER BY n DESC, src_ip4 LIMIT 10""",
]


def norm(v):
    if isinstance(v, float):
        return round(v, 6)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, str) and v.endswith("Z") and "T" in v:
        # The same instant: arrow writes RFC 3339 with Z, Python's isoformat writes +00:00.
        return v[:-1] + "+00:00"
    return v


def main():
    cynex, data = sys.argv[1], sys.argv[2]
    # Declare the partition types as cynex does (DuckDB would otherwise read `hour=05` as text).
    files = (f"read_parquet('{data}/lake/packets/**/*.parquet', hive_partitioning = true, "
             "hive_types = {'date': DATE, 'hour': INTEGER})")
    con = duckdb.connect()
    failed = 0
    for q in QUERIES:
        out = subprocess.run([cynex, "--data", data, "query", "--format", "json", q], capture_output=True, text=True, check=True)
        ours = [{k: norm(v) for k, v in row.items()} for row in json.loads(out.stdout)]
        rel = con.sql(q.replace("FROM packets", f"FROM {files}"))
        cols = rel.columns
        theirs = [{c: norm(v) for c, v in zip(cols, row) if v is not None} for row in rel.fetchall()]
        ours = [{k: v for k, v in row.items() if v is not None} for row in ours]
        if ours != theirs or not ours:
            failed += 1
            print(f"MISMATCH for:\n{q}\ncynex:  {ours[:5]}\nduckdb: {theirs[:5]}", file=sys.stderr)
        else:
            print(f"ok: {len(ours)} rows: {' '.join(q.split())[:70]}...")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
