#!/usr/bin/env bash
# prof-stacks.sh -- the heap profiler's ways of taking stacks, side by side: cfi (the default
# build: amalloc's own reader of the objects' call frame information, src/unwind.c) and the
# frame-pointer walk (meson -Dprof_unwind=fp); other builds of libamalloc.so can be added.
#
#   bench/prof-stacks.sh [RUNS] [NAME=/path/libamalloc.so ...]
#                                   (default 5 interleaved runs; medians)
#
# For each build: instructions per malloc+free pair with the profiler off (callgrind,
# bench/micro/icount.c: what frame pointers cost the fast paths; built ones only); the cost of
# one sample (bench/prof/capture.c, every malloc sampled, 20 calls deep, minus the same run
# without the profiler) for a program built with and without frame pointers; the frames each
# build gets from python3 (Debian's, built without frame pointers) running bench/real/pywork.py,
# and that run's peak RSS with the profiler on.
# (The libgcc and libunwind figures in doc/heap-profiler.md came from this script at 46189e5,
# whose build option had them: `git worktree add /tmp/old 46189e5` and build there to add them.)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=5
if [[ ${1:-} =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
out=$(mktemp -d /tmp/prof-stacks.XXXXXX)
trap 'rm -rf "$out"' EXIT

builds=(cfi fp)
declare -A libs
for b in "${builds[@]}"; do libs[$b]=$root/build-stacks-$b/libamalloc.so.0; done
for b in "${builds[@]}"; do
  dir=build-stacks-$b
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --buildtype=release -Dtests=false -Dprof_unwind=$b > /dev/null
  fi
  ninja -C "$dir" libamalloc.so.0 libamalloc-api.a > /dev/null
done
all=("${builds[@]}")
for a in "$@"; do all+=("${a%%=*}"); libs[${a%%=*}]=${a#*=}; done
cc -O2 -fno-omit-frame-pointer -o "$out/capture-fp" bench/prof/capture.c
cc -O2 -fomit-frame-pointer -o "$out/capture-nofp" bench/prof/capture.c

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== instructions per malloc+free pair, profiler off (callgrind; 16, 64, 256 bytes)"
if command -v valgrind >/dev/null && [ -e /usr/include/valgrind/callgrind.h ]; then
  for b in "${builds[@]}"; do
    [ -f "build-stacks-$b/libamalloc-api.a" ] || continue
    cc -O2 -I include -I bench/micro -o "$out/icount-$b" bench/micro/icount.c bench/micro/alloctab.c \
      "build-stacks-$b/libamalloc-api.a" -lpthread -ldl
    tot=()
    for n in 20000 120000; do
      rm -rf "$out/cg"; mkdir -p "$out/cg"
      GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 valgrind --tool=callgrind \
        --callgrind-out-file="$out/cg/out" "$out/icount-$b" amalloc $n 64 > /dev/null 2>&1
      tot+=("$(awk '/^desc: Trigger: Client Request: size-/ { s = 1 } /^(totals|summary):/ { if (s) t = $2 } END { print t }' "$out"/cg/out.*)")
    done
    awk -v b=$b -v a="${tot[0]}" -v c="${tot[1]}" 'BEGIN { printf "  %-9s %.2f\n", b, (c - a) / 100000 }'
  done
else
  echo "  (valgrind missing)"
fi

echo "== one sample's cost (ns; every malloc sampled, 20 frames deep; median of $runs interleaved runs)"
printf '  %-9s %-22s %10s %10s %10s\n' build program off sampled "per sample"
for r in $(seq "$runs"); do
  for b in "${all[@]}"; do
    for p in fp nofp; do
      lib=${libs[$b]}
      off=$(LD_PRELOAD=$lib "$out/capture-$p" 20 400000)
      on=$(LD_PRELOAD=$lib AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1 "$out/capture-$p" 20 100000)
      echo "$off" >> "$out/off.$b.$p"; echo "$on" >> "$out/on.$b.$p"
    done
  done
done
for b in "${all[@]}"; do
  for p in fp nofp; do
    off=$(median < "$out/off.$b.$p"); on=$(median < "$out/on.$b.$p")
    prog="frame pointers"; [ $p = nofp ] && prog="no frame pointers"
    awk -v b=$b -v p="$prog" -v off="$off" -v on="$on" \
      'BEGIN { printf "  %-9s %-22s %10.1f %10.1f %10.1f\n", b, p, off, on, on - off }'
  done
done

echo "== frames per stack (program's frames, after the allocator's are dropped)"
frames() {  # frames PROFILE: stacks, mean and max frames
  awk '/^MAPPED_LIBRARIES:/ { exit } NR > 1 && /@/ { split($0, h, "@"); n = split(h[2], f, " "); s += n; c++; if (n > m) m = n }
       END { printf "%d stacks, %.1f frames on average, %d at most", c, (c ? s / c : 0), m }' "$1"
}
maxrss() {  # maxrss CMD...: the peak RSS of CMD in KiB
  /usr/bin/python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}
for b in "${all[@]}"; do
  lib=${libs[$b]}
  LD_PRELOAD=$lib AMALLOC_PROF_SAMPLE=64k AMALLOC_PROF_DUMP="$out/cap-$b" "$out/capture-fp" 20 100000 > /dev/null 2>&1
  echo "  $b, capture (frame pointers, 20 deep): $(frames "$out/cap-$b.0001.heap")"
  LD_PRELOAD=$lib AMALLOC_PROF_DUMP="$out/py-$b" /usr/bin/python3 bench/real/pywork.py 0.3 > /dev/null 2>&1
  echo "  $b, python3 (no frame pointers): $(frames "$out/py-$b.0001.heap")"
done
echo "== python3 bench/real/pywork.py 0.3: peak RSS (KiB; median of $runs interleaved runs)"
for r in $(seq "$runs"); do
  for b in "${all[@]}"; do
    LD_PRELOAD="${libs[$b]}" maxrss /usr/bin/python3 bench/real/pywork.py 0.3 >> "$out/rss-off.$b"
    LD_PRELOAD="${libs[$b]}" AMALLOC_PROF=1 maxrss /usr/bin/python3 bench/real/pywork.py 0.3 >> "$out/rss-on.$b"
  done
done
for b in "${all[@]}"; do
  off=$(median < "$out/rss-off.$b"); on=$(median < "$out/rss-on.$b")
  awk -v b=$b -v off="$off" -v on="$on" 'BEGIN { printf "  %-9s off %8d  profiling %8d  (+%d)\n", b, off, on, on - off }'
done
