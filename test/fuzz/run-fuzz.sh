#!/usr/bin/env bash
# run-fuzz.sh -- build the libFuzzer harness of the am_* API (fuzz_api.c) with clang and run it
# for a bounded time against the default and the secure build, on this machine's pages and on
# 64 KiB pages.
#
#   test/fuzz/run-fuzz.sh SOURCE_ROOT OUT_DIR [FUZZER_BINARY [SECURE_FUZZER_BINARY]]
#
# Without the binaries it compiles src/unity.c + test/fuzz/fuzz_api.c itself with
#   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
#         -DAM_OVERRIDE=0 -DAM_DEBUG=2 (amalloc's internal asserts on)
# into OUT_DIR/fuzz_api, and the same with -DAM_SECURE=1 into OUT_DIR/fuzz_api-secure (the
# project's default compiler is gcc, which has no libFuzzer); with them (a clang build of the
# project made them) they are run as they are. It also compiles test/pagesize/pagesize_shim.c
# into OUT_DIR/libpagesize_shim.so: preloaded with AMALLOC_TEST_PAGE_SIZE=65536, it makes
# sysconf(_SC_PAGESIZE) & co. report 64 KiB pages, to amalloc and to the harness alike.
#
# The runs, one after the other, each for a quarter of $AMALLOC_FUZZ_SECONDS (default 60, so
# 15 s each): default, secure, default-64k, secure-64k. They share the corpus OUT_DIR/fuzz-corpus
# (kept between runs, libFuzzer adds to it) and the seeds written to OUT_DIR/fuzz-seeds;
# -rss_limit_mb=4096, -timeout=10, -print_final_stats=1. The logs are OUT_DIR/fuzz-RUN.log; a
# crash, a failed check of the shadow model (abort), a UBSan report, a timeout or an
# out-of-memory leaves its input in OUT_DIR/fuzz-artifacts/RUN/ (the previous artifacts move to
# fuzz-artifacts.prev/). The failure output prints the command that
# reproduces it (for a -64k run: with the shim preloaded).
#
# Environment: AMALLOC_FUZZ_SECONDS (default 60, split over the four runs), CLANG (default clang),
#              AMALLOC_FUZZ_ARGS (extra libFuzzer arguments, word-split, e.g. "-jobs=2"),
#              AMALLOC_FUZZ_RUNS (the runs to do, comma-separated; default all four).
# Exit status: 0 if libFuzzer found nothing, 1 if it found something or could not run,
#              1 if clang is not installed on Debian as root (test/run.sh installs it),
#              77 (meson: skipped) if it is not installed elsewhere (tool-missing.sh).
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 SOURCE_ROOT OUT_DIR [FUZZER_BINARY [SECURE_FUZZER_BINARY]]" >&2
  exit 1
fi
src=$(cd "$1" && pwd) || exit 1
out=$2
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd) || exit 1
seconds=${AMALLOC_FUZZ_SECONDS:-60}
case $seconds in
  '' | *[!0-9]*) echo "run-fuzz.sh: AMALLOC_FUZZ_SECONDS=$seconds is not a number of seconds" >&2; exit 1 ;;
esac

