"""pyheap.py -- a python3 program with a heap worth looking at, for doc/heap-profiler.md's flame graph
(bench/prof/flamegraph.sh): an in-memory index of 200,000 JSON records, a word list and a
cache of compiled regular expressions, then a heap profile written while all of it is live.

    amalloc-run --prof /usr/bin/python3 pyheap.py PROFILE.heap
"""
import ctypes
import json
import re
import sys

records = [json.loads(json.dumps({"id": i, "name": "user%06d" % i, "tags": ["t%d" % (i % 13), "g%d" % (i % 7)],
                                  "score": i * 0.5})) for i in range(200000)]
by_name = {r["name"]: r for r in records}
words = " ".join(r["name"] for r in records).split()
patterns = [re.compile(r"user0*%d\d*" % k) for k in range(200)]
hits = sum(1 for w in words[:20000] if patterns[len(w) % 200].match(w))

err = ctypes.CDLL(None).am_prof_dump(sys.argv[1].encode())
print(len(by_name), len(words), hits, "am_prof_dump:", err)
sys.exit(1 if err else 0)
