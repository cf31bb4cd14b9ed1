#!/usr/bin/env bash
# glibc-knobs.sh GLIBC_KNOBS LIBAMALLOC -- glibc's malloc settings under amalloc (src/options.c):
#   1. mallopt returns what glibc's returns, for glibc's parameters and unknown ones (the same
#      program run on glibc's malloc and with amalloc preloaded prints the same table);
#   2. mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD) act (glibc_knobs threshold, trim);
#   3. MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and GLIBC_TUNABLES=glibc.malloc.* set
#      amalloc's options; GLIBC_TUNABLES wins over MALLOC_*_, AMALLOC_* over both;
#   4. AMALLOC_VERBOSE=1 prints one line per glibc setting found, and what became of it;
#      without it, nothing.
set -u
bin=${1:?usage: glibc-knobs.sh GLIBC_KNOBS LIBAMALLOC}
lib=${2:?usage: glibc-knobs.sh GLIBC_KNOBS LIBAMALLOC}
status=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; status=1; }
# meson test sets MALLOC_PERTURB_; start from a clean slate and add settings one by one
unset MALLOC_PERTURB_ MALLOC_CHECK_ MALLOC_ARENA_MAX MALLOC_ARENA_TEST MALLOC_MMAP_THRESHOLD_ \
  MALLOC_TRIM_THRESHOLD_ MALLOC_TOP_PAD_ MALLOC_MMAP_MAX_ GLIBC_TUNABLES LD_PRELOAD