# ---- the binaries ----------------------------------------------------------------------------
clang=${CLANG:-clang}
build_fuzzer() {   # OUTPUT EXTRA_FLAGS...
  local bin=$1
  shift
  echo "==> building $bin with $clang"
  if ! "$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -fno-omit-frame-pointer -DAM_OVERRIDE=0 -DAM_DEBUG=2 "$@" -D_GNU_SOURCE -I "$src/include" \
      "$src/src/unity.c" "$src/test/fuzz/fuzz_api.c" -o "$bin.tmp" -pthread; then
    echo "run-fuzz.sh: the build of $bin failed"
    exit 1
  fi
  mv -f "$bin.tmp" "$bin"
}
if [ $# -ge 4 ]; then
  bin=$3
  bin_secure=$4
else
  if ! command -v "$clang" >/dev/null 2>&1; then
    exec bash "$(dirname "${BASH_SOURCE[0]}")/../tool-missing.sh" "$clang (with libFuzzer: libclang-rt-dev)"
  fi
  bin=$out/fuzz_api
  bin_secure=$out/fuzz_api-secure
  if [ $# -ge 3 ]; then bin=$3; else build_fuzzer "$bin"; fi
  build_fuzzer "$bin_secure" -DAM_SECURE=1
fi
for b in "$bin" "$bin_secure"; do
  if [ ! -x "$b" ]; then
    echo "run-fuzz.sh: $b is not an executable"
    exit 1
  fi
done
# the page-size shim (any C compiler will do; no sanitizer: it only answers sysconf & co.)
shim=$out/libpagesize_shim.so
shim_cc=$clang
command -v "$shim_cc" >/dev/null 2>&1 || shim_cc=${CC:-cc}
if ! "$shim_cc" -O2 -shared -fPIC "$src/test/pagesize/pagesize_shim.c" -o "$shim.tmp"; then
  echo "run-fuzz.sh: the build of $shim failed"
  exit 1
fi
mv -f "$shim.tmp" "$shim"

# ---- corpus and seeds -------------------------------------------------------------------------
corpus=$out/fuzz-corpus
seeds=$out/fuzz-seeds
artifacts=$out/fuzz-artifacts
mkdir -p "$corpus" "$seeds"
rm -rf "$artifacts.prev"
[ -d "$artifacts" ] && mv "$artifacts" "$artifacts.prev"
mkdir -p "$artifacts"

# Seeds (the operation byte is taken modulo 19, the slot is the next byte; see fuzz_api.c):
# runs of mallocs, reallocs, aligned allocations, frees, hand-offs, impossible requests, bulk
# allocations and frees.
seed() { printf "$2" > "$seeds/$1"; }
seed malloc-free        '\000\001\020\000\002\100\000\003\377\000\012\001\000\012\002\001\012\003\002'
seed malloc-large       '\000\001\377\377\377\000\002\340\000\200\003\001\000\012\001\000'
seed realloc-grow       '\000\001\010\000\003\001\010\003\001\020\003\001\377\377\377\003\001\140\012\001\000'
seed realloc-medium     '\000\005\300\377\017\004\005\040\004\005\150\004\005\303\377\377\012\005\001'
seed reallocarray       '\005\007\250\012\003\005\007\300\077\005\005\007\377\377\377\011'
seed aligned            '\006\010\024\000\100\007\011\014\240\200\010\012\020\377\377\377\011\013\001\000\100\012\010\002\012\011\001\012\012\002\012\013\001'
seed calloc-trim        '\002\014\040\200\003\002\015\340\377\377\004\015\000\015\015\012\014\000'
seed handoff            '\000\020\100\000\016\020\000\021\377\377\377\016\021\000\022\040\000\016\022\015\000\000'
seed impossible         '\017\000\000\000\000\000\000\017\000\001\000\000\001\000\017\000\002\000\000\000\000\017\000\004\000\000\000\000\005\017\000\007\000\000\000\002\017\000\010\000\000\000\004'
seed bulk-small         '\021\000\077\000\100\022\000\077\021\000\077\000\060\022\000\277\015\000\000'
seed bulk-medium        '\021\100\077\300\377\017\022\100\177\021\200\077\340\200\100\022\200\077'
seed options            '\020\000\001\000\001\000\010\000\020\000\000\000\002\300\377\377\012\002\000\020\000\007'

# ---- runs ---------------------------------------------------------------------------------------
runs=${AMALLOC_FUZZ_RUNS:-default,secure,default-64k,secure-64k}
IFS=, read -r -a run_list <<<"$runs"
each=$((seconds / ${#run_list[@]}))
[ "$each" -ge 1 ] || each=1          # (0 would mean "no limit" to libFuzzer)
# shellcheck disable=SC2206  # AMALLOC_FUZZ_ARGS is word-split on purpose
extra=(${AMALLOC_FUZZ_ARGS:-})
failed=0
for run in "${run_list[@]}"; do
  case $run in
    default) b=$bin; pre=() ;;
    secure) b=$bin_secure; pre=() ;;
    default-64k) b=$bin; pre=(env "LD_PRELOAD=$shim" AMALLOC_TEST_PAGE_SIZE=65536) ;;
    secure-64k) b=$bin_secure; pre=(env "LD_PRELOAD=$shim" AMALLOC_TEST_PAGE_SIZE=65536) ;;
    *) echo "run-fuzz.sh: AMALLOC_FUZZ_RUNS: unknown run '$run'"; exit 1 ;;
  esac
  log=$out/fuzz-$run.log
  mkdir -p "$artifacts/$run"
  echo "==> $run: ${pre[*]:+${pre[*]} }$b for ${each}s (corpus $corpus, log $log)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=0} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "${pre[@]}" "$b" -max_total_time="$each" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$run/" "${extra[@]}" "$corpus" "$seeds" > "$log" 2>&1
  rc=$?

  # the last coverage line (e.g. "#123456 pulse cov: 1200 ft: 5000 corp: ...") and the stats
  grep -E '^#[0-9]+' "$log" | tail -1
  grep -E '^(stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|Done )' "$log"
  found=$(find "$artifacts/$run" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "run-fuzz.sh: $run: libFuzzer exited with status $rc and left $found artifact(s) in $artifacts/$run:"
    ls -l "$artifacts/$run"
    echo "reproduce with: ${pre[*]:+${pre[*]} }$b $artifacts/$run/..."
    echo "---- the end of $log ----"
    tail -n 60 "$log"
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "run-fuzz.sh: nothing found"
exit 0
