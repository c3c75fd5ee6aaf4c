#!/usr/bin/env python3
"""Validate STIX 2.1 objects with the OASIS stix2-validator (PyPI): every file given is a bundle or
a TAXII envelope; print one line per error and exit 1 if there was any (warnings are allowed)."""
import json
import sys

from stix2validator import ValidationOptions, validate_instance

errors = 0
checked = 0
opts = ValidationOptions(version="2.1")
for path in sys.argv[1:]:
    with open(path) as f:
        doc = json.load(f)
    objects = doc.get("objects", [doc]) if isinstance(doc, dict) else doc
    for o in objects:
        checked += 1
        res = validate_instance(o, opts)
        if not res.is_valid:
            for e in res.errors:
                errors += 1
                print(f"{path}: {o.get('id')}: {e}")
print(f"checked {checked} objects, {errors} errors")
sys.exit(1 if errors else 0)
