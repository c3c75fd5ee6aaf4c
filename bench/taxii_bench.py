#!/usr/bin/env python3
"""TAXII 2.1 load and paging benchmark client (bench/taxii.sh drives it).

  taxii_bench.py post  COLLECTION_URL TOKEN N BATCH        POST N indicators in envelopes of BATCH
  taxii_bench.py page  COLLECTION_URL AUTH LIMIT MAX_PAGES MAX_SECONDS
                                                           page through objects/ with next, timing each page
  taxii_bench.py medallion-data FILE BASE_URL N            write medallion's memory-backend data file

AUTH is "bearer:TOKEN" or "basic:USER:PASSWORD". One requests.Session (keep-alive), the same
client for both servers. Prints one JSON line of results.
"""
import json
import statistics
import sys
import time

import requests

TAXII = "application/taxii+json;version=2.1"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def indicator(i):
    ts = "2026-11-01T00:00:00.000Z"
    return {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--b{i:07x}-0000-4000-8000-000000000000",
        "created": ts, "modified": ts, "name": f"bench scanner {i}",
        "pattern": f"[ipv4-addr:value = '{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}.{(i >> 24) & 255 or 1}']",
        "pattern_type": "stix", "pattern_version": "2.1", "valid_from": ts, "indicator_types": ["malicious-activity"],
        "object_marking_refs": [GREEN],
    }


def session(auth):
    s = requests.Session()
    kind, _, rest = auth.partition(":")
    if kind == "bearer":
        s.headers["Authorization"] = f"Bearer {rest}"
    else:
        user, _, pw = rest.partition(":")
        s.auth = (user, pw)
    s.headers["Accept"] = TAXII
    return s


def post(url, token, n, batch):
    s = session(f"bearer:{token}")
    s.headers["Content-Type"] = TAXII
    t0 = time.perf_counter()
    ok = 0
    for start in range(0, n, batch):
        body = json.dumps({"objects": [indicator(i) for i in range(start, min(n, start + batch))]})
        r = s.post(url + "objects/", data=body)
        r.raise_for_status()
        st = r.json()
        ok += st["success_count"]
        if st["failure_count"]:
            raise SystemExit(f"failures: {st.get('failures', [])[:3]}")
    dt = time.perf_counter() - t0
    print(json.dumps({"objects": ok, "seconds": dt, "objects_per_s": ok / dt}))


def page(url, auth, limit, max_pages, max_seconds):
    s = session(auth)
    lat = []
    seen = 0
    nxt = None
    t0 = time.perf_counter()
    while len(lat) < max_pages and time.perf_counter() - t0 < max_seconds:
        params = {"limit": limit}
        if nxt:
            params["next"] = nxt
        a = time.perf_counter()
        r = s.get(url + "objects/", params=params)
        lat.append(time.perf_counter() - a)
        r.raise_for_status()
        env = r.json()
        seen += len(env.get("objects", []))
        if not env.get("more"):
            break
        nxt = env.get("next")
    total = time.perf_counter() - t0
    lat_ms = sorted(x * 1000 for x in lat)
    p = lambda q: lat_ms[min(len(lat_ms) - 1, int(q * len(lat_ms)))]
    # medallion's memory backend spends a long time on the first request of a collection (it
    # grows with the square of the objects held), so the pages after the first are reported too.
    rest = lat[1:] or lat
    rest_ms = sorted(x * 1000 for x in rest)
    print(json.dumps({
        "pages": len(lat), "objects": seen, "seconds": total, "pages_per_s": len(lat) / total,
        "p50_ms": statistics.median(lat_ms), "p99_ms": p(0.99), "max_ms": lat_ms[-1], "first_ms": lat[0] * 1000,
        "steady_pages_per_s": len(rest) / sum(rest),
        "steady_p99_ms": rest_ms[min(len(rest_ms) - 1, int(0.99 * len(rest_ms)))],
    }))


def medallion_data(path, base, n):
    # medallion's memory backend keeps the whole collection, with a manifest entry per object.
    coll = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
    objects, manifest = [], []
    for i in range(n):
        o = indicator(i)
        objects.append(o)
        manifest.append({"id": o["id"], "date_added": "2026-11-01T00:00:00.%06dZ" % (i % 1000000) if n <= 1000000 else "2026-11-01T00:00:00.000000Z",
                         "version": o["modified"], "media_type": "application/stix+json;version=2.1"})
    data = {
        "/discovery": {"title": "medallion bench", "default": f"{base}/bench/", "api_roots": [f"{base}/bench/"]},
        "bench": {
            "information": {"title": "bench", "versions": [TAXII], "max_content_length": 104857600},
            "status": [],
            "collections": [{
                "id": coll, "title": "bench", "can_read": True, "can_write": True,
                "media_types": ["application/stix+json;version=2.1"], "objects": objects, "manifest": manifest,
            }],
        },
    }
    with open(path, "w") as f:
        json.dump(data, f)
    print(json.dumps({"collection_url": f"{base}/bench/collections/{coll}/", "objects": n}))


if __name__ == "__main__":
    cmd, *a = sys.argv[1:]
    if cmd == "post":
        post(a[0], a[1], int(a[2]), int(a[3]))
    elif cmd == "page":
        page(a[0], a[1], int(a[2]), int(a[3]), float(a[4]))
    elif cmd == "medallion-data":
        medallion_data(a[0], a[1], int(a[2]))
    else:
        raise SystemExit(__doc__)
