"""workload.py -- an allocation-heavy, deterministic Python workload for the preload tests.

Prints a few lines and checksums that must be the same under glibc's malloc and under amalloc.
With AM_EXPECT_PRELOAD=1 in the environment it also checks that amalloc is in the process
(am_version is found by dlsym) and exits 3 if not; that check prints nothing.
"""
import hashlib
import json
import os
import random
import sys


def check_preload():
    if os.environ.get("AM_EXPECT_PRELOAD") != "1":
        return
    import ctypes
    try:
        version = ctypes.CDLL(None).am_version()
    except AttributeError:
        sys.stderr.write("workload.py: am_version not found: amalloc is not loaded\n")
        sys.exit(3)
    if version <= 0:
        sys.stderr.write("workload.py: am_version() returned %d\n" % version)
        sys.exit(3)


def make_tree(rng, depth, budget):
    """A nested structure of dicts, lists, strings, ints and floats (~budget objects)."""
    count = 0
    def node(d):
        nonlocal count
        count += 1
        if d == 0 or count > budget:
            kind = rng.randrange(4)
            if kind == 0:
                return rng.randrange(-10**9, 10**9)
            if kind == 1:
                return round(rng.random() * 1000, 6)
            if kind == 2:
                return "s%x-%s" % (rng.getrandbits(40), "x" * rng.randrange(0, 40))
            return None if rng.random() < 0.5 else (rng.random() < 0.5)
        if rng.random() < 0.5:
            return {"k%d_%d" % (d, i): node(d - 1) for i in range(rng.randrange(1, 9))}
        return [node(d - 1) for _ in range(rng.randrange(1, 9))]
    roots = []
    while count < budget:
        roots.append(node(depth))
    return roots, count


def main():
    check_preload()
    rng = random.Random(12345)
    digest = hashlib.sha256()

    # 1. JSON dump and load of a nested structure of ~100k objects, several times
    tree, n = make_tree(rng, 6, 100000)
    text = json.dumps(tree, sort_keys=True)
    for _ in range(3):
        back = json.loads(text)
        assert back == tree
        again = json.dumps(back, sort_keys=True, indent=1)
        text = json.dumps(json.loads(again), sort_keys=True)
    digest.update(text.encode())
    print("json: objects=%d chars=%d sha=%s" % (n, len(text), hashlib.sha256(text.encode()).hexdigest()[:16]))

    # 2. dicts: word counts over generated text, dict of lists, deletes and re-inserts
    words = ["".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 9)))
             for _ in range(300000)]
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    groups = {}
    for w in words:
        groups.setdefault(len(w), []).append(w)
    for i, w in enumerate(list(counts)):
        if i % 3 == 0:
            del counts[w]
    for w in words[:50000]:
        counts[w + "!"] = len(w)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    print("dict: distinct=%d top=%s" % (len(counts), top))
    print("groups: %s" % sorted((k, len(v)) for k, v in groups.items()))
    digest.update(repr(top).encode())

    # 3. lists and sorting: tuples, strings, floats, in place and with keys
    rows = [(rng.randrange(1000), "r%07d" % rng.randrange(10**7), rng.random()) for _ in range(200000)]
    rows.sort()
    by_name = sorted(rows, key=lambda r: r[1])
    floats = sorted(r[2] for r in rows)
    print("sort: first=%s last=%s median=%.9f" % (rows[0], by_name[-1], floats[len(floats) // 2]))
    digest.update(repr(rows[::997]).encode())

    # 4. strings: building, joining, splitting, replacing, formatting
    chunks = []
    for i in range(100000):
        chunks.append("%05d:%s;" % (i, words[i % len(words)].upper()))
    big = "".join(chunks)
    parts = big.split(";")
    replaced = big.replace("A", "<a>").replace("Z", "")
    print("str: len=%d parts=%d replaced=%d" % (len(big), len(parts), len(replaced)))
    digest.update(replaced.encode())

    # 5. many short-lived objects: classes, sets, bytes and bytearrays
    class Node:
        __slots__ = ("key", "children")
        def __init__(self, key):
            self.key = key
            self.children = []
    root = Node(0)
    frontier = [root]
    made = 1
    while made < 150000:
        parent = frontier[made % len(frontier)]
        child = Node(made)
        parent.children.append(child)
        frontier.append(child)
        made += 1
        if len(frontier) > 5000:
            frontier = frontier[-2500:]
    def walk(node):
        total = 0
        stack = [node]
        while stack:
            x = stack.pop()
            total += x.key
            stack.extend(x.children)
        return total
    s = set()
    buf = bytearray()
    for i in range(100000):
        s.add(("t", i % 7919, str(i % 104729)))
        buf += bytes([i % 251]) * (i % 13)
    print("objects: tree=%d set=%d bytes=%d" % (walk(root), len(s), len(buf)))
    digest.update(bytes(buf))

    print("checksum %s" % digest.hexdigest())


if __name__ == "__main__":
    main()
