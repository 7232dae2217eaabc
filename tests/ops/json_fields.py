#!/usr/bin/env python3
"""Checks a `spirit status --json` object against docs/operations.md (or
another command's JSON against the table under another heading).

Usage: json_fields.py DOC [HEADING] < status.json

Reads the table under HEADING (default "### `spirit status --json`"): its
first column names each field (`node`, `peers[].lag_ms`, ...). Prints the fields
of the JSON that the table does not name, and the documented ones the JSON
lacks (fields of a list only when the list has an item). Exit 0 when both
are empty and the input parses as one JSON object.
"""
import json
import re
import sys


def documented(doc, heading):
    fields, inside = set(), False
    for line in open(doc, encoding="utf-8"):
        if line.rstrip("\n") == heading:
            inside = True
            continue
        if inside and line.startswith("#"):
            break
        m = re.match(r"\|\s*`([a-z_\[\].]+)`\s*\|", line) if inside else None
        if m:
            fields.add(m.group(1))
    return fields


def flatten(obj):
    out, lists = set(), set()
    for key, value in obj.items():
        out.add(key)
        if isinstance(value, list):
            lists.add(key)
            for item in value:
                if isinstance(item, dict):  # a list of numbers has no fields
                    out.update(f"{key}[].{k}" for k in item)
    return out, lists


def main():
    status = json.load(sys.stdin)
    if not isinstance(status, dict):
        print("not a JSON object")
        return 1
    heading = sys.argv[2] if len(sys.argv) > 2 else "### `spirit status --json`"
    docs = documented(sys.argv[1], heading)
    got, lists = flatten(status)
    undocumented = sorted(got - docs)
    missing = sorted(
        f for f in docs - got
        if "[]" not in f or status.get(f.split("[]")[0])
    )
    for f in undocumented:
        print("undocumented:", f)
    for f in missing:
        print("missing:", f)
    return 1 if undocumented or missing or not docs else 0


sys.exit(main())
