#!/usr/bin/env bash
# bench/heaps/run.sh -- first-class heaps against per-object free and other allocators' heaps
# (issue 16): bench/heaps/request.c, a request that builds a tree of N nodes (2N small objects)
# and drops it.
#
#   bench/heaps/run.sh [--quick] [--runs R] [--sizes "1000 10000 100000"]
#
# Builds amalloc (release, in build-bench unless AMALLOC_BENCH_BUILD is set; its
# libamalloc-api.a), installs libmimalloc-dev and libjemalloc-dev with apt-get when missing
# (as root; otherwise the missing column is skipped), compiles request-{amalloc,mimalloc,
# jemalloc,glibc} in BUILD/bench-heaps, then runs every column R times, interleaved (all
# columns of a size once, then again), and prints per N the median over the runs of each
# column's median build and teardown time per request and its mean loop time per request, and
# the ratios: teardown amalloc free / amalloc heap (target >= 5), loop mimalloc heap / amalloc
# heap (target > 1). Every run's checksum must equal glibc's.
# With mimalloc, request-pair serves every request twice in one process, by an amalloc heap and
# by a mimalloc heap in alternating order (bench/heaps/request.c ALLOC_PAIR): the median over
# the runs of its per-pair ratio mimalloc / amalloc is the steadier figure on a machine whose
# speed swings between runs. Its `free` mode pairs am_malloc/am_free with mi_malloc/mi_free the
# same way (the per-object baseline).
# Columns: amalloc-free, amalloc-heap, mimalloc-heap, mimalloc-free, pair-heap, pair-free,
# jemalloc-arena, jemalloc-free, glibc-free. Results also go to BUILD/bench-heaps/results.tsv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
runs=5
sizes="1000 10000 100000"
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; runs=3 ;;
    --runs) runs=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    *) echo "usage: $0 [--quick] [--runs R] [--sizes LIST]" >&2; exit 2 ;;
  esac
  shift
done
build=${AMALLOC_BENCH_BUILD:-build-bench}

missing=()
[ -f /usr/include/mimalloc.h ] || missing+=(libmimalloc-dev)
[ -f /usr/include/jemalloc/jemalloc.h ] || missing+=(libjemalloc-dev)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false >/dev/null
fi
meson compile -C "$build" amalloc-api >/dev/null
out=$build/bench-heaps
mkdir -p "$out"
cflags=(-O2 -g -std=gnu11 -Wall -Iinclude)
cc "${cflags[@]}" -DALLOC_AMALLOC bench/heaps/request.c "$build/libamalloc-api.a" -lpthread -o "$out/request-amalloc"
cc "${cflags[@]}" bench/heaps/request.c -o "$out/request-glibc"
cols=(amalloc:free amalloc:heap)
if [ -f /usr/include/mimalloc.h ]; then
  cc "${cflags[@]}" -DALLOC_MIMALLOC bench/heaps/request.c -lmimalloc -o "$out/request-mimalloc"
  cols+=(mimalloc:heap mimalloc:free)
  cc "${cflags[@]}" -DALLOC_PAIR bench/heaps/request.c "$build/libamalloc-api.a" -lmimalloc -lpthread -o "$out/request-pair"
  cols+=(pair:heap pair:free)
else
  echo "mimalloc: libmimalloc-dev missing, skipped"
fi
if [ -f /usr/include/jemalloc/jemalloc.h ]; then
  cc "${cflags[@]}" -DALLOC_JEMALLOC bench/heaps/request.c -ljemalloc -o "$out/request-jemalloc"
  cols+=(jemalloc:heap jemalloc:free)
else
  echo "jemalloc: libjemalloc-dev missing, skipped"
fi
cols+=(glibc:free)

results=$out/results.tsv
: >"$results"
for n in $sizes; do
  # about 0.3-1 s per run: fewer requests for larger trees
  reqs=$((4000000 / n)); [ $reqs -gt 2000 ] && reqs=2000
  [ $quick = 1 ] && reqs=$((reqs / 4 + 1))
  for ((r = 1; r <= runs; r++)); do
    for col in "${cols[@]}"; do
      a=${col%%:*} m=${col#*:}
      line=$("$out/request-$a" "$m" "$n" "$reqs")
      echo "$line" >>"$results"
    done
  done
done

python3 - "$results" "$runs" <<'PY'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
runs = int(sys.argv[2])
by = collections.defaultdict(list)
sums = {}
bad = False
pairs = collections.defaultdict(list)
for row in rows:
    if row[0] == "pair":
        a, m, n, reqs, am, mi, ratio, q1, q3, cs = row
        pairs[(int(n), m)].append((float(ratio), float(q1), float(q3), float(am), float(mi)))
        row[:] = [a, m, n, reqs, am, "0", mi, cs]   # (checksum checked below)
        continue
    a, m, n, reqs, b, t, loop, cs = row
    by[(int(n), a, m)].append((float(b), float(t), float(loop)))
    key = int(n)
    if a == "glibc": sums.setdefault(key, cs)
for a, m, n, reqs, b, t, loop, cs in rows:
    if sums.get(int(n)) not in (None, cs):
        print(f"CHECKSUM MISMATCH: {a} {m} n={n}: {cs} != glibc's {sums[int(n)]}"); bad = True
print(f"medians of {runs} interleaved runs; times in microseconds per request")
print(f"{'N':>7} {'column':<16} {'build':>10} {'teardown':>10} {'loop':>10}")
for n in sorted({k[0] for k in by}):
    med = {}
    for (nn, a, m), v in sorted(by.items()):
        if nn != n: continue
        b, t, l = (statistics.median(x[i] for x in v) for i in range(3))
        med[(a, m)] = (b, t, l)
        print(f"{n:>7} {a + '-' + m:<16} {b:>10.1f} {t:>10.1f} {l:>10.1f}")
    def r(x, y, i):
        return med[x][i] / med[y][i] if x in med and y in med and med[y][i] > 0 else float("nan")
    print(f"{n:>7} teardown amalloc free/heap {r(('amalloc','free'),('amalloc','heap'),1):.1f}x (target >= 5); "
          f"loop mimalloc heap/amalloc heap {r(('mimalloc','heap'),('amalloc','heap'),2):.2f} (target > 1); "
          f"loop jemalloc arena/amalloc heap {r(('jemalloc','heap'),('amalloc','heap'),2):.2f}; "
          f"loop glibc/amalloc heap {r(('glibc','free'),('amalloc','heap'),2):.2f}")
    for m, what, target in (("heap", "heap", " (target > 1)"), ("free", "malloc/free per object", "")):
        p = pairs.get((n, m))
        if not p: continue
        med = lambda i: statistics.median(x[i] for x in p)
        print(f"{n:>7} paired in one process, {what}: amalloc {med(3):.1f} us, mimalloc {med(4):.1f} us per "
              f"request; mimalloc/amalloc per pair {med(0):.3f} (quartiles {med(1):.3f}-{med(2):.3f}; runs "
              f"{min(x[0] for x in p):.3f}-{max(x[0] for x in p):.3f}){target}")
sys.exit(1 if bad else 0)
PY
