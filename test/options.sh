#!/usr/bin/env bash
# options.sh MEMORY_TEST_BINARY -- AMALLOC_* parsing: a bad value prints one warning line and is
# ignored (the program still runs), AMALLOC_VERBOSE=1 lists every option in force, and
# AMALLOC_SHOW_STATS=1 prints the report at exit.
set -u
bin=$1
fail=0
out=$(AMALLOC_THP=maybe AMALLOC_PURGE_DELAY_MS=soon AMALLOC_LARGE_THRESHOLD=64k "$bin" options 2>&1) || { echo "bad values were fatal"; fail=1; }
echo "$out"
[ "$(echo "$out" | grep -c '^amalloc: warning: AMALLOC_THP=maybe is not 0 or 1; ignored$')" = 1 ] || { echo "no THP warning"; fail=1; }
echo "$out" | grep -q '^amalloc: warning: AMALLOC_PURGE_DELAY_MS=soon ' || { echo "no PURGE_DELAY_MS warning"; fail=1; }
echo "$out" | grep -q 'LARGE_THRESHOLD=64k' && { echo "a valid size was refused"; fail=1; }
out=$(AMALLOC_VERBOSE=1 AMALLOC_PURGE=free AMALLOC_LARGE_THRESHOLD=64k "$bin" options 2>&1) || fail=1
for want in PURGE_DELAY_MS=25 PURGE=free THP=0 HUGETLB=0 POPULATE=0 LARGE_THRESHOLD=65536 SHOW_STATS=0 VERBOSE=1 PURGE_THREAD=0; do
  echo "$out" | grep -q "^amalloc: option $want\$" || { echo "verbose output lacks $want"; fail=1; }
done
out=$(AMALLOC_SHOW_STATS=1 "$bin" options 2>&1) || fail=1
echo "$out" | grep -q '^amalloc: segments ' || { echo "no statistics at exit"; fail=1; }
echo "$out" | tail -5
exit $fail
