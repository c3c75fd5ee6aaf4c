#!/usr/bin/env python3
"""Walk every TAXII 2.1 endpoint of a running `cynex serve` with the OASIS reference client
(taxii2-client, PyPI) as one user, and print what that user saw as JSON for the Rust test to check.

Usage: taxii_walk.py DISCOVERY_URL USER SECRET CA_FILE [POST_COLLECTION_ALIAS SIGHTED_ID]

Endpoints used: discovery, API root, collections, collection, objects (paged with as_pages, and
filtered by type, id and version), manifest (paged), one object, versions, POST of an envelope
with status polling (wait_for_completion), and get status. With POST_COLLECTION_ALIAS, the user
posts a sighting of SIGHTED_ID there and deletes a scratch object of its own.
"""
import json
import sys
import uuid

from taxii2client.v21 import Server, as_pages


def walk(url, user, secret, cafile, post_alias=None, sighted=None):
    srv = Server(url, user=user, password=secret, verify=cafile)
    out = {"title": srv.title, "api_roots": len(srv.api_roots), "collections": {}}
    root = srv.default or srv.api_roots[0]
    out["versions"] = root.versions
    out["max_content_length"] = root.max_content_length
    for c in root.collections:
        e = {"id": c.id, "can_read": c.can_read, "can_write": c.can_write}
        if c.can_read:
            ids, pages = [], 0
            for env in as_pages(c.get_objects, per_request=7):
                pages += 1
                ids += [o["id"] for o in env.get("objects", [])]
            e["objects"] = ids
            e["pages"] = pages
            manifest = []
            for env in as_pages(c.get_manifest, per_request=25):
                manifest += [m["id"] for m in env.get("objects", [])]
            e["manifest"] = manifest
            e["indicators"] = [o["id"] for o in c.get_objects(type="indicator").get("objects", [])]
            if ids:
                first = ids[0]
                one = c.get_object(first)
                e["get_object_ok"] = [o["id"] for o in one.get("objects", [])] == [first]
                e["by_id"] = [o["id"] for o in c.get_objects(id=first).get("objects", [])]
                e["versions"] = c.object_versions(first).get("versions", [])
                e["all_versions"] = len(c.get_objects(version="all").get("objects", []))
        if post_alias and c.alias == post_alias and c.can_write:
            now = "2026-11-02T00:00:00.000Z"
            sighting = {
                "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}", "created": now,
                "modified": now, "sighting_of_ref": sighted, "count": 2,
            }
            scratch = {
                "type": "note", "spec_version": "2.1", "id": f"note--{uuid.uuid4()}", "created": now,
                "modified": now, "content": f"scratch note of {user}", "object_refs": [sighted],
            }
            st = c.add_objects({"objects": [sighting, scratch]}, wait_for_completion=True, poll_interval=0.2, timeout=30)
            e["posted"] = {"status": st.status, "total": st.total_count, "success": st.success_count,
                           "failure": st.failure_count, "sighting": sighting["id"]}
            again = root.get_status(st.id)
            e["posted"]["status_again"] = again.status
            c.delete_object(scratch["id"])
            e["posted"]["deleted_gone"] = scratch["id"] not in [m["id"] for m in c.get_manifest().get("objects", [])]
        out["collections"][c.alias] = e
    return out


if __name__ == "__main__":
    a = sys.argv[1:]
    print(json.dumps(walk(a[0], a[1], a[2], a[3], *(a[4:6] if len(a) >= 6 else []))))