for v in $(env | sed -n 's/^\(AMALLOC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
out=$(mktemp -d "${TMPDIR:-/tmp}/glibc-knobs.XXXXXX")
trap 'rm -rf "$out"' EXIT
am() { LD_PRELOAD=$lib "$@"; }

# ---- 1. return values --------------------------------------------------------------------------
"$bin" matrix > "$out/glibc" 2>&1 || fail "matrix on glibc: exit $?"
am "$bin" matrix > "$out/amalloc" 2>&1 || fail "matrix on amalloc: exit $?"
if [ -s "$out/glibc" ] && diff "$out/glibc" "$out/amalloc" > "$out/diff"; then
  pass "mallopt returns glibc's values ($(wc -l < "$out/glibc") calls; $(grep -c '= 0$' "$out/glibc") of them 0)"
else
  fail "mallopt's results differ from glibc's:"; cat "$out/diff"
fi
# the table really has both results (a refusal and an acceptance), so the comparison can fail
grep -q '^mallopt(1, 161) = 0$' "$out/glibc" && grep -q '^mallopt(1, 160) = 1$' "$out/glibc" ||
  fail "glibc's table lacks the M_MXFAST refusal/acceptance this test relies on"

# ---- 2. mallopt acts ---------------------------------------------------------------------------
for sub in threshold trim; do
  if am "$bin" "$sub" > "$out/$sub" 2>&1; then pass "mallopt: $sub ($(tail -1 "$out/$sub"))"; else fail "mallopt: $sub"; cat "$out/$sub"; fi
done

# ---- 3. the environment ------------------------------------------------------------------------
opt() { # opt NAME ENV...: the option NAME amalloc has in force with ENV
  local name=$1; shift
  env "$@" LD_PRELOAD="$lib" "$bin" options 2>/dev/null | sed -n "s/^$name=//p"
}
expect() { # expect WHAT GOT WANT
  if [ "$2" = "$3" ]; then pass "$1: $2"; else fail "$1: got '$2', want '$3'"; fi
}
expect "default LARGE_THRESHOLD" "$(opt LARGE_THRESHOLD)" 262144
expect "MALLOC_MMAP_THRESHOLD_=65536" "$(opt LARGE_THRESHOLD MALLOC_MMAP_THRESHOLD_=65536)" 65536
expect "MALLOC_MMAP_THRESHOLD_=0x8000" "$(opt LARGE_THRESHOLD MALLOC_MMAP_THRESHOLD_=0x8000)" 32768
expect "MALLOC_MMAP_THRESHOLD_=4194304 (clamped)" "$(opt LARGE_THRESHOLD MALLOC_MMAP_THRESHOLD_=4194304)" 262144
expect "MALLOC_MMAP_THRESHOLD_=100 (clamped)" "$(opt LARGE_THRESHOLD MALLOC_MMAP_THRESHOLD_=100)" 1024
expect "MALLOC_MMAP_THRESHOLD_=-1 (clamped)" "$(opt LARGE_THRESHOLD MALLOC_MMAP_THRESHOLD_=-1)" 262144
expect "GLIBC_TUNABLES mmap_threshold" \
  "$(opt LARGE_THRESHOLD GLIBC_TUNABLES=glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=16384)" 16384
expect "GLIBC_TUNABLES wins over MALLOC_MMAP_THRESHOLD_" \
  "$(opt LARGE_THRESHOLD MALLOC_MMAP_THRESHOLD_=65536 GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768)" 32768
expect "AMALLOC_LARGE_THRESHOLD wins over both" \
  "$(opt LARGE_THRESHOLD AMALLOC_LARGE_THRESHOLD=128k MALLOC_MMAP_THRESHOLD_=65536 GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768)" 131072
expect "MALLOC_TRIM_THRESHOLD_=-1" "$(opt PURGE_DELAY_MS MALLOC_TRIM_THRESHOLD_=-1)" -1
expect "MALLOC_TRIM_THRESHOLD_=18446744073709551615" "$(opt PURGE_DELAY_MS MALLOC_TRIM_THRESHOLD_=18446744073709551615)" -1
expect "MALLOC_TRIM_THRESHOLD_=0" "$(opt PURGE_DELAY_MS MALLOC_TRIM_THRESHOLD_=0)" 0
expect "MALLOC_TRIM_THRESHOLD_=131072 (ignored)" "$(opt PURGE_DELAY_MS MALLOC_TRIM_THRESHOLD_=131072)" 25
expect "AMALLOC_PURGE_DELAY_MS wins" "$(opt PURGE_DELAY_MS AMALLOC_PURGE_DELAY_MS=50 GLIBC_TUNABLES=glibc.malloc.trim_threshold=0)" 50
expect "glibc.malloc.hugetlb=1" "$(opt THP GLIBC_TUNABLES=glibc.malloc.hugetlb=1)" 1
expect "glibc.malloc.hugetlb=2" "$(opt HUGETLB GLIBC_TUNABLES=glibc.malloc.hugetlb=2)" 1
# the effect, not only the option: a 100000-byte block becomes large with the environment's threshold
expect "malloc(100000) large with MALLOC_MMAP_THRESHOLD_=65536" \
  "$(MALLOC_MMAP_THRESHOLD_=65536 LD_PRELOAD=$lib "$bin" large 100000)" 1
expect "malloc(100000) not large by default" "$(LD_PRELOAD=$lib "$bin" large 100000)" 0

# ---- 4. AMALLOC_VERBOSE=1 says what became of each setting --------------------------------------
vout=$(env AMALLOC_VERBOSE=1 MALLOC_ARENA_MAX=2 MALLOC_PERTURB_=165 MALLOC_MMAP_THRESHOLD_=65536 \
  MALLOC_TOP_PAD_=1048576 MALLOC_TRIM_THRESHOLD_=-1 \
  GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0:glibc.cpu.x86_ibt=on \
  LD_PRELOAD="$lib" "$bin" calls 2>&1 >/dev/null)
want=(
  '^amalloc: glibc setting MALLOC_ARENA_MAX=2: ignored: amalloc has no arenas'
  '^amalloc: glibc setting MALLOC_PERTURB_=165: ignored: amalloc does not fill'
  '^amalloc: glibc setting MALLOC_MMAP_THRESHOLD_=65536: large-block threshold 64 KiB (AMALLOC_LARGE_THRESHOLD=65536)$'
  '^amalloc: glibc setting MALLOC_TOP_PAD_=1048576: ignored'
  '^amalloc: glibc setting MALLOC_TRIM_THRESHOLD_=-1: never purge.*(AMALLOC_PURGE_DELAY_MS=-1)$'
  '^amalloc: glibc setting glibc.malloc.tcache_count=0: ignored$'
  '^amalloc: glibc setting glibc.malloc.mxfast=0: ignored: amalloc has no fast bins$'
  '^amalloc: glibc setting mallopt(M_MMAP_THRESHOLD, 65536): large-block threshold 64 KiB (AMALLOC_LARGE_THRESHOLD=65536) -> 1$'
  '^amalloc: glibc setting mallopt(M_MXFAST, 161): ignored: amalloc has no fast bins -> 0$'
  '^amalloc: option LARGE_THRESHOLD=65536$'
)
for w in "${want[@]}"; do
  n=$(grep -c -- "$w" <<< "$vout")
  [ "$n" = 1 ] && pass "verbose: ${w:1:70}..." || fail "verbose: $n lines match $w"
done
n=$(grep -c '^amalloc: glibc setting glibc.cpu' <<< "$vout")
expect "tunables of other glibc parts are not reported" "$n" 0
n=$(grep -c '^amalloc: glibc setting [A-Z_]*=' <<< "$vout")
expect "one line per environment setting" "$n" 5
quiet=$(env MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 LD_PRELOAD="$lib" "$bin" calls 2>&1 >/dev/null)
expect "no output without AMALLOC_VERBOSE" "$quiet" ""
if [ "$status" != 0 ]; then echo "--- verbose output:"; echo "$vout"; fi
exit $status
