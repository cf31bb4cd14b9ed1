#!/usr/bin/env bash
# demo.sh -- build amalloc and compare it with glibc and the installed peers on a simple
# allocation workload (bench/mixed.c), interleaved runs, medians.
#
#   bench/demo.sh [--runs N] [--steps MILLIONS]
#
# Installs what it needs with apt-get when run as root (meson, ninja, gcc, the peers
# libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4); peers that are missing are skipped.
# The full benchmark comparison (bench/compare.sh) replaces this as the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
steps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

need=()
command -v meson >/dev/null || need+=(meson)
command -v ninja >/dev/null || need+=(ninja-build)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -x /usr/bin/time ] || need+=(time)
libdir=/usr/lib/x86_64-linux-gnu
[ -e $libdir/libjemalloc.so.2 ] || need+=(libjemalloc2)
[ -e $libdir/libmimalloc.so.2 ] || need+=(libmimalloc2.0)
[ -e $libdir/libtcmalloc_minimal.so.4 ] || need+=(libtcmalloc-minimal4)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "demo: installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || true
  else
    echo "demo: not root, not installing: ${need[*]}" >&2
  fi
fi

build=${AMALLOC_BENCH_BUILD:-build-bench}
[ -d "$build" ] || meson setup "$build" --buildtype=release -Dtests=false >/dev/null
meson compile -C "$build" >/dev/null
cc -O2 -o "$build/mixed" bench/mixed.c -lpthread

declare -A lib
names=(glibc amalloc)
lib[glibc]=""
lib[amalloc]="$PWD/$build/libamalloc.so.0"
for peer in mimalloc:libmimalloc.so.2 jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
  n=${peer%%:*}; f=$libdir/${peer#*:}
  if [ -e "$f" ]; then names+=("$n"); lib[$n]=$f; else echo "demo: $n not installed, skipped"; fi
done

out=$(mktemp)
trap 'rm -f "$out" "$out.t"' EXIT
for threads in 1 2; do
  for ((r = 0; r < runs; r++)); do
    for n in "${names[@]}"; do
      LD_PRELOAD=${lib[$n]} /usr/bin/time -f "%e %M" -o "$out.t" "$build/mixed" "$threads" "$steps" > "$out.t.out"
      read -r secs kib < "$out.t"
      echo "$threads $n $secs $kib $(cat "$out.t.out")" >> "$out"
    done
  done
done
rm -f "$out.t.out"

# every allocator must compute the same checksum
if [ "$(awk '{print $1, $6}' "$out" | sort -u | wc -l)" != 2 ]; then
  echo "demo: checksums differ between allocators:" >&2; cat "$out" >&2; exit 1
fi

echo
echo "bench/mixed.c, $steps M steps per thread, $runs interleaved runs, medians (machine: $(nproc) cores)"
printf '%-8s %-9s %9s %11s %9s %9s\n' threads allocator "time (s)" "peak RSS" "time/glibc" "RSS/glibc"
for threads in 1 2; do
  declare -A mt mr
  for n in "${names[@]}"; do
    mt[$n]=$(awk -v t="$threads" -v n="$n" '$1==t && $2==n {print $3}' "$out" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    mr[$n]=$(awk -v t="$threads" -v n="$n" '$1==t && $2==n {print $4}' "$out" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
  done
  for n in "${names[@]}"; do
    awk -v th="$threads" -v n="$n" -v t="${mt[$n]}" -v r="${mr[$n]}" -v gt="${mt[glibc]}" -v gr="${mr[glibc]}" \
      'BEGIN { printf "%-8s %-9s %9.3f %8.0f MiB %9.2f %9.2f\n", th, n, t, r/1024, t/gt, r/gr }'
  done
done
