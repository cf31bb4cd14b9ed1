"""pywork.py -- a python3 workload for compare.sh: dicts, strings, lists, JSON.

    /usr/bin/python3 pywork.py [scale]

Prints a checksum of its results (independent of the allocator).
"""
import json
import sys
import zlib

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
rounds = max(1, int(30 * scale))
crc = 0
for r in range(rounds):
    # a table of records: dicts of strings and numbers
    table = {}
    for i in range(20000):
        key = "user:%d:%d" % (r, i * 7919 % 100003)
        table[key] = {"id": i, "name": "n%x" % (i * 2654435761 % 2**32), "tags": [str(i % 17), str(i % 5)],
                      "score": (i * 37 % 1000) / 10.0}
    # string building and splitting
    text = " ".join(v["name"] for v in table.values())
    words = text.split()
    counts = {}
    for w in words:
        counts[w[:3]] = counts.get(w[:3], 0) + 1
    # JSON round trip
    blob = json.dumps(table, sort_keys=True)
    back = json.loads(blob)
    # filtering, sorting, a dict comprehension
    top = sorted((v for v in back.values() if v["score"] > 50), key=lambda v: (-v["score"], v["id"]))[:100]
    index = {v["name"]: v for v in back.values() if v["id"] % 3 == 0}
    crc = zlib.crc32(blob.encode(), crc)
    crc = zlib.crc32(json.dumps([counts, [t["id"] for t in top], len(index)], sort_keys=True).encode(), crc)
print("checksum", crc)
