#!/usr/bin/env bash
# prof-vs-heaptrack.sh -- amalloc's sampled heap profiler beside heaptrack (Debian heaptrack),
# which records every allocation, on the same real program: python3 running
# bench/real/pywork.py.
#
#   bench/prof-vs-heaptrack.sh [RUNS] [SCALE]     (default 5 interleaved runs, scale 1)
#
# Prints the median wall time and peak RSS of: the program on glibc, on amalloc, on amalloc with
# its profiler on (AMALLOC_PROF=1, default period, profile written at exit), and under heaptrack
# (on glibc's malloc); then what each reports from its last run: the total allocated, the peak
# or live memory, the top allocation sites, and the size of what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-5} scale=${2:-1}
command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null ||
  { echo "prof-vs-heaptrack: heaptrack is not installed (apt-get install heaptrack)"; exit 1; }
build=${AMALLOC_BENCH_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Dtests=false > /dev/null
ninja -C "$build" libamalloc.so.0 > /dev/null
lib=$root/$build/libamalloc.so.0
out=$(mktemp -d /tmp/prof-vs-heaptrack.XXXXXX)
trap 'rm -rf "$out"' EXIT
cc -O2 -o "$out/runner" bench/runner.c
prog=(/usr/bin/python3 "$root/bench/real/pywork.py" "$scale")

modes=(glibc amalloc amalloc-prof heaptrack)
for r in $(seq "$runs"); do
  for m in "${modes[@]}"; do
    rm -f "$out"/ht.* "$out"/prof.*
    case $m in
      glibc) "$out/runner" "$out/res" "" "${prog[@]}" > /dev/null ;;
      amalloc) "$out/runner" "$out/res" "$lib" "${prog[@]}" > /dev/null ;;
      amalloc-prof) AMALLOC_PROF_DUMP=$out/prof "$out/runner" "$out/res" "$lib" "${prog[@]}" > /dev/null 2>&1 ;;
      heaptrack) "$out/runner" "$out/res" "" heaptrack -o "$out/ht" "${prog[@]}" > /dev/null 2>&1 ;;
    esac
    read -r secs kib code _ < "$out/res"
    [ "$code" = 0 ] || echo "warning: $m run $r exited $code"
    echo "$m $secs $kib" >> "$out/all"
    [ $m = amalloc-prof ] && cp "$out"/prof.0001.heap "$out/last.heap"
    [ $m = heaptrack ] && cp "$out"/ht.* "$out/last.ht.zst" 2>/dev/null || true
  done
done
echo "== python3 bench/real/pywork.py $scale: medians of $runs interleaved runs"
printf '%-14s %9s %9s %11s\n' mode "time s" "x glibc" "peak RSS MiB"
base=$(awk '$1 == "glibc" { print $2 }' "$out/all" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
for m in "${modes[@]}"; do
  t=$(awk -v m=$m '$1 == m { print $2 }' "$out/all" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  k=$(awk -v m=$m '$1 == m { print $3 }' "$out/all" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  awk -v m=$m -v t="$t" -v k="$k" -v b="$base" 'BEGIN { printf "%-14s %9.2f %9.2f %11.1f\n", m, t, t / b, k / 1024 }'
done
echo
echo "== what amalloc's profile says (amalloc-prof, last run; $(stat -c %s "$out/last.heap") bytes)"
"$build/amalloc-prof" --alloc -n 8 "$out/last.heap"
echo
echo "== what heaptrack says (heaptrack_print, last run; $(stat -c %s "$out/last.ht.zst") bytes)"
heaptrack_print -f "$out/last.ht.zst" -a 0 -T 0 -p 1 -n 5 -s 0 2>/dev/null | grep -vE '^\s*$' | head -40
heaptrack_print -f "$out/last.ht.zst" -a 0 -T 0 -p 0 2>/dev/null |
  grep -iE '^(total runtime|calls to allocation|temporary memory|bytes allocated in total|peak heap memory|peak RSS|total memory leaked)' || true
